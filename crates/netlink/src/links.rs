//! Turns raw link messages into the model, the way `ip -j link` presents them.

use std::borrow::Cow;

use nshelper_model::{name_from_bytes, Link, LinkStats, Peer, RxStats, TxStats};

use crate::wire::{RawLink, RawLinkStats};

const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;

/// Flag names in the order `ip` prints them.
const FLAG_NAMES: [(u32, &str); 18] = [
    (0x8, "LOOPBACK"),
    (0x2, "BROADCAST"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x80, "NOARP"),
    (0x200, "ALLMULTI"),
    (0x100, "PROMISC"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x4, "DEBUG"),
    (0x8000, "DYNAMIC"),
    (0x4000, "AUTOMEDIA"),
    (0x2000, "PORTSEL"),
    (0x20, "NOTRAILERS"),
    (IFF_UP, "UP"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
    (0x40000, "ECHO"),
];

const OPERSTATES: [&str; 7] = [
    "UNKNOWN",
    "NOTPRESENT",
    "DOWN",
    "LOWERLAYERDOWN",
    "TESTING",
    "DORMANT",
    "UP",
];

const ARPHRD_TUNNEL: u16 = 768;
const ARPHRD_TUNNEL6: u16 = 769;
const ARPHRD_SIT: u16 = 776;
const ARPHRD_IPGRE: u16 = 778;
const ARPHRD_IP6GRE: u16 = 823;

/// Link flags as `ip` names them. `lower_down` is `ip`'s M-DOWN: the link this one sits on,
/// in the same namespace, is not up.
pub fn flag_names(flags: u32, lower_down: bool) -> Vec<Cow<'static, str>> {
    let mut names = flag_names_with_room(flags);
    if lower_down {
        names.push(Cow::Borrowed(M_DOWN));
    }
    names
}

/// `ip`'s name for a link whose lower link, in the same namespace, is not up.
const M_DOWN: &str = "M-DOWN";

/// [`flag_names`] without M-DOWN, in a list with room for it: a link's draft names its flags
/// before the rest of the dump tells whether its lower link is up.
fn flag_names_with_room(flags: u32) -> Vec<Cow<'static, str>> {
    let no_carrier = flags & IFF_UP != 0 && flags & IFF_RUNNING == 0;
    let mut rest = flags & !IFF_RUNNING;
    let named = FLAG_NAMES.iter().filter(|(bit, _)| rest & bit != 0).count();
    let unnamed = FLAG_NAMES.iter().fold(rest, |rest, (bit, _)| rest & !bit) != 0;
    let mut names = Vec::with_capacity(usize::from(no_carrier) + named + usize::from(unnamed) + 1);
    if no_carrier {
        names.push(Cow::Borrowed("NO-CARRIER"));
    }
    for (bit, name) in FLAG_NAMES {
        if rest & bit != 0 {
            rest &= !bit;
            names.push(Cow::Borrowed(name));
        }
    }
    if rest != 0 {
        names.push(Cow::Owned(format!("{rest:x}")));
    }
    names
}

pub fn operstate_name(state: u8) -> Cow<'static, str> {
    match OPERSTATES.get(usize::from(state)) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("{state:#x}")),
    }
}

/// A link-layer address as `ip` prints it: tunnel endpoints as IP addresses, everything else
/// as colon-separated hex.
pub fn link_address(bytes: &[u8], arp_type: u16) -> String {
    match (arp_type, bytes.len()) {
        (ARPHRD_TUNNEL | ARPHRD_SIT | ARPHRD_IPGRE, 4) => {
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
        }
        (ARPHRD_TUNNEL6 | ARPHRD_IP6GRE, 16) => {
            let octets: [u8; 16] = bytes.try_into().unwrap_or_default();
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => crate::names::colon_hex(bytes),
    }
}

/// Hardware types as iproute2 6.1 names them (`ll_type_n2a` in lib/ll_types.c), in its
/// order: the first match wins.
const LINK_TYPES: &[(u16, &str)] = &[
    (0, "generic"),
    (1, "ether"),
    (2, "eether"),
    (3, "ax25"),
    (4, "pronet"),
    (5, "chaos"),
    (6, "ieee802"),
    (7, "arcnet"),
    (8, "atalk"),
    (15, "dlci"),
    (19, "atm"),
    (23, "metricom"),
    (24, "ieee1394"),
    (32, "infiniband"),
    (256, "slip"),
    (257, "cslip"),
    (258, "slip6"),
    (259, "cslip6"),
    (260, "rsrvd"),
    (264, "adapt"),
    (270, "rose"),
    (271, "x25"),
    (272, "hwx25"),
    (280, "can"),
    (512, "ppp"),
    (513, "hdlc"),
    (516, "lapb"),
    (517, "ddcmp"),
    (518, "rawhdlc"),
    (ARPHRD_TUNNEL, "ipip"),
    (ARPHRD_TUNNEL6, "tunnel6"),
    (770, "frad"),
    (771, "skip"),
    (772, "loopback"),
    (773, "ltalk"),
    (774, "fddi"),
    (775, "bif"),
    (ARPHRD_SIT, "sit"),
    (777, "ip/ddp"),
    (ARPHRD_IPGRE, "gre"),
    (779, "pimreg"),
    (780, "hippi"),
    (781, "ash"),
    (782, "econet"),
    (783, "irda"),
    (784, "fcpp"),
    (785, "fcal"),
    (786, "fcpl"),
    (787, "fcfb0"),
    (788, "fcfb1"),
    (789, "fcfb2"),
    (790, "fcfb3"),
    (791, "fcfb4"),
    (792, "fcfb5"),
    (793, "fcfb6"),
    (794, "fcfb7"),
    (795, "fcfb8"),
    (796, "fcfb9"),
    (797, "fcfb10"),
    (798, "fcfb11"),
    (799, "fcfb12"),
    (800, "tr"),
    (801, "ieee802.11"),
    (802, "ieee802.11/prism"),
    (803, "ieee802.11/radiotap"),
    (804, "ieee802.15.4"),
    (805, "ieee802.15.4/monitor"),
    (820, "phonet"),
    (821, "phonet_pipe"),
    (822, "caif"),
    (ARPHRD_IP6GRE, "gre6"),
    (824, "netlink"),
    (825, "6lowpan"),
    (65534, "none"),
    (65535, "void"),
];

/// The hardware type (`ifi_type`, an `ARPHRD_*` value) as `ip` names it in `link_type`;
/// a type iproute2 6.1 does not know is printed as its number in brackets, `[519]`.
pub fn link_type_name(arp_type: u16) -> Cow<'static, str> {
    match LINK_TYPES.iter().find(|(value, _)| *value == arp_type) {
        Some((_, name)) => Cow::Borrowed(name),
        None => Cow::Owned(format!("[{arp_type}]")),
    }
}

/// The counters `ip -s -j link` prints as `stats64`.
pub fn link_stats(raw: &RawLinkStats) -> LinkStats {
    LinkStats {
        rx: RxStats {
            bytes: raw.rx_bytes,
            packets: raw.rx_packets,
            errors: raw.rx_errors,
            dropped: raw.rx_dropped,
            over_errors: raw.rx_over_errors,
            multicast: raw.multicast,
        },
        tx: TxStats {
            bytes: raw.tx_bytes,
            packets: raw.tx_packets,
            errors: raw.tx_errors,
            dropped: raw.tx_dropped,
            carrier_errors: raw.tx_carrier_errors,
            collisions: raw.collisions,
        },
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the model's links from one namespace's dump. `netns_inode` is that namespace's
/// inode: a veth whose peer is in the same namespace names it as the peer's. `with_stats`
/// fills `stats64` from `IFLA_STATS64`; without it `stats64` is always `None`.
pub fn links_from_dump(raw_links: Vec<RawLink>, netns_inode: u64, with_stats: bool) -> Vec<Link> {
    let drafts = raw_links
        .iter()
        .map(|raw| draft_link(raw, with_stats))
        .collect();
    finish_links(drafts, netns_inode)
}

/// One link of a dump, made from its own message alone (see [`links_from_dump`] for
/// `with_stats`). What depends on the dump's other links is settled by [`finish_links`]: an
/// M-DOWN flag, when its lower link is down, for which its flags have room, and the name of
/// a veth peer in the same namespace, for which the peer has an empty name with room for
/// any. Made as each message is decoded, drafts spare the dump a list of raw links, and
/// their allocations happen while the kernel is still dumping, not after.
pub fn draft_link(raw: &RawLink, with_stats: bool) -> Link {
    let same_namespace_lower = same_namespace_lower(raw.link, raw.link_netnsid);
    // A vxlan names its device inside IFLA_INFO_DATA rather than in IFLA_LINK.
    let parent =
        same_namespace_lower.or(self::same_namespace_lower(raw.vxlan_link, raw.link_netnsid));
    let (ifname, ifname_hex) = name_from_bytes(&raw.ifname);
    let kind = raw.kind.as_deref().map(text);
    // A peer in the same namespace is named by `finish_links`; one elsewhere is named only
    // by an nsid relative to this namespace.
    let peer = match (kind.as_deref(), raw.link) {
        (Some("veth"), Some(peer_index)) => Some(Peer {
            ifindex: peer_index,
            netns: None,
            ifname: same_namespace_lower.map(|_| String::with_capacity(LONGEST_IFNAME)),
            ifname_hex: None,
        }),
        _ => None,
    };
    Link {
        ifindex: raw.ifindex,
        ifname,
        ifname_hex,
        kind,
        flags: flag_names_with_room(raw.flags),
        mtu: raw.mtu,
        operstate: raw.operstate.map(operstate_name),
        address: raw
            .address
            .as_deref()
            .map(|a| link_address(a, raw.arp_type)),
        master: raw.master,
        link_index: raw.link,
        link_netnsid: raw.link_netnsid,
        link: parent,
        alias: raw.alias.as_deref().map(text),
        alias_hex: raw
            .alias
            .as_deref()
            .and_then(|alias| name_from_bytes(alias).1),
        altnames: raw.altnames.iter().map(|name| text(name)).collect(),
        altnames_hex: if raw.altnames.iter().all(|n| std::str::from_utf8(n).is_ok()) {
            None
        } else {
            Some(raw.altnames.iter().map(|n| hex(n)).collect())
        },
        txqlen: raw.txqlen,
        broadcast: raw
            .broadcast
            .as_deref()
            .map(|a| link_address(a, raw.arp_type)),
        link_type: link_type_name(raw.arp_type),
        stats64: raw.stats64.as_ref().filter(|_| with_stats).map(link_stats),
        peer,
    }
}

/// The lower link's ifindex, when it is in the same namespace: `IFLA_LINK` with no
/// `IFLA_LINK_NETNSID`.
fn same_namespace_lower(link: Option<u32>, link_netnsid: Option<i32>) -> Option<u32> {
    match (link, link_netnsid) {
        (Some(lower), None) if lower != 0 => Some(lower),
        _ => None,
    }
}

/// Room for any interface name: the kernel's `IFNAMSIZ` (16) less its NUL.
const LONGEST_IFNAME: usize = 15;

/// The links of a dump from their drafts (see [`draft_link`]), by ifindex, settled in
/// place. `netns_inode` is the dump's namespace.
pub fn finish_links(mut links: Vec<Link>, netns_inode: u64) -> Vec<Link> {
    // The kernel dumps links in ifindex order: the drafts can then be searched by halves
    // rather than hashed.
    if !links.is_sorted_by_key(|link| link.ifindex) {
        links.sort_by_key(|link| link.ifindex);
    }
    // Searched apart from the links, which are half a KiB each: a search through them would
    // miss the cache at nearly every step.
    let ifindexes: Vec<u32> = links.iter().map(|link| link.ifindex).collect();
    let find = |ifindex: u32| ifindexes.binary_search(&ifindex).ok();
    for at in 0..links.len() {
        let link = &links[at];
        // Like `ip`, a lower link that cannot be found counts as down.
        let lower_down = same_namespace_lower(link.link_index, link.link_netnsid)
            .is_some_and(|lower| find(lower).is_none_or(|lower| !is_up(&links[lower])));
        // Only a peer in the same namespace has room for a name.
        let found_peer = link
            .peer
            .as_ref()
            .filter(|peer| peer.ifname.is_some())
            .map(|peer| find(peer.ifindex));
        if lower_down {
            links[at].flags.push(Cow::Borrowed(M_DOWN));
        }
        let (link, other) = match found_peer {
            None => continue,
            Some(Some(other)) if other != at => {
                let (link, other) = one_to_change_one_to_read(&mut links, at, other);
                (link, Some((other.ifname.as_str(), &other.ifname_hex)))
            }
            // A veth is never its own peer, but an index that says so names the link itself.
            Some(Some(_)) => {
                let link = &mut links[at];
                let (name, name_hex) = (link.ifname.clone(), link.ifname_hex.clone());
                if let Some(peer) = link.peer.as_mut() {
                    peer.ifname = Some(name);
                    peer.ifname_hex = name_hex;
                    peer.netns = Some(netns_inode);
                }
                continue;
            }
            Some(None) => (&mut links[at], None),
        };
        let Some(peer) = link.peer.as_mut() else {
            continue;
        };
        match other {
            Some((name, name_hex)) => {
                if let Some(room) = peer.ifname.as_mut() {
                    room.push_str(name);
                }
                peer.netns = Some(netns_inode);
                peer.ifname_hex.clone_from(name_hex);
            }
            None => peer.ifname = None,
        }
    }
    links
}

/// `links[change]` to change and `links[read]` to read; they must differ.
fn one_to_change_one_to_read(links: &mut [Link], change: usize, read: usize) -> (&mut Link, &Link) {
    if change < read {
        let (left, right) = links.split_at_mut(read);
        (&mut left[change], &right[0])
    } else {
        let (left, right) = links.split_at_mut(change);
        (&mut right[0], &left[read])
    }
}

fn is_up(link: &Link) -> bool {
    link.flags.iter().any(|flag| flag == "UP")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_ip_order_and_no_carrier() {
        assert_eq!(
            flag_names(0x1 | 0x2 | 0x1000 | 0x40 | 0x10000, false),
            ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
        );
        assert_eq!(
            flag_names(0x1 | 0x2 | 0x1000, true),
            ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "M-DOWN"]
        );
        assert_eq!(flag_names(0x8 | 0x1 | 0x40 | 0x10000, false)[0], "LOOPBACK");
        assert_eq!(flag_names(0x8000_0000, false), ["80000000"]);
    }

    #[test]
    fn operstates_are_named_and_unknown_values_kept() {
        assert_eq!(operstate_name(6), "UP");
        assert_eq!(operstate_name(2), "DOWN");
        assert_eq!(operstate_name(0), "UNKNOWN");
        assert_eq!(operstate_name(9), "0x9");
    }

    #[test]
    fn addresses_are_hex_except_tunnel_endpoints() {
        assert_eq!(
            link_address(&[0x9a, 0x22, 0x71, 0xd3, 0x5e, 0xdc], 1),
            "9a:22:71:d3:5e:dc"
        );
        assert_eq!(link_address(&[10, 0, 0, 1], ARPHRD_IPGRE), "10.0.0.1");
        assert_eq!(link_address(&[], 1), "");
    }

    fn raw(ifindex: u32, name: &[u8], kind: Option<&[u8]>, link: Option<u32>) -> RawLink {
        RawLink {
            ifindex,
            ifname: name.into(),
            kind: kind.map(Into::into),
            link,
            flags: IFF_UP,
            ..RawLink::default()
        }
    }

    #[test]
    fn veth_peers_in_the_same_namespace_are_named() {
        let links = links_from_dump(
            vec![
                raw(3, b"vb", Some(b"veth"), Some(2)),
                raw(2, b"va", Some(b"veth"), Some(3)),
                raw(1, b"lo", None, None),
            ],
            4026531840,
            false,
        );
        assert_eq!(
            links.iter().map(|l| l.ifindex).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(links[0].peer, None);
        let peer = links[1].peer.as_ref().unwrap();
        assert_eq!(peer.ifindex, 3);
        assert_eq!(peer.ifname.as_deref(), Some("vb"));
        assert_eq!(peer.netns, Some(4026531840));
    }

    #[test]
    fn a_peer_is_named_as_it_is_and_down_or_missing_peers_make_m_down() {
        let mut down = raw(4, b"vd", Some(b"veth"), Some(5));
        down.flags = 0;
        let links = links_from_dump(
            vec![
                raw(2, b"va", Some(b"veth"), Some(3)),
                raw(3, b"v\xff", Some(b"veth"), Some(2)),
                down,
                raw(5, b"ve", Some(b"veth"), Some(4)),
                // Its peer went away while the dump ran.
                raw(6, b"vf", Some(b"veth"), Some(9)),
                // No kernel says so, but as before: named after itself.
                raw(7, b"vs", Some(b"veth"), Some(7)),
            ],
            1,
            false,
        );
        let peer = |at: usize| links[at].peer.as_ref().unwrap();
        let m_down = |at: usize| links[at].flags.iter().any(|flag| flag == "M-DOWN");
        assert_eq!(peer(0).ifname.as_deref(), Some("v\u{fffd}"));
        assert_eq!(peer(0).ifname_hex.as_deref(), Some("76ff"));
        assert_eq!(
            (peer(1).ifname.as_deref(), peer(1).ifname_hex.as_deref()),
            (Some("va"), None)
        );
        assert_eq!(
            (m_down(0), m_down(1), m_down(2), m_down(3)),
            (false, false, false, true)
        );
        assert_eq!(links[3].flags, ["NO-CARRIER", "UP", "M-DOWN"]);
        assert_eq!(
            (peer(4).ifindex, peer(4).netns, peer(4).ifname.as_deref()),
            (9, None, None)
        );
        assert!(m_down(4));
        assert_eq!(
            (peer(5).ifname.as_deref(), peer(5).netns),
            (Some("vs"), Some(1))
        );
    }

    #[test]
    fn veth_peers_in_other_namespaces_keep_only_their_index() {
        let mut eth0 = raw(2, b"eth0", Some(b"veth"), Some(7));
        eth0.link_netnsid = Some(0);
        let links = links_from_dump(vec![eth0], 1, false);
        let peer = links[0].peer.as_ref().unwrap();
        assert_eq!(
            (peer.ifindex, peer.netns, peer.ifname.as_deref()),
            (7, None, None)
        );
        assert_eq!(links[0].link_netnsid, Some(0));
        assert!(!links[0].flags.iter().any(|flag| flag == "M-DOWN"));
    }

    #[test]
    fn link_types_use_iproute2_names_and_brackets_otherwise() {
        assert_eq!(link_type_name(1), "ether");
        assert_eq!(link_type_name(772), "loopback");
        assert_eq!(link_type_name(65534), "none");
        assert_eq!(link_type_name(65535), "void");
        assert_eq!(link_type_name(768), "ipip");
        assert_eq!(link_type_name(769), "tunnel6");
        assert_eq!(link_type_name(776), "sit");
        assert_eq!(link_type_name(778), "gre");
        assert_eq!(link_type_name(823), "gre6");
        assert_eq!(link_type_name(512), "ppp");
        assert_eq!(link_type_name(0), "generic");
        assert_eq!(link_type_name(799), "fcfb12");
        // iproute2 6.1 has no names for ARPHRD_RAWIP, ARPHRD_MCTP or ARPHRD_VSOCKMON.
        assert_eq!(link_type_name(519), "[519]");
        assert_eq!(link_type_name(290), "[290]");
        assert_eq!(link_type_name(826), "[826]");
        assert_eq!(link_type_name(65533), "[65533]");
    }

    #[test]
    fn stats_map_to_the_counters_ip_prints() {
        // Every counter holds its index in struct rtnl_link_stats64, plus 100.
        let mut payload = Vec::new();
        for index in 0..25u64 {
            payload.extend_from_slice(&(100 + index).to_ne_bytes());
        }
        let stats = link_stats(&crate::wire::decode_stats64(&payload));
        assert_eq!(
            (
                stats.rx.packets,
                stats.rx.bytes,
                stats.rx.errors,
                stats.rx.dropped,
                stats.rx.multicast,
                stats.rx.over_errors
            ),
            (100, 102, 104, 106, 108, 111)
        );
        assert_eq!(
            (
                stats.tx.packets,
                stats.tx.bytes,
                stats.tx.errors,
                stats.tx.dropped,
                stats.tx.collisions,
                stats.tx.carrier_errors
            ),
            (101, 103, 105, 107, 109, 117)
        );
    }

    #[test]
    fn parents_are_same_namespace_lower_links_or_the_vxlan_device() {
        let mut vx = raw(6, b"vx0", Some(b"vxlan"), None);
        vx.vxlan_link = Some(2);
        let mut vx_nodev = raw(7, b"vx1", Some(b"vxlan"), None);
        vx_nodev.vxlan_link = Some(0);
        let mut vx_elsewhere = raw(8, b"vx2", Some(b"vxlan"), None);
        vx_elsewhere.vxlan_link = Some(3);
        vx_elsewhere.link_netnsid = Some(1);
        let mut far = raw(9, b"eth0", Some(b"veth"), Some(4));
        far.link_netnsid = Some(0);
        let links = links_from_dump(
            vec![
                raw(2, b"vb", Some(b"veth"), Some(3)),
                raw(5, b"mv0", Some(b"macvlan"), Some(2)),
                raw(10, b"ipip0", None, Some(0)),
                vx,
                vx_nodev,
                vx_elsewhere,
                far,
            ],
            1,
            true,
        );
        let parent = |name: &str| links.iter().find(|l| l.ifname == name).unwrap().link;
        assert_eq!(parent("vb"), Some(3));
        assert_eq!(parent("mv0"), Some(2));
        assert_eq!(parent("vx0"), Some(2));
        assert_eq!(parent("vx1"), None);
        assert_eq!(parent("vx2"), None);
        assert_eq!(parent("eth0"), None);
        assert_eq!(parent("ipip0"), None);
        // Asked for, but the kernel sent none.
        assert!(links.iter().all(|l| l.stats64.is_none()));
    }

    #[test]
    fn new_fields_are_converted_and_stats_only_when_asked_for() {
        let mut link = raw(3, b"va", Some(b"veth"), None);
        link.arp_type = 778;
        link.broadcast = Some(vec![0, 0, 0, 0].into());
        link.alias = Some(b"up\xfflink".to_vec());
        link.altnames = vec![b"one".to_vec(), b"two".to_vec()];
        link.txqlen = Some(0);
        link.stats64 = Some(RawLinkStats {
            rx_bytes: 5,
            ..RawLinkStats::default()
        });
        let without = links_from_dump(vec![link.clone()], 1, false);
        assert_eq!(without[0].stats64, None);
        let with = links_from_dump(vec![link], 1, true);
        let va = &with[0];
        assert_eq!(va.stats64.as_ref().map(|s| s.rx.bytes), Some(5));
        assert_eq!(va.broadcast.as_deref(), Some("0.0.0.0"));
        assert_eq!(va.link_type, "gre");
        assert_eq!(va.alias.as_deref(), Some("up\u{fffd}link"));
        assert_eq!(va.altnames, ["one", "two"]);
        assert_eq!(va.txqlen, Some(0));
    }
}
