use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nshelper_namespaces::NsType;

const EXAMPLES: &str = "\
Examples:
  sudo nshelper query links --pid 4242        every interface of the container whose process is 4242
  sudo nshelper query veths --pid 4242        its veths, each with its peer
  sudo nshelper query --netns red --pretty    the interfaces of `ip netns` namespace red
  sudo nshelper query --netns /proc/4242/ns/net
  sudo nshelper query --pid 4242 --ns net,pid,mnt,uts
  nshelper query                              the helper's own namespaces; needs no privilege

Exit status: 0 when every target answered, 1 when any target failed (the JSON document is
still printed, with the failure in \"errors\"), 2 for a usage error.";

/// Looks inside Linux namespaces and reports what it finds as JSON.
///
/// nshelper never changes its own namespaces: it forks a child that joins the target's
/// namespaces and forks again, so that the query really runs inside them, pid namespace
/// included.
#[derive(Debug, Parser)]
#[command(name = "nshelper", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Query a target's namespaces and print one JSON document.
    #[command(after_help = EXAMPLES)]
    Query(QueryArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryKind {
    /// Every link (network interface).
    Links,
    /// Veth links only, each with its peer.
    Veths,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// What to list.
    #[arg(value_enum, default_value_t = QueryKind::Links)]
    pub what: QueryKind,

    /// Join the namespaces of this process (by default its net, pid and mnt namespaces).
    #[arg(long, value_name = "PID", conflicts_with = "netns",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,

    /// A network namespace: an `ip netns` NAME, or a PATH (any value with a `/`) to a
    /// namespace file such as /proc/PID/ns/net or a bind mount.
    #[arg(long, value_name = "NAME|PATH", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub netns: Option<String>,

    /// Which of the process's namespaces to join, comma-separated, from
    /// net,pid,mnt,uts,ipc,cgroup,user.
    #[arg(long, value_name = "LIST", requires = "pid", value_delimiter = ',',
          value_parser = parse_namespace_type)]
    pub ns: Option<Vec<NsType>>,

    /// Indent the JSON output.
    #[arg(long)]
    pub pretty: bool,

    /// Give up on a target after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_namespace_type(name: &str) -> Result<NsType, String> {
    NsType::from_name(name).ok_or_else(|| {
        format!(
            "unknown namespace type '{name}' (expected net, pid, mnt, uts, ipc, cgroup or user)"
        )
    })
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(format!("the timeout must be positive, not {text}"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{text}' seconds is too long"))
}
