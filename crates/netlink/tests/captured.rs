//! The link decoder against real kernel bytes: one RTM_GETLINK dump captured from a scene
//! built by `scripts/capture-netlink-scene.sh` (see `tests/data/README.md`).
//!
//! Every expected value below was read from that capture and cross-checked against
//! `ip -s -j -d link` output that was taken right after it in the same namespace.

mod common;

use std::collections::BTreeSet;

use common::{align4, datagrams, payloads, GETLINK};
use nshelper_model::{LinkStats, RxStats, TxStats};
use nshelper_netlink::links::links_from_dump;
use nshelper_netlink::wire::{
    attributes, decode_link, messages, RawLink, IFLA_INFO_KIND, IFLA_LINKINFO, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_DUMP_INTR, RTM_NEWLINK,
};

/// Any inode will do: `links_from_dump` only copies it into same-namespace veth peers.
const NETNS_INODE: u64 = 4026532999;

const NLM_F_MULTI: u16 = 0x2;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 65534;

/// The name of the veth that is not valid UTF-8.
const NOT_UTF8: &[u8] = b"v\xff";

/// The decoded links of the dump, in the order the kernel sent them.
fn raw_links() -> Vec<RawLink> {
    payloads(GETLINK, RTM_NEWLINK)
        .into_iter()
        .map(|payload| decode_link(payload).unwrap())
        .collect()
}

fn by_name<'a>(links: &'a [RawLink], name: &[u8]) -> &'a RawLink {
    links
        .iter()
        .find(|l| l.ifname == name)
        .unwrap_or_else(|| panic!("no link named {:?}", String::from_utf8_lossy(name)))
}

#[test]
fn the_capture_is_three_datagrams_of_well_formed_messages() {
    let datagrams = datagrams(GETLINK);
    assert_eq!(
        datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
        [2960, 12984, 20]
    );

    let mut counts = Vec::new();
    let mut kinds = Vec::new();
    let mut ports = BTreeSet::new();
    for datagram in &datagrams {
        let parsed: Vec<_> = messages(datagram)
            .collect::<Result<_, _>>()
            .expect("no malformed message in the capture");
        // The messages tile the datagram exactly, each padded to 4 bytes.
        let consumed: usize = parsed
            .iter()
            .map(|m| align4(NLMSG_HDRLEN + m.payload.len()))
            .sum();
        assert_eq!(consumed, datagram.len());
        for message in &parsed {
            assert_eq!(message.seq, 1, "the request's sequence number");
            assert_eq!(message.flags & NLM_F_MULTI, NLM_F_MULTI);
            assert_eq!(message.flags & NLM_F_DUMP_INTR, 0, "dump not interrupted");
            assert_ne!(message.kind, NLMSG_ERROR);
            ports.insert(message.port);
            kinds.push(message.kind);
        }
        counts.push(parsed.len());
    }
    // Several messages share one datagram; NLMSG_DONE comes alone, last.
    assert_eq!(counts, [2, 8, 1]);
    assert_eq!(
        ports.len(),
        1,
        "every reply goes to the one requesting port"
    );
    assert_ne!(ports.first(), Some(&0));
    let (last, links) = kinds.split_last().unwrap();
    assert_eq!(*last, NLMSG_DONE);
    assert!(links.iter().all(|&k| k == RTM_NEWLINK));

    let done = messages(datagrams[2]).next().unwrap().unwrap();
    assert_eq!(done.payload.len(), 4);
    assert_eq!(done.error_code(), Ok(0));
}

#[test]
fn every_link_message_decodes_and_every_attribute_is_well_formed() {
    for payload in payloads(GETLINK, RTM_NEWLINK) {
        decode_link(payload).unwrap();
        for attribute in attributes(&payload[16..]) {
            let attribute = attribute.unwrap();
            if attribute.kind == IFLA_LINKINFO {
                let nested: Vec<_> = attributes(attribute.payload)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert!(nested.iter().any(|a| a.kind == IFLA_INFO_KIND));
            }
        }
    }
}

#[test]
fn the_dump_holds_exactly_the_scene_including_a_name_that_is_not_utf8() {
    let links = raw_links();
    let names: Vec<(u32, &[u8])> = links.iter().map(|l| (l.ifindex, &*l.ifname)).collect();
    // ifindex 8 is the veth end that was moved to the other namespace.
    assert_eq!(
        names,
        [
            (1, &b"lo"[..]),
            (2, b"vb"),
            (3, b"va"),
            (4, b"br0"),
            (5, b"mv0"),
            (6, b"vx0"),
            (7, b"tun0"),
            (9, b"vhost"),
            (10, b"vz"),
            (11, NOT_UTF8),
        ]
    );
    assert!(std::str::from_utf8(&by_name(&links, NOT_UTF8).ifname).is_err());
}

#[test]
fn kinds_and_link_layer_types_are_as_built() {
    let links = raw_links();
    // (name, IFLA_INFO_KIND, ifi_type)
    type Expected = (&'static [u8], Option<&'static [u8]>, u16);
    let expected: [Expected; 10] = [
        (b"lo", None, ARPHRD_LOOPBACK),
        (b"vb", Some(b"veth"), ARPHRD_ETHER),
        (b"va", Some(b"veth"), ARPHRD_ETHER),
        (b"br0", Some(b"bridge"), ARPHRD_ETHER),
        (b"mv0", Some(b"macvlan"), ARPHRD_ETHER),
        (b"vx0", Some(b"vxlan"), ARPHRD_ETHER),
        (b"tun0", Some(b"tun"), ARPHRD_NONE),
        (b"vhost", Some(b"veth"), ARPHRD_ETHER),
        (b"vz", Some(b"veth"), ARPHRD_ETHER),
        (NOT_UTF8, Some(b"veth"), ARPHRD_ETHER),
    ];
    for (name, kind, arp_type) in expected {
        let link = by_name(&links, name);
        assert_eq!(link.kind.as_deref(), kind, "{name:?}");
        assert_eq!(link.arp_type, arp_type, "{name:?}");
    }
}

#[test]
fn masters_lower_links_and_netnsids_point_where_the_scene_put_them() {
    let links = raw_links();
    let index = |name: &[u8]| by_name(&links, name).ifindex;
    let (vb, va, br0, vz, not_utf8) = (
        index(b"vb"),
        index(b"va"),
        index(b"br0"),
        index(b"vz"),
        index(NOT_UTF8),
    );

    // Only va is enslaved, to br0.
    for link in &links {
        let expected = (link.ifname == b"va").then_some(br0);
        assert_eq!(link.master, expected, "{:?}", link.ifname);
    }

    // IFLA_LINK: veth peers, and the macvlan's lower device.
    assert_eq!(by_name(&links, b"va").link, Some(vb));
    assert_eq!(by_name(&links, b"vb").link, Some(va));
    assert_eq!(by_name(&links, b"vz").link, Some(not_utf8));
    assert_eq!(by_name(&links, NOT_UTF8).link, Some(vz));
    assert_eq!(by_name(&links, b"mv0").link, Some(vb));
    // A vxlan sends no IFLA_LINK: its `dev vb` travels as IFLA_VXLAN_LINK inside
    // IFLA_INFO_DATA (`ip` shows it as info_data.link).
    assert_eq!(by_name(&links, b"vx0").link, None);
    assert_eq!(by_name(&links, b"vx0").vxlan_link, Some(vb));
    for link in links.iter().filter(|l| l.ifname != b"vx0") {
        assert_eq!(link.vxlan_link, None, "{:?}", link.ifname);
    }
    for name in [&b"lo"[..], b"br0", b"tun0"] {
        assert_eq!(by_name(&links, name).link, None, "{name:?}");
    }

    // The veth whose peer was moved: the peer's index is in the other namespace, which this
    // one numbers 0, and is the gap in this namespace's indexes.
    let vhost = by_name(&links, b"vhost");
    assert_eq!((vhost.link, vhost.link_netnsid), (Some(8), Some(0)));
    assert!(links.iter().all(|l| l.ifindex != 8));
    for link in links.iter().filter(|l| l.ifname != b"vhost") {
        assert_eq!(link.link_netnsid, None, "{:?}", link.ifname);
    }
}

#[test]
fn mtus_operstates_and_addresses_are_decoded() {
    let links = raw_links();
    let lo = by_name(&links, b"lo");
    assert_eq!(lo.address.as_deref(), Some(&[0u8; 6][..]));
    assert_eq!(lo.broadcast.as_deref(), Some(&[0u8; 6][..]));
    assert_eq!(lo.mtu, Some(65536));
    assert_eq!(by_name(&links, b"vx0").mtu, Some(1450));
    assert_eq!(by_name(&links, b"tun0").address, None);
    assert_eq!(by_name(&links, b"tun0").broadcast, None);
    // A bridge takes the address of its only port.
    assert_eq!(
        by_name(&links, b"br0").address,
        by_name(&links, b"va").address
    );
    for link in &links {
        assert!(link.operstate.is_some(), "{:?}", link.ifname);
        if !matches!(&link.ifname[..], b"tun0" | b"lo") {
            assert_eq!(link.address.as_deref().map(<[u8]>::len), Some(6));
            assert_eq!(link.broadcast.as_deref(), Some(&[0xff; 6][..]));
        }
        if !matches!(&link.ifname[..], b"lo" | b"vx0") {
            assert_eq!(link.mtu, Some(1500), "{:?}", link.ifname);
        }
    }
}

#[test]
fn aliases_alternative_names_and_queue_lengths_are_decoded() {
    let links = raw_links();
    let va = by_name(&links, b"va");
    assert_eq!(va.alias.as_deref(), Some(&b"uplink to br0"[..]));
    assert_eq!(va.altnames, [b"va-alt".to_vec()]);
    for link in links.iter().filter(|l| l.ifname != b"va") {
        assert_eq!(link.alias, None, "{:?}", link.ifname);
        assert!(link.altnames.is_empty(), "{:?}", link.ifname);
    }
    // `ip link set vb txqlen 500`; a tun device starts with 500; everything else with 1000.
    for link in &links {
        let expected = if matches!(&link.ifname[..], b"vb" | b"tun0") {
            500
        } else {
            1000
        };
        assert_eq!(link.txqlen, Some(expected), "{:?}", link.ifname);
    }
}

#[test]
fn every_link_carries_stats64_and_the_counters_are_the_kernels() {
    let links = raw_links();
    assert!(links.iter().all(|l| l.stats64.is_some()));
    let vb = by_name(&links, b"vb").stats64.unwrap();
    let va = by_name(&links, b"va").stats64.unwrap();
    assert_eq!(
        (vb.rx_packets, vb.tx_packets, vb.rx_bytes, vb.tx_bytes),
        (14, 13, 1220, 1202)
    );
    // The two ends of a veth see each other's traffic.
    assert_eq!(
        (va.rx_packets, va.tx_packets, va.rx_bytes, va.tx_bytes),
        (vb.tx_packets, vb.rx_packets, vb.tx_bytes, vb.rx_bytes)
    );
    assert_eq!(by_name(&links, b"br0").stats64.unwrap().multicast, 13);
    // The vxlan has no remote, so everything it sent was dropped.
    let vx0 = by_name(&links, b"vx0").stats64.unwrap();
    assert_eq!((vx0.tx_packets, vx0.tx_dropped), (0, 6));
    assert_eq!(by_name(&links, b"lo").stats64.unwrap(), Default::default());
}

/// What `ip -s -j -d link` printed for the same scene: ifindex, name, flags, operstate,
/// address, mtu.
type IpLine = (
    u32,
    &'static [u8],
    &'static [&'static str],
    &'static str,
    Option<&'static str>,
    u32,
);

#[rustfmt::skip]
const IP_SAYS: [IpLine; 10] = [
    (1, b"lo", &["LOOPBACK", "UP", "LOWER_UP"], "UNKNOWN", Some("00:00:00:00:00:00"), 65536),
    (2, b"vb", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("3e:a0:10:2b:e2:fd"), 1500),
    (3, b"va", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("c6:71:90:c5:0d:d5"), 1500),
    (4, b"br0", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("c6:71:90:c5:0d:d5"), 1500),
    (5, b"mv0", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("42:4c:d4:f1:8f:51"), 1500),
    (6, b"vx0", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UNKNOWN", Some("ca:9c:8d:91:fc:18"), 1450),
    (7, b"tun0", &["POINTOPOINT", "MULTICAST", "NOARP"], "DOWN", None, 1500),
    (9, b"vhost", &["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"], "DOWN", Some("3a:c3:c5:54:86:6e"), 1500),
    (10, b"vz", &["BROADCAST", "MULTICAST"], "DOWN", Some("d6:73:a3:20:9e:73"), 1500),
    (11, b"v\xff", &["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "M-DOWN"], "LOWERLAYERDOWN", Some("8a:bf:04:01:c9:3f"), 1500),
];

/// More of what `ip -s -j -d link` printed: txqlen, link_type, broadcast, `link` (the
/// parent's name; for the vxlan, `linkinfo.info_data.link`), ifalias, altnames.
type IpMore = (
    &'static str,
    u32,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
);

const BCAST: Option<&str> = Some("ff:ff:ff:ff:ff:ff");

#[rustfmt::skip]
const IP_SAYS_MORE: [IpMore; 10] = [
    ("lo", 1000, "loopback", Some("00:00:00:00:00:00"), None, None, &[]),
    ("vb", 500, "ether", BCAST, Some("va"), None, &[]),
    ("va", 1000, "ether", BCAST, Some("vb"), Some("uplink to br0"), &["va-alt"]),
    ("br0", 1000, "ether", BCAST, None, None, &[]),
    ("mv0", 1000, "ether", BCAST, Some("vb"), None, &[]),
    ("vx0", 1000, "ether", BCAST, Some("vb"), None, &[]),
    ("tun0", 500, "none", None, None, None, &[]),
    ("vhost", 1000, "ether", BCAST, None, None, &[]),
    ("vz", 1000, "ether", BCAST, Some("v\u{fffd}"), None, &[]),
    ("v\u{fffd}", 1000, "ether", BCAST, Some("vz"), None, &[]),
];

/// `stats64` as `ip -s -j link` printed it: rx bytes, packets, errors, dropped,
/// over_errors, multicast; tx bytes, packets, errors, dropped, carrier_errors, collisions.
#[rustfmt::skip]
const IP_STATS: [(&str, [u64; 6], [u64; 6]); 10] = [
    ("lo", [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]),
    ("vb", [1220, 14, 0, 0, 0, 0], [1202, 13, 0, 0, 0, 0]),
    ("va", [1202, 13, 0, 0, 0, 0], [1220, 14, 0, 0, 0, 0]),
    ("br0", [1020, 13, 0, 0, 0, 13], [704, 8, 0, 0, 0, 0]),
    ("mv0", [0, 0, 0, 0, 0, 0], [516, 6, 0, 0, 0, 0]),
    ("vx0", [0, 0, 0, 0, 0, 0], [0, 0, 0, 6, 0, 0]),
    ("tun0", [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]),
    ("vhost", [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]),
    ("vz", [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]),
    ("v\u{fffd}", [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]),
];

#[test]
fn the_model_matches_what_ip_printed_for_the_same_scene() {
    let links = links_from_dump(raw_links(), NETNS_INODE, false);
    assert_eq!(links.len(), IP_SAYS.len());
    for (link, (ifindex, name, flags, operstate, address, mtu)) in links.iter().zip(IP_SAYS) {
        assert_eq!(link.ifindex, ifindex);
        assert_eq!(
            link.ifname,
            String::from_utf8_lossy(name),
            "ifindex {ifindex}"
        );
        assert_eq!(link.flags, flags, "{}", link.ifname);
        assert_eq!(
            link.operstate.as_deref(),
            Some(operstate),
            "{}",
            link.ifname
        );
        assert_eq!(link.address.as_deref(), address, "{}", link.ifname);
        assert_eq!(link.mtu, Some(mtu), "{}", link.ifname);
    }
}

#[test]
fn the_new_link_fields_match_what_ip_printed_for_the_same_scene() {
    let links = links_from_dump(raw_links(), NETNS_INODE, false);
    let name_of = |ifindex: u32| {
        links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .map(|l| l.ifname.as_str())
    };
    for (link, expected) in links.iter().zip(IP_SAYS_MORE) {
        let (name, txqlen, link_type, broadcast, parent, alias, altnames) = expected;
        assert_eq!(link.ifname, name);
        assert_eq!(link.txqlen, Some(txqlen), "{name}");
        assert_eq!(link.link_type, link_type, "{name}");
        assert_eq!(link.broadcast.as_deref(), broadcast, "{name}");
        assert_eq!(link.link.and_then(name_of), parent, "{name}");
        assert_eq!(link.alias.as_deref(), alias, "{name}");
        assert_eq!(link.altnames, altnames, "{name}");
        assert_eq!(link.stats64, None, "{name}: not asked for");
    }
    // The veth whose peer is in another namespace has no parent here, though it has an
    // IFLA_LINK.
    let vhost = links.iter().find(|l| l.ifname == "vhost").unwrap();
    assert_eq!((vhost.link, vhost.link_index), (None, Some(8)));
}

#[test]
fn stats_match_what_ip_printed_when_asked_for() {
    let links = links_from_dump(raw_links(), NETNS_INODE, true);
    for (link, (name, rx, tx)) in links.iter().zip(IP_STATS) {
        assert_eq!(link.ifname, name);
        let expected = LinkStats {
            rx: RxStats {
                bytes: rx[0],
                packets: rx[1],
                errors: rx[2],
                dropped: rx[3],
                over_errors: rx[4],
                multicast: rx[5],
            },
            tx: TxStats {
                bytes: tx[0],
                packets: tx[1],
                errors: tx[2],
                dropped: tx[3],
                carrier_errors: tx[4],
                collisions: tx[5],
            },
        };
        assert_eq!(link.stats64.as_ref(), Some(&expected), "{name}");
    }
}

#[test]
fn the_model_names_peers_and_keeps_the_name_that_is_not_utf8() {
    let links = links_from_dump(raw_links(), NETNS_INODE, false);
    let find = |name: &str| {
        links
            .iter()
            .find(|l| l.ifname == name)
            .unwrap_or_else(|| panic!("no link {name}"))
    };
    let lossy = "v\u{fffd}";

    let lo = find("lo");
    assert_eq!(lo.flags, ["LOOPBACK", "UP", "LOWER_UP"]);
    assert_eq!(lo.address.as_deref(), Some("00:00:00:00:00:00"));
    assert_eq!(lo.kind, None);

    // Same-namespace veth pairs name each other, in the namespace passed in.
    for (name, peer_name) in [("va", "vb"), ("vb", "va")] {
        let peer = find(name).peer.as_ref().expect("a veth has a peer");
        assert_eq!(peer.ifindex, find(peer_name).ifindex);
        assert_eq!(peer.netns, Some(NETNS_INODE));
        assert_eq!(peer.ifname.as_deref(), Some(peer_name));
        assert_eq!(peer.ifname_hex, None);
    }

    let not_utf8 = find(lossy);
    assert_eq!(not_utf8.ifname_hex.as_deref(), Some("76ff"));
    let vz = find("vz");
    assert_eq!(vz.ifname_hex, None);
    let peer = vz.peer.as_ref().unwrap();
    assert_eq!(peer.ifindex, not_utf8.ifindex);
    assert_eq!(peer.netns, Some(NETNS_INODE));
    assert_eq!(peer.ifname.as_deref(), Some(lossy));
    assert_eq!(peer.ifname_hex.as_deref(), Some("76ff"));
    let peer = not_utf8.peer.as_ref().unwrap();
    assert_eq!(
        (peer.ifindex, peer.ifname.as_deref()),
        (vz.ifindex, Some("vz"))
    );

    // The peer in another namespace is known only by its index there and an nsid.
    let vhost = find("vhost");
    assert_eq!(vhost.link_netnsid, Some(0));
    assert_eq!(vhost.link_index, Some(8));
    let peer = vhost.peer.as_ref().unwrap();
    assert_eq!(
        (peer.ifindex, peer.netns, peer.ifname.as_deref()),
        (8, None, None)
    );

    assert_eq!(find("va").master, Some(find("br0").ifindex));
    assert_eq!(find("mv0").link_index, Some(find("vb").ifindex));
    for name in ["lo", "br0", "mv0", "vx0", "tun0"] {
        assert_eq!(find(name).peer, None, "{name}");
    }
    for link in links.iter().filter(|l| l.ifname != lossy) {
        assert_eq!(link.ifname_hex, None, "{}", link.ifname);
    }
}
