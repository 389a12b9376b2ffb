//! `nshelper query`: resolve the targets in the parent, run the queries in their namespaces,
//! and assemble the document.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use nix::sys::stat::fstat;
use nshelper_model::{
    FdHolder, NetnsIdentity, Target, TargetError, TargetResult, CONTRACT_VERSION,
};
use nshelper_namespaces::{
    discover_network_namespaces, FoundNetns, JoinPlan, NsError, NsType, ProcRoot,
    DEFAULT_PROCESS_NAMESPACES,
};

use crate::cli::{OutputFormat, QueryArgs, QueryKind};
use crate::describe;
use crate::diag;
use crate::failure::Failure;
use crate::inside::{has_peer_in, KnownNetns, Wanted};
use crate::jobs::{self, Answer, Job, Outcome, OwnLinksAhead, PrintedText};
use crate::privileges::{self, Need};
use nshelper_netlink::{links::links_from_dump, RouteSocket};
use serde::Serialize;

/// The targets as the command line names them, in order; `--netns` values with a `/` are
/// paths, others `ip netns` names.
pub fn targets_of(args: &QueryArgs) -> Vec<Target> {
    let mut targets: Vec<Target> = args.pids.iter().map(|&pid| Target::Pid { pid }).collect();
    targets.extend(args.netns.iter().map(|netns| netns_target(netns)));
    if targets.is_empty() && !args.all {
        targets.push(Target::OwnNamespaces);
    }
    targets
}

pub fn netns_target(netns: &str) -> Target {
    if netns.contains('/') {
        Target::Netns {
            name: None,
            path: netns.to_owned(),
        }
    } else {
        Target::Netns {
            name: Some(netns.to_owned()),
            path: format!("/run/netns/{netns}"),
        }
    }
}

fn wanted(what: QueryKind, stats: bool, table: bool) -> Wanted {
    let all = what == QueryKind::All;
    Wanted {
        // A table of addresses shows every link with its state, as `ip -br addr` does.
        links: matches!(what, QueryKind::Links | QueryKind::Veths)
            || all
            || (table && what == QueryKind::Addrs),
        addrs: what == QueryKind::Addrs || all,
        routes: what == QueryKind::Routes || all,
        neighbors: what == QueryKind::Neighbors || all,
        stats,
        ..Wanted::default()
    }
}

/// The document `nshelper query` prints: [`nshelper_model::QueryDocument`], with results
/// that a walker finished kept as the text it sent.
#[derive(Debug, Serialize)]
pub struct PrintedDocument {
    version: u32,
    results: Vec<PrintedResult>,
    errors: Vec<TargetError>,
}

impl PrintedDocument {
    pub fn new(results: Vec<PrintedResult>, errors: Vec<TargetError>) -> Self {
        PrintedDocument {
            version: CONTRACT_VERSION,
            results,
            errors,
        }
    }

    /// Writes the document as its compact serialization would, but copies printed results
    /// as they are instead of checking them a second time.
    pub fn write_compact(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        write!(out, "{{\"version\":{},\"results\":[", self.version)?;
        for (at, result) in self.results.iter().enumerate() {
            if at > 0 {
                out.write_all(b",")?;
            }
            match result {
                PrintedResult::Finished(result) => serde_json::to_writer(&mut *out, result)?,
                PrintedResult::Printed(text) => out.write_all(text.as_bytes())?,
            }
        }
        out.write_all(b"],\"errors\":")?;
        serde_json::to_writer(&mut *out, &self.errors)?;
        out.write_all(b"}")
    }
}

/// One of the document's results.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PrintedResult {
    /// Finished here, from a query process's report.
    Finished(Box<TargetResult>),
    /// Finished by the walker, and checked here to be one JSON value.
    Printed(PrintedText),
}

impl PrintedResult {
    /// The result as the model's type; one that the walker finished is parsed back.
    pub fn into_finished(self) -> Result<TargetResult, serde_json::Error> {
        match self {
            PrintedResult::Finished(result) => Ok(*result),
            PrintedResult::Printed(text) => serde_json::from_slice(text.as_bytes()),
        }
    }
}

/// Runs the query against every target. Each failure is that target's error; the others
/// still answer.
pub fn run(args: &QueryArgs) -> (Vec<PrintedResult>, Vec<TargetError>) {
    let mut errors = Vec::new();
    let proc = match ProcRoot::open() {
        Ok(proc) => proc,
        Err(e) => {
            let failure = Failure::from(e);
            let errors = targets_of(args)
                .into_iter()
                .map(|target| failure.clone().for_target(target))
                .collect();
            return (Vec::new(), errors);
        }
    };
    let mut jobs = Vec::new();
    let table = args.common.output == OutputFormat::Table;
    let wanted = Wanted {
        veths_only: args.what == QueryKind::Veths,
        ..wanted(args.what, args.stats, table)
    };
    if args.all {
        match discovered_jobs(&proc, wanted) {
            Ok((found, unprepared)) => {
                jobs = found;
                errors.extend(unprepared);
            }
            Err(failure) => errors.push(failure.for_target(Target::OwnNamespaces)),
        }
    }
    for target in targets_of(args) {
        match plan_for(&proc, &target, args) {
            Ok(plan) => {
                diag::say(1, || {
                    format!("{}: opened {}", describe(&target), joins_text(&plan))
                });
                jobs.push(Job {
                    target,
                    plan,
                    wanted,
                });
            }
            Err(failure) => errors.push(failure.for_target(target)),
        }
    }
    let (known, own_inode) = known_namespaces(&proc, &jobs);
    // Indented JSON and tables re-read every result, so the walker need not finish them.
    let printed = !args.common.pretty && !table;
    let (mut outcomes, own_links_ahead) = jobs::run_all(
        &proc,
        jobs,
        &known,
        args.common.timeout,
        printed,
        // Asked for on the chance that a container's veth has its peer here: cheap for a
        // namespace of a few links, and made while the query process works.
        wanted.links,
    );
    // Peers in the helper's own namespace are named from its own links, read here, without
    // privilege, when no target was that namespace.
    let own_links = match own_inode {
        Some(inode)
            if wanted.links
                && !outcomes.iter().any(|o| {
                    o.target == Target::OwnNamespaces
                        || o.report()
                            .is_some_and(|r| r.namespaces.get("net") == Some(&inode))
                })
                && outcomes
                    .iter()
                    .filter_map(Outcome::report)
                    .any(|report| has_peer_in(report, inode)) =>
        {
            let raw = match own_links_ahead {
                OwnLinksAhead::Read(raw) => raw,
                OwnLinksAhead::Asked(mut socket) => socket.dump_links_without_stats(),
                OwnLinksAhead::Not => {
                    RouteSocket::open().and_then(|mut socket| socket.dump_links_without_stats())
                }
            };
            raw.ok()
                .map(|raw| (inode, links_from_dump(raw, inode, false)))
        }
        _ => None,
    };
    jobs::resolve_peers(
        &mut outcomes,
        own_links
            .as_ref()
            .map(|(inode, links)| (*inode, links.as_slice())),
    );
    let mut results = Vec::new();
    for Outcome { target, report } in outcomes {
        match report {
            Ok(Answer::Report(report)) => {
                results.push(PrintedResult::Finished(Box::new(TargetResult {
                    target,
                    namespaces: report.namespaces,
                    contents: report.contents,
                })));
            }
            Ok(Answer::Printed(result)) => results.push(PrintedResult::Printed(result)),
            Err(failure) => errors.push(failure.for_target(target)),
        }
    }
    (results, errors)
}

fn plan_for(proc: &ProcRoot, target: &Target, args: &QueryArgs) -> Result<JoinPlan, Failure> {
    let plan = match target {
        Target::Pid { pid } => {
            let kinds = args.ns.as_deref().unwrap_or(&DEFAULT_PROCESS_NAMESPACES);
            plan_for_process(proc, *pid, kinds)?
        }
        Target::Netns { path, .. } => {
            privileges::require(&[Need::Join])?;
            JoinPlan::for_netns_file(proc, path.as_ref())?
        }
        Target::OwnNamespaces | Target::Discovered(_) => JoinPlan::own_namespaces(),
    };
    Ok(plan)
}

/// The plan to join `kinds` of process `pid`, once the helper is known to hold what that
/// needs.
pub fn plan_for_process(proc: &ProcRoot, pid: u32, kinds: &[NsType]) -> Result<JoinPlan, Failure> {
    // The owner decides whether CAP_SYS_PTRACE is needed; a process that is gone is
    // reported as such by the plan itself.
    let owner = std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta));
    // Without privilege of its own, the helper can still enter a rootless container, one
    // whose namespaces belong to a user namespace the caller owns: it joins that user
    // namespace first, keeping its credentials, as nsenter --preserve-credentials does.
    let mut kinds = kinds.to_vec();
    if !privileges::can_enter_namespaces()
        && !kinds.contains(&NsType::User)
        && in_other_user_namespace(pid)
    {
        kinds.push(NsType::User);
    }
    if pid != 0 {
        privileges::require(&privileges::needs_for_process(owner, &kinds))?;
    }
    Ok(JoinPlan::for_process(proc, pid, &kinds)?)
}

/// Whether process `pid` is in a user namespace other than the helper's.
fn in_other_user_namespace(pid: u32) -> bool {
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/user"));
    let ours = std::fs::metadata("/proc/self/ns/user");
    match (theirs, ours) {
        (Ok(theirs), Ok(ours)) => {
            use std::os::unix::fs::MetadataExt;
            (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino())
        }
        _ => false,
    }
}

/// `/proc`, a job for every network namespace of the host, and an error for each that
/// cannot be prepared; or the one error that stopped the discovery.
pub fn discover_host(wanted: Wanted) -> Result<(ProcRoot, Vec<Job>, Vec<TargetError>), Failure> {
    let proc = ProcRoot::open()?;
    let (jobs, errors) = discovered_jobs(&proc, wanted)?;
    Ok((proc, jobs, errors))
}

/// A job for every network namespace of the host, and an error for each that cannot be
/// prepared.
pub fn discovered_jobs(
    proc: &ProcRoot,
    wanted: Wanted,
) -> Result<(Vec<Job>, Vec<TargetError>), Failure> {
    privileges::require(&[Need::Join])?;
    // Pids found in a /proc of another pid namespace would name other processes.
    if !proc.is_of_own_pid_namespace() {
        return Err(NsError::ForeignProc.into());
    }
    let discovery = diag::step("discover network namespaces");
    let found = discover_network_namespaces(proc)?;
    discovery.done(|| format!("{} found", found.len()));
    let mut jobs = Vec::with_capacity(found.len());
    for netns in found {
        let target = Target::Discovered(identity_of(&netns));
        diag::say(2, || {
            let identity = identity_of(&netns);
            format!(
                "net:[{}]: names {:?}, paths {:?}, pids {:?}, threads {:?}, fds {}",
                identity.netns,
                identity.names,
                identity.paths,
                identity.pids,
                identity.threads,
                identity.fds.len()
            )
        });
        jobs.push(Job {
            target,
            plan: netns.into_join_plan(),
            wanted,
        });
    }
    // Each job joins through the very descriptor discovery opened: none can fail here.
    Ok((jobs, Vec::new()))
}

pub fn identity_of(netns: &FoundNetns) -> NetnsIdentity {
    NetnsIdentity {
        netns: netns.inode,
        names: netns.names.clone(),
        paths: netns.paths.clone(),
        pids: netns.pids.clone(),
        threads: netns.thread_ids.clone(),
        fds: netns
            .fd_holders
            .iter()
            .map(|&(pid, fd)| FdHolder { pid, fd })
            .collect(),
    }
}

pub fn net_inode(fd: Option<BorrowedFd<'_>>) -> Option<u64> {
    fd.and_then(|fd| fstat(fd).ok()).map(|st| st.st_ino)
}

/// Every network namespace the call can see, the helper's own first, each once.
pub fn known_namespaces(proc: &ProcRoot, jobs: &[Job]) -> (Vec<KnownNetns>, Option<u64>) {
    let mut known: Vec<KnownNetns> = Vec::new();
    // A set, not a scan of `known` per job: --all has thousands of jobs.
    let mut seen = std::collections::HashSet::new();
    let own = proc.open_own_namespace(NsType::Net).ok();
    let own_inode = net_inode(own.as_ref().map(|fd| fd.as_fd()));
    if let (Some(file), Some(inode)) = (own, own_inode) {
        seen.insert(inode);
        known.push(KnownNetns {
            inode,
            file: Arc::new(file),
            own: true,
        });
    }
    for job in jobs {
        let (Some(file), Some(inode)) = (
            job.plan.shared_net_namespace(),
            job.plan.net_namespace_inode(),
        ) else {
            continue;
        };
        if seen.insert(inode) {
            known.push(KnownNetns {
                inode,
                file,
                own: false,
            });
        }
    }
    (known, own_inode)
}

/// The namespaces a plan joins, as `net:[inode] pid:[inode]`, or that it joins none.
pub fn joins_text(plan: &JoinPlan) -> String {
    let joins = plan.joins();
    if joins.is_empty() {
        return "nothing to join (the helper's own namespaces)".to_owned();
    }
    joins
        .iter()
        .map(|(kind, inode)| format!("{}:[{inode}]", kind.name()))
        .collect::<Vec<_>>()
        .join(" ")
}
