//! Running a user's command inside a target's namespaces, in place of `nsenter` and
//! `ip netns exec`.
//!
//! The shape is the query engine's: the parent forks a middle process that joins the
//! namespaces (and, for a network namespace file, sets up a private mount namespace with a
//! fresh `/sys` as `ip netns exec` does), which forks the command, so that the command is a
//! real member of the target's pid namespace. The parent passes signals on and exits with
//! the command's status.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{execvp, execvpe, getpid, getsid, pipe2, read, write, ForkResult, Pid};

use crate::engine::{
    decode_errno, die_with, errno_bytes, in_child, namespace_errno, send_and_exit,
};
use crate::sys::{self, ChildExit};
use crate::{JoinPlan, NsError, ProcRoot};

/// How the mount namespace is prepared before the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSetup {
    /// Nothing beyond the namespaces joined (`--pid`): the command sees the target's mounts.
    Joined,
    /// As `ip netns exec`: a private mount namespace, a `/sys` of the network namespace,
    /// and, for a named namespace, `/etc/netns/NAME/*` bound over `/etc`.
    NetnsExec { name: Option<String> },
}

pub struct ExecRequest {
    /// The command and its arguments; the command is looked up in `PATH` inside the target.
    pub argv: Vec<CString>,
    /// The environment to give it; `None` passes nshelper's own.
    pub env: Option<Vec<CString>>,
    pub mounts: MountSetup,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Namespaces(#[from] NsError),
    #[error("cannot {step}: {errno}")]
    Setup { step: &'static str, errno: Errno },
    #[error("{command}: command not found in the target")]
    NotFound { command: String },
    #[error("{command}: cannot execute: {errno}")]
    CannotExecute { command: String, errno: Errno },
}

/// The signals nshelper passes on to the command when they are sent to nshelper itself.
const FORWARDED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];
/// `si_code` of a signal the kernel generated, such as the terminal's SIGINT, which reaches
/// the command directly because it shares nshelper's process group.
const SI_KERNEL: i32 = 0x80;

const TAG_PID: u8 = b'P';
const TAG_JOIN_ERROR: u8 = b'J';
const TAG_SETUP_ERROR: u8 = b'S';
const TAG_EXEC_ERROR: u8 = b'X';

const SETUP_STEPS: [&str; 4] = [
    "make a private mount namespace",
    "make the mounts private",
    "fork the command",
    "prepare the command",
];

/// Runs the command in `plan`'s namespaces and returns the exit status nshelper should
/// exit with: the command's, or 128 + N when a signal N ended it.
pub fn exec_in(
    mut plan: JoinPlan,
    proc: &ProcRoot,
    request: &ExecRequest,
) -> Result<i32, ExecError> {
    let pin = plan.pin.take();
    exec_pinned(plan, proc, request).map_err(|error| match (error, &pin) {
        (ExecError::Namespaces(error), Some(pin)) => ExecError::Namespaces(pin.explain(error)),
        (error @ ExecError::Setup { .. }, Some(pin)) => match pin.explain(NsError::MalformedReport)
        {
            gone @ NsError::ProcessExited { .. } => ExecError::Namespaces(gone),
            _ => error,
        },
        (error, _) => error,
    })
}

fn exec_pinned(plan: JoinPlan, proc: &ProcRoot, request: &ExecRequest) -> Result<i32, ExecError> {
    let mut forwarded = SigSet::empty();
    for signal in FORWARDED {
        forwarded.add(signal);
    }
    // Blocked so that they queue on the signalfd here, and stay pending, harmless, in the
    // middle process, which must outlive the command to pass its status on.
    let mut original_mask = SigSet::empty();
    sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&forwarded),
        Some(&mut original_mask),
    )
    .map_err(|errno| setup("block signals", errno))?;
    let signals = SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|errno| setup("make a signalfd", errno))?;
    let (report, report_writer) =
        pipe2(OFlag::O_CLOEXEC).map_err(|errno| setup("make a pipe", errno))?;
    let parent =
        sys::pidfd_open(getpid().as_raw(), 0).map_err(|errno| setup("pidfd_open", errno))?;
    match sys::fork(proc)? {
        ForkResult::Child => {
            drop(report);
            drop(signals);
            in_child(|| run_middle(&parent, plan, proc, request, report_writer, &original_mask))
        }
        ForkResult::Parent { child } => {
            drop(report_writer);
            drop(plan);
            let middle_exit =
                sys::pidfd_open(child.as_raw(), 0).map_err(|errno| setup("pidfd_open", errno))?;
            let (frames, status) = supervise(child, &middle_exit, report, &signals)?;
            interpret(&frames, status, request)
        }
    }
}

fn setup(step: &'static str, errno: Errno) -> ExecError {
    ExecError::Setup { step, errno }
}

/// Forwards signals to the command until the middle process exits, collecting its reports.
fn supervise(
    middle: Pid,
    middle_exit: &OwnedFd,
    report: OwnedFd,
    signals: &SignalFd,
) -> Result<(Vec<u8>, ChildExit), ExecError> {
    let mut report = Some(report);
    let mut frames = Vec::new();
    // A pidfd of the command, taken as soon as its pid is known, so that a signal passed on
    // late can never reach a process that reused the number.
    let mut command: Option<OwnedFd> = None;
    let mut command_known = false;
    let mut pending: Vec<Signal> = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let mut fds = vec![
            PollFd::new(middle_exit.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(report) = &report {
            fds.push(PollFd::new(report.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(setup("wait for the command", errno)),
        }
        let middle_done = fds[0].any().unwrap_or(false);
        let report_ready = fds.get(2).and_then(PollFd::any).unwrap_or(false);
        if report_ready {
            if let Some(fd) = &report {
                match read(fd, &mut chunk) {
                    Ok(0) => report = None,
                    Ok(n) => frames.extend_from_slice(&chunk[..n]),
                    Err(Errno::EINTR) => {}
                    Err(_) => report = None,
                }
            }
            if !command_known {
                if let Some(pid) = command_pid(&frames) {
                    command_known = true;
                    command = sys::pidfd_open(pid.as_raw(), 0).ok();
                }
            }
        }
        while let Ok(Some(info)) = signals.read_signal() {
            // A terminal's Ctrl-C reaches the whole foreground group, the command included;
            // its hangup reaches only the session leader, which may be nshelper itself.
            let session_leader = getsid(None).is_ok_and(|sid| sid == getpid());
            if info.ssi_code == SI_KERNEL
                && !(session_leader && info.ssi_signo == Signal::SIGHUP as u32)
            {
                continue;
            }
            if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                pending.push(signal);
            }
        }
        if let Some(pidfd) = &command {
            for signal in pending.drain(..) {
                let _ = sys::pidfd_signal(pidfd.as_fd(), signal as i32);
            }
        }
        if middle_done {
            // Whatever the middle process and the command wrote is in the pipe by now.
            if let Some(fd) = report.take() {
                drain(&fd, &mut frames);
            }
            let status = sys::wait_child(middle.as_raw())
                .map_err(|errno| setup("reap the middle process", errno))?
                .1;
            return Ok((frames, status));
        }
    }
}

fn drain(fd: &OwnedFd, frames: &mut Vec<u8>) {
    let mut chunk = [0u8; 512];
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) == 0 {
            return;
        }
        match read(fd, &mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => frames.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The pid of the command, once the middle process has sent it.
fn command_pid(frames: &[u8]) -> Option<Pid> {
    split_frames(frames).ok()?.0
}

/// A frame's tag and body.
type Frame<'a> = (u8, &'a [u8]);

/// The command's pid and the one error frame, if any. The middle process and the command
/// write to the same pipe, and the command may fail before its pid frame is sent: frames come
/// in either order.
fn split_frames(mut frames: &[u8]) -> Result<(Option<Pid>, Option<Frame<'_>>), NsError> {
    let mut pid = None;
    let mut error = None;
    while let Some(&tag) = frames.first() {
        let len = match tag {
            TAG_PID | TAG_EXEC_ERROR => 5,
            TAG_JOIN_ERROR | TAG_SETUP_ERROR => 6,
            _ => return Err(NsError::MalformedReport),
        };
        let frame = frames.get(..len).ok_or(NsError::MalformedReport)?;
        frames = &frames[len..];
        if tag == TAG_PID {
            let bytes: [u8; 4] = frame[1..]
                .try_into()
                .map_err(|_| NsError::MalformedReport)?;
            pid = Some(Pid::from_raw(i32::from_le_bytes(bytes)));
        } else if error.replace((tag, &frame[1..])).is_some() {
            return Err(NsError::MalformedReport);
        }
    }
    Ok((pid, error))
}

fn interpret(frames: &[u8], status: ChildExit, request: &ExecRequest) -> Result<i32, ExecError> {
    let command = request
        .argv
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    match split_frames(frames)?.1 {
        Some((TAG_JOIN_ERROR, body)) => {
            let (ns, errno) = namespace_errno(body)?;
            Err(NsError::Join { ns, errno }.into())
        }
        Some((TAG_SETUP_ERROR, body)) => {
            let (step, errno) = body.split_first().ok_or(NsError::MalformedReport)?;
            let step = SETUP_STEPS
                .get(usize::from(*step))
                .ok_or(NsError::MalformedReport)?;
            Err(setup(step, decode_errno(errno)?))
        }
        Some((TAG_EXEC_ERROR, body)) => match decode_errno(body)? {
            Errno::ENOENT | Errno::ENOTDIR => Err(ExecError::NotFound { command }),
            errno => Err(ExecError::CannotExecute { command, errno }),
        },
        Some(_) => Err(NsError::MalformedReport.into()),
        None => Ok(match status {
            ChildExit::Exited(code) => code,
            ChildExit::Signaled(signal) => 128 + signal,
        }),
    }
}

/// The middle process: joins, prepares the mounts, forks the command, and passes on how
/// it ended.
fn run_middle(
    parent: &OwnedFd,
    plan: JoinPlan,
    proc: &ProcRoot,
    request: &ExecRequest,
    report_writer: OwnedFd,
    original_mask: &SigSet,
) -> std::convert::Infallible {
    die_with(parent);
    for namespace in &plan.joins {
        if let Err(errno) = setns(namespace.file.as_fd(), namespace.kind.clone_flag()) {
            let mut frame = vec![TAG_JOIN_ERROR, namespace.kind.index()];
            frame.extend(errno_bytes(errno));
            send_and_exit(&report_writer, &frame, 125);
        }
    }
    drop(plan);
    if let MountSetup::NetnsExec { name } = &request.mounts {
        if let Err((step, errno)) = netns_exec_mounts(name.as_deref()) {
            send_and_exit(&report_writer, &setup_frame(step, errno), 125);
        }
    }
    match sys::fork(proc) {
        Err(error) => {
            let errno = error.errno().unwrap_or(Errno::EAGAIN);
            send_and_exit(&report_writer, &setup_frame(2, errno), 125)
        }
        Ok(ForkResult::Child) => in_child(|| run_command(request, &report_writer, original_mask)),
        Ok(ForkResult::Parent { child }) => {
            let mut frame = vec![TAG_PID];
            frame.extend(child.as_raw().to_le_bytes());
            let _ = write(&report_writer, &frame);
            drop(report_writer);
            match sys::wait_child(child.as_raw()) {
                Ok((_, ChildExit::Exited(code))) => sys::exit_now(code),
                Ok((_, ChildExit::Signaled(signal))) => sys::exit_now(128 + signal),
                Err(_) => sys::exit_now(125),
            }
        }
    }
}

fn setup_frame(step: u8, errno: Errno) -> Vec<u8> {
    let mut frame = vec![TAG_SETUP_ERROR, step];
    frame.extend(errno_bytes(errno));
    frame
}

/// What `ip netns exec` does to the mounts, except that a `/sys` that cannot be mounted is
/// a warning: the command still runs, with the old `/sys`.
fn netns_exec_mounts(name: Option<&str>) -> Result<(), (u8, Errno)> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|errno| (0, errno))?;
    // Nothing mounted below may propagate back to the namespace we came from.
    mount::<str, str, str, str>(None, "/", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
        .map_err(|errno| (1, errno))?;
    let source = name.unwrap_or("sysfs");
    if let Err(errno) =
        mount::<str, str, str, str>(Some(source), "/sys", Some("sysfs"), MsFlags::empty(), None)
    {
        eprintln!(
            "nshelper: warning: cannot mount a /sys of this network namespace ({errno}), so /sys shows the one of the namespace nshelper came from; use ip or /proc/net for this namespace's devices"
        );
    }
    if let Some(name) = name {
        bind_etc(name);
    }
    Ok(())
}

/// Binds every entry of `/etc/netns/NAME` over the same name in `/etc`, as `ip netns exec`.
fn bind_etc(name: &str) {
    let dir = Path::new("/etc/netns").join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let from = entry.path();
        let to = Path::new("/etc").join(entry.file_name());
        if let Err(errno) =
            mount::<Path, Path, str, str>(Some(&from), &to, None, MsFlags::MS_BIND, None)
        {
            eprintln!(
                "nshelper: warning: cannot bind {} over {}: {errno}; check that {} exists and is \
                 the same kind of file, as ip netns exec binds only over what exists",
                from.display(),
                to.display(),
                to.display()
            );
        }
    }
}

/// The command's own process: inherits nothing but 0, 1 and 2, and the signal mask
/// nshelper was started with, and becomes CMD. SIGPIPE gets its default action back:
/// nshelper ignores it before anything else (`sys::prepare_process`), so the caller's own
/// disposition of it cannot be known, and the default is what commands expect.
fn run_command(
    request: &ExecRequest,
    report_writer: &OwnedFd,
    original_mask: &SigSet,
) -> std::convert::Infallible {
    let prepared = sys::default_sigpipe()
        .and_then(|()| sigprocmask(SigmaskHow::SIG_SETMASK, Some(original_mask), None))
        .and_then(|()| sys::cloexec_from(3));
    if let Err(errno) = prepared {
        send_and_exit(report_writer, &setup_frame(3, errno), 125);
    }
    let Some(command) = request.argv.first() else {
        send_and_exit(report_writer, &setup_frame(3, Errno::EINVAL), 125);
    };
    let errno = match &request.env {
        Some(env) => execvpe(command, &request.argv, env).unwrap_err(),
        None => execvp(command, &request.argv).unwrap_err(),
    };
    let mut frame = vec![TAG_EXEC_ERROR];
    frame.extend(errno_bytes(errno));
    let code = if errno == Errno::ENOENT { 127 } else { 126 };
    send_and_exit(report_writer, &frame, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_in_either_order() {
        let pid = [TAG_PID, 7, 0, 0, 0];
        let failed = [TAG_EXEC_ERROR, 2, 0, 0, 0];
        for frames in [[pid, failed].concat(), [failed, pid].concat()] {
            let (found, error) = split_frames(&frames).unwrap();
            assert_eq!(found, Some(Pid::from_raw(7)));
            assert_eq!(error, Some((TAG_EXEC_ERROR, &[2, 0, 0, 0][..])));
        }
        assert!(split_frames(&[TAG_PID, 7, 0]).is_err());
        assert!(split_frames(&[failed, failed].concat()).is_err());
        assert_eq!(split_frames(&[]).unwrap(), (None, None));
    }
}
