//! Bad input: one clear line on stderr, the documented exit status, and a JSON error
//! document where the contract asks for one.

use std::process::Command;

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
