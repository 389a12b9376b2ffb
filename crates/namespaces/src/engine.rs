//! The fork, join, fork engine, and the little report protocol on the pipe between the
//! query process and the parent.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::setns;
use nix::sys::prctl;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::{getpid, pipe2, setpgid, write, ForkResult, Pid};

use crate::sys::{self, ChildExit};
use crate::{JoinPlan, NsError, NsType, ProcRoot};

/// Exit status of a query process whose query panicked.
const EXIT_PANICKED: i32 = 70;
/// Exit status of a child that found its parent already gone.
const EXIT_ORPHANED: i32 = 71;
/// Exit status of a middle process that lost track of the query process.
const EXIT_LOST_CHILD: i32 = 72;

/// The largest report the parent accepts from a query process: far above what a namespace
/// with 100,000 links produces, far below what would hurt the host.
pub const REPORT_LIMIT: usize = 256 << 20;

pub(crate) const TAG_RESULT: u8 = b'R';
pub(crate) const TAG_QUERY_ERROR: u8 = b'Q';
const TAG_JOIN_ERROR: u8 = b'J';
const TAG_PROOF_ERROR: u8 = b'P';
pub(crate) const TAG_FORK_ERROR: u8 = b'F';
/// The middle process's last word: the pid of the query process it forked, as the caller
/// sees it, 4 bytes little-endian. Always first on the pipe when it is sent.
const TAG_QUERY_PROCESS: u8 = b'C';

/// What a query process sends when it succeeds.
pub enum Report {
    /// Bytes already encoded.
    Bytes(Vec<u8>),
    /// An encoder that writes straight into the pipe, so that the parent reads while it
    /// encodes and no copy of the whole report is ever held. Everything that can fail but
    /// writing must have been done before it is made. It gets the pipe unbuffered: a buffer
    /// of its own type keeps the encoder's many small writes from being dynamic calls.
    Encoder(Encoder),
}

/// Writes a report into the pipe.
pub type Encoder = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()>>;

impl From<Vec<u8>> for Report {
    fn from(bytes: Vec<u8>) -> Self {
        Report::Bytes(bytes)
    }
}

/// A query running in its target's namespaces, started by [`spawn`].
pub struct RunningQuery {
    middle: Pid,
    /// The target process, when the query entered one, to explain failures by its death.
    pin: Option<crate::target::Pin>,
    /// A pidfd of the middle process: readable once it has exited.
    middle_exit: Option<OwnedFd>,
    /// Whether the middle process names a query process it forked as the caller's child.
    names_query_process: bool,
    /// That query process once named, with a pidfd of it (readable once it has exited).
    query_process: Option<(Pid, OwnedFd)>,
    report: OwnedFd,
    finished: bool,
}

/// Forks the process that joins `plan`'s namespaces, which forks the process that runs
/// `query` there. That query process is forked as the caller's own child (a sibling of the
/// middle process), so that the middle process can exit at once: the caller reaps both,
/// and the query's exit status reaches it without a process in between.
///
/// `query` gets the inodes of the namespaces (those `plan` reports) that it is in, read from
/// its own `/proc/thread-self/ns`, and returns either its result or an error, each as bytes
/// for the parent.
///
/// The caller must be single-threaded; this is checked, not assumed. The process becomes a
/// child subreaper so that it can reap a query process orphaned by a killed middle one.
pub fn spawn<F, R>(
    plan: JoinPlan,
    proc: &ProcRoot,
    keep: &[BorrowedFd<'_>],
    query: F,
) -> Result<RunningQuery, NsError>
where
    F: FnOnce(&[(NsType, u64)]) -> Result<R, Vec<u8>>,
    R: Into<Report>,
{
    let mut plan = plan;
    let pin = plan.pin.take();
    // A sibling's pid, as the middle process sees it, is one we can wait for only if our
    // children are born in our own pid namespace; otherwise the middle process waits for
    // the query process itself and passes its status on.
    let siblings = proc.children_share_our_pid_namespace();
    let mut running = fork_reporting(proc, |parent, report_writer| {
        run_middle(parent, plan, proc, keep, report_writer, siblings, query)
    })?;
    running.pin = pin;
    running.names_query_process = siblings;
    Ok(running)
}

/// Forks a child that reports on a pipe, and returns the parent's handle on it. `life` gets
/// a pidfd of the parent, to die with it, and the pipe's write end. The process becomes a
/// child subreaper, so that it can reap a grandchild orphaned by a killed child.
pub(crate) fn fork_reporting(
    proc: &ProcRoot,
    life: impl FnOnce(OwnedFd, OwnedFd) -> std::convert::Infallible,
) -> Result<RunningQuery, NsError> {
    prctl::set_child_subreaper(true).map_err(|errno| NsError::Sys {
        call: "PR_SET_CHILD_SUBREAPER",
        errno,
    })?;
    let (report, report_writer) = pipe2(OFlag::O_CLOEXEC).map_err(|errno| NsError::Sys {
        call: "pipe2",
        errno,
    })?;
    // The children watch this to die with the parent: getppid() cannot, as it reads 0 when
    // the parent's pid namespace is not the one its children are born in.
    let parent = sys::pidfd_open(getpid().as_raw(), 0).map_err(|errno| NsError::Sys {
        call: "pidfd_open",
        errno,
    })?;
    match sys::fork(proc)? {
        ForkResult::Child => {
            drop(report);
            in_child(|| life(parent, report_writer))
        }
        ForkResult::Parent { child } => {
            drop(report_writer);
            // Also done in the child; whichever runs first makes the group exist before
            // anyone may need to signal it.
            let _ = setpgid(child, child);
            Ok(RunningQuery::new(child, report))
        }
    }
}

/// The first child: joins the namespaces, then forks the query process. With `siblings`,
/// it forks it as the caller's child, names it on the pipe and exits at once; otherwise it
/// forks its own child and passes its exit status on. Never returns.
fn run_middle<F, R>(
    parent: OwnedFd,
    plan: JoinPlan,
    proc: &ProcRoot,
    keep: &[BorrowedFd<'_>],
    report_writer: OwnedFd,
    siblings: bool,
    query: F,
) -> std::convert::Infallible
where
    F: FnOnce(&[(NsType, u64)]) -> Result<R, Vec<u8>>,
    R: Into<Report>,
{
    die_with(&parent);
    // Nothing of the caller's reaches the target's namespaces: not its terminal, not its
    // other descriptors. Only the pipe, the namespace files and what the query asked for.
    let mut kept: Vec<RawFd> = vec![
        parent.as_raw_fd(),
        report_writer.as_raw_fd(),
        proc.as_raw_fd(),
    ];
    kept.extend(plan.joins.iter().map(|opened| opened.file.as_raw_fd()));
    kept.extend(keep.iter().map(AsRawFd::as_raw_fd));
    if let Err(errno) = detach_stdio().and_then(|()| sys::close_all_except(&kept)) {
        let mut frame = vec![TAG_FORK_ERROR];
        frame.extend(errno_bytes(errno));
        send_and_exit(&report_writer, &frame, 1);
    }
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // Processes inside the target must not be able to ptrace or read the memory of a
    // process that came from outside with our credentials.
    let _ = prctl::set_dumpable(false);
    for namespace in &plan.joins {
        if let Err(errno) = setns(namespace.file.as_fd(), namespace.kind.clone_flag()) {
            let mut frame = vec![TAG_JOIN_ERROR, namespace.kind.index()];
            frame.extend(errno_bytes(errno));
            send_and_exit(&report_writer, &frame, 1);
        }
    }
    let reported = plan.reported().to_vec();
    drop(plan);
    let middle = match sys::pidfd_open(getpid().as_raw(), 0) {
        Ok(middle) => middle,
        Err(errno) => send_and_exit(&report_writer, &fork_error_frame(errno), 1),
    };
    let forked = if siblings {
        sys::fork_sibling(proc)
    } else {
        sys::fork(proc)
    };
    match forked {
        Err(error) => {
            let errno = error.errno().unwrap_or(Errno::EAGAIN);
            send_and_exit(&report_writer, &fork_error_frame(errno), 1)
        }
        Ok(ForkResult::Child) => {
            // The query process dies with whichever process is its parent. A sibling writes
            // nothing before the middle process has named it and exited.
            let (dies_with, after) = if siblings {
                (&parent, Some(&middle))
            } else {
                (&middle, None)
            };
            in_child(|| run_query(dies_with, after, &reported, proc, report_writer, query))
        }
        Ok(ForkResult::Parent { child }) if siblings => {
            let mut frame = vec![TAG_QUERY_PROCESS];
            frame.extend(child.as_raw().to_le_bytes());
            send_and_exit(&report_writer, &frame, 0)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_writer);
            match sys::wait_child(child.as_raw()) {
                Ok((_, ChildExit::Exited(code))) => sys::exit_now(code),
                Ok((_, ChildExit::Signaled(signal))) => sys::exit_now(128 + signal),
                Err(_) => sys::exit_now(EXIT_LOST_CHILD),
            }
        }
    }
}

/// The query process, a member of every joined namespace including the pid namespace. It
/// dies with `parent`, and writes nothing before `after` (the middle process, when that
/// names it on the pipe) has exited.
fn run_query<F, R>(
    parent: &OwnedFd,
    after: Option<&OwnedFd>,
    reported: &[NsType],
    proc: &ProcRoot,
    report_writer: OwnedFd,
    query: F,
) -> std::convert::Infallible
where
    F: FnOnce(&[(NsType, u64)]) -> Result<R, Vec<u8>>,
    R: Into<Report>,
{
    die_with(parent);
    let mut inodes = Vec::with_capacity(reported.len());
    for kind in reported {
        match proc.own_namespace_inode(*kind) {
            Ok(inode) => inodes.push((*kind, inode)),
            Err(errno) => {
                let mut frame = vec![TAG_PROOF_ERROR, kind.index()];
                frame.extend(errno_bytes(errno));
                if let Some(middle) = after {
                    wait_for_exit(middle);
                }
                send_and_exit(&report_writer, &frame, 1);
            }
        }
    }
    let outcome = query(&inodes);
    // Nothing may go ahead of the middle process's frame. It is long gone by now, having
    // had the whole query's time to exit.
    if let Some(middle) = after {
        wait_for_exit(middle);
    }
    send_outcome_and_exit(report_writer, outcome)
}

/// Waits until the process behind `pidfd` has exited. A wait that fails ends the calling
/// process without a word: writing anyway could put its report ahead of the frame that
/// must come first, and the parent reads a plain exit as the error it is.
fn wait_for_exit(pidfd: &OwnedFd) {
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) | Ok(0) => continue,
            Ok(_) => return,
            Err(_) => sys::exit_now(1),
        }
    }
}

/// Sends a query's report, or its error, and ends the process.
pub(crate) fn send_outcome_and_exit<R: Into<Report>>(
    writer: OwnedFd,
    outcome: Result<R, Vec<u8>>,
) -> ! {
    let report = match outcome {
        Ok(report) => report.into(),
        Err(error) => {
            send_parts(&writer, &[&[TAG_QUERY_ERROR], &error]);
            sys::exit_now(1)
        }
    };
    match report {
        Report::Bytes(bytes) => send_parts(&writer, &[&[TAG_RESULT], &bytes]),
        Report::Encoder(encode) => {
            send_parts(&writer, &[&[TAG_RESULT]]);
            let written = encode(&mut std::fs::File::from(writer));
            if written.is_err() {
                // Part of the report may be out: the status tells the parent it is not whole.
                sys::exit_now(1);
            }
        }
    }
    sys::exit_now(0)
}

/// Runs a child's whole life. A panic must end the child here: unwinding further would
/// return into the caller's frames, and the child would go on as if it were the parent.
pub(crate) fn in_child(life: impl FnOnce() -> std::convert::Infallible) -> ! {
    let _ = catch_unwind(AssertUnwindSafe(life));
    sys::exit_now(EXIT_PANICKED)
}

/// Points 0, 1 and 2 at /dev/null, so that nothing from inside a target can read the
/// caller's terminal or write to it.
pub(crate) fn detach_stdio() -> Result<(), Errno> {
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)
}

/// Makes the calling child die with its parent, and exits if the parent is already gone.
pub(crate) fn die_with(parent: &OwnedFd) {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    // A pidfd is readable once its process has exited.
    let mut fds = [PollFd::new(parent.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0 {
        sys::exit_now(EXIT_ORPHANED);
    }
}

fn fork_error_frame(errno: Errno) -> Vec<u8> {
    let mut frame = vec![TAG_FORK_ERROR];
    frame.extend(errno_bytes(errno));
    frame
}

pub(crate) fn errno_bytes(errno: Errno) -> [u8; 4] {
    (errno as i32).to_le_bytes()
}

pub(crate) fn send_and_exit(writer: &OwnedFd, frame: &[u8], code: i32) -> ! {
    send_parts(writer, &[frame]);
    sys::exit_now(code)
}

/// Writes the parts one after the other (a tag and its body need no copy into one frame), or
/// ends the process with status 1 when the parent can no longer be told.
fn send_parts(writer: &OwnedFd, parts: &[&[u8]]) {
    for part in parts {
        let mut part = *part;
        while !part.is_empty() {
            match write(writer, part) {
                Ok(written) => part = &part[written..],
                Err(Errno::EINTR) => continue,
                // The parent is gone or stopped reading; nobody is left to tell.
                Err(_) => sys::exit_now(1),
            }
        }
    }
}

impl RunningQuery {
    pub(crate) fn new(middle: Pid, report: OwnedFd) -> Self {
        RunningQuery {
            middle,
            pin: None,
            middle_exit: sys::pidfd_open(middle.as_raw(), 0).ok(),
            names_query_process: false,
            query_process: None,
            report,
            finished: false,
        }
    }

    /// Reads the report to its end while the children run, then reaps every process the
    /// query made. After `timeout` the children are killed.
    pub fn wait(self, timeout: Duration) -> Result<Vec<u8>, NsError> {
        self.wait_then(timeout, |_| ()).0
    }

    /// As [`RunningQuery::wait`], but a report that looks whole (a result frame) is handed to
    /// `early` before the children are reaped, so that the caller's work on it overlaps their
    /// exit. What `early` made is returned only with an `Ok` outcome, whose bytes are the
    /// ones `early` saw.
    pub fn wait_then<T>(
        mut self,
        timeout: Duration,
        early: impl FnOnce(&[u8]) -> T,
    ) -> (Result<Vec<u8>, NsError>, Option<T>) {
        let report = self.read_report(timeout);
        let made = match &report {
            Ok(report) if report.first() == Some(&TAG_RESULT) => Some(early(&report[1..])),
            _ => None,
        };
        // A report that could not be read to its end leaves children that may still run,
        // or wait on a full pipe: they are killed before anyone waits for them.
        let status = self.reap(report.is_err());
        let outcome = report.and_then(|report| interpret(status, report));
        let outcome = match (outcome, &self.pin) {
            (Err(error @ NsError::Timeout(_)), _) | (Err(error @ NsError::Query(_)), _) => {
                Err(error)
            }
            (Err(error), Some(pin)) => Err(pin.explain(error)),
            (outcome, _) => outcome,
        };
        let made = made.filter(|_| outcome.is_ok());
        (outcome, made)
    }

    /// Reads until the report ends: at end of file, or once the process that writes it has
    /// exited and what is left in the pipe is drained (a process that escaped the query's
    /// process group may hold the pipe open, but it cannot hold the result back). That
    /// process is the query process once the middle process has named it, else the middle
    /// process.
    fn read_report(&mut self, timeout: Duration) -> Result<Vec<u8>, NsError> {
        // A deadline too far to represent is no deadline.
        let deadline = Instant::now().checked_add(timeout);
        // Non-blocking, so that each wakeup reads all there is straight into the report,
        // which grows without a chunk to copy through or zero first.
        let pipe = std::fs::File::from(self.report.try_clone().map_err(|e| NsError::Sys {
            call: "dup",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
        })?);
        nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(
            |errno| NsError::Sys {
                call: "fcntl",
                errno,
            },
        )?;
        let mut report = Vec::new();
        let mut draining = false;
        loop {
            let wait = if draining {
                PollTimeout::ZERO
            } else if let Some(deadline) = deadline {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    let _ = killpg(self.middle, Signal::SIGKILL);
                    return Err(NsError::Timeout(timeout));
                }
                PollTimeout::try_from(remaining).unwrap_or(PollTimeout::MAX)
            } else {
                PollTimeout::NONE
            };
            let mut fds = vec![PollFd::new(self.report.as_fd(), PollFlags::POLLIN)];
            let writer_exit = match &self.query_process {
                Some((_, query_exit)) => Some(query_exit),
                None => self.middle_exit.as_ref(),
            };
            if let Some(writer_exit) = writer_exit {
                fds.push(PollFd::new(writer_exit.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, wait) {
                Ok(0) if draining => return Ok(report),
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(NsError::Sys {
                        call: "poll",
                        errno,
                    })
                }
            }
            let readable = fds[0].any().unwrap_or(true);
            if fds.get(1).and_then(PollFd::any).unwrap_or(false) {
                draining = true;
            }
            if !readable {
                continue;
            }
            // One byte over the limit shows that the report is too large.
            let room = (REPORT_LIMIT + 1 - report.len()) as u64;
            let before = report.len();
            let ended = match (&pipe).take(room).read_to_end(&mut report) {
                Ok(_) => true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                Err(e) => {
                    return Err(NsError::Sys {
                        call: "read",
                        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    })
                }
            };
            if report.len() > REPORT_LIMIT {
                // Whatever is inside the target cannot make the parent hold unbounded
                // memory.
                let _ = killpg(self.middle, Signal::SIGKILL);
                return Err(NsError::ReportTooLarge(REPORT_LIMIT));
            }
            if self.take_query_process(&mut report)? {
                // The middle process has just named the query process: its exit, not the
                // middle one's, ends the report from now on.
                draining = false;
                continue;
            }
            // End of file, or nothing more while draining.
            if ended || (draining && report.len() == before) {
                return Ok(report);
            }
        }
    }

    /// Takes the middle process's naming of the query process off the front of `report`,
    /// if it is there whole and due; says whether it did.
    fn take_query_process(&mut self, report: &mut Vec<u8>) -> Result<bool, NsError> {
        if !self.names_query_process || self.query_process.is_some() {
            return Ok(false);
        }
        let pid = match report.get(..5) {
            Some([TAG_QUERY_PROCESS, pid @ ..]) => {
                i32::from_le_bytes([pid[0], pid[1], pid[2], pid[3]])
            }
            _ => return Ok(false),
        };
        report.drain(..5);
        // Our own child, not reaped yet: the number cannot be anyone else's. Without a
        // pidfd its exit could not end the report, and a process it left holding the pipe
        // could hold the result back.
        let exit = sys::pidfd_open(pid, 0).map_err(|errno| NsError::Sys {
            call: "pidfd_open",
            errno,
        })?;
        self.query_process = Some((Pid::from_raw(pid), exit));
        Ok(true)
    }

    /// Reaps the query process and the middle process, then whatever is left of their
    /// process group, so that no zombie or stray process of the query outlives the call.
    /// Other children of the caller are left alone. The status is the query process's, or
    /// the middle process's when it named none.
    fn reap(&mut self, kill_first: bool) -> Result<ChildExit, Errno> {
        if kill_first {
            // While the middle process is not reaped, its group id cannot be anyone else's.
            let _ = killpg(self.middle, Signal::SIGKILL);
        }
        // Wait without reaping: while the middle process is a zombie its pid, and so its
        // process group id, cannot be reused, so the group kill below cannot hit a stranger.
        while let Err(Errno::EINTR) = waitid(
            Id::Pid(self.middle),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {}
        let query_status = self
            .query_process
            .take()
            .map(|(pid, _)| sys::wait_child(pid.as_raw()).map(|(_, exit)| exit));
        let _ = killpg(self.middle, Signal::SIGKILL);
        let middle_status = sys::wait_child(self.middle.as_raw()).map(|(_, exit)| exit);
        self.finished = true;
        // A query process the middle one had no time to name is our child too, still in the
        // group, and was killed above.
        while sys::wait_child(-self.middle.as_raw()).is_ok() {}
        query_status.unwrap_or(middle_status)
    }
}

impl Drop for RunningQuery {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.reap(true);
        }
    }
}

fn interpret(status: Result<ChildExit, Errno>, report: Vec<u8>) -> Result<Vec<u8>, NsError> {
    let status = status.map_err(|errno| NsError::Sys {
        call: "waitpid",
        errno,
    })?;
    if status == ChildExit::Exited(0) && report.first() == Some(&TAG_RESULT) {
        // The body keeps its place: no copy of what can be megabytes.
        let mut report = report;
        report.remove(0);
        return Ok(report);
    }
    let (tag, body) = match report.split_first() {
        Some((tag, body)) => (Some(*tag), body),
        None => (None, &[][..]),
    };
    match status {
        ChildExit::Exited(0) => Err(NsError::MalformedReport),
        ChildExit::Exited(1) => match tag {
            Some(TAG_QUERY_ERROR) => Err(NsError::Query(body.to_vec())),
            Some(TAG_JOIN_ERROR) => {
                let (ns, errno) = namespace_errno(body)?;
                Err(NsError::Join { ns, errno })
            }
            Some(TAG_PROOF_ERROR) => {
                let (ns, errno) = namespace_errno(body)?;
                Err(NsError::Proof { ns, errno })
            }
            Some(TAG_FORK_ERROR) => Err(NsError::Sys {
                call: "fork into the target's pid namespace",
                errno: decode_errno(body)?,
            }),
            _ => Err(NsError::Exited(1)),
        },
        ChildExit::Exited(EXIT_PANICKED) => Err(NsError::Panicked),
        // A signal's number, as a shell passes it on (128 + N).
        ChildExit::Exited(code) if code > 128 => Err(NsError::Killed(code - 128)),
        ChildExit::Exited(code) => Err(NsError::Exited(code)),
        ChildExit::Signaled(signal) => Err(NsError::Killed(signal)),
    }
}

pub(crate) fn decode_errno(body: &[u8]) -> Result<Errno, NsError> {
    let bytes: [u8; 4] = body.try_into().map_err(|_| NsError::MalformedReport)?;
    Ok(Errno::from_raw(i32::from_le_bytes(bytes)))
}

pub(crate) fn namespace_errno(body: &[u8]) -> Result<(NsType, Errno), NsError> {
    let (index, rest) = body.split_first().ok_or(NsError::MalformedReport)?;
    let ns = NsType::from_index(*index).ok_or(NsError::MalformedReport)?;
    Ok((ns, decode_errno(rest)?))
}
