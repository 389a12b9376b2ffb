//! `nshelper exec`: run a command inside a target's namespaces.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nshelper_model::{ErrorKind, Target};
use nshelper_namespaces::{
    exec_in, ExecError, ExecRequest, JoinPlan, MountSetup, ProcRoot, DEFAULT_PROCESS_NAMESPACES,
};

use crate::cli::ExecArgs;
use crate::diag;
use crate::failure::{usual_hint, Failure};
use crate::privileges::{self, Need};
use crate::query::{joins_text, netns_target, plan_for_process};

/// nshelper itself failed: no such target, not permitted, a bad command line.
pub const EXIT_EXEC_FAILED: i32 = 125;
/// The command was found but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The command was not found inside the target.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Runs the command and returns the status nshelper exits with.
pub fn run(args: &ExecArgs) -> i32 {
    let target = match (args.pid, &args.netns) {
        (Some(pid), _) => Target::Pid { pid },
        (None, Some(netns)) => netns_target(netns),
        (None, None) => Target::OwnNamespaces,
    };
    let outcome = prepare(args, &target).and_then(|(plan, proc, request)| {
        diag::say(1, || {
            format!(
                "{}: opened {}; running {:?} there",
                crate::describe(&target),
                joins_text(&plan),
                request.argv
            )
        });
        let step = diag::step("exec");
        let status = exec_in(plan, &proc, &request).map_err(Refusal::Exec);
        step.done(|| match &status {
            Ok(status) => format!("the command ended with status {status}"),
            Err(_) => "the command could not be run".to_owned(),
        });
        status
    });
    match outcome {
        Ok(status) => status,
        Err(refusal) => {
            let (code, line) = match refusal {
                Refusal::Exec(error @ ExecError::NotFound { .. }) => (
                    EXIT_NOT_FOUND,
                    format!(
                        "{error}; check that it is installed inside the target, or give its \
                         full path there"
                    ),
                ),
                Refusal::Exec(error @ ExecError::CannotExecute { .. }) => (
                    EXIT_CANNOT_EXECUTE,
                    format!(
                        "{error}; check inside the target that it is a program for this machine, \
                         executable, and not on a noexec mount"
                    ),
                ),
                Refusal::Exec(ExecError::Namespaces(e)) => {
                    (EXIT_EXEC_FAILED, describe(Failure::from(e), &target))
                }
                Refusal::Exec(other) => (
                    EXIT_EXEC_FAILED,
                    format!("{other}; {}", usual_hint(ErrorKind::ChildFailed, &target)),
                ),
                Refusal::Target(failure) => (EXIT_EXEC_FAILED, describe(failure, &target)),
                Refusal::NulInArgument => (
                    EXIT_EXEC_FAILED,
                    "an argument holds a NUL byte, which no command can receive; remove it \
                     from the command line"
                        .to_owned(),
                ),
            };
            eprintln!("nshelper: exec: {}", crate::one_line(&line));
            code
        }
    }
}

/// Why the command did not run.
enum Refusal {
    Exec(ExecError),
    /// The target was refused before anything was forked.
    Target(Failure),
    NulInArgument,
}

fn describe(failure: Failure, target: &Target) -> String {
    let error = failure.for_target(target.clone());
    format!("{}: {}", error.kind.as_str(), error.message)
}

type Prepared = (JoinPlan, ProcRoot, ExecRequest);

fn prepare(args: &ExecArgs, target: &Target) -> Result<Prepared, Refusal> {
    let failed = |e| Refusal::Target(Failure::from(e));
    let proc = ProcRoot::open().map_err(failed)?;
    let (plan, mounts) = match target {
        Target::Pid { pid } => {
            let kinds = args.ns.as_deref().unwrap_or(&DEFAULT_PROCESS_NAMESPACES);
            let plan = plan_for_process(&proc, *pid, kinds).map_err(Refusal::Target)?;
            (plan, MountSetup::Joined)
        }
        Target::Netns { name, path } => {
            privileges::require(&[Need::Join]).map_err(Refusal::Target)?;
            let plan = JoinPlan::for_netns_file(&proc, path.as_ref()).map_err(failed)?;
            (plan, MountSetup::NetnsExec { name: name.clone() })
        }
        Target::OwnNamespaces | Target::Discovered(_) => {
            (JoinPlan::own_namespaces(), MountSetup::Joined)
        }
    };
    let argv = args
        .command
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Refusal::NulInArgument)?;
    let env = args.clear_env.then(Vec::new);
    Ok((plan, proc, ExecRequest { argv, env, mounts }))
}
