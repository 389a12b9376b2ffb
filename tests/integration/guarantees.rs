//! The two guarantees, checked on the running processes: the parent never changes its own
//! namespaces, and the code that parses data from inside a target holds no capabilities.
//! Also the targets that need care: threads, and a /proc of another pid namespace.

use serde_json::json;

use crate::util::{require_root, World};

#[test]
fn parent_never_calls_setns_and_the_reading_processes_hold_no_capabilities() {
    if !require_root("parent_never_calls_setns_and_the_reading_processes_hold_no_capabilities") {
        return;
    }
    let world = World::run(
        "guarantees",
        r#"
        P=$(start_container)
        ip link add name vh0 type veth peer name eth0 netns "$P"
        readlink "/proc/$P/ns/net" >"$OUT/target-net"
        # A descriptor of the caller's, which must not reach the target.
        exec 7<"$OUT/target-net"
        # Every recvfrom of the query process is held up, so it can be looked at meanwhile.
        strace -f -qq -o "$OUT/trace" -e trace=setns,recvfrom,capset,wait4,waitid,write,execve,openat,open,socket,pipe2,signalfd4 -e inject=recvfrom:delay_enter=150000 \
          "$NSHELPER" query links --pid "$P" >"$OUT/slow.out" 2>"$OUT/slow.err" &
        ST=$!
        descendants() {
          local p=$1 c
          for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do echo "$c"; descendants "$c"; done
        }
        target=$(cat "$OUT/target-net")
        for _ in $(seq 200); do
          : >"$OUT/procs"
          for p in $(descendants "$ST"); do
            printf '%s %s %s %s %s %s %s\n' "$p" "$(awk '/^PPid/ {print $2}' /proc/$p/status)" \
              "$(readlink /proc/$p/ns/net)" "$(awk '/^CapEff/ {print $2}' /proc/$p/status)" \
              "$(awk '/^NoNewPrivs/ {print $2}' /proc/$p/status)" \
              "$(awk '/^CapPrm/ {print $2}' /proc/$p/status)" \
              "$(awk '/^CapBnd/ {print $2}' /proc/$p/status)" >>"$OUT/procs" 2>/dev/null || true
          done
          # The query process: inside the target, without capabilities, its reads held up.
          if awk -v t="$target" '$3 == t && $4 == "0000000000000000" {found=1} END {exit !found}' "$OUT/procs"; then
            for p in $(descendants "$ST"); do
              [ "$(readlink /proc/$p/ns/net)" = "$target" ] || continue
              for f in /proc/$p/fd/*; do echo "$p ${f##*/} $(readlink "$f")"; done
            done >"$OUT/fds"
            break
          fi
          sleep 0.02
        done
        wait "$ST" || true
        echo "$ST" >"$OUT/strace-pid"
        "#,
    );
    assert!(
        world.read("slow.err").is_empty(),
        "stderr: {}",
        world.read("slow.err")
    );
    let document: serde_json::Value = serde_json::from_slice(&world.bytes("slow.out")).unwrap();
    assert_eq!(document["errors"], json!([]), "{document}");

    // (pid, ppid, netns, CapEff, NoNewPrivs) of each process under strace.
    let procs: Vec<Vec<String>> = world
        .read("procs")
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let strace_pid = world.read("strace-pid").trim().to_owned();
    let parent = procs
        .iter()
        .find(|p| p[1] == strace_pid)
        .unwrap_or_else(|| panic!("nshelper itself: {procs:?}"));
    let target = world.read("target-net").trim().to_owned();
    // The middle process forked the query process as nshelper's own child and exited (a
    // zombie has no namespaces to show): only the query process is inside.
    let inside: Vec<&Vec<String>> = procs.iter().filter(|p| p[2] == target).collect();
    assert_eq!(inside.len(), 1, "only the query process: {procs:?}");
    let query = inside[0];
    assert_eq!(
        query[1], parent[0],
        "the query process is nshelper's child: {procs:?}"
    );

    assert_ne!(parent[2], target, "the parent stays in its own namespace");
    assert_eq!(
        query[3], "0000000000000000",
        "query capabilities: {query:?}"
    );
    assert_eq!(query[4], "1", "query process has no_new_privs: {query:?}");
    assert_eq!(
        query[5], "0000000000000000",
        "query permitted set: {query:?}"
    );
    assert_eq!(
        query[6], "0000000000000000",
        "query bounding set: {query:?}"
    );

    // strace names the parent's own calls by its pid; setns comes only from a child.
    let trace = world.read("trace");
    let setns: Vec<&str> = trace.lines().filter(|l| l.contains("setns(")).collect();
    assert_eq!(
        setns.len(),
        3,
        "net, pid and mnt joined once each:\n{trace}"
    );
    let parent_pid = &parent[0];
    assert!(
        setns
            .iter()
            .all(|l| !l.starts_with(&format!("{parent_pid} "))),
        "the parent called setns:\n{trace}"
    );
    // The parent keeps its capabilities only to make children. It gives them up once it has
    // made the last one, and before it turns any report into output.
    let parent_calls: Vec<&str> = trace
        .lines()
        .filter(|l| l.starts_with(&format!("{parent_pid} ")))
        .collect();
    let drop_at = parent_calls
        .iter()
        .position(|l| l.contains("capset("))
        .unwrap_or_else(|| panic!("the parent drops capabilities:\n{trace}"));
    let output_at = parent_calls
        .iter()
        .position(|l| l.contains("write(1,"))
        .unwrap_or_else(|| panic!("the parent writes the document:\n{trace}"));
    assert!(
        drop_at < output_at,
        "drop, then output:\n{}",
        parent_calls.join("\n")
    );
    // The query process holds /dev/null as stdio, its pipe, and what the query needs; not
    // the caller's descriptor 7.
    let query_pid = &query[0];
    let fds: Vec<(String, String)> = world
        .read("fds")
        .lines()
        .filter(|l| l.starts_with(&format!("{query_pid} ")))
        .map(|l| {
            let mut parts = l.splitn(3, ' ').skip(1);
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for stdio in ["0", "1", "2"] {
        let target = &fds.iter().find(|(fd, _)| fd == stdio).unwrap().1;
        assert_eq!(target, "/dev/null", "fd {stdio}: {fds:?}");
    }
    assert!(
        fds.iter()
            .all(|(_, target)| !target.ends_with("target-net")),
        "the caller's descriptor reached the target: {fds:?}"
    );
    for (_, target) in &fds {
        let expected = target == "/dev/null"
            || target.starts_with("pipe:")
            || target.starts_with("socket:")
            || target.starts_with("net:")
            || target == "/proc"
            || target.starts_with("anon_inode:");
        assert!(expected, "unexpected descriptor {target}: {fds:?}");
    }
    // Every descriptor nshelper opens is close-on-exec.
    for call in trace.lines().filter(|l| {
        (l.contains("openat(")
            || l.contains("open(")
            || l.contains("socket(")
            || l.contains("pipe2("))
            && !l.contains("= -1")
            && !l.contains("execve(")
    }) {
        assert!(call.contains("CLOEXEC"), "not close-on-exec: {call}");
    }
    // Nothing is executed, least of all from inside the target: strace's own start of
    // nshelper is the one execve.
    let execs: Vec<&str> = trace.lines().filter(|l| l.contains("execve(")).collect();
    assert_eq!(execs.len(), 1, "{execs:?}");
    let mnt_last = setns.last().unwrap();
    assert!(
        mnt_last.contains("CLONE_NEWNS"),
        "mount namespace last: {setns:?}"
    );
}

#[test]
fn a_thread_that_moved_alone_is_a_target_of_its_own() {
    if !require_root("a_thread_that_moved_alone_is_a_target_of_its_own") {
        return;
    }
    let world = World::run(
        "thread",
        r#"
        P=$(start_container)
        readlink "/proc/$P/ns/net" >"$OUT/target-net"
        thread_in_netns "/proc/$P/ns/net" "$OUT/tid"
        run_nshelper thread query links --pid "$(cat "$OUT/tid")"
        save thread-ip.json nsenter -t "$P" -n ip -j link
        "#,
    );
    let result = world.nshelper_run("thread").only_result();
    assert_eq!(result["namespaces"]["net"], world.inode("target-net"));
    let ours = result["links"].as_array().unwrap().len();
    assert_eq!(
        ours,
        world.ip_json("thread-ip.json").as_array().unwrap().len()
    );
}

#[test]
fn a_proc_of_another_pid_namespace_is_refused_not_misread() {
    if !require_root("a_proc_of_another_pid_namespace_is_refused_not_misread") {
        return;
    }
    // In a new pid namespace without its own /proc, "pid 1" means two different processes.
    let world = World::run(
        "foreign-proc",
        r#"
        NSHELPER_REAL=$NSHELPER
        NSHELPER=unshare
        run_nshelper foreign --pid --net --fork "$NSHELPER_REAL" query --pid 1 --ns net
        "#,
    );
    let run = world.nshelper_run("foreign");
    let error = run.only_error("invalid_target");
    assert!(
        error["message"].as_str().unwrap().contains("/proc"),
        "{error}"
    );
}

#[test]
fn children_born_in_another_pid_namespace_still_answer() {
    if !require_root("children_born_in_another_pid_namespace_still_answer") {
        return;
    }
    // nsenter -p -F leaves nshelper in its pid namespace but has its children born in the
    // container's, where the parent has no pid.
    let world = World::run(
        "pid-for-children",
        r#"
        P=$(start_container)
        NSHELPER_REAL=$NSHELPER
        NSHELPER=nsenter
        run_nshelper own -t "$P" -p -F "$NSHELPER_REAL" query
        run_nshelper target -t "$P" -p -F "$NSHELPER_REAL" query --pid "$P"
        readlink "/proc/$P/ns/pid" >"$OUT/target-pid"
        readlink /proc/self/ns/net >"$OUT/own-net"
        "#,
    );
    let own = world.nshelper_run("own").only_result();
    assert_eq!(own["namespaces"]["net"], world.inode("own-net"));
    assert_eq!(own["namespaces"]["pid"], world.inode("target-pid"));
    let target = world.nshelper_run("target").only_result();
    assert_eq!(target["namespaces"]["pid"], world.inode("target-pid"));
}

#[test]
fn the_walker_reads_every_namespace_without_capabilities() {
    if !require_root("the_walker_reads_every_namespace_without_capabilities") {
        return;
    }
    // --netns targets are read by one child that visits them all; while strace holds its
    // netlink reads, look at it.
    let world = World::run(
        "walker-caps",
        r#"
        ip netns add red
        ip netns add blue
        strace -f -qq -o /dev/null -e trace=recvfrom -e inject=recvfrom:delay_enter=150000 \
          "$NSHELPER" query links --netns red --netns blue >"$OUT/walk.out" 2>"$OUT/walk.err" &
        ST=$!
        for _ in $(seq 300); do
          for p in $(cat /proc/[0-9]*/task/*/children 2>/dev/null); do
            # The walker: nshelper's child (strace's child is nshelper itself).
            parent=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null) || continue
            [ "$(cat /proc/$p/comm 2>/dev/null)" = nshelper ] || continue
            [ "$(cat /proc/$parent/comm 2>/dev/null)" = nshelper ] || continue
            # Only while it is held in a read (recvfrom is 45 on x86_64), not while it still
            # moves between namespaces with its privileges.
            [ "$(cut -d' ' -f1 /proc/$p/syscall 2>/dev/null)" = 45 ] || continue
            grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/$p/status >"$OUT/status" 2>/dev/null || continue
            ls /proc/$p/fd >"$OUT/fds" 2>/dev/null || true
            break 2
          done
          sleep 0.02
        done
        wait "$ST" || true
        "#,
    );
    let document: serde_json::Value = serde_json::from_slice(&world.bytes("walk.out")).unwrap();
    assert_eq!(document["errors"], json!([]), "{document}");
    assert_eq!(document["results"].as_array().unwrap().len(), 2);
    let status = world.read("status");
    for line in status.lines() {
        let (key, value) = line.split_once(':').unwrap();
        let expected = if key == "NoNewPrivs" {
            "1"
        } else {
            "0000000000000000"
        };
        assert_eq!(value.trim(), expected, "{key} of the walker:\n{status}");
    }
    assert_eq!(status.lines().count(), 6, "{status}");
}

#[test]
fn the_parent_drops_its_capabilities_right_after_its_last_child() {
    if !require_root("the_parent_drops_its_capabilities_right_after_its_last_child") {
        return;
    }
    // Once its last child is made the parent needs no privilege: it gives it up at once,
    // while that child still works, and only then reads what came from inside a target. Both
    // kinds of last child: a walk of network namespaces, and a query process in a container.
    let world = World::run(
        "last-child-drop",
        r#"
        ip netns add red
        ip netns add blue
        ip link add name h-red type veth peer name r0 netns red
        PID=$(start_container)
        for run in walk:"--netns red --netns blue" container:"--pid $PID"; do
          name=${run%%:*}
          strace -f -qq -o "$OUT/$name.trace" \
            -e trace=clone,clone3,fork,vfork,capset,read,wait4,waitid,write,socket,sendto,recvfrom \
            "$NSHELPER" query links ${run#*:} >"$OUT/$name.out" 2>"$OUT/$name.err"
        done
        "#,
    );
    for (name, results) in [("walk", 2), ("container", 1)] {
        let document: serde_json::Value =
            serde_json::from_slice(&world.bytes(&format!("{name}.out"))).unwrap();
        assert_eq!(document["errors"], json!([]), "{name}: {document}");
        assert_eq!(document["results"].as_array().unwrap().len(), results);
        assert_drop_order(name, &world.read(&format!("{name}.trace")));
    }
}

/// Checks, in a trace of nshelper, that its parent process makes its last child, gives up
/// its capabilities, reads a report to its end, reaps, and writes its output, in that order.
fn assert_drop_order(name: &str, trace: &str) {
    // The parent is the first pid of the trace: the process strace started.
    let parent = trace
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("{name}: an empty trace"))
        .to_owned();
    let calls: Vec<&str> = trace
        .lines()
        .filter(|l| l.starts_with(&format!("{parent} ")))
        .collect();
    let all = || calls.join("\n");
    let position = |what: &str, last: bool| {
        let found = if last {
            calls.iter().rposition(|l| l.contains(what))
        } else {
            calls.iter().position(|l| l.contains(what))
        };
        found.unwrap_or_else(|| panic!("{name}: no {what} by the parent:\n{}", all()))
    };
    let last_child = calls
        .iter()
        .rposition(|l| l.contains("clone(") || l.contains("clone3(") || l.contains("fork("))
        .unwrap_or_else(|| panic!("{name}: the parent forks:\n{}", all()));
    let first_drop = position("capset(", false);
    // The first read of a report (from the pipe, after the last child), and the read that
    // finds its end.
    let first_report_read = calls
        .iter()
        .enumerate()
        .position(|(at, l)| at > last_child && l.contains("read("))
        .unwrap_or_else(|| panic!("{name}: the parent reads a report:\n{}", all()));
    let end_of_report = calls
        .iter()
        .rposition(|l| l.contains("read(") && l.trim_end().ends_with("= 0"))
        .unwrap_or_else(|| panic!("{name}: the parent reads the report to its end:\n{}", all()));
    let reap = calls
        .iter()
        .rposition(|l| l.contains("waitid(") || l.contains("wait4("))
        .unwrap_or_else(|| panic!("{name}: the parent reaps:\n{}", all()));
    let output = position("write(1,", false);
    // Its own namespace's links (to name the peers there) are asked for and read only
    // without privilege; after a query process, they are asked for while it works.
    if name == "container" {
        let asked = calls
            .iter()
            .position(|l| l.contains("socket(AF_NETLINK"))
            .unwrap_or_else(|| panic!("{name}: the parent asks for its links:\n{}", all()));
        assert!(
            asked < end_of_report,
            "{name}: asked only after the report:\n{}",
            all()
        );
    }
    for (at, line) in calls.iter().enumerate() {
        if line.contains("socket(AF_NETLINK")
            || line.contains("sendto(")
            || line.contains("recvfrom(")
        {
            assert!(
                at > first_drop,
                "{name}: netlink before the drop: {line}\n{}",
                all()
            );
        }
    }
    assert!(
        last_child < first_drop
            && first_drop < first_report_read
            && end_of_report < reap
            && reap < output,
        "{name}: last child, drop, first read of the report, end of it, reap, output:\n{}",
        all()
    );
}

#[test]
fn the_walkers_threads_start_only_after_it_gave_up_its_capabilities() {
    if !require_root("the_walkers_threads_start_only_after_it_gave_up_its_capabilities") {
        return;
    }
    // The walker reads its namespaces on one thread per core. A thread copies the
    // credentials of the thread that starts it, so every thread must start after the walker
    // gave up its capabilities, and no thread may read before that.
    let world = World::run(
        "walker-threads",
        r#"
        for n in red blue green yellow; do ip netns add "$n"; done
        strace -f -qq -o "$OUT/trace" -e trace=clone,clone3,capset,recvfrom,setns \
          "$NSHELPER" query links --netns red --netns blue --netns green --netns yellow \
          >"$OUT/walk.out" 2>"$OUT/walk.err"
        nproc >"$OUT/cores"
        "#,
    );
    let document: serde_json::Value = serde_json::from_slice(&world.bytes("walk.out")).unwrap();
    assert_eq!(document["errors"], json!([]), "{document}");
    assert_eq!(document["results"].as_array().unwrap().len(), 4);
    let trace = world.read("trace");
    let pid_of = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    let parent = pid_of(trace.lines().next().expect("an empty trace"));
    let returned = |line: &str| line.rsplit("= ").next().unwrap_or("").trim().to_owned();
    // The walker: the parent's only child.
    let walker = trace
        .lines()
        .find(|l| pid_of(l) == parent && (l.contains("clone(") || l.contains("clone3(")))
        .map(returned)
        .unwrap_or_else(|| panic!("the parent forks the walker:\n{trace}"));
    // The walker's threads, by the clone3 calls that made them.
    let mut walkers = vec![walker.clone()];
    let mut thread_starts = Vec::new();
    for (at, line) in trace.lines().enumerate() {
        if walkers.contains(&pid_of(line)) && line.contains("CLONE_THREAD") {
            walkers.push(returned(line));
            thread_starts.push(at);
        }
    }
    let walker_lines: Vec<(usize, &str)> = trace
        .lines()
        .enumerate()
        .filter(|(_, l)| walkers.contains(&pid_of(l)))
        .collect();
    let last = |call: &str| {
        walker_lines
            .iter()
            .filter(|(_, l)| l.contains(call))
            .map(|(at, _)| *at)
            .max()
    };
    let last_capset =
        last("capset(").unwrap_or_else(|| panic!("the walker gives up its capabilities:\n{trace}"));
    let last_setns =
        last("setns(").unwrap_or_else(|| panic!("the walker joins the namespaces:\n{trace}"));
    assert!(last_setns < last_capset, "joins, then gives up:\n{trace}");
    for start in &thread_starts {
        assert!(
            *start > last_capset,
            "a thread started before the walker gave up its capabilities:\n{trace}"
        );
    }
    for (at, line) in &walker_lines {
        if line.contains("recvfrom(") {
            assert!(
                *at > last_capset,
                "a read before the walker gave up its capabilities: {line}\n{trace}"
            );
        }
    }
    let cores: usize = world.read("cores").trim().parse().unwrap();
    if cores > 1 {
        assert!(
            !thread_starts.is_empty(),
            "with {cores} cores the walker reads on more than one thread:\n{trace}"
        );
    }
}

#[test]
fn the_parent_dumps_its_own_namespace_for_the_walker_only_without_capabilities() {
    if !require_root("the_parent_dumps_its_own_namespace_for_the_walker_only_without_capabilities")
    {
        return;
    }
    // With --all, the helper's own namespace is walked too. Its links are dumped by the
    // parent, which needs no privilege for its own namespace, while the walker joins the
    // others; the walker decodes them. The parent must have given up its capabilities
    // before it reads a byte, and the links the document shows for its namespace are ip's.
    let world = World::run(
        "relay",
        r#"
        for n in red blue; do
          ip netns add "$n"
          ip link add name "h-$n" type veth peer name eth0 netns "$n"
        done
        strace -f -qq -o "$OUT/trace" -e trace=clone,clone3,capset,recvfrom,socket \
          "$NSHELPER" query links --all >"$OUT/all.out" 2>"$OUT/all.err"
        ip -j link >"$OUT/own.json"
        "#,
    );
    let document: serde_json::Value = serde_json::from_slice(&world.bytes("all.out")).unwrap();
    assert_eq!(document["errors"], json!([]), "{document}");
    let trace = world.read("trace");
    let parent = trace.split_whitespace().next().unwrap().to_owned();
    let calls: Vec<&str> = trace
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(parent.as_str()))
        .collect();
    let first_drop = calls
        .iter()
        .position(|l| l.contains("capset("))
        .unwrap_or_else(|| panic!("the parent gives up its capabilities:\n{trace}"));
    let reads: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("recvfrom("))
        .map(|(at, _)| at)
        .collect();
    assert!(
        !reads.is_empty(),
        "the parent dumps its own namespace:\n{trace}"
    );
    assert!(
        reads.iter().all(|at| *at > first_drop),
        "the parent read before it gave up its capabilities:\n{trace}"
    );
    // The own namespace's links, as the document shows them, are ip's.
    let own = world.read("own.json");
    let ip: serde_json::Value = serde_json::from_str(&own).unwrap();
    let mut ip_names: Vec<&str> = ip
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap())
        .collect();
    ip_names.sort_unstable();
    let results = document["results"].as_array().unwrap();
    let own_result = results
        .iter()
        .find(|r| {
            r["links"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["ifname"] == "h-red")
        })
        .expect("the helper's own namespace");
    let mut names: Vec<&str> = own_result["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ip_names);
    for link in own_result["links"].as_array().unwrap() {
        if link["ifname"] == "h-red" || link["ifname"] == "h-blue" {
            assert_eq!(link["peer"]["ifname"], "eth0", "{link}");
        }
    }
}
