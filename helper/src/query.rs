//! `nshelper query`: resolve the target in the parent, run the netlink query in its
//! namespaces, and assemble the document.

use nshelper_model::{ErrorKind, LinksReport, Target, TargetError, TargetResult};
use nshelper_namespaces::{spawn, JoinPlan, NsType, ProcRoot};
use nshelper_netlink::{links::links_from_dump, RouteSocket};

use crate::cli::{QueryArgs, QueryKind};
use crate::failure::Failure;
use crate::privileges;

/// The namespaces `--pid` joins unless `--ns` says otherwise.
const DEFAULT_PROCESS_NAMESPACES: [NsType; 3] = [NsType::Net, NsType::Pid, NsType::Mnt];

/// The target as the command line names it, with the file to open for `--netns`.
pub fn target_of(args: &QueryArgs) -> Target {
    match (args.pid, &args.netns) {
        (Some(pid), _) => Target::Pid { pid },
        (None, Some(netns)) if netns.contains('/') => Target::Netns {
            name: None,
            path: netns.clone(),
        },
        (None, Some(name)) => Target::Netns {
            name: Some(name.clone()),
            path: format!("/run/netns/{name}"),
        },
        (None, None) => Target::OwnNamespaces,
    }
}

/// Runs the query against one target. Every failure comes back as a [`TargetError`].
pub fn run(args: &QueryArgs, target: &Target) -> Result<TargetResult, TargetError> {
    run_inner(args, target).map_err(|failure| {
        let message = with_privilege_hint(failure.kind, failure.message);
        TargetError {
            target: target.clone(),
            kind: failure.kind,
            message,
        }
    })
}

fn run_inner(args: &QueryArgs, target: &Target) -> Result<TargetResult, Failure> {
    let proc = ProcRoot::open()?;
    let plan = match target {
        Target::Pid { pid } => {
            let kinds = args.ns.as_deref().unwrap_or(&DEFAULT_PROCESS_NAMESPACES);
            JoinPlan::for_process(&proc, *pid, kinds)?
        }
        Target::Netns { path, .. } => JoinPlan::for_netns_file(&proc, path.as_ref())?,
        Target::OwnNamespaces => JoinPlan::own_namespaces(),
    };
    let what = args.what;
    let running = spawn(plan, &proc, |inodes| list_links(what, inodes))?;
    // Everything that needed privilege is done: the namespace files are open and the
    // children exist. The report from inside the target is read without any.
    privileges::drop_all().map_err(|e| Failure::new(ErrorKind::ChildFailed, e))?;
    let bytes = running.wait(args.timeout)?;
    let report: LinksReport = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            ErrorKind::ChildFailed,
            format!("the query process sent an unreadable report: {e}"),
        )
    })?;
    Ok(TargetResult {
        target: target.clone(),
        namespaces: report.namespaces,
        links: report.links,
    })
}

/// Runs in the query process, inside the target's namespaces.
fn list_links(what: QueryKind, inodes: &[(NsType, u64)]) -> Result<Vec<u8>, Vec<u8>> {
    let outcome = (|| -> Result<LinksReport, Failure> {
        // The socket must be made here, after setns: it belongs to the namespace it was
        // created in. Creating it is the last thing that may need privilege.
        let mut socket = RouteSocket::open()?;
        privileges::drop_all().map_err(|e| Failure::new(ErrorKind::ChildFailed, e))?;
        let raw_links = socket.dump_links()?;
        let netns_inode = inodes
            .iter()
            .find(|(kind, _)| *kind == NsType::Net)
            .map_or(0, |(_, inode)| *inode);
        let mut links = links_from_dump(raw_links, netns_inode);
        if what == QueryKind::Veths {
            links.retain(|link| link.kind.as_deref() == Some("veth"));
        }
        let namespaces = inodes
            .iter()
            .map(|(kind, inode)| (kind.name().to_owned(), *inode))
            .collect();
        Ok(LinksReport { namespaces, links })
    })();
    let encoded = match &outcome {
        Ok(report) => serde_json::to_vec(report),
        Err(failure) => serde_json::to_vec(failure),
    };
    match (outcome.is_ok(), encoded) {
        (true, Ok(bytes)) => Ok(bytes),
        (false, Ok(bytes)) => Err(bytes),
        (_, Err(e)) => Err(serde_json::to_vec(&Failure::new(
            ErrorKind::ChildFailed,
            format!("cannot encode the report: {e}"),
        ))
        .unwrap_or_default()),
    }
}

fn with_privilege_hint(kind: ErrorKind, message: String) -> String {
    if kind == ErrorKind::PermissionDenied && !privileges::can_enter_namespaces() {
        format!("{message} (entering another process's namespaces needs root, or CAP_SYS_ADMIN and CAP_SYS_PTRACE)")
    } else {
        message
    }
}
