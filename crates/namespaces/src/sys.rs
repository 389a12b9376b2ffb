//! Every `unsafe` block of nshelper. Each wraps one system call that nix does not offer
//! safely, and says why the call is sound.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::ForkResult;

/// `pidfd_open(2)` flag for a thread rather than a thread-group leader (Linux 6.9).
pub const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// `NS_GET_NSTYPE` from `linux/nsfs.h`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Forks the process.
///
/// Callers must have checked that the process is single-threaded (see
/// [`crate::engine`]), so the child cannot inherit a lock held by another thread, and must
/// end the child with [`exit_now`].
pub fn fork() -> Result<ForkResult, Errno> {
    // SAFETY: the engine asserts the process is single-threaded before calling this, so no
    // other thread can hold a lock (the allocator's included) that the child would inherit
    // in a locked state. The child only runs the engine's own code and leaves through
    // `exit_now`, never returning into the caller's stack frames.
    unsafe { nix::unistd::fork() }
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
    // SAFETY: a null siginfo pointer is allowed and means "as kill(2) would"; signal 0 sends
    // nothing. The descriptor is borrowed, so it stays open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
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
