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
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl Failure {
    /// The contract's error entry for `target`. A refusal says what privilege was missing
    /// when the helper runs without it.
    pub fn for_target(self, target: Target) -> TargetError {
        let message = if self.kind == ErrorKind::PermissionDenied
            && !crate::privileges::can_enter_namespaces()
        {
            format!(
                "{} (entering another process's namespaces needs root, or CAP_SYS_ADMIN and CAP_SYS_PTRACE)",
                self.message
            )
        } else {
            self.message
        };
        TargetError {
            target,
            kind: self.kind,
            message,
        }
    }
}

impl From<NetlinkError> for Failure {
    fn from(error: NetlinkError) -> Self {
        let kind = match error {
            NetlinkError::TimedOut { .. } => ErrorKind::Timeout,
            _ => ErrorKind::Netlink,
        };
        Failure::new(kind, error.to_string())
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
        Failure::new(kind, error.to_string())
    }
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

    #[test]
    fn a_query_failure_keeps_the_kind_the_query_process_gave_it() {
        let sent = Failure::new(ErrorKind::Netlink, "the kernel refused the dump");
        let bytes = serde_json::to_vec(&sent).unwrap();
        assert_eq!(Failure::from(NsError::Query(bytes)), sent);
        let garbage = Failure::from(NsError::Query(b"\xff".to_vec()));
        assert_eq!(garbage.kind, ErrorKind::ChildFailed);
    }
}
