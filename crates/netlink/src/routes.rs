//! Turns raw route messages into the model: every table, both IP families.

use nshelper_model::{Nexthop, Route};

use crate::names::{
    family_name, ip_text, protocol_name, route_type_name, scope_name, LinkNames, AF_INET6,
};
use crate::wire::{RawLink, RawRoute, RTM_F_CLONED};

/// The all-zero address of a family, the destination of a default route.
fn unspecified(family: u8) -> &'static str {
    if family == AF_INET6 {
        "::"
    } else {
        "0.0.0.0"
    }
}

/// Builds the model's routes from one namespace's `RTM_GETROUTE` dump (every family, every
/// table), naming the output interface from `links`, the `RTM_GETLINK` dump of the same
/// namespace.
///
/// Only IPv4 and IPv6 routes are kept, in the kernel's order; route cache entries
/// (`RTM_F_CLONED`) are skipped. `dst` is always CIDR, also for default and host routes.
/// `gateway` is `RTA_GATEWAY`, or the address of `RTA_VIA` (a gateway of the other
/// family) when there is no `RTA_GATEWAY`. Multipath routes list their paths in `nexthops`; nexthop
/// objects (`RTA_NH_ID`) are reported without their nexthops: no gateway, no dev.
pub fn routes_from_dump(raw_routes: Vec<RawRoute>, links: &[RawLink]) -> Vec<Route> {
    let names = LinkNames::new(links);
    raw_routes
        .iter()
        .filter(|raw| raw.flags & RTM_F_CLONED == 0)
        .filter_map(|raw| {
            let family = family_name(raw.family)?;
            let dst = match raw.dst.as_deref() {
                Some(dst) => ip_text(dst),
                None => unspecified(raw.family).to_owned(),
            };
            let gateway = raw
                .gateway
                .as_deref()
                .map(ip_text)
                .or_else(|| raw.via.as_ref().map(|via| ip_text(&via.address)));
            Some(Route {
                family: family.to_owned(),
                dst: format!("{dst}/{}", raw.dst_len),
                table: raw.table,
                route_type: route_type_name(raw.route_type),
                protocol: protocol_name(raw.protocol),
                scope: scope_name(raw.scope),
                gateway,
                dev: raw.oif.and_then(|oif| names.name(oif)),
                oif: raw.oif,
                metric: raw.priority,
                prefsrc: raw.prefsrc.as_deref().map(ip_text),
                nexthops: (!raw.nexthops.is_empty()).then(|| {
                    raw.nexthops
                        .iter()
                        .map(|hop| Nexthop {
                            gateway: hop
                                .gateway
                                .as_deref()
                                .map(ip_text)
                                .or_else(|| hop.via.as_ref().map(|via| ip_text(&via.address))),
                            dev: names.name(hop.ifindex),
                            oif: hop.ifindex,
                            weight: u32::from(hop.hops) + 1,
                        })
                        .collect()
                }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::AF_INET;
    use crate::wire::RawVia;

    #[test]
    fn defaults_and_host_routes_are_cidr() {
        let links = [RawLink {
            ifindex: 2,
            ifname: b"eth0".as_slice().into(),
            ..RawLink::default()
        }];
        let raw = vec![
            RawRoute {
                family: AF_INET,
                table: 254,
                protocol: 3,
                route_type: 1,
                oif: Some(2),
                gateway: Some(vec![10, 0, 0, 2]),
                ..RawRoute::default()
            },
            RawRoute {
                family: AF_INET6,
                table: 254,
                route_type: 1,
                priority: Some(1024),
                ..RawRoute::default()
            },
            RawRoute {
                family: AF_INET,
                dst_len: 32,
                dst: Some(vec![10, 0, 0, 1]),
                table: 255,
                route_type: 2,
                scope: 254,
                protocol: 2,
                oif: Some(7),
                prefsrc: Some(vec![10, 0, 0, 1]),
                ..RawRoute::default()
            },
            RawRoute {
                family: AF_INET,
                dst_len: 16,
                dst: Some(vec![10, 6, 0, 0]),
                table: 254,
                route_type: 1,
                via: Some(RawVia {
                    family: 10,
                    address: {
                        let mut a = vec![0u8; 16];
                        a[0] = 0xfe;
                        a[1] = 0x80;
                        a[15] = 1;
                        a
                    },
                }),
                ..RawRoute::default()
            },
            // A cache entry and an MPLS route: neither is reported.
            RawRoute {
                family: AF_INET,
                flags: RTM_F_CLONED,
                ..RawRoute::default()
            },
            RawRoute {
                family: 28,
                ..RawRoute::default()
            },
        ];
        let routes = routes_from_dump(raw, &links);
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[0].dst, "0.0.0.0/0");
        assert_eq!(routes[0].gateway.as_deref(), Some("10.0.0.2"));
        assert_eq!(routes[0].dev.as_deref(), Some("eth0"));
        assert_eq!(routes[0].protocol, "boot");
        assert_eq!(routes[0].route_type, "unicast");
        assert_eq!(routes[0].scope, "global");
        assert_eq!(routes[1].dst, "::/0");
        assert_eq!(routes[1].family, "inet6");
        assert_eq!(routes[1].metric, Some(1024));
        assert_eq!(routes[1].protocol, "unspec");
        assert_eq!(routes[2].dst, "10.0.0.1/32");
        assert_eq!(
            (
                routes[2].route_type.as_str(),
                routes[2].scope.as_str(),
                routes[2].table
            ),
            ("local", "host", 255)
        );
        assert_eq!((routes[2].oif, routes[2].dev.as_deref()), (Some(7), None));
        assert_eq!(routes[2].prefsrc.as_deref(), Some("10.0.0.1"));
        assert_eq!(routes[3].gateway.as_deref(), Some("fe80::1"));
    }
}
