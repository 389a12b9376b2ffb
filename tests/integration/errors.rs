//! Bad input: one clear line on stderr, the documented exit status, and a JSON error
//! document where the contract asks for one.

use std::process::{Command, Stdio};

use crate::util::{nshelper, require_root, Run, World};

fn run(args: &[&str]) -> Run {
    let output = Command::new("timeout")
        .arg("60")
        .arg(nshelper())
        .args(args)
        .output()
        .expect("run nshelper");
    Run {
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code().expect("exit status"),
    }
}

#[test]
fn usage_errors_exit_2_with_one_line_and_no_document() {
    for args in [
        &["query", "--pid", "abc"][..],
        &["query", "--pid", "-5"],
        &["query", "--pid", "99999999999"],
        &["query", "--pid"],
        &["query", "bogus"],
        &["query", "--ns", "net"],
        &["query", "--pid", "1", "--ns", "net,bogus"],
        &["query", "--all", "--pid", "1"],
        &["query", "--all", "--netns", "red"],
        &["query", "--ns", "net", "--netns", "red"],
        &["query", "links", "addrs"],
        &["whois"],
        &["list", "--pid", "1"],
        &["query", "--netns", ""],
        &["query", "--timeout", "0"],
        &["query", "--timeout", "soon"],
        &["query", "--frobnicate"],
        &["frobnicate"],
    ] {
        let run = run(args);
        assert_eq!(run.status, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?} printed on stdout: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {:?}", run.stderr);
        assert!(
            run.stderr.starts_with("nshelper: "),
            "{args:?}: {:?}",
            run.stderr
        );
        assert_next_step(&run.stderr, "--help' for the options and examples");
    }
}

/// Asserts that every line of `stderr` ends with what to do next: a last clause, after
/// `; `, that opens with something to do, and that one of them holds `expected`.
fn assert_next_step(stderr: &str, expected: &str) {
    const VERBS: [&str; 9] = [
        "check", "give", "run", "try", "mount", "query", "report", "remove", "see",
    ];
    assert!(!stderr.is_empty(), "nothing on stderr");
    for line in stderr.lines() {
        assert!(line.starts_with("nshelper: "), "{line}");
        let (_, hint) = line
            .rsplit_once("; ")
            .unwrap_or_else(|| panic!("no next step in {line:?}"));
        assert!(
            VERBS
                .iter()
                .any(|verb| hint.strip_prefix(verb).is_some_and(|r| r.starts_with(' '))),
            "the last clause of {line:?} says nothing to do"
        );
    }
    assert!(stderr.contains(expected), "{expected:?} not in {stderr:?}");
}

#[test]
fn every_error_says_what_to_do_next() {
    if !require_root("every_error_says_what_to_do_next") {
        return;
    }
    let world = World::run(
        "next-steps",
        r#"
        ip netns add red
        P=$(start_container)
        run_nshelper usage query --pid abc
        run_nshelper usage-exec exec --pid abc -- true
        run_nshelper conflict list -o table --pretty
        run_nshelper nopid query --pid 2147483000
        run_nshelper nopid-table query --pid 2147483000 -o table
        run_nshelper pid0 query --pid 0
        run_nshelper noname query --netns nosuch
        run_nshelper nopath query --netns /run/nosuch/net
        run_nshelper notns query --netns /etc/hostname
        run_nshelper wrongtype query --netns /proc/self/ns/uts
        run_nshelper dotdot query --netns ../netns/red
        run_nshelper whois-none whois no-such-interface
        run_nshelper exec-gone exec --pid 2147483000 -- true
        run_nshelper exec-missing exec --pid "$P" -- no-such-command
        echo data >/run/not-executable && chmod 644 /run/not-executable
        run_nshelper exec-noexec exec --pid "$P" -- /run/not-executable
        NSHELPER_REAL=$NSHELPER
        nobody() {
          local name=$1; shift
          NSHELPER=setpriv run_nshelper "$name" --reuid 65534 --regid 65534 --clear-groups             --inh-caps=-all --bounding-set=-all "$NSHELPER_REAL" "$@"
        }
        nobody denied query --pid "$P"
        nobody denied-netns query --netns red
        nobody denied-list list -o table
        nobody denied-exec exec --pid "$P" -- true
        # Root of a user namespace of its own: allowed to try, refused by the kernel.
        NSHELPER=unshare run_nshelper refused --user --map-root-user --net "$NSHELPER_REAL" query --netns /run/netns/red
        NSHELPER=strace run_nshelper slow -f -qq -o /dev/null -e trace=recvfrom           -e inject=recvfrom:delay_enter=3000000 "$NSHELPER_REAL" query --timeout 0.5
        "#,
    );
    for (name, status, expected) in [
        ("usage", 2, "run 'nshelper query --help'"),
        ("usage-exec", 125, "run 'nshelper exec --help'"),
        ("conflict", 2, "run 'nshelper list --help'"),
        ("nopid", 1, "check the pid with ps"),
        ("nopid-table", 1, "check the pid with ps"),
        ("pid0", 1, "give the pid of a process inside the container"),
        ("noname", 1, "check the name with ip netns list"),
        ("nopath", 1, "check the path"),
        ("notns", 1, "give a network namespace file"),
        ("wrongtype", 1, "/proc/PID/ns/net"),
        ("dotdot", 1, "without '..'"),
        ("whois-none", 1, "check the spelling"),
        ("exec-gone", 125, "check the pid with ps"),
        (
            "exec-missing",
            127,
            "check that it is installed inside the target",
        ),
        ("exec-noexec", 126, "check inside the target"),
        ("denied", 1, "run it as root, for example with sudo"),
        ("denied-netns", 1, "run it as root, for example with sudo"),
        ("denied-list", 1, "run it as root, for example with sudo"),
        ("denied-exec", 125, "run it as root, for example with sudo"),
        ("refused", 1, "run nshelper as root of the host"),
        ("slow", 1, "try a longer --timeout"),
    ] {
        let run = world.nshelper_run(name);
        // strace's own complaints are not nshelper's.
        let stderr: String = run
            .stderr
            .lines()
            .filter(|line| !line.starts_with("strace: "))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(run.status, status, "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert_next_step(&stderr, expected);
    }
}

#[test]
fn help_and_version_exit_0() {
    let version = run(&["--version"]);
    assert_eq!(version.status, 0);
    let text = String::from_utf8(version.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("nshelper {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run(&["query", "--help"]);
    assert_eq!(help.status, 0);
    let text = String::from_utf8(help.stdout).unwrap();
    for expected in [
        "--pid",
        "--netns",
        "--ns",
        "--pretty",
        "Examples:",
        "Exit status",
    ] {
        assert!(text.contains(expected), "help lacks {expected}: {text}");
    }
    let exec_help = run(&["exec", "--help"]);
    assert_eq!(exec_help.status, 0);
    let text = String::from_utf8(exec_help.stdout).unwrap();
    for expected in [
        "--clear-env",
        "ip netns exec",
        "125",
        "126",
        "127",
        "128+N",
        "SIGTERM",
    ] {
        assert!(
            text.contains(expected),
            "exec help lacks {expected}: {text}"
        );
    }
    let top = String::from_utf8(run(&["--help"]).stdout).unwrap();
    for command in ["query", "list", "whois", "exec"] {
        assert!(top.contains(command), "help lacks {command}: {top}");
    }
}

#[test]
fn a_process_that_does_not_exist_is_not_found() {
    let run = run(&["query", "links", "--pid", "2147483000"]);
    let error = run.only_error("not_found");
    assert_eq!(
        error["target"],
        serde_json::json!({"kind": "pid", "pid": 2147483000u32})
    );
    assert!(run.stderr.contains("not_found"), "{}", run.stderr);
}

#[test]
fn files_that_are_not_network_namespaces_are_invalid_targets() {
    let fifo = std::env::temp_dir().join(format!("nshelper-fifo-{}", std::process::id()));
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let fifo_path = fifo.to_str().unwrap().to_owned();
    for path in [
        "/etc/hostname",
        "/proc/self/ns/pid",
        "/dev/null",
        "/tmp",
        // A FIFO must be refused without opening it for reading, which would block.
        &fifo_path,
    ] {
        let run = run(&["query", "--netns", path]);
        let error = run.only_error("invalid_target");
        assert_eq!(
            error["target"],
            serde_json::json!({"kind": "netns", "name": null, "path": path})
        );
    }
    let _ = std::fs::remove_file(fifo);
}

#[test]
fn missing_namespace_files_are_not_found() {
    if !require_root("missing_namespace_files_are_not_found") {
        return;
    }
    // In a world of our own, so that /run/netns is a private, empty tmpfs.
    let world = World::run(
        "missing-netns",
        r#"
        run_nshelper byname query --netns nosuch
        run_nshelper bypath query --netns /run/netns/nosuch/
        run_nshelper pretty query --netns nosuch --pretty
        "#,
    );
    let by_name = world.nshelper_run("byname");
    let error = by_name.only_error("not_found");
    assert_eq!(
        error["target"],
        serde_json::json!({"kind": "netns", "name": "nosuch", "path": "/run/netns/nosuch"})
    );
    assert!(by_name
        .stderr
        .starts_with("nshelper: netns nosuch: not_found: "));
    world.nshelper_run("bypath").only_error("not_found");
    let pretty = world.nshelper_run("pretty");
    pretty.only_error("not_found");
    assert!(pretty.stdout.iter().filter(|&&b| b == b'\n').count() > 3);
}

/// Runs nshelper under strace, which makes the query process's netlink reads misbehave
/// the way `fault` says, and returns the run.
fn with_injected_fault(test: &str, fault: &str, args: &str) -> Option<Run> {
    if !require_root(test) {
        return None;
    }
    let world = World::run(
        test,
        &format!(
            r#"
        NSHELPER_REAL=$NSHELPER
        NSHELPER=strace
        run_nshelper faulty -f -qq -o /dev/null -e trace=recvfrom -e inject=recvfrom:{fault} "$NSHELPER_REAL" {args}
        "#
        ),
    );
    let run = world.nshelper_run("faulty");
    Some(Run {
        stdout: run.stdout,
        // strace's own complaints (about a process killed while it delayed it) are not
        // nshelper's.
        stderr: run
            .stderr
            .lines()
            .filter(|line| !line.starts_with("strace: "))
            .map(|line| format!("{line}\n"))
            .collect(),
        status: run.status,
    })
}

#[test]
fn a_query_slower_than_the_timeout_is_a_timeout_error() {
    let Some(run) = with_injected_fault(
        "a_query_slower_than_the_timeout_is_a_timeout_error",
        "delay_enter=3000000",
        "query --timeout 0.5",
    ) else {
        return;
    };
    let error = run.only_error("timeout");
    assert_eq!(error["target"], serde_json::json!({"kind": "self"}));
}

#[test]
fn a_query_process_killed_midway_is_child_failed() {
    let Some(run) = with_injected_fault(
        "a_query_process_killed_midway_is_child_failed",
        "signal=SIGKILL",
        "query",
    ) else {
        return;
    };
    let error = run.only_error("child_failed");
    assert!(
        error["message"].as_str().unwrap().contains("signal 9"),
        "{error}"
    );
}

#[test]
fn a_failing_netlink_read_is_a_netlink_error() {
    let Some(run) = with_injected_fault(
        "a_failing_netlink_read_is_a_netlink_error",
        "error=EIO",
        "query",
    ) else {
        return;
    };
    let error = run.only_error("netlink");
    assert!(
        error["message"].as_str().unwrap().contains("EIO"),
        "{error}"
    );
}

/// Runs nshelper under strace with a fault injected, expecting it to recover: status 0.
fn recovers_from(test: &str, fault: &str) {
    let Some(run) = with_injected_fault(test, fault, "query") else {
        return;
    };
    let result = run.only_result();
    assert!(!result["links"].as_array().unwrap().is_empty());
}

#[test]
fn an_interrupted_netlink_read_is_retried() {
    recovers_from(
        "an_interrupted_netlink_read_is_retried",
        "error=EINTR:when=1",
    );
}

#[test]
fn an_overrun_netlink_socket_restarts_the_dump() {
    recovers_from(
        "an_overrun_netlink_socket_restarts_the_dump",
        "error=ENOBUFS:when=2",
    );
}

#[test]
fn every_bad_target_is_one_json_error_one_line_and_status_1() {
    if !require_root("every_bad_target_is_one_json_error_one_line_and_status_1") {
        return;
    }
    let world = World::run(
        "bad-targets",
        r#"
        ip netns add red
        mkdir -p /run/somedir
        echo text >/run/somefile
        # A zombie: its parent execs into something that never reaps it.
        sh -c 'sleep 0.01 & echo $! >"$OUT/zombie"; exec sleep 600' </dev/null >/dev/null 2>&1 &
        until [ -s "$OUT/zombie" ] && grep -q '^State:.*Z' "/proc/$(cat "$OUT/zombie")/status" 2>/dev/null; do sleep 0.02; done
        Z=$(cat "$OUT/zombie")
        run_nshelper nopid query --pid 999999
        run_nshelper pid0 query --pid 0
        run_nshelper zombie query --pid "$Z"
        run_nshelper file query --netns /run/somefile
        run_nshelper dir query --netns /run/somedir
        run_nshelper wrongtype query --netns /proc/self/ns/uts
        run_nshelper dotdot query --netns ../netns/red
        run_nshelper dotdotname query --netns ..
        run_nshelper noname query --netns nosuch
        run_nshelper exec-zombie exec --pid "$Z" -- true
        "#,
    );
    for (name, kind) in [
        ("nopid", "not_found"),
        ("pid0", "invalid_target"),
        ("zombie", "not_found"),
        ("file", "invalid_target"),
        ("dir", "invalid_target"),
        ("wrongtype", "invalid_target"),
        ("dotdot", "invalid_target"),
        ("dotdotname", "invalid_target"),
        ("noname", "not_found"),
    ] {
        let run = world.nshelper_run(name);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        run.only_error(kind);
    }
    let exec = world.nshelper_run("exec-zombie");
    assert_eq!(exec.status, 125, "{}", exec.stderr);
    assert_eq!(exec.stderr.lines().count(), 1);
}

#[test]
fn a_kernel_thread_is_an_invalid_target() {
    // Kernel threads are seen only from the initial pid namespace, where the tests run.
    let status = std::fs::read_to_string("/proc/2/status").unwrap_or_default();
    assert!(
        status.lines().any(|l| l == "Kthread:\t1") || !status.contains("Kthread:"),
        "pid 2 is kthreadd on Linux"
    );
    let run = run(&["query", "--pid", "2"]);
    let error = run.only_error("invalid_target");
    assert!(error["message"].as_str().unwrap().contains("kernel thread"));
}

#[test]
fn a_target_that_exits_while_it_is_opened_is_not_found() {
    if !require_root("a_target_that_exits_while_it_is_opened_is_not_found") {
        return;
    }
    // strace holds nshelper just after it pinned the target with a pidfd, while the target
    // dies and its pid is freed; the pidfd then tells the stale /proc/PID apart.
    let world = World::run(
        "exits-midway",
        r#"
        P=$(start_container)
        strace -f -qq -o /dev/null -e trace=pidfd_open -e inject=pidfd_open:delay_exit=800000:when=1 \
          "$NSHELPER" query --pid "$P" >"$OUT/midway.out" 2>"$OUT/midway.err" &
        ST=$!
        sleep 0.4
        kill -9 "$P"
        rc=0; wait "$ST" || rc=$?
        echo "$rc" >"$OUT/midway.rc"
        "#,
    );
    let run = world.nshelper_run("midway");
    let stderr: String = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("strace: "))
        .map(|l| format!("{l}\n"))
        .collect();
    let run = Run {
        stdout: run.stdout,
        stderr,
        status: run.status,
    };
    run.only_error("not_found");
}

#[test]
fn an_overrun_during_a_walk_keeps_each_namespace_its_own_links() {
    if !require_root("an_overrun_during_a_walk_keeps_each_namespace_its_own_links") {
        return;
    }
    // One child reads both namespaces; an overrun while it reads red must not be answered
    // from blue, where that child stands last.
    let world = World::run(
        "walk-overrun",
        r#"
        ip netns add red
        ip netns add blue
        ip -n red link add name only-red type bridge
        ip -n blue link add name only-blue type bridge
        NSHELPER_REAL=$NSHELPER
        NSHELPER=strace
        run_nshelper walk -f -qq -o /dev/null -e trace=recvfrom -e inject=recvfrom:error=ENOBUFS:when=1 "$NSHELPER_REAL" query links --netns red --netns blue
        "#,
    );
    let run = world.nshelper_run("walk");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let document = run.document();
    let names = |at: usize| -> Vec<String> {
        document["results"][at]["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(document["results"][0]["target"]["name"], "red");
    assert_eq!(names(0), ["lo", "only-red"]);
    assert_eq!(names(1), ["lo", "only-blue"]);
}

#[test]
fn a_target_that_dies_while_it_is_being_entered_is_not_found() {
    if !require_root("a_target_that_dies_while_it_is_being_entered_is_not_found") {
        return;
    }
    // strace holds the fork into the target's pid namespace while its init, the target,
    // is killed: the fork then fails (ENOMEM), and the cause is the target's death.
    let world = World::run(
        "dies-midway",
        r#"
        for run in query exec; do
          P=$(start_container)
          if [ "$run" = query ]; then args="query --pid $P"; else args="exec --pid $P -- true"; fi
          strace -f -qq -o /dev/null -e trace=clone,fork,vfork -e inject=clone:delay_enter=800000:when=1 \
            "$NSHELPER" $args >"$OUT/$run.out" 2>"$OUT/$run.err" &
          ST=$!
          sleep 0.4
          kill -9 "$P"
          rc=0; wait "$ST" || rc=$?
          echo "$rc" >"$OUT/$run.rc"
        done
        "#,
    );
    let query = world.nshelper_run("query");
    let stderr: String = query
        .stderr
        .lines()
        .filter(|l| !l.starts_with("strace: "))
        .map(|l| format!("{l}\n"))
        .collect();
    let query = Run {
        stdout: query.stdout,
        stderr,
        status: query.status,
    };
    query.only_error("not_found");
    let exec = world.nshelper_run("exec");
    assert_eq!(exec.status, 125, "{}", exec.stderr);
    assert!(exec.stderr.contains("not_found"), "{}", exec.stderr);
}

#[test]
fn a_slow_namespace_times_out_alone_and_the_others_still_answer() {
    if !require_root("a_slow_namespace_times_out_alone_and_the_others_still_answer") {
        return;
    }
    // One child reads both; 10,000 links take far longer than 50 ms to read, two do not.
    let world = World::run(
        "walk-timeout",
        r#"
        ip netns add small
        ip netns add big
        for i in $(seq 1 5000); do echo "link add name va$i type veth peer name vb$i"; done >"$OUT/batch"
        ip -n big -batch "$OUT/batch"
        run_nshelper both query links --timeout 0.05 --netns small --netns big
        "#,
    );
    let run = world.nshelper_run("both");
    assert_eq!(run.status, 1, "{}", run.stderr);
    let document = run.document();
    let results = document["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{document}");
    assert_eq!(results[0]["target"]["name"], "small");
    let errors = document["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{document}");
    assert_eq!(errors[0]["target"]["name"], "big");
    assert_eq!(errors[0]["kind"], "timeout");
}

/// A reader that went away before the output was written is a failure to write it, reported
/// as the contract says (status 1, one line on stderr), whatever SIGPIPE's disposition was
/// when nshelper started: here it is the default, which std's `Command` restores in a child.
#[test]
fn a_reader_that_went_away_is_status_1_and_one_line() {
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    drop(reader);
    assert_unwritable(Stdio::from(writer), "Broken pipe");
}

/// A stdout that cannot be written (here /dev/null opened read-only, which is what glibc puts
/// in place of a closed stdout for a setuid program, as `sudo nshelper ... >&-` is) fails the
/// write: std's own stdout would take the EBADF for success and exit 0 with nothing printed.
#[test]
fn a_stdout_open_only_for_reading_is_status_1_and_one_line() {
    let read_only = std::fs::File::open("/dev/null").expect("open /dev/null");
    assert_unwritable(Stdio::from(read_only), "Bad file descriptor");
}

/// Runs `nshelper schema` with `stdout`, and asserts that the write failed as the contract
/// says, for the reason `error` names.
fn assert_unwritable(stdout: Stdio, error: &str) {
    let output = Command::new(nshelper())
        .arg("schema")
        .stdout(stdout)
        .output()
        .expect("run nshelper");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains(error), "{stderr:?}");
    assert_next_step(
        &stderr,
        "check that stdout is open and that what reads it reads to the end",
    );
}

/// Started with stdin and stdout closed, nshelper must neither let a descriptor it opens take
/// their numbers (the query would read or write a namespace file or its own report pipe as
/// stdio) nor drop its result silently: the query runs, and the lost output is status 1.
#[test]
fn a_query_started_with_stdio_closed_runs_and_says_its_output_has_nowhere_to_go() {
    if !require_root("a_query_started_with_stdio_closed_runs_and_says_its_output_has_nowhere_to_go")
    {
        return;
    }
    let world = World::run(
        "stdio-closed",
        r#"
c=$(start_container)
rc=0
"$NSHELPER" query links --pid "$c" <&- >&- 2>"$OUT/closed.err" || rc=$?
echo "$rc" >"$OUT/closed.rc"
rc=0
"$NSHELPER" query links --pid "$c" -v <&- >&- 2>"$OUT/verbose.err" || rc=$?
echo "$rc" >"$OUT/verbose.rc"
"#,
    );
    assert_eq!(world.read("closed.rc").trim(), "1");
    let stderr = world.read("closed.err");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("stdout is closed"), "{stderr:?}");
    assert_next_step(&stderr, "check that stdout is open");
    // The query itself ran to the end: -v shows its steps, and only the write failed.
    assert_eq!(world.read("verbose.rc").trim(), "1");
    let verbose = world.read("verbose.err");
    assert!(verbose.contains("stdout is closed"), "{verbose:?}");
    assert!(verbose.contains(": a report of "), "{verbose:?}");
    assert!(!verbose.contains("child_failed"), "{verbose:?}");
}
