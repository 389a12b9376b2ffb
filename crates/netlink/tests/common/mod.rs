//! Reading the captures in `tests/data` (see its README): the framing, and the messages of
//! one dump.

#![allow(dead_code)]

use nshelper_netlink::wire::{
    decode_link, messages, RawLink, WireError, NLMSG_DONE, NLMSG_HDRLEN, RTM_NEWLINK,
};

pub const GETLINK: &[u8] = include_bytes!("../data/getlink-scene.bin");
pub const GETADDR: &[u8] = include_bytes!("../data/getaddr-scene.bin");
pub const GETROUTE: &[u8] = include_bytes!("../data/getroute-scene.bin");
pub const GETNEIGH: &[u8] = include_bytes!("../data/getneigh-scene.bin");

/// Datagrams, each framed as a little-endian u32 length and that many bytes.
pub fn datagrams(capture: &[u8]) -> Vec<&[u8]> {
    let mut rest = capture;
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

/// The payloads of the dump's messages, in the kernel's order, up to NLMSG_DONE; every
/// message before it must be of type `kind`.
pub fn payloads(capture: &[u8], kind: u16) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for datagram in datagrams(capture) {
        for message in messages(datagram) {
            let message = message.expect("every captured message is well-formed");
            match message.kind {
                NLMSG_DONE => return out,
                k if k == kind => out.push(message.payload),
                other => panic!("unexpected message type {other}"),
            }
        }
    }
    panic!("the capture has no NLMSG_DONE");
}

pub fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Offsets in `datagram` where each message starts, and the datagram's end.
pub fn message_boundaries(datagram: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut boundaries = vec![0];
    for message in messages(datagram) {
        at += align4(NLMSG_HDRLEN + message.unwrap().payload.len());
        boundaries.push(at);
    }
    boundaries
}

/// The decoded messages of a capture's dump, every one of which must decode.
pub fn decoded<T>(capture: &[u8], kind: u16, decode: fn(&[u8]) -> Result<T, WireError>) -> Vec<T> {
    payloads(capture, kind)
        .into_iter()
        .map(|payload| decode(payload).expect("every captured message decodes"))
        .collect()
}

/// The links of the scene, which the other dumps name their interfaces from.
pub fn raw_links() -> Vec<RawLink> {
    decoded(GETLINK, RTM_NEWLINK, decode_link)
}
