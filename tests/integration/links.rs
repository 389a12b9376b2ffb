//! `nshelper query links|veths` against containers, named namespaces and its own, compared
//! with `ip -j -d link` run in the same namespace.

use serde_json::json;

use crate::util::{
    assert_links_match_ip, assert_links_match_ip_where, link_named, require_root, World,
};

#[test]
fn links_of_a_container_match_ip_run_inside_it() {
    if !require_root("links_of_a_container_match_ip_run_inside_it") {
        return;
    }
    let world = World::run(
        "container-links",
        r#"
        P=$(start_container)
        echo "$P" >"$OUT/pid"
        ip link add name vh0 type veth peer name eth0 netns "$P"
        ip link set vh0 up
        inside() { nsenter -t "$P" -n "$@"; }
        inside ip link set lo up
        inside ip link set eth0 mtu 1400 up
        inside ip link add name br0 type bridge
        inside ip link add name c1 type veth peer name c2
        inside ip link set c1 master br0
        inside ip link set br0 up
        inside ip link set c1 up
        inside ip link add name mv0 link c2 type macvlan mode bridge
        snapshot links nsenter -t "$P" -n ip -- query links --pid "$P"
        for t in net pid mnt; do
          save "target-$t" readlink "/proc/$P/ns/$t"
          save "own-$t" readlink "/proc/self/ns/$t"
        done
        "#,
    );
    let result = world.nshelper_run("links").only_result();
    let pid: u64 = world.read("pid").trim().parse().unwrap();
    assert_eq!(result["target"], json!({"kind": "pid", "pid": pid}));
    assert_links_match_ip(&result["links"], &world.ip_json("links.ip.json"));

    // The inodes come from the query process itself, so they prove it was inside: the
    // pid namespace included, which setns alone on one thread never achieves.
    for kind in ["net", "pid", "mnt"] {
        let inside = world.inode(&format!("target-{kind}"));
        assert_eq!(result["namespaces"][kind], inside, "{kind} namespace");
        assert_ne!(
            inside,
            world.inode(&format!("own-{kind}")),
            "{kind} differs"
        );
    }

    let links = &result["links"];
    assert_eq!(link_named(links, "eth0")["mtu"], 1400);
    assert_eq!(
        link_named(links, "c1")["master"],
        link_named(links, "br0")["ifindex"]
    );
    assert!(link_named(links, "c1")["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("M-DOWN")));
    assert_eq!(link_named(links, "mv0")["kind"], "macvlan");
    // eth0's peer is vh0 out in the world: a namespace the container numbers by nsid.
    let eth0 = link_named(links, "eth0");
    assert!(eth0["link_netnsid"].is_i64(), "{eth0}");
    assert_eq!(eth0["peer"]["ifindex"], eth0["link_index"]);
    // Named from the helper's own links, read while the query process exits.
    assert_eq!(eth0["peer"]["ifname"], "vh0", "{eth0}");
    assert!(eth0["peer"]["netns"].is_u64(), "{eth0}");
    assert!(link_named(links, "br0").get("peer").is_none());
}

#[test]
fn veths_lists_only_veths_each_with_its_peer() {
    if !require_root("veths_lists_only_veths_each_with_its_peer") {
        return;
    }
    let world = World::run(
        "veths",
        r#"
        P=$(start_container)
        ip link add name br0 type bridge
        ip link add name va type veth peer name vb
        ip link set va master br0
        ip link add name vh0 type veth peer name eth0 netns "$P"
        ip link set br0 up
        ip link set va up
        snapshot veths ip -- query veths
        save container.ip.json nsenter -t "$P" -n ip -j link
        save own-net readlink /proc/self/ns/net
        "#,
    );
    let result = world.nshelper_run("veths").only_result();
    assert_eq!(result["target"], json!({"kind": "self"}));
    let ip = world.ip_json("veths.ip.json");
    let links = &result["links"];
    let mut names: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["va", "vb", "vh0"], "only the veths");
    assert_links_match_ip_where(links, &ip, |l| l["linkinfo"]["info_kind"] == "veth");

    let own_net = world.inode("own-net");
    assert_eq!(result["namespaces"]["net"], own_net);
    let va = link_named(links, "va");
    let vb = link_named(links, "vb");
    assert_eq!(
        va["peer"],
        json!({"ifindex": vb["ifindex"], "netns": own_net, "ifname": "vb"})
    );
    assert_eq!(
        vb["peer"],
        json!({"ifindex": va["ifindex"], "netns": own_net, "ifname": "va"})
    );
    // vh0's peer is eth0 inside the container: its index is known, its namespace only by nsid.
    let container = world.ip_json("container.ip.json");
    let eth0 = link_named(&container, "eth0");
    assert_eq!(
        link_named(links, "vh0")["peer"],
        json!({"ifindex": eth0["ifindex"], "netns": null, "ifname": null})
    );
}

#[test]
fn netns_by_name_by_path_and_by_proc_file_match_ip() {
    if !require_root("netns_by_name_by_path_and_by_proc_file_match_ip") {
        return;
    }
    let world = World::run(
        "netns",
        r#"
        ip netns add red
        ip -n red link add name r1 type veth peer name r2
        ip -n red link set r1 up
        ip -n red link set r2 up
        ip -n red link add name rbr type bridge
        ip netns exec red sleep 600 &
        holder=$!
        until [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.02; done
        snapshot byname ip -n red -- query links --netns red
        snapshot bypath ip -n red -- query links --netns /run/netns/red
        snapshot byproc ip -n red -- query links --netns "/proc/$holder/ns/net"
        echo "/proc/$holder/ns/net" >"$OUT/procpath"
        save red-net stat -L -c %i /run/netns/red
        for t in net pid mnt; do save "own-$t" readlink "/proc/self/ns/$t"; done
        "#,
    );
    let red = world.inode("red-net");
    let proc_path = world.read("procpath").trim().to_owned();
    for (run, target) in [
        (
            "byname",
            json!({"kind": "netns", "name": "red", "path": "/run/netns/red"}),
        ),
        (
            "bypath",
            json!({"kind": "netns", "name": null, "path": "/run/netns/red"}),
        ),
        (
            "byproc",
            json!({"kind": "netns", "name": null, "path": proc_path}),
        ),
    ] {
        let result = world.nshelper_run(run).only_result();
        assert_eq!(result["target"], target);
        assert_links_match_ip(&result["links"], &world.ip_json(&format!("{run}.ip.json")));
        assert_eq!(result["namespaces"]["net"], red, "{run}");
        // Only the network namespace is joined for a namespace file.
        assert_eq!(result["namespaces"]["pid"], world.inode("own-pid"), "{run}");
        assert_eq!(result["namespaces"]["mnt"], world.inode("own-mnt"), "{run}");
        assert_ne!(red, world.inode("own-net"));
    }
}

#[test]
fn own_namespaces_need_no_privilege() {
    if !require_root("own_namespaces_need_no_privilege") {
        return;
    }
    let world = World::run(
        "unprivileged",
        r#"
        ip link add name va type veth peer name vb
        ip link set va up
        P=$(start_container)
        nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --bounding-set=-all "$@"; }
        snapshot own ip -- query links
        NSHELPER_REAL=$NSHELPER
        NSHELPER="setpriv"
        snapshot own-nobody ip -- --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --bounding-set=-all "$NSHELPER_REAL" query links
        run_nshelper denied --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --bounding-set=-all "$NSHELPER_REAL" query links --pid "$P"
        run_nshelper no-chroot --bounding-set=-sys_chroot "$NSHELPER_REAL" query links --pid "$P"
        run_nshelper no-chroot-net --bounding-set=-sys_chroot "$NSHELPER_REAL" query links --pid "$P" --ns net
        save own-net readlink /proc/self/ns/net
        "#,
    );
    let as_root = world.nshelper_run("own").only_result();
    let as_nobody = world.nshelper_run("own-nobody").only_result();
    assert_links_match_ip(&as_nobody["links"], &world.ip_json("own-nobody.ip.json"));
    assert_eq!(as_nobody["target"], json!({"kind": "self"}));
    assert_eq!(as_nobody["namespaces"], as_root["namespaces"]);
    assert_eq!(as_nobody["namespaces"]["net"], world.inode("own-net"));

    let denied = world.nshelper_run("denied");
    let error = denied.only_error("permission_denied");
    assert_eq!(error["target"]["kind"], "pid");
    for expected in [
        "needs root",
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_SYS_CHROOT",
        "sudo",
    ] {
        assert!(
            denied.stderr.contains(expected),
            "the message says what is missing ({expected}): {}",
            denied.stderr
        );
    }
    // Root without CAP_SYS_CHROOT may join a network namespace, not a mount namespace.
    let no_chroot = world.nshelper_run("no-chroot");
    let error = no_chroot.only_error("permission_denied");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("CAP_SYS_CHROOT"), "{message}");
    assert!(!message.contains("CAP_SYS_ADMIN"), "{message}");
    world.nshelper_run("no-chroot-net").only_result();
}

#[test]
fn ns_picks_which_namespaces_of_the_process_are_joined() {
    if !require_root("ns_picks_which_namespaces_of_the_process_are_joined") {
        return;
    }
    let world = World::run(
        "ns-list",
        r#"
        P=$(start_container)
        U=$(unshare --user --map-root-user --net --pid --fork --mount-proc sleep 600 </dev/null >/dev/null 2>&1 & l=$!
            for _ in $(seq 400); do c=$(tr -d ' ' </proc/$l/task/$l/children 2>/dev/null || true); [ -n "$c" ] && break; sleep 0.025; done
            echo "$c")
        until [ "$(readlink /proc/$U/ns/user)" != "$(readlink /proc/self/ns/user)" ]; do sleep 0.02; done
        unshare --net --pid --mount --uts --ipc --cgroup --fork --mount-proc sleep 600 </dev/null >/dev/null 2>&1 &
        L=$!
        until Q=$(tr -d ' ' </proc/$L/task/$L/children 2>/dev/null) && [ -n "$Q" ] \
          && [ "$(readlink /proc/$Q/ns/ipc)" != "$(readlink /proc/self/ns/ipc)" ]; do sleep 0.02; done
        run_nshelper every query links --pid "$Q" --ns net,pid,mnt,uts,ipc,cgroup
        for t in net pid mnt uts ipc cgroup; do save "every-$t" readlink "/proc/$Q/ns/$t"; done
        run_nshelper uts query links --pid "$P" --ns net,pid,mnt,uts
        run_nshelper netonly query links --pid "$P" --ns net
        run_nshelper sameuser query links --pid "$P" --ns user,net
        snapshot userns nsenter -t "$U" -U -n --preserve-credentials ip -- query links --pid "$U" --ns user,net,pid,mnt
        for t in net pid mnt uts user ipc cgroup; do
          save "target-$t" readlink "/proc/$P/ns/$t"
          save "userns-$t" readlink "/proc/$U/ns/$t"
          save "own-$t" readlink "/proc/self/ns/$t"
        done
        "#,
    );
    let every = world.nshelper_run("every").only_result();
    for kind in ["net", "pid", "mnt", "uts", "ipc", "cgroup"] {
        assert_eq!(
            every["namespaces"][kind],
            world.inode(&format!("every-{kind}")),
            "{kind}"
        );
        assert_ne!(
            every["namespaces"][kind],
            world.inode(&format!("own-{kind}"))
        );
    }

    let uts = world.nshelper_run("uts").only_result();
    for kind in ["net", "pid", "mnt", "uts"] {
        assert_eq!(
            uts["namespaces"][kind],
            world.inode(&format!("target-{kind}"))
        );
    }

    let net_only = world.nshelper_run("netonly").only_result();
    assert_eq!(net_only["namespaces"]["net"], world.inode("target-net"));
    assert_eq!(net_only["namespaces"]["pid"], world.inode("own-pid"));
    assert_eq!(net_only["namespaces"]["mnt"], world.inode("own-mnt"));

    // The container shares our user namespace: asking for it must not fail.
    let same_user = world.nshelper_run("sameuser").only_result();
    assert_eq!(same_user["namespaces"]["user"], world.inode("own-user"));
    assert_eq!(same_user["namespaces"]["net"], world.inode("target-net"));

    // A container with a user namespace of its own: joined first, then the rest.
    let userns = world.nshelper_run("userns").only_result();
    for kind in ["user", "net", "pid", "mnt"] {
        assert_eq!(
            userns["namespaces"][kind],
            world.inode(&format!("userns-{kind}")),
            "{kind}"
        );
    }
    assert_links_match_ip(&userns["links"], &world.ip_json("userns.ip.json"));
}

#[test]
fn hostile_interface_names_stay_strict_json() {
    if !require_root("hostile_interface_names_stay_strict_json") {
        return;
    }
    let world = World::run(
        "names",
        r#"
        P=$(start_container)
        inside() { nsenter -t "$P" -n "$@"; }
        inside ip link add name $'c\x01"x' type veth peer name $'n\xffx'
        inside ip link add name 'q\u0041' type bridge
        snapshot names nsenter -t "$P" -n ip -- query links --pid "$P"
        "#,
    );
    let run = world.nshelper_run("names");
    // Strictly valid JSON, though iproute2 itself prints invalid JSON for the same names.
    let result = run.only_result();
    let links = &result["links"];
    assert_links_match_ip(links, &world.ip_json("names.ip.json"));
    let control = link_named(links, "c\u{1}\"x");
    assert!(control.get("ifname_hex").is_none());
    let not_utf8 = link_named(links, "n\u{fffd}x");
    assert_eq!(not_utf8["ifname_hex"], "6eff78");
    assert_eq!(control["peer"]["ifname"], "n\u{fffd}x");
    assert_eq!(control["peer"]["ifname_hex"], "6eff78");
    link_named(links, "q\\u0041");
}

#[test]
fn results_finished_by_the_walker_equal_those_finished_by_the_parent() {
    if !require_root("results_finished_by_the_walker_equal_those_finished_by_the_parent") {
        return;
    }
    // --netns targets are finished by the walker and printed as sent; --pretty has the
    // parent parse and finish them instead. Both must print the same document, peers in the
    // helper's own namespace (not a target) named.
    let world = World::run(
        "printed",
        r#"
        ip netns add red
        ip netns add blue
        ip link add name h-red type veth peer name r0 netns red
        ip -n red link add name rb type veth peer name b0 netns blue
        ip -n red link add name rbr type bridge
        for what in links veths all; do
          run_nshelper "$what-printed" query "$what" --netns red --netns blue
          run_nshelper "$what-pretty" query "$what" --netns red --netns blue --pretty
        done
        save own-net stat -L -c %i /proc/self/ns/net
        save blue-net stat -L -c %i /run/netns/blue
        "#,
    );
    for what in ["links", "veths", "all"] {
        let printed = world.nshelper_run(&format!("{what}-printed")).document();
        let pretty = world.nshelper_run(&format!("{what}-pretty")).document();
        assert_eq!(printed, pretty, "{what}");
        assert_eq!(printed["errors"], json!([]), "{what}");
        let red = &printed["results"][0]["links"];
        let r0 = link_named(red, "r0");
        assert_eq!(r0["peer"]["ifname"], "h-red", "{what}: {r0}");
        assert_eq!(r0["peer"]["netns"], world.inode("own-net"), "{what}");
        let rb = link_named(red, "rb");
        assert_eq!(rb["peer"]["ifname"], "b0", "{what}: {rb}");
        assert_eq!(rb["peer"]["netns"], world.inode("blue-net"), "{what}");
        let kinds: Vec<&str> = red
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|link| link["kind"].as_str())
            .collect();
        assert_eq!(
            kinds.contains(&"bridge"),
            what != "veths",
            "{what}: {kinds:?}"
        );
    }
}
