//! Runs the query process for each target, one after the other, and reads their reports.
//!
//! Reports are kept as bytes until every child has been made: the parent needs its
//! privileges to make them, and parses what came from inside the targets only after it has
//! given them up.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nshelper_model::{ErrorKind, Link, Target};
use nshelper_namespaces::{spawn, JoinPlan, ProcRoot};

use crate::failure::Failure;
use crate::inside::{self, InsideReport, KnownNetns, Wanted};
use crate::privileges;

pub struct Job {
    pub target: Target,
    pub plan: JoinPlan,
    pub wanted: Wanted,
}

pub struct Outcome {
    pub target: Target,
    pub report: Result<InsideReport, Failure>,
}

pub fn run_all(
    proc: &ProcRoot,
    jobs: Vec<Job>,
    known: &[KnownNetns],
    timeout: Duration,
) -> Vec<Outcome> {
    let raw: Vec<(Target, Result<Vec<u8>, Failure>)> = jobs
        .into_iter()
        .map(|job| {
            let wanted = job.wanted;
            let keep: Vec<BorrowedFd<'_>> = known.iter().map(|k| k.file.as_fd()).collect();
            let bytes = spawn(job.plan, proc, &keep, |inodes| {
                inside::run(wanted, known, inodes)
            })
            .and_then(|running| running.wait(timeout))
            .map_err(Failure::from);
            (job.target, bytes)
        })
        .collect();
    let dropped = privileges::drop_all();
    raw.into_iter()
        .map(|(target, bytes)| {
            let report = match (&dropped, bytes) {
                (Err(reason), _) => Err(Failure::new(ErrorKind::ChildFailed, reason.clone())),
                (Ok(()), Err(failure)) => Err(failure),
                (Ok(()), Ok(bytes)) => serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::new(
                        ErrorKind::ChildFailed,
                        format!("the query process sent an unreadable report: {e}"),
                    )
                }),
            };
            Outcome { target, report }
        })
        .collect()
}

/// Names the namespace and interface at the other end of every veth whose peer lives in
/// another namespace, from the nsids each report mapped and the links of all reports.
pub fn resolve_peers(outcomes: &mut [Outcome]) {
    let mut names: HashMap<u64, HashMap<u32, (String, Option<String>)>> = HashMap::new();
    for report in outcomes.iter().filter_map(|o| o.report.as_ref().ok()) {
        let (Some(inode), Some(links)) = (report.namespaces.get("net"), &report.contents.links)
        else {
            continue;
        };
        names.insert(*inode, links.iter().map(name_entry).collect());
    }
    for report in outcomes.iter_mut().filter_map(|o| o.report.as_mut().ok()) {
        let nsids: HashMap<i32, u64> = report.nsids.iter().copied().collect();
        let Some(links) = report.contents.links.as_mut() else {
            continue;
        };
        for link in links {
            let (Some(nsid), Some(peer)) = (link.link_netnsid, link.peer.as_mut()) else {
                continue;
            };
            let Some(inode) = nsids.get(&nsid) else {
                continue;
            };
            peer.netns = Some(*inode);
            if let Some((name, hex)) = names.get(inode).and_then(|n| n.get(&peer.ifindex)) {
                peer.ifname = Some(name.clone());
                peer.ifname_hex = hex.clone();
            }
        }
    }
}

fn name_entry(link: &Link) -> (u32, (String, Option<String>)) {
    (link.ifindex, (link.ifname.clone(), link.ifname_hex.clone()))
}
