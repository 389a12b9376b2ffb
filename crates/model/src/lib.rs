//! The JSON contract that nshelper prints, version 1.
//!
//! Everything a consumer parses is defined here, so that the contract changes in one place
//! and a change shows up as a diff of this file. Key names follow `ip -j link` where iproute2
//! has a name for the same fact.
//!
//! # Parsing nshelper's output
//!
//! Other Rust programs depend on this crate to parse what nshelper prints: [`QueryDocument`]
//! for `nshelper query`, [`ListDocument`] for `nshelper list`, [`WhoisDocument`] for
//! `nshelper whois`. It is not published on crates.io; name it as a path or git dependency,
//! next to serde_json:
//!
//! ```toml
//! [dependencies]
//! nshelper-model = { path = "../nshelper/crates/model" }  # or { git = "<nshelper's repository>" }
//! serde_json = "1"
//! ```
//!
//! ```rust
//! use std::error::Error;
//! use std::process::{Command, Output};
//!
//! use nshelper_model::QueryDocument;
//!
//! /// The veths of the container whose process is `pid`, each with its peer's name.
//! fn container_veths(pid: u32) -> Result<Vec<(String, Option<String>)>, Box<dyn Error>> {
//!     let output = Command::new("nshelper")
//!         .args(["query", "veths", "--pid", &pid.to_string()])
//!         .output()?;
//!     veths_of(&output)
//! }
//!
//! fn veths_of(output: &Output) -> Result<Vec<(String, Option<String>)>, Box<dyn Error>> {
//!     // The document is printed even when a target fails (exit status 1): errors say why.
//!     let document = serde_json::from_slice::<QueryDocument>(&output.stdout)?;
//!     if let Some(error) = document.errors.first() {
//!         return Err(format!("{}: {}", error.kind.as_str(), error.message).into());
//!     }
//!     let mut veths = Vec::new();
//!     for result in &document.results {
//!         for link in result.contents.links.iter().flatten() {
//!             let peer = link.peer.as_ref().and_then(|peer| peer.ifname.clone());
//!             veths.push((link.ifname.clone(), peer));
//!         }
//!     }
//!     Ok(veths)
//! }
//! # // What nshelper printed for a container with one veth, and for a pid that did not exist.
//! # let printed = |stdout: &[u8]| Output {
//! #     status: Default::default(),
//! #     stdout: stdout.to_vec(),
//! #     stderr: Vec::new(),
//! # };
//! # let one_veth = printed(br#"{"version":1,"results":[{"target":{"kind":"pid","pid":4242},"namespaces":{"mnt":4026532248,"net":4026532251,"pid":4026532250},"links":[{"ifindex":2,"ifname":"eth0","kind":"veth","flags":["BROADCAST","MULTICAST"],"mtu":1500,"operstate":"DOWN","address":"1e:2b:25:96:13:dc","master":null,"link_index":2,"link_netnsid":0,"link":null,"alias":null,"altnames":[],"txqlen":1000,"broadcast":"ff:ff:ff:ff:ff:ff","link_type":"ether","peer":{"ifindex":2,"netns":4026532179,"ifname":"veth1a2b3c"}}]}],"errors":[]}"#);
//! # let veths = veths_of(&one_veth).unwrap();
//! # assert_eq!(veths, [("eth0".to_owned(), Some("veth1a2b3c".to_owned()))]);
//! # let no_process = printed(br#"{"version":1,"results":[],"errors":[{"target":{"kind":"pid","pid":4242},"kind":"not_found","message":"no process with pid 4242"}]}"#);
//! # let error = veths_of(&no_process).unwrap_err().to_string();
//! # assert_eq!(error, "not_found: no process with pid 4242");
//! # let _ = container_veths;
//! ```
//!
//! Parsing ignores keys this version of the crate does not know, so that a program keeps
//! working when a later nshelper adds keys within contract version 1; [`CONTRACT_VERSION`]
//! changes only with changes that break a consumer. The JSON Schemas of the documents
//! (feature `schema`, printed by `nshelper schema`) are exact instead: they reject any key
//! nshelper does not print.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod net;
pub use net::*;

#[cfg(feature = "schema")]
pub mod schema;

/// Bumped only for changes that can break an existing consumer.
pub const CONTRACT_VERSION: u32 = 1;

/// The one document written to stdout by `nshelper query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct QueryDocument {
    #[cfg_attr(feature = "schema", schemars(extend("const" = CONTRACT_VERSION)))]
    pub version: u32,
    pub results: Vec<TargetResult>,
    pub errors: Vec<TargetError>,
}

impl QueryDocument {
    pub fn new(results: Vec<TargetResult>, errors: Vec<TargetError>) -> Self {
        QueryDocument {
            version: CONTRACT_VERSION,
            results,
            errors,
        }
    }
}

/// Which namespaces a result or error is about, as the caller named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The namespaces of a process.
    Pid { pid: u32 },
    /// A network namespace file: `name` is set when it was given as an `ip netns` name.
    Netns { name: Option<String>, path: String },
    /// The helper's own namespaces.
    #[serde(rename = "self")]
    OwnNamespaces,
    /// A network namespace found by `--all`, with every way it was found.
    Discovered(NetnsIdentity),
}

/// A network namespace of the host and what holds it: names in `/run/netns`, nsfs bind
/// mounts, and processes (or single threads) inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct NetnsIdentity {
    /// The namespace's inode.
    pub netns: u64,
    pub names: Vec<String>,
    pub paths: Vec<String>,
    pub pids: Vec<u32>,
    /// Threads that are in it alone, their process being elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<u32>,
    /// Open descriptors that refer to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<FdHolder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct FdHolder {
    pub pid: u32,
    pub fd: u32,
}

/// Namespace type name (`net`, `pid`, `mnt`, ...) to the inode number of that namespace.
pub type NamespaceInodes = BTreeMap<String, u64>;

/// What one target holds. Only the parts that were asked for are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct TargetResult {
    pub target: Target,
    /// The namespaces the query process was in while it ran: proof of entry.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::namespace_inodes")
    )]
    pub namespaces: NamespaceInodes,
    #[serde(flatten)]
    pub contents: NetnsContents,
}

/// The network state read inside one namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct NetnsContents {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<Link>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addrs: Option<Vec<Address>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbors: Option<Vec<Neighbor>>,
}

/// The document of `nshelper list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct ListDocument {
    #[cfg_attr(feature = "schema", schemars(extend("const" = CONTRACT_VERSION)))]
    pub version: u32,
    pub namespaces: Vec<ListedNetns>,
    pub errors: Vec<TargetError>,
}

/// One network namespace of the host, as `lsns -t net` would list it and more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct ListedNetns {
    pub netns: u64,
    /// `SO_NETNS_COOKIE`: unlike the inode, never reused while the system runs.
    pub cookie: Option<u64>,
    /// The id the helper's own namespace gives it, if any.
    pub nsid: Option<i32>,
    pub names: Vec<String>,
    pub paths: Vec<String>,
    pub pids: Vec<u32>,
    /// Threads that are in it alone, their process being elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<u32>,
    /// Open descriptors that refer to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<FdHolder>,
    pub processes: Vec<ProcessSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct ProcessSummary {
    pub pid: u32,
    pub command: String,
    /// The cgroup path, where container runtimes put their container ids.
    pub cgroup: String,
}

/// The document of `nshelper whois`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct WhoisDocument {
    #[cfg_attr(feature = "schema", schemars(extend("const" = CONTRACT_VERSION)))]
    pub version: u32,
    pub matches: Vec<WhoisMatch>,
    pub errors: Vec<TargetError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct WhoisMatch {
    pub netns: u64,
    pub names: Vec<String>,
    pub pids: Vec<u32>,
    /// The link that matched, or the one that carries the matched address.
    pub link: Link,
    /// The other end, for veths.
    pub peer: Option<WhoisPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct WhoisPeer {
    pub netns: u64,
    pub ifindex: u32,
    /// Null when the peer's namespace could not be read.
    pub ifname: Option<String>,
    pub names: Vec<String>,
    pub pids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct TargetError {
    pub target: Target,
    pub kind: ErrorKind,
    pub message: String,
}

/// The machine-readable error classes of contract version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    PermissionDenied,
    InvalidTarget,
    Timeout,
    ChildFailed,
    Netlink,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::InvalidTarget => "invalid_target",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ChildFailed => "child_failed",
            ErrorKind::Netlink => "netlink",
        }
    }
}

/// An interface name from the kernel is bytes, not text. Returns the text form and, when
/// the bytes are not UTF-8, their exact hex so that nothing is lost.
pub fn name_from_bytes(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => {
            let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
            (String::from_utf8_lossy(bytes).into_owned(), Some(hex))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_serialise_with_a_kind_tag() {
        let own = serde_json::to_string(&Target::OwnNamespaces).unwrap();
        assert_eq!(own, r#"{"kind":"self"}"#);
        let pid = serde_json::to_string(&Target::Pid { pid: 42 }).unwrap();
        assert_eq!(pid, r#"{"kind":"pid","pid":42}"#);
        let netns = serde_json::to_string(&Target::Netns {
            name: None,
            path: "/proc/1/ns/net".into(),
        })
        .unwrap();
        assert_eq!(
            netns,
            r#"{"kind":"netns","name":null,"path":"/proc/1/ns/net"}"#
        );
    }

    #[test]
    fn error_kinds_use_the_documented_names() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied,
            ErrorKind::InvalidTarget,
            ErrorKind::Timeout,
            ErrorKind::ChildFailed,
            ErrorKind::Netlink,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn names_that_are_not_utf8_keep_their_bytes() {
        assert_eq!(name_from_bytes(b"eth0"), ("eth0".to_owned(), None));
        let (text, hex) = name_from_bytes(b"a\xffb");
        assert_eq!(text, "a\u{fffd}b");
        assert_eq!(hex.as_deref(), Some("61ff62"));
    }

    #[test]
    fn peer_is_omitted_on_links_that_are_not_veths() {
        let link = Link {
            ifindex: 1,
            ifname: "lo".into(),
            ifname_hex: None,
            kind: None,
            flags: vec!["LOOPBACK".into()],
            mtu: Some(65536),
            operstate: Some("UNKNOWN".into()),
            address: Some("00:00:00:00:00:00".into()),
            master: None,
            link_index: None,
            link_netnsid: None,
            link: None,
            alias: None,
            alias_hex: None,
            altnames: Vec::new(),
            altnames_hex: None,
            txqlen: Some(1000),
            broadcast: None,
            link_type: "loopback".into(),
            stats64: None,
            peer: None,
        };
        let value = serde_json::to_value(&link).unwrap();
        assert!(value.get("peer").is_none());
        assert!(value.get("ifname_hex").is_none());
        assert_eq!(value["master"], serde_json::Value::Null);
    }
}
