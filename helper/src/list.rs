//! `nshelper list`: every network namespace of the host, with what holds it.

use nshelper_model::{
    ListDocument, ListedNetns, ProcessSummary, Target, TargetError, CONTRACT_VERSION,
};
use nshelper_namespaces::process_info;

use crate::cli::CommonArgs;
use crate::inside::Wanted;
use crate::jobs::{self, Outcome};
use crate::query::{discover_host, known_namespaces};

pub fn run(args: &CommonArgs) -> ListDocument {
    let cookie_only = Wanted {
        cookie: true,
        ..Wanted::default()
    };
    let (proc, mut jobs, mut errors) = match discover_host(cookie_only) {
        Ok(found) => found,
        Err(failure) => {
            return document(Vec::new(), vec![failure.for_target(Target::OwnNamespaces)])
        }
    };
    let (known, own_inode) = known_namespaces(&proc, &jobs);
    // The nsids of the list are those the helper's own namespace gives.
    for job in &mut jobs {
        if let Target::Discovered(identity) = &job.target {
            if Some(identity.netns) == own_inode {
                job.wanted.all_nsids = true;
            }
        }
    }
    let (outcomes, _) = jobs::run_all(&proc, jobs, &known, args.timeout, false, false);
    let own_nsids: Vec<(i32, u64)> = outcomes
        .iter()
        .filter_map(Outcome::report)
        .find(|report| report.namespaces.get("net").copied() == own_inode)
        .map(|report| report.nsids.clone())
        .unwrap_or_default();

    let mut namespaces = Vec::new();
    for (target, report) in outcomes.into_iter().map(Outcome::into_report) {
        let Target::Discovered(identity) = target else {
            continue;
        };
        let cookie = match report {
            Ok(report) => report.cookie,
            Err(failure) => {
                errors.push(failure.for_target(Target::Discovered(identity.clone())));
                None
            }
        };
        let processes = identity
            .pids
            .iter()
            .filter_map(|&pid| process_info(&proc, pid))
            .map(|info| ProcessSummary {
                pid: info.pid,
                command: info.command,
                cgroup: info.cgroup,
            })
            .collect();
        namespaces.push(ListedNetns {
            netns: identity.netns,
            cookie,
            nsid: own_nsids
                .iter()
                .find(|(_, inode)| *inode == identity.netns)
                .map(|(nsid, _)| *nsid),
            names: identity.names,
            paths: identity.paths,
            pids: identity.pids,
            threads: identity.threads,
            fds: identity.fds,
            processes,
        });
    }
    document(namespaces, errors)
}

fn document(namespaces: Vec<ListedNetns>, errors: Vec<TargetError>) -> ListDocument {
    ListDocument {
        version: CONTRACT_VERSION,
        namespaces,
        errors,
    }
}
