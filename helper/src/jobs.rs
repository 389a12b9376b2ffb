//! Runs the queries of a call and reads their reports: one walker child for every target
//! that is a network namespace alone, and a fork/setns/fork query process for each target
//! that needs pid or mount namespaces too.
//!
//! Reports are kept as bytes until every child has been made: the parent needs its
//! privileges to make them, and parses what came from inside the targets only after it has
//! given them up.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use nshelper_model::{ErrorKind, Link, Target};
use nshelper_namespaces::{spawn, spawn_walk, JoinPlan, ProcRoot, DEFAULT_PROCESS_NAMESPACES};
use nshelper_netlink::wire::RawLink;
use nshelper_netlink::{NetlinkError, RouteSocket};
use serde_json::value::RawValue;
use std::ops::Range;
use std::rc::Rc;

use crate::describe;
use crate::diag;
use crate::failure::Failure;
use crate::inside::{self, Finishing, InsideReport, KnownNetns, PrintedStop, WalkOutcome, Wanted};
use crate::privileges;
use crate::query::joins_text;

pub struct Job {
    pub target: Target,
    pub plan: JoinPlan,
    pub wanted: Wanted,
}

pub struct Outcome {
    pub target: Target,
    pub report: Result<Answer, Failure>,
}

/// What a target's child sent back.
pub enum Answer {
    /// Its report, for the parent to finish.
    Report(InsideReport),
    /// Its result as the document prints it, finished by the walker: checked to be one JSON
    /// value, not parsed further.
    Printed(PrintedText),
}

/// A result as the walker printed it: where it lies in the walk's report, which was checked
/// to hold one JSON value there. Kept in place, not copied: it can be megabytes.
#[derive(Debug, Clone)]
pub struct PrintedText {
    report: Rc<Vec<u8>>,
    range: Range<usize>,
}

impl PrintedText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.report[self.range.clone()]
    }
}

impl serde::Serialize for PrintedText {
    /// For serializers other than the compact writer of the document; the text is checked
    /// again on the way.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_slice(self.as_bytes()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl Outcome {
    /// The report, for callers that run their jobs without `printed`.
    pub fn report(&self) -> Option<&InsideReport> {
        match &self.report {
            Ok(Answer::Report(report)) => Some(report),
            _ => None,
        }
    }

    /// The target and its report, for callers that run their jobs without `printed`.
    pub fn into_report(self) -> (Target, Result<InsideReport, Failure>) {
        let report = self.report.and_then(|answer| match answer {
            Answer::Report(report) => Ok(report),
            Answer::Printed(_) => Err(unreadable("a printed result where a report was due")),
        });
        (self.target, report)
    }
}

/// A job and its place among the call's targets, which the output keeps.
type Numbered = (usize, Job);

/// A forked job's place, target, report bytes, and the report already parsed when that was
/// done while its query process exited.
type Raw = (
    usize,
    Target,
    Result<Vec<u8>, Failure>,
    Option<Result<InsideReport, Failure>>,
);

/// The pipe of a relay (see `inside::relay_own_links`): both ends non-blocking, and as
/// large as an unprivileged process may make it, so that the parent rarely waits.
fn relay_pipe() -> Option<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).ok()?;
    let _ = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    Some((read, write))
}

/// Gives up every capability, and says so under `-v`.
fn drop_privileges() -> Result<(), String> {
    let dropped = privileges::drop_all();
    diag::say(1, || match &dropped {
        Ok(()) => "gave up every capability before parsing any report".to_owned(),
        Err(reason) => format!("could not give up capabilities: {reason}"),
    });
    dropped
}

/// The helper's own namespace's links, asked for while the last query process worked (see
/// [`run_all`]).
pub enum OwnLinksAhead {
    /// Not asked for.
    Not,
    /// Asked for; to be read if a peer needs them.
    Asked(RouteSocket),
    /// Read while the query process exited, since a peer of its needs them.
    Read(Result<Vec<RawLink>, NetlinkError>),
}

/// Runs every job. With `printed`, a walk that is the call's only child finishes its
/// targets' results itself (see [`Answer::Printed`]). With `own_links_ahead`, when the
/// last child is a query process, a socket of the helper's own namespace is returned with
/// its link dump already asked for: made while that child works, it names the peers a
/// container's veths have there sooner (see `query::run`).
pub fn run_all(
    proc: &ProcRoot,
    jobs: Vec<Job>,
    known: &[KnownNetns],
    timeout: Duration,
    printed: bool,
    own_links_ahead: bool,
) -> (Vec<Outcome>, OwnLinksAhead) {
    let mut own_links = OwnLinksAhead::Not;
    let own_inode = known.iter().find(|k| k.own).map(|k| k.inode);
    let keep: Vec<BorrowedFd<'_>> = known.iter().map(|k| k.file.as_fd()).collect();
    // Targets that are network namespaces alone are all read by one child that moves
    // between them; the others need a fork of their own to join pid and mount namespaces.
    let (walked, forked): (Vec<Numbered>, Vec<Numbered>) =
        jobs.into_iter().enumerate().partition(|(_, job)| {
            job.plan.joins_network_namespace_only()
                && job.plan.reported() == DEFAULT_PROCESS_NAMESPACES
        });

    // Set once the last child is made: from then on the parent needs no privilege, so it
    // gives it all up while that child still works, off the path of the answer.
    let mut dropped: Option<Result<(), String>> = None;
    let forked_count = forked.len();
    let mut raw: Vec<Raw> = Vec::new();
    for (n, (at, job)) in forked.into_iter().enumerate() {
        let last_child = walked.is_empty() && n + 1 == forked_count;
        let wanted = job.wanted;
        let step = diag::step("fork, join, fork and read");
        let (bytes, early) = match spawn(job.plan, proc, &keep, |inodes| {
            inside::run(wanted, known, inodes)
        }) {
            Ok(running) if last_child => {
                let now_dropped = drop_privileges();
                if own_links_ahead && now_dropped.is_ok() {
                    if let Ok(socket) = RouteSocket::open().and_then(|mut socket| {
                        socket.request_links_without_stats().map(|()| socket)
                    }) {
                        own_links = OwnLinksAhead::Asked(socket);
                    }
                }
                // Parsed while the query process exits, since nothing is left to make; so are
                // the helper's own links, when a veth of the report has its peer there.
                let parse_early = now_dropped.is_ok();
                dropped = Some(now_dropped);
                let (bytes, early) = running.wait_then(timeout, |body| {
                    parse_early.then(|| {
                        let parsed = parse::<InsideReport>(body);
                        if let (Ok(report), Some(own), OwnLinksAhead::Asked(socket)) =
                            (&parsed, own_inode, &mut own_links)
                        {
                            if report.namespaces.get("net") != Some(&own)
                                && inside::has_peer_in(report, own)
                            {
                                own_links = OwnLinksAhead::Read(socket.dump_links_without_stats());
                            }
                        }
                        parsed
                    })
                });
                (bytes, early.flatten())
            }
            Ok(running) => (running.wait(timeout), None),
            Err(error) => (Err(error), None),
        };
        let bytes = bytes.map_err(Failure::from);
        step.done(|| format!("{}: {}", describe(&job.target), read_text(&bytes)));
        raw.push((at, job.target, bytes, early));
    }
    // Peers are named across every report: the walker can only do that alone.
    let finishing = printed && raw.is_empty();
    let targets: Vec<Target> = walked.iter().map(|(_, job)| job.target.clone()).collect();
    let walk = (!walked.is_empty()).then(|| {
        let wanted: Vec<Wanted> = walked.iter().map(|(_, job)| job.wanted).collect();
        let mut files: Vec<BorrowedFd<'_>> = walked
            .iter()
            .filter_map(|(_, job)| job.plan.net_namespace())
            .collect();
        // A last stop in the helper's own namespace names the peers there: the walker reads
        // its links only if a walked veth needs them.
        let own = known.iter().find(|k| k.own);
        let own_netns_stop = match own {
            Some(own) if finishing && wanted.iter().any(|w| w.links) => {
                files.push(own.file.as_fd());
                true
            }
            _ => false,
        };
        let finishing = finishing.then_some(Finishing {
            targets: &targets,
            own_netns_stop,
        });
        // One child visits them all, and bounds each namespace's reading by the timeout
        // itself, so that a slow one fails alone; the child as a whole gets a timeout per
        // namespace, and a second.
        let deadline = timeout
            .saturating_mul(u32::try_from(files.len()).unwrap_or(u32::MAX))
            .saturating_add(Duration::from_secs(1));
        for (_, job) in &walked {
            diag::say(2, || {
                format!(
                    "{}: walking into {}",
                    describe(&job.target),
                    joins_text(&job.plan)
                )
            });
        }
        // The helper's own namespace, walked for its links alone, is dumped by the parent
        // while the walker joins the others (see `inside::relay_own_links`).
        let relayed_stop = known.iter().find(|k| k.own).and_then(|own| {
            walked.iter().position(|(_, job)| {
                job.plan.net_namespace_inode() == Some(own.inode) && inside::relayable(&job.wanted)
            })
        });
        let relay_pipe = relayed_stop.and_then(|_| relay_pipe());
        let mut keep_walking = keep.clone();
        keep_walking.extend(relay_pipe.as_ref().map(|(read, _)| read.as_fd()));
        let relay = relayed_stop
            .zip(relay_pipe.as_ref())
            .map(|(stop, (read, _))| inside::Relay {
                stop,
                pipe: read.as_fd(),
            });
        let finishing_walk = finishing.is_some();
        let step = diag::step("walk");
        let spawned = spawn_walk(&files, proc, &keep_walking, RouteSocket::open, |stops| {
            inside::run_walk(&wanted, finishing, known, timeout, relay, stops)
        });
        drop(keep_walking);
        let relay_writer = relay_pipe.map(|(_, write)| write);
        let (bytes, early) = match spawned {
            Ok(running) => {
                // The walk is the call's last child.
                let now_dropped = drop_privileges();
                if let (Some(writer), Some(stop), Ok(())) =
                    (relay_writer, relayed_stop, &now_dropped)
                {
                    let stats = walked[stop].1.wanted.stats;
                    inside::relay_own_links(writer, stats, Instant::now() + timeout);
                }
                let check_early = finishing_walk && now_dropped.is_ok();
                dropped = Some(now_dropped);
                if check_early {
                    // Its results are checked while it exits (closing a socket per
                    // namespace).
                    running.wait_then(deadline, printed_ranges)
                } else {
                    (running.wait(deadline), None)
                }
            }
            Err(error) => (Err(error), None),
        };
        let bytes = bytes.map_err(Failure::from);
        step.done(|| {
            let own = if own_netns_stop {
                ", then the helper's own to name peers there"
            } else {
                ""
            };
            format!(
                "one child joined {} network namespaces in turn{own}: {}",
                walked.len(),
                read_text(&bytes)
            )
        });
        (bytes, early)
    });

    // From here on nothing needs privilege, and everything read came from inside a target.
    // Without a child (every target failed before its fork) it is given up only now.
    let dropped = dropped.unwrap_or_else(drop_privileges);
    let parsing = diag::step("parse reports");
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    for (at, target, bytes, early) in raw {
        let report = match (&dropped, bytes, early) {
            (Err(reason), _, _) => Err(Failure::new(ErrorKind::ChildFailed, reason.clone())),
            (Ok(()), Err(failure), _) => Err(failure),
            (Ok(()), Ok(_), Some(parsed)) => parsed.map(Answer::Report),
            (Ok(()), Ok(bytes), None) => parse(&bytes).map(Answer::Report),
        };
        outcomes.push((at, Outcome { target, report }));
    }
    if let Some((bytes, early)) = walk {
        let bytes = match (&dropped, bytes) {
            (Err(reason), _) => Err(Failure::new(ErrorKind::ChildFailed, reason.clone())),
            (Ok(()), bytes) => bytes,
        };
        let parsed = bytes.and_then(|bytes| match early {
            Some(ranges) => ranges.map(|ranges| printed_answers(Rc::new(bytes), ranges)),
            None => walk_answers(bytes, finishing),
        });
        // One answer per walked target, or the same failure for all of them.
        let answers: Vec<Result<Answer, Failure>> = match parsed {
            Ok(answers) if answers.len() == walked.len() => answers,
            Ok(_) => failed_for_all(unreadable("the wrong number of entries"), walked.len()),
            Err(failure) => failed_for_all(failure, walked.len()),
        };
        for ((at, job), report) in walked.into_iter().zip(answers) {
            outcomes.push((
                at,
                Outcome {
                    target: job.target,
                    report,
                },
            ));
        }
    }
    parsing.done(String::new);
    for (_, outcome) in &outcomes {
        if let Some(report) = outcome.report() {
            diag::say(1, || {
                let joined: Vec<String> = report
                    .namespaces
                    .iter()
                    .map(|(kind, inode)| format!("{kind}:[{inode}]"))
                    .collect();
                format!(
                    "{}: read inside {}",
                    describe(&outcome.target),
                    joined.join(" ")
                )
            });
        }
    }
    outcomes.sort_by_key(|(at, _)| *at);
    let outcomes = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    (outcomes, own_links)
}

/// The walker's report, parsed into an answer per walked target: printed results when it
/// finished them, reports otherwise.
fn walk_answers(bytes: Vec<u8>, finishing: bool) -> Result<Vec<Result<Answer, Failure>>, Failure> {
    if !finishing {
        let stops: Vec<WalkOutcome> = parse(&bytes)?;
        return Ok(stops
            .into_iter()
            .map(|stop| answer(stop.report, stop.failure).map(Answer::Report))
            .collect());
    }
    let ranges = printed_ranges(&bytes)?;
    Ok(printed_answers(Rc::new(bytes), ranges))
}

/// Where each printed result of a finishing walk lies in its report, or that entry's
/// failure: the report is checked to be the envelope, each result one JSON value.
fn printed_ranges(report: &[u8]) -> Result<Vec<Result<Range<usize>, Failure>>, Failure> {
    let start = report.as_ptr() as usize;
    let stops: Vec<PrintedStop<'_>> =
        serde_json::from_slice(report).map_err(|e| unreadable(&e.to_string()))?;
    Ok(stops
        .into_iter()
        .map(|stop| {
            answer(stop.result, stop.failure).map(|result| {
                // Borrowed from the report: its offset there is its place.
                let text = result.get();
                let at = text.as_ptr() as usize - start;
                at..at + text.len()
            })
        })
        .collect())
}

fn printed_answers(
    report: Rc<Vec<u8>>,
    ranges: Vec<Result<Range<usize>, Failure>>,
) -> Vec<Result<Answer, Failure>> {
    ranges
        .into_iter()
        .map(|range| {
            range.map(|range| {
                Answer::Printed(PrintedText {
                    report: Rc::clone(&report),
                    range,
                })
            })
        })
        .collect()
}

fn failed_for_all(failure: Failure, count: usize) -> Vec<Result<Answer, Failure>> {
    (0..count).map(|_| Err(failure.clone())).collect()
}

/// One entry of a walk: what it holds, or its failure.
fn answer<T>(value: Option<T>, failure: Option<Failure>) -> Result<T, Failure> {
    match (value, failure) {
        (Some(value), None) => Ok(value),
        (_, Some(failure)) => Err(failure),
        (None, None) => Err(unreadable("an empty entry")),
    }
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

/// Names the peers of every report the parent finishes (see [`inside::name_peers`]).
pub fn resolve_peers(outcomes: &mut [Outcome], also: Option<(u64, &[Link])>) {
    let mut reports: Vec<&mut InsideReport> = outcomes
        .iter_mut()
        .filter_map(|o| match &mut o.report {
            Ok(Answer::Report(report)) => Some(report),
            _ => None,
        })
        .collect();
    inside::name_peers(&mut reports, also);
}

fn read_text(bytes: &Result<Vec<u8>, Failure>) -> String {
    match bytes {
        Ok(bytes) => format!("a report of {} bytes", bytes.len()),
        Err(failure) => format!("failed: {}", failure.message),
    }
}
