use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

use crate::NsType;

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("cannot open /proc: {0}")]
    Proc(Errno),
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: u32 },
    #[error("cannot pin process {pid}: {errno}")]
    Pin { pid: u32, errno: Errno },
    #[error("process {pid} exited while its namespaces were being opened")]
    ProcessExited { pid: u32 },
    #[error("pid 0 names no process")]
    PidZero,
    #[error("pid {pid} is a kernel thread, which has no namespaces of its own to look into")]
    KernelThread { pid: u32 },
    #[error("the /proc mounted here belongs to another pid namespace, so its pids are not ours")]
    ForeignProc,
    #[error("cannot open {}: {errno}", path.display())]
    Open { path: PathBuf, errno: Errno },
    #[error("{} holds a .. component, which nshelper refuses", path.display())]
    ParentDirectory { path: PathBuf },
    #[error("{} is not a namespace file", path.display())]
    NotNamespace { path: PathBuf },
    #[error("{} is a {found} namespace, not a {wanted} namespace", path.display())]
    WrongType {
        path: PathBuf,
        found: String,
        wanted: NsType,
    },
    #[error("the helper has {0} threads; it forks only while single-threaded")]
    NotSingleThreaded(usize),
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    #[error("cannot join the {ns} namespace: {errno}")]
    Join { ns: NsType, errno: Errno },
    #[error("cannot read the query process's own {ns} namespace: {errno}")]
    Proof { ns: NsType, errno: Errno },
    #[error("the query did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the query process was killed by signal {0}")]
    Killed(i32),
    #[error("the query process exited with status {0}")]
    Exited(i32),
    #[error("the query process panicked")]
    Panicked,
    #[error("the query process sent a report larger than {0} bytes")]
    ReportTooLarge(usize),
    #[error("the query process sent a malformed report")]
    MalformedReport,
    /// The query itself failed; the bytes are whatever the query sent as its error.
    #[error("the query failed")]
    Query(Vec<u8>),
}

impl NsError {
    /// The errno behind this error, where there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NsError::Proc(errno)
            | NsError::Pin { errno, .. }
            | NsError::Open { errno, .. }
            | NsError::Sys { errno, .. }
            | NsError::Join { errno, .. }
            | NsError::Proof { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}
