//! `-o table`: every query kind, `list` and `whois` as aligned columns, compared row by row
//! with `ip -br`, `ip route`, `ip neigh` and `lsns` run in the same namespace, and with
//! nshelper's own JSON.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{require_root, Run, World};

/// One namespace's block of a table: its heading line, and each titled section's rows
/// (the section is `""` outside `all`), each row split into cells; the header row first.
#[derive(Debug)]
struct Block {
    heading: String,
    sections: BTreeMap<String, Vec<Vec<String>>>,
}

impl Block {
    fn only(&self) -> &[Vec<String>] {
        assert_eq!(self.sections.len(), 1, "{self:?}");
        self.sections.values().next().unwrap()
    }

    /// The rows of the section, without the header row, after checking that it has
    /// `header`'s columns.
    fn rows(&self, section: &str, header: &[&str]) -> Vec<Vec<String>> {
        let lines = self
            .sections
            .get(section)
            .unwrap_or_else(|| panic!("no section {section:?}: {self:?}"));
        assert_eq!(lines[0], header, "{self:?}");
        lines[1..].to_vec()
    }

    /// The network namespace named in the heading: `net:[INODE]`.
    fn net(&self) -> u64 {
        let (_, rest) = self
            .heading
            .split_once("net:[")
            .expect("net:[ in the heading");
        rest.split(']').next().unwrap().parse().unwrap()
    }
}

/// Parses a query table strictly: a heading for each namespace, then rows; no trailing
/// spaces, no JSON.
fn parse_blocks(run: &Run) -> Vec<Block> {
    let text = std::str::from_utf8(&run.stdout).expect("UTF-8 table");
    assert!(
        serde_json::from_str::<Value>(text).is_err() && !text.starts_with('{'),
        "JSON on stdout: {text}"
    );
    let mut blocks: Vec<Block> = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        assert_eq!(line, line.trim_end(), "trailing spaces: {line:?}");
        if line.starts_with("== ") && line.ends_with(" ==") {
            blocks.push(Block {
                heading: line.to_owned(),
                sections: BTreeMap::new(),
            });
            section.clear();
        } else if line.is_empty() {
            continue;
        } else if line.ends_with(':') && !line.contains(' ') {
            section = line.trim_end_matches(':').to_owned();
        } else {
            let block = blocks.last_mut().expect("a heading before the first row");
            block
                .sections
                .entry(section.clone())
                .or_default()
                .push(line.split_whitespace().map(str::to_owned).collect());
        }
    }
    blocks
}

const LINKS: [&str; 9] = [
    "IFNAME",
    "STATE",
    "MAC",
    "FLAGS",
    "MTU",
    "KIND",
    "MASTER",
    "PEER",
    "PEER-NETNS",
];
const ADDRESSES: [&str; 3] = ["IFNAME", "STATE", "ADDRESSES"];
const ROUTES: [&str; 9] = [
    "DST", "TYPE", "GATEWAY", "DEV", "TABLE", "PROTO", "SCOPE", "PREFSRC", "METRIC",
];
const NEIGHBORS: [&str; 4] = ["DST", "DEV", "LLADDR", "STATE"];

/// `ip -br link` as (name, state, mac, flags); ip leaves the MAC out where there is none.
fn ip_br_link(text: &str) -> Vec<[String; 4]> {
    text.lines()
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let (mac, flags) = if cells[2].starts_with('<') {
                ("-", cells[2])
            } else {
                (cells[2], cells[3])
            };
            [cells[0], cells[1], mac, flags].map(str::to_owned)
        })
        .collect()
}

/// `ip -br addr` as (name, state, addresses).
fn ip_br_addr(text: &str) -> Vec<[String; 3]> {
    text.lines()
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            [
                cells[0].to_owned(),
                cells[1].to_owned(),
                cells[2..].join(" "),
            ]
        })
        .collect()
}

/// Our address rows as (name, state, addresses).
fn our_addr(rows: &[Vec<String>]) -> Vec<[String; 3]> {
    rows.iter()
        .map(|row| [row[0].clone(), row[1].clone(), row[2..].join(" ")])
        .collect()
}

/// `ip -j route show table all` as rows of our routes table, with ip's defaults for what it
/// leaves out.
fn ip_route_rows(routes: &Value) -> Vec<Vec<String>> {
    let text = |route: &Value, key: &str, default: &str| -> String {
        match &route[key] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => default.to_owned(),
        }
    };
    routes
        .as_array()
        .unwrap()
        .iter()
        .map(|route| {
            let (gateway, dev) = match route["nexthops"].as_array() {
                Some(hops) => (
                    hops.iter()
                        .map(|h| text(h, "gateway", "-"))
                        .collect::<Vec<_>>()
                        .join(","),
                    hops.iter()
                        .map(|h| text(h, "dev", "-"))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                None => (text(route, "gateway", "-"), text(route, "dev", "-")),
            };
            vec![
                text(route, "dst", "-"),
                text(route, "type", "unicast"),
                gateway,
                dev,
                text(route, "table", "main"),
                text(route, "protocol", "boot"),
                text(route, "scope", "global"),
                text(route, "prefsrc", "-"),
                text(route, "metric", "-"),
            ]
        })
        .collect()
}

fn sorted<T: Ord + Clone>(rows: &[T]) -> Vec<T> {
    let mut rows = rows.to_vec();
    rows.sort();
    rows
}

fn column(rows: &[Vec<String>], at: usize) -> Vec<String> {
    rows.iter().map(|row| row[at].clone()).collect()
}

#[test]
fn every_query_as_a_table_matches_ip_in_the_same_namespace() {
    if !require_root("every_query_as_a_table_matches_ip_in_the_same_namespace") {
        return;
    }
    let world = World::run(
        "table-query",
        r#"
        P=$(start_container)
        echo "$P" >"$OUT/pid"
        ip link add name vh0 type veth peer name eth0 netns "$P"
        ip link set vh0 up
        ip addr add 10.0.3.1/24 dev vh0
        c() { nsenter -t "$P" -n "$@"; }
        c ip link set lo up
        c ip link set eth0 up
        c ip addr add 10.0.3.7/24 dev eth0
        c ip addr add 10.1.0.1 peer 10.1.0.2/32 dev eth0
        c ip addr add fd00::7/64 dev eth0 nodad
        c ip link add name br0 type bridge
        c ip link add name c1 type veth peer name c2
        c ip link set c1 master br0
        c ip link set br0 up
        c ip link set c1 up
        c ip link add name mv0 link c2 type macvlan mode bridge
        c ip route add default via 10.0.3.1
        c ip route add 10.9.0.0/16 via 10.0.3.1 metric 50 table 100
        c ip route add unreachable 10.66.0.0/16
        c ip route add 10.99.0.0/16 nexthop via 10.0.3.1 dev eth0 weight 1 nexthop via 10.0.3.2 dev eth0 weight 3
        c ip -6 route add fd09::/64 via fd00::1 table 100
        c ip neigh add 10.0.3.9 lladdr 02:00:00:00:00:09 dev eth0 nud permanent
        oracle() {
          save ip-link c ip -br link
          save ip-addr c ip -br addr
          save ip-route4.json c ip -4 -j route show table all
          save ip-route6.json c ip -6 -j route show table all
          save ip-neigh.json c ip -j neigh show nud all
          cat "$OUT"/ip-link "$OUT"/ip-addr "$OUT"/ip-route*.json "$OUT"/ip-neigh.json
        }
        # Links come up and IPv6 adds addresses and neighbours for a while: take a moment
        # when nothing moved.
        settled=""
        for _ in $(seq 50); do
          oracle >"$OUT/before"
          for what in links veths addrs routes neighbors all; do
            run_nshelper "$what" query "$what" -o table --pid "$P"
          done
          oracle >"$OUT/after"
          if cmp -s "$OUT/before" "$OUT/after"; then settled=1; break; fi
          sleep 0.2
        done
        [ -n "$settled" ] || { echo "the container never settled" >&2; exit 1; }
        save container-net readlink "/proc/$P/ns/net"
        save own-net readlink /proc/self/ns/net
        "#,
    );
    let pid: u32 = world.read("pid").trim().parse().unwrap();
    let container = world.inode("container-net");
    let own = world.inode("own-net");
    let mut parsed = BTreeMap::new();
    for what in ["links", "veths", "addrs", "routes", "neighbors", "all"] {
        let run = world.nshelper_run(what);
        assert_eq!(run.status, 0, "{what}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{what}: {}", run.stderr);
        let mut blocks = parse_blocks(&run);
        assert_eq!(blocks.len(), 1, "{what}: {blocks:?}");
        let block = blocks.remove(0);
        assert!(
            block
                .heading
                .starts_with(&format!("== pid {pid} (net:[{container}] mnt:[")),
            "{what}: {}",
            block.heading
        );
        assert_eq!(block.net(), container);
        parsed.insert(what, block);
    }

    // Links: the name (with @ and its lower link), state, MAC and flags of `ip -br link`.
    let links = parsed["links"].rows("", &LINKS);
    let ours: Vec<[String; 4]> = links
        .iter()
        .map(|row| [0, 1, 2, 3].map(|at| row[at].clone()))
        .collect();
    assert_eq!(sorted(&ours), sorted(&ip_br_link(&world.read("ip-link"))));
    let row = |rows: &[Vec<String>], name: &str| -> Vec<String> {
        rows.iter()
            .find(|row| row[0] == name || row[0].starts_with(&format!("{name}@")))
            .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
            .clone()
    };
    assert!(row(&links, "eth0")[0].starts_with("eth0@if"));
    assert_eq!(row(&links, "mv0")[0], "mv0@c2");
    assert_eq!(row(&links, "c1")[6], "br0", "master by name");
    assert_eq!(row(&links, "br0")[5], "bridge");
    assert_eq!(&row(&links, "eth0")[7..], ["vh0", &own.to_string()]);

    // Veths: exactly the links of kind veth, each with its peer. A master that is no veth
    // is not among them, so it is named by index, as ip names a link it does not know.
    let veths = parsed["veths"].rows("", &LINKS);
    let without_master = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|row| [&row[..6], &row[7..]].concat())
            .collect()
    };
    let veth_rows: Vec<Vec<String>> = links.iter().filter(|r| r[5] == "veth").cloned().collect();
    assert_eq!(
        sorted(&without_master(&veths)),
        sorted(&without_master(&veth_rows))
    );
    assert!(row(&veths, "c1")[6].starts_with("if"), "{veths:?}");
    assert_eq!(
        sorted(&column(&veths, 7)),
        ["c1", "c2", "vh0"],
        "every peer named"
    );
    assert_eq!(&row(&veths, "c1")[7..], ["c2", &container.to_string()]);

    // Addresses: every link with its state and addresses, as `ip -br addr`.
    let addrs = parsed["addrs"].rows("", &ADDRESSES);
    assert_eq!(
        sorted(&our_addr(&addrs)),
        sorted(&ip_br_addr(&world.read("ip-addr")))
    );
    let eth0 = our_addr(&addrs)
        .into_iter()
        .find(|r| r[0].starts_with("eth0@"))
        .unwrap();
    assert!(
        eth0[2].starts_with("10.0.3.7/24 10.1.0.1 peer 10.1.0.2/32 fd00::7/64"),
        "{eth0:?}"
    );

    // Routes of every table and family, in ip's words.
    let routes = parsed["routes"].rows("", &ROUTES);
    let mut theirs = ip_route_rows(&world.ip_json("ip-route4.json"));
    theirs.extend(ip_route_rows(&world.ip_json("ip-route6.json")));
    assert_eq!(sorted(&routes), sorted(&theirs));
    assert!(routes.contains(
        &["default", "unicast", "10.0.3.1", "eth0", "main", "boot", "global", "-", "-"]
            .map(str::to_owned)
            .to_vec()
    ));
    assert!(column(&routes, 2).contains(&"10.0.3.1,10.0.3.2".to_owned()));

    // Neighbours, as `ip neigh show nud all`.
    let neighbors = parsed["neighbors"].rows("", &NEIGHBORS);
    let theirs: Vec<Vec<String>> = world
        .ip_json("ip-neigh.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let states: Vec<&str> = n["state"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            vec![
                n["dst"].as_str().unwrap().to_owned(),
                n["dev"].as_str().unwrap().to_owned(),
                n["lladdr"].as_str().unwrap_or("-").to_owned(),
                states.join(","),
            ]
        })
        .collect();
    assert_eq!(sorted(&neighbors), sorted(&theirs));
    assert!(neighbors.contains(
        &["10.0.3.9", "eth0", "02:00:00:00:00:09", "PERMANENT"]
            .map(str::to_owned)
            .to_vec()
    ));

    // all: the four tables, each under its title, equal to those of the single queries.
    let all = &parsed["all"];
    assert_eq!(
        all.sections.keys().collect::<Vec<_>>(),
        ["addresses", "links", "neighbors", "routes"]
    );
    for (section, single, header) in [
        ("links", "links", &LINKS[..]),
        ("addresses", "addrs", &ADDRESSES[..]),
        ("routes", "routes", &ROUTES[..]),
        ("neighbors", "neighbors", &NEIGHBORS[..]),
    ] {
        assert_eq!(
            all.rows(section, header),
            parsed[single].rows("", header),
            "{section}"
        );
    }
    assert_eq!(parsed["links"].only().len(), links.len() + 1);
}

#[test]
fn list_whois_and_every_namespace_as_tables_match_the_json_and_lsns() {
    if !require_root("list_whois_and_every_namespace_as_tables_match_the_json_and_lsns") {
        return;
    }
    let world = World::run(
        "table-host",
        r#"
        P=$(start_container)
        echo "$P" >"$OUT/pid"
        ip link add name vh0 type veth peer name eth0 netns "$P"
        ip netns add red
        ip -n red link add name r1 type veth peer name r2
        ip -n red addr add 192.0.2.1/24 dev r1
        ip netns add blue
        run_nshelper list-table list -o table
        run_nshelper list-json list
        save lsns lsns -n -t net -o NS,NPROCS,PID
        run_nshelper whois-table whois vh0 -o table
        run_nshelper whois-json whois vh0
        run_nshelper whois-none whois no-such-interface -o table
        run_nshelper all-table query links --all -o table
        run_nshelper all-json query links --all
        run_nshelper red query addrs -o table --netns red
        save red-ip-addr ip -n red -br addr
        run_nshelper failing query links -o table --netns red --pid 2147483000 --netns nosuch
        run_nshelper failing-json query links --netns red --pid 2147483000 --netns nosuch
        run_nshelper pretty query -o table --pretty
        save container-net readlink "/proc/$P/ns/net"
        save own-net readlink /proc/self/ns/net
        save red-net stat -L -c %i /run/netns/red
        "#,
    );
    let pid: u64 = world.read("pid").trim().parse().unwrap();
    let container = world.inode("container-net");
    let own = world.inode("own-net");

    // list: a row per namespace, as the JSON lists them.
    let list = world.nshelper_run("list-table");
    assert_eq!(list.status, 0, "{}", list.stderr);
    let text = String::from_utf8(list.stdout.clone()).unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NETNS", "NSID", "NPROCS", "PID", "NAMES", "PATHS", "COMMAND"]
    );
    // Six one-word cells, then the command, which may hold spaces, from where its column
    // starts.
    let command_at = lines[0].find("COMMAND").unwrap();
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|line| {
            assert_eq!(*line, line.trim_end());
            let mut cells: Vec<&str> = line[..command_at].split_whitespace().collect();
            cells.push(&line[command_at..]);
            cells
        })
        .collect();
    let json = world.nshelper_run("list-json").document();
    let listed = json["namespaces"].as_array().unwrap();
    assert_eq!(rows.len(), listed.len());
    for (row, netns) in rows.iter().zip(listed) {
        let joined = |key: &str| -> String {
            let items: Vec<String> = netns[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            if items.is_empty() {
                "-".to_owned()
            } else {
                items.join(",")
            }
        };
        let pids = netns["pids"].as_array().unwrap();
        let lowest = pids.iter().filter_map(Value::as_u64).min();
        let command = lowest.map_or_else(
            || row[6].to_owned(),
            |lowest| {
                netns["processes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["pid"] == lowest)
                    .unwrap()["command"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .flat_map(|c| {
                        // Escaped for the terminal, as the table escapes them.
                        let escaped: String = if c.is_control() {
                            c.escape_default().collect()
                        } else {
                            c.to_string()
                        };
                        escaped.chars().collect::<Vec<_>>()
                    })
                    .collect::<String>()
                    // No line ends in spaces.
                    .trim_end()
                    .to_owned()
            },
        );
        let expected = vec![
            netns["netns"].to_string(),
            netns["nsid"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            pids.len().to_string(),
            lowest.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            joined("names"),
            joined("paths"),
            command,
        ];
        assert_eq!(row, &expected, "{netns}");
    }
    // And as lsns counts them, for the namespaces it sees.
    for line in world.read("lsns").lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let row = rows
            .iter()
            .find(|row| row[0] == cells[0])
            .unwrap_or_else(|| panic!("lsns lists {}, the table does not", cells[0]));
        assert_eq!(&row[2..4], &cells[1..3], "{line}");
    }
    let names: Vec<&str> = rows.iter().map(|row| row[4]).collect();
    assert!(
        names.contains(&"red") && names.contains(&"blue"),
        "{names:?}"
    );

    // whois: the host veth, its namespace, and the container at the other end.
    let whois = world.nshelper_run("whois-table");
    assert_eq!(whois.status, 0, "{}", whois.stderr);
    let text = String::from_utf8(whois.stdout.clone()).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "IFNAME",
            "MAC",
            "NETNS",
            "NAMES",
            "PIDS",
            "PEER",
            "PEER-NETNS",
            "PEER-NAMES",
            "PEER-PIDS"
        ]
    );
    assert_eq!(rows.len(), 2, "{text}");
    let found = &world.nshelper_run("whois-json").document()["matches"][0];
    assert_eq!(rows[1][0], "vh0");
    assert_eq!(rows[1][1], found["link"]["address"].as_str().unwrap());
    assert_eq!(rows[1][2], own.to_string());
    assert_eq!(rows[1][5], "eth0");
    assert_eq!(rows[1][6], container.to_string());
    assert!(
        rows[1][8].split(',').any(|p| p == pid.to_string()),
        "{text}"
    );
    let none = world.nshelper_run("whois-none");
    assert_eq!(none.status, 1);
    assert!(none.stdout.is_empty(), "{:?}", none.stdout);
    assert_eq!(none.stderr.lines().count(), 1, "{}", none.stderr);

    // --all: a block per namespace, in the order of the JSON, each with the same links.
    let all = world.nshelper_run("all-table");
    assert_eq!(all.status, 0, "{}", all.stderr);
    let blocks = parse_blocks(&all);
    let json = world.nshelper_run("all-json").only_result_set();
    let results = json["results"].as_array().unwrap();
    assert_eq!(blocks.len(), results.len());
    for (block, result) in blocks.iter().zip(results) {
        assert_eq!(block.net(), result["namespaces"]["net"].as_u64().unwrap());
        let names: Vec<String> = block
            .rows("", &LINKS)
            .iter()
            .map(|row| row[0].split('@').next().unwrap().to_owned())
            .collect();
        let theirs: Vec<String> = result["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, theirs, "{}", block.heading);
    }
    assert!(blocks
        .iter()
        .any(|b| b.heading == format!("== netns red (net:[{}]) ==", world.inode("red-net"))));
    // The container's namespace holds unshare and its child: named by their pids.
    let holder = blocks.iter().find(|b| b.net() == container).unwrap();
    let (_, pids) = holder
        .heading
        .split_once("== netns of pids ")
        .unwrap_or_else(|| panic!("{}", holder.heading));
    assert!(
        pids.split([',', ' ']).any(|p| p == pid.to_string()),
        "{}",
        holder.heading
    );

    // A named namespace's addresses, down links included, as `ip -n red -br addr`.
    let red = world.nshelper_run("red");
    assert_eq!(red.status, 0, "{}", red.stderr);
    let block = &parse_blocks(&red)[0];
    assert_eq!(
        block.heading,
        format!("== netns red (net:[{}]) ==", world.inode("red-net"))
    );
    assert_eq!(
        sorted(&our_addr(&block.rows("", &ADDRESSES))),
        sorted(&ip_br_addr(&world.read("red-ip-addr")))
    );

    // Failing targets: the others still print, each failure is one line on stderr, as with
    // JSON, and the status is 1.
    let failing = world.nshelper_run("failing");
    assert_eq!(failing.status, 1, "{}", failing.stderr);
    let blocks = parse_blocks(&failing);
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert!(blocks[0].heading.starts_with("== netns red "));
    let failing_json = world.nshelper_run("failing-json");
    assert_eq!(failing.stderr, failing_json.stderr);
    let lines: Vec<&str> = failing.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", failing.stderr);
    assert!(lines[0].starts_with("nshelper: pid 2147483000: not_found: "));
    assert!(lines[1].starts_with("nshelper: netns nosuch: not_found: "));

    // --pretty indents JSON; with a table it is a usage error.
    let pretty = world.nshelper_run("pretty");
    assert_eq!(pretty.status, 2, "{}", pretty.stderr);
    assert!(pretty.stdout.is_empty());
    assert_eq!(pretty.stderr.lines().count(), 1, "{}", pretty.stderr);
    assert!(pretty.stderr.contains("--pretty"), "{}", pretty.stderr);
}
