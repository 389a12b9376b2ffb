//! Damaged copies of the real bytes in `tests/data` (links, addresses, routes, neighbours)
//! must give errors, never panics, from every decoder and every conversion.

mod common;

use common::{align4, datagrams, message_boundaries, GETADDR, GETLINK, GETNEIGH, GETROUTE};
use nshelper_netlink::addrs::addrs_from_dump;
use nshelper_netlink::links::links_from_dump;
use nshelper_netlink::neighbors::neighbors_from_dump;
use nshelper_netlink::routes::routes_from_dump;
use nshelper_netlink::wire::{
    attributes, decode_addr, decode_link, decode_neighbor, decode_nsid, decode_route, messages,
    WireError, IFLA_INFO_DATA, IFLA_LINKINFO, IFLA_PROP_LIST, NLMSG_HDRLEN, RTM_NEWADDR,
    RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE,
};

const CAPTURES: [(&str, &[u8]); 4] = [
    ("getlink", GETLINK),
    ("getaddr", GETADDR),
    ("getroute", GETROUTE),
    ("getneigh", GETNEIGH),
];

/// Runs every decoder the crate offers over every message of one datagram, whatever the
/// message's type, then every conversion over what decoded. Returns how many items
/// `messages` yielded.
fn parse_everything(datagram: &[u8]) -> usize {
    let (mut links, mut addrs, mut routes, mut neighbors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut items = 0;
    for message in messages(datagram) {
        items += 1;
        assert!(items <= datagram.len() / NLMSG_HDRLEN + 1, "messages loops");
        let Ok(message) = message else { continue };
        let _ = message.error_code();
        let payload = message.payload;
        links.extend(decode_link(payload));
        addrs.extend(decode_addr(payload));
        routes.extend(decode_route(payload));
        neighbors.extend(decode_neighbor(payload));
        let _ = decode_nsid(payload);
    }
    let _ = addrs_from_dump(addrs, &links);
    let _ = routes_from_dump(routes, &links);
    let _ = neighbors_from_dump(neighbors, &links);
    let _ = links_from_dump(links.clone(), 1, true);
    let _ = links_from_dump(links, 1, false);
    items
}

#[test]
fn every_prefix_of_every_datagram_parses_up_to_the_cut_and_then_fails() {
    for (name, capture) in CAPTURES {
        for datagram in datagrams(capture) {
            let boundaries = message_boundaries(datagram);
            for cut in 0..=datagram.len() {
                let prefix = &datagram[..cut];
                parse_everything(prefix);
                let parsed: Vec<_> = messages(prefix).collect();
                let whole = boundaries.iter().filter(|&&b| b > 0 && b <= cut).count();
                let oks = parsed.iter().take_while(|m| m.is_ok()).count();
                assert_eq!(oks, whole, "{name}: cut at {cut}");
                if boundaries.contains(&cut) {
                    assert_eq!(parsed.len(), whole, "{name}: cut at {cut}");
                } else {
                    assert_eq!(parsed.len(), whole + 1, "{name}: cut at {cut}");
                    let error = parsed.last().unwrap().as_ref().unwrap_err();
                    let left = cut - boundaries[whole];
                    if left < 4 {
                        assert_eq!(*error, WireError::ShortHeader(left));
                    } else {
                        assert!(
                            matches!(error, WireError::BadMessageLength { available, .. } if *available == left),
                            "{name}: cut at {cut}: {error:?}"
                        );
                    }
                }
            }
        }
    }
}

/// How one kind of message decodes: the size and name of its fixed header, and the header
/// fields a clean cut after the header must keep.
struct Decoder {
    kind: u16,
    header_len: usize,
    header_what: &'static str,
    /// `None` when the payload did not decode.
    header_fields: fn(&[u8]) -> Option<Vec<u64>>,
}

const DECODERS: [Decoder; 4] = [
    Decoder {
        kind: RTM_NEWLINK,
        header_len: 16,
        header_what: "ifinfomsg",
        header_fields: |p| {
            decode_link(p)
                .ok()
                .map(|l| vec![l.ifindex.into(), l.flags.into(), l.arp_type.into()])
        },
    },
    Decoder {
        kind: RTM_NEWADDR,
        header_len: 8,
        header_what: "ifaddrmsg",
        header_fields: |p| {
            decode_addr(p).ok().map(|a| {
                vec![
                    a.family.into(),
                    a.prefixlen.into(),
                    a.scope.into(),
                    a.ifindex.into(),
                ]
            })
        },
    },
    Decoder {
        kind: RTM_NEWROUTE,
        header_len: 12,
        header_what: "rtmsg",
        // Not the table: RTA_TABLE, which a cut can remove, overrides the header's.
        header_fields: |p| {
            decode_route(p).ok().map(|r| {
                vec![
                    r.family.into(),
                    r.dst_len.into(),
                    r.protocol.into(),
                    r.scope.into(),
                    r.route_type.into(),
                ]
            })
        },
    },
    Decoder {
        kind: RTM_NEWNEIGH,
        header_len: 12,
        header_what: "ndmsg",
        header_fields: |p| {
            decode_neighbor(p)
                .ok()
                .map(|n| vec![n.family.into(), n.ifindex.into(), n.state.into()])
        },
    },
];

fn decoder_of(kind: u16) -> &'static Decoder {
    DECODERS.iter().find(|d| d.kind == kind).unwrap()
}

/// Every payload of every capture, with the type of its message.
fn all_payloads() -> Vec<(u16, &'static [u8])> {
    let mut out = Vec::new();
    for (_, capture) in CAPTURES {
        for datagram in datagrams(capture) {
            for message in messages(datagram) {
                let message = message.unwrap();
                if DECODERS.iter().any(|d| d.kind == message.kind) {
                    out.push((message.kind, message.payload));
                }
            }
        }
    }
    out
}

fn header_error(payload: &[u8], decoder: &Decoder) -> Option<WireError> {
    match decoder.kind {
        RTM_NEWLINK => decode_link(payload).err(),
        RTM_NEWADDR => decode_addr(payload).err(),
        RTM_NEWROUTE => decode_route(payload).err(),
        _ => decode_neighbor(payload).err(),
    }
}

#[test]
fn every_prefix_of_every_payload_decodes_or_fails_cleanly() {
    let payloads = all_payloads();
    // 10 links, 11 addresses, 37 routes, 20 neighbours.
    assert_eq!(payloads.len(), 78);
    for (kind, payload) in payloads {
        let decoder = decoder_of(kind);
        let full = (decoder.header_fields)(payload).expect("the whole payload decodes");
        for cut in 0..payload.len() {
            let prefix = &payload[..cut];
            if cut < decoder.header_len {
                assert!(
                    matches!(
                        header_error(prefix, decoder),
                        Some(WireError::BadPayload { what, .. }) if what == decoder.header_what
                    ),
                    "{}: cut at {cut}",
                    decoder.header_what
                );
            } else if let Some(partial) = (decoder.header_fields)(prefix) {
                // A clean cut keeps the fixed header.
                assert_eq!(partial, full, "{}: cut at {cut}", decoder.header_what);
            }
        }
        // Suffixes: the attribute stream read from the wrong place, by every decoder.
        for start in 0..payload.len() {
            for other in &DECODERS {
                let _ = (other.header_fields)(&payload[start..]);
            }
            let _ = decode_nsid(&payload[start..]);
        }
    }
}

#[test]
fn every_capture_read_from_any_offset_never_panics() {
    for (_, capture) in CAPTURES {
        for start in 0..capture.len() {
            parse_everything(&capture[start..]);
        }
    }
}

/// Offsets of attribute length fields inside a payload: top level, and for links the
/// nestings decode_link reads (IFLA_LINKINFO, its IFLA_INFO_DATA, IFLA_PROP_LIST).
fn attribute_length_offsets(kind: u16, payload: &[u8]) -> Vec<usize> {
    fn walk(
        bytes: &[u8],
        base: usize,
        nested: &dyn Fn(u16, u32) -> bool,
        depth: u32,
        out: &mut Vec<usize>,
    ) {
        let start = bytes.as_ptr() as usize;
        for attribute in attributes(bytes) {
            let attribute = attribute.unwrap();
            let offset = attribute.payload.as_ptr() as usize - start - 4;
            out.push(base + offset);
            if nested(attribute.kind, depth) {
                walk(attribute.payload, base + offset + 4, nested, depth + 1, out);
            }
        }
    }
    let header_len = decoder_of(kind).header_len;
    let nested = |attribute: u16, depth: u32| {
        kind == RTM_NEWLINK
            && match depth {
                0 => attribute == IFLA_LINKINFO || attribute == IFLA_PROP_LIST,
                1 => attribute == IFLA_INFO_DATA,
                _ => false,
            }
    };
    let mut out = Vec::new();
    walk(&payload[header_len..], header_len, &nested, 0, &mut out);
    out
}

#[test]
fn damaged_length_fields_give_errors_not_panics() {
    for (name, capture) in CAPTURES {
        let (mut total_fields, mut total_messages) = (0, 0);
        for datagram in datagrams(capture) {
            let boundaries = message_boundaries(datagram);
            // (offset of a length field in the datagram, its width in bytes)
            let mut fields = Vec::new();
            for (message, &at) in messages(datagram).zip(&boundaries) {
                let message = message.unwrap();
                fields.push((at, 4));
                if DECODERS.iter().any(|d| d.kind == message.kind) {
                    for offset in attribute_length_offsets(message.kind, message.payload) {
                        fields.push((at + NLMSG_HDRLEN + offset, 2));
                    }
                }
            }
            total_fields += fields.len();
            total_messages += boundaries.len() - 1;

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
        // Every message length, and several attribute lengths per message.
        assert!(
            total_fields > 3 * total_messages,
            "{name}: {total_fields} fields in {total_messages} messages"
        );
    }
}

#[test]
fn a_message_length_of_zero_or_past_the_end_stops_the_datagram_with_an_error() {
    for (name, capture) in CAPTURES {
        let datagram = datagrams(capture)[0];
        let boundaries = message_boundaries(datagram);
        for (i, &at) in boundaries[..boundaries.len() - 1].iter().enumerate() {
            for bad in [0u32, 15, (datagram.len() - at + 1) as u32, u32::MAX] {
                let mut damaged = datagram.to_vec();
                damaged[at..at + 4].copy_from_slice(&bad.to_ne_bytes());
                let parsed: Vec<_> = messages(&damaged).collect();
                assert_eq!(parsed.len(), i + 1, "{name}");
                assert!(parsed[..i].iter().all(Result::is_ok), "{name}");
                assert_eq!(
                    parsed[i],
                    Err(WireError::BadMessageLength {
                        len: bad as usize,
                        available: datagram.len() - at
                    }),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn every_byte_of_every_datagram_inverted_in_turn_never_panics() {
    for (_, capture) in CAPTURES {
        for datagram in datagrams(capture) {
            let mut damaged = datagram.to_vec();
            for at in 0..damaged.len() {
                damaged[at] ^= 0xff;
                parse_everything(&damaged);
                damaged[at] ^= 0xff;
            }
        }
    }
}

#[test]
fn the_messages_of_every_capture_tile_their_datagrams() {
    for (name, capture) in CAPTURES {
        for datagram in datagrams(capture) {
            let consumed: usize = messages(datagram)
                .map(|m| align4(NLMSG_HDRLEN + m.unwrap().payload.len()))
                .sum();
            assert_eq!(consumed, datagram.len(), "{name}");
        }
    }
}
