//! Runs a command and writes the peak RSS of its process tree, for `make bench`.
//!
//! ```text
//! peak-rss OUT_FILE CMD [ARGS...]
//! ```
//!
//! CMD runs with this process's stdin, stdout and stderr. When it has exited, OUT_FILE gets
//! one line, `maxrss_kib=N`: `getrusage(RUSAGE_CHILDREN)`'s `ru_maxrss`, the largest peak RSS
//! of CMD and of every descendant that was reaped by its parent (nshelper reaps all its
//! query children). The exit status is CMD's, or 128+N when signal N ended it.
//!
//! Why not measure from Python: a process started by `posix_spawn` or `fork` and `exec`
//! starts its `ru_maxrss` at the peak RSS of the memory it was started from (`exec` records
//! the old memory's high-water mark), so every child of the benchmark's Python reports at
//! least Python's own RSS (about 13 MiB). Started from this small process instead, the floor
//! is this process's own RSS, a megabyte or two, below that of any command measured.

#![forbid(unsafe_code)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

use nix::sys::resource::{getrusage, UsageWho};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: peak-rss OUT_FILE CMD [ARGS...]");
        return ExitCode::from(2);
    };
    let status = match Command::new(&program).args(args).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("peak-rss: {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let maxrss = match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => usage.max_rss(),
        Err(e) => {
            eprintln!("peak-rss: getrusage: {e}");
            return ExitCode::from(125);
        }
    };
    if let Err(e) = std::fs::write(&out, format!("maxrss_kib={maxrss}\n")) {
        eprintln!("peak-rss: {}: {e}", out.to_string_lossy());
        return ExitCode::from(125);
    }
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 125,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(125))
}
