//! `-v` and `-vv`: diagnostics on stderr, one JSON document on stdout all the same.

use serde_json::Value;

use crate::util::{require_root, World};

/// Every stderr line of a verbose run is a stamped diagnostic.
fn diagnostics(world: &World, run: &str) -> Vec<String> {
    let stderr = world.read(&format!("{run}.err"));
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    for line in &lines {
        let stamp = line
            .strip_prefix("nshelper: [")
            .and_then(|rest| rest.split_once(" ms] "));
        assert!(stamp.is_some(), "{run}: not a diagnostic: {line:?}");
        let (ms, _) = stamp.unwrap();
        ms.trim()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{run}: {line:?}"));
    }
    lines
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|line| line.contains(needle))
}

/// stdout holds exactly one JSON document, one line long.
fn one_document(world: &World, run: &str) -> Value {
    let stdout = world.read(&format!("{run}.out"));
    assert_eq!(stdout.matches('\n').count(), 1, "{run}: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{run}: {e}: {stdout}"))
}

#[test]
fn verbose_runs_say_what_they_opened_joined_and_timed_and_print_the_same_document() {
    if !require_root(
        "verbose_runs_say_what_they_opened_joined_and_timed_and_print_the_same_document",
    ) {
        return;
    }
    let world = World::run(
        "verbose",
        r#"
        P=$(start_container)
        ip netns add red
        ip link add name h1 type veth peer name r1 netns red
        ip link add name h2 type veth peer name eth0 netns "$P"
        run_nshelper pid-quiet query links --pid "$P"
        run_nshelper pid-v -v query links --pid "$P"
        run_nshelper netns-vv query -vv links --netns red
        run_nshelper all-vv -vv query links --all
        run_nshelper list-v -v list
        run_nshelper whois-v -v whois h1
        run_nshelper exec-v -v exec --pid "$P" -- true
        run_nshelper missing-v -v query links --pid 999999
        for t in net pid mnt; do save "target-$t" stat -L -c %i "/proc/$P/ns/$t"; done
        save red-net stat -L -c %i /run/netns/red
        "#,
    );
    let (net, pid, mnt) = (
        world.inode("target-net"),
        world.inode("target-pid"),
        world.inode("target-mnt"),
    );

    assert_eq!(world.read("pid-quiet.err"), "", "no diagnostics without -v");
    let quiet = one_document(&world, "pid-quiet");
    let verbose = one_document(&world, "pid-v");
    assert_eq!(
        quiet["results"][0]["namespaces"],
        verbose["results"][0]["namespaces"]
    );
    assert_eq!(quiet["results"][0]["links"], verbose["results"][0]["links"]);
    let lines = diagnostics(&world, "pid-v");
    assert!(
        has(
            &lines,
            &format!("opened net:[{net}] pid:[{pid}] mnt:[{mnt}]")
        ),
        "{lines:#?}"
    );
    assert!(has(&lines, "fork, join, fork and read: "), "{lines:#?}");
    assert!(
        has(
            &lines,
            &format!("read inside mnt:[{mnt}] net:[{net}] pid:[{pid}]")
        ),
        "{lines:#?}"
    );
    assert!(has(&lines, "gave up every capability"), "{lines:#?}");
    assert!(has(&lines, "print the document: "), "{lines:#?}");

    let red = world.inode("red-net");
    let document = one_document(&world, "netns-vv");
    assert_eq!(document["results"][0]["namespaces"]["net"], red);
    let lines = diagnostics(&world, "netns-vv");
    assert!(
        has(&lines, &format!("netns red: walking into net:[{red}]")),
        "{lines:#?}"
    );
    assert!(has(&lines, "walk: "), "{lines:#?}");

    let document = one_document(&world, "all-vv");
    let found = document["results"].as_array().unwrap().len();
    let lines = diagnostics(&world, "all-vv");
    assert!(has(&lines, "discover network namespaces: "), "{lines:#?}");
    assert!(has(&lines, &format!("{found} found")), "{lines:#?}");
    assert!(
        has(&lines, &format!("net:[{red}]: names [\"red\"]")),
        "{lines:#?}"
    );
    assert!(
        has(
            &lines,
            &format!("one child joined {found} network namespaces")
        ),
        "{lines:#?}"
    );

    one_document(&world, "list-v");
    let lines = diagnostics(&world, "list-v");
    assert!(has(&lines, "discover network namespaces: "), "{lines:#?}");

    let document = one_document(&world, "whois-v");
    assert_eq!(document["matches"][0]["link"]["ifname"], "h1", "{document}");
    let lines = diagnostics(&world, "whois-v");
    assert!(has(&lines, "discover network namespaces: "), "{lines:#?}");
    assert!(has(&lines, "walk: "), "{lines:#?}");

    assert_eq!(
        world.read("exec-v.out"),
        "",
        "exec prints nothing of its own on stdout"
    );
    let lines = diagnostics(&world, "exec-v");
    assert!(
        has(
            &lines,
            &format!("opened net:[{net}] pid:[{pid}] mnt:[{mnt}]; running [\"true\"]")
        ),
        "{lines:#?}"
    );
    assert!(has(&lines, "the command ended with status 0"), "{lines:#?}");

    // A failing target: its error line, and the diagnostics, are on stderr; the document
    // still comes out whole.
    let document = one_document(&world, "missing-v");
    assert_eq!(document["errors"][0]["kind"], "not_found");
    let stderr = world.read("missing-v.err");
    assert!(
        stderr.contains("nshelper: pid 999999: not_found"),
        "{stderr}"
    );
    assert!(stderr.contains(", started with "), "{stderr}");
}
