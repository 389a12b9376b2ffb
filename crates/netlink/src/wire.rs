//! Bounds-checked decoding of netlink datagrams and rtnetlink link messages.
//!
//! Nothing here trusts a length field: every slice is taken with `get`, and a bad length
//! is a [`WireError`], never a panic.

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;

pub const RTM_NEWLINK: u16 = 16;

const IFINFOMSG_LEN: usize = 16;
const RTA_HDRLEN: usize = 4;
/// The kernel may set these on an attribute type; they are not part of the type.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);

pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_LINK_NETNSID: u16 = 37;
pub const IFLA_INFO_KIND: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("netlink message header truncated: {0} bytes left")]
    ShortHeader(usize),
    #[error("netlink message length {len} is invalid with {available} bytes left")]
    BadMessageLength { len: usize, available: usize },
    #[error("attribute length {len} is invalid with {available} bytes left")]
    BadAttributeLength { len: usize, available: usize },
    #[error("{what} payload is {len} bytes, expected {expected}")]
    BadPayload {
        what: &'static str,
        len: usize,
        expected: usize,
    },
}

fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// One netlink message borrowed from a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub port: u32,
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// The error code of an `NLMSG_ERROR` (0 is an ack) or of an `NLMSG_DONE` that ends a
    /// failed dump.
    pub fn error_code(&self) -> Result<i32, WireError> {
        match self.payload.get(..4) {
            Some(code) => Ok(i32::from_ne_bytes(code.try_into().unwrap_or_default())),
            // A DONE without a payload is a clean end of dump.
            None if self.kind == NLMSG_DONE => Ok(0),
            None => Err(WireError::BadPayload {
                what: "NLMSG_ERROR",
                len: self.payload.len(),
                expected: 4,
            }),
        }
    }
}

/// The messages of one datagram, in order. Stops at the first malformed header, since
/// nothing after it can be located.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages { rest: datagram }
}

pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let parsed = (|| {
            let len = u32_at(rest, 0).ok_or(WireError::ShortHeader(rest.len()))? as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                return Err(WireError::BadMessageLength {
                    len,
                    available: rest.len(),
                });
            }
            let message = Message {
                kind: u16_at(rest, 4).unwrap_or_default(),
                flags: u16_at(rest, 6).unwrap_or_default(),
                seq: u32_at(rest, 8).unwrap_or_default(),
                port: u32_at(rest, 12).unwrap_or_default(),
                payload: &rest[NLMSG_HDRLEN..len],
            };
            Ok((message, rest.get(align4(len)..).unwrap_or_default()))
        })();
        match parsed {
            Ok((message, next)) => {
                self.rest = next;
                Some(Ok(message))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// One route attribute: its type with the flag bits masked off, and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
}

impl Attribute<'_> {
    pub fn u32(&self, what: &'static str) -> Result<u32, WireError> {
        fixed::<4>(self.payload, what).map(u32::from_ne_bytes)
    }

    pub fn i32(&self, what: &'static str) -> Result<i32, WireError> {
        fixed::<4>(self.payload, what).map(i32::from_ne_bytes)
    }

    pub fn u8(&self, what: &'static str) -> Result<u8, WireError> {
        fixed::<1>(self.payload, what).map(|[b]| b)
    }

    /// A C string attribute: everything before the first NUL. The kernel always terminates
    /// these, but a missing NUL keeps every byte rather than dropping the last one.
    pub fn c_string(&self) -> &[u8] {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.payload.len());
        &self.payload[..end]
    }
}

fn fixed<const N: usize>(payload: &[u8], what: &'static str) -> Result<[u8; N], WireError> {
    payload.try_into().map_err(|_| WireError::BadPayload {
        what,
        len: payload.len(),
        expected: N,
    })
}

pub fn attributes(bytes: &[u8]) -> Attributes<'_> {
    Attributes { rest: bytes }
}

pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Fewer bytes than a header is trailing padding, not an attribute.
        if self.rest.len() < RTA_HDRLEN {
            return None;
        }
        let rest = self.rest;
        let len = u16_at(rest, 0).unwrap_or_default() as usize;
        if len < RTA_HDRLEN || len > rest.len() {
            self.rest = &[];
            return Some(Err(WireError::BadAttributeLength {
                len,
                available: rest.len(),
            }));
        }
        let kind = u16_at(rest, 2).unwrap_or_default() & NLA_TYPE_MASK;
        self.rest = rest.get(align4(len)..).unwrap_or_default();
        Some(Ok(Attribute {
            kind,
            payload: &rest[RTA_HDRLEN..len],
        }))
    }
}

/// A link as the kernel described it in one `RTM_NEWLINK`, before any interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawLink {
    pub ifindex: u32,
    pub arp_type: u16,
    pub flags: u32,
    pub ifname: Vec<u8>,
    pub mtu: Option<u32>,
    pub operstate: Option<u8>,
    pub address: Option<Vec<u8>>,
    pub master: Option<u32>,
    pub link: Option<u32>,
    pub link_netnsid: Option<i32>,
    pub kind: Option<Vec<u8>>,
}

/// Decodes the payload of an `RTM_NEWLINK` message: an `ifinfomsg` and its attributes.
pub fn decode_link(payload: &[u8]) -> Result<RawLink, WireError> {
    let header = payload.get(..IFINFOMSG_LEN).ok_or(WireError::BadPayload {
        what: "ifinfomsg",
        len: payload.len(),
        expected: IFINFOMSG_LEN,
    })?;
    let mut link = RawLink {
        arp_type: u16_at(header, 2).unwrap_or_default(),
        ifindex: u32_at(header, 4).unwrap_or_default(),
        flags: u32_at(header, 8).unwrap_or_default(),
        ..RawLink::default()
    };
    for attribute in attributes(&payload[IFINFOMSG_LEN..]) {
        let attribute = attribute?;
        match attribute.kind {
            IFLA_IFNAME => link.ifname = attribute.c_string().to_vec(),
            IFLA_MTU => link.mtu = Some(attribute.u32("IFLA_MTU")?),
            IFLA_OPERSTATE => link.operstate = Some(attribute.u8("IFLA_OPERSTATE")?),
            IFLA_ADDRESS => link.address = Some(attribute.payload.to_vec()),
            IFLA_MASTER => link.master = Some(attribute.u32("IFLA_MASTER")?),
            IFLA_LINK => link.link = Some(attribute.u32("IFLA_LINK")?),
            IFLA_LINK_NETNSID => link.link_netnsid = Some(attribute.i32("IFLA_LINK_NETNSID")?),
            IFLA_LINKINFO => {
                for info in attributes(attribute.payload) {
                    let info = info?;
                    if info.kind == IFLA_INFO_KIND {
                        link.kind = Some(info.c_string().to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&len.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&7u32.to_ne_bytes());
        bytes.extend_from_slice(&99u32.to_ne_bytes());
        bytes.extend_from_slice(payload);
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
        bytes
    }

    fn attribute(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((RTA_HDRLEN + payload.len()) as u16).to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(payload);
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
        bytes
    }

    fn ifinfomsg(ifindex: u32, flags: u32) -> Vec<u8> {
        let mut bytes = vec![0, 0, 1, 0];
        bytes.extend_from_slice(&ifindex.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes
    }

    #[test]
    fn one_datagram_can_hold_several_messages_with_done_among_them() {
        let mut datagram = message(RTM_NEWLINK, 2, &ifinfomsg(1, 0));
        datagram.extend(message(NLMSG_DONE, 2, &0i32.to_ne_bytes()));
        let parsed: Vec<_> = messages(&datagram).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].kind, RTM_NEWLINK);
        assert_eq!((parsed[0].seq, parsed[0].port), (7, 99));
        assert_eq!(parsed[1].kind, NLMSG_DONE);
        assert_eq!(parsed[1].error_code(), Ok(0));
    }

    #[test]
    fn a_message_length_past_the_datagram_is_an_error_not_a_panic() {
        let mut datagram = message(RTM_NEWLINK, 0, &ifinfomsg(1, 0));
        datagram[0] = 200;
        let parsed: Vec<_> = messages(&datagram).collect();
        assert!(matches!(
            parsed.as_slice(),
            [Err(WireError::BadMessageLength { len: 200, .. })]
        ));
        assert!(matches!(
            messages(&[1, 2, 3]).next(),
            Some(Err(WireError::ShortHeader(3)))
        ));
        let zero_length = [0u8; 16];
        assert!(messages(&zero_length).next().unwrap().is_err());
    }

    #[test]
    fn nested_flag_is_masked_off_attribute_types() {
        let kind = attribute(IFLA_INFO_KIND, b"veth\0");
        let mut payload = ifinfomsg(5, 0);
        payload.extend(attribute(IFLA_LINKINFO | 0x8000, &kind));
        assert_eq!(
            decode_link(&payload).unwrap().kind.as_deref(),
            Some(&b"veth"[..])
        );
    }

    #[test]
    fn names_keep_every_byte_even_when_not_utf8_or_unterminated() {
        let mut payload = ifinfomsg(3, 0);
        payload.extend(attribute(IFLA_IFNAME, b"e\xfft\x01h\0"));
        assert_eq!(decode_link(&payload).unwrap().ifname, b"e\xfft\x01h");
        let mut unterminated = ifinfomsg(3, 0);
        unterminated.extend(attribute(IFLA_IFNAME, b"eth1"));
        assert_eq!(decode_link(&unterminated).unwrap().ifname, b"eth1");
        let mut empty = ifinfomsg(3, 0);
        empty.extend(attribute(IFLA_IFNAME, b""));
        assert_eq!(decode_link(&empty).unwrap().ifname, b"");
    }

    #[test]
    fn wrong_sized_integer_attributes_are_errors() {
        let mut payload = ifinfomsg(3, 0);
        payload.extend(attribute(IFLA_MTU, &[1, 2]));
        assert_eq!(
            decode_link(&payload),
            Err(WireError::BadPayload {
                what: "IFLA_MTU",
                len: 2,
                expected: 4
            })
        );
    }

    #[test]
    fn attribute_lengths_are_checked() {
        let mut payload = ifinfomsg(3, 0);
        payload.extend([40, 0, 3, 0, b'x', 0, 0, 0]);
        assert!(matches!(
            decode_link(&payload),
            Err(WireError::BadAttributeLength { len: 40, .. })
        ));
        let mut short = ifinfomsg(3, 0);
        short.extend([2, 0, 3, 0]);
        assert!(decode_link(&short).is_err());
        assert!(decode_link(&[0; 8]).is_err());
    }

    #[test]
    fn error_messages_carry_a_negative_errno() {
        let datagram = message(NLMSG_ERROR, 0, &(-1i32).to_ne_bytes());
        let parsed = messages(&datagram).next().unwrap().unwrap();
        assert_eq!(parsed.error_code(), Ok(-1));
        let empty = message(NLMSG_ERROR, 0, &[]);
        assert!(messages(&empty)
            .next()
            .unwrap()
            .unwrap()
            .error_code()
            .is_err());
    }
}
