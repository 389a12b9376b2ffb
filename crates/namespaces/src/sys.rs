//! Every `unsafe` block of nshelper. Each wraps one system call that nix does not offer
//! safely, and says why the call is sound.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::ForkResult;

/// `pidfd_open(2)` flag for a thread rather than a thread-group leader (Linux 6.9).
pub const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// `NS_GET_NSTYPE` from `linux/nsfs.h`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Forks the process, after checking that it is single-threaded.
///
/// The child must end with [`exit_now`], never by returning into the caller's frames.
pub fn fork(proc: &crate::ProcRoot) -> Result<ForkResult, crate::NsError> {
    check_single_threaded(proc)?;
    // SAFETY: the process has just been found single-threaded, so no other thread can hold
    // a lock (the allocator's included) that the child would inherit in a locked state. The
    // engine's children only run its own code and leave through `exit_now`.
    unsafe { nix::unistd::fork() }.map_err(|errno| crate::NsError::Sys {
        call: "fork",
        errno,
    })
}

/// Forks the process as a sibling rather than a child (`clone(2)` with `CLONE_PARENT`): the
/// new process is a child of the caller's parent, which reaps it and gets its exit status,
/// so that the caller may exit at once. Checks first that the process is single-threaded.
///
/// The child must end with [`exit_now`], never by returning into the caller's frames.
pub fn fork_sibling(proc: &crate::ProcRoot) -> Result<ForkResult, crate::NsError> {
    check_single_threaded(proc)?;
    let flags = libc::c_ulong::try_from(libc::CLONE_PARENT | libc::SIGCHLD).unwrap_or(0);
    // SAFETY: with no new stack and no CLONE_VM, clone copies the address space and the child
    // returns here on its own copy of the stack, exactly as from fork(2). What fork adds in
    // glibc is for threads (atfork handlers, lock resets) and the process is single-threaded,
    // as just checked; glibc's raise and abort ask the kernel for the thread id rather than
    // trusting the one cached in the thread block, which is the caller's in the child. The
    // engine's children only run its own code and leave through `exit_now`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0 as libc::c_ulong,
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match Errno::result(rc) {
        Ok(0) => Ok(ForkResult::Child),
        Ok(child) => Ok(ForkResult::Parent {
            child: nix::unistd::Pid::from_raw(libc::pid_t::try_from(child).map_err(|_| {
                crate::NsError::Sys {
                    call: "clone",
                    errno: Errno::EOVERFLOW,
                }
            })?),
        }),
        Err(errno) => Err(crate::NsError::Sys {
            call: "clone",
            errno,
        }),
    }
}

/// Fails unless the process has exactly one thread: a fork copies only the calling thread,
/// and a lock another one held (the allocator's included) would stay locked in the child.
fn check_single_threaded(proc: &crate::ProcRoot) -> Result<(), crate::NsError> {
    let threads = proc
        .own_thread_count()
        .map_err(|errno| crate::NsError::Sys {
            call: "count threads",
            errno,
        })?;
    if threads != 1 {
        return Err(crate::NsError::NotSingleThreaded(threads));
    }
    Ok(())
}

/// Ends the process at once, without running exit handlers or flushing stdio buffers that
/// a forked child shares with its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no pointers and cannot fail; skipping atexit handlers is the
    // point, since they belong to the parent.
    unsafe { libc::_exit(code) }
}

/// A descriptor that refers to process `pid` for as long as it is open, whatever happens to
/// the number.
pub fn pidfd_open(pid: libc::pid_t, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1; it does not
    // touch our memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    let fd = Errno::result(fd)?;
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Checks that the process behind a pidfd is still alive, by sending it signal 0.
pub fn pidfd_alive(pidfd: BorrowedFd<'_>) -> Result<(), Errno> {
    pidfd_signal(pidfd, 0)
}

/// Sends `signal` to the process behind a pidfd: never to another process that reused its
/// number.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> Result<(), Errno> {
    // SAFETY: a null siginfo pointer is allowed and means "as kill(2) would". The
    // descriptor is borrowed, so it stays open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// The `CLONE_NEW*` type of a namespace file; `ENOTTY` when it is not a namespace file.
pub fn namespace_type(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns an integer; the descriptor
    // is borrowed, so it stays open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    Errno::result(rc)
}

/// How a child ended, decoded from the raw wait status so that every signal number, the
/// real-time ones included, comes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    Exited(i32),
    Signaled(i32),
}

/// Waits for (and reaps) a child: `pid` as `waitpid(2)` takes it, so `-pgid` means any child
/// in that process group. Stopped and continued children are waited past.
pub fn wait_child(pid: libc::pid_t) -> Result<(libc::pid_t, ChildExit), Errno> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a live, writable c_int for the duration of the call, which is
        // all waitpid writes.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        match Errno::result(rc) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
            Ok(child) if libc::WIFEXITED(status) => {
                return Ok((child, ChildExit::Exited(libc::WEXITSTATUS(status))))
            }
            Ok(child) if libc::WIFSIGNALED(status) => {
                return Ok((child, ChildExit::Signaled(libc::WTERMSIG(status))))
            }
            Ok(_) => continue,
        }
    }
}

/// Reads the next directory entries of `dir` (opened `O_RDONLY | O_DIRECTORY`) into `buf` as
/// `linux_dirent64` records, and returns how many bytes were filled: 0 at the end.
///
/// This lists a directory found relative to a descriptor (`/proc/PID/fd` under the helper's
/// own `/proc`), which `std::fs::read_dir` cannot.
pub fn getdents64(dir: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    let len = libc::c_uint::try_from(buf.len()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: the kernel writes at most `len` bytes, no more than the length of `buf`, which
    // is a live, exclusively borrowed, writable slice for the duration of the call; the
    // descriptor is borrowed, so it stays open for the call.
    let rc = unsafe { libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), buf.as_mut_ptr(), len) };
    let filled = Errno::result(rc)?;
    usize::try_from(filled).map_err(|_| Errno::EINVAL)
}

/// `SO_NETNS_COOKIE` (Linux 5.14): the cookie of the network namespace a socket belongs to,
/// which, unlike an inode number, is never reused while the system runs.
pub fn netns_cookie(socket: &impl AsRawFd) -> Result<u64, Errno> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are live and writable for the call, `len` holds the size of
    // `cookie`, and the kernel writes at most `len` bytes. `socket` is borrowed, so its
    // descriptor stays open for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    Errno::result(rc)?;
    Ok(cookie)
}

/// Defines the C `main` of a binary that has `#![no_main]`: it calls [`prepare_process`],
/// then `$run` with what that found, and exits with the status `$run` returns (101 if it
/// panics, as Rust's own `main` would).
///
/// Rust's runtime start-up, skipped this way, reads /proc/self/maps to find the main
/// thread's stack, maps an alternate signal stack and installs SIGSEGV and SIGBUS handlers,
/// all for a "stack overflow" message. Here that was 0.3 ms of a 2.4 ms one-container
/// query. What else it does that matters is done by [`prepare_process`]. The arguments are
/// still there: std reads them from an `.init_array` hook, which glibc runs for any entry
/// (static or not); with another C library they would not be, so it does not build there.
/// The main thread has no name: a panic there says `thread '<unnamed>' panicked`, and a
/// stack overflow is a plain SIGSEGV without std's message.
#[macro_export]
macro_rules! entry_point {
    ($run:path) => {
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        compile_error!("entry_point! relies on glibc running std's argument hook");
        // SAFETY: the C runtime calls `main` once, on the main thread, after glibc has set
        // itself up; the binary has `#![no_main]`, so this is the only `main` symbol, and the
        // function cannot unwind into C: a panic is caught and becomes status 101.
        #[unsafe(no_mangle)]
        extern "C" fn main(
            _argc: ::std::ffi::c_int,
            _argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            let closed = $crate::prepare_process();
            let status = ::std::panic::catch_unwind(|| $run(closed)).unwrap_or(101);
            // Flushes std's stdout, as returning from Rust's `main` would.
            ::std::process::exit(status)
        }
    };
}

/// Which standard descriptors (0, 1, 2) were closed when the process started. Each is open
/// on /dev/null now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClosedAtStart {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// What Rust's runtime start-up does that nshelper relies on, for a binary whose entry is
/// [`entry_point!`]:
///
/// - a closed 0, 1 or 2 is opened on /dev/null, so that no descriptor the helper opens
///   later (a namespace file, the report pipe) takes its number and gets written as stdout;
///   it aborts if /dev/null cannot be opened, as std does;
/// - SIGPIPE is ignored, so that a reader that went away is an EPIPE to report (exit status
///   1 and one line on stderr), not a silent death.
pub fn prepare_process() -> ClosedAtStart {
    let mut closed = [false; 3];
    for (fd, was_closed) in (0..3).zip(closed.iter_mut()) {
        // SAFETY: F_GETFD reads a descriptor's flags and touches no memory of ours.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && Errno::last() == Errno::EBADF {
            *was_closed = true;
            // SAFETY: the path is a NUL-terminated literal. The lowest free number is `fd`,
            // because every lower one is open: checked, or opened here, in turn.
            let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if opened != fd {
                std::process::abort();
            }
        }
    }
    // SAFETY: SIG_IGN installs no handler, so no code of ours runs in signal context.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    ClosedAtStart {
        stdin: closed[0],
        stdout: closed[1],
        stderr: closed[2],
    }
}

/// Restores the default action of SIGPIPE, which [`prepare_process`] ignores in nshelper's
/// own process, so that a command run for the user dies of a closed pipe as it would elsewhere.
pub fn default_sigpipe() -> Result<(), Errno> {
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run in signal context;
    // the call only changes this process's disposition of one signal.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if previous == libc::SIG_ERR {
        return Err(Errno::last());
    }
    Ok(())
}

/// Marks every descriptor from `first` up as close-on-exec (`close_range(2)`, Linux 5.11),
/// whoever opened it, so that a command run for the user inherits only 0, 1 and 2.
pub fn cloexec_from(first: libc::c_uint) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes three integers and touches no memory of ours; with
    // CLOSE_RANGE_CLOEXEC it closes nothing, so no OwnedFd is invalidated.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(rc).map(drop)
}

/// Closes every descriptor from 3 up except those in `keep`, whoever opened them.
pub fn close_all_except(keep: &[std::os::fd::RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<libc::c_uint> = keep
        .iter()
        .filter_map(|&fd| libc::c_uint::try_from(fd).ok())
        .filter(|&fd| fd >= 3)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first: libc::c_uint = 3;
    for &kept in keep.iter().chain(std::iter::once(&libc::c_uint::MAX)) {
        if kept > first {
            let last = kept - 1;
            // SAFETY: close_range takes three integers and touches no memory of ours. The
            // caller is a freshly forked child that will not use, or drop, any OwnedFd
            // outside `keep`, so no live owner is left holding a closed number.
            let rc =
                unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
            Errno::result(rc)?;
        }
        first = kept.saturating_add(1);
    }
    Ok(())
}
