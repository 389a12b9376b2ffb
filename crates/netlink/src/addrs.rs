//! Turns raw address messages into the model, the way `ip -j addr` presents them.

use nshelper_model::Address;

use crate::names::{family_name, ip_text, scope_name, LinkNames};
use crate::wire::{RawAddr, RawLink};

/// Builds the model's addresses from one namespace's `RTM_GETADDR` dump, naming each
/// address's interface from `links`, the `RTM_GETLINK` dump of the same namespace.
///
/// Only IPv4 and IPv6 addresses are kept. They are ordered by ifindex and, within one
/// link, in the kernel's order (IPv4 before IPv6), as `ip addr` lists them.
pub fn addrs_from_dump(raw_addrs: Vec<RawAddr>, links: &[RawLink]) -> Vec<Address> {
    let names = LinkNames::new(links);
    let mut addrs: Vec<Address> = raw_addrs
        .iter()
        .filter_map(|raw| {
            let family = family_name(raw.family)?;
            // Like `ip`: IFA_LOCAL is the address, IFA_ADDRESS stands in when it is missing
            // (IPv6), and an IFA_ADDRESS that differs from IFA_LOCAL is the peer.
            let local = raw.local.as_deref().or(raw.address.as_deref())?;
            let peer = match (raw.local.as_deref(), raw.address.as_deref()) {
                (Some(local), Some(address)) if local != address => Some(ip_text(address)),
                _ => None,
            };
            Some(Address {
                ifindex: raw.ifindex,
                ifname: names.name(raw.ifindex),
                family: family.to_owned(),
                local: ip_text(local),
                prefixlen: raw.prefixlen,
                scope: scope_name(raw.scope),
                broadcast: raw.broadcast.as_deref().map(ip_text),
                label: raw
                    .label
                    .as_deref()
                    .map(|label| String::from_utf8_lossy(label).into_owned()),
                address: peer,
            })
        })
        .collect();
    addrs.sort_by_key(|a| a.ifindex);
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ifindex: u32, name: &[u8]) -> RawLink {
        RawLink {
            ifindex,
            ifname: name.into(),
            ..RawLink::default()
        }
    }

    #[test]
    fn local_falls_back_to_address_and_a_different_address_is_the_peer() {
        let links = [link(2, b"eth0"), link(3, b"tun0")];
        let v6 = {
            let mut bytes = [0u8; 16];
            bytes[..2].copy_from_slice(&[0xfe, 0x80]);
            bytes[15] = 1;
            bytes.to_vec()
        };
        let raw = vec![
            RawAddr {
                family: 2,
                prefixlen: 32,
                ifindex: 3,
                local: Some(vec![192, 0, 2, 1]),
                address: Some(vec![192, 0, 2, 2]),
                label: Some(b"tun0".to_vec()),
                ..RawAddr::default()
            },
            RawAddr {
                family: 10,
                prefixlen: 64,
                scope: 253,
                ifindex: 2,
                address: Some(v6),
                ..RawAddr::default()
            },
            RawAddr {
                family: 2,
                prefixlen: 24,
                ifindex: 2,
                local: Some(vec![10, 0, 0, 1]),
                address: Some(vec![10, 0, 0, 1]),
                broadcast: Some(vec![10, 0, 0, 255]),
                ..RawAddr::default()
            },
            // Neither address: nothing to report. Another family: not reported.
            RawAddr {
                family: 2,
                ifindex: 2,
                ..RawAddr::default()
            },
            RawAddr {
                family: 28,
                ifindex: 2,
                address: Some(vec![1, 2, 3]),
                ..RawAddr::default()
            },
        ];
        let addrs = addrs_from_dump(raw, &links);
        assert_eq!(addrs.len(), 3);
        assert_eq!(
            (
                addrs[0].local.as_str(),
                addrs[0].family.as_str(),
                addrs[0].scope.as_str()
            ),
            ("fe80::1", "inet6", "link")
        );
        assert_eq!(addrs[0].address, None);
        assert_eq!(addrs[1].local, "10.0.0.1");
        assert_eq!(addrs[1].address, None);
        assert_eq!(addrs[1].broadcast.as_deref(), Some("10.0.0.255"));
        assert_eq!(addrs[1].ifname.as_deref(), Some("eth0"));
        assert_eq!(addrs[2].local, "192.0.2.1");
        assert_eq!(addrs[2].address.as_deref(), Some("192.0.2.2"));
        assert_eq!(addrs[2].label.as_deref(), Some("tun0"));
        assert_eq!(addrs[2].scope, "global");
    }

    #[test]
    fn an_unknown_link_leaves_the_name_empty() {
        let raw = vec![RawAddr {
            family: 2,
            ifindex: 9,
            local: Some(vec![127, 0, 0, 1]),
            ..RawAddr::default()
        }];
        let addrs = addrs_from_dump(raw, &[]);
        assert_eq!(addrs[0].ifname, None);
        assert_eq!(addrs[0].ifindex, 9);
    }
}
