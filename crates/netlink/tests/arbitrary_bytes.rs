//! A property test: whatever bytes arrive, decoding and conversion return a value or an
//! error, never a panic. The bytes come from a seeded generator, so a failure repeats:
//! random buffers, random attribute trees whose lengths are mostly right, and random
//! splices of the real captures.

use nshelper_netlink::{addrs, links, neighbors, routes, wire};

/// xorshift64*: small, seeded, and good enough to spread bytes around.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Attributes whose length fields are usually consistent, nested now and then, so that
    /// decoding gets past the first header and into the payloads.
    fn attributes(&mut self, depth: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.below(8) {
            let kind = self.below(64) as u16 | if self.below(4) == 0 { 0x8000 } else { 0 };
            let payload = if depth < 3 && self.below(3) == 0 {
                self.attributes(depth + 1)
            } else {
                let len = [0, 1, 2, 4, 6, 8, 16, 20, 200][self.below(9)];
                self.fill(len)
            };
            let mut len = (4 + payload.len()) as u16;
            if self.below(16) == 0 {
                len = self.next() as u16;
            }
            out.extend(len.to_ne_bytes());
            out.extend(kind.to_ne_bytes());
            out.extend(&payload);
            while out.len() % 4 != 0 {
                out.push(self.next() as u8);
            }
        }
        out
    }
}

fn decode_everything(payload: &[u8]) {
    if let Ok(link) = wire::decode_link(payload) {
        let raw = vec![link];
        let _ = links::links_from_dump(raw.clone(), 1, true);
        if let Ok(addr) = wire::decode_addr(payload) {
            let _ = addrs::addrs_from_dump(vec![addr], &raw);
        }
        if let Ok(route) = wire::decode_route(payload) {
            let _ = routes::routes_from_dump(vec![route], &raw);
        }
        if let Ok(neighbor) = wire::decode_neighbor(payload) {
            let _ = neighbors::neighbors_from_dump(vec![neighbor], &raw);
        }
    }
    let _ = wire::decode_addr(payload);
    let _ = wire::decode_route(payload);
    let _ = wire::decode_neighbor(payload);
    let _ = wire::decode_nsid(payload);
    let _ = wire::decode_multipath(payload);
    let _ = wire::decode_stats64(payload);
    for attribute in wire::attributes(payload).flatten() {
        let _ = attribute.c_string();
        let _ = wire::attributes(attribute.payload).count();
    }
}

#[test]
fn random_buffers_never_panic() {
    let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);
    for _ in 0..50_000 {
        let len = bytes.below(300);
        let buffer = bytes.fill(len);
        for message in wire::messages(&buffer).flatten() {
            let _ = message.error_code();
            decode_everything(message.payload);
        }
        decode_everything(&buffer);
    }
}

#[test]
fn random_attribute_trees_behind_real_headers_never_panic() {
    let mut bytes = Bytes(0x0123_4567_89ab_cdef);
    for _ in 0..50_000 {
        // A 12- or 16-byte family header (rtmsg, ifaddrmsg, ndmsg, ifinfomsg) of random
        // bytes, then attributes.
        let header = [4, 8, 12, 16][bytes.below(4)];
        let mut payload = bytes.fill(header);
        payload.extend(bytes.attributes(0));
        decode_everything(&payload);
        // Wrapped in a netlink message of a random type, with a length that is usually
        // right.
        let mut message = Vec::new();
        let len = if bytes.below(8) == 0 {
            bytes.next() as u32
        } else {
            (16 + payload.len()) as u32
        };
        message.extend(len.to_ne_bytes());
        message.extend((bytes.below(100) as u16).to_ne_bytes());
        message.extend((bytes.next() as u16).to_ne_bytes());
        message.extend(bytes.fill(8));
        message.extend(&payload);
        for parsed in wire::messages(&message).flatten() {
            decode_everything(parsed.payload);
        }
    }
}

#[test]
fn random_splices_of_real_captures_never_panic() {
    let captures: [&[u8]; 4] = [
        include_bytes!("data/getlink-scene.bin"),
        include_bytes!("data/getaddr-scene.bin"),
        include_bytes!("data/getroute-scene.bin"),
        include_bytes!("data/getneigh-scene.bin"),
    ];
    let mut bytes = Bytes(0xdead_beef_cafe_f00d);
    for _ in 0..20_000 {
        let capture = captures[bytes.below(captures.len())];
        let start = bytes.below(capture.len());
        let end = start + bytes.below(capture.len() - start + 1);
        let mut buffer = capture[start..end].to_vec();
        for _ in 0..bytes.below(6) {
            if buffer.is_empty() {
                break;
            }
            let at = bytes.below(buffer.len());
            buffer[at] = bytes.next() as u8;
        }
        for message in wire::messages(&buffer).flatten() {
            decode_everything(message.payload);
        }
        decode_everything(&buffer);
    }
}
