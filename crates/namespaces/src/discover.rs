//! Discovery of every network namespace on the host.
//!
//! A network namespace lives as long as something refers to it, and each kind of reference
//! is found in its own place:
//!
//! 1. the processes in it: `/proc/PID/ns/net`;
//! 2. threads that moved into it alone (`setns` or `unshare` in one thread), while their
//!    process stayed elsewhere: `/proc/PID/task/TID/ns/net`, which `lsns` does not read;
//! 3. its names: `/run/netns/NAME`, as `ip netns` makes them;
//! 4. bind mounts of its nsfs file anywhere in the mount table (`/proc/self/mountinfo`), e.g.
//!    `unshare --net=FILE` or container runtimes' own directories;
//! 5. open descriptors of its nsfs file held by any process: `/proc/PID/fd/N`.
//!
//! Every namespace is identified by the device and inode of its nsfs file as `stat` gives
//! them, never by text alone, and one descriptor of it is kept open so that it can be joined
//! later even if everything else that held it goes away. The descriptor comes from the first
//! source that yields it, in the order above save that mount points come first (they include
//! `/run/netns`). A path is always opened the side-effect-free way: `O_PATH`, then `fstat`,
//! then reopened through `/proc/self/fd` only if it is an nsfs file, so a FIFO or a device
//! named by a mount point or swapped in behind a descriptor number is never opened for real.
//!
//! Processes and threads that exit during the scan, and processes whose files we may not
//! read, are left out silently. Everything is read through the helper's [`ProcRoot`].

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{
    open, openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag, AT_FDCWD,
};
use nix::sys::stat::{fstat, fstatat, lstat, FileStat, Mode, SFlag};

use crate::{sys, JoinPlan, NsError, NsType, ProcRoot};

/// Where `ip netns` keeps its names (`/var/run/netns` is a link to it).
const NETNS_RUN_DIR: &str = "/run/netns";

/// How much of `/proc/PID/cmdline` is read, as `lsns` reads it (`BUFSIZ`).
const COMMAND_MAX: u64 = 8192;

/// A namespace's identity: the device and inode of its nsfs file.
type Key = (u64, u64);

/// One network namespace and everything found that keeps it alive.
#[derive(Debug)]
pub struct FoundNetns {
    /// Device of its nsfs file (the same for every namespace).
    pub dev: u64,
    /// Inode of its nsfs file: the number in `net:[INODE]`, as `lsns` shows it.
    pub inode: u64,
    /// Its names: files in `/run/netns` that are it, sorted. Lossy UTF-8.
    pub names: Vec<String>,
    /// Every mount point in the mount table where its nsfs file is bind-mounted and still
    /// reachable by that path (`/run/netns/NAME` included), sorted. Lossy UTF-8.
    pub paths: Vec<String>,
    /// Processes (thread-group leaders) in it, sorted.
    pub pids: Vec<u32>,
    /// Threads in it whose process (its thread-group leader) is not, or has exited while
    /// they go on, sorted. `lsns` does not show these.
    pub thread_ids: Vec<u32>,
    /// Open descriptors of its nsfs file, as (pid, fd), sorted.
    pub fd_holders: Vec<(u32, u32)>,
    /// A descriptor of it, opened `O_RDONLY | O_CLOEXEC` and checked to be a network
    /// namespace.
    file: OwnedFd,
}

impl FoundNetns {
    /// A plan that joins this namespace (and only the network namespace), through a
    /// duplicate of the descriptor discovery opened, so it works even if the namespace has
    /// lost every other reference since.
    pub fn join_plan(&self) -> Result<JoinPlan, NsError> {
        let file = self.file.try_clone().map_err(|e| NsError::Sys {
            call: "dup",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        Ok(JoinPlan::for_opened_netns(file, self.inode))
    }

    /// As [`FoundNetns::join_plan`], through the descriptor discovery opened itself.
    pub fn into_join_plan(self) -> JoinPlan {
        JoinPlan::for_opened_netns(self.file, self.inode)
    }

    /// The descriptor of the namespace that discovery keeps open.
    pub fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn new(key: Key, file: OwnedFd) -> Self {
        FoundNetns {
            dev: key.0,
            inode: key.1,
            names: Vec::new(),
            paths: Vec::new(),
            pids: Vec::new(),
            thread_ids: Vec::new(),
            fd_holders: Vec::new(),
            file,
        }
    }

    fn finish(&mut self) {
        self.names.sort();
        self.names.dedup();
        self.paths.sort();
        self.paths.dedup();
        self.pids.sort_unstable();
        self.pids.dedup();
        self.thread_ids.sort_unstable();
        self.thread_ids.dedup();
        self.fd_holders.sort_unstable();
        self.fd_holders.dedup();
    }
}

/// Finds every network namespace on the host that a process, a thread, a name in
/// `/run/netns`, a bind mount in the mount table or an open descriptor keeps alive, each
/// once, sorted by inode.
///
/// Keeps one open descriptor per namespace found (in the returned values). Fails only if
/// `/proc` itself cannot be read, or on an error that is not a process vanishing or refusing
/// access (running out of descriptors, say), since the list would then be silently partial.
///
/// Namespaces that nothing listed above refers to are not found: one kept alive only by a
/// socket, by an nsfs mount in another mount namespace or a mount point hidden under another
/// mount, or by a descriptor in a thread that unshared its descriptor table.
///
/// `/proc` must be of our own pid namespace (its `self` is used), or this fails with
/// [`NsError::Proc`]. With more namespaces than free descriptors it fails with `EMFILE`.
pub fn discover_network_namespaces(proc: &ProcRoot) -> Result<Vec<FoundNetns>, NsError> {
    let own = fstatat(proc.dir(), "self/ns/net", AtFlags::empty()).map_err(NsError::Proc)?;
    let mut scan = Scan {
        proc,
        nsfs_dev: own.st_dev,
        index: HashMap::new(),
        mounted_at: HashMap::new(),
        found: Vec::new(),
        kept_fds: HashSet::new(),
        root_only_dirs: HashMap::new(),
    };

    // Our own descriptors are looked at before the scan opens one per namespace: listing
    // a thousand of them again would cost milliseconds, to find only what we opened.
    let own_pid = scan.own_descriptors()?;
    scan.mount_points()?;
    scan.run_netns()?;
    let pids = scan.pids()?;
    scan.processes(&pids)?;
    scan.threads(&pids)?;
    scan.descriptors(&pids, own_pid)?;

    let mut found = scan.found;
    for netns in &mut found {
        netns.finish();
    }
    found.sort_by_key(|netns| (netns.inode, netns.dev));
    Ok(found)
}

/// What `lsns` shows about a process, and its cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// As `lsns`'s COMMAND column shows it: the command line with its arguments joined by
    /// spaces, or for a process without one (a kernel thread, a zombie) its name from
    /// `/proc/PID/comm`, without brackets.
    pub command: String,
    /// The cgroup v2 path (the `0::` line of `/proc/PID/cgroup`), or on a v1-only host the
    /// path of the first line. Empty if it cannot be read.
    pub cgroup: String,
}

/// The command and cgroup of process `pid`; `None` if it is gone (or cannot be read at all).
///
/// Every file is read through one descriptor of `/proc/PID`, so all of it belongs to the same
/// process even if the number is reused meanwhile.
pub fn process_info(proc: &ProcRoot, pid: u32) -> Option<ProcessInfo> {
    let dir = openat(
        proc.dir(),
        pid.to_string().as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let command = match read_file(dir.as_fd(), "cmdline", COMMAND_MAX) {
        Ok(cmdline) if !cmdline.is_empty() => format_command(&cmdline),
        _ => format_comm(&read_file(dir.as_fd(), "comm", COMMAND_MAX).ok()?),
    };
    let cgroup = match read_file(dir.as_fd(), "cgroup", 1 << 20) {
        Ok(text) => cgroup_path(&text),
        Err(Errno::ENOENT | Errno::ESRCH) => return None,
        Err(_) => String::new(),
    };
    Some(ProcessInfo {
        pid,
        command,
        cgroup,
    })
}

/// The scan in progress: namespaces found so far, by identity.
struct Scan<'a> {
    proc: &'a ProcRoot,
    /// The device of nsfs, where every namespace file lives.
    nsfs_dev: u64,
    index: HashMap<Key, usize>,
    /// The namespace visible at each mount point found in the mount table.
    mounted_at: HashMap<PathBuf, usize>,
    found: Vec<FoundNetns>,
    /// Our own descriptors of the namespaces found, not to be reported as holders.
    kept_fds: HashSet<RawFd>,
    /// Directories found to be root's alone (see [`Scan::only_root_writes_above`]).
    root_only_dirs: HashMap<PathBuf, bool>,
}

impl Scan<'_> {
    /// Source 4: nsfs bind mounts of network namespaces in our mount table.
    fn mount_points(&mut self) -> Result<(), NsError> {
        let mountinfo =
            read_file(self.proc.dir(), "self/mountinfo", u64::MAX).map_err(|errno| {
                NsError::Open {
                    path: PathBuf::from("/proc/self/mountinfo"),
                    errno,
                }
            })?;
        for path in netns_mount_points(&mountinfo) {
            if let Some(index) = self.by_path(&path)? {
                self.found[index]
                    .paths
                    .push(path.to_string_lossy().into_owned());
                self.mounted_at.insert(path, index);
            }
        }
        Ok(())
    }

    /// Source 3: the names in `/run/netns`.
    fn run_netns(&mut self) -> Result<(), NsError> {
        let entries = match std::fs::read_dir(NETNS_RUN_DIR) {
            Ok(entries) => entries,
            // No names (or none we may see) is not an error: they are also mount points.
            Err(_) => return Ok(()),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let path = Path::new(NETNS_RUN_DIR).join(&name);
            // A name is almost always a mount point just opened for the mount table: what
            // is visible there is known, and opening it again per name cost three system
            // calls each, a thousand times over for a thousand names.
            let found = match self.mounted_at.get(&path) {
                Some(&index) => Some(index),
                None => self.by_path(&path)?,
            };
            if let Some(index) = found {
                self.found[index]
                    .names
                    .push(name.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }

    /// Every process number in `/proc`.
    fn pids(&self) -> Result<Vec<u32>, NsError> {
        let dir = openat(
            self.proc.dir(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(NsError::Proc)?;
        list_numbers(dir.as_fd()).map_err(NsError::Proc)
    }

    /// Source 1: `/proc/PID/ns/net`.
    fn processes(&mut self, pids: &[u32]) -> Result<(), NsError> {
        for &pid in pids {
            let relative = format!("{pid}/ns/net");
            let proc_dir = self.proc.dir();
            match self.by_link(proc_dir, &relative) {
                Ok(Some(index)) => self.found[index].pids.push(pid),
                Ok(None) => {}
                Err(errno) => check_process_error(errno, &relative)?,
            }
        }
        Ok(())
    }

    /// Source 2: threads whose `/proc/PID/task/TID/ns/net` differs from their leader's.
    fn threads(&mut self, pids: &[u32]) -> Result<(), NsError> {
        for &pid in pids {
            let relative = format!("{pid}/task");
            if let Err(errno) = self.threads_of(pid, &relative) {
                check_process_error(errno, &relative)?;
            }
        }
        Ok(())
    }

    fn threads_of(&mut self, pid: u32, relative: &str) -> Result<(), Errno> {
        // Everything below is looked up through this one descriptor of the thread group, so
        // it cannot mix up two processes that had the same number.
        let task_dir = openat(
            self.proc.dir(),
            relative,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let tids = list_numbers(task_dir.as_fd())?;
        if tids.iter().all(|&tid| tid == pid) {
            return Ok(());
        }
        let leader = match fstatat(
            task_dir.as_fd(),
            format!("{pid}/ns/net").as_str(),
            AtFlags::empty(),
        ) {
            Ok(stat) => Some((stat.st_dev, stat.st_ino)),
            // A leader that has exited while other threads go on (a zombie) has no namespaces.
            Err(Errno::ENOENT | Errno::ESRCH) => None,
            Err(errno) => return Err(errno),
        };
        for tid in tids.into_iter().filter(|&tid| tid != pid) {
            let index = match self.by_link(task_dir.as_fd(), &format!("{tid}/ns/net")) {
                Ok(Some(index)) => index,
                Ok(None) => continue,
                // This thread is gone or hidden; its siblings may not be.
                Err(errno) if vanished_or_denied(errno) => continue,
                Err(errno) => return Err(errno),
            };
            let netns = &mut self.found[index];
            if leader != Some((netns.dev, netns.inode)) {
                netns.thread_ids.push(tid);
            }
        }
        Ok(())
    }

    /// Source 5, for this process: the descriptors it was given (by whoever started it)
    /// that are network namespace files. Our pid, if `/proc/self` names it.
    fn own_descriptors(&mut self) -> Result<Option<u32>, NsError> {
        let own_pid = readlinkat(self.proc.dir(), "self")
            .ok()
            .and_then(|link| link.to_str().and_then(|s| s.parse::<u32>().ok()));
        if let Some(pid) = own_pid {
            let relative = format!("{pid}/fd");
            if let Err(errno) = self.descriptors_of(pid, &relative, true) {
                check_process_error(errno, &relative)?;
            }
        }
        Ok(own_pid)
    }

    /// Source 5: descriptors of network namespace files, `/proc/PID/fd/N`, of every process
    /// but ours (see [`Scan::own_descriptors`]).
    fn descriptors(&mut self, pids: &[u32], own_pid: Option<u32>) -> Result<(), NsError> {
        for &pid in pids {
            if own_pid == Some(pid) {
                continue;
            }
            let relative = format!("{pid}/fd");
            if let Err(errno) = self.descriptors_of(pid, &relative, false) {
                check_process_error(errno, &relative)?;
            }
        }
        Ok(())
    }

    fn descriptors_of(&mut self, pid: u32, relative: &str, ours: bool) -> Result<(), Errno> {
        let fd_dir = openat(
            self.proc.dir(),
            relative,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        for fd in list_numbers(fd_dir.as_fd())? {
            if ours && RawFd::try_from(fd).is_ok_and(|raw| self.kept_fds.contains(&raw)) {
                continue;
            }
            let name = fd.to_string();
            match self.by_fd_link(fd_dir.as_fd(), &name) {
                Ok(Some(index)) => self.found[index].fd_holders.push((pid, fd)),
                Ok(None) => {}
                // This descriptor was closed meanwhile; the others may still be there.
                Err(errno) if vanished_or_denied(errno) => {}
                Err(errno) => return Err(errno),
            }
        }
        Ok(())
    }

    /// The namespace behind a `ns/net` link under `dir`, which is always a network
    /// namespace: a `stat` when it is already known, else the link is opened.
    fn by_link(&mut self, dir: BorrowedFd<'_>, relative: &str) -> Result<Option<usize>, Errno> {
        let stat = fstatat(dir, relative, AtFlags::empty())?;
        if let Some(&index) = self.index.get(&(stat.st_dev, stat.st_ino)) {
            return Ok(Some(index));
        }
        // If the number was reused since the stat, this is the namespace of the process that
        // has it now, which is just as real; `adopt` goes by the file, not by the stat.
        let file = openat(
            dir,
            relative,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        self.adopt(file)
    }

    /// The namespace behind descriptor link `fd_dir/name`, if it is a network namespace
    /// file. The link's text is only a filter; the identity comes from `stat`.
    fn by_fd_link(&mut self, fd_dir: BorrowedFd<'_>, name: &str) -> Result<Option<usize>, Errno> {
        let target = readlinkat(fd_dir, name)?;
        if !target.as_bytes().starts_with(b"net:[") {
            return Ok(None);
        }
        let stat = fstatat(fd_dir, name, AtFlags::empty())?;
        if !self.is_nsfs_file(&stat) {
            return Ok(None);
        }
        if let Some(&index) = self.index.get(&(stat.st_dev, stat.st_ino)) {
            return Ok(Some(index));
        }
        // The descriptor may have been closed and its number reused for a FIFO or a device
        // since the stat: open it without side effects first.
        let handle = openat(
            fd_dir,
            name,
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        self.by_handle(handle.as_fd())
    }

    /// The namespace at `path` (a mount point or a name), if it is a network namespace.
    /// Paths that cannot be opened are skipped (a mount point may be hidden under another
    /// mount, or gone); only running out of resources is an error.
    fn by_path(&mut self, path: &Path) -> Result<Option<usize>, NsError> {
        let result = match self.by_path_directly(path) {
            Ok(found) => Ok(found),
            Err(errno) if out_of_resources(errno) => Err(errno),
            // A symbolic link, or a kernel without openat2.
            Err(_) => open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .and_then(|handle| self.by_handle(handle.as_fd())),
        };
        match result {
            Ok(found) => Ok(found),
            Err(errno) if out_of_resources(errno) => Err(NsError::Open {
                path: path.to_owned(),
                errno,
            }),
            Err(_) => Ok(None),
        }
    }

    /// [`Scan::by_path`] in four calls (a stat, an open, a stat of the open file and the
    /// ioctl of `adopt`), where going through an `O_PATH` handle takes six: a thousand mount
    /// points cost 20 ms that way, most of it reopening each handle through
    /// `/proc/self/fd`. Only for a path whose every directory belongs to root and lets
    /// nobody else rename what is in it: then nobody else can swap another file in between
    /// the stat, which found an nsfs file (a mount that only root can make), and the open,
    /// which follows no symbolic link, will not wait (a FIFO) and takes no terminal, and
    /// whose file must be the one found. Any other path goes through a handle
    /// (`Errno::EPERM`).
    fn by_path_directly(&mut self, path: &Path) -> Result<Option<usize>, Errno> {
        if !self.only_root_writes_above(path) {
            return Err(Errno::EPERM);
        }
        let stat = lstat(path)?;
        if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK {
            // A name may be a link to a namespace's file: the caller follows it by handle.
            return Err(Errno::ELOOP);
        }
        if !self.is_nsfs_file(&stat) {
            return Ok(None);
        }
        if let Some(&index) = self.index.get(&(stat.st_dev, stat.st_ino)) {
            return Ok(Some(index));
        }
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let file = openat2(AT_FDCWD, path, how)?;
        let opened = fstat(file.as_fd())?;
        let key = (opened.st_dev, opened.st_ino);
        if key != (stat.st_dev, stat.st_ino) {
            return Err(Errno::ESTALE);
        }
        self.adopt_as(file, key)
    }

    /// Whether every directory above `path` belongs to root and may be written by root alone,
    /// or is sticky (as the tmpfs an unprivileged `ip netns` setup mounts on /run/netns is),
    /// so that only the owner of an entry, root for a mount point, may rename it. Asked once
    /// per directory.
    fn only_root_writes_above(&mut self, path: &Path) -> bool {
        path.ancestors().skip(1).all(|dir| {
            if let Some(&safe) = self.root_only_dirs.get(dir) {
                return safe;
            }
            let safe = lstat(dir).is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
                    && st.st_uid == 0
                    && (st.st_mode & 0o022 == 0 || st.st_mode & 0o1000 != 0)
            });
            self.root_only_dirs.insert(dir.to_owned(), safe);
            safe
        })
    }

    /// The namespace behind an `O_PATH` handle, reopened for real only if it is an nsfs file
    /// not known yet.
    fn by_handle(&mut self, handle: BorrowedFd<'_>) -> Result<Option<usize>, Errno> {
        let stat = fstat(handle)?;
        if !self.is_nsfs_file(&stat) {
            return Ok(None);
        }
        if let Some(&index) = self.index.get(&(stat.st_dev, stat.st_ino)) {
            return Ok(Some(index));
        }
        // Reopening the O_PATH handle opens the very inode checked above.
        let file = openat(
            self.proc.dir(),
            format!("self/fd/{}", handle.as_raw_fd()).as_str(),
            OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        self.adopt(file)
    }

    /// Keeps `file` as the descriptor of a new namespace if it is a network namespace not
    /// known yet; returns the namespace it is, if a network namespace.
    fn adopt(&mut self, file: OwnedFd) -> Result<Option<usize>, Errno> {
        let stat = fstat(file.as_fd())?;
        self.adopt_as(file, (stat.st_dev, stat.st_ino))
    }

    /// As [`Self::adopt`], for a file whose device and inode `fstat` has just read.
    fn adopt_as(&mut self, file: OwnedFd, key: (u64, u64)) -> Result<Option<usize>, Errno> {
        if let Some(&index) = self.index.get(&key) {
            return Ok(Some(index));
        }
        match sys::namespace_type(file.as_fd()) {
            Ok(kind) if kind == NsType::Net.clone_flag().bits() => {}
            Ok(_) | Err(Errno::ENOTTY | Errno::EINVAL) => return Ok(None),
            Err(errno) => return Err(errno),
        }
        let index = self.found.len();
        self.kept_fds.insert(file.as_raw_fd());
        self.found.push(FoundNetns::new(key, file));
        self.index.insert(key, index);
        Ok(Some(index))
    }

    fn is_nsfs_file(&self, stat: &FileStat) -> bool {
        stat.st_dev == self.nsfs_dev
            && SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
    }
}

/// A process or thread that exited, or that we may not look into.
fn vanished_or_denied(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::ENOENT | Errno::ESRCH | Errno::EACCES | Errno::EPERM
    )
}

fn out_of_resources(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::EMFILE | Errno::ENFILE | Errno::ENOMEM | Errno::ENOBUFS
    )
}

/// Skips a process that vanished or refused access; anything else is an error.
fn check_process_error(errno: Errno, relative: &str) -> Result<(), NsError> {
    if vanished_or_denied(errno) {
        Ok(())
    } else {
        Err(NsError::Open {
            path: PathBuf::from(format!("/proc/{relative}")),
            errno,
        })
    }
}

/// Reads at most `limit` bytes of `relative` under `dir`.
fn read_file(dir: BorrowedFd<'_>, relative: &str, limit: u64) -> Result<Vec<u8>, Errno> {
    let file = openat(
        dir,
        relative,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut bytes = Vec::new();
    std::fs::File::from(file)
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(bytes)
}

/// The entries of `dir` whose names are decimal numbers (pids, tids, descriptors).
fn list_numbers(dir: BorrowedFd<'_>) -> Result<Vec<u32>, Errno> {
    let mut numbers = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let filled = match sys::getdents64(dir, &mut buf) {
            Ok(0) => return Ok(numbers),
            Ok(filled) => filled,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        };
        for_each_dirent_name(&buf[..filled], |name| {
            if let Some(number) = parse_number(name) {
                numbers.push(number);
            }
        });
    }
}

/// Calls `each` with the name of every `linux_dirent64` record in `buf`.
fn for_each_dirent_name(buf: &[u8], mut each: impl FnMut(&[u8])) {
    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const NAME_OFFSET: usize = 19;
    let mut rest = buf;
    while rest.len() >= NAME_OFFSET {
        let reclen = usize::from(u16::from_ne_bytes([rest[16], rest[17]]));
        if reclen < NAME_OFFSET || reclen > rest.len() {
            return;
        }
        let name = &rest[NAME_OFFSET..reclen];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        each(&name[..end]);
        rest = &rest[reclen..];
    }
}

fn parse_number(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// The mount points of the nsfs mounts of network namespaces in a mountinfo table, in table
/// order, unescaped.
fn netns_mount_points(mountinfo: &[u8]) -> Vec<PathBuf> {
    mountinfo
        .split(|&b| b == b'\n')
        .filter_map(parse_mountinfo_line)
        .filter(|mount| mount.fstype == b"nsfs" && mount.root.starts_with(b"net:["))
        .map(|mount| PathBuf::from(OsString::from_vec(mount.mount_point)))
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
struct MountInfo {
    /// Field 4: the root of the mount within its filesystem; `net:[INODE]` for nsfs.
    root: Vec<u8>,
    /// Field 5, unescaped.
    mount_point: Vec<u8>,
    /// The first field after the ` - ` separator.
    fstype: Vec<u8>,
}

/// Parses one line of `/proc/PID/mountinfo`:
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
fn parse_mountinfo_line(line: &[u8]) -> Option<MountInfo> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // Fields 1-6 come first, then zero or more optional fields ended by a lone "-".
    let separator = 6 + fields.get(6..)?.iter().position(|&f| f == b"-")?;
    let fstype = fields.get(separator + 1)?;
    Some(MountInfo {
        root: unescape_octal(fields[3]),
        mount_point: unescape_octal(fields[4]),
        fstype: unescape_octal(fstype),
    })
}

/// Undoes the kernel's escaping of space, tab, newline and backslash in mountinfo as
/// `\OOO` (three octal digits).
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            if let Some(digits) = field.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// `/proc/PID/cmdline` as `lsns` shows it: NULs become spaces, and the NUL that ends the
/// last argument is dropped.
///
/// `lsns` drops the last byte whatever it is; a process that rewrote its command line
/// without a final NUL (setproctitle) keeps its last character here.
fn format_command(cmdline: &[u8]) -> String {
    let cmdline = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
    let spaced: Vec<u8> = cmdline
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&spaced).into_owned()
}

/// `/proc/PID/comm` as `lsns` shows it: without the final newline and without brackets.
fn format_comm(comm: &[u8]) -> String {
    let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
    String::from_utf8_lossy(comm).into_owned()
}

/// The cgroup path of a `/proc/PID/cgroup` file: the v2 path (`0::/path`), unless it is the
/// root while a v1 hierarchy places the process deeper, as on hybrid hosts where container
/// runtimes put their ids in the v1 paths only.
fn cgroup_path(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let path_of = |line: &str| line.splitn(3, ':').nth(2).map(str::to_owned);
    let unified = text
        .lines()
        .find_map(|line| line.strip_prefix("0::").map(str::to_owned));
    let deepest_v1 = || {
        text.lines()
            .filter(|line| !line.starts_with("0::"))
            .filter_map(path_of)
            .find(|path| path != "/")
    };
    match unified {
        Some(path) if path != "/" => path,
        Some(root) => deepest_v1().unwrap_or(root),
        None => deepest_v1()
            .or_else(|| text.lines().next().and_then(path_of))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(line: &str) -> Option<MountInfo> {
        parse_mountinfo_line(line.as_bytes())
    }

    #[test]
    fn mountinfo_line_with_optional_fields() {
        let parsed = mount(concat!(
            "612 30 0:4 net:[4026532281] /run/netns/red rw ",
            "shared:5 master:1 propagate_from:2 - nsfs nsfs rw",
        ))
        .unwrap();
        assert_eq!(parsed.root, b"net:[4026532281]");
        assert_eq!(parsed.mount_point, b"/run/netns/red");
        assert_eq!(parsed.fstype, b"nsfs");
    }

    #[test]
    fn mountinfo_line_without_optional_fields() {
        let parsed = mount("36 35 98:0 /mnt1 /mnt2 rw,noatime - ext3 /dev/root rw").unwrap();
        assert_eq!(parsed.root, b"/mnt1");
        assert_eq!(parsed.mount_point, b"/mnt2");
        assert_eq!(parsed.fstype, b"ext3");
    }

    #[test]
    fn mountinfo_line_with_empty_source() {
        let parsed = mount("40 30 0:4 net:[7] /x rw unbindable - nsfs  rw").unwrap();
        assert_eq!(parsed.fstype, b"nsfs");
    }

    #[test]
    fn mountinfo_separator_is_a_lone_dash_after_the_sixth_field() {
        // A mount point or root of "-" (possible once escaped fields are counted) and
        // fields that merely contain a dash are not the separator.
        let parsed = mount("41 30 0:4 - /a-b rw,x-y shared:1 - tmpfs -tmp- rw").unwrap();
        assert_eq!(parsed.root, b"-");
        assert_eq!(parsed.mount_point, b"/a-b");
        assert_eq!(parsed.fstype, b"tmpfs");
    }

    #[test]
    fn malformed_mountinfo_lines_are_skipped() {
        assert_eq!(mount(""), None);
        assert_eq!(mount("1 2 0:4 net:[1] /x rw shared:1 nsfs nsfs rw"), None);
        assert_eq!(mount("1 2 0:4 net:[1] /x rw -"), None);
        assert_eq!(mount("1 2 0:4 net:[1] - -"), None);
    }

    #[test]
    fn mount_points_are_unescaped() {
        let parsed =
            mount(r"42 30 0:4 net:[8] /tmp/with\040space/a\134b\011c\012d rw - nsfs nsfs rw")
                .unwrap();
        assert_eq!(parsed.mount_point, b"/tmp/with space/a\\b\tc\nd");
    }

    #[test]
    fn unescaping_leaves_other_backslashes_alone() {
        assert_eq!(unescape_octal(br"a\9b"), b"a\\9b");
        assert_eq!(unescape_octal(br"a\04"), b"a\\04");
        assert_eq!(unescape_octal(br"\"), b"\\");
        assert_eq!(unescape_octal(br"\777"), b"\\777");
        assert_eq!(unescape_octal(br"\043x"), b"#x");
    }

    #[test]
    fn only_nsfs_mounts_of_network_namespaces_are_kept() {
        let table = concat!(
            "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n",
            "600 22 0:4 net:[4026532281] /run/netns/red rw shared:5 - nsfs nsfs rw\n",
            "601 22 0:4 uts:[4026532282] /tmp/uts rw - nsfs nsfs rw\n",
            "602 22 0:50 / /tmp/net:[4026532283] rw - tmpfs nsfs rw\n",
            "603 22 0:4 net:[4026532284] /tmp/my\\040ns rw - nsfs nsfs rw\n",
            "garbage\n",
        );
        assert_eq!(
            netns_mount_points(table.as_bytes()),
            vec![PathBuf::from("/run/netns/red"), PathBuf::from("/tmp/my ns")]
        );
    }

    #[test]
    fn command_joins_arguments_with_spaces() {
        assert_eq!(format_command(b"sleep\x00300\0"), "sleep 300");
        assert_eq!(
            format_command(b"/usr/bin/python3\0-c\0print(1)\0"),
            "/usr/bin/python3 -c print(1)"
        );
        // An empty argument shows as a double space, as in lsns.
        assert_eq!(format_command(b"a\0\0b\0"), "a  b");
    }

    #[test]
    fn rewritten_command_lines_keep_their_last_character() {
        assert_eq!(
            format_command(b"nginx: master process"),
            "nginx: master process"
        );
        // Padding NULs left by setproctitle become spaces, as in lsns.
        assert_eq!(
            format_command(b"postgres: writer\0\0\0"),
            "postgres: writer  "
        );
    }

    #[test]
    fn kernel_threads_show_their_name_without_brackets() {
        assert_eq!(format_comm(b"kthreadd\n"), "kthreadd");
        assert_eq!(format_comm(b"kworker/0:1-events\n"), "kworker/0:1-events");
    }

    #[test]
    fn cgroup_v2_path_is_preferred() {
        assert_eq!(
            cgroup_path(b"0::/system.slice/ssh.service\n"),
            "/system.slice/ssh.service"
        );
        assert_eq!(
            cgroup_path(b"12:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n"),
            "/c"
        );
        assert_eq!(
            cgroup_path(b"12:cpu,cpuacct:/a:b\n1:name=systemd:/b\n"),
            "/a:b"
        );
        assert_eq!(cgroup_path(b""), "");
        // Hybrid hosts: the unified root says nothing; the v1 path holds the container id.
        assert_eq!(
            cgroup_path(b"4:memory:/process_api/a7865032\n1:cpu:/\n0::/\n"),
            "/process_api/a7865032"
        );
        assert_eq!(cgroup_path(b"1:cpu:/\n0::/\n"), "/");
    }

    fn dirent(name: &[u8]) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        let mut record = vec![0u8; reclen];
        record[..8].copy_from_slice(&42u64.to_ne_bytes());
        record[16..18].copy_from_slice(&u16::try_from(reclen).unwrap().to_ne_bytes());
        record[19..19 + name.len()].copy_from_slice(name);
        record
    }

    #[test]
    fn dirent_records_are_parsed() {
        let mut buf = Vec::new();
        for name in [
            &b"."[..],
            b"..",
            b"1",
            b"self",
            b"4026531840",
            b"12345678901",
            b"17",
        ] {
            buf.extend(dirent(name));
        }
        let mut names = Vec::new();
        for_each_dirent_name(&buf, |name| names.push(name.to_vec()));
        assert_eq!(names.len(), 7);
        let numbers: Vec<u32> = names.iter().filter_map(|n| parse_number(n)).collect();
        assert_eq!(numbers, vec![1, 4026531840, 17]);
        // A truncated record ends the walk instead of reading past it.
        let mut names = 0;
        for_each_dirent_name(&buf[..buf.len() - 3], |_| names += 1);
        assert_eq!(names, 6);
    }

    fn own_netns(proc: &ProcRoot) -> Key {
        let stat = fstatat(proc.dir(), "thread-self/ns/net", AtFlags::empty()).unwrap();
        (stat.st_dev, stat.st_ino)
    }

    #[test]
    fn finds_our_own_namespace_process_and_descriptor() {
        let proc = ProcRoot::open().unwrap();
        let held = open(
            "/proc/self/ns/net",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let found = discover_network_namespaces(&proc).unwrap();
        let pid = std::process::id();
        let ours = found
            .iter()
            .find(|netns| (netns.dev, netns.inode) == own_netns(&proc))
            .expect("our namespace is found");
        assert!(ours.pids.contains(&pid));
        let held_fd = u32::try_from(held.as_raw_fd()).unwrap();
        let own_holders: Vec<u32> = ours
            .fd_holders
            .iter()
            .filter(|(holder, _)| *holder == pid)
            .map(|(_, fd)| *fd)
            .collect();
        // Our descriptor is reported; the ones discovery keeps are not.
        assert_eq!(own_holders, vec![held_fd]);
        assert!(found.windows(2).all(|w| w[0].inode < w[1].inode));
        for netns in &found {
            assert_eq!(fstat(netns.file()).unwrap().st_ino, netns.inode);
        }
        let plan = ours.join_plan().unwrap();
        assert_eq!(plan.joins.len(), 1);
        assert_eq!(plan.joins[0].kind, NsType::Net);
        assert_eq!(plan.reported(), &[NsType::Net, NsType::Pid, NsType::Mnt]);
    }

    #[test]
    fn finds_a_thread_that_moved_alone() {
        use std::sync::mpsc;
        let proc = ProcRoot::open().unwrap();
        let (moved_tx, moved_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let result = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET);
            let tid = nix::unistd::gettid().as_raw();
            moved_tx.send(result.map(|()| tid)).unwrap();
            let _ = done_rx.recv();
        });
        let tid = match moved_rx.recv().unwrap() {
            Ok(tid) => u32::try_from(tid).unwrap(),
            Err(errno) => {
                // As the integration tests' require_root: CI must have the privilege.
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "cannot unshare a network namespace under CI=true: {errno}"
                );
                eprintln!("skipped: cannot unshare a network namespace: {errno}");
                drop(done_tx);
                thread.join().unwrap();
                return;
            }
        };
        let found = discover_network_namespaces(&proc).unwrap();
        drop(done_tx);
        thread.join().unwrap();
        let moved: Vec<&FoundNetns> = found
            .iter()
            .filter(|n| n.thread_ids.contains(&tid))
            .collect();
        assert_eq!(moved.len(), 1);
        assert_ne!((moved[0].dev, moved[0].inode), own_netns(&proc));
        assert!(moved[0].pids.is_empty());
        let ours = found
            .iter()
            .find(|netns| (netns.dev, netns.inode) == own_netns(&proc))
            .unwrap();
        assert!(!ours.thread_ids.contains(&tid));
    }

    #[test]
    fn process_info_of_ourselves() {
        let proc = ProcRoot::open().unwrap();
        let pid = std::process::id();
        let info = process_info(&proc, pid).unwrap();
        assert_eq!(info.pid, pid);
        let exe = std::env::args().next().unwrap();
        assert!(info.command.starts_with(&exe), "{info:?}");
        assert!(info.cgroup.starts_with('/'), "{info:?}");
        assert_eq!(process_info(&proc, u32::MAX), None);
    }
}
