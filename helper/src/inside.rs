//! What runs in the query process, inside a target's namespaces, with no capabilities once
//! its netlink socket exists. Its report crosses the pipe as JSON; only the parent turns it
//! into the contract's shapes.

use std::os::fd::{AsFd, OwnedFd};

use nshelper_model::{ErrorKind, NamespaceInodes, NetnsContents};
use nshelper_namespaces::{socket_netns_cookie, NsType, StopError, WalkStop};
use nshelper_netlink::{addrs, links, neighbors, routes, NetlinkError, RouteSocket};
use serde::{Deserialize, Serialize};

use crate::failure::Failure;
use crate::privileges;

/// What to read inside each namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub links: bool,
    pub addrs: bool,
    pub routes: bool,
    pub neighbors: bool,
    pub stats: bool,
    pub cookie: bool,
    /// Map the nsid of every known namespace, not only those the links refer to.
    pub all_nsids: bool,
}

/// A network namespace the call knows, offered to every query process so that it can name
/// the namespaces its own nsids refer to.
pub struct KnownNetns {
    pub inode: u64,
    pub file: OwnedFd,
}

/// The query process's report to the parent, parsed strictly: it comes from a process
/// that read data from inside a target.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsideReport {
    pub namespaces: NamespaceInodes,
    pub contents: NetnsContents,
    /// The nsids this namespace gives to known namespaces: `(nsid, inode)`.
    pub nsids: Vec<(i32, u64)>,
    pub cookie: Option<u64>,
}

/// The body of the query process: reads what is wanted and encodes the report, or the
/// failure, for the pipe.
pub fn run(
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
) -> Result<Vec<u8>, Vec<u8>> {
    match read(wanted, known, inodes) {
        Ok(report) => serde_json::to_vec(&report).map_err(|e| encode_failure(&e.to_string())),
        Err(failure) => Err(serde_json::to_vec(&failure).unwrap_or_default()),
    }
}

fn encode_failure(reason: &str) -> Vec<u8> {
    let failure = Failure::new(
        ErrorKind::ChildFailed,
        format!("cannot encode the report: {reason}"),
    );
    serde_json::to_vec(&failure).unwrap_or_default()
}

fn read(
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
) -> Result<InsideReport, Failure> {
    // The socket must be made here, after setns: it belongs to the namespace it was
    // created in. Creating it is the last thing that may need privilege.
    let socket = RouteSocket::open()?;
    privileges::drop_all().map_err(|e| Failure::new(ErrorKind::ChildFailed, e))?;
    read_with(socket, wanted, known, inodes)
}

/// One namespace's outcome in a walk, in the order of the walk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkOutcome {
    pub report: Option<InsideReport>,
    pub failure: Option<Failure>,
}

/// The body of the walker, once it holds a socket in every namespace: gives up every
/// privilege, then reads each namespace through its socket.
pub fn run_walk(
    wanted: &[Wanted],
    known: &[KnownNetns],
    stops: Vec<WalkStop<RouteSocket, NetlinkError>>,
) -> Result<Vec<u8>, Vec<u8>> {
    if let Err(reason) = privileges::drop_all() {
        let failure = Failure::new(ErrorKind::ChildFailed, reason);
        return Err(serde_json::to_vec(&failure).unwrap_or_default());
    }
    let outcomes: Vec<WalkOutcome> = stops
        .into_iter()
        .map(|stop| {
            let outcome = match stop.opened {
                Ok((socket, inodes)) => {
                    let wanted = wanted.get(stop.index).copied().unwrap_or_default();
                    read_with(socket, wanted, known, &inodes)
                }
                Err(StopError::Namespaces(error)) => Err(Failure::from(error)),
                Err(StopError::Open(error)) => Err(Failure::from(error)),
            };
            match outcome {
                Ok(report) => WalkOutcome {
                    report: Some(report),
                    failure: None,
                },
                Err(failure) => WalkOutcome {
                    report: None,
                    failure: Some(failure),
                },
            }
        })
        .collect();
    serde_json::to_vec(&outcomes).map_err(|e| encode_failure(&e.to_string()))
}

/// Reads what is wanted through a socket of the namespace, without privilege.
fn read_with(
    mut socket: RouteSocket,
    wanted: Wanted,
    known: &[KnownNetns],
    inodes: &[(NsType, u64)],
) -> Result<InsideReport, Failure> {
    let netns_inode = inodes
        .iter()
        .find(|(kind, _)| *kind == NsType::Net)
        .map_or(0, |(_, inode)| *inode);
    // Names of interfaces are needed by addresses, routes and neighbours too.
    let need_links = wanted.links || wanted.addrs || wanted.routes || wanted.neighbors;
    let raw_links = if need_links && wanted.stats {
        socket.dump_links()?
    } else if need_links {
        socket.dump_links_without_stats()?
    } else {
        Vec::new()
    };
    let mut contents = NetnsContents::default();
    if wanted.addrs {
        contents.addrs = Some(addrs::addrs_from_dump(socket.dump_addrs()?, &raw_links));
    }
    if wanted.routes {
        contents.routes = Some(routes::routes_from_dump(socket.dump_routes()?, &raw_links));
    }
    if wanted.neighbors {
        contents.neighbors = Some(neighbors::neighbors_from_dump(
            socket.dump_neighbors()?,
            &raw_links,
        ));
    }
    let mut nsids = Vec::new();
    if wanted.links {
        let links = links::links_from_dump(raw_links, netns_inode, wanted.stats);
        let mut wanted_nsids: Vec<i32> = links.iter().filter_map(|l| l.link_netnsid).collect();
        wanted_nsids.sort_unstable();
        wanted_nsids.dedup();
        // Known namespaces come with the helper's own first: most peers live there, so
        // most searches end at the first request.
        for candidate in known {
            if wanted_nsids.is_empty() {
                break;
            }
            if let Some(nsid) = socket.nsid_of(candidate.file.as_fd())? {
                if let Ok(at) = wanted_nsids.binary_search(&nsid) {
                    wanted_nsids.remove(at);
                    nsids.push((nsid, candidate.inode));
                }
            }
        }
        contents.links = Some(links);
    }
    if wanted.all_nsids {
        nsids.clear();
        for candidate in known {
            if let Some(nsid) = socket.nsid_of(candidate.file.as_fd())? {
                nsids.push((nsid, candidate.inode));
            }
        }
    }
    let cookie = if wanted.cookie {
        let cookie = socket_netns_cookie(&socket).map_err(|errno| {
            Failure::new(ErrorKind::Netlink, format!("SO_NETNS_COOKIE: {errno}"))
        })?;
        Some(cookie)
    } else {
        None
    };
    let namespaces = inodes
        .iter()
        .map(|(kind, inode)| (kind.name().to_owned(), *inode))
        .collect();
    Ok(InsideReport {
        namespaces,
        contents,
        nsids,
        cookie,
    })
}
