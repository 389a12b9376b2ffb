//! Large namespaces come back whole.

use std::collections::HashMap;

use crate::util::{require_root, World};

#[test]
fn a_namespace_with_5000_links_comes_back_whole() {
    if !require_root("a_namespace_with_5000_links_comes_back_whole") {
        return;
    }
    let world = World::run(
        "5000-links",
        r#"
        ip netns add big
        for i in $(seq 1 2500); do echo "link add name va$i type veth peer name vb$i"; done >"$OUT/batch"
        ip -n big -batch "$OUT/batch"
        snapshot big ip -n big -- query links --netns big
        # Again, traced: a dump this long is received on a second thread of the walker
        # while the first decodes it.
        strace -f -qq -o "$OUT/trace" -e trace=recvfrom \
          "$NSHELPER" query links --netns big >"$OUT/traced.out"
        nproc >"$OUT/cores"
        "#,
    );
    let run = world.nshelper_run("big");
    let traced: serde_json::Value = serde_json::from_slice(&world.bytes("traced.out")).unwrap();
    assert_eq!(
        traced,
        run.document(),
        "the same document, received either way"
    );
    let trace = world.read("trace");
    let readers: std::collections::HashSet<&str> = trace
        .lines()
        .filter(|line| line.contains("recvfrom("))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let cores: usize = world.read("cores").trim().parse().unwrap();
    if cores > 1 {
        assert!(
            readers.len() > 1,
            "one thread received the whole dump: {readers:?}"
        );
    }
    // Far more than a pipe buffer: the parent must read while the children write.
    assert!(run.stdout.len() > 1 << 20, "{} bytes", run.stdout.len());
    let result = run.only_result();
    let links = result["links"].as_array().unwrap();
    let ip = world.ip_json("big.ip.json");
    let ip = ip.as_array().unwrap();
    assert_eq!(ip.len(), 5001);
    assert_eq!(links.len(), ip.len());

    let ours: HashMap<u64, &serde_json::Value> = links
        .iter()
        .map(|l| (l["ifindex"].as_u64().unwrap(), l))
        .collect();
    let names: HashMap<u64, &str> = ip
        .iter()
        .map(|l| {
            (
                l["ifindex"].as_u64().unwrap(),
                l["ifname"].as_str().unwrap(),
            )
        })
        .collect();
    for theirs in ip {
        let index = theirs["ifindex"].as_u64().unwrap();
        let link = ours.get(&index).expect("every ifindex");
        assert_eq!(link["ifname"], theirs["ifname"]);
        assert_eq!(link["address"], theirs["address"]);
        assert_eq!(link["operstate"], theirs["operstate"]);
        if let Some(peer_name) = theirs.get("link").and_then(|n| n.as_str()) {
            // Every veth's peer is in the same namespace and named.
            let peer = &link["peer"];
            assert_eq!(peer["ifname"], peer_name);
            assert_eq!(names[&peer["ifindex"].as_u64().unwrap()], peer_name);
            assert_eq!(peer["netns"], result["namespaces"]["net"]);
        }
    }
}

#[test]
fn a_system_that_refuses_threads_only_slows_the_walk_down() {
    if !require_root("a_system_that_refuses_threads_only_slows_the_walk_down") {
        return;
    }
    // The walker reads on a thread per core, encodes on every core, and receives long
    // dumps on a second thread; a cgroup at its pids.max refuses them all. strace makes
    // every thread start fail (glibc starts threads with clone3, and forks with clone).
    let world = World::run(
        "threads-refused",
        r#"
        ip netns add big
        for i in $(seq 1 300); do echo "link add name va$i type veth peer name vb$i"; done >"$OUT/batch"
        ip -n big -batch "$OUT/batch"
        for n in red blue; do
          ip netns add "$n"
          ip link add name "h-$n" type veth peer name eth0 netns "$n"
        done
        for args in "--all" "--netns big"; do
          name=${args#--}; name=${name%% *}
          "$NSHELPER" query links $args >"$OUT/$name.out"
          strace -f -qq -o "$OUT/$name.trace" -e trace=clone3 -e inject=clone3:error=EAGAIN \
            "$NSHELPER" query links $args >"$OUT/$name.refused" 2>"$OUT/$name.err" || echo "$?" >"$OUT/$name.failed"
        done
        "#,
    );
    for name in ["all", "netns"] {
        assert!(
            !world.path(&format!("{name}.failed")).exists(),
            "{name}: {}",
            world.read(&format!("{name}.err"))
        );
        let trace = world.read(&format!("{name}.trace"));
        assert!(
            trace.contains("(INJECTED)"),
            "{name}: no thread was refused:\n{trace}"
        );
        let mut plain: serde_json::Value =
            serde_json::from_slice(&world.bytes(&format!("{name}.out"))).unwrap();
        let mut refused: serde_json::Value =
            serde_json::from_slice(&world.bytes(&format!("{name}.refused"))).unwrap();
        assert_eq!(
            refused["errors"],
            serde_json::json!([]),
            "{name}: {refused}"
        );
        // Which processes hold the helper's own namespace differs between the two runs.
        for document in [&mut plain, &mut refused] {
            for result in document["results"].as_array_mut().unwrap() {
                result["target"]["pids"] = serde_json::Value::Null;
            }
        }
        assert_eq!(refused, plain, "{name}");
    }
}
