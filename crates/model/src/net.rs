//! What nshelper reports from inside a network namespace: links, addresses, routes and
//! neighbours, each keyed as `ip -j` keys it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One network interface, as `ip -j link` names its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Link {
    pub ifindex: u32,
    /// The name as text; bytes that are not UTF-8 appear as U+FFFD here and exactly in
    /// `ifname_hex`.
    pub ifname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname_hex: Option<String>,
    /// `IFLA_INFO_KIND`: `veth`, `bridge`, ...; null for devices without rtnl link ops.
    pub kind: Option<String>,
    pub flags: Vec<Cow<'static, str>>,
    pub mtu: Option<u32>,
    pub operstate: Option<Cow<'static, str>>,
    pub address: Option<String>,
    /// The ifindex of this link's master (a bridge, for instance).
    pub master: Option<u32>,
    /// `IFLA_LINK`: the lower or peer ifindex, in the namespace named by `link_netnsid`.
    pub link_index: Option<u32>,
    /// The peer namespace's id as the queried namespace numbers it; null when it is the same
    /// namespace.
    pub link_netnsid: Option<i32>,
    /// The ifindex of the parent link in the same namespace: the lower device of a macvlan,
    /// the device of a vxlan, the peer of a veth. Null when the parent is in another
    /// namespace (`link_netnsid` is set) or there is none. (`ip -j link` prints the parent's
    /// name as `link`, and a vxlan's as `linkinfo.info_data.link`.)
    pub link: Option<u32>,
    /// `IFLA_IFALIAS`, as `ip link set X alias` sets it (`ip -j` calls it `ifalias`).
    /// Bytes of the alias that are not UTF-8 appear as U+FFFD in `alias`, and the alias
    /// exactly, as hex, here; present only then.
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_hex: Option<String>,
    /// Alternative names (`ip link property add dev X altname Y`), in the kernel's order.
    pub altnames: Vec<String>,
    /// Every altname as hex, present only when one of them is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altnames_hex: Option<Vec<String>>,
    pub txqlen: Option<u32>,
    /// The link-layer broadcast address, or the peer of a point-to-point tunnel, formatted
    /// like `address`.
    pub broadcast: Option<String>,
    /// The hardware type as iproute2 6.1 names it: `ether`, `loopback`, `none`, ...; a type
    /// it has no name for is its number in brackets, such as `[519]`.
    pub link_type: Cow<'static, str>,
    /// Present with `--stats`: `IFLA_STATS64`, as `ip -s -j link` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats64: Option<LinkStats>,
    /// Set on veths only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Peer>,
}

/// The other end of a veth pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Peer {
    pub ifindex: u32,
    /// Inode of the peer's network namespace, where it could be determined.
    pub netns: Option<u64>,
    pub ifname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname_hex: Option<String>,
}

/// The `stats64` counters of a link, grouped as `ip -s -j link` groups them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct LinkStats {
    pub rx: RxStats,
    pub tx: TxStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct RxStats {
    pub bytes: u64,
    pub packets: u64,
    pub errors: u64,
    pub dropped: u64,
    pub over_errors: u64,
    pub multicast: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct TxStats {
    pub bytes: u64,
    pub packets: u64,
    pub errors: u64,
    pub dropped: u64,
    pub carrier_errors: u64,
    pub collisions: u64,
}

/// One address of an interface (`ip -j addr`'s `addr_info`, flattened with its link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Address {
    pub ifindex: u32,
    pub ifname: Option<String>,
    /// `inet` or `inet6`.
    pub family: String,
    pub local: String,
    pub prefixlen: u8,
    /// `host`, `link`, `global`, ... or the number when it has no name.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    /// `IFA_LABEL`: IPv4 only; the interface's name unless the address was given a label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The peer of a point-to-point address, where it differs from `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// One route, from any table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Route {
    /// `inet` or `inet6`.
    pub family: String,
    /// CIDR text; a default route is `0.0.0.0/0` or `::/0`.
    pub dst: String,
    /// The table number: 254 is main, 255 is local.
    pub table: u32,
    /// `unicast`, `local`, `broadcast`, `unreachable`, ...
    #[serde(rename = "type")]
    pub route_type: String,
    /// `kernel`, `boot`, `static`, ... or the number when it has no name.
    pub protocol: String,
    /// `global`, `link`, `host`, ... or the number when it has no name.
    pub scope: String,
    /// `RTA_GATEWAY`, or the address of `RTA_VIA` (a gateway of the other family, which `ip`
    /// prints as `via.host`). Null for multipath routes, whose nexthops are not reported.
    pub gateway: Option<String>,
    /// The name of the `oif` link, when it is known.
    pub dev: Option<String>,
    pub oif: Option<u32>,
    /// `RTA_PRIORITY`; the kernel leaves it out of IPv4 routes whose metric is 0.
    pub metric: Option<u32>,
    pub prefsrc: Option<String>,
    /// The paths of a multipath route, as `ip -j route` lists them; absent for one path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nexthops: Option<Vec<Nexthop>>,
}

/// One path of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Nexthop {
    pub gateway: Option<String>,
    pub dev: Option<String>,
    pub oif: u32,
    pub weight: u32,
}

/// One neighbour (ARP or NDP) entry. Every entry is reported, also those `ip neigh` hides
/// unless asked for `nud all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Neighbor {
    pub ifindex: u32,
    pub dev: Option<String>,
    /// `inet` or `inet6`.
    pub family: String,
    pub dst: String,
    pub lladdr: Option<String>,
    /// NUD state names as `ip` prints them, such as `["PERMANENT"]`; `["NONE"]` for an entry
    /// without state, which `ip` prints without a `state`.
    pub state: Vec<String>,
}
