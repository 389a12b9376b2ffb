use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use crate::{sys, NsError, NsType};

/// `/proc` as the helper saw it at start.
///
/// Kept open so that the query process, after joining a mount namespace with another (or
/// no) `/proc`, can still read its own namespaces through the helper's `/proc`.
pub struct ProcRoot {
    dir: OwnedFd,
}

impl AsRawFd for ProcRoot {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.dir.as_raw_fd()
    }
}

impl ProcRoot {
    pub fn open() -> Result<Self, NsError> {
        let dir = open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(NsError::Proc)?;
        Ok(ProcRoot { dir })
    }

    /// The inode of the namespace of `kind` that the calling thread is in.
    pub fn own_namespace_inode(&self, kind: NsType) -> Result<u64, Errno> {
        let path = format!("thread-self/ns/{}", kind.name());
        fstatat(self.dir.as_fd(), path.as_str(), AtFlags::empty()).map(|st| st.st_ino)
    }

    /// A descriptor of the calling thread's own namespace of `kind`.
    pub fn open_own_namespace(&self, kind: NsType) -> Result<OwnedFd, Errno> {
        self.open_in(&format!("thread-self/ns/{}", kind.name()), OFlag::O_RDONLY)
    }

    /// Whether our children are born in our own pid namespace, so that a pid a child sees
    /// for its own child is one we see too. Not so under `nsenter -p -F` or after
    /// `unshare(CLONE_NEWPID)`, for instance.
    pub fn children_share_our_pid_namespace(&self) -> bool {
        let inode = |path: &str| {
            fstatat(self.dir.as_fd(), path, AtFlags::empty()).map(|st| (st.st_dev, st.st_ino))
        };
        match (
            inode("thread-self/ns/pid"),
            inode("thread-self/ns/pid_for_children"),
        ) {
            (Ok(own), Ok(children)) => own == children,
            _ => false,
        }
    }

    /// Whether this `/proc` numbers processes as our own pid namespace does.
    pub fn is_of_own_pid_namespace(&self) -> bool {
        let own = nix::unistd::getpid().as_raw().to_string();
        nix::fcntl::readlinkat(self.dir.as_fd(), "self").is_ok_and(|pid| pid == own.as_str())
    }

    /// Whether `pid` is a kernel thread (`PF_KTHREAD` in the flags of `/proc/PID/stat`).
    pub fn is_kernel_thread(&self, pid: u32) -> bool {
        const PF_KTHREAD: u64 = 0x0020_0000;
        let Ok(fd) = self.open_in(&format!("{pid}/stat"), OFlag::O_RDONLY) else {
            return false;
        };
        let Ok(stat) = std::io::read_to_string(std::fs::File::from(fd)) else {
            return false;
        };
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        // Then come state, ppid, pgrp, session, tty_nr, tpgid and flags.
        stat.rsplit_once(')')
            .and_then(|(_, fields)| fields.split_whitespace().nth(6))
            .and_then(|flags| flags.parse::<u64>().ok())
            .is_some_and(|flags| flags & PF_KTHREAD != 0)
    }

    /// The number of threads of the calling process.
    pub fn own_thread_count(&self) -> Result<usize, Errno> {
        // The task directory's link count is two plus the number of threads: one stat
        // instead of reading and parsing the whole status file on every fork.
        let task = fstatat(self.dir.as_fd(), "self/task", AtFlags::empty())?;
        if let Some(threads) = usize::try_from(task.st_nlink)
            .ok()
            .and_then(|links| links.checked_sub(2))
            .filter(|threads| *threads > 0)
        {
            return Ok(threads);
        }
        self.own_thread_count_from_status()
    }

    fn own_thread_count_from_status(&self) -> Result<usize, Errno> {
        let fd = openat(
            self.dir.as_fd(),
            "self/status",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let status = std::io::read_to_string(std::fs::File::from(fd))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|count| count.trim().parse().ok())
            .ok_or(Errno::EINVAL)
    }

    fn open_in(&self, path: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
        openat(
            self.dir.as_fd(),
            path,
            flags | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }
}

/// A namespace file opened before anything changed, and its type.
pub(crate) struct OpenedNamespace {
    pub(crate) kind: NsType,
    /// Shared with whoever else keeps the namespace open (see
    /// [`JoinPlan::shared_net_namespace`]), so that it takes one descriptor, not two.
    pub(crate) file: Arc<OwnedFd>,
}

/// Everything the child needs to enter a target: namespace files opened up front, in the
/// order they are to be joined, and which namespaces the query process reports.
pub struct JoinPlan {
    pub(crate) joins: Vec<OpenedNamespace>,
    reported: Vec<NsType>,
    /// The process the plan came from, pinned, to tell a failure caused by its death.
    pub(crate) pin: Option<Pin>,
    /// The inode of the network namespace joined, when whoever opened it already knew it.
    net_inode: Option<u64>,
}

/// A process held by a pidfd, whose number can never come to mean another process.
pub(crate) struct Pin {
    pid: u32,
    fd: OwnedFd,
}

impl Pin {
    /// `ProcessExited` when the pinned process is gone; `error` otherwise. A process that
    /// exits while it is being entered makes joining or forking fail in odd ways (a pid
    /// namespace whose init is gone refuses forks with ENOMEM): its death is the cause.
    pub(crate) fn explain(&self, error: NsError) -> NsError {
        // Only ESRCH means gone: the caller may have given up the privilege to signal another
        // user's process, and EPERM then says nothing about its life.
        if sys::pidfd_alive(self.fd.as_fd()) == Err(Errno::ESRCH) {
            NsError::ProcessExited { pid: self.pid }
        } else {
            error
        }
    }
}

/// Joined for a process unless the caller picks others, and reported for every target: the
/// network namespace that is listed, and the pid and mount namespaces that show where the
/// query process really was.
pub const DEFAULT_PROCESS_NAMESPACES: [NsType; 3] = [NsType::Net, NsType::Pid, NsType::Mnt];
const ALWAYS_REPORTED: [NsType; 3] = DEFAULT_PROCESS_NAMESPACES;

impl JoinPlan {
    /// Stay in the helper's own namespaces.
    pub fn own_namespaces() -> Self {
        JoinPlan {
            joins: Vec::new(),
            reported: ALWAYS_REPORTED.to_vec(),
            pin: None,
            net_inode: None,
        }
    }

    /// The namespaces of `kinds` of process (or thread) `pid`.
    pub fn for_process(proc: &ProcRoot, pid: u32, kinds: &[NsType]) -> Result<Self, NsError> {
        if pid == 0 {
            return Err(NsError::PidZero);
        }
        let raw_pid = libc::pid_t::try_from(pid).map_err(|_| NsError::NoSuchProcess { pid })?;
        // Pinning the process first means the files opened below can be checked to belong
        // to it, and not to a process that reused its number.
        // /proc/PID must name the process the pidfd pins: both number processes in the
        // pid namespace of the /proc mount only when that is our own.
        if !proc.is_of_own_pid_namespace() {
            return Err(NsError::ForeignProc);
        }
        // PIDFD_THREAD (Linux 6.9) also pins a thread that is not its group's leader, which
        // may have moved to namespaces of its own; older kernels refuse the flag.
        let pidfd = match sys::pidfd_open(raw_pid, sys::PIDFD_THREAD) {
            Err(Errno::EINVAL) => sys::pidfd_open(raw_pid, 0),
            other => other,
        }
        .map_err(|errno| match errno {
            Errno::ESRCH | Errno::EINVAL => NsError::NoSuchProcess { pid },
            errno => NsError::Pin { pid, errno },
        })?;

        if proc.is_kernel_thread(pid) {
            return Err(NsError::KernelThread { pid });
        }
        let mut wanted = kinds.to_vec();
        wanted.sort();
        wanted.dedup();
        let mut joins = Vec::with_capacity(wanted.len());
        for kind in &wanted {
            let relative = format!("{pid}/ns/{}", kind.name());
            let file = proc.open_in(&relative, OFlag::O_RDONLY).map_err(|errno| {
                if errno == Errno::ENOENT && sys::pidfd_alive(pidfd.as_fd()).is_err() {
                    NsError::ProcessExited { pid }
                } else {
                    NsError::Open {
                        path: PathBuf::from(format!("/proc/{relative}")),
                        errno,
                    }
                }
            })?;
            // setns into the user namespace one is already in fails, and is not needed.
            if *kind == NsType::User && same_namespace(proc, &file, NsType::User)? {
                continue;
            }
            joins.push(OpenedNamespace {
                kind: *kind,
                file: Arc::new(file),
            });
        }
        if sys::pidfd_alive(pidfd.as_fd()).is_err() {
            return Err(NsError::ProcessExited { pid });
        }
        let mut reported = ALWAYS_REPORTED.to_vec();
        reported.extend(wanted.iter().copied());
        reported.sort();
        reported.dedup();
        Ok(JoinPlan {
            joins,
            reported,
            pin: Some(Pin { pid, fd: pidfd }),
            net_inode: None,
        })
    }

    /// A network namespace file: `/run/netns/NAME`, `/proc/PID/ns/net` or a bind mount.
    pub fn for_netns_file(proc: &ProcRoot, path: &Path) -> Result<Self, NsError> {
        // A name must not climb out of /run/netns, and a path with .. says something other
        // than what it seems: both are refused rather than resolved.
        if path
            .components()
            .any(|part| part == std::path::Component::ParentDir)
        {
            return Err(NsError::ParentDirectory {
                path: path.to_owned(),
            });
        }
        let file = open_namespace_file(proc, path)?;
        let raw_type = sys::namespace_type(file.as_fd()).map_err(|errno| match errno {
            Errno::ENOTTY | Errno::EINVAL => NsError::NotNamespace {
                path: path.to_owned(),
            },
            errno => NsError::Open {
                path: path.to_owned(),
                errno,
            },
        })?;
        if raw_type != NsType::Net.clone_flag().bits() {
            let found = NsType::from_clone_flag(raw_type)
                .map(|k| k.name().to_owned())
                .unwrap_or_else(|| format!("{raw_type:#x}"));
            return Err(NsError::WrongType {
                path: path.to_owned(),
                found,
                wanted: NsType::Net,
            });
        }
        Ok(JoinPlan {
            joins: vec![OpenedNamespace {
                kind: NsType::Net,
                file: Arc::new(file),
            }],
            reported: ALWAYS_REPORTED.to_vec(),
            pin: None,
            net_inode: None,
        })
    }

    /// Whether the plan joins a network namespace and nothing else, which needs no fork.
    pub fn joins_network_namespace_only(&self) -> bool {
        matches!(self.joins.as_slice(), [only] if only.kind == NsType::Net)
    }

    /// The network namespace this plan joins, if it joins one.
    pub fn net_namespace(&self) -> Option<BorrowedFd<'_>> {
        self.joins
            .iter()
            .find(|opened| opened.kind == NsType::Net)
            .map(|opened| opened.file.as_fd())
    }

    /// The descriptor of the network namespace the plan joins, if it joins one, for a caller
    /// that keeps it open as long as it needs, whatever becomes of the plan.
    pub fn shared_net_namespace(&self) -> Option<Arc<OwnedFd>> {
        self.joins
            .iter()
            .find(|opened| opened.kind == NsType::Net)
            .map(|opened| Arc::clone(&opened.file))
    }

    /// The inode of the network namespace the plan joins, if it joins one: known from when
    /// it was opened, or else read with `fstat`.
    pub fn net_namespace_inode(&self) -> Option<u64> {
        self.net_inode.or_else(|| {
            self.net_namespace()
                .and_then(|file| fstat(file).ok())
                .map(|st| st.st_ino)
        })
    }

    /// The namespace types the query process reports inodes for.
    pub fn reported(&self) -> &[NsType] {
        &self.reported
    }

    /// The namespaces the plan joins, in order, each with its file's inode (0 when fstat
    /// fails): for diagnostics.
    pub fn joins(&self) -> Vec<(NsType, u64)> {
        self.joins
            .iter()
            .map(|opened| {
                (
                    opened.kind,
                    fstat(opened.file.as_fd()).map_or(0, |st| st.st_ino),
                )
            })
            .collect()
    }
}

/// Opens a file that should be a namespace without side effects: a FIFO or a device named
/// by mistake must not block or be opened for real.
fn open_namespace_file(proc: &ProcRoot, path: &Path) -> Result<OwnedFd, NsError> {
    let open_error = |errno| NsError::Open {
        path: path.to_owned(),
        errno,
    };
    let handle = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(open_error)?;
    let stat = fstat(handle.as_fd()).map_err(open_error)?;
    if !is_regular(&stat) {
        return Err(NsError::NotNamespace {
            path: path.to_owned(),
        });
    }
    // Reopening the O_PATH handle opens the very inode checked above, even if the path has
    // changed since.
    let reopen = format!("self/fd/{}", handle.as_raw_fd());
    proc.open_in(&reopen, OFlag::O_RDONLY | OFlag::O_NOCTTY)
        .map_err(open_error)
}

fn is_regular(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
}

fn same_namespace(proc: &ProcRoot, file: &OwnedFd, kind: NsType) -> Result<bool, NsError> {
    let theirs = fstat(file.as_fd()).map_err(|errno| NsError::Sys {
        call: "fstat",
        errno,
    })?;
    let ours = fstatat(
        proc.dir.as_fd(),
        format!("self/ns/{}", kind.name()).as_str(),
        AtFlags::empty(),
    )
    .map_err(|errno| NsError::Sys {
        call: "stat own namespace",
        errno,
    })?;
    Ok((theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino))
}

impl ProcRoot {
    /// The `/proc` directory itself (an `O_PATH` descriptor), for lookups relative to it.
    pub(crate) fn dir(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl JoinPlan {
    /// Joins only the network namespace open in `file`.
    ///
    /// The caller must have checked that `file` is a network namespace (`NS_GET_NSTYPE`), as
    /// namespace discovery does for every descriptor it keeps.
    /// `inode` is the namespace's inode (from a `stat` of `file`).
    pub(crate) fn for_opened_netns(file: OwnedFd, inode: u64) -> Self {
        JoinPlan {
            joins: vec![OpenedNamespace {
                kind: NsType::Net,
                file: Arc::new(file),
            }],
            reported: ALWAYS_REPORTED.to_vec(),
            pin: None,
            net_inode: Some(inode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_from_the_task_directory_agrees_with_status() {
        let proc = ProcRoot::open().expect("open /proc");
        let before = proc.own_thread_count().expect("count threads");
        assert_eq!(Ok(before), proc.own_thread_count_from_status());
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let extra = std::thread::spawn(move || wait.recv());
        let during = proc.own_thread_count().expect("count threads");
        assert_eq!(during, before + 1);
        assert_eq!(Ok(during), proc.own_thread_count_from_status());
        drop(stop);
        let _ = extra.join();
    }
}
