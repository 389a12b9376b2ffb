//! Prints every network namespace that discovery finds, one line each, with the command and
//! cgroup of its lowest pid. With `--join`, also enters each one through its kept descriptor
//! and checks that the query process really is in it.
//!
//! Run as root: `cargo run -p nshelper-namespaces --example discover [-- --join]`.

use std::process::ExitCode;
use std::time::Duration;

use nshelper_namespaces::{discover_network_namespaces, process_info, spawn, NsType, ProcRoot};

fn main() -> ExitCode {
    let join = std::env::args().skip(1).any(|arg| arg == "--join");
    let proc = match ProcRoot::open() {
        Ok(proc) => proc,
        Err(error) => {
            eprintln!("discover: {error}");
            return ExitCode::FAILURE;
        }
    };
    let found = match discover_network_namespaces(&proc) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("discover: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for netns in &found {
        let first = netns.pids.first().and_then(|&pid| process_info(&proc, pid));
        println!(
            "ns={} dev={} names={:?} paths={:?} nprocs={} pids={:?} threads={:?} fds={:?} command={:?} cgroup={:?}",
            netns.inode,
            netns.dev,
            netns.names,
            netns.paths,
            netns.pids.len(),
            netns.pids,
            netns.thread_ids,
            netns.fd_holders,
            first.as_ref().map(|info| info.command.as_str()),
            first.as_ref().map(|info| info.cgroup.as_str()),
        );
        if join {
            let entered = netns
                .join_plan()
                .and_then(|plan| spawn(plan, &proc, &[], |inodes| Ok(encode(inodes))))
                .and_then(|query| query.wait(Duration::from_secs(5)));
            match entered {
                Ok(report) if net_inode(&report) == Some(netns.inode) => {
                    println!("  joined ns={}: ok", netns.inode);
                }
                Ok(report) => {
                    failed = true;
                    println!(
                        "  joined ns={}: query was in {:?}",
                        netns.inode,
                        net_inode(&report)
                    );
                }
                Err(error) => {
                    failed = true;
                    println!("  joined ns={}: {error}", netns.inode);
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn encode(inodes: &[(NsType, u64)]) -> Vec<u8> {
    inodes
        .iter()
        .find(|(kind, _)| *kind == NsType::Net)
        .map(|(_, inode)| inode.to_le_bytes().to_vec())
        .unwrap_or_default()
}

fn net_inode(report: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(report.try_into().ok()?))
}
