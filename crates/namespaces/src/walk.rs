//! Many network namespaces in one child.
//!
//! Joining a network namespace needs no fork: only pid and mount namespaces do. So for
//! targets that are network namespaces alone, one child moves from one to the next with
//! setns, and in each opens what the caller asks for (a netlink socket, which stays bound
//! to the namespace it was made in). Only when every namespace has been visited does the
//! caller's `read` run: by then the child no longer needs its privileges, and can give them
//! up before it reads a byte from inside any target.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::prctl;
use nix::unistd::{setpgid, Pid};

use crate::engine::{
    detach_stdio, die_with, errno_bytes, fork_reporting, send_and_exit, send_outcome_and_exit,
    Report, RunningQuery, TAG_FORK_ERROR,
};
use crate::{sys, NsError, NsType, ProcRoot, DEFAULT_PROCESS_NAMESPACES};

/// The namespaces the walker was in at a stop, by type: its proof of entry.
pub type StopInodes = Vec<(NsType, u64)>;

/// What the walker made of one namespace.
pub struct WalkStop<S, E> {
    /// The position of its file in the list given to [`spawn_walk`].
    pub index: usize,
    /// What `open` made right after joining it, and the inodes of the namespaces the walker
    /// was in then: its proof of entry.
    pub opened: Result<(S, StopInodes), StopError<E>>,
}

#[derive(Debug)]
pub enum StopError<E> {
    /// Joining, or reading the walker's own namespaces, failed.
    Namespaces(NsError),
    /// `open` failed.
    Open(E),
}

/// Forks one child that joins each of `netns` (network namespace files) in turn, calls
/// `open` in each, then hands everything to `read`, whose result is the report.
pub fn spawn_walk<S, E, O, R, P>(
    netns: &[BorrowedFd<'_>],
    proc: &ProcRoot,
    keep: &[BorrowedFd<'_>],
    open: O,
    read: R,
) -> Result<RunningQuery, NsError>
where
    O: FnMut() -> Result<S, E>,
    R: FnOnce(Vec<WalkStop<S, E>>) -> Result<P, Vec<u8>>,
    P: Into<Report>,
{
    fork_reporting(proc, |parent, report_writer| {
        run_walker(&parent, netns, proc, keep, report_writer, open, read)
    })
}

fn run_walker<S, E, O, R, P>(
    parent: &OwnedFd,
    netns: &[BorrowedFd<'_>],
    proc: &ProcRoot,
    keep: &[BorrowedFd<'_>],
    report_writer: OwnedFd,
    mut open: O,
    read: R,
) -> std::convert::Infallible
where
    O: FnMut() -> Result<S, E>,
    R: FnOnce(Vec<WalkStop<S, E>>) -> Result<P, Vec<u8>>,
    P: Into<Report>,
{
    die_with(parent);
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let _ = prctl::set_dumpable(false);
    let mut kept: Vec<RawFd> = vec![
        parent.as_raw_fd(),
        report_writer.as_raw_fd(),
        proc.as_raw_fd(),
    ];
    kept.extend(netns.iter().map(AsRawFd::as_raw_fd));
    kept.extend(keep.iter().map(AsRawFd::as_raw_fd));
    if let Err(errno) = detach_stdio().and_then(|()| sys::close_all_except(&kept)) {
        let mut frame = vec![TAG_FORK_ERROR];
        frame.extend(errno_bytes(errno));
        send_and_exit(&report_writer, &frame, 1);
    }
    // setns into a network namespace moves nothing else: the walker's pid and mount
    // namespaces are read once, its network namespace at every stop.
    let unmoved: Result<StopInodes, (NsType, Errno)> = [NsType::Pid, NsType::Mnt]
        .into_iter()
        .map(|kind| {
            proc.own_namespace_inode(kind)
                .map(|inode| (kind, inode))
                .map_err(|errno| (kind, errno))
        })
        .collect();
    let stops = netns
        .iter()
        .enumerate()
        .map(|(index, file)| WalkStop {
            index,
            opened: match &unmoved {
                Ok(unmoved) => visit(file.as_fd(), proc, unmoved, &mut open),
                Err((ns, errno)) => Err(StopError::Namespaces(NsError::Proof {
                    ns: *ns,
                    errno: *errno,
                })),
            },
        })
        .collect();
    send_outcome_and_exit(report_writer, read(stops))
}

fn visit<S, E>(
    file: BorrowedFd<'_>,
    proc: &ProcRoot,
    unmoved: &[(NsType, u64)],
    open: &mut impl FnMut() -> Result<S, E>,
) -> Result<(S, StopInodes), StopError<E>> {
    setns(file, CloneFlags::CLONE_NEWNET).map_err(|errno| {
        StopError::Namespaces(NsError::Join {
            ns: NsType::Net,
            errno,
        })
    })?;
    let net = proc
        .own_namespace_inode(NsType::Net)
        .map_err(|errno: Errno| {
            StopError::Namespaces(NsError::Proof {
                ns: NsType::Net,
                errno,
            })
        })?;
    let mut inodes = Vec::with_capacity(DEFAULT_PROCESS_NAMESPACES.len());
    inodes.push((NsType::Net, net));
    inodes.extend_from_slice(unmoved);
    let opened = open().map_err(StopError::Open)?;
    Ok((opened, inodes))
}
