//! The route decoder against real kernel bytes: the RTM_GETROUTE dump (AF_UNSPEC, so every
//! family and every table) of the scene built by `scripts/capture-netlink-scene.sh` (see
//! `tests/data/README.md`), cross-checked against `ip -j route show table all` taken right
//! after it in the same namespace.

mod common;

use common::{datagrams, decoded, raw_links, GETROUTE};
use nshelper_netlink::routes::routes_from_dump;
use nshelper_netlink::wire::{
    decode_route, messages, RawRoute, NLMSG_DONE, RTM_F_CLONED, RTM_NEWROUTE,
};

fn raw_routes() -> Vec<RawRoute> {
    decoded(GETROUTE, RTM_NEWROUTE, decode_route)
}

#[test]
fn the_capture_is_thirty_seven_routes_then_done() {
    let datagrams = datagrams(GETROUTE);
    assert_eq!(
        datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
        [3336, 20]
    );
    let kinds: Vec<u16> = datagrams
        .iter()
        .flat_map(|d| messages(d).map(|m| m.unwrap().kind))
        .collect();
    assert_eq!(kinds.len(), 38);
    assert!(kinds[..37].iter().all(|&k| k == RTM_NEWROUTE));
    assert_eq!(kinds[37], NLMSG_DONE);
}

#[test]
fn both_families_and_every_table_come_back_and_nothing_is_a_cache_entry() {
    let routes = raw_routes();
    let families: Vec<u8> = routes.iter().map(|r| r.family).collect();
    assert_eq!(families.iter().filter(|&&f| f == 2).count(), 17);
    assert_eq!(families.iter().filter(|&&f| f == 10).count(), 20);
    // The kernel runs the IPv4 dump, then the IPv6 one.
    assert!(families.windows(2).all(|w| w[0] <= w[1]));
    let tables: std::collections::BTreeSet<u32> = routes.iter().map(|r| r.table).collect();
    assert_eq!(tables.into_iter().collect::<Vec<_>>(), [100, 254, 255]);
    assert!(routes.iter().all(|r| r.flags & RTM_F_CLONED == 0));
}

#[test]
fn attributes_of_the_routes_the_scene_added_are_decoded() {
    let routes = raw_routes();
    let find = |dst: &[u8], dst_len: u8| {
        routes
            .iter()
            .find(|r| r.dst.as_deref() == Some(dst) && r.dst_len == dst_len)
            .unwrap_or_else(|| panic!("no route to {dst:?}/{dst_len}"))
    };
    // `ip route add 10.9.0.0/24 via 10.0.0.3 dev vb table 100`
    let in_100 = find(&[10, 9, 0, 0], 24);
    assert_eq!(in_100.table, 100);
    assert_eq!(in_100.gateway.as_deref(), Some(&[10, 0, 0, 3][..]));
    assert_eq!(in_100.oif, Some(2));
    // `ip route add default via 10.0.0.2 dev vb`: no RTA_DST at all.
    let default = routes.iter().find(|r| r.dst.is_none()).unwrap();
    assert_eq!(
        (default.family, default.dst_len, default.table),
        (2, 0, 254)
    );
    assert_eq!(default.gateway.as_deref(), Some(&[10, 0, 0, 2][..]));
    assert_eq!(default.protocol, 3, "boot");
    // `ip route add 10.8.0.0/16 dev vb proto static metric 7 src 10.0.0.1`
    let static_route = find(&[10, 8, 0, 0], 16);
    assert_eq!(static_route.protocol, 4);
    assert_eq!(static_route.priority, Some(7));
    assert_eq!(static_route.prefsrc.as_deref(), Some(&[10, 0, 0, 1][..]));
    assert_eq!(static_route.scope, 253);
    // `ip route add 10.6.0.0/16 via inet6 fe80::1 dev vb`: RTA_VIA, no RTA_GATEWAY.
    let via = find(&[10, 6, 0, 0], 16);
    assert_eq!(via.gateway, None);
    let rtvia = via.via.as_ref().unwrap();
    assert_eq!(rtvia.family, 10);
    assert_eq!(rtvia.address[..2], [0xfe, 0x80]);
    assert_eq!(rtvia.address[15], 1);
    // Types: unreachable in table 100, blackhole, and an IPv6 prohibit the kernel gives lo.
    assert_eq!(find(&[203, 0, 113, 0], 24).route_type, 7);
    assert_eq!(find(&[198, 51, 100, 0], 24).route_type, 6);
    let prohibit = find(
        &[0x20, 1, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        48,
    );
    assert_eq!(
        (prohibit.route_type, prohibit.oif, prohibit.priority),
        (8, Some(1), Some(1024))
    );
}

/// What `ip -j route show table all` printed, with its omissions filled in (no `type` is
/// unicast, no `table` is main, no `protocol` is boot, no `scope` is global) and `dst` made
/// CIDR: family, dst, table, type, protocol, scope, gateway (or `via.host`), dev, metric,
/// prefsrc.
type IpRoute = (
    &'static str,
    &'static str,
    u32,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<u32>,
    Option<&'static str>,
);

#[rustfmt::skip]
const IP_SAYS: [IpRoute; 37] = [
    ("inet", "10.9.0.0/24", 100, "unicast", "boot", "global", Some("10.0.0.3"), Some("vb"), None, None),
    ("inet", "203.0.113.0/24", 100, "unreachable", "boot", "global", None, None, None, None),
    ("inet", "0.0.0.0/0", 254, "unicast", "boot", "global", Some("10.0.0.2"), Some("vb"), None, None),
    ("inet", "10.0.0.0/24", 254, "unicast", "kernel", "link", None, Some("vb"), None, Some("10.0.0.1")),
    ("inet", "10.0.1.0/24", 254, "unicast", "kernel", "link", None, Some("vb"), None, Some("10.0.1.1")),
    ("inet", "10.6.0.0/16", 254, "unicast", "boot", "global", Some("fe80::1"), Some("vb"), None, None),
    ("inet", "10.7.7.7/32", 254, "unicast", "200", "link", None, Some("vb"), None, None),
    ("inet", "10.8.0.0/16", 254, "unicast", "static", "link", None, Some("vb"), Some(7), Some("10.0.0.1")),
    ("inet", "198.51.100.0/24", 254, "blackhole", "boot", "global", None, None, None, None),
    ("inet", "10.0.0.1/32", 255, "local", "kernel", "host", None, Some("vb"), None, Some("10.0.0.1")),
    ("inet", "10.0.0.255/32", 255, "broadcast", "kernel", "link", None, Some("vb"), None, Some("10.0.0.1")),
    ("inet", "10.0.1.1/32", 255, "local", "kernel", "host", None, Some("vb"), None, Some("10.0.1.1")),
    ("inet", "10.0.1.255/32", 255, "broadcast", "kernel", "link", None, Some("vb"), None, Some("10.0.1.1")),
    ("inet", "127.0.0.0/8", 255, "local", "kernel", "host", None, Some("lo"), None, Some("127.0.0.1")),
    ("inet", "127.0.0.1/32", 255, "local", "kernel", "host", None, Some("lo"), None, Some("127.0.0.1")),
    ("inet", "127.255.255.255/32", 255, "broadcast", "kernel", "link", None, Some("lo"), None, Some("127.0.0.1")),
    ("inet", "192.0.2.1/32", 255, "local", "kernel", "host", None, Some("tun0"), None, Some("192.0.2.1")),
    ("inet6", "2001:db8::/64", 254, "unicast", "kernel", "global", None, Some("vb"), Some(256), None),
    ("inet6", "2001:db8:1::/48", 254, "unicast", "boot", "global", Some("2001:db8::2"), Some("vb"), Some(50), None),
    ("inet6", "2001:db8:2::/48", 254, "prohibit", "boot", "global", None, Some("lo"), Some(1024), None),
    ("inet6", "fe80::/64", 254, "unicast", "kernel", "global", None, Some("vb"), Some(256), None),
    ("inet6", "fe80::/64", 254, "unicast", "kernel", "global", None, Some("va"), Some(256), None),
    ("inet6", "fe80::/64", 254, "unicast", "kernel", "global", None, Some("mv0"), Some(256), None),
    ("inet6", "fe80::/64", 254, "unicast", "kernel", "global", None, Some("vx0"), Some(256), None),
    ("inet6", "fe80::/64", 254, "unicast", "kernel", "global", None, Some("br0"), Some(256), None),
    ("inet6", "::1/128", 255, "local", "kernel", "global", None, Some("lo"), Some(0), None),
    ("inet6", "2001:db8::1/128", 255, "local", "kernel", "global", None, Some("vb"), Some(0), None),
    ("inet6", "fe80::3ca0:10ff:fe2b:e2fd/128", 255, "local", "kernel", "global", None, Some("vb"), Some(0), None),
    ("inet6", "fe80::404c:d4ff:fef1:8f51/128", 255, "local", "kernel", "global", None, Some("mv0"), Some(0), None),
    ("inet6", "fe80::c471:90ff:fec5:dd5/128", 255, "local", "kernel", "global", None, Some("va"), Some(0), None),
    ("inet6", "fe80::c471:90ff:fec5:dd5/128", 255, "local", "kernel", "global", None, Some("br0"), Some(0), None),
    ("inet6", "fe80::c89c:8dff:fe91:fc18/128", 255, "local", "kernel", "global", None, Some("vx0"), Some(0), None),
    ("inet6", "ff00::/8", 255, "multicast", "kernel", "global", None, Some("vb"), Some(256), None),
    ("inet6", "ff00::/8", 255, "multicast", "kernel", "global", None, Some("va"), Some(256), None),
    ("inet6", "ff00::/8", 255, "multicast", "kernel", "global", None, Some("mv0"), Some(256), None),
    ("inet6", "ff00::/8", 255, "multicast", "kernel", "global", None, Some("vx0"), Some(256), None),
    ("inet6", "ff00::/8", 255, "multicast", "kernel", "global", None, Some("br0"), Some(256), None),
];

#[test]
fn the_model_matches_what_ip_printed_in_its_order() {
    let links = raw_links();
    let routes = routes_from_dump(raw_routes(), &links);
    assert_eq!(routes.len(), IP_SAYS.len());
    for (route, expected) in routes.iter().zip(IP_SAYS) {
        let (family, dst, table, route_type, protocol, scope, gateway, dev, metric, prefsrc) =
            expected;
        assert_eq!(route.dst, dst);
        assert_eq!(route.family, family, "{dst}");
        assert_eq!(route.table, table, "{dst}");
        assert_eq!(route.route_type, route_type, "{dst}");
        assert_eq!(route.protocol, protocol, "{dst}");
        assert_eq!(route.scope, scope, "{dst}");
        assert_eq!(route.gateway.as_deref(), gateway, "{dst}");
        assert_eq!(route.dev.as_deref(), dev, "{dst}");
        let oif = dev.map(|dev| {
            links
                .iter()
                .find(|l| l.ifname == dev.as_bytes())
                .unwrap()
                .ifindex
        });
        assert_eq!(route.oif, oif, "{dst}");
        assert_eq!(route.metric, metric, "{dst}");
        assert_eq!(route.prefsrc.as_deref(), prefsrc, "{dst}");
    }
}
