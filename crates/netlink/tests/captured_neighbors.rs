//! The neighbour decoder against real kernel bytes: the RTM_GETNEIGH dump of the scene built
//! by `scripts/capture-netlink-scene.sh` (see `tests/data/README.md`), cross-checked against
//! `ip -j neigh show nud all` and `ip -j neigh` taken right after it in the same namespace.

mod common;

use common::{datagrams, decoded, raw_links, GETNEIGH};
use nshelper_netlink::neighbors::neighbors_from_dump;
use nshelper_netlink::wire::{decode_neighbor, messages, RawNeighbor, NLMSG_DONE, RTM_NEWNEIGH};

fn raw_neighbors() -> Vec<RawNeighbor> {
    decoded(GETNEIGH, RTM_NEWNEIGH, decode_neighbor)
}

const NUD_STALE: u16 = 0x04;
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;

#[test]
fn the_capture_is_one_datagram_of_twenty_entries_and_done() {
    let datagrams = datagrams(GETNEIGH);
    assert_eq!(
        datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
        [1732]
    );
    let kinds: Vec<u16> = messages(datagrams[0]).map(|m| m.unwrap().kind).collect();
    assert_eq!(kinds.len(), 21);
    assert!(kinds[..20].iter().all(|&k| k == RTM_NEWNEIGH));
    assert_eq!(kinds[20], NLMSG_DONE);
}

#[test]
fn the_entries_the_scene_added_are_decoded() {
    let neighbors = raw_neighbors();
    let find = |dst: &[u8]| {
        neighbors
            .iter()
            .find(|n| n.dst.as_deref() == Some(dst))
            .unwrap_or_else(|| panic!("no entry for {dst:?}"))
    };
    for (last, state) in [(7, NUD_STALE), (8, NUD_NOARP), (9, NUD_PERMANENT)] {
        let entry = find(&[10, 0, 0, last]);
        assert_eq!((entry.family, entry.ifindex, entry.state), (2, 2, state));
        assert_eq!(entry.lladdr.as_deref(), Some(&[2, 0, 0, 0, 0, last][..]));
    }
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6[15] = 9;
    let entry = find(&v6);
    assert_eq!(
        (entry.family, entry.ifindex, entry.state),
        (10, 2, NUD_PERMANENT)
    );
    assert_eq!(entry.lladdr.as_deref(), Some(&[2, 0, 0, 0, 0, 0x0a][..]));
    // The rest are multicast groups the kernel resolved itself: NOARP, RTN_MULTICAST.
    let multicast: Vec<_> = neighbors.iter().filter(|n| n.neighbor_type == 5).collect();
    assert_eq!(multicast.len(), 16);
    assert!(multicast.iter().all(|n| n.state == NUD_NOARP));
}

/// What `ip -j neigh show nud all` printed: dst, dev, lladdr, state.
type IpNeigh = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
);

#[rustfmt::skip]
const IP_SAYS: [IpNeigh; 20] = [
    ("10.0.0.7", "vb", Some("02:00:00:00:00:07"), &["STALE"]),
    ("224.0.0.22", "br0", Some("01:00:5e:00:00:16"), &["NOARP"]),
    ("10.0.0.8", "vb", Some("02:00:00:00:00:08"), &["NOARP"]),
    ("10.0.0.9", "vb", Some("02:00:00:00:00:09"), &["PERMANENT"]),
    ("ff02::1:ffc5:dd5", "br0", Some("33:33:ff:c5:0d:d5"), &["NOARP"]),
    ("ff02::2", "mv0", Some("33:33:00:00:00:02"), &["NOARP"]),
    ("ff02::2", "vb", Some("33:33:00:00:00:02"), &["NOARP"]),
    ("ff02::1:fff1:8f51", "mv0", Some("33:33:ff:f1:8f:51"), &["NOARP"]),
    ("ff02::16", "va", Some("33:33:00:00:00:16"), &["NOARP"]),
    ("ff02::16", "br0", Some("33:33:00:00:00:16"), &["NOARP"]),
    ("2001:db8::9", "vb", Some("02:00:00:00:00:0a"), &["PERMANENT"]),
    ("ff02::2", "vx0", Some("33:33:00:00:00:02"), &["NOARP"]),
    ("ff02::16", "mv0", Some("33:33:00:00:00:16"), &["NOARP"]),
    ("ff02::16", "vb", Some("33:33:00:00:00:16"), &["NOARP"]),
    ("ff02::2", "br0", Some("33:33:00:00:00:02"), &["NOARP"]),
    ("ff02::2", "va", Some("33:33:00:00:00:02"), &["NOARP"]),
    ("ff02::1:ff2b:e2fd", "vb", Some("33:33:ff:2b:e2:fd"), &["NOARP"]),
    ("ff02::16", "vx0", Some("33:33:00:00:00:16"), &["NOARP"]),
    ("ff02::1:ff91:fc18", "vx0", Some("33:33:ff:91:fc:18"), &["NOARP"]),
    ("ff02::1:ffc5:dd5", "va", Some("33:33:ff:c5:0d:d5"), &["NOARP"]),
];

/// `ip -j neigh` without `nud all` printed only these.
const IP_SAYS_BY_DEFAULT: [&str; 3] = ["10.0.0.7", "10.0.0.9", "2001:db8::9"];

#[test]
fn the_model_is_the_whole_table_as_ip_printed_it_with_nud_all() {
    let links = raw_links();
    let neighbors = neighbors_from_dump(raw_neighbors(), &links);
    assert_eq!(neighbors.len(), IP_SAYS.len());
    for (neighbor, (dst, dev, lladdr, state)) in neighbors.iter().zip(IP_SAYS) {
        assert_eq!(neighbor.dst, dst);
        assert_eq!(neighbor.dev.as_deref(), Some(dev), "{dst}");
        let ifindex = links
            .iter()
            .find(|l| l.ifname == dev.as_bytes())
            .unwrap()
            .ifindex;
        assert_eq!(neighbor.ifindex, ifindex, "{dst}");
        assert_eq!(neighbor.lladdr.as_deref(), lladdr, "{dst}");
        assert_eq!(neighbor.state, state, "{dst}");
        let family = if dst.contains(':') { "inet6" } else { "inet" };
        assert_eq!(neighbor.family, family, "{dst}");
    }
}

#[test]
fn ips_default_filter_keeps_the_entries_with_a_state_other_than_noarp() {
    let neighbors = neighbors_from_dump(raw_neighbors(), &raw_links());
    // ip neigh's default: (ndm_state & 0xbf) != 0, or the entry is a proxy or
    // externally learned one (none here).
    let shown: Vec<&str> = neighbors
        .iter()
        .filter(|n| n.state.iter().any(|s| s != "NOARP" && s != "NONE"))
        .map(|n| n.dst.as_str())
        .collect();
    assert_eq!(shown, IP_SAYS_BY_DEFAULT);
}
