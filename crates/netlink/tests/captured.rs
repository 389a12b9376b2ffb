//! The decoder against real kernel bytes: one RTM_GETLINK dump captured from a scene built by
//! `scripts/capture-netlink-scene.sh` (see `tests/data/README.md`).
//!
//! Every expected value below was read from that capture and cross-checked against
//! `ip -j -d link` output that was taken at the same moment in the same namespace.

use std::collections::BTreeSet;

use nshelper_netlink::links::links_from_dump;
use nshelper_netlink::wire::{
    attributes, decode_link, messages, RawLink, WireError, IFLA_INFO_KIND, IFLA_LINKINFO,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_DUMP_INTR, RTM_NEWLINK,
};

/// Datagrams, each framed as a little-endian u32 length and that many bytes.
const CAPTURE: &[u8] = include_bytes!("data/getlink-scene.bin");

/// Any inode will do: `links_from_dump` only copies it into same-namespace veth peers.
const NETNS_INODE: u64 = 4026532999;

const NLM_F_MULTI: u16 = 0x2;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 65534;

/// The name of the veth that is not valid UTF-8.
const NOT_UTF8: &[u8] = b"v\xff";

fn datagrams() -> Vec<&'static [u8]> {
    let mut rest = CAPTURE;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        assert!(len <= tail.len(), "capture framing is cut short");
        let (datagram, tail) = tail.split_at(len);
        out.push(datagram);
        rest = tail;
    }
    out
}

/// The decoded links of the dump, in the order the kernel sent them; stops at NLMSG_DONE.
fn raw_links() -> Vec<RawLink> {
    let mut links = Vec::new();
    for datagram in datagrams() {
        for message in messages(datagram) {
            let message = message.expect("every captured message is well-formed");
            match message.kind {
                NLMSG_DONE => return links,
                RTM_NEWLINK => links.push(decode_link(message.payload).unwrap()),
                other => panic!("unexpected message type {other}"),
            }
        }
    }
    panic!("the capture has no NLMSG_DONE");
}

fn by_name<'a>(links: &'a [RawLink], name: &[u8]) -> &'a RawLink {
    links
        .iter()
        .find(|l| l.ifname == name)
        .unwrap_or_else(|| panic!("no link named {:?}", String::from_utf8_lossy(name)))
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

#[test]
fn the_capture_is_three_datagrams_of_well_formed_messages() {
    let datagrams = datagrams();
    assert_eq!(
        datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
        [2960, 12948, 20]
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
    for datagram in datagrams() {
        for message in messages(datagram) {
            let message = message.unwrap();
            if message.kind != RTM_NEWLINK {
                continue;
            }
            decode_link(message.payload).unwrap();
            for attribute in attributes(&message.payload[16..]) {
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
}

#[test]
fn the_dump_holds_exactly_the_scene_including_a_name_that_is_not_utf8() {
    let links = raw_links();
    let names: Vec<(u32, &[u8])> = links
        .iter()
        .map(|l| (l.ifindex, l.ifname.as_slice()))
        .collect();
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
    // IFLA_INFO_DATA, which decode_link does not read (`ip` shows it as info_data.link).
    assert_eq!(by_name(&links, b"vx0").link, None);
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
    assert_eq!(lo.mtu, Some(65536));
    assert_eq!(by_name(&links, b"vx0").mtu, Some(1450));
    assert_eq!(by_name(&links, b"tun0").address, None);
    // A bridge takes the address of its only port.
    assert_eq!(
        by_name(&links, b"br0").address,
        by_name(&links, b"va").address
    );
    for link in &links {
        assert!(link.operstate.is_some(), "{:?}", link.ifname);
        if link.ifname != b"tun0" {
            assert_eq!(link.address.as_ref().map(Vec::len), Some(6));
        }
        if !matches!(&link.ifname[..], b"lo" | b"vx0") {
            assert_eq!(link.mtu, Some(1500), "{:?}", link.ifname);
        }
    }
}

/// What `ip -j -d link` printed for the same scene: ifindex, name, flags, operstate,
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
    (2, b"vb", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("f6:64:30:f5:0a:3d"), 1500),
    (3, b"va", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("ae:e7:2a:9d:47:25"), 1500),
    (4, b"br0", &["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "DOWN", Some("ae:e7:2a:9d:47:25"), 1500),
    (5, b"mv0", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UP", Some("6a:89:28:d4:f9:d3"), 1500),
    (6, b"vx0", &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "UNKNOWN", Some("2a:a3:ab:3c:c7:ea"), 1450),
    (7, b"tun0", &["POINTOPOINT", "MULTICAST", "NOARP"], "DOWN", None, 1500),
    (9, b"vhost", &["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"], "DOWN", Some("fe:0d:ac:a4:75:67"), 1500),
    (10, b"vz", &["BROADCAST", "MULTICAST"], "DOWN", Some("da:dd:8d:f6:ad:e5"), 1500),
    (11, b"v\xff", &["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "M-DOWN"], "LOWERLAYERDOWN", Some("46:d3:d0:cd:d0:39"), 1500),
];

#[test]
fn the_model_matches_what_ip_printed_for_the_same_scene() {
    let links = links_from_dump(raw_links(), NETNS_INODE);
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
fn the_model_names_peers_and_keeps_the_name_that_is_not_utf8() {
    let links = links_from_dump(raw_links(), NETNS_INODE);
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

// Robustness: damaged copies of real bytes must give errors, never panics.

/// Runs everything the crate offers over one datagram, the way the socket code would.
/// Returns how many items `messages` yielded.
fn parse_everything(datagram: &[u8]) -> usize {
    let mut raw = Vec::new();
    let mut items = 0;
    for message in messages(datagram) {
        items += 1;
        assert!(items <= datagram.len() / NLMSG_HDRLEN + 1, "messages loops");
        let Ok(message) = message else { continue };
        let _ = message.error_code();
        if message.kind == RTM_NEWLINK {
            if let Ok(link) = decode_link(message.payload) {
                raw.push(link);
            }
        }
    }
    let _ = links_from_dump(raw, NETNS_INODE);
    items
}

/// Offsets in `datagram` where each message starts, and the datagram's end.
fn message_boundaries(datagram: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut boundaries = vec![0];
    for message in messages(datagram) {
        at += align4(NLMSG_HDRLEN + message.unwrap().payload.len());
        boundaries.push(at);
    }
    boundaries
}

#[test]
fn every_prefix_of_every_datagram_parses_up_to_the_cut_and_then_fails() {
    for datagram in datagrams() {
        let boundaries = message_boundaries(datagram);
        for cut in 0..=datagram.len() {
            let prefix = &datagram[..cut];
            parse_everything(prefix);
            let parsed: Vec<_> = messages(prefix).collect();
            let whole = boundaries.iter().filter(|&&b| b > 0 && b <= cut).count();
            let oks = parsed.iter().take_while(|m| m.is_ok()).count();
            assert_eq!(oks, whole, "cut at {cut}");
            if boundaries.contains(&cut) {
                assert_eq!(parsed.len(), whole, "cut at {cut}");
            } else {
                assert_eq!(parsed.len(), whole + 1, "cut at {cut}");
                let error = parsed.last().unwrap().as_ref().unwrap_err();
                let left = cut - boundaries[whole];
                if left < 4 {
                    assert_eq!(*error, WireError::ShortHeader(left));
                } else {
                    assert!(
                        matches!(error, WireError::BadMessageLength { available, .. } if *available == left),
                        "cut at {cut}: {error:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_prefix_of_every_link_payload_decodes_or_fails_cleanly() {
    for datagram in datagrams() {
        for message in messages(datagram) {
            let message = message.unwrap();
            if message.kind != RTM_NEWLINK {
                continue;
            }
            let payload = message.payload;
            let full = decode_link(payload).unwrap();
            for cut in 0..payload.len() {
                let decoded = decode_link(&payload[..cut]);
                if cut < 16 {
                    assert!(
                        matches!(
                            decoded,
                            Err(WireError::BadPayload {
                                what: "ifinfomsg",
                                ..
                            })
                        ),
                        "cut at {cut}"
                    );
                } else if let Ok(partial) = decoded {
                    // A clean cut keeps the fixed header.
                    assert_eq!(partial.ifindex, full.ifindex);
                    assert_eq!(partial.flags, full.flags);
                }
            }
            // Suffixes: the attribute stream read from the wrong place.
            for start in 0..payload.len() {
                let _ = decode_link(&payload[start..]);
            }
        }
    }
}

#[test]
fn the_whole_capture_read_from_any_offset_never_panics() {
    for start in 0..CAPTURE.len() {
        parse_everything(&CAPTURE[start..]);
    }
}

/// Offsets of attribute length fields inside a link payload: top level and inside
/// IFLA_LINKINFO, the nesting that decode_link reads.
fn attribute_length_offsets(payload: &[u8]) -> Vec<usize> {
    fn walk(bytes: &[u8], base: usize, depth: u32, out: &mut Vec<usize>) {
        let start = bytes.as_ptr() as usize;
        for attribute in attributes(bytes) {
            let attribute = attribute.unwrap();
            let offset = attribute.payload.as_ptr() as usize - start - 4;
            out.push(base + offset);
            if depth == 0 && attribute.kind == IFLA_LINKINFO {
                walk(attribute.payload, base + offset + 4, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&payload[16..], 16, 0, &mut out);
    out
}

#[test]
fn damaged_length_fields_give_errors_not_panics() {
    let mut total_fields = 0;
    for datagram in datagrams() {
        let boundaries = message_boundaries(datagram);
        // (offset of a length field in the datagram, its width in bytes)
        let mut fields = Vec::new();
        for (message, &at) in messages(datagram).zip(&boundaries) {
            let message = message.unwrap();
            fields.push((at, 4));
            if message.kind == RTM_NEWLINK {
                for offset in attribute_length_offsets(message.payload) {
                    fields.push((at + NLMSG_HDRLEN + offset, 2));
                }
            }
        }
        total_fields += fields.len();

        let mut damaged = datagram.to_vec();
        for (at, width) in fields {
            let original = damaged[at..at + width].to_vec();
            let value = if width == 4 {
                u32::from_ne_bytes(original.clone().try_into().unwrap()) as u64
            } else {
                u16::from_ne_bytes(original.clone().try_into().unwrap()) as u64
            };
            let max = if width == 4 { u32::MAX as u64 } else { 0xffff };
            let mut values = vec![0, 1, 3, 4, 5, 15, 16, 17, max, max - 3, value + 1];
            values.extend(value.checked_sub(1));
            values.extend((0..width * 8).map(|bit| value ^ (1 << bit)));
            for new in values {
                let new = new & max;
                damaged[at..at + width].copy_from_slice(&new.to_ne_bytes()[..width]);
                parse_everything(&damaged);
            }
            damaged[at..at + width].copy_from_slice(&original);
        }
        assert_eq!(damaged, datagram);
    }
    // 11 message lengths and hundreds of attribute lengths.
    assert!(total_fields > 200, "{total_fields}");
}

#[test]
fn a_message_length_of_zero_or_past_the_end_stops_the_datagram_with_an_error() {
    let datagram = datagrams()[1];
    let boundaries = message_boundaries(datagram);
    for (i, &at) in boundaries[..boundaries.len() - 1].iter().enumerate() {
        for bad in [0u32, 15, (datagram.len() - at + 1) as u32, u32::MAX] {
            let mut damaged = datagram.to_vec();
            damaged[at..at + 4].copy_from_slice(&bad.to_ne_bytes());
            let parsed: Vec<_> = messages(&damaged).collect();
            assert_eq!(parsed.len(), i + 1);
            assert!(parsed[..i].iter().all(Result::is_ok));
            assert_eq!(
                parsed[i],
                Err(WireError::BadMessageLength {
                    len: bad as usize,
                    available: datagram.len() - at
                })
            );
        }
    }
}

#[test]
fn every_byte_of_every_datagram_inverted_in_turn_never_panics() {
    for datagram in datagrams() {
        let mut damaged = datagram.to_vec();
        for at in 0..damaged.len() {
            damaged[at] ^= 0xff;
            parse_everything(&damaged);
            damaged[at] ^= 0xff;
        }
    }
}
