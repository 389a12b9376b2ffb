use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a route netlink socket: {0}")]
    Socket(String),
    #[error("cannot send the {request} request: {reason}")]
    Send {
        request: &'static str,
        reason: String,
    },
    #[error("cannot receive the {request} dump: {errno}")]
    Receive { request: &'static str, errno: Errno },
    #[error("the kernel refused the {request} dump: {errno}")]
    Kernel { request: &'static str, errno: Errno },
    #[error("the {request} dump was interrupted by concurrent changes {attempts} times in a row")]
    Interrupted {
        request: &'static str,
        attempts: u32,
    },
    #[error("reading the {request} answer took longer than the timeout")]
    TimedOut { request: &'static str },
    #[error("the {request} dump ended without NLMSG_DONE")]
    Truncated { request: &'static str },
    #[error("the kernel acknowledged the {request} request without answering it")]
    NoReply { request: &'static str },
    #[error("malformed netlink data: {0}")]
    Malformed(#[from] crate::wire::WireError),
}
