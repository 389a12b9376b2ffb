//! Runs the queries of a call and reads their reports: one walker child for every target
//! that is a network namespace alone, and a fork/setns/fork query process for each target
//! that needs pid or mount namespaces too.
//!
//! Reports are kept as bytes until every child has been made: the parent needs its
//! privileges to make them, and parses what came from inside the targets only after it has
//! given them up.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nshelper_model::{ErrorKind, Link, Target};
use nshelper_namespaces::{spawn, spawn_walk, JoinPlan, ProcRoot, DEFAULT_PROCESS_NAMESPACES};
use nshelper_netlink::RouteSocket;

use crate::failure::Failure;
use crate::inside::{self, InsideReport, KnownNetns, WalkOutcome, Wanted};
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

/// A job and its place among the call's targets, which the output keeps.
type Numbered = (usize, Job);

pub fn run_all(
    proc: &ProcRoot,
    jobs: Vec<Job>,
    known: &[KnownNetns],
    timeout: Duration,
) -> Vec<Outcome> {
    let keep: Vec<BorrowedFd<'_>> = known.iter().map(|k| k.file.as_fd()).collect();
    // Targets that are network namespaces alone are all read by one child that moves
    // between them; the others need a fork of their own to join pid and mount namespaces.
    let (walked, forked): (Vec<Numbered>, Vec<Numbered>) =
        jobs.into_iter().enumerate().partition(|(_, job)| {
            job.plan.joins_network_namespace_only()
                && job.plan.reported() == DEFAULT_PROCESS_NAMESPACES
        });

    let mut raw: Vec<(usize, Target, Result<Vec<u8>, Failure>)> = Vec::new();
    for (at, job) in forked {
        let wanted = job.wanted;
        let bytes = spawn(job.plan, proc, &keep, |inodes| {
            inside::run(wanted, known, inodes)
        })
        .and_then(|running| running.wait(timeout))
        .map_err(Failure::from);
        raw.push((at, job.target, bytes));
    }
    let walk = (!walked.is_empty()).then(|| {
        let wanted: Vec<Wanted> = walked.iter().map(|(_, job)| job.wanted).collect();
        let files: Vec<BorrowedFd<'_>> = walked
            .iter()
            .filter_map(|(_, job)| job.plan.net_namespace())
            .collect();
        // One child visits them all, and bounds each namespace's reading by the timeout
        // itself, so that a slow one fails alone; the child as a whole gets a timeout per
        // namespace, and a second.
        let deadline = timeout
            .saturating_mul(u32::try_from(files.len()).unwrap_or(u32::MAX))
            .saturating_add(Duration::from_secs(1));
        spawn_walk(&files, proc, &keep, RouteSocket::open, |stops| {
            inside::run_walk(&wanted, known, timeout, stops)
        })
        .and_then(|running| running.wait(deadline))
        .map_err(Failure::from)
    });

    // From here on nothing needs privilege, and everything read came from inside a target.
    let dropped = privileges::drop_all();
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    for (at, target, bytes) in raw {
        let report = match (&dropped, bytes) {
            (Err(reason), _) => Err(Failure::new(ErrorKind::ChildFailed, reason.clone())),
            (Ok(()), Err(failure)) => Err(failure),
            (Ok(()), Ok(bytes)) => parse(&bytes),
        };
        outcomes.push((at, Outcome { target, report }));
    }
    if let Some(bytes) = walk {
        let parsed: Result<Vec<WalkOutcome>, Failure> = match (&dropped, bytes) {
            (Err(reason), _) => Err(Failure::new(ErrorKind::ChildFailed, reason.clone())),
            (Ok(()), Err(failure)) => Err(failure),
            (Ok(()), Ok(bytes)) => parse(&bytes),
        };
        match parsed {
            Ok(reports) if reports.len() == walked.len() => {
                for ((at, job), walked) in walked.into_iter().zip(reports) {
                    let report = match (walked.report, walked.failure) {
                        (Some(report), None) => Ok(report),
                        (_, Some(failure)) => Err(failure),
                        (None, None) => Err(unreadable("an empty entry")),
                    };
                    outcomes.push((
                        at,
                        Outcome {
                            target: job.target,
                            report,
                        },
                    ));
                }
            }
            Ok(_) => {
                for (at, job) in walked {
                    let failure = unreadable("the wrong number of entries");
                    outcomes.push((
                        at,
                        Outcome {
                            target: job.target,
                            report: Err(failure),
                        },
                    ));
                }
            }
            Err(failure) => {
                for (at, job) in walked {
                    outcomes.push((
                        at,
                        Outcome {
                            target: job.target,
                            report: Err(failure.clone()),
                        },
                    ));
                }
            }
        }
    }
    outcomes.sort_by_key(|(at, _)| *at);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| unreadable(&e.to_string()))
}

fn unreadable(why: &str) -> Failure {
    Failure::new(
        ErrorKind::ChildFailed,
        format!("the query process sent an unreadable report: {why}"),
    )
}

/// Names the namespace and interface at the other end of every veth whose peer lives in
/// another namespace, from the nsids each report mapped and the links of all reports.
pub fn resolve_peers(outcomes: &mut [Outcome], also: Option<(u64, &[Link])>) {
    let mut names: HashMap<u64, HashMap<u32, (String, Option<String>)>> = HashMap::new();
    if let Some((inode, links)) = also {
        names.insert(inode, links.iter().map(name_entry).collect());
    }
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
