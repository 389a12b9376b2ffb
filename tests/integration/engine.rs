//! The fork/setns/fork engine against real misbehaving queries, through the test-only
//! `engine-fault` binary (tests/src/bin/engine-fault.rs): every way a query process can end
//! must come back as the right `NsError`, a big result must not deadlock the pipe, the
//! timeout must be honoured, and no process may be left behind.
//!
//! The queries run in engine-fault's own namespaces, so none of this needs root. Each run
//! goes through `timeout 60`, so an engine that hangs fails the test instead of hanging it,
//! and writes to files rather than pipes, so a process left behind cannot keep the test
//! waiting for end of file. Nothing here measures time.

use nshelper_tests::{fnv1a, pattern};
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::util;

/// The size of the `ok-huge` result: 128 times a default pipe buffer.
const HUGE_LEN: usize = 8 << 20;
/// The size of the `query-error-huge` error.
const HUGE_ERROR_LEN: usize = 1 << 20;

/// What one engine-fault run printed.
struct Run {
    doc: Value,
    stderr: String,
}

/// Runs `engine-fault MODE OPTIONS...` and checks what every mode must leave behind:
/// exactly one line of JSON, no child process, no stray process anywhere that came from
/// the run, and no descriptor more than before.
fn run(mode: &str, options: &[&str]) -> Run {
    let (run, survivors) = run_allowing_survivors(mode, options);
    assert!(
        survivors.is_empty(),
        "engine-fault {mode}: processes outlived it (killed now): {survivors:?}\nstderr: {}",
        run.stderr
    );
    assert_eq!(
        run.doc["leftover_children"], 0,
        "children left: {}",
        run.doc
    );
    assert_eq!(run.doc["wait_any"], "ECHILD", "children left: {}", run.doc);
    run
}

/// Runs engine-fault MODE and returns its report and the processes that outlived it (killed
/// by then), without judging them.
fn run_allowing_survivors(mode: &str, options: &[&str]) -> (Run, Vec<(i32, String)>) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tag = format!(
        "engine-fault-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir).expect("create output directory");
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let status = Command::new("timeout")
        .args(["--kill-after=5", "60"])
        .arg(util::workspace_bin("engine-fault"))
        .arg(mode)
        .args(options)
        .args(["--tag", &tag])
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("create stdout file"))
        .stderr(File::create(&stderr_path).expect("create stderr file"))
        .status()
        .expect("run timeout engine-fault");
    let stdout = std::fs::read_to_string(&stdout_path).expect("read stdout");
    let stderr = std::fs::read_to_string(&stderr_path).expect("read stderr");
    let _ = std::fs::remove_dir_all(&dir);

    // Every process forked from engine-fault, and every sleeper it starts, has the tag in
    // its command line. Killed before asserting, so a failure leaves nothing running.
    let survivors = kill_tagged(&tag);
    assert!(
        status.success(),
        "engine-fault {mode} failed ({status}; status 124 means it hung until `timeout` \
         killed it)\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "engine-fault {mode} must print one line:\n{stdout}"
    );
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("engine-fault {mode} printed invalid JSON ({e}): {stdout}"));
    assert_eq!(doc["mode"], mode, "{doc}");
    assert!(doc["fds_before"].is_u64(), "{doc}");
    assert_eq!(
        doc["fds_before"], doc["fds_after"],
        "descriptors leaked: {doc}"
    );
    assert_eq!(
        doc["namespaces_unchanged"], true,
        "the caller's namespaces changed: {doc}"
    );
    (Run { doc, stderr }, survivors)
}

/// Kills (SIGKILL) every process with `tag` as an argument, and returns what it found.
fn kill_tagged(tag: &str) -> Vec<(i32, String)> {
    let found = tagged(tag);
    for (pid, _) in &found {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    found
}

/// Every process with `tag` as an argument.
fn tagged(tag: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|arg| arg == tag.as_bytes()) {
            let printable = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, printable));
        }
    }
    found
}

/// Asserts that `wait` returned `Ok` and returns the document.
fn ok(run: &Run) -> &Value {
    assert_eq!(
        run.doc["outcome"], "ok",
        "{}\nstderr: {}",
        run.doc, run.stderr
    );
    &run.doc
}

/// Asserts that `wait` returned exactly the error whose `Debug` form is `debug`.
fn error(run: &Run, variant: &str, debug: &str) {
    let doc = &run.doc;
    assert_eq!(doc["outcome"], "error", "{doc}\nstderr: {}", run.stderr);
    assert_eq!(doc["error"], variant, "{doc}\nstderr: {}", run.stderr);
    assert_eq!(doc["debug"], debug, "{doc}\nstderr: {}", run.stderr);
    assert!(
        doc["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
}

fn own_namespace_inode(kind: &str) -> u64 {
    let link = std::fs::read_link(PathBuf::from("/proc/self/ns").join(kind))
        .unwrap_or_else(|e| panic!("readlink /proc/self/ns/{kind}: {e}"));
    let text = link.to_string_lossy();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no inode in {text:?}"))
}

#[test]
fn ok_small_result_arrives_intact() {
    let run = run("ok-small", &[]);
    let doc = ok(&run);
    assert_eq!(doc["text"], "hello", "{doc}");
    assert_eq!(doc["len"], 5, "{doc}");
}

/// An empty result is a result (just the tag on the pipe), not a missing report.
#[test]
fn ok_empty_result_is_not_a_malformed_report() {
    let run = run("ok-empty", &[]);
    let doc = ok(&run);
    assert_eq!(doc["len"], 0, "{doc}");
}

/// 8 MiB cannot sit in a pipe: the parent must read while the query process writes and
/// reap only after end of file, or both block until `timeout` kills the run.
#[test]
fn ok_huge_result_is_read_whole_without_deadlock() {
    let run = run("ok-huge", &[]);
    let doc = ok(&run);
    assert_eq!(doc["len"], HUGE_LEN, "{doc}");
    assert_eq!(doc["fnv"], fnv_text(&pattern(HUGE_LEN)), "{doc}");
    assert_eq!(doc["matches_pattern"], true, "{doc}");
}

#[test]
fn query_error_comes_back_as_query_with_its_bytes() {
    let run = run("query-error", &[]);
    error(&run, "Query", "Query([98, 111, 111, 109])");
    assert_eq!(run.doc["query_text"], "boom", "{}", run.doc);
}

/// A query error bigger than the pipe buffer is read whole too.
#[test]
fn huge_query_error_is_read_whole_without_deadlock() {
    let run = run("query-error-huge", &[]);
    let doc = &run.doc;
    assert_eq!(doc["outcome"], "error", "{doc}");
    assert_eq!(doc["error"], "Query", "{doc}");
    assert_eq!(doc["query_len"], HUGE_ERROR_LEN, "{doc}");
    assert_eq!(
        doc["query_fnv"],
        fnv_text(&pattern(HUGE_ERROR_LEN)),
        "{doc}"
    );
}

#[test]
fn panic_is_reported_as_panicked() {
    let run = run("panic", &[]);
    // The children's stderr is /dev/null: nothing from inside a target reaches the
    // caller's terminal, a panic message included.
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    if run.doc["panic_strategy"] == "unwind" {
        error(&run, "Panicked", "Panicked");
    } else {
        // Built with `panic = "abort"` (the release profile), a panic is an abort.
        assert_eq!(run.doc["panic_strategy"], "abort", "{}", run.doc);
        error(&run, "Killed", "Killed(6)");
    }
}

#[test]
fn abort_is_reported_as_killed_by_sigabrt() {
    let run = run("abort", &[]);
    error(&run, "Killed", "Killed(6)");
}

#[test]
fn sigsegv_is_reported_as_killed_by_sigsegv() {
    let run = run("segv", &[]);
    error(&run, "Killed", "Killed(11)");
}

#[test]
fn sigkill_is_reported_as_killed_by_sigkill() {
    let run = run("kill-self", &[]);
    error(&run, "Killed", "Killed(9)");
}

/// The standard library turns a stack overflow into an abort.
#[test]
fn stack_overflow_is_reported_as_killed_by_sigabrt() {
    let run = run("stack-overflow", &[]);
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    error(&run, "Killed", "Killed(6)");
}

/// `process::exit` inside the query skips the report; its status is passed on.
#[test]
fn exit_inside_the_query_is_reported_with_its_status() {
    let run = run("exit-3", &[]);
    error(&run, "Exited", "Exited(3)");
}

/// Status 1 is also what the engine uses for reported failures: without a report it must
/// still be a plain exit, not a decoding error.
#[test]
fn exit_1_without_a_report_is_a_plain_exit() {
    let run = run("exit-1", &[]);
    error(&run, "Exited", "Exited(1)");
}

/// Status 0 without a result must not pass for success.
#[test]
fn exit_0_without_a_report_is_a_malformed_report() {
    let run = run("exit-0", &[]);
    error(&run, "MalformedReport", "MalformedReport");
}

/// A query that sleeps for 600 s: `wait` must give up after the timeout, kill the query
/// process and its parent, and reap both. A broken timeout makes `timeout 60` kill the run;
/// a query process left alive is found by its tag.
#[test]
fn hanging_query_times_out_and_is_killed() {
    let run = run("hang", &["--timeout-ms", "500"]);
    error(&run, "Timeout", "Timeout(500ms)");
}

/// Dropping a `RunningQuery` without waiting kills and reaps a query that would sleep for
/// 600 s.
#[test]
fn dropping_a_running_query_kills_and_reaps_it() {
    let run = run("drop", &[]);
    assert_eq!(run.doc["outcome"], "dropped", "{}", run.doc);
}

/// The query process is the caller's own child (the middle process forks it with
/// CLONE_PARENT and exits): when the caller dies, here killed by the query process itself,
/// the query process dies with it (parent-death signal) rather than sleep on for ten
/// minutes.
#[test]
fn the_query_process_dies_with_its_caller() {
    let tag = format!("engine-fault-test-{}-kill-caller", std::process::id());
    let status = Command::new(util::workspace_bin("engine-fault"))
        .args(["kill-caller", "--tag", &tag])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run engine-fault");
    assert_eq!(
        status.signal(),
        Some(9),
        "engine-fault kill-caller: {status}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !tagged(&tag).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let survivors = kill_tagged(&tag);
    assert!(
        survivors.is_empty(),
        "the query process outlived its caller (killed now): {survivors:?}"
    );
}

/// A query that leaves a process running in its process group and returns: the result
/// still arrives, and that process is killed and reaped.
#[test]
fn background_process_of_a_query_is_killed_and_reaped() {
    let run = run("background", &[]);
    let doc = ok(&run);
    assert_eq!(doc["text"], "started a background process", "{doc}");
}

/// spawn refuses to fork a process with another thread, which could hold a lock forever
/// in the child.
#[test]
fn second_thread_is_refused() {
    let run = run("threads", &[]);
    error(&run, "NotSingleThreaded", "NotSingleThreaded(2)");
}

/// The query gets the inodes of the namespaces its process is in: with no namespace to
/// join, those of engine-fault, which runs in the test's namespaces.
#[test]
fn query_gets_the_inodes_of_its_own_namespaces() {
    let run = run("namespaces", &[]);
    let doc = ok(&run);
    let expected = format!(
        "net={},pid={},mnt={}",
        own_namespace_inode("net"),
        own_namespace_inode("pid"),
        own_namespace_inode("mnt")
    );
    assert_eq!(doc["text"], json!(expected), "{doc}");
}

/// A real setns failure in the middle process: engine-fault opens its own network
/// namespace, then gives up its privileges (a spare uid for root, a new user namespace
/// otherwise), so joining it is refused.
#[test]
fn setns_failure_is_reported_as_join_with_its_errno() {
    let run = run("join-denied", &[]);
    error(&run, "Join", "Join { ns: Net, errno: EPERM }");
}

/// A real fork failure in the middle process: as a user that runs nothing else and with
/// RLIMIT_NPROC at 2, the middle process can be forked but the query process cannot.
#[test]
fn failed_second_fork_is_reported_with_its_errno() {
    let run = run("fork-limit", &[]);
    error(
        &run,
        "Sys",
        "Sys { call: \"fork into the target's pid namespace\", errno: EAGAIN }",
    );
}

#[test]
fn real_time_signal_is_reported_with_its_number() {
    // nix cannot name signals above 31; the raw wait status still carries them.
    let run = run("rt-signal", &[]);
    error(&run, "Killed", "Killed(40)");
}

/// When the caller's children are born in another pid namespace than its own (here after
/// `unshare --pid`), a pid the middle process sees is not one the caller could wait for:
/// the middle process then waits for the query process itself and passes its status on,
/// a real-time signal's number included, and its result as usual.
#[test]
fn a_caller_whose_children_are_born_in_another_pid_namespace_still_gets_every_status() {
    if !util::require_root(
        "a_caller_whose_children_are_born_in_another_pid_namespace_still_gets_every_status",
    ) {
        return;
    }
    for (mode, expected) in [("ok-small", None), ("rt-signal", Some("Killed(40)"))] {
        let tag = format!("engine-fault-test-{}-unshared-{mode}", std::process::id());
        let output = Command::new("unshare")
            .arg("--pid")
            .arg(util::workspace_bin("engine-fault"))
            .args([mode, "--tag", &tag])
            .stdin(Stdio::null())
            .output()
            .expect("run unshare --pid engine-fault");
        let survivors = kill_tagged(&tag);
        assert!(survivors.is_empty(), "{mode}: left behind: {survivors:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{mode}: not one JSON line ({e}): {text}"));
        match expected {
            None => assert_eq!(doc["text"], "hello", "{mode}: {doc}"),
            Some(debug) => assert_eq!(doc["debug"], debug, "{mode}: {doc}"),
        }
        assert_eq!(doc["leftover_children"], 0, "{mode}: {doc}");
    }
}

/// A report that cannot be read to its end (here strace fails the caller's second poll of
/// the pipe, after the middle process has named the query process) is an error at once:
/// the query process, blocked on a full pipe with 8 MiB to write, is killed before anyone
/// waits for it, rather than waited for forever.
#[test]
fn a_failed_read_of_the_report_kills_the_query_process_before_waiting_for_it() {
    let tag = format!("engine-fault-test-{}-poll-fails", std::process::id());
    // strace counts per process: the caller's third poll is the second of the report (the
    // first is the Rust runtime's check of descriptors 0 to 2).
    let output = Command::new("timeout")
        .args([
            "--kill-after=5",
            "60",
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
        ])
        .args(["-e", "trace=poll", "-e", "inject=poll:error=EIO:when=3"])
        .arg(util::workspace_bin("engine-fault"))
        .args(["ok-huge", "--tag", &tag])
        .stdin(Stdio::null())
        .output()
        .expect("run strace engine-fault");
    let survivors = kill_tagged(&tag);
    assert!(
        output.status.success(),
        "engine-fault hung or failed ({}; 124 is a hang): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(survivors.is_empty(), "left behind: {survivors:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON line ({e}): {text}"));
    assert_eq!(doc["debug"], "Sys { call: \"poll\", errno: EIO }", "{doc}");
    assert_eq!(doc["leftover_children"], 0, "{doc}");
    assert_eq!(doc["wait_any"], "ECHILD", "{doc}");
}

#[test]
fn other_children_of_the_caller_are_left_alone() {
    let run = run("foreign-child", &["--sleep-secs", "2"]);
    ok(&run);
    assert_eq!(run.doc["foreign_child"], "running", "{}", run.doc);
}

#[test]
fn a_timeout_too_long_to_represent_means_no_deadline() {
    let run = run("ok-small", &["--timeout-secs", "18446744073709551615"]);
    assert_eq!(ok(&run)["text"], "hello");
}

#[test]
fn a_daemon_that_escaped_the_process_group_cannot_hold_the_result_back() {
    // It holds the report pipe open for 30 s; the result must come when the query ends,
    // not when the daemon does (the outer `timeout 60` would catch a wait for it).
    let (run, survivors) = run_allowing_survivors("escape", &["--sleep-secs", "30"]);
    assert_eq!(ok(&run)["text"], "started a daemon");
    // The daemon left the query's process group and session, so the group kill misses it:
    // a known limit, harmless for nshelper, whose queries start no processes.
    assert_eq!(survivors.len(), 1, "{survivors:?}");
    assert!(survivors[0].1.contains("sleeper-setsid"), "{survivors:?}");
}

#[test]
fn a_daemon_that_escaped_the_process_group_cannot_stop_the_timeout() {
    let (run, survivors) = run_allowing_survivors("escape-hang", &["--timeout-ms", "500"]);
    error(&run, "Timeout", "Timeout(500ms)");
    assert!(
        survivors
            .iter()
            .all(|(_, cmd)| cmd.contains("sleeper-setsid")),
        "{survivors:?}"
    );
}

#[test]
fn a_report_larger_than_the_limit_is_refused_and_its_writer_killed() {
    // The frame's tag makes the report one byte longer than the limit.
    let run = run("ok-oversized", &[]);
    error(
        &run,
        "ReportTooLarge",
        &format!("ReportTooLarge({})", 256 << 20),
    );
}

/// The checksum of `bytes` as engine-fault prints it.
fn fnv_text(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}
