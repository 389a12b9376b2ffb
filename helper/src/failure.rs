//! The one place where library errors become the contract's error kinds, messages and exit
//! codes.

use nix::errno::Errno;
use nshelper_model::{ErrorKind, Target, TargetError};
use nshelper_namespaces::NsError;
use nshelper_netlink::NetlinkError;
use serde::{Deserialize, Serialize};

/// Every target answered.
pub const EXIT_OK: i32 = 0;
/// At least one target failed, or the document could not be written.
pub const EXIT_TARGET_FAILED: i32 = 1;
/// The command line was wrong; nothing was queried.
pub const EXIT_USAGE: i32 = 2;

/// A failure with its contract kind, as the query process sends it to the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    /// What the user can do about it, where the failure knows better than its kind does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The contract's error entry for `target`. Its message ends with what to do next: the
    /// failure's own hint, or the usual one for its kind and target.
    pub fn for_target(self, target: Target) -> TargetError {
        let hint = self.hint.unwrap_or_else(|| usual_hint(self.kind, &target));
        TargetError {
            message: format!("{}; {hint}", self.message),
            target,
            kind: self.kind,
        }
    }
}

/// The next step for a failure of `kind` on `target` that gave no hint of its own. Each
/// starts with what to do, so that one line on stderr is enough to act on, and holds no
/// `; `, so that it is the last clause of the message.
pub fn usual_hint(kind: ErrorKind, target: &Target) -> String {
    match (kind, target) {
        (ErrorKind::NotFound, Target::Pid { .. }) => {
            "check the pid with ps or pgrep, or name a network namespace with --netns".into()
        }
        (ErrorKind::NotFound, Target::Netns { name: Some(_), .. }) => {
            "check the name with ip netns list, or see every network namespace with nshelper list"
                .into()
        }
        (ErrorKind::NotFound, Target::Netns { name: None, .. }) => {
            "check the path, or see every network namespace with nshelper list".into()
        }
        (ErrorKind::NotFound, _) => {
            "run nshelper again: what held the namespace went away during the call".into()
        }
        (ErrorKind::PermissionDenied, _) if !crate::privileges::can_enter_namespaces() => {
            "run nshelper as root, for example with sudo (entering another process's namespaces \
             needs CAP_SYS_ADMIN, and CAP_SYS_PTRACE for another user's process)"
                .into()
        }
        (ErrorKind::PermissionDenied, _) => {
            "run nshelper as root of the host, outside any container or user namespace, and \
             check the kernel log (dmesg) for a security module (AppArmor, SELinux) refusing it"
                .into()
        }
        (ErrorKind::InvalidTarget, _) => {
            "give the pid of a process in the container, or a network namespace file such as \
             /run/netns/NAME or /proc/PID/ns/net"
                .into()
        }
        (ErrorKind::Timeout, _) => {
            "try a longer --timeout: the namespace may be busy or hold very many entries".into()
        }
        (ErrorKind::ChildFailed, _) => {
            "run nshelper again, and if it keeps failing, report it to nshelper's maintainers \
             with the command line and uname -r"
                .into()
        }
        (ErrorKind::Netlink, _) => {
            "run nshelper again, and if it keeps failing, check the kernel log (dmesg) and \
             compare with ip -n NAME link"
                .into()
        }
    }
}

impl From<NetlinkError> for Failure {
    fn from(error: NetlinkError) -> Self {
        let kind = match error {
            NetlinkError::TimedOut { .. } => ErrorKind::Timeout,
            _ => ErrorKind::Netlink,
        };
        let hint = match &error {
            NetlinkError::Interrupted { .. } => {
                Some("run nshelper again: the namespace changed too fast to be read whole")
            }
            NetlinkError::Malformed(_) => Some(
                "report it to nshelper's maintainers with uname -r: the kernel sent data \
                 nshelper cannot decode",
            ),
            _ => None,
        };
        let failure = Failure::new(kind, error.to_string());
        match hint {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

impl From<NsError> for Failure {
    fn from(error: NsError) -> Self {
        let kind = match &error {
            NsError::NoSuchProcess { .. } | NsError::ProcessExited { .. } => ErrorKind::NotFound,
            NsError::NotNamespace { .. }
            | NsError::WrongType { .. }
            | NsError::ForeignProc
            | NsError::PidZero
            | NsError::ParentDirectory { .. }
            | NsError::KernelThread { .. } => ErrorKind::InvalidTarget,
            NsError::Timeout(_) => ErrorKind::Timeout,
            // The query's own failure arrives already classified.
            NsError::Query(bytes) => {
                return serde_json::from_slice(bytes).unwrap_or_else(|_| {
                    Failure::new(
                        ErrorKind::ChildFailed,
                        "the query process sent an unreadable error",
                    )
                })
            }
            NsError::Open { errno, .. } | NsError::Pin { errno, .. } => match *errno {
                Errno::ENOENT | Errno::ESRCH => ErrorKind::NotFound,
                Errno::EACCES | Errno::EPERM => ErrorKind::PermissionDenied,
                Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG => ErrorKind::InvalidTarget,
                _ => ErrorKind::ChildFailed,
            },
            NsError::Join { errno, .. } => match *errno {
                Errno::EPERM | Errno::EACCES => ErrorKind::PermissionDenied,
                // The namespace cannot be joined from here, such as a pid namespace that is
                // not a descendant of ours.
                Errno::EINVAL => ErrorKind::InvalidTarget,
                _ => ErrorKind::ChildFailed,
            },
            NsError::Proc(_)
            | NsError::NotSingleThreaded(_)
            | NsError::Sys { .. }
            | NsError::Proof { .. }
            | NsError::Killed(_)
            | NsError::Exited(_)
            | NsError::Panicked
            | NsError::ReportTooLarge(_)
            | NsError::MalformedReport => ErrorKind::ChildFailed,
        };
        let hint = hint_for(&error, kind);
        let failure = Failure::new(kind, error.to_string());
        match hint {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

/// The next step for the errors whose kind alone says too little.
fn hint_for(error: &NsError, kind: ErrorKind) -> Option<String> {
    let hint = match error {
        NsError::PidZero | NsError::KernelThread { .. } => {
            "give the pid of a process inside the container, as ps or pgrep shows it".to_owned()
        }
        NsError::ForeignProc => "run nshelper in the host's pid namespace, or mount a /proc of \
                                 its own pid namespace over /proc"
            .to_owned(),
        NsError::ParentDirectory { .. } => {
            "give the path without '..', such as /run/netns/NAME".to_owned()
        }
        NsError::NotNamespace { .. } => "give a network namespace file, such as /run/netns/NAME \
                                         (see ip netns list) or /proc/PID/ns/net"
            .to_owned(),
        NsError::WrongType { .. } => {
            "give a network namespace file, such as /proc/PID/ns/net rather than another file of \
             /proc/PID/ns"
                .to_owned()
        }
        NsError::Open { .. } if kind == ErrorKind::InvalidTarget => {
            "give the path of a network namespace file, such as /run/netns/NAME or \
             /proc/PID/ns/net"
                .to_owned()
        }
        NsError::Join { ns, .. } if kind == ErrorKind::InvalidTarget => format!(
            "run nshelper from the host's namespaces, or leave the {ns} namespace out with --ns"
        ),
        NsError::Proc(_) => "mount /proc (mount -t proc proc /proc) and run nshelper again".into(),
        NsError::Killed(_) => "run nshelper again, and check the kernel log (dmesg) for the OOM \
                               killer or a security module that killed it"
            .to_owned(),
        NsError::ReportTooLarge(_) => "query one kind at a time (links, addrs, routes or \
                                       neighbors), or one namespace at a time"
            .to_owned(),
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use nshelper_namespaces::NsType;

    use super::*;

    #[test]
    fn library_errors_map_to_contract_kinds() {
        let cases = [
            (NsError::NoSuchProcess { pid: 9 }, ErrorKind::NotFound),
            (
                NsError::Open {
                    path: PathBuf::from("/run/netns/x"),
                    errno: Errno::ENOENT,
                },
                ErrorKind::NotFound,
            ),
            (
                NsError::Open {
                    path: PathBuf::from("/proc/1/ns/net"),
                    errno: Errno::EACCES,
                },
                ErrorKind::PermissionDenied,
            ),
            (
                NsError::Join {
                    ns: NsType::Mnt,
                    errno: Errno::EPERM,
                },
                ErrorKind::PermissionDenied,
            ),
            (
                NsError::NotNamespace {
                    path: PathBuf::from("/etc/hostname"),
                },
                ErrorKind::InvalidTarget,
            ),
            (NsError::Timeout(Duration::from_secs(1)), ErrorKind::Timeout),
            (NsError::Killed(9), ErrorKind::ChildFailed),
            (NsError::Panicked, ErrorKind::ChildFailed),
        ];
        for (error, kind) in cases {
            assert_eq!(Failure::from(error).kind, kind);
        }
    }

    /// Whether `message` ends with a next step: a clause after the last `; ` that opens with
    /// something to do.
    fn ends_with_a_next_step(message: &str) -> bool {
        const VERBS: [&str; 9] = [
            "check", "give", "run", "try", "mount", "query", "report", "remove", "see",
        ];
        message.rsplit_once("; ").is_some_and(|(_, hint)| {
            VERBS.iter().any(|verb| {
                hint.strip_prefix(verb)
                    .is_some_and(|rest| rest.starts_with(' '))
            })
        })
    }

    fn every_library_error() -> Vec<NsError> {
        let path = || PathBuf::from("/run/netns/x");
        let mut errors = vec![
            NsError::Proc(Errno::ENOENT),
            NsError::NoSuchProcess { pid: 9 },
            NsError::ProcessExited { pid: 9 },
            NsError::PidZero,
            NsError::KernelThread { pid: 2 },
            NsError::ForeignProc,
            NsError::ParentDirectory { path: path() },
            NsError::NotNamespace { path: path() },
            NsError::WrongType {
                path: path(),
                found: "uts".into(),
                wanted: NsType::Net,
            },
            NsError::NotSingleThreaded(2),
            NsError::Sys {
                call: "fork",
                errno: Errno::EAGAIN,
            },
            NsError::Proof {
                ns: NsType::Net,
                errno: Errno::EACCES,
            },
            NsError::Timeout(Duration::from_secs(10)),
            NsError::Killed(9),
            NsError::Exited(3),
            NsError::Panicked,
            NsError::ReportTooLarge(1 << 28),
            NsError::MalformedReport,
            NsError::Query(b"garbage".to_vec()),
        ];
        for errno in [Errno::ENOENT, Errno::EACCES, Errno::ENOTDIR, Errno::EMFILE] {
            errors.push(NsError::Open {
                path: path(),
                errno,
            });
            errors.push(NsError::Pin { pid: 9, errno });
        }
        for errno in [Errno::EPERM, Errno::EINVAL, Errno::ENOMEM] {
            errors.push(NsError::Join {
                ns: NsType::Pid,
                errno,
            });
        }
        errors
    }

    fn every_netlink_error() -> Vec<NetlinkError> {
        let request = "link";
        vec![
            NetlinkError::Socket("EMFILE".into()),
            NetlinkError::Send {
                request,
                reason: "EPERM".into(),
            },
            NetlinkError::Receive {
                request,
                errno: Errno::EIO,
            },
            NetlinkError::Kernel {
                request,
                errno: Errno::EOPNOTSUPP,
            },
            NetlinkError::Interrupted {
                request,
                attempts: 5,
            },
            NetlinkError::TimedOut { request },
            NetlinkError::Truncated { request },
            NetlinkError::NoReply { request },
            NetlinkError::Malformed(nshelper_netlink::wire::WireError::ShortHeader(3)),
        ]
    }

    #[test]
    fn every_error_message_ends_with_what_to_do_next() {
        let targets = [
            Target::Pid { pid: 4242 },
            Target::Netns {
                name: Some("red".into()),
                path: "/run/netns/red".into(),
            },
            Target::Netns {
                name: None,
                path: "/proc/1/ns/net".into(),
            },
            Target::OwnNamespaces,
        ];
        let failures = every_library_error()
            .into_iter()
            .map(Failure::from)
            .chain(every_netlink_error().into_iter().map(Failure::from));
        let mut kinds = std::collections::HashSet::new();
        for failure in failures {
            for target in &targets {
                kinds.insert(failure.kind);
                let error = failure.clone().for_target(target.clone());
                assert!(
                    ends_with_a_next_step(&error.message),
                    "{:?} for {target:?}: {}",
                    error.kind,
                    error.message
                );
                assert!(!error.message.contains('\n'), "{}", error.message);
            }
        }
        assert_eq!(kinds.len(), 6, "every kind is covered: {kinds:?}");
        let exited = Failure::from(NsError::NoSuchProcess { pid: 4242 });
        assert_eq!(
            exited.for_target(Target::Pid { pid: 4242 }).message,
            "no process with pid 4242; check the pid with ps or pgrep, or name a network \
             namespace with --netns"
        );
    }

    #[test]
    fn a_hint_crosses_the_pipe_with_its_failure() {
        let sent = Failure::from(NetlinkError::Interrupted {
            request: "link",
            attempts: 5,
        });
        assert!(sent.hint.is_some());
        let bytes = serde_json::to_vec(&sent).unwrap();
        assert_eq!(Failure::from(NsError::Query(bytes)), sent);
    }

    #[test]
    fn a_query_failure_keeps_the_kind_the_query_process_gave_it() {
        let sent = Failure::new(ErrorKind::Netlink, "the kernel refused the dump");
        let bytes = serde_json::to_vec(&sent).unwrap();
        assert_eq!(Failure::from(NsError::Query(bytes)), sent);
        let garbage = Failure::from(NsError::Query(b"\xff".to_vec()));
        assert_eq!(garbage.kind, ErrorKind::ChildFailed);
    }
}
