//! Namespace targets and the engine that runs a query inside them.
//!
//! The parent opens every namespace file up front, then forks. The child joins the
//! namespaces (user first, mount last) and forks again, because joining a pid namespace
//! only applies to children: the grandchild is the process that is really inside. The
//! parent never calls `setns` itself, so its own namespaces never change.
//!
//! All `unsafe` code of nshelper lives in this crate's `sys` module.

mod discover;
mod engine;
mod error;
mod exec;
mod kind;
#[allow(unsafe_code)]
mod sys;
mod target;
mod walk;

pub use discover::{discover_network_namespaces, process_info, FoundNetns, ProcessInfo};
pub use engine::{spawn, Report, RunningQuery, REPORT_LIMIT};
pub use error::NsError;
pub use exec::{exec_in, ExecError, ExecRequest, MountSetup};
pub use kind::NsType;
pub use sys::{prepare_process, ClosedAtStart};
pub use target::{JoinPlan, ProcRoot, DEFAULT_PROCESS_NAMESPACES};
pub use walk::{spawn_walk, StopError, WalkStop};

/// The cookie of the network namespace that `socket` belongs to (`SO_NETNS_COOKIE`).
pub fn socket_netns_cookie(socket: &impl std::os::fd::AsRawFd) -> Result<u64, nix::errno::Errno> {
    sys::netns_cookie(socket)
}
