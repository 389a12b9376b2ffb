//! Bounds-checked decoding of netlink datagrams and of rtnetlink link, address, route,
//! neighbour and nsid messages.
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
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_NEWNSID: u16 = 88;
pub const RTM_GETNSID: u16 = 90;

const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
const NDMSG_LEN: usize = 12;
/// `struct rtgenmsg` is one byte, but attributes start at the next 4-byte boundary.
const RTGENMSG_LEN: usize = 4;
const RTA_HDRLEN: usize = 4;
/// The kernel may set these on an attribute type; they are not part of the type.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);

pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_BROADCAST: u16 = 2;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_TXQLEN: u16 = 13;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_IFALIAS: u16 = 20;
pub const IFLA_STATS64: u16 = 23;
pub const IFLA_LINK_NETNSID: u16 = 37;
pub const IFLA_PROP_LIST: u16 = 52;
pub const IFLA_ALT_IFNAME: u16 = 53;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const IFLA_VXLAN_LINK: u16 = 3;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;

pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_TABLE: u16 = 15;
pub const RTA_VIA: u16 = 18;
/// `rtm_flags` of a route cache entry rather than a route.
pub const RTM_F_CLONED: u32 = 0x200;

pub const NDA_DST: u16 = 1;
pub const NDA_LLADDR: u16 = 2;

pub const NETNSA_NSID: u16 = 1;
pub const NETNSA_FD: u16 = 3;

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
    #[error("{what} payload is {len} bytes, expected at least {minimum}")]
    ShortPayload {
        what: &'static str,
        len: usize,
        minimum: usize,
    },
    #[error("{message} carries no {attribute}")]
    MissingAttribute {
        message: &'static str,
        attribute: &'static str,
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

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Splits a message payload into its fixed family header and the attributes after it.
fn split_header<'a>(
    payload: &'a [u8],
    len: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), WireError> {
    match (payload.get(..len), payload.get(len..)) {
        (Some(header), Some(rest)) => Ok((header, rest)),
        _ => Err(WireError::BadPayload {
            what,
            len: payload.len(),
            expected: len,
        }),
    }
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

/// Attribute bytes that are nearly always short (an interface name, a hardware address, a
/// link kind), kept inline up to 32 bytes: decoding thousands of links then allocates
/// nothing for them. Longer values, which the kernel allows, go to the heap whole.
#[derive(Clone, PartialEq, Eq)]
pub enum ShortBytes {
    Inline { len: u8, bytes: [u8; SHORT_INLINE] },
    Heap(Vec<u8>),
}

const SHORT_INLINE: usize = 32;

impl Default for ShortBytes {
    fn default() -> Self {
        ShortBytes::Inline {
            len: 0,
            bytes: [0; SHORT_INLINE],
        }
    }
}

impl From<&[u8]> for ShortBytes {
    fn from(value: &[u8]) -> Self {
        match u8::try_from(value.len()) {
            Ok(len) if value.len() <= SHORT_INLINE => {
                let mut bytes = [0; SHORT_INLINE];
                bytes[..value.len()].copy_from_slice(value);
                ShortBytes::Inline { len, bytes }
            }
            _ => ShortBytes::Heap(value.to_vec()),
        }
    }
}

impl From<Vec<u8>> for ShortBytes {
    fn from(value: Vec<u8>) -> Self {
        ShortBytes::from(value.as_slice())
    }
}

impl std::ops::Deref for ShortBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ShortBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ShortBytes::Heap(bytes) => bytes,
        }
    }
}

impl PartialEq<[u8]> for ShortBytes {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[u8]> for ShortBytes {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for ShortBytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl std::fmt::Debug for ShortBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// A link as the kernel described it in one `RTM_NEWLINK`, before any interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawLink {
    pub ifindex: u32,
    pub arp_type: u16,
    pub flags: u32,
    pub ifname: ShortBytes,
    pub mtu: Option<u32>,
    pub operstate: Option<u8>,
    pub address: Option<ShortBytes>,
    /// `IFLA_BROADCAST`: the link-layer broadcast (or point-to-point peer) address.
    pub broadcast: Option<ShortBytes>,
    pub master: Option<u32>,
    pub link: Option<u32>,
    pub link_netnsid: Option<i32>,
    pub kind: Option<ShortBytes>,
    /// `IFLA_VXLAN_LINK` from the `IFLA_INFO_DATA` of a link whose kind is `vxlan`: the
    /// ifindex of its `dev`, 0 when it has none.
    pub vxlan_link: Option<u32>,
    pub txqlen: Option<u32>,
    /// `IFLA_IFALIAS`, bytes before the first NUL.
    pub alias: Option<Vec<u8>>,
    /// Every `IFLA_ALT_IFNAME` of `IFLA_PROP_LIST`, in the kernel's order.
    pub altnames: Vec<Vec<u8>>,
    pub stats64: Option<RawLinkStats>,
}

/// The leading counters of `struct rtnl_link_stats64`, in its order. Kernels append
/// counters to the end of the struct over time; those after `tx_carrier_errors` are not
/// read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawLinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub multicast: u64,
    pub collisions: u64,
    pub rx_length_errors: u64,
    pub rx_over_errors: u64,
    pub rx_crc_errors: u64,
    pub rx_frame_errors: u64,
    pub rx_fifo_errors: u64,
    pub rx_missed_errors: u64,
    pub tx_aborted_errors: u64,
    pub tx_carrier_errors: u64,
}

/// Decodes `IFLA_STATS64`. Like iproute2, a payload shorter than the counters read here
/// leaves the missing counters at zero, and anything past them is ignored.
pub fn decode_stats64(payload: &[u8]) -> RawLinkStats {
    let counter = |index: usize| u64_at(payload, index * 8).unwrap_or_default();
    RawLinkStats {
        rx_packets: counter(0),
        tx_packets: counter(1),
        rx_bytes: counter(2),
        tx_bytes: counter(3),
        rx_errors: counter(4),
        tx_errors: counter(5),
        rx_dropped: counter(6),
        tx_dropped: counter(7),
        multicast: counter(8),
        collisions: counter(9),
        rx_length_errors: counter(10),
        rx_over_errors: counter(11),
        rx_crc_errors: counter(12),
        rx_frame_errors: counter(13),
        rx_fifo_errors: counter(14),
        rx_missed_errors: counter(15),
        tx_aborted_errors: counter(16),
        tx_carrier_errors: counter(17),
    }
}

/// Decodes the payload of an `RTM_NEWLINK` message: an `ifinfomsg` and its attributes.
pub fn decode_link(payload: &[u8]) -> Result<RawLink, WireError> {
    let (header, attrs) = split_header(payload, IFINFOMSG_LEN, "ifinfomsg")?;
    let mut link = RawLink {
        arp_type: u16_at(header, 2).unwrap_or_default(),
        ifindex: u32_at(header, 4).unwrap_or_default(),
        flags: u32_at(header, 8).unwrap_or_default(),
        ..RawLink::default()
    };
    let mut info_data = None;
    for attribute in attributes(attrs) {
        let attribute = attribute?;
        match attribute.kind {
            IFLA_IFNAME => link.ifname = attribute.c_string().into(),
            IFLA_MTU => link.mtu = Some(attribute.u32("IFLA_MTU")?),
            IFLA_OPERSTATE => link.operstate = Some(attribute.u8("IFLA_OPERSTATE")?),
            IFLA_ADDRESS => link.address = Some(attribute.payload.into()),
            IFLA_BROADCAST => link.broadcast = Some(attribute.payload.into()),
            IFLA_MASTER => link.master = Some(attribute.u32("IFLA_MASTER")?),
            IFLA_LINK => link.link = Some(attribute.u32("IFLA_LINK")?),
            IFLA_LINK_NETNSID => link.link_netnsid = Some(attribute.i32("IFLA_LINK_NETNSID")?),
            IFLA_TXQLEN => link.txqlen = Some(attribute.u32("IFLA_TXQLEN")?),
            IFLA_IFALIAS => link.alias = Some(attribute.c_string().to_vec()),
            IFLA_STATS64 => link.stats64 = Some(decode_stats64(attribute.payload)),
            IFLA_PROP_LIST => {
                for property in attributes(attribute.payload) {
                    let property = property?;
                    if property.kind == IFLA_ALT_IFNAME {
                        link.altnames.push(property.c_string().to_vec());
                    }
                }
            }
            IFLA_LINKINFO => {
                for info in attributes(attribute.payload) {
                    let info = info?;
                    match info.kind {
                        IFLA_INFO_KIND => link.kind = Some(info.c_string().into()),
                        IFLA_INFO_DATA => info_data = Some(info.payload),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // What IFLA_INFO_DATA holds depends on the kind, which may come after it.
    if let (Some(b"vxlan"), Some(data)) = (link.kind.as_deref(), info_data) {
        for attribute in attributes(data) {
            let attribute = attribute?;
            if attribute.kind == IFLA_VXLAN_LINK {
                link.vxlan_link = Some(attribute.u32("IFLA_VXLAN_LINK")?);
            }
        }
    }
    Ok(link)
}

/// An address as the kernel described it in one `RTM_NEWADDR`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawAddr {
    pub family: u8,
    pub prefixlen: u8,
    /// The 8-bit `ifa_flags` of the header (`IFA_FLAGS` is not read).
    pub flags: u8,
    pub scope: u8,
    pub ifindex: u32,
    /// `IFA_ADDRESS`: the peer of a point-to-point address, else the same as `local`.
    pub address: Option<Vec<u8>>,
    /// `IFA_LOCAL`: the interface's own address; IPv6 usually sends only `IFA_ADDRESS`.
    pub local: Option<Vec<u8>>,
    pub label: Option<Vec<u8>>,
    pub broadcast: Option<Vec<u8>>,
}

/// Decodes the payload of an `RTM_NEWADDR` message: an `ifaddrmsg` and its attributes.
pub fn decode_addr(payload: &[u8]) -> Result<RawAddr, WireError> {
    let (header, attrs) = split_header(payload, IFADDRMSG_LEN, "ifaddrmsg")?;
    let mut addr = RawAddr {
        family: header[0],
        prefixlen: header[1],
        flags: header[2],
        scope: header[3],
        ifindex: u32_at(header, 4).unwrap_or_default(),
        ..RawAddr::default()
    };
    for attribute in attributes(attrs) {
        let attribute = attribute?;
        match attribute.kind {
            IFA_ADDRESS => addr.address = Some(attribute.payload.to_vec()),
            IFA_LOCAL => addr.local = Some(attribute.payload.to_vec()),
            IFA_LABEL => addr.label = Some(attribute.c_string().to_vec()),
            IFA_BROADCAST => addr.broadcast = Some(attribute.payload.to_vec()),
            _ => {}
        }
    }
    Ok(addr)
}

/// `RTA_VIA`: a gateway of another family than the route's (`struct rtvia`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawVia {
    pub family: u16,
    pub address: Vec<u8>,
}

/// A route as the kernel described it in one `RTM_NEWROUTE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRoute {
    pub family: u8,
    pub dst_len: u8,
    pub src_len: u8,
    pub tos: u8,
    /// `RTA_TABLE` when present, else the 8-bit `rtm_table` of the header.
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    pub route_type: u8,
    pub flags: u32,
    /// Absent for a default route.
    pub dst: Option<Vec<u8>>,
    pub oif: Option<u32>,
    pub gateway: Option<Vec<u8>>,
    pub priority: Option<u32>,
    pub prefsrc: Option<Vec<u8>>,
    pub via: Option<RawVia>,
    /// The paths of a multipath route (`RTA_MULTIPATH`); empty for a single path.
    pub nexthops: Vec<RawNexthop>,
}

/// One path of a multipath route: a `struct rtnexthop` and its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawNexthop {
    pub ifindex: u32,
    pub flags: u8,
    /// The weight less one, as the kernel keeps it.
    pub hops: u8,
    pub gateway: Option<Vec<u8>>,
    pub via: Option<RawVia>,
}

const RTA_MULTIPATH: u16 = 9;
const RTNH_LEN: usize = 8;

fn decode_via(payload: &[u8]) -> Result<RawVia, WireError> {
    let family = u16_at(payload, 0).ok_or(WireError::ShortPayload {
        what: "RTA_VIA",
        len: payload.len(),
        minimum: 2,
    })?;
    Ok(RawVia {
        family,
        address: payload[2..].to_vec(),
    })
}

/// Decodes the `rtnexthop` records of an `RTA_MULTIPATH` attribute.
pub fn decode_multipath(mut rest: &[u8]) -> Result<Vec<RawNexthop>, WireError> {
    let mut nexthops = Vec::new();
    while rest.len() >= RTNH_LEN {
        let len = usize::from(u16_at(rest, 0).unwrap_or_default());
        if len < RTNH_LEN || len > rest.len() {
            return Err(WireError::BadAttributeLength {
                len,
                available: rest.len(),
            });
        }
        let mut nexthop = RawNexthop {
            flags: rest[2],
            hops: rest[3],
            ifindex: u32_at(rest, 4).unwrap_or_default(),
            ..RawNexthop::default()
        };
        for attribute in attributes(&rest[RTNH_LEN..len]) {
            let attribute = attribute?;
            match attribute.kind {
                RTA_GATEWAY => nexthop.gateway = Some(attribute.payload.to_vec()),
                RTA_VIA => nexthop.via = Some(decode_via(attribute.payload)?),
                _ => {}
            }
        }
        nexthops.push(nexthop);
        rest = rest.get(align4(len)..).unwrap_or_default();
    }
    Ok(nexthops)
}

/// Decodes the payload of an `RTM_NEWROUTE` message: an `rtmsg` and its attributes.
pub fn decode_route(payload: &[u8]) -> Result<RawRoute, WireError> {
    let (header, attrs) = split_header(payload, RTMSG_LEN, "rtmsg")?;
    let mut route = RawRoute {
        family: header[0],
        dst_len: header[1],
        src_len: header[2],
        tos: header[3],
        table: u32::from(header[4]),
        protocol: header[5],
        scope: header[6],
        route_type: header[7],
        flags: u32_at(header, 8).unwrap_or_default(),
        ..RawRoute::default()
    };
    for attribute in attributes(attrs) {
        let attribute = attribute?;
        match attribute.kind {
            RTA_DST => route.dst = Some(attribute.payload.to_vec()),
            RTA_OIF => route.oif = Some(attribute.u32("RTA_OIF")?),
            RTA_GATEWAY => route.gateway = Some(attribute.payload.to_vec()),
            RTA_PRIORITY => route.priority = Some(attribute.u32("RTA_PRIORITY")?),
            RTA_PREFSRC => route.prefsrc = Some(attribute.payload.to_vec()),
            RTA_TABLE => route.table = attribute.u32("RTA_TABLE")?,
            RTA_VIA => route.via = Some(decode_via(attribute.payload)?),
            RTA_MULTIPATH => route.nexthops = decode_multipath(attribute.payload)?,
            _ => {}
        }
    }
    Ok(route)
}

/// A neighbour entry as the kernel described it in one `RTM_NEWNEIGH`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawNeighbor {
    pub family: u8,
    /// `ndm_ifindex`, a C `int` the kernel never makes negative, read as unsigned.
    pub ifindex: u32,
    /// `NUD_*` bits.
    pub state: u16,
    /// `NTF_*` bits.
    pub flags: u8,
    pub neighbor_type: u8,
    pub dst: Option<Vec<u8>>,
    pub lladdr: Option<Vec<u8>>,
}

/// Decodes the payload of an `RTM_NEWNEIGH` message: an `ndmsg` and its attributes.
pub fn decode_neighbor(payload: &[u8]) -> Result<RawNeighbor, WireError> {
    let (header, attrs) = split_header(payload, NDMSG_LEN, "ndmsg")?;
    let mut neighbor = RawNeighbor {
        family: header[0],
        ifindex: u32_at(header, 4).unwrap_or_default(),
        state: u16_at(header, 8).unwrap_or_default(),
        flags: header[10],
        neighbor_type: header[11],
        ..RawNeighbor::default()
    };
    for attribute in attributes(attrs) {
        let attribute = attribute?;
        match attribute.kind {
            NDA_DST => neighbor.dst = Some(attribute.payload.to_vec()),
            NDA_LLADDR => neighbor.lladdr = Some(attribute.payload.to_vec()),
            _ => {}
        }
    }
    Ok(neighbor)
}

/// The payload of an `RTM_GETNSID` request for the namespace open as `fd` in the
/// requesting process: a `struct rtgenmsg` (`AF_UNSPEC`) padded to 4 bytes, then
/// `NETNSA_FD`.
pub fn getnsid_request_payload(fd: u32) -> Vec<u8> {
    let mut payload = vec![0u8; RTGENMSG_LEN];
    payload.extend_from_slice(&((RTA_HDRLEN + 4) as u16).to_ne_bytes());
    payload.extend_from_slice(&NETNSA_FD.to_ne_bytes());
    payload.extend_from_slice(&fd.to_ne_bytes());
    payload
}

/// Decodes the payload of the `RTM_NEWNSID` that answers `RTM_GETNSID`: the nsid, or
/// `None` when the namespace has none (`NETNSA_NSID_NOT_ASSIGNED`, -1) in the socket's
/// namespace.
pub fn decode_nsid(payload: &[u8]) -> Result<Option<i32>, WireError> {
    let (_, attrs) = split_header(payload, RTGENMSG_LEN, "rtgenmsg")?;
    let mut nsid = None;
    for attribute in attributes(attrs) {
        let attribute = attribute?;
        if attribute.kind == NETNSA_NSID {
            nsid = Some(attribute.i32("NETNSA_NSID")?);
        }
    }
    match nsid {
        Some(nsid) => Ok((nsid >= 0).then_some(nsid)),
        None => Err(WireError::MissingAttribute {
            message: "RTM_NEWNSID",
            attribute: "NETNSA_NSID",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bytes_stay_inline_up_to_32_and_keep_longer_ones_whole() {
        let name: ShortBytes = b"eth0".as_slice().into();
        assert!(matches!(name, ShortBytes::Inline { len: 4, .. }));
        assert_eq!(&*name, b"eth0");
        let full: ShortBytes = [7u8; 32].as_slice().into();
        assert!(matches!(full, ShortBytes::Inline { len: 32, .. }));
        let long: ShortBytes = [9u8; 33].as_slice().into();
        assert!(matches!(long, ShortBytes::Heap(_)));
        assert_eq!(&*long, &[9u8; 33][..]);
        assert_eq!(&*ShortBytes::default(), b"");
    }

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
        assert_eq!(&*decode_link(&payload).unwrap().ifname, b"e\xfft\x01h");
        let mut unterminated = ifinfomsg(3, 0);
        unterminated.extend(attribute(IFLA_IFNAME, b"eth1"));
        assert_eq!(&*decode_link(&unterminated).unwrap().ifname, b"eth1");
        let mut empty = ifinfomsg(3, 0);
        empty.extend(attribute(IFLA_IFNAME, b""));
        assert_eq!(&*decode_link(&empty).unwrap().ifname, b"");
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

    #[test]
    fn alternative_names_are_read_from_the_nested_property_list() {
        let mut list = attribute(IFLA_ALT_IFNAME, b"first\0");
        list.extend(attribute(IFLA_ALT_IFNAME, b"sec\xffond\0"));
        list.extend(attribute(99, b"ignored"));
        let mut payload = ifinfomsg(3, 0);
        payload.extend(attribute(IFLA_PROP_LIST | 0x8000, &list));
        payload.extend(attribute(IFLA_IFALIAS, b"an alias\0"));
        payload.extend(attribute(IFLA_TXQLEN, &500u32.to_ne_bytes()));
        payload.extend(attribute(IFLA_BROADCAST, &[0xff; 6]));
        let link = decode_link(&payload).unwrap();
        assert_eq!(link.altnames, [b"first".to_vec(), b"sec\xffond".to_vec()]);
        assert_eq!(link.alias.as_deref(), Some(&b"an alias"[..]));
        assert_eq!(link.txqlen, Some(500));
        assert_eq!(link.broadcast.as_deref(), Some(&[0xff; 6][..]));

        let mut bad = ifinfomsg(3, 0);
        bad.extend(attribute(IFLA_PROP_LIST, &[9, 0, 53, 0]));
        assert!(matches!(
            decode_link(&bad),
            Err(WireError::BadAttributeLength { len: 9, .. })
        ));
    }

    #[test]
    fn the_vxlan_device_is_read_whatever_the_order_and_only_for_vxlan() {
        let data = attribute(IFLA_VXLAN_LINK, &7u32.to_ne_bytes());
        let mut info = attribute(IFLA_INFO_DATA | 0x8000, &data);
        info.extend(attribute(IFLA_INFO_KIND, b"vxlan\0"));
        let mut payload = ifinfomsg(6, 0);
        payload.extend(attribute(IFLA_LINKINFO, &info));
        assert_eq!(decode_link(&payload).unwrap().vxlan_link, Some(7));

        // Another kind's IFLA_INFO_DATA uses attribute 3 for something else entirely.
        let mut info = attribute(IFLA_INFO_KIND, b"macvlan\0");
        info.extend(attribute(IFLA_INFO_DATA, &attribute(IFLA_VXLAN_LINK, &[1])));
        let mut payload = ifinfomsg(5, 0);
        payload.extend(attribute(IFLA_LINKINFO, &info));
        assert_eq!(decode_link(&payload).unwrap().vxlan_link, None);

        let mut info = attribute(IFLA_INFO_KIND, b"vxlan\0");
        info.extend(attribute(IFLA_INFO_DATA, &attribute(IFLA_VXLAN_LINK, &[1])));
        let mut payload = ifinfomsg(6, 0);
        payload.extend(attribute(IFLA_LINKINFO, &info));
        assert_eq!(
            decode_link(&payload),
            Err(WireError::BadPayload {
                what: "IFLA_VXLAN_LINK",
                len: 1,
                expected: 4
            })
        );
    }

    #[test]
    fn stats64_may_be_longer_or_shorter_than_the_counters_read() {
        let mut long = Vec::new();
        for index in 0..30u64 {
            long.extend_from_slice(&(index + 1).to_ne_bytes());
        }
        let stats = decode_stats64(&long);
        assert_eq!((stats.rx_packets, stats.tx_carrier_errors), (1, 18));
        // Like iproute2: what is missing reads as zero, a partial counter too.
        let short = decode_stats64(&long[..8 * 3 + 5]);
        assert_eq!((short.rx_packets, short.rx_bytes), (1, 3));
        assert_eq!((short.tx_bytes, short.tx_carrier_errors), (0, 0));
        assert_eq!(decode_stats64(&[]), RawLinkStats::default());
        let mut payload = ifinfomsg(2, 0);
        payload.extend(attribute(IFLA_STATS64, &long[..16]));
        assert_eq!(
            decode_link(&payload).unwrap().stats64.map(|s| s.tx_packets),
            Some(2)
        );
    }

    fn header(bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }

    #[test]
    fn addresses_decode_their_header_and_attributes() {
        let mut payload = header(&[2, 24, 0x80, 253]);
        payload.extend(5u32.to_ne_bytes());
        payload.extend(attribute(IFA_ADDRESS, &[10, 0, 0, 2]));
        payload.extend(attribute(IFA_LOCAL, &[10, 0, 0, 1]));
        payload.extend(attribute(IFA_LABEL, b"eth0:x\0"));
        payload.extend(attribute(IFA_BROADCAST, &[10, 0, 0, 255]));
        let addr = decode_addr(&payload).unwrap();
        assert_eq!(
            (
                addr.family,
                addr.prefixlen,
                addr.flags,
                addr.scope,
                addr.ifindex
            ),
            (2, 24, 0x80, 253, 5)
        );
        assert_eq!(addr.address.as_deref(), Some(&[10, 0, 0, 2][..]));
        assert_eq!(addr.local.as_deref(), Some(&[10, 0, 0, 1][..]));
        assert_eq!(addr.label.as_deref(), Some(&b"eth0:x"[..]));
        assert_eq!(addr.broadcast.as_deref(), Some(&[10, 0, 0, 255][..]));
        assert!(matches!(
            decode_addr(&payload[..7]),
            Err(WireError::BadPayload {
                what: "ifaddrmsg",
                len: 7,
                expected: 8
            })
        ));
    }

    fn rtmsg(family: u8, dst_len: u8, table: u8, flags: u32) -> Vec<u8> {
        let mut bytes = vec![family, dst_len, 0, 0, table, 4, 253, 1];
        bytes.extend(flags.to_ne_bytes());
        bytes
    }

    #[test]
    fn routes_decode_and_rta_table_overrides_the_header() {
        let mut payload = rtmsg(2, 24, 252, RTM_F_CLONED);
        payload.extend(attribute(RTA_DST, &[10, 9, 0, 0]));
        payload.extend(attribute(RTA_TABLE, &1000u32.to_ne_bytes()));
        payload.extend(attribute(RTA_OIF, &3u32.to_ne_bytes()));
        payload.extend(attribute(RTA_GATEWAY, &[10, 0, 0, 3]));
        payload.extend(attribute(RTA_PRIORITY, &20u32.to_ne_bytes()));
        payload.extend(attribute(RTA_PREFSRC, &[10, 0, 0, 1]));
        let mut via = 10u16.to_ne_bytes().to_vec();
        via.extend([0xfe, 0x80]);
        payload.extend(attribute(RTA_VIA, &via));
        let route = decode_route(&payload).unwrap();
        assert_eq!(
            (route.family, route.dst_len, route.protocol, route.scope),
            (2, 24, 4, 253)
        );
        assert_eq!((route.route_type, route.flags), (1, RTM_F_CLONED));
        assert_eq!(route.table, 1000);
        assert_eq!(route.dst.as_deref(), Some(&[10, 9, 0, 0][..]));
        assert_eq!((route.oif, route.priority), (Some(3), Some(20)));
        assert_eq!(route.gateway.as_deref(), Some(&[10, 0, 0, 3][..]));
        assert_eq!(route.prefsrc.as_deref(), Some(&[10, 0, 0, 1][..]));
        assert_eq!(
            route.via,
            Some(RawVia {
                family: 10,
                address: vec![0xfe, 0x80]
            })
        );

        let plain = decode_route(&rtmsg(10, 0, 254, 0)).unwrap();
        assert_eq!((plain.table, plain.dst, plain.via), (254, None, None));

        let mut short_via = rtmsg(2, 0, 254, 0);
        short_via.extend(attribute(RTA_VIA, &[10]));
        assert_eq!(
            decode_route(&short_via),
            Err(WireError::ShortPayload {
                what: "RTA_VIA",
                len: 1,
                minimum: 2
            })
        );
        let mut empty_via = rtmsg(2, 0, 254, 0);
        empty_via.extend(attribute(RTA_VIA, &10u16.to_ne_bytes()));
        assert_eq!(
            decode_route(&empty_via).unwrap().via,
            Some(RawVia {
                family: 10,
                address: Vec::new()
            })
        );
        let mut bad_oif = rtmsg(2, 0, 254, 0);
        bad_oif.extend(attribute(RTA_OIF, &[1, 2, 3]));
        assert!(matches!(
            decode_route(&bad_oif),
            Err(WireError::BadPayload {
                what: "RTA_OIF",
                ..
            })
        ));
        assert!(matches!(
            decode_route(&[2; 11]),
            Err(WireError::BadPayload { what: "rtmsg", .. })
        ));
    }

    #[test]
    fn neighbors_decode_their_header_and_attributes() {
        let mut payload = vec![10, 0, 0, 0];
        payload.extend(4u32.to_ne_bytes());
        payload.extend(0x80u16.to_ne_bytes());
        payload.extend([0x08, 1]);
        payload.extend(attribute(NDA_DST, &[0xfe; 16]));
        payload.extend(attribute(NDA_LLADDR, &[2, 0, 0, 0, 0, 9]));
        let neighbor = decode_neighbor(&payload).unwrap();
        assert_eq!(
            (
                neighbor.family,
                neighbor.ifindex,
                neighbor.state,
                neighbor.flags,
                neighbor.neighbor_type
            ),
            (10, 4, 0x80, 0x08, 1)
        );
        assert_eq!(neighbor.dst.as_deref(), Some(&[0xfe; 16][..]));
        assert_eq!(neighbor.lladdr.as_deref(), Some(&[2, 0, 0, 0, 0, 9][..]));
        assert!(matches!(
            decode_neighbor(&payload[..11]),
            Err(WireError::BadPayload { what: "ndmsg", .. })
        ));
    }

    #[test]
    fn the_getnsid_request_is_a_padded_rtgenmsg_and_netnsa_fd() {
        // rtgenmsg { AF_UNSPEC } and 3 bytes of padding, then NETNSA_FD: length 8, type 3,
        // the descriptor; in host byte order.
        let mut expected = vec![0, 0, 0, 0];
        expected.extend(8u16.to_ne_bytes());
        expected.extend(3u16.to_ne_bytes());
        expected.extend(7u32.to_ne_bytes());
        assert_eq!(getnsid_request_payload(7), expected);
    }

    #[test]
    fn nsid_replies_decode_to_an_nsid_or_none() {
        let reply = |nsid: i32| {
            let mut payload = vec![0, 0, 0, 0];
            payload.extend(attribute(NETNSA_NSID, &nsid.to_ne_bytes()));
            payload
        };
        assert_eq!(decode_nsid(&reply(5)), Ok(Some(5)));
        assert_eq!(decode_nsid(&reply(0)), Ok(Some(0)));
        assert_eq!(decode_nsid(&reply(-1)), Ok(None));
        assert_eq!(
            decode_nsid(&[0, 0, 0, 0]),
            Err(WireError::MissingAttribute {
                message: "RTM_NEWNSID",
                attribute: "NETNSA_NSID"
            })
        );
        assert!(matches!(
            decode_nsid(&[0, 0]),
            Err(WireError::BadPayload {
                what: "rtgenmsg",
                ..
            })
        ));
        let mut short = vec![0, 0, 0, 0];
        short.extend(attribute(NETNSA_NSID, &[1, 0]));
        assert!(matches!(
            decode_nsid(&short),
            Err(WireError::BadPayload {
                what: "NETNSA_NSID",
                ..
            })
        ));
    }
}
