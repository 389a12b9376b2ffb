//! `nshelper exec`: a command inside a target's namespaces, in place of nsenter and
//! `ip netns exec`.

use crate::util::{require_root, World};

/// The status and outputs of the `exec` runs of a scene: `run_exec NAME ARGS...` keeps
/// NAME.out, NAME.err and NAME.rc, as run_nshelper does.
fn status(world: &World, name: &str) -> i32 {
    world.read(&format!("{name}.rc")).trim().parse().unwrap()
}

#[test]
fn a_command_runs_inside_the_pid_and_mount_namespaces_of_a_process() {
    if !require_root("a_command_runs_inside_the_pid_and_mount_namespaces_of_a_process") {
        return;
    }
    let world = World::run(
        "exec-pid",
        r##"
        P=$(start_container)
        # A file, and a command, that exist only in the container's mount namespace.
        nsenter -t "$P" -m sh -c 'mount -t tmpfs tmpfs /mnt && echo only-here >/mnt/marker \
          && printf "#!/bin/sh\necho private-tool\n" >/mnt/tool && chmod 755 /mnt/tool \
          && echo data >/mnt/not-executable && chmod 644 /mnt/not-executable'
        run_nshelper inside exec --pid "$P" -- sh -c 'echo $$; readlink /proc/self/ns/pid; readlink /proc/self/ns/net; cat /mnt/marker'
        run_nshelper tool exec --pid "$P" -- /mnt/tool
        run_nshelper noexec exec --pid "$P" -- /mnt/not-executable
        run_nshelper missing exec --pid "$P" -- no-such-command
        run_nshelper gone exec --pid 2147483000 -- true
        run_nshelper netonly exec --pid "$P" --ns net -- readlink /proc/self/ns/pid /proc/self/ns/net
        save own-pid readlink /proc/self/ns/pid
        NSHELPER_REAL=$NSHELPER
        NSHELPER=setpriv
        run_nshelper unprivileged --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --bounding-set=-all "$NSHELPER_REAL" exec --pid "$P" -- true
        NSHELPER=$NSHELPER_REAL
        save target-pid readlink "/proc/$P/ns/pid"
        save target-net readlink "/proc/$P/ns/net"
        "##,
    );
    let inside = world.nshelper_run("inside");
    assert_eq!(inside.status, 0, "{}", inside.stderr);
    let out = String::from_utf8(inside.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let pid: u32 = lines[0].parse().unwrap();
    assert!(
        pid < 10,
        "a small pid inside the container's pid namespace: {pid}"
    );
    assert_eq!(lines[1], world.read("target-pid").trim());
    assert_eq!(lines[2], world.read("target-net").trim());
    assert_eq!(lines[3], "only-here");

    let tool = world.nshelper_run("tool");
    assert_eq!(tool.status, 0, "found inside the target: {}", tool.stderr);
    assert_eq!(String::from_utf8(tool.stdout).unwrap(), "private-tool\n");

    let noexec = world.nshelper_run("noexec");
    assert_eq!(noexec.status, 126, "{}", noexec.stderr);
    assert_eq!(noexec.stderr.lines().count(), 1, "{}", noexec.stderr);
    let missing = world.nshelper_run("missing");
    assert_eq!(missing.status, 127, "{}", missing.stderr);
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("no-such-command"));
    let gone = world.nshelper_run("gone");
    assert_eq!(gone.status, 125, "{}", gone.stderr);
    assert_eq!(gone.stderr.lines().count(), 1, "{}", gone.stderr);
    assert!(gone.stderr.contains("not_found"), "{}", gone.stderr);
    assert!(gone.stdout.is_empty());
    let unprivileged = world.nshelper_run("unprivileged");
    assert_eq!(unprivileged.status, 125, "{}", unprivileged.stderr);
    assert!(
        unprivileged.stderr.contains("permission_denied"),
        "{}",
        unprivileged.stderr
    );
    assert_eq!(unprivileged.stderr.lines().count(), 1);

    // --ns picks the namespaces as in query: here the network namespace alone.
    let net_only = world.nshelper_run("netonly");
    assert_eq!(net_only.status, 0, "{}", net_only.stderr);
    assert_eq!(
        String::from_utf8(net_only.stdout).unwrap(),
        format!("{}{}", world.read("own-pid"), world.read("target-net"))
    );
}

#[test]
fn netns_exec_behaves_as_ip_netns_exec() {
    if !require_root("netns_exec_behaves_as_ip_netns_exec") {
        return;
    }
    let world = World::run(
        "exec-netns",
        r#"
        # A private copy of /etc, so that /etc/netns/red can be made without touching the host.
        mkdir /run/etc && cp -a /etc/. /run/etc/ && mount --bind /run/etc /etc
        mkdir -p /etc/netns/red
        echo "192.0.2.1 only-in-red" >/etc/netns/red/hosts
        ip netns add red
        ip -n red link add name r1 type veth peer name r2
        run_nshelper sys exec --netns red -- ls /sys/class/net
        save ip-sys ip netns exec red ls /sys/class/net
        run_nshelper etc exec --netns red -- cat /etc/hosts
        run_nshelper bypath exec --netns /run/netns/red -- cat /etc/hosts
        save outside-sys ls /sys/class/net
        save outside-hosts cat /etc/hosts
        "#,
    );
    let sys = world.nshelper_run("sys");
    assert_eq!(sys.status, 0, "{}", sys.stderr);
    assert!(sys.stderr.is_empty(), "{}", sys.stderr);
    let listed = String::from_utf8(sys.stdout).unwrap();
    assert_eq!(listed, world.read("ip-sys"));
    assert_eq!(
        listed.split_whitespace().collect::<Vec<_>>(),
        ["lo", "r1", "r2"]
    );
    let etc = world.nshelper_run("etc");
    assert_eq!(
        String::from_utf8(etc.stdout).unwrap(),
        "192.0.2.1 only-in-red\n"
    );
    // A path names no /etc/netns directory; and nothing leaked out of the private mounts.
    let by_path = world.nshelper_run("bypath");
    assert_eq!(
        String::from_utf8(by_path.stdout).unwrap(),
        world.read("outside-hosts")
    );
    assert!(!world.read("outside-sys").contains("r1"));
}

#[test]
fn a_sys_that_cannot_be_mounted_is_a_warning_and_the_command_still_runs() {
    if !require_root("a_sys_that_cannot_be_mounted_is_a_warning_and_the_command_still_runs") {
        return;
    }
    // Root of a user namespace may mount sysfs only where sysfs is fully visible; covering
    // /sys/class makes it not, as a container runtime's masks do.
    let world = World::run(
        "exec-rootless",
        r#"
        mount -t tmpfs tmpfs /sys/class
        NSHELPER_REAL=$NSHELPER
        NSHELPER=unshare
        run_nshelper rootless --user --map-root-user --net "$NSHELPER_REAL" exec --netns /proc/self/ns/net -- echo ran
        "#,
    );
    let run = world.nshelper_run("rootless");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(String::from_utf8(run.stdout).unwrap(), "ran\n");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("warning"), "{}", run.stderr);
    assert!(run.stderr.contains("/sys"), "{}", run.stderr);
}

#[test]
fn io_exit_status_signals_descriptors_and_environment_pass_through() {
    if !require_root("io_exit_status_signals_descriptors_and_environment_pass_through") {
        return;
    }
    let world = World::run(
        "exec-io",
        r#"
        ip netns add red
        x() { run_nshelper "$@"; }
        echo "from stdin" | "$NSHELPER" exec --netns red -- cat >"$OUT/stdin.out"
        x ok exec --netns red -- true
        x stderr exec --netns red -- sh -c 'echo to-stderr >&2'
        x seven exec --netns red -- sh -c 'exit 7'
        x term exec --netns red -- sh -c 'kill -TERM $$'
        # Descriptors of nshelper's own caller must not reach the command.
        exec 5</dev/null 9>"$OUT/fd9"
        x fds exec --netns red -- sh -c 'ls /proc/$$/fd'
        exec 5<&- 9>&-
        export NSHELPER_TEST_VAR=kept
        x env exec --netns red -- sh -c 'echo "$NSHELPER_TEST_VAR"'
        x clear exec --netns red --clear-env -- /usr/bin/env
        # A signal sent to nshelper reaches the command, which says so and exits 3.
        for sig in TERM HUP; do
          "$NSHELPER" exec --netns red -- sh -c "trap 'echo got-$sig >$OUT/trapped-$sig; exit 3' $sig; echo ready >$OUT/ready-$sig; while :; do sleep 0.05; done" \
            </dev/null >/dev/null 2>"$OUT/forward-$sig.err" &
          E=$!
          until [ -e "$OUT/ready-$sig" ]; do sleep 0.02; done
          kill -"$sig" "$E"
          rc=0; wait "$E" || rc=$?
          echo "$rc" >"$OUT/forward-$sig.rc"
        done
        "#,
    );
    assert_eq!(world.read("stdin.out"), "from stdin\n");
    assert_eq!(status(&world, "ok"), 0);
    assert_eq!(status(&world, "seven"), 7);
    assert_eq!(status(&world, "term"), 128 + 15);
    let fds = world.nshelper_run("fds");
    assert_eq!(
        String::from_utf8(fds.stdout).unwrap(),
        "0\n1\n2\n",
        "{}",
        fds.stderr
    );
    assert_eq!(
        String::from_utf8(world.nshelper_run("env").stdout).unwrap(),
        "kept\n"
    );
    let clear = world.nshelper_run("clear");
    assert_eq!(clear.status, 0, "{}", clear.stderr);
    assert_eq!(String::from_utf8(clear.stdout).unwrap(), "");
    for signal in ["TERM", "HUP"] {
        assert_eq!(
            world.read(&format!("trapped-{signal}")),
            format!("got-{signal}\n")
        );
        assert_eq!(
            status(&world, &format!("forward-{signal}")),
            3,
            "{}",
            world.read(&format!("forward-{signal}.err"))
        );
    }
    let stderr = world.nshelper_run("stderr");
    assert_eq!(stderr.stderr, "to-stderr\n");
    assert!(stderr.stdout.is_empty());
}

#[test]
fn exec_usage_errors_exit_125() {
    for args in [
        &["exec", "--", "true"][..],
        &["exec", "--netns", "red"],
        &["exec", "--pid", "abc", "--", "true"],
        &["exec", "--pid", "1", "--netns", "red", "--", "true"],
        &["exec", "--ns", "net", "--netns", "red", "--", "true"],
    ] {
        let output = std::process::Command::new(crate::util::nshelper())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(125), "{args:?}");
        assert!(output.stdout.is_empty());
        assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
    }
}

#[test]
fn a_terminal_hangup_and_an_interrupt_reach_the_command() {
    if !require_root("a_terminal_hangup_and_an_interrupt_reach_the_command") {
        return;
    }
    let world = World::run(
        "exec-tty",
        r#"
        ip netns add red
        # nshelper as the session leader of a terminal of its own, as under ssh -t: when the
        # terminal goes, the kernel sends SIGHUP to nshelper alone.
        script -qfc "exec $NSHELPER exec --netns red -- sh -c 'trap \"echo got-hup >$OUT/hup; exit 4\" HUP; echo ready >$OUT/ready-hup; while :; do sleep 0.05; done'" /dev/null </dev/null >/dev/null 2>&1 &
        S=$!
        until [ -e "$OUT/ready-hup" ]; do sleep 0.02; done
        kill -KILL "$S"
        for _ in $(seq 200); do [ -e "$OUT/hup" ] && break; sleep 0.025; done
        # SIGINT sent to nshelper, which a shell's background job would otherwise ignore.
        python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
          "$NSHELPER" exec --netns red -- sh -c "trap 'echo got-int >$OUT/int; exit 5' INT; echo ready >$OUT/ready-int; while :; do sleep 0.05; done" \
          </dev/null >/dev/null 2>&1 &
        E=$!
        until [ -e "$OUT/ready-int" ]; do sleep 0.02; done
        kill -INT "$E"
        rc=0; wait "$E" || rc=$?
        echo "$rc" >"$OUT/int.rc"
        "#,
    );
    assert_eq!(world.read("hup"), "got-hup\n");
    assert_eq!(world.read("int"), "got-int\n");
    assert_eq!(world.read("int.rc").trim(), "5");
}
