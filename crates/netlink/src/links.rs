//! Turns raw link messages into the model, the way `ip -j link` presents them.

use std::collections::HashMap;
use std::fmt::Write as _;

use nshelper_model::{name_from_bytes, Link, Peer};

use crate::wire::RawLink;

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
pub fn flag_names(flags: u32, lower_down: bool) -> Vec<String> {
    let mut names = Vec::new();
    if flags & IFF_UP != 0 && flags & IFF_RUNNING == 0 {
        names.push("NO-CARRIER".to_owned());
    }
    let mut rest = flags & !IFF_RUNNING;
    for (bit, name) in FLAG_NAMES {
        if rest & bit != 0 {
            rest &= !bit;
            names.push(name.to_owned());
        }
    }
    if rest != 0 {
        names.push(format!("{rest:x}"));
    }
    if lower_down {
        names.push("M-DOWN".to_owned());
    }
    names
}

pub fn operstate_name(state: u8) -> String {
    match OPERSTATES.get(usize::from(state)) {
        Some(name) => (*name).to_owned(),
        None => format!("{state:#x}"),
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
        _ => {
            let mut text = String::with_capacity(bytes.len() * 3);
            for (i, byte) in bytes.iter().enumerate() {
                if i > 0 {
                    text.push(':');
                }
                let _ = write!(text, "{byte:02x}");
            }
            text
        }
    }
}

/// Builds the model's links from one namespace's dump. `netns_inode` is that namespace's
/// inode: a veth whose peer is in the same namespace names it as the peer's.
pub fn links_from_dump(raw_links: Vec<RawLink>, netns_inode: u64) -> Vec<Link> {
    let by_index: HashMap<u32, &RawLink> = raw_links.iter().map(|l| (l.ifindex, l)).collect();
    let mut links: Vec<Link> = raw_links
        .iter()
        .map(|raw| {
            let same_namespace_lower = match (raw.link, raw.link_netnsid) {
                (Some(lower), None) if lower != 0 => Some(lower),
                _ => None,
            };
            // Like `ip`, a lower link that cannot be found counts as down.
            let lower_down = same_namespace_lower.is_some_and(|lower| {
                by_index
                    .get(&lower)
                    .is_none_or(|lower| lower.flags & IFF_UP == 0)
            });
            let (ifname, ifname_hex) = name_from_bytes(&raw.ifname);
            let kind = raw
                .kind
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            let peer = match (kind.as_deref(), raw.link) {
                (Some("veth"), Some(peer_index)) => Some(veth_peer(
                    peer_index,
                    raw.link_netnsid,
                    &by_index,
                    netns_inode,
                )),
                _ => None,
            };
            Link {
                ifindex: raw.ifindex,
                ifname,
                ifname_hex,
                kind,
                flags: flag_names(raw.flags, lower_down),
                mtu: raw.mtu,
                operstate: raw.operstate.map(operstate_name),
                address: raw
                    .address
                    .as_deref()
                    .map(|a| link_address(a, raw.arp_type)),
                master: raw.master,
                link_index: raw.link,
                link_netnsid: raw.link_netnsid,
                peer,
            }
        })
        .collect();
    links.sort_by_key(|l| l.ifindex);
    links
}

fn veth_peer(
    peer_index: u32,
    peer_netnsid: Option<i32>,
    same_namespace: &HashMap<u32, &RawLink>,
    netns_inode: u64,
) -> Peer {
    match peer_netnsid {
        // The peer lives in another namespace, named only by an nsid relative to this one.
        Some(_) => Peer {
            ifindex: peer_index,
            netns: None,
            ifname: None,
            ifname_hex: None,
        },
        None => {
            let name = same_namespace
                .get(&peer_index)
                .map(|peer| name_from_bytes(&peer.ifname));
            Peer {
                ifindex: peer_index,
                netns: name.as_ref().map(|_| netns_inode),
                ifname: name.as_ref().map(|(text, _)| text.clone()),
                ifname_hex: name.and_then(|(_, hex)| hex),
            }
        }
    }
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
            ifname: name.to_vec(),
            kind: kind.map(<[u8]>::to_vec),
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
    fn veth_peers_in_other_namespaces_keep_only_their_index() {
        let mut eth0 = raw(2, b"eth0", Some(b"veth"), Some(7));
        eth0.link_netnsid = Some(0);
        let links = links_from_dump(vec![eth0], 1);
        let peer = links[0].peer.as_ref().unwrap();
        assert_eq!(
            (peer.ifindex, peer.netns, peer.ifname.as_deref()),
            (7, None, None)
        );
        assert_eq!(links[0].link_netnsid, Some(0));
        assert!(!links[0].flags.contains(&"M-DOWN".to_owned()));
    }
}
