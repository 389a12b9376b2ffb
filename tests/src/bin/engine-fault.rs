//! `engine-fault MODE [--timeout-ms N] [--timeout-secs N] [--sleep-secs N] [--tag TAG]`
//!
//! A test-only driver for the fork/setns/fork engine of `nshelper-namespaces`. It runs a
//! query that misbehaves in the way MODE names, in the helper's own namespaces (so no
//! privilege is needed), waits for it, and prints one line of JSON saying what `wait`
//! returned and whether any child process is left:
//!
//! ```text
//! {"mode":"ok-small","outcome":"ok","len":5,"fnv":"…","text":"hello","leftover_children":0,"wait_any":"ECHILD"}
//! {"mode":"abort","outcome":"error","error":"Killed","debug":"Killed(6)","message":"…",…}
//! ```
//!
//! Modes, and what a correct engine returns for them:
//!
//! - `ok-small`, `ok-empty`, `ok-huge` (8 MiB), `namespaces` (the inodes it was given, as
//!   `net=…,pid=…,mnt=…`), `background` (leaves a sleeper in its process group): `Ok`.
//! - `query-error`, `query-error-huge` (1 MiB): `Query(bytes)`.
//! - `panic`: `Panicked` (`Killed(6)` when built with `panic = "abort"`).
//! - `abort`, `stack-overflow`: `Killed(6)`; `segv`, `kill-self`: `Killed(11)`, `Killed(9)`;
//!   `rt-signal` (signal 40 to itself): `Killed(40)`.
//! - `kill-caller`: the query process, which is this process's own child, kills this
//!   process with SIGKILL and sleeps. Nothing is printed; the query process must die with
//!   its parent rather than sleep on.
//! - `exit-N` (`process::exit(N)` in the query): `Exited(N)`, except that 0 is a
//!   `MalformedReport` (no result) and 70 and 129 to 192 read as `Panicked` and `Killed`.
//! - `hang` (sleeps; use `--timeout-ms`): `Timeout`; `drop`: the same query, dropped.
//! - `threads` (a second thread exists): `NotSingleThreaded(2)`.
//! - `join-denied` (its own netns, joined without privilege): `Join { Net, EPERM }`.
//! - `fork-limit` (RLIMIT_NPROC of 2): `Sys { "fork into the target's pid namespace",
//!   EAGAIN }`.
//! - `foreign-child` (the caller has an unrelated child): `Ok`, the child untouched.
//! - `escape`, `escape-hang` (start a daemon in a session of its own, then return or
//!   sleep): `Ok`, `Timeout`, promptly.
//!
//! `--tag` is not interpreted: it only puts a unique word in the command line of this
//! process, of every process forked from it and of every sleeper it starts, so that a test
//! can find any process left behind. `sleeper` and `sleeper-setsid` are not engine modes:
//! they are the long-running processes that some queries start.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, raise, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{geteuid, getpid, getppid, setresuid, setsid, Uid};
use nshelper_namespaces::{spawn, JoinPlan, NsError, NsType, ProcRoot};
use nshelper_tests::{fnv1a, pattern};

/// Size of the `ok-huge` result: far bigger than a pipe buffer (64 KiB by default).
const HUGE_LEN: usize = 8 << 20;
/// Size of the `query-error-huge` error.
const HUGE_ERROR_LEN: usize = 1 << 20;
/// How long the hanging queries and the sleepers sleep unless told otherwise.
const LONG_SLEEP_SECS: u64 = 600;
/// Results and errors up to this size are also printed as text.
const TEXT_LIMIT: usize = 256;

struct Args {
    mode: String,
    timeout: Duration,
    sleep_secs: u64,
    tag: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or(
        "usage: engine-fault MODE [--timeout-ms N] [--timeout-secs N] [--sleep-secs N] [--tag TAG]",
    )?;
    let mut parsed = Args {
        mode,
        timeout: Duration::from_secs(30),
        sleep_secs: LONG_SLEEP_SECS,
        tag: String::new(),
    };
    while let Some(option) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{option} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{option} {value}: {e}"))
        };
        match option.as_str() {
            "--timeout-ms" => parsed.timeout = Duration::from_millis(number()?),
            "--timeout-secs" => parsed.timeout = Duration::from_secs(number()?),
            "--sleep-secs" => parsed.sleep_secs = number()?,
            "--tag" => parsed.tag = value,
            _ => return Err(format!("unknown option {option}")),
        }
    }
    Ok(parsed)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => fail_setup(&message),
    };
    match args.mode.as_str() {
        "sleeper" | "sleeper-setsid" => {
            if args.mode == "sleeper-setsid" {
                // Leaves the process group (and session) of whoever started it, as a
                // daemon would, so that a kill of that group misses it.
                if let Err(errno) = setsid() {
                    eprintln!("engine-fault sleeper-setsid: setsid: {errno}");
                    std::process::exit(2);
                }
            }
            // Tells the starter that the setup above is done.
            println!("ready");
            sleep_secs(args.sleep_secs);
        }
        _ => {
            let line = run_mode(&args);
            println!("{line}");
        }
    }
}

/// Reports a problem with the test setup itself (not with the engine) and exits 2.
fn fail_setup(message: &str) -> ! {
    println!("{{\"setup_error\":{}}}", json_string(message));
    std::process::exit(2)
}

/// What `wait` (or a drop) gave, before the leftover check.
enum Outcome {
    Returned(Result<Vec<u8>, NsError>),
    Dropped,
}

fn run_mode(args: &Args) -> String {
    let mode = args.mode.as_str();
    let proc = ProcRoot::open().unwrap_or_else(|e| fail_setup(&format!("open /proc: {e}")));
    let fds_before = count_own_fds();
    let namespaces_before = own_namespaces();

    let mut plan = JoinPlan::own_namespaces();
    let mut foreign_child = None;
    let mut _sleeping_thread = None;
    match mode {
        "threads" => {
            // The thread exists as soon as spawn returns; it outlives the check and dies
            // with the process.
            _sleeping_thread = Some(std::thread::spawn(|| {
                std::thread::sleep(Duration::from_secs(LONG_SLEEP_SECS))
            }));
        }
        "join-denied" => {
            // Opened while still privileged (if we are), joined after losing the privilege:
            // setns into a network namespace needs CAP_SYS_ADMIN over its owner.
            plan = JoinPlan::for_netns_file(&proc, "/proc/self/ns/net".as_ref())
                .unwrap_or_else(|e| fail_setup(&format!("plan for own netns: {e:?}")));
            drop_privileges();
        }
        "fork-limit" => {
            // Without privilege, as a user that runs no other process, this process is
            // the only one counted against RLIMIT_NPROC: with a limit of 2 the middle
            // process can be forked, the query process not.
            // (In that order: a new user namespace takes its creator's limit for the
            // processes of the creator's user, who runs others.)
            drop_privileges();
            setrlimit(Resource::RLIMIT_NPROC, 2, 2)
                .unwrap_or_else(|e| fail_setup(&format!("setrlimit(RLIMIT_NPROC): {e}")));
        }
        "foreign-child" => {
            // A child of the caller that has nothing to do with the query.
            foreign_child = Some(start_sleeper(args, false));
        }
        _ => {}
    }

    let query = |inodes: &[(NsType, u64)]| run_query(args, inodes);
    let outcome = match spawn(plan, &proc, &[], query) {
        Err(error) => Outcome::Returned(Err(error)),
        Ok(running) if mode == "drop" => {
            drop(running);
            Outcome::Dropped
        }
        Ok(running) => Outcome::Returned(running.wait(args.timeout)),
    };

    let mut json = JsonObject::default();
    json.string("mode", mode);
    // With `panic = "abort"` (the release profile) a panicking query aborts.
    json.string(
        "panic_strategy",
        if cfg!(panic = "unwind") {
            "unwind"
        } else {
            "abort"
        },
    );
    describe_outcome(&mut json, &outcome);

    if let Some(mut child) = foreign_child {
        // Still ours and still running, unless `wait` reaped it behind our back.
        let state = match child.try_wait() {
            Ok(None) => "running".to_owned(),
            Ok(Some(status)) => format!("exited: {status}"),
            Err(error) => format!("lost: {error}"),
        };
        json.string("foreign_child", &state);
        let _ = child.kill();
        let _ = child.wait();
    }

    let leftovers = children_of(getpid().as_raw());
    json.raw("leftover_children", &leftovers.len().to_string());
    json.string("leftover_detail", &format!("{leftovers:?}"));
    json.string("wait_any", &wait_any());
    json.raw("fds_before", &fds_before.to_string());
    json.raw("fds_after", &count_own_fds().to_string());
    json.raw(
        "namespaces_unchanged",
        if own_namespaces() == namespaces_before {
            "true"
        } else {
            "false"
        },
    );
    json.finish()
}

/// The query: runs in the query process (the grandchild).
fn run_query(args: &Args, inodes: &[(NsType, u64)]) -> Result<Vec<u8>, Vec<u8>> {
    let mode = args.mode.as_str();
    if let Some(code) = mode.strip_prefix("exit-") {
        let code: i32 = code.parse().map_err(|_| b"bad exit code".to_vec())?;
        std::process::exit(code);
    }
    match mode {
        "ok-small" | "threads" | "join-denied" | "fork-limit" | "foreign-child" => {
            Ok(b"hello".to_vec())
        }
        "ok-empty" => Ok(Vec::new()),
        "ok-huge" => Ok(pattern(HUGE_LEN)),
        // One byte more than the parent accepts.
        "ok-oversized" => Ok(vec![b'x'; nshelper_namespaces::REPORT_LIMIT]),
        "query-error" => Err(b"boom".to_vec()),
        "query-error-huge" => Err(pattern(HUGE_ERROR_LEN)),
        "panic" => panic!("engine-fault: deliberate panic in the query"),
        "abort" => std::process::abort(),
        "kill-self" => {
            let _ = raise(Signal::SIGKILL);
            Err(b"survived SIGKILL".to_vec())
        }
        "segv" => {
            // The standard library handles SIGSEGV (to report stack overflows); a SIGSEGV
            // that is not one makes its handler restore the default action and return, so
            // the second one kills.
            let _ = raise(Signal::SIGSEGV);
            let _ = raise(Signal::SIGSEGV);
            Err(b"survived SIGSEGV".to_vec())
        }
        "stack-overflow" => {
            let depth = recurse(0);
            Err(format!("survived a recursion of depth {depth}").into_bytes())
        }
        "rt-signal" => {
            // A real-time signal, as any process of the target's pid namespace could send.
            signal_with_kill_command("40", getpid().as_raw());
            sleep_secs(args.sleep_secs);
            Err(b"survived signal 40".to_vec())
        }
        "hang" | "drop" => {
            sleep_secs(args.sleep_secs);
            Err(b"woke up".to_vec())
        }
        "kill-caller" => {
            // The query process is the caller's child: the caller dies, and the query
            // process must not linger after it.
            let _ = kill(getppid(), Signal::SIGKILL);
            sleep_secs(args.sleep_secs);
            Err(b"outlived the caller".to_vec())
        }
        "background" => {
            // Left running in the middle process's group, as a careless query might.
            let child = start_sleeper(args, false);
            std::mem::forget(child);
            Ok(b"started a background process".to_vec())
        }
        "escape" | "escape-hang" => {
            // Left running in a session of its own, out of reach of a group kill.
            let child = start_sleeper(args, true);
            std::mem::forget(child);
            if mode == "escape-hang" {
                sleep_secs(LONG_SLEEP_SECS);
            }
            Ok(b"started a daemon".to_vec())
        }
        "namespaces" => {
            let text = inodes
                .iter()
                .map(|(kind, inode)| format!("{kind}={inode}"))
                .collect::<Vec<_>>()
                .join(",");
            Ok(text.into_bytes())
        }
        _ => Err(format!("unknown mode {mode}").into_bytes()),
    }
}

fn describe_outcome(json: &mut JsonObject, outcome: &Outcome) {
    match outcome {
        Outcome::Dropped => json.string("outcome", "dropped"),
        Outcome::Returned(Ok(bytes)) => {
            json.string("outcome", "ok");
            describe_bytes(json, "", bytes);
        }
        Outcome::Returned(Err(error)) => {
            json.string("outcome", "error");
            json.string("error", variant_name(error));
            json.string("message", &error.to_string());
            match error {
                NsError::Query(body) => {
                    describe_bytes(json, "query_", body);
                    if body.len() <= TEXT_LIMIT {
                        json.string("debug", &format!("{error:?}"));
                    }
                }
                _ => json.string("debug", &format!("{error:?}")),
            }
        }
    }
}

fn describe_bytes(json: &mut JsonObject, prefix: &str, bytes: &[u8]) {
    json.raw(&format!("{prefix}len"), &bytes.len().to_string());
    json.string(&format!("{prefix}fnv"), &format!("{:016x}", fnv1a(bytes)));
    json.raw(
        &format!("{prefix}matches_pattern"),
        if bytes == pattern(bytes.len()) {
            "true"
        } else {
            "false"
        },
    );
    if bytes.len() <= TEXT_LIMIT {
        json.string(&format!("{prefix}text"), &String::from_utf8_lossy(bytes));
    }
}

fn variant_name(error: &NsError) -> &'static str {
    match error {
        NsError::Proc(_) => "Proc",
        NsError::NoSuchProcess { .. } => "NoSuchProcess",
        NsError::Pin { .. } => "Pin",
        NsError::ProcessExited { .. } => "ProcessExited",
        NsError::Open { .. } => "Open",
        NsError::NotNamespace { .. } => "NotNamespace",
        NsError::ForeignProc => "ForeignProc",
        NsError::PidZero => "PidZero",
        NsError::ParentDirectory { .. } => "ParentDirectory",
        NsError::KernelThread { .. } => "KernelThread",
        NsError::WrongType { .. } => "WrongType",
        NsError::NotSingleThreaded(_) => "NotSingleThreaded",
        NsError::Sys { .. } => "Sys",
        NsError::Join { .. } => "Join",
        NsError::Proof { .. } => "Proof",
        NsError::Timeout(_) => "Timeout",
        NsError::Killed(_) => "Killed",
        NsError::Exited(_) => "Exited",
        NsError::Panicked => "Panicked",
        NsError::MalformedReport => "MalformedReport",
        NsError::ReportTooLarge(_) => "ReportTooLarge",
        NsError::Query(_) => "Query",
    }
}

fn recurse(depth: u64) -> u64 {
    let buffer = std::hint::black_box([depth; 64]);
    if std::hint::black_box(depth) == u64::MAX {
        return buffer[0];
    }
    recurse(depth + 1).wrapping_add(buffer[63])
}

fn sleep_secs(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}

/// Starts `engine-fault sleeper[-setsid] --tag TAG` and waits until it is set up, with no
/// stdio of ours, so that a process left behind cannot keep the test's pipes open.
fn start_sleeper(args: &Args, own_session: bool) -> Child {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mode = if own_session {
        "sleeper-setsid"
    } else {
        "sleeper"
    };
    let mut child = Command::new(exe)
        .arg(mode)
        .args(["--sleep-secs", &args.sleep_secs.to_string()])
        .args(["--tag", &args.tag])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {mode}: {e}"));
    let mut ready = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut ready);
    }
    assert_eq!(ready, "ready\n", "{mode} did not start");
    child
}

/// Sends a signal by number, which `nix::sys::signal::Signal` cannot name for real-time
/// signals, through procps `kill`.
fn signal_with_kill_command(signal: &str, pid: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
}

/// Gives up every capability over the namespaces we are in, and becomes a user that runs
/// no other process, as far as RLIMIT_NPROC counts.
///
/// Root becomes a uid that nothing else uses (RLIMIT_NPROC does not apply to root, which
/// a new user namespace would not change). Anyone else enters a new user namespace: it
/// has no capability over the namespaces it came from, and its own process count.
fn drop_privileges() {
    if geteuid().is_root() {
        let unused = Uid::from_raw(1_900_000_000 + std::process::id() % 1_000_000);
        setresuid(unused, unused, unused)
            .unwrap_or_else(|e| fail_setup(&format!("setresuid({unused}): {e}")));
    } else {
        unshare(CloneFlags::CLONE_NEWUSER).unwrap_or_else(|e| {
            fail_setup(&format!(
                "unshare(CLONE_NEWUSER): {e} (without root, unprivileged user namespaces \
                 are needed)"
            ))
        });
    }
}

/// Processes whose parent is `pid`, zombies included, as (pid, state).
fn children_of(pid: i32) -> Vec<(i32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        fail_setup("cannot list /proc");
    };
    let mut children = Vec::new();
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        // Gone since the listing, or not readable: not a child of ours either way.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain anything, so parse after it.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let parent = fields.next().and_then(|s| s.parse::<i32>().ok());
        if parent == Some(pid) {
            children.push((child, state));
        }
    }
    children
}

/// What a non-blocking wait for any child says: "ECHILD" when there is none.
fn wait_any() -> String {
    match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
        Err(Errno::ECHILD) => "ECHILD".to_owned(),
        Ok(WaitStatus::StillAlive) => "a child is still running".to_owned(),
        Ok(status) => format!("reaped a leftover: {status:?}"),
        Err(errno) => format!("waitpid: {errno}"),
    }
}

fn count_own_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| entries.count())
        .unwrap_or_else(|e| fail_setup(&format!("list /proc/self/fd: {e}")))
}

/// Just enough JSON for one flat object.
#[derive(Default)]
struct JsonObject {
    text: String,
}

impl JsonObject {
    fn raw(&mut self, key: &str, value: &str) {
        self.text
            .push_str(if self.text.is_empty() { "{" } else { "," });
        self.text.push_str(&json_string(key));
        self.text.push(':');
        self.text.push_str(value);
    }

    fn string(&mut self, key: &str, value: &str) {
        self.raw(key, &json_string(value));
    }

    fn finish(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push('}');
        self.text
    }
}

fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The namespaces this process is in, as `/proc/self/ns` names them.
fn own_namespaces() -> Vec<String> {
    [
        "net",
        "pid",
        "mnt",
        "uts",
        "ipc",
        "cgroup",
        "user",
        "pid_for_children",
    ]
    .iter()
    .map(|kind| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .map(|target| target.display().to_string())
            .unwrap_or_default()
    })
    .collect()
}
