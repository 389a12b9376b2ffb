//! The whole host in one call: `query --all`, `list`, `whois`, veth peers across namespaces,
//! addresses, routes, neighbours and richer links, on a real scene made under unshare.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

use crate::util::{assert_links_match_ip, link_named, require_root, World};

/// A host full of namespaces, every kind that `--all` must find:
/// - named namespaces `red` and `blue`, joined by the veth pair rb (red) / br (blue), and red
///   holding a bridge (rb its port), a macvlan on the bridge, a vxlan on rb and a tun;
/// - containers C1 and C2, each with eth0 peered to vc1 / vc2 here; C1 has addresses,
///   routes and a neighbour;
/// - `pinned`: bind-mounted at /run/pinned/ns1, its process gone; p0 there, vp here;
/// - `held`: kept only by descriptor 7 of a sleeping process; f0 there, vf here;
/// - `thread`: the namespace of one thread of a python process, its own process gone.
pub(crate) const SCENE: &str = r#"
ip netns add red
ip netns add blue
ip -n red link add name rb type veth peer name br netns blue
ip -n red link add name rbr type bridge
ip -n red link add name mv0 link rbr type macvlan mode bridge
ip -n red link add name vx0 type vxlan id 42 dstport 4789 dev rb
ip -n red tuntap add dev tun0 mode tun
ip -n red link set dev rb master rbr
ip -n red link set dev rb alias "to blue"
ip -n red link property add dev rb altname rb-alt
ip -n red link set dev rb txqueuelen 500
for l in rb rbr mv0 vx0; do ip -n red link set dev "$l" up; done
ip -n blue link set dev br up

C1=$(start_container)
C2=$(start_container)
echo "$C1" >"$OUT/c1"
echo "$C2" >"$OUT/c2"
ip link add name vc1 type veth peer name eth0 netns "$C1"
ip link add name vc2 type veth peer name eth0 netns "$C2"
ip link set dev vc1 up
ip link set dev vc2 up
ip addr add 10.0.3.1/24 dev vc1
c1() { nsenter -t "$C1" -n "$@"; }
c1 ip link set dev lo up
c1 ip link set dev eth0 up
c1 ip addr add 10.0.3.7/24 brd + dev eth0 label eth0:web
c1 ip addr add fd00::7/64 dev eth0 nodad
c1 ip route add default via 10.0.3.1
c1 ip route add 10.9.0.0/16 via 10.0.3.1 metric 50 table 100
c1 ip route add unreachable 10.66.0.0/16
c1 ip -6 route add fd09::/64 via fd00::1 table 100
c1 ip route add 10.99.0.0/16 nexthop via 10.0.3.1 dev eth0 weight 1 nexthop via 10.0.3.2 dev eth0 weight 3
c1 ip -6 route add fd77::/64 nexthop via fd00::1 dev eth0 nexthop via fd00::2 dev eth0
nsenter -t "$C2" -n ip addr add 10.5.5.5/32 dev eth0
ip -n red addr add 10.5.5.5/32 dev rbr
ip -n blue link add name 42 type bridge
c1 ip neigh add 10.0.3.9 lladdr 02:00:00:00:00:09 dev eth0 nud permanent

mkdir -p /run/pinned
touch /run/pinned/ns1
unshare --net=/run/pinned/ns1 true
nsenter --net=/run/pinned/ns1 ip link add name p0 type veth peer name vp netns 1
echo /run/pinned/ns1 >"$OUT/pinned-path"

unshare --net sleep 600 </dev/null >/dev/null 2>&1 &
S=$!
until [ "$(readlink /proc/$S/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.02; done
ip link add name vf type veth peer name f0 netns "$S"
readlink /proc/$S/ns/net >"$OUT/held-ns"
(exec 7</proc/$S/ns/net; exec sleep 600) </dev/null >/dev/null 2>&1 &
HOLDER=$!
echo "$HOLDER" >"$OUT/holder"
until [ "$(readlink /proc/$HOLDER/fd/7 2>/dev/null)" = "$(cat "$OUT/held-ns")" ]; do sleep 0.02; done
kill -9 "$S"; wait "$S" 2>/dev/null || true

unshare --net sleep 600 </dev/null >/dev/null 2>&1 &
T=$!
until [ "$(readlink /proc/$T/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.02; done
readlink /proc/$T/ns/net >"$OUT/thread-ns"
thread_in_netns "/proc/$T/ns/net" "$OUT/thread-tid"
kill -9 "$T"; wait "$T" 2>/dev/null || true
readlink /proc/self/ns/net >"$OUT/own-ns"
readlink /proc/self/ns/pid >"$OUT/own-pid"
readlink /proc/self/ns/mnt >"$OUT/own-mnt"
"#;

fn inode_of(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no inode in {text:?}"))
}

/// The result whose target names the network namespace `inode`.
fn result_for(document: &Value, inode: u64) -> &Value {
    document["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["namespaces"]["net"] == inode)
        .unwrap_or_else(|| panic!("no result for netns {inode}: {document}"))
}

#[test]
fn query_all_finds_every_network_namespace_of_the_host() {
    if !require_root("query_all_finds_every_network_namespace_of_the_host") {
        return;
    }
    let world = World::run(
        "all",
        &format!(
            r#"{SCENE}
        run_nshelper all query links --all
        # Every namespace /proc, /run/netns, the mount table and open descriptors hold.
        {{
          for p in /proc/[0-9]*; do
            readlink "$p/ns/net"
            for t in "$p"/task/*; do readlink "$t/ns/net"; done
            for f in "$p"/fd/*; do readlink "$f"; done
          done 2>/dev/null | grep '^net:' || true
          for f in /run/netns/*; do stat -L -c 'net:[%i]' "$f"; done
          awk '{{ for (i = 1; i <= NF; i++) if ($i == "-") {{ if ($(i+1) == "nsfs") print $4; break }} }}' /proc/self/mountinfo | grep '^net:'
        }} | sort -u >"$OUT/expected"
        "#
        ),
    );
    let run = world.nshelper_run("all");
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let document = run.document();
    assert_eq!(document["errors"], json!([]));
    let expected: BTreeSet<u64> = world.read("expected").lines().map(inode_of).collect();
    let found: Vec<u64> = document["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"]["netns"].as_u64().unwrap())
        .collect();
    let found_set: BTreeSet<u64> = found.iter().copied().collect();
    assert_eq!(
        found.len(),
        found_set.len(),
        "each namespace once: {found:?}"
    );
    assert_eq!(found_set, expected);
    assert_eq!(
        expected.len(),
        8,
        "own, red, blue, C1, C2, pinned, held, thread"
    );

    for result in document["results"].as_array().unwrap() {
        assert_eq!(result["target"]["kind"], "discovered");
        // Only the network namespace is joined: pid and mount stay the helper's own, even
        // for the containers, which have their own.
        assert_eq!(result["namespaces"]["net"], result["target"]["netns"]);
        assert_eq!(result["namespaces"]["pid"], world.inode("own-pid"));
        assert_eq!(result["namespaces"]["mnt"], world.inode("own-mnt"));
    }
    let own = world.inode("own-ns");
    let red = document["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"]["names"] == json!(["red"]))
        .expect("red by name");
    assert_eq!(red["target"]["paths"], json!(["/run/netns/red"]));
    let pinned = result_for(&document, inode_of(&world.read("held-ns")));
    let holder: u64 = world.read("holder").trim().parse().unwrap();
    assert_eq!(pinned["target"]["fds"], json!([{"pid": holder, "fd": 7}]));
    assert_eq!(pinned["target"]["pids"], json!([]));
    let thread = result_for(&document, inode_of(&world.read("thread-ns")));
    let tid: u64 = world.read("thread-tid").trim().parse().unwrap();
    assert_eq!(thread["target"]["threads"], json!([tid]));
    assert_eq!(thread["target"]["pids"], json!([]));
    let bound = document["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"]["paths"] == json!(["/run/pinned/ns1"]))
        .expect("the bind-mounted namespace");
    assert_eq!(bound["target"]["pids"], json!([]));
    let c1: u64 = world.read("c1").trim().parse().unwrap();
    assert!(document["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["target"]["pids"].as_array().unwrap().contains(&json!(c1))));
    assert!(found_set.contains(&own));
}

#[test]
fn names_in_run_netns_may_be_links_and_nothing_else_there_is_opened() {
    if !require_root("names_in_run_netns_may_be_links_and_nothing_else_there_is_opened") {
        return;
    }
    // ip netns lists whatever is in /run/netns. A symbolic link to a namespace's file is
    // one more name for it; a FIFO or a plain file is no namespace, and must not even be
    // opened: opening a FIFO for reading would let a writer blocked on it go on.
    let world = World::run(
        "run-netns-odd",
        r#"
        ip netns add red
        ln -s /run/netns/red /run/netns/alias
        # A mount point in a directory anyone may write to is opened the careful way.
        mkdir -m 777 /run/open
        touch /run/open/red
        mount --bind /run/netns/red /run/open/red
        touch /run/netns/plain
        mkfifo /run/netns/fifo
        echo written >/run/netns/fifo &
        WRITER=$!
        timeout 20 "$NSHELPER" query links --all >"$OUT/all.out" 2>"$OUT/all.err" || echo "$?" >"$OUT/all.failed"
        if kill -0 "$WRITER" 2>/dev/null; then echo blocked >"$OUT/writer"; else echo went-on >"$OUT/writer"; fi
        kill "$WRITER" 2>/dev/null || true
        stat -c '%i' /run/netns/red >"$OUT/red"
        "#,
    );
    assert!(
        !world.path("all.failed").exists(),
        "status {}: {}",
        world.read("all.failed"),
        world.read("all.err")
    );
    let document: Value = serde_json::from_slice(&world.bytes("all.out")).unwrap();
    assert_eq!(document["errors"], json!([]), "{document}");
    assert_eq!(
        document["results"].as_array().unwrap().len(),
        2,
        "{document}"
    );
    let red = result_for(&document, world.read("red").trim().parse().unwrap());
    assert_eq!(red["target"]["names"], json!(["alias", "red"]));
    assert_eq!(
        red["target"]["paths"],
        json!(["/run/netns/red", "/run/open/red"])
    );
    assert_eq!(
        world.read("writer").trim(),
        "blocked",
        "the FIFO was opened"
    );
}

/// (namespace inode, ifname) → (peer namespace inode, peer ifname), for every veth.
fn veth_ends(document: &Value) -> HashMap<(u64, String), (Value, Value)> {
    let mut ends = HashMap::new();
    for result in document["results"].as_array().unwrap() {
        let netns = result["namespaces"]["net"].as_u64().unwrap();
        for link in result["links"].as_array().unwrap() {
            if link["kind"] == "veth" {
                ends.insert(
                    (netns, link["ifname"].as_str().unwrap().to_owned()),
                    (
                        link["peer"]["netns"].clone(),
                        link["peer"]["ifname"].clone(),
                    ),
                );
            }
        }
    }
    ends
}

#[test]
fn every_veth_peer_is_named_in_both_directions() {
    if !require_root("every_veth_peer_is_named_in_both_directions") {
        return;
    }
    let world = World::run(
        "peers",
        &format!(
            r#"{SCENE}
        run_nshelper all query veths --all
        run_nshelper container query veths --pid "$C1"
        run_nshelper pair query veths --netns red --netns blue
        for n in red blue; do stat -L -c %i "/run/netns/$n" >"$OUT/$n-ns"; done
        for c in "$C1" "$C2"; do readlink "/proc/$c/ns/net"; done >"$OUT/containers-ns"
        stat -L -c %i /run/pinned/ns1 >"$OUT/pinned-ns"
        "#
        ),
    );
    let all = world.nshelper_run("all").only_result_set();
    let ends = veth_ends(&all);
    let own = world.inode("own-ns");
    let red = world.inode("red-ns");
    let blue = world.inode("blue-ns");
    let pinned = world.inode("pinned-ns");
    let held = inode_of(&world.read("held-ns"));
    let containers: Vec<u64> = world.read("containers-ns").lines().map(inode_of).collect();
    let pairs = [
        ((own, "vc1"), (containers[0], "eth0")),
        ((own, "vc2"), (containers[1], "eth0")),
        ((red, "rb"), (blue, "br")),
        ((own, "vp"), (pinned, "p0")),
        ((own, "vf"), (held, "f0")),
    ];
    for ((a_ns, a), (b_ns, b)) in pairs {
        let a_end = &ends[&(a_ns, a.to_owned())];
        assert_eq!(a_end, &(json!(b_ns), json!(b)), "{a} -> {b}");
        let b_end = &ends[&(b_ns, b.to_owned())];
        assert_eq!(b_end, &(json!(a_ns), json!(a)), "{b} -> {a}");
    }
    assert_eq!(ends.len(), 10, "exactly the five pairs: {ends:?}");

    // One container: its peer is in the helper's own namespace.
    let container = world.nshelper_run("container").only_result();
    let eth0 = link_named(&container["links"], "eth0");
    assert_eq!(eth0["peer"]["netns"], own);
    assert_eq!(eth0["peer"]["ifname"], "vc1");

    // Two targets of one call see each other.
    let pair = world.nshelper_run("pair").only_result_set();
    let ends = veth_ends(&pair);
    assert_eq!(ends[&(red, "rb".to_owned())], (json!(blue), json!("br")));
    assert_eq!(ends[&(blue, "br".to_owned())], (json!(red), json!("rb")));
}

/// Turns `ip -j route` entries into our CIDR form.
fn ip_route_dst(route: &Value, family: &str) -> String {
    let dst = route["dst"].as_str().unwrap();
    let full = if family == "inet" { 32 } else { 128 };
    match dst {
        "default" if family == "inet" => "0.0.0.0/0".to_owned(),
        "default" => "::/0".to_owned(),
        dst if dst.contains('/') => dst.to_owned(),
        dst => format!("{dst}/{full}"),
    }
}

#[test]
fn addresses_routes_and_neighbours_match_ip() {
    if !require_root("addresses_routes_and_neighbours_match_ip") {
        return;
    }
    let world = World::run(
        "contents",
        &format!(
            r#"{SCENE}
        in_c1() {{ nsenter -t "$C1" -n "$@"; }}
        oracle() {{
          save addr.json in_c1 ip -j addr
          for t in main local 100; do
            save "route4-$t.json" in_c1 ip -4 -j route show table "$t"
            save "route6-$t.json" in_c1 ip -6 -j route show table "$t"
          done
          save neigh.json in_c1 ip -j neigh show nud all
          save link.json in_c1 ip -j -d link
          cat "$OUT"/addr.json "$OUT"/route*.json "$OUT"/neigh.json "$OUT"/link.json
        }}
        # IPv6 keeps adding multicast neighbours for a while: take a moment when nothing moved.
        for _ in $(seq 50); do
          oracle >"$OUT/before"
          run_nshelper all query all --pid "$C1"
          oracle >"$OUT/after"
          cmp -s "$OUT/before" "$OUT/after" && break
          sleep 0.2
        done
        SNAPSHOT_STATS=1 snapshot stats nsenter -t "$C1" -n ip -- query links --pid "$C1" --stats
        run_nshelper red query links --netns red
        save red.json ip -n red -j -d link
        "#
        ),
    );
    let result = world.nshelper_run("all").only_result();

    // Addresses: one object per address, as `ip -j addr` lists them per link.
    let mut expected = Vec::new();
    for link in world.ip_json("addr.json").as_array().unwrap() {
        for info in link["addr_info"].as_array().unwrap() {
            expected.push(json!({
                "ifindex": link["ifindex"], "ifname": link["ifname"],
                "family": info["family"], "local": info["local"],
                "prefixlen": info["prefixlen"], "scope": info["scope"],
                "broadcast": info.get("broadcast"), "label": info.get("label"),
            }));
        }
    }
    let ours: Vec<Value> = result["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            json!({
                "ifindex": a["ifindex"], "ifname": a["ifname"], "family": a["family"],
                "local": a["local"], "prefixlen": a["prefixlen"], "scope": a["scope"],
                "broadcast": a.get("broadcast"), "label": a.get("label"),
            })
        })
        .collect();
    let key = |v: &Value| v.to_string();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort_by_key(key);
    let mut ours_sorted = ours.clone();
    ours_sorted.sort_by_key(key);
    assert_eq!(ours_sorted, expected_sorted);
    assert!(ours
        .iter()
        .any(|a| a["label"] == "eth0:web" && a["broadcast"] == "10.0.3.255"));

    // Routes: every table comes back; compare main, local and 100 of each family.
    let routes = result["routes"].as_array().unwrap();
    for family in ["inet", "inet6"] {
        for (table, number) in [("main", 254), ("local", 255), ("100", 100)] {
            let file = format!("route{}-{table}.json", if family == "inet" { 4 } else { 6 });
            let ip = world.ip_json(&file);
            let mut theirs: Vec<Value> = ip
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    json!({
                        "dst": ip_route_dst(r, family),
                        "type": r.get("type").cloned().unwrap_or(json!("unicast")),
                        "gateway": r.get("gateway"), "dev": r.get("dev"),
                        // ip leaves out the protocol when it is boot.
                        "protocol": r.get("protocol").cloned().unwrap_or(json!("boot")),
                        "metric": r.get("metric"),
                        "prefsrc": r.get("prefsrc"),
                        // ip leaves out the scope when it is global.
                        "scope": r.get("scope").cloned().unwrap_or(json!("global")),
                        "nexthops": r.get("nexthops").map(|hops| {
                            hops.as_array().unwrap().iter().map(|h| json!({
                                "gateway": h.get("gateway"), "dev": h["dev"], "weight": h["weight"],
                            })).collect::<Vec<_>>()
                        }),
                    })
                })
                .collect();
            let mut ours: Vec<Value> = routes
                .iter()
                .filter(|r| r["family"] == family && r["table"] == number)
                .map(|r| {
                    json!({
                        "dst": r["dst"], "type": r["type"], "gateway": r["gateway"],
                        "dev": r["dev"], "protocol": r["protocol"],
                        "metric": r["metric"], "prefsrc": r["prefsrc"], "scope": r["scope"],
                        "nexthops": r.get("nexthops").map(|hops| {
                            hops.as_array().unwrap().iter().map(|h| json!({
                                "gateway": h["gateway"], "dev": h["dev"], "weight": h["weight"],
                            })).collect::<Vec<_>>()
                        }),
                    })
                })
                .collect();
            theirs.sort_by_key(key);
            ours.sort_by_key(key);
            assert_eq!(ours, theirs, "{family} table {table}");
        }
    }
    assert!(routes
        .iter()
        .any(|r| r["dst"] == "0.0.0.0/0" && r["gateway"] == "10.0.3.1" && r["table"] == 254));
    assert!(routes.iter().any(|r| r["type"] == "unreachable"));
    let multipath = routes
        .iter()
        .find(|r| r["dst"] == "10.99.0.0/16")
        .expect("the multipath route");
    assert_eq!(multipath["nexthops"][1]["weight"], 3);
    assert_eq!(multipath["nexthops"][1]["gateway"], "10.0.3.2");
    // oif and dev name the same link.
    for route in routes.iter().filter(|r| !r["dev"].is_null()) {
        let link = link_named(&result["links"], route["dev"].as_str().unwrap());
        assert_eq!(route["oif"], link["ifindex"], "{route}");
    }

    // Neighbours.
    let mut theirs: Vec<Value> = world
        .ip_json("neigh.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!({"dst": n["dst"], "dev": n["dev"], "lladdr": n.get("lladdr"), "state": n["state"]}))
        .collect();
    let mut ours: Vec<Value> = result["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!({"dst": n["dst"], "dev": n["dev"], "lladdr": n["lladdr"], "state": n["state"]}))
        .collect();
    theirs.sort_by_key(key);
    ours.sort_by_key(key);
    assert_eq!(ours, theirs);
    assert!(ours.contains(&json!({"dst": "10.0.3.9", "dev": "eth0", "lladdr": "02:00:00:00:00:09", "state": ["PERMANENT"]})));
    for neighbor in result["neighbors"].as_array().unwrap() {
        let link = link_named(&result["links"], neighbor["dev"].as_str().unwrap());
        assert_eq!(neighbor["ifindex"], link["ifindex"], "{neighbor}");
        let v6 = neighbor["dst"].as_str().unwrap().contains(':');
        assert_eq!(
            neighbor["family"],
            if v6 { "inet6" } else { "inet" },
            "{neighbor}"
        );
    }

    assert_links_match_ip(&result["links"], &world.ip_json("link.json"));

    // Links with stats64 as `ip -s` prints them, read while no counter moved.
    let stats = world.nshelper_run("stats").only_result();
    let ip_links = world.ip_json("stats.ip.json");
    assert_links_match_ip(&stats["links"], &ip_links);
    for theirs in ip_links.as_array().unwrap() {
        let link = link_named(&stats["links"], theirs["ifname"].as_str().unwrap());
        assert_eq!(link["stats64"], theirs["stats64"], "{}", theirs["ifname"]);
    }
    assert!(
        link_named(&stats["links"], "eth0")["stats64"]["tx"]["packets"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Richer links in red: bridge, vxlan, macvlan, tun, alias, altname, txqlen.
    let red = world.nshelper_run("red").only_result();
    let ip_red = world.ip_json("red.json");
    assert_links_match_ip(&red["links"], &ip_red);
    let links = &red["links"];
    let rb = link_named(links, "rb");
    assert_eq!(rb["alias"], "to blue");
    assert_eq!(rb["altnames"], json!(["rb-alt"]));
    assert_eq!(rb["txqlen"], 500);
    assert_eq!(rb["master"], link_named(links, "rbr")["ifindex"]);
    assert_eq!(
        link_named(links, "mv0")["link"],
        link_named(links, "rbr")["ifindex"]
    );
    assert_eq!(link_named(links, "vx0")["link"], rb["ifindex"]);
    assert_eq!(link_named(links, "vx0")["kind"], "vxlan");
    assert_eq!(link_named(links, "tun0")["kind"], "tun");
    assert_eq!(link_named(links, "tun0")["link_type"], "none");
    assert_eq!(link_named(links, "rbr")["kind"], "bridge");
    assert!(rb.get("stats64").is_none(), "stats only with --stats");
}

#[test]
fn list_agrees_with_lsns_and_finds_what_it_misses() {
    if !require_root("list_agrees_with_lsns_and_finds_what_it_misses") {
        return;
    }
    let world = World::run(
        "list",
        &format!(
            r#"{SCENE}
        run_nshelper list list
        save lsns.json lsns -J -t net -o NS,NPROCS,PID,NETNSID,NSFS,COMMAND
        # The cookie as the kernel gives it to a socket inside red.
        ip netns exec red python3 -c 'import socket; s = socket.socket(); print(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 71, 8), "little"))' >"$OUT/red-cookie"
        stat -L -c %i /run/netns/red >"$OUT/red-ns"
        "#
        ),
    );
    let run = world.nshelper_run("list");
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let document = run.document();
    assert_eq!(document["version"], 1);
    assert_eq!(document["errors"], json!([]));
    let listed = document["namespaces"].as_array().unwrap();
    let by_inode: HashMap<u64, &Value> = listed
        .iter()
        .map(|n| (n["netns"].as_u64().unwrap(), n))
        .collect();
    let lsns: Value = serde_json::from_slice(&world.bytes("lsns.json")).unwrap();
    let lsns = lsns["namespaces"].as_array().unwrap();
    assert!(!lsns.is_empty());
    for theirs in lsns {
        let inode = theirs["ns"].as_u64().unwrap();
        let ours = by_inode
            .get(&inode)
            .unwrap_or_else(|| panic!("lsns sees {inode}, list does not"));
        let pids = ours["pids"].as_array().unwrap();
        if let Some(nprocs) = theirs["nprocs"].as_u64() {
            assert_eq!(pids.len() as u64, nprocs, "{inode}");
        }
        if let Some(pid) = theirs["pid"].as_u64() {
            assert_eq!(pids.iter().filter_map(Value::as_u64).min(), Some(pid));
            let process = ours["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["pid"] == pid)
                .expect("process of the lowest pid");
            assert_eq!(process["command"], theirs["command"], "{inode}");
            assert!(process["cgroup"].as_str().unwrap().starts_with('/'));
        }
        let nsid = match &theirs["netnsid"] {
            Value::Number(n) => json!(n),
            Value::String(s) if s.parse::<i64>().is_ok() => json!(s.parse::<i64>().unwrap()),
            _ => Value::Null,
        };
        assert_eq!(ours["nsid"], nsid, "{inode}");
        if let Some(nsfs) = theirs["nsfs"].as_str() {
            assert!(
                ours["paths"].as_array().unwrap().contains(&json!(nsfs)),
                "{inode}"
            );
        }
    }
    // What lsns 2.38 misses: the bind-mounted, descriptor-held and thread-only namespaces.
    assert_eq!(listed.len(), 8);
    assert!(lsns.len() < listed.len());
    for inode in [
        inode_of(&world.read("held-ns")),
        inode_of(&world.read("thread-ns")),
    ] {
        assert!(by_inode.contains_key(&inode));
    }
    let cookies: BTreeSet<u64> = listed
        .iter()
        .map(|n| n["cookie"].as_u64().expect("every cookie"))
        .collect();
    assert_eq!(cookies.len(), listed.len(), "cookies are unique");
    let red_cookie: u64 = world.read("red-cookie").trim().parse().unwrap();
    assert_eq!(by_inode[&world.inode("red-ns")]["cookie"], red_cookie);
    let held = &by_inode[&inode_of(&world.read("held-ns"))];
    let holder: u64 = world.read("holder").trim().parse().unwrap();
    assert_eq!(held["fds"], json!([{"pid": holder, "fd": 7}]));
    let thread = &by_inode[&inode_of(&world.read("thread-ns"))];
    let tid: u64 = world.read("thread-tid").trim().parse().unwrap();
    assert_eq!(thread["threads"], json!([tid]));
    assert!(listed.iter().any(|n| n["nsid"].is_i64()), "peers got nsids");
}

#[test]
fn whois_finds_containers_and_addresses() {
    if !require_root("whois_finds_containers_and_addresses") {
        return;
    }
    let world = World::run(
        "whois",
        &format!(
            r#"{SCENE}
        run_nshelper veth whois vc1
        run_nshelper ip whois 10.0.3.7
        nsenter -t "$C2" -n ip -j link show dev eth0 >"$OUT/c2-eth0.json"
        run_nshelper mac whois "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["address"].upper())' "$OUT/c2-eth0.json")"
        ip -j link show dev vc2 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])' >"$OUT/vc2-index"
        run_nshelper index whois "$(cat "$OUT/vc2-index")"
        run_nshelper none whois no-such-interface
        run_nshelper eth0 whois eth0
        run_nshelper twice whois 10.5.5.5
        run_nshelper altname whois rb-alt
        run_nshelper numeric whois 42
        stat -L -c %i /run/netns/red >"$OUT/red-ns"
        stat -L -c %i /run/netns/blue >"$OUT/blue-ns"
        for c in "$C1" "$C2"; do readlink "/proc/$c/ns/net"; done >"$OUT/containers-ns"
        "#
        ),
    );
    let own = world.inode("own-ns");
    let containers: Vec<u64> = world.read("containers-ns").lines().map(inode_of).collect();
    let c1: u64 = world.read("c1").trim().parse().unwrap();
    let c2: u64 = world.read("c2").trim().parse().unwrap();

    let veth = world.nshelper_run("veth");
    assert_eq!(veth.status, 0, "{}", veth.stderr);
    let matches = veth.document()["matches"].clone();
    assert_eq!(matches.as_array().unwrap().len(), 1, "{matches}");
    let found = &matches[0];
    assert_eq!(found["netns"], own);
    assert_eq!(found["link"]["ifname"], "vc1");
    assert_eq!(found["peer"]["netns"], containers[0]);
    assert_eq!(found["peer"]["ifname"], "eth0");
    assert!(found["peer"]["pids"]
        .as_array()
        .unwrap()
        .contains(&json!(c1)));

    let ip = world.nshelper_run("ip").document();
    assert_eq!(ip["matches"].as_array().unwrap().len(), 1, "{ip}");
    assert_eq!(ip["matches"][0]["netns"], containers[0]);
    assert_eq!(ip["matches"][0]["link"]["ifname"], "eth0");
    assert!(ip["matches"][0]["pids"]
        .as_array()
        .unwrap()
        .contains(&json!(c1)));
    assert_eq!(ip["matches"][0]["peer"]["ifname"], "vc1");

    let mac = world.nshelper_run("mac").document();
    assert_eq!(mac["matches"].as_array().unwrap().len(), 1, "{mac}");
    assert_eq!(mac["matches"][0]["netns"], containers[1]);
    assert!(mac["matches"][0]["pids"]
        .as_array()
        .unwrap()
        .contains(&json!(c2)));

    // An ifindex means the caller's namespace only, though every container has its own 2, 3...
    let index = world.nshelper_run("index").document();
    let vc2_index: u64 = world.read("vc2-index").trim().parse().unwrap();
    let index_matches = index["matches"].as_array().unwrap();
    assert_eq!(index_matches.len(), 1, "{index}");
    assert_eq!(index_matches[0]["netns"], own);
    assert_eq!(index_matches[0]["link"]["ifindex"], vc2_index);

    // A name found in several namespaces is found in each.
    let eth0 = world.nshelper_run("eth0").document();
    let mut in_ns: Vec<u64> = eth0["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["netns"].as_u64().unwrap())
        .collect();
    in_ns.sort_unstable();
    let mut expected = containers.clone();
    expected.sort_unstable();
    assert_eq!(in_ns, expected, "{eth0}");

    let red = world.inode("red-ns");
    let blue = world.inode("blue-ns");
    let twice = world.nshelper_run("twice").document();
    let mut holders: Vec<u64> = twice["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["netns"].as_u64().unwrap())
        .collect();
    holders.sort_unstable();
    let mut expected = vec![containers[1], red];
    expected.sort_unstable();
    assert_eq!(holders, expected, "{twice}");

    // An altname, and a veth whose peer sits in a named namespace.
    let altname = world.nshelper_run("altname").document();
    assert_eq!(altname["matches"].as_array().unwrap().len(), 1, "{altname}");
    let rb = &altname["matches"][0];
    assert_eq!(rb["netns"], red);
    assert_eq!(rb["names"], json!(["red"]));
    assert_eq!(rb["link"]["ifname"], "rb");
    assert_eq!(rb["peer"]["netns"], blue);
    assert_eq!(rb["peer"]["ifname"], "br");
    assert_eq!(rb["peer"]["names"], json!(["blue"]));

    // A name that looks like an ifindex is still a name.
    let numeric = world.nshelper_run("numeric").document();
    assert!(
        numeric["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["netns"] == blue && m["link"]["ifname"] == "42"),
        "{numeric}"
    );

    let none = world.nshelper_run("none");
    assert_eq!(none.status, 1);
    assert_eq!(none.document()["matches"], json!([]));
    assert_eq!(none.stderr.lines().count(), 1, "{}", none.stderr);
}

#[test]
fn a_namespace_that_cannot_be_entered_is_an_error_and_the_others_still_answer() {
    if !require_root("a_namespace_that_cannot_be_entered_is_an_error_and_the_others_still_answer") {
        return;
    }
    // Root of a user namespace of its own: it can open /run/netns/red, but not join it.
    let world = World::run(
        "unenterable",
        r#"
        ip netns add red
        stat -L -c %i /run/netns/red >"$OUT/red-ns"
        NSHELPER_REAL=$NSHELPER
        NSHELPER=unshare
        run_nshelper all --user --map-root-user --net "$NSHELPER_REAL" query links --all
        "#,
    );
    let run = world.nshelper_run("all");
    assert_eq!(run.status, 1, "stderr: {}", run.stderr);
    let document = run.document();
    let errors = document["errors"].as_array().unwrap();
    let red = world.inode("red-ns");
    let error = errors
        .iter()
        .find(|e| e["target"]["netns"] == red)
        .unwrap_or_else(|| panic!("no error for red: {document}"));
    assert_eq!(error["kind"], "permission_denied");
    assert_eq!(error["target"]["names"], json!(["red"]));
    let results = document["results"].as_array().unwrap();
    assert!(
        !results.is_empty(),
        "its own namespace still answers: {document}"
    );
    assert_eq!(run.stderr.lines().count(), errors.len(), "{}", run.stderr);
}

#[test]
fn processes_that_come_and_go_during_the_call_are_not_errors() {
    if !require_root("processes_that_come_and_go_during_the_call_are_not_errors") {
        return;
    }
    let world = World::run(
        "churn",
        r#"
        ip netns add red
        # Short-lived processes in namespaces of their own, appearing and exiting throughout.
        ( while :; do unshare --net sleep 0.005; done ) </dev/null >/dev/null 2>&1 &
        CHURN=$!
        for i in $(seq 8); do
          run_nshelper "all-$i" query links --all
          run_nshelper "list-$i" list
        done
        kill "$CHURN"
        "#,
    );
    for i in 1..=8 {
        for run in ["all", "list"] {
            let run = world.nshelper_run(&format!("{run}-{i}"));
            assert_eq!(run.status, 0, "stderr: {}", run.stderr);
            assert!(run.stderr.is_empty(), "{}", run.stderr);
            assert_eq!(run.document()["errors"], json!([]));
        }
        let all = world.nshelper_run(&format!("all-{i}")).document();
        assert!(all["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"]["names"] == json!(["red"])));
    }
}
