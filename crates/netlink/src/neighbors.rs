//! Turns raw neighbour messages into the model: the whole ARP and NDP tables.

use nshelper_model::Neighbor;

use crate::links::link_address;
use crate::names::{family_name, ip_text, LinkNames};
use crate::wire::{RawLink, RawNeighbor};

/// `NUD_*` bits in the order `ip` prints them (`print_neigh_state`).
const STATE_NAMES: [(u16, &str); 8] = [
    (0x01, "INCOMPLETE"),
    (0x02, "REACHABLE"),
    (0x04, "STALE"),
    (0x08, "DELAY"),
    (0x10, "PROBE"),
    (0x20, "FAILED"),
    (0x40, "NOARP"),
    (0x80, "PERMANENT"),
];

/// A neighbour state as `ip` names it. Unlike `ip`, which prints no state at all for 0
/// and drops bits it has no name for, 0 is `["NONE"]` (the kernel's `NUD_NONE`) and
/// unnamed bits are appended as one hex number, such as `0x100`.
pub fn state_names(state: u16) -> Vec<String> {
    if state == 0 {
        return vec!["NONE".to_owned()];
    }
    let mut names = Vec::new();
    let mut rest = state;
    for (bit, name) in STATE_NAMES {
        if rest & bit != 0 {
            rest &= !bit;
            names.push(name.to_owned());
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names
}

/// Builds the model's neighbours from one namespace's `RTM_GETNEIGH` dump, naming each
/// entry's interface from `links`, the `RTM_GETLINK` dump of the same namespace.
///
/// Every IPv4 and IPv6 entry is kept, in the kernel's order, including those `ip neigh`
/// hides by default (state `NOARP` alone, or no state). An entry without `NDA_DST` is
/// skipped. `lladdr` reads as `ip` reads it, by the hardware type of the entry's link.
pub fn neighbors_from_dump(raw_neighbors: Vec<RawNeighbor>, links: &[RawLink]) -> Vec<Neighbor> {
    let names = LinkNames::new(links);
    raw_neighbors
        .iter()
        .filter_map(|raw| {
            let family = family_name(raw.family)?;
            let dst = raw.dst.as_deref()?;
            Some(Neighbor {
                ifindex: raw.ifindex,
                dev: names.name(raw.ifindex),
                family: family.to_owned(),
                dst: ip_text(dst),
                lladdr: raw
                    .lladdr
                    .as_deref()
                    .map(|lladdr| link_address(lladdr, names.arp_type(raw.ifindex))),
                state: state_names(raw.state),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_named_in_ip_order() {
        assert_eq!(state_names(0x80), ["PERMANENT"]);
        assert_eq!(state_names(0x40 | 0x80), ["NOARP", "PERMANENT"]);
        assert_eq!(state_names(0x04 | 0x01), ["INCOMPLETE", "STALE"]);
        assert_eq!(state_names(0), ["NONE"]);
        assert_eq!(state_names(0x0302), ["REACHABLE", "0x300"]);
    }

    #[test]
    fn link_layer_addresses_follow_the_link_type() {
        let links = [
            RawLink {
                ifindex: 2,
                ifname: b"eth0".as_slice().into(),
                arp_type: 1,
                ..RawLink::default()
            },
            RawLink {
                ifindex: 3,
                ifname: b"gre1".as_slice().into(),
                arp_type: 778,
                ..RawLink::default()
            },
        ];
        let raw = vec![
            RawNeighbor {
                family: 2,
                ifindex: 2,
                state: 0x02,
                dst: Some(vec![10, 0, 0, 9]),
                lladdr: Some(vec![2, 0, 0, 0, 0, 9]),
                ..RawNeighbor::default()
            },
            RawNeighbor {
                family: 2,
                ifindex: 3,
                state: 0x40,
                dst: Some(vec![10, 1, 0, 1]),
                lladdr: Some(vec![192, 0, 2, 7]),
                ..RawNeighbor::default()
            },
            RawNeighbor {
                family: 2,
                ifindex: 2,
                state: 0x20,
                dst: Some(vec![10, 0, 0, 10]),
                ..RawNeighbor::default()
            },
            // No destination, or a family nshelper does not report: skipped.
            RawNeighbor {
                family: 2,
                ifindex: 2,
                ..RawNeighbor::default()
            },
            RawNeighbor {
                family: 7,
                ifindex: 2,
                dst: Some(vec![1]),
                ..RawNeighbor::default()
            },
        ];
        let neighbors = neighbors_from_dump(raw, &links);
        assert_eq!(neighbors.len(), 3);
        assert_eq!(neighbors[0].lladdr.as_deref(), Some("02:00:00:00:00:09"));
        assert_eq!(neighbors[0].dev.as_deref(), Some("eth0"));
        assert_eq!(neighbors[0].state, ["REACHABLE"]);
        assert_eq!(neighbors[1].lladdr.as_deref(), Some("192.0.2.7"));
        assert_eq!(neighbors[1].state, ["NOARP"]);
        assert_eq!(neighbors[2].lladdr, None);
        assert_eq!(neighbors[2].dst, "10.0.0.10");
        assert_eq!(neighbors[2].family, "inet");
    }
}
