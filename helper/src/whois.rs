//! `nshelper whois QUERY`: which namespace holds an interface or address, and who is at the
//! other end of it.

use std::collections::HashMap;
use std::net::IpAddr;

use nshelper_model::{
    Link, NetnsIdentity, Target, TargetError, WhoisDocument, WhoisMatch, WhoisPeer,
    CONTRACT_VERSION,
};

use crate::cli::WhoisArgs;
use crate::inside::{InsideReport, Wanted};
use crate::jobs::{self, Outcome};
use crate::query::{discover_host, known_namespaces};

/// What a whois query names, decided by its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needle {
    /// An ifindex: meaningful in the caller's own namespace only.
    Index(u32),
    Ip(IpAddr),
    /// A MAC address, in lower-case colon form.
    Mac(String),
    Name(String),
}

impl Needle {
    pub fn parse(query: &str) -> Needle {
        if let Ok(index) = query.parse::<u32>() {
            return Needle::Index(index);
        }
        // An address with a prefix length names the address.
        let address = query.split_once('/').map_or(query, |(ip, _)| ip);
        if let Ok(ip) = address.parse::<IpAddr>() {
            return Needle::Ip(ip);
        }
        if let Some(mac) = normalise_mac(query) {
            return Needle::Mac(mac);
        }
        Needle::Name(query.to_owned())
    }
}

/// `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` or `2:0:0:0:0:9` as `aa:bb:cc:dd:ee:ff`; None
/// for anything else.
fn normalise_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let octets: Option<Vec<u8>> = parts
        .iter()
        .map(|p| {
            (1..=2)
                .contains(&p.len())
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect();
    octets.map(|octets| {
        octets
            .iter()
            .map(|o| format!("{o:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

pub fn run(args: &WhoisArgs) -> WhoisDocument {
    let needle = Needle::parse(&args.query);
    let wanted = Wanted {
        links: true,
        addrs: matches!(needle, Needle::Ip(_)),
        ..Wanted::default()
    };
    let (proc, jobs, mut errors) = match discover_host(wanted) {
        Ok(found) => found,
        Err(failure) => {
            return document(Vec::new(), vec![failure.for_target(Target::OwnNamespaces)])
        }
    };
    let (known, own_inode) = known_namespaces(&proc, &jobs);
    let (mut outcomes, _) = jobs::run_all(&proc, jobs, &known, args.common.timeout, false, false);
    jobs::resolve_peers(&mut outcomes, None);

    let mut scanned: Vec<(NetnsIdentity, InsideReport)> = Vec::new();
    for (target, report) in outcomes.into_iter().map(Outcome::into_report) {
        let Target::Discovered(identity) = target else {
            continue;
        };
        match report {
            Ok(report) => scanned.push((identity, report)),
            Err(failure) => errors.push(failure.for_target(Target::Discovered(identity))),
        }
    }
    let identities: HashMap<u64, &NetnsIdentity> =
        scanned.iter().map(|(id, _)| (id.netns, id)).collect();
    let mut matches = Vec::new();
    for (identity, report) in &scanned {
        let links = report.contents.links.as_deref().unwrap_or_default();
        for link in matching_links(&needle, identity, report, links, own_inode, &args.query) {
            let peer = link.peer.as_ref().and_then(|peer| {
                let netns = peer.netns?;
                let holder = identities.get(&netns);
                Some(WhoisPeer {
                    netns,
                    ifindex: peer.ifindex,
                    ifname: peer.ifname.clone(),
                    names: holder.map(|h| h.names.clone()).unwrap_or_default(),
                    pids: holder.map(|h| h.pids.clone()).unwrap_or_default(),
                })
            });
            matches.push(WhoisMatch {
                netns: identity.netns,
                names: identity.names.clone(),
                pids: identity.pids.clone(),
                link: link.clone(),
                peer,
            });
        }
    }
    document(matches, errors)
}

fn matching_links<'a>(
    needle: &Needle,
    identity: &NetnsIdentity,
    report: &InsideReport,
    links: &'a [Link],
    own_inode: Option<u64>,
    query: &str,
) -> Vec<&'a Link> {
    // Whatever the query looks like, an interface of that name is a match: names such as
    // "42" or "10.1.2.3" are allowed.
    let by_name = links
        .iter()
        .filter(|l| l.ifname == query || l.altnames.iter().any(|a| a == query));
    let by_form: Vec<&Link> = match needle {
        Needle::Index(index) if Some(identity.netns) == own_inode => {
            links.iter().filter(|l| l.ifindex == *index).collect()
        }
        Needle::Index(_) => Vec::new(),
        Needle::Name(_) => Vec::new(),
        Needle::Mac(mac) => links
            .iter()
            .filter(|l| l.address.as_deref() == Some(mac.as_str()))
            .collect(),
        Needle::Ip(ip) => {
            let carriers: Vec<u32> = report
                .contents
                .addrs
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter(|a| a.local.parse::<IpAddr>().ok() == Some(*ip))
                .map(|a| a.ifindex)
                .collect();
            links
                .iter()
                .filter(|l| carriers.contains(&l.ifindex))
                .collect()
        }
    };
    let mut found: Vec<&Link> = by_form;
    for link in by_name {
        if !found.iter().any(|f| f.ifindex == link.ifindex) {
            found.push(link);
        }
    }
    found
}

fn document(matches: Vec<WhoisMatch>, errors: Vec<TargetError>) -> WhoisDocument {
    WhoisDocument {
        version: CONTRACT_VERSION,
        matches,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_told_apart_by_their_form() {
        assert_eq!(Needle::parse("7"), Needle::Index(7));
        assert_eq!(
            Needle::parse("10.0.3.7"),
            Needle::Ip("10.0.3.7".parse().unwrap())
        );
        assert_eq!(
            Needle::parse("fe80::1"),
            Needle::Ip("fe80::1".parse().unwrap())
        );
        assert_eq!(
            Needle::parse("9A-22-71-D3-5E-DC"),
            Needle::Mac("9a:22:71:d3:5e:dc".into())
        );
        assert_eq!(Needle::parse("veth1a2b"), Needle::Name("veth1a2b".into()));
        assert_eq!(
            Needle::parse("2:0:0:0:0:9"),
            Needle::Mac("02:00:00:00:00:09".into())
        );
        assert_eq!(
            Needle::parse("10.0.3.7/24"),
            Needle::Ip("10.0.3.7".parse().unwrap())
        );
        // A name that merely looks hexadecimal is still a name.
        assert_eq!(Needle::parse("beef"), Needle::Name("beef".into()));
    }
}
