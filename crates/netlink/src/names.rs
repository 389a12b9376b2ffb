//! Names and text forms shared by addresses, routes and neighbours, as iproute2 6.1 prints
//! them.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use nshelper_model::name_from_bytes;

use crate::wire::RawLink;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// `inet` or `inet6`; `None` for the families nshelper does not report.
pub fn family_name(family: u8) -> Option<&'static str> {
    match family {
        AF_INET => Some("inet"),
        AF_INET6 => Some("inet6"),
        _ => None,
    }
}

/// An IP address as text. The length decides, not the family, so that a payload of the
/// wrong size is shown as colon-separated hex rather than misread.
pub fn ip_text(bytes: &[u8]) -> String {
    if let Ok(octets) = <[u8; 4]>::try_from(bytes) {
        return Ipv4Addr::from(octets).to_string();
    }
    if let Ok(octets) = <[u8; 16]>::try_from(bytes) {
        return Ipv6Addr::from(octets).to_string();
    }
    colon_hex(bytes)
}

/// Bytes as `ip` prints a link-layer address: two hex digits each, colon-separated.
pub fn colon_hex(bytes: &[u8]) -> String {
    // Every link has two of these: the formatting machinery was a measurable share of
    // decoding a namespace with thousands of links.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// A scope as `rtnl_rtscope_n2a` names it, with iproute2's stock `rt_scopes`: 0 (the
/// kernel's "universe") is `global`; a scope without a name is its number.
pub fn scope_name(scope: u8) -> String {
    match scope {
        0 => "global".to_owned(),
        200 => "site".to_owned(),
        253 => "link".to_owned(),
        254 => "host".to_owned(),
        255 => "nowhere".to_owned(),
        other => other.to_string(),
    }
}

/// A route type as `rtnl_rtntype_n2a` names it; a type without a name is its number.
pub fn route_type_name(route_type: u8) -> String {
    let name = match route_type {
        0 => "none",
        1 => "unicast",
        2 => "local",
        3 => "broadcast",
        4 => "anycast",
        5 => "multicast",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        9 => "throw",
        10 => "nat",
        11 => "xresolve",
        other => return other.to_string(),
    };
    name.to_owned()
}

/// A route protocol as iproute2 6.1's `rtnl_rtprot_n2a` names it with the `rt_protos` file
/// iproute2 ships (its built-in names plus 99 `openr`); a protocol without a name is its
/// number. Names a local administrator adds to `/etc/iproute2/rt_protos` or
/// `rt_protos.d/` are not known here.
pub fn protocol_name(protocol: u8) -> String {
    let name = match protocol {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        other => return other.to_string(),
    };
    name.to_owned()
}

/// What addresses, routes and neighbours need to know of the links of the same
/// namespace: the name, and the hardware type that decides how link-layer addresses read.
pub(crate) struct LinkNames<'a> {
    by_index: HashMap<u32, &'a RawLink>,
}

impl<'a> LinkNames<'a> {
    pub(crate) fn new(links: &'a [RawLink]) -> Self {
        LinkNames {
            by_index: links.iter().map(|l| (l.ifindex, l)).collect(),
        }
    }

    /// The link's name as text (bytes that are not UTF-8 become U+FFFD), if it is known.
    pub(crate) fn name(&self, ifindex: u32) -> Option<String> {
        self.by_index
            .get(&ifindex)
            .map(|link| name_from_bytes(&link.ifname).0)
    }

    /// The link's `ARPHRD_*` type, or 0 when the link is unknown.
    pub(crate) fn arp_type(&self, ifindex: u32) -> u16 {
        self.by_index.get(&ifindex).map_or(0, |link| link.arp_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(colon_hex(&[0x0a, 0xff, 0x00, 0x9c]), "0a:ff:00:9c");
        assert_eq!(colon_hex(&[]), "");
    }

    #[test]
    fn addresses_read_by_length() {
        assert_eq!(ip_text(&[10, 0, 0, 1]), "10.0.0.1");
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[15] = 1;
        assert_eq!(ip_text(&v6), "2001::1");
        assert_eq!(ip_text(&[1, 2, 0xab]), "01:02:ab");
        assert_eq!(ip_text(&[]), "");
    }

    #[test]
    fn names_fall_back_to_numbers() {
        assert_eq!(scope_name(0), "global");
        assert_eq!(scope_name(253), "link");
        assert_eq!(scope_name(7), "7");
        assert_eq!(route_type_name(1), "unicast");
        assert_eq!(route_type_name(0), "none");
        assert_eq!(route_type_name(12), "12");
        assert_eq!(protocol_name(3), "boot");
        assert_eq!(protocol_name(186), "bgp");
        assert_eq!(protocol_name(99), "openr");
        assert_eq!(protocol_name(17), "17");
        assert_eq!(protocol_name(200), "200");
        assert_eq!(family_name(2), Some("inet"));
        assert_eq!(family_name(10), Some("inet6"));
        assert_eq!(family_name(7), None);
    }
}
