//! `-o table`: what query, list and whois found, as aligned columns for people, the way
//! `ip -br` and `lsns` print them. JSON stays the contract for programs; here every cell but
//! a row's last is still one word, so that `awk` can pick columns out.
//!
//! Everything shown may come from inside a target (interface names, commands, namespace
//! names), so every cell is made safe for a terminal first.

use std::fmt::Write as _;

use nshelper_model::{
    Address, Link, ListedNetns, Neighbor, Route, Target, TargetResult, WhoisMatch,
};

use crate::cli::QueryKind;

/// The tables of `nshelper query WHAT`: a header line naming each namespace, then its
/// links, addresses, routes or neighbours; `all` gives each its own titled section.
pub fn query(results: &[TargetResult], what: QueryKind) -> String {
    let mut out = String::new();
    for (at, result) in results.iter().enumerate() {
        if at > 0 {
            out.push('\n');
        }
        out.push_str(&heading(result));
        out.push('\n');
        let contents = &result.contents;
        let links = contents.links.as_deref().unwrap_or_default();
        let addrs = contents.addrs.as_deref().unwrap_or_default();
        let routes = contents.routes.as_deref().unwrap_or_default();
        let neighbors = contents.neighbors.as_deref().unwrap_or_default();
        match what {
            QueryKind::Links | QueryKind::Veths => links_table(links).render(&mut out),
            QueryKind::Addrs => addrs_table(links, addrs).render(&mut out),
            QueryKind::Routes => routes_table(routes).render(&mut out),
            QueryKind::Neighbors => neighbors_table(neighbors).render(&mut out),
            QueryKind::All => {
                let sections = [
                    ("links", links_table(links)),
                    ("addresses", addrs_table(links, addrs)),
                    ("routes", routes_table(routes)),
                    ("neighbors", neighbors_table(neighbors)),
                ];
                for (number, (title, table)) in sections.into_iter().enumerate() {
                    if number > 0 {
                        out.push('\n');
                    }
                    let _ = writeln!(out, "{title}:");
                    table.render(&mut out);
                }
            }
        }
    }
    out
}

/// `nshelper list`: one row per network namespace, with the columns of `lsns -t net` that
/// apply, and its names and nsfs paths.
pub fn list(namespaces: &[ListedNetns]) -> String {
    // Nothing found is said on stderr, as every failure is.
    if namespaces.is_empty() {
        return String::new();
    }
    let mut table = Table::new(
        "network namespaces",
        &[
            "NETNS", "NSID", "NPROCS", "PID", "NAMES", "PATHS", "COMMAND",
        ],
    );
    for netns in namespaces {
        // As lsns: the lowest pid stands for the namespace.
        let pid = netns.pids.iter().min();
        let command = match pid {
            Some(pid) => netns
                .processes
                .iter()
                .find(|process| process.pid == *pid)
                .map_or_else(|| "-".to_owned(), |process| words(&process.command)),
            None => holder(&netns.threads, netns.fds.first().map(|f| (f.pid, f.fd))),
        };
        table.push(vec![
            netns.netns.to_string(),
            optional(netns.nsid),
            netns.pids.len().to_string(),
            optional(pid),
            word_list(&netns.names),
            word_list(&netns.paths),
            command,
        ]);
    }
    let mut out = String::new();
    table.render(&mut out);
    out
}

/// `nshelper whois`: one row per match, with the namespace that holds it and, for a veth,
/// the other end.
pub fn whois(matches: &[WhoisMatch]) -> String {
    // "No match" is said on stderr.
    if matches.is_empty() {
        return String::new();
    }
    let mut table = Table::new(
        "matches",
        &[
            "IFNAME",
            "MAC",
            "NETNS",
            "NAMES",
            "PIDS",
            "PEER",
            "PEER-NETNS",
            "PEER-NAMES",
            "PEER-PIDS",
        ],
    );
    for found in matches {
        let (peer, peer_netns, peer_names, peer_pids) = match &found.peer {
            Some(peer) => (
                peer.ifname
                    .as_deref()
                    .map_or_else(|| format!("if{}", peer.ifindex), word),
                peer.netns.to_string(),
                word_list(&peer.names),
                pids_summary(&peer.pids),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        table.push(vec![
            word(&found.link.ifname),
            optional_word(found.link.address.as_deref()),
            found.netns.to_string(),
            word_list(&found.names),
            pids_summary(&found.pids),
            peer,
            peer_netns,
            peer_names,
            peer_pids,
        ]);
    }
    let mut out = String::new();
    table.render(&mut out);
    out
}

/// `== pid 4242 (net:[4026532290] mnt:[4026532287] pid:[4026532288]) ==`: the target as the
/// command line named it, and the namespaces it was read in, the network namespace first.
fn heading(result: &TargetResult) -> String {
    let mut namespaces = Vec::new();
    if let Some(net) = result.namespaces.get("net") {
        namespaces.push(format!("net:[{net}]"));
    }
    // Only a process's other namespaces are joined; elsewhere they are nshelper's own.
    if matches!(result.target, Target::Pid { .. }) {
        for (kind, inode) in &result.namespaces {
            if kind != "net" {
                namespaces.push(format!("{}:[{inode}]", word(kind)));
            }
        }
    }
    format!(
        "== {} ({}) ==",
        target_label(&result.target),
        namespaces.join(" ")
    )
}

fn target_label(target: &Target) -> String {
    match target {
        Target::Pid { pid } => format!("pid {pid}"),
        Target::Netns {
            name: Some(name), ..
        } => format!("netns {}", word(name)),
        Target::Netns { path, .. } => format!("netns {}", word(path)),
        Target::OwnNamespaces => "own namespaces".to_owned(),
        Target::Discovered(identity) => {
            if !identity.names.is_empty() {
                format!("netns {}", word_list(&identity.names))
            } else if !identity.paths.is_empty() {
                format!("netns {}", word_list(&identity.paths))
            } else if identity.pids.len() == 1 {
                format!("netns of pid {}", identity.pids[0])
            } else if !identity.pids.is_empty() {
                format!("netns of pids {}", pids_summary(&identity.pids))
            } else {
                format!(
                    "netns {}",
                    holder(
                        &identity.threads,
                        identity.fds.first().map(|f| (f.pid, f.fd))
                    )
                )
            }
        }
    }
}

/// What holds a namespace no process is in: a thread alone in it, or a descriptor.
fn holder(threads: &[u32], fd: Option<(u32, u32)>) -> String {
    match (threads.first(), fd) {
        (Some(tid), _) => format!("(thread {tid})"),
        (None, Some((pid, fd))) => format!("(fd {fd} of pid {pid})"),
        (None, None) => "-".to_owned(),
    }
}

/// As `ip -br link`, and the rest of what a person looks for: kind, mtu, master, the peer of
/// a veth, and the counters with `--stats`.
fn links_table(links: &[Link]) -> Table {
    let stats = links.iter().any(|link| link.stats64.is_some());
    let mut header = vec![
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
    if stats {
        header.extend(["RX-BYTES", "RX-PACKETS", "TX-BYTES", "TX-PACKETS"]);
    }
    let mut table = Table::new("links", &header);
    for link in links {
        let (peer, peer_netns) = match &link.peer {
            Some(peer) => (
                peer.ifname
                    .as_deref()
                    .map_or_else(|| format!("if{}", peer.ifindex), word),
                optional(peer.netns),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let mut row = vec![
            brief_name(link, links),
            optional_word(link.operstate.as_deref()),
            optional_word(link.address.as_deref()),
            format!(
                "<{}>",
                link.flags
                    .iter()
                    .map(|f| word(f))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            optional(link.mtu),
            optional_word(link.kind.as_deref()),
            link.master
                .map_or_else(|| "-".to_owned(), |master| name_of(master, links)),
            peer,
            peer_netns,
        ];
        if stats {
            let counters = link.stats64.clone().unwrap_or_default();
            row.extend([
                counters.rx.bytes.to_string(),
                counters.rx.packets.to_string(),
                counters.tx.bytes.to_string(),
                counters.tx.packets.to_string(),
            ]);
        }
        table.push(row);
    }
    table
}

/// As `ip -br addr`: every link with its state and its addresses, those of links that went
/// away meanwhile after them.
fn addrs_table(links: &[Link], addrs: &[Address]) -> Table {
    let mut table = Table::new("addresses", &["IFNAME", "STATE", "ADDRESSES"]);
    for link in links {
        let own: Vec<String> = addrs
            .iter()
            .filter(|a| a.ifindex == link.ifindex)
            .map(brief_address)
            .collect();
        table.push(vec![
            brief_name(link, links),
            optional_word(link.operstate.as_deref()),
            own.join(" "),
        ]);
    }
    let mut orphans: Vec<u32> = Vec::new();
    for address in addrs {
        if !links.iter().any(|l| l.ifindex == address.ifindex)
            && !orphans.contains(&address.ifindex)
        {
            orphans.push(address.ifindex);
        }
    }
    for ifindex in orphans {
        let own: Vec<&Address> = addrs.iter().filter(|a| a.ifindex == ifindex).collect();
        let name = own[0]
            .ifname
            .as_deref()
            .map_or_else(|| format!("if{ifindex}"), word);
        let text: Vec<String> = own.into_iter().map(brief_address).collect();
        table.push(vec![name, "-".to_owned(), text.join(" ")]);
    }
    table
}

/// `10.0.0.1/24`, or `10.0.0.1 peer 10.0.0.2/32` for a point-to-point address, as
/// `ip -br addr` prints them.
fn brief_address(address: &Address) -> String {
    match &address.address {
        Some(peer) => format!(
            "{} peer {}/{}",
            word(&address.local),
            word(peer),
            address.prefixlen
        ),
        None => format!("{}/{}", word(&address.local), address.prefixlen),
    }
}

/// Every route of every table, in the words of `ip route`: `default`, and host routes
/// without their prefix length.
fn routes_table(routes: &[Route]) -> Table {
    let mut table = Table::new(
        "routes",
        &[
            "DST", "TYPE", "GATEWAY", "DEV", "TABLE", "PROTO", "SCOPE", "PREFSRC", "METRIC",
        ],
    );
    for route in routes {
        let (gateway, dev) = match &route.nexthops {
            Some(hops) => (
                hops.iter()
                    .map(|hop| optional_word(hop.gateway.as_deref()))
                    .collect::<Vec<_>>()
                    .join(","),
                hops.iter()
                    .map(|hop| optional_word(hop.dev.as_deref()))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            None => (
                optional_word(route.gateway.as_deref()),
                optional_word(route.dev.as_deref()),
            ),
        };
        table.push(vec![
            route_destination(route),
            word(&route.route_type),
            gateway,
            dev,
            table_name(route.table),
            word(&route.protocol),
            word(&route.scope),
            optional_word(route.prefsrc.as_deref()),
            optional(route.metric),
        ]);
    }
    table
}

fn route_destination(route: &Route) -> String {
    let host = if route.family == "inet6" {
        "/128"
    } else {
        "/32"
    };
    if route.dst.ends_with("/0") {
        "default".to_owned()
    } else {
        word(route.dst.strip_suffix(host).unwrap_or(&route.dst))
    }
}

/// The names iproute2 gives the reserved tables (`/etc/iproute2/rt_tables`).
fn table_name(table: u32) -> String {
    match table {
        253 => "default".to_owned(),
        254 => "main".to_owned(),
        255 => "local".to_owned(),
        other => other.to_string(),
    }
}

/// As `ip neigh show nud all`.
fn neighbors_table(neighbors: &[Neighbor]) -> Table {
    let mut table = Table::new("neighbors", &["DST", "DEV", "LLADDR", "STATE"]);
    for neighbor in neighbors {
        table.push(vec![
            word(&neighbor.dst),
            optional_word(neighbor.dev.as_deref()),
            optional_word(neighbor.lladdr.as_deref()),
            neighbor
                .state
                .iter()
                .map(|s| word(s))
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    table
}

/// The interface name as `ip -br` shows it: with `@` and the link it sits on, named when it
/// is in the same namespace (`c1@c2`), its ifindex when elsewhere (`eth0@if5`), `@NONE` for
/// a tunnel bound to no device.
fn brief_name(link: &Link, links: &[Link]) -> String {
    let name = word(&link.ifname);
    match (link.link_index, link.link_netnsid) {
        (None, _) => name,
        (Some(0), _) => format!("{name}@NONE"),
        (Some(index), Some(_)) => format!("{name}@if{index}"),
        (Some(index), None) => format!("{name}@{}", name_of(index, links)),
    }
}

/// The name of link `ifindex`, or `if` and its number, as `ip` says when it does not know it.
fn name_of(ifindex: u32, links: &[Link]) -> String {
    links
        .iter()
        .find(|l| l.ifindex == ifindex)
        .map_or_else(|| format!("if{ifindex}"), |l| word(&l.ifname))
}

/// Up to four pids, or three and how many more: `1,2,3,+54`.
fn pids_summary(pids: &[u32]) -> String {
    let shown: Vec<String> = pids.iter().map(u32::to_string).collect();
    match shown.len() {
        0 => "-".to_owned(),
        1..=4 => shown.join(","),
        n => format!("{},+{}", shown[..3].join(","), n - 3),
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn optional_word(text: Option<&str>) -> String {
    text.map_or_else(|| "-".to_owned(), word)
}

fn word_list(texts: &[String]) -> String {
    if texts.is_empty() {
        return "-".to_owned();
    }
    texts.iter().map(|t| word(t)).collect::<Vec<_>>().join(",")
}

/// A cell that must stay one word: whitespace is escaped as well as what [`words`]
/// escapes, and an empty text is `-`.
fn word(text: &str) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    escaped(text, true)
}

/// The last cell of a row (a command line), which may hold spaces.
fn words(text: &str) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    escaped(text, false)
}

/// Text safe for a terminal: control characters (escape sequences included) escaped as Rust
/// escapes them (`\u{1b}`), as are the invisible characters that reorder or hide text
/// (bidirectional overrides, zero-width characters), and backslashes, so that an escape in
/// a cell is never confused with the same characters in a name.
fn escaped(text: &str, whitespace: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() {
            out.extend(c.escape_default());
        } else if is_invisible(c) || (c.is_whitespace() && (whitespace || c != ' ')) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Rows of cells under a header, each column as wide as its widest cell, two spaces apart;
/// the last column is not padded, so no line ends in spaces.
struct Table {
    /// What the rows are, for the line printed in place of an empty table.
    rows_are: &'static str,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(rows_are: &'static str, header: &[&str]) -> Table {
        Table {
            rows_are,
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    fn render(&self, out: &mut String) {
        if self.rows.is_empty() {
            let _ = writeln!(out, "(no {})", self.rows_are);
            return;
        }
        let mut widths: Vec<usize> = vec![0; self.header.len()];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (at, (cell, width)) in line.iter().zip(&widths).enumerate() {
                if at > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                if at + 1 < line.len() {
                    let padding = width - cell.chars().count();
                    text.extend(std::iter::repeat_n(' ', padding));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nshelper_model::{
        FdHolder, LinkStats, NetnsContents, NetnsIdentity, Nexthop, Peer, ProcessSummary, WhoisPeer,
    };

    use super::*;

    fn link(ifindex: u32, ifname: &str) -> Link {
        Link {
            ifindex,
            ifname: ifname.into(),
            ifname_hex: None,
            kind: None,
            flags: vec!["BROADCAST".into(), "MULTICAST".into(), "UP".into()],
            mtu: Some(1500),
            operstate: Some("UP".into()),
            address: Some("02:00:00:00:00:01".into()),
            master: None,
            link_index: None,
            link_netnsid: None,
            link: None,
            alias: None,
            alias_hex: None,
            altnames: Vec::new(),
            altnames_hex: None,
            txqlen: Some(1000),
            broadcast: None,
            link_type: "ether".into(),
            stats64: None,
            peer: None,
        }
    }

    fn address(ifindex: u32, local: &str, prefixlen: u8) -> Address {
        Address {
            ifindex,
            ifname: None,
            family: if local.contains(':') { "inet6" } else { "inet" }.into(),
            local: local.into(),
            prefixlen,
            scope: "global".into(),
            broadcast: None,
            label: None,
            address: None,
        }
    }

    fn route(dst: &str) -> Route {
        Route {
            family: if dst.contains(':') { "inet6" } else { "inet" }.into(),
            dst: dst.into(),
            table: 254,
            route_type: "unicast".into(),
            protocol: "kernel".into(),
            scope: "link".into(),
            gateway: None,
            dev: Some("eth0".into()),
            oif: Some(2),
            metric: None,
            prefsrc: None,
            nexthops: None,
        }
    }

    fn result(target: Target, contents: NetnsContents) -> TargetResult {
        let namespaces: BTreeMap<String, u64> = [("mnt", 11), ("net", 10), ("pid", 12)]
            .into_iter()
            .map(|(kind, inode)| (kind.to_owned(), inode))
            .collect();
        TargetResult {
            target,
            namespaces,
            contents,
        }
    }

    /// The cells of each line, split on runs of spaces.
    fn cells(text: &str) -> Vec<Vec<&str>> {
        text.lines()
            .map(|line| line.split_whitespace().collect())
            .collect()
    }

    fn assert_tidy(text: &str) {
        assert!(text.ends_with('\n'), "{text:?}");
        for line in text.lines() {
            assert_eq!(line, line.trim_end(), "trailing spaces: {text}");
        }
    }

    #[test]
    fn links_are_aligned_columns_under_a_heading_naming_the_target() {
        let mut lo = link(1, "lo");
        lo.flags = vec!["LOOPBACK".into(), "UP".into(), "LOWER_UP".into()];
        lo.operstate = Some("UNKNOWN".into());
        lo.address = Some("00:00:00:00:00:00".into());
        lo.mtu = Some(65536);
        let mut eth0 = link(2, "eth0");
        eth0.kind = Some("veth".into());
        eth0.link_index = Some(5);
        eth0.link_netnsid = Some(0);
        eth0.peer = Some(Peer {
            ifindex: 5,
            netns: Some(4026531840),
            ifname: Some("vh0".into()),
            ifname_hex: None,
        });
        let mut br0 = link(3, "br0");
        br0.kind = Some("bridge".into());
        let mut c1 = link(4, "c1");
        c1.kind = Some("veth".into());
        c1.master = Some(3);
        c1.link_index = Some(6);
        c1.link = Some(6);
        c1.peer = Some(Peer {
            ifindex: 6,
            netns: None,
            ifname: None,
            ifname_hex: None,
        });
        let mut tunl0 = link(7, "tunl0");
        tunl0.link_index = Some(0);
        tunl0.address = None;
        tunl0.operstate = None;
        let contents = NetnsContents {
            links: Some(vec![lo, eth0, br0, c1, tunl0]),
            ..NetnsContents::default()
        };
        let text = query(
            &[result(Target::Pid { pid: 4242 }, contents)],
            QueryKind::Links,
        );
        assert_tidy(&text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "== pid 4242 (net:[10] mnt:[11] pid:[12]) ==");
        let rows = cells(&text);
        assert_eq!(
            rows[1],
            [
                "IFNAME",
                "STATE",
                "MAC",
                "FLAGS",
                "MTU",
                "KIND",
                "MASTER",
                "PEER",
                "PEER-NETNS"
            ]
        );
        assert_eq!(
            rows[3],
            [
                "eth0@if5",
                "UP",
                "02:00:00:00:00:01",
                "<BROADCAST,MULTICAST,UP>",
                "1500",
                "veth",
                "-",
                "vh0",
                "4026531840"
            ]
        );
        assert_eq!(
            rows[5][0], "c1@if6",
            "a same-namespace peer not among the links"
        );
        assert_eq!(rows[5][6], "br0", "the master by name");
        assert_eq!(&rows[5][7..], ["if6", "-"], "a peer known by index only");
        assert_eq!(&rows[6][..3], ["tunl0@NONE", "-", "-"]);
        // Every column starts at the same place on every line.
        let column = |line: &str, cell: &str| line.find(cell).unwrap();
        assert_eq!(column(lines[1], "STATE"), column(lines[2], "UNKNOWN"));
        assert_eq!(
            column(lines[1], "PEER-NETNS"),
            column(lines[3], "4026531840")
        );
    }

    #[test]
    fn a_same_namespace_lower_link_is_named_and_stats_add_columns() {
        let mut c2 = link(6, "c2");
        c2.stats64 = Some(LinkStats::default());
        let mut mv0 = link(8, "mv0");
        mv0.link_index = Some(6);
        mv0.link = Some(6);
        mv0.stats64 = Some(LinkStats {
            rx: nshelper_model::RxStats {
                bytes: 1234,
                packets: 5,
                ..Default::default()
            },
            ..Default::default()
        });
        let contents = NetnsContents {
            links: Some(vec![c2, mv0]),
            ..NetnsContents::default()
        };
        let text = query(&[result(Target::OwnNamespaces, contents)], QueryKind::Links);
        let rows = cells(&text);
        assert_eq!(rows[0], ["==", "own", "namespaces", "(net:[10])", "=="]);
        assert_eq!(
            &rows[1][9..],
            ["RX-BYTES", "RX-PACKETS", "TX-BYTES", "TX-PACKETS"]
        );
        assert_eq!(rows[3][0], "mv0@c2");
        assert_eq!(&rows[3][9..], ["1234", "5", "0", "0"]);
    }

    #[test]
    fn addresses_are_listed_per_link_as_ip_br_addr_does() {
        let mut lo = link(1, "lo");
        lo.operstate = Some("UNKNOWN".into());
        let mut eth0 = link(2, "eth0");
        eth0.link_index = Some(9);
        eth0.link_netnsid = Some(0);
        let quiet = link(3, "quiet");
        let mut point = address(2, "10.1.0.1", 32);
        point.address = Some("10.1.0.2".into());
        let mut gone = address(40, "192.0.2.1", 24);
        gone.ifname = Some("gone0".into());
        let addrs = vec![
            address(1, "127.0.0.1", 8),
            address(2, "10.0.3.7", 24),
            point,
            address(1, "::1", 128),
            address(2, "fd00::7", 64),
            gone,
        ];
        let contents = NetnsContents {
            links: Some(vec![lo, eth0, quiet]),
            addrs: Some(addrs),
            ..NetnsContents::default()
        };
        let text = query(
            &[result(
                Target::Netns {
                    name: Some("red".into()),
                    path: "/run/netns/red".into(),
                },
                contents,
            )],
            QueryKind::Addrs,
        );
        assert_tidy(&text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "== netns red (net:[10]) ==");
        assert_eq!(lines[1], "IFNAME    STATE    ADDRESSES");
        assert_eq!(lines[2], "lo        UNKNOWN  127.0.0.1/8 ::1/128");
        assert_eq!(
            lines[3],
            "eth0@if9  UP       10.0.3.7/24 10.1.0.1 peer 10.1.0.2/32 fd00::7/64"
        );
        assert_eq!(lines[4], "quiet     UP", "a link without addresses");
        assert_eq!(lines[5], "gone0     -        192.0.2.1/24");
    }

    #[test]
    fn routes_read_as_ip_route_and_neighbours_as_ip_neigh() {
        let mut default = route("0.0.0.0/0");
        default.gateway = Some("10.0.3.1".into());
        default.scope = "global".into();
        default.protocol = "boot".into();
        let mut host = route("10.0.3.7/32");
        host.table = 255;
        host.route_type = "local".into();
        host.prefsrc = Some("10.0.3.7".into());
        let mut multipath = route("10.99.0.0/16");
        multipath.dev = None;
        multipath.oif = None;
        multipath.metric = Some(50);
        multipath.table = 100;
        multipath.nexthops = Some(vec![
            Nexthop {
                gateway: Some("10.0.3.1".into()),
                dev: Some("eth0".into()),
                oif: 2,
                weight: 1,
            },
            Nexthop {
                gateway: Some("10.0.3.2".into()),
                dev: Some("eth1".into()),
                oif: 3,
                weight: 3,
            },
        ]);
        let v6 = route("fd00::/64");
        let v6_default = route("::/0");
        let contents = NetnsContents {
            routes: Some(vec![default, host, multipath, v6, v6_default]),
            neighbors: Some(vec![Neighbor {
                ifindex: 2,
                dev: Some("eth0".into()),
                family: "inet".into(),
                dst: "10.0.3.9".into(),
                lladdr: Some("02:00:00:00:00:09".into()),
                state: vec!["REACHABLE".into(), "NOARP".into()],
            }]),
            ..NetnsContents::default()
        };
        let results = [result(Target::OwnNamespaces, contents)];
        let routes = query(&results, QueryKind::Routes);
        assert_tidy(&routes);
        let rows = cells(&routes);
        assert_eq!(
            rows[1],
            ["DST", "TYPE", "GATEWAY", "DEV", "TABLE", "PROTO", "SCOPE", "PREFSRC", "METRIC"]
        );
        assert_eq!(
            rows[2],
            ["default", "unicast", "10.0.3.1", "eth0", "main", "boot", "global", "-", "-"]
        );
        assert_eq!(
            rows[3],
            ["10.0.3.7", "local", "-", "eth0", "local", "kernel", "link", "10.0.3.7", "-"]
        );
        assert_eq!(
            rows[4],
            [
                "10.99.0.0/16",
                "unicast",
                "10.0.3.1,10.0.3.2",
                "eth0,eth1",
                "100",
                "kernel",
                "link",
                "-",
                "50"
            ]
        );
        assert_eq!(rows[5][0], "fd00::/64");
        assert_eq!(rows[6][0], "default");
        let neighbors = query(&results, QueryKind::Neighbors);
        assert_eq!(
            cells(&neighbors)[2],
            ["10.0.3.9", "eth0", "02:00:00:00:00:09", "REACHABLE,NOARP"]
        );
    }

    #[test]
    fn all_gives_each_kind_a_titled_section_and_empty_ones_say_so() {
        let contents = NetnsContents {
            links: Some(vec![link(1, "lo")]),
            addrs: Some(Vec::new()),
            routes: Some(Vec::new()),
            neighbors: Some(Vec::new()),
        };
        let results = [
            result(Target::Pid { pid: 1 }, contents.clone()),
            result(Target::Pid { pid: 2 }, contents),
        ];
        let text = query(&results, QueryKind::All);
        assert_tidy(&text);
        let titles: Vec<&str> = text
            .lines()
            .filter(|line| line.ends_with(':') || line.starts_with("=="))
            .collect();
        assert_eq!(
            titles,
            [
                "== pid 1 (net:[10] mnt:[11] pid:[12]) ==",
                "links:",
                "addresses:",
                "routes:",
                "neighbors:",
                "== pid 2 (net:[10] mnt:[11] pid:[12]) ==",
                "links:",
                "addresses:",
                "routes:",
                "neighbors:",
            ]
        );
        assert!(text.contains("routes:\n(no routes)\n\nneighbors:\n(no neighbors)\n\n== pid 2"));
    }

    #[test]
    fn discovered_namespaces_are_named_by_what_holds_them() {
        let identity = |names: &[&str], pids: &[u32], threads: &[u32], fds: &[(u32, u32)]| {
            Target::Discovered(NetnsIdentity {
                netns: 10,
                names: names.iter().map(|n| (*n).to_owned()).collect(),
                paths: names.iter().map(|n| format!("/run/netns/{n}")).collect(),
                pids: pids.to_vec(),
                threads: threads.to_vec(),
                fds: fds.iter().map(|&(pid, fd)| FdHolder { pid, fd }).collect(),
            })
        };
        let label = |target| target_label(&target);
        assert_eq!(label(identity(&["red"], &[7], &[], &[])), "netns red");
        assert_eq!(label(identity(&[], &[4242], &[], &[])), "netns of pid 4242");
        assert_eq!(
            label(identity(&[], &[1, 2, 3, 4, 5, 6], &[], &[])),
            "netns of pids 1,2,3,+3"
        );
        assert_eq!(label(identity(&[], &[], &[99], &[])), "netns (thread 99)");
        assert_eq!(
            label(identity(&[], &[], &[], &[(40, 7)])),
            "netns (fd 7 of pid 40)"
        );
        let heading = heading(&result(
            identity(&["red"], &[], &[], &[]),
            NetnsContents::default(),
        ));
        assert_eq!(
            heading, "== netns red (net:[10]) ==",
            "only the net namespace was joined"
        );
    }

    #[test]
    fn list_has_a_row_per_namespace_like_lsns() {
        let listed = |netns: u64, nsid: Option<i32>, names: &[&str], pids: &[u32]| ListedNetns {
            netns,
            cookie: Some(netns - 4026531000),
            nsid,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            paths: names.iter().map(|n| format!("/run/netns/{n}")).collect(),
            pids: pids.to_vec(),
            threads: Vec::new(),
            fds: Vec::new(),
            processes: pids
                .iter()
                .map(|&pid| ProcessSummary {
                    pid,
                    command: format!("sleep {pid}"),
                    cgroup: "/".into(),
                })
                .collect(),
        };
        let mut held = listed(4026532400, None, &[], &[]);
        held.fds = vec![FdHolder { pid: 77, fd: 7 }];
        let text = list(&[
            listed(4026531840, None, &[], &[812, 1]),
            listed(4026532290, Some(0), &["red"], &[]),
            held,
        ]);
        assert_tidy(&text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "NETNS       NSID  NPROCS  PID  NAMES  PATHS           COMMAND",
                "4026531840  -     2       1    -      -               sleep 1",
                "4026532290  0     0       -    red    /run/netns/red  -",
                "4026532400  -     0       -    -      -               (fd 7 of pid 77)",
            ]
        );
        assert_eq!(list(&[]), "", "stderr says why");
    }

    #[test]
    fn whois_names_the_holder_and_the_other_end() {
        let found = WhoisMatch {
            netns: 4026531840,
            names: Vec::new(),
            pids: vec![1, 2, 3, 4, 5],
            link: link(7, "vc1"),
            peer: Some(WhoisPeer {
                netns: 4026532290,
                ifindex: 2,
                ifname: Some("eth0".into()),
                names: Vec::new(),
                pids: vec![4242],
            }),
        };
        assert_eq!(whois(&[]), "", "stderr says so");
        let text = whois(&[found]);
        assert_tidy(&text);
        assert_eq!(
            cells(&text)[1],
            [
                "vc1",
                "02:00:00:00:00:01",
                "4026531840",
                "-",
                "1,2,3,+2",
                "eth0",
                "4026532290",
                "-",
                "4242"
            ]
        );
    }

    #[test]
    fn names_from_inside_a_target_cannot_reach_the_terminal_raw() {
        let hostile = link(1, "a\u{1b}[31mb c\u{202e}d\\e\u{85}");
        let contents = NetnsContents {
            links: Some(vec![hostile]),
            ..NetnsContents::default()
        };
        let text = query(&[result(Target::OwnNamespaces, contents)], QueryKind::Links);
        assert!(
            text.chars()
                .all(|c| c == '\n' || !(c.is_control() || is_invisible(c))),
            "{text:?}"
        );
        assert_eq!(
            cells(&text)[2][0],
            "a\\u{1b}[31mb\\u{20}c\\u{202e}d\\\\e\\u{85}"
        );
        // A command keeps its spaces, as the last cell of a row.
        assert_eq!(words("sleep 600\u{7}"), "sleep 600\\u{7}");
        assert_eq!(word(""), "-");
    }
}
