use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nshelper_namespaces::NsType;

const EXAMPLES: &str = "\
Examples:
  sudo nshelper query links --pid 4242        every interface of the container whose process is 4242
  sudo nshelper query --pid 4242 -o table     the same, as aligned columns like ip -br link
  sudo nshelper list -o table                 every network namespace, one line each, as lsns lists them
  sudo nshelper whois veth1a2b3c              which container is at the other end of a host veth
  sudo nshelper exec --pid 4242 -- ip -br addr
  nshelper query                              the helper's own namespaces; needs no privilege
  nshelper schema query                       the JSON Schema of the document query prints

`nshelper COMMAND --help` has more examples of each command. JSON is the default, for
programs; -o table prints aligned columns for people.

Exit status: 0 when every target answered, 1 when any target failed (what did answer is
still printed, the failure on stderr and in \"errors\") or whois found nothing, 2 for a
usage error.";

const QUERY_HELP: &str = "\
Examples:
  sudo nshelper query links --pid 4242        every interface of the container whose process is 4242
  sudo nshelper query --pid 4242 -o table     the same, as aligned columns like ip -br link
  sudo nshelper query veths --pid 4242        its veths, each with its peer
  sudo nshelper query all --netns red --pretty
  sudo nshelper query addrs --all -o table    the addresses of every network namespace, like ip -br addr
  sudo nshelper query routes --netns red -o table
  sudo nshelper query --netns /proc/4242/ns/net --stats
  sudo nshelper query --pid 4242 --ns net,pid,mnt,uts
  nshelper query                              the helper's own namespaces; needs no privilege

JSON is the default, for programs. -o table prints aligned columns for people: a line
naming each namespace (== pid 4242 (net:[4026532290] ...) ==), then a row per link,
address, route or neighbour, as ip -br prints them. --pretty indents the JSON, and is
refused with -o table. Errors go to stderr, one line each, in either format.

Exit status: 0 when every target answered, 1 when any target failed (what did answer is
still printed, the failure on stderr and in \"errors\"), 2 for a usage error.";

/// Looks inside Linux namespaces and reports what it finds as JSON.
///
/// nshelper never changes its own namespaces: it forks a child that joins the target's
/// namespaces and forks again, so that the query really runs inside them, pid namespace
/// included.
#[derive(Debug, Parser)]
#[command(name = "nshelper", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Print diagnostics on stderr: -v what was opened and joined and how long each step
    /// took; -vv also every namespace of a walk. stdout stays one JSON document.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Query targets' namespaces and print one JSON document, or tables with -o table.
    #[command(after_help = QUERY_HELP)]
    Query(QueryArgs),
    /// List every network namespace of the host.
    #[command(after_help = LIST_HELP)]
    List(CommonArgs),
    /// Find the namespace, link and peer behind an interface name, ifindex, MAC or IP address.
    #[command(after_help = WHOIS_HELP)]
    Whois(WhoisArgs),
    /// Run a command inside a target's namespaces, in place of nsenter and ip netns exec.
    #[command(after_help = EXEC_HELP)]
    Exec(ExecArgs),
    /// Print the JSON Schema of the documents that query, list and whois print.
    #[command(after_help = SCHEMA_HELP)]
    Schema(SchemaArgs),
}

const LIST_HELP: &str = "\
Examples:
  sudo nshelper list                  every network namespace, with nsid, names, mounts and processes
  sudo nshelper list -o table         one line per namespace: NETNS, NSID, NPROCS, PID, NAMES, PATHS, COMMAND
  sudo nshelper list --pretty | jq '.namespaces[] | select(.names != [])'

Every network namespace of the host, found as query --all finds them: those of processes
and of single threads, the named ones in /run/netns, nsfs bind mounts, and those held open
only by a file descriptor. Each is listed once, with its cookie, its nsid as seen from
nshelper's own namespace, and its processes; lsns misses those held only by a bind mount,
a descriptor or a single thread.

Exit status: 0 when every namespace was read, 1 when one failed (still listed, with the
failure in \"errors\"), 2 for a usage error.";

const WHOIS_HELP: &str = "\
Examples:
  sudo nshelper whois veth1a2b3c      which container is at the other end of a host veth
  sudo nshelper whois 10.0.3.7        which namespace holds an address (a prefix length is ignored)
  sudo nshelper whois 9a:22:71:d3:5e:dc -o table
  sudo nshelper whois 7               the link with ifindex 7 in nshelper's own namespace

An interface name or altname always matches; a query that looks like an ifindex, a MAC
or an IP address matches that too. Every network namespace of the host is searched.

Exit status: 0 when something matched, 1 when nothing did or a namespace could not be
read, 2 for a usage error.";

const SCHEMA_HELP: &str = "\
Examples:
  nshelper schema                 one schema that every document nshelper prints is valid against
  nshelper schema query           the schema of the document of `nshelper query` alone
  nshelper schema whois > whois.schema.json

The schemas are JSON Schema draft 2020-12, generated from the serde types of the
nshelper-model crate, and equal to docs/schema/*.json in nshelper's source. They describe
exactly what this nshelper prints: every object is closed (additionalProperties false),
keys printed as null are required, and keys that may be left out are never null. The
output is always indented. Needs no privilege.";

const EXEC_HELP: &str = "\
Examples:
  sudo nshelper exec --pid 4242 -- ip -br addr      ip inside the container, its own binary included
  sudo nshelper exec --pid 4242 -- sh -c 'echo $$'  a small pid: the shell is in the container's pid namespace
  sudo nshelper exec --netns red -- ls /sys/class/net

With --pid, the command joins the net, pid and mnt namespaces of PID (or those --ns names),
and is found and run in the target's mount namespace. With --netns it runs as under
`ip netns exec`: in a private mount namespace with a /sys of that network namespace, and
with /etc/netns/NAME/* bound over /etc.

Exit status: the command's, or 128+N when signal N ended it; 125 when nshelper itself fails
(no such target, not permitted, bad command line), 126 when the command cannot be executed,
127 when it is not found inside the target. SIGINT, SIGTERM and SIGHUP sent to nshelper
are passed on to the command.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryKind {
    /// Every link (network interface).
    Links,
    /// Veth links only, each with its peer.
    Veths,
    /// Every address, one object each.
    Addrs,
    /// Every route of every table.
    Routes,
    /// The neighbour (ARP and NDP) tables.
    Neighbors,
    /// Links, addresses, routes and neighbours in one pass.
    All,
}

/// How the findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON document: the contract that programs parse.
    Json,
    /// Aligned columns per namespace, as `ip -br` and lsns print them, for people.
    Table,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Print one JSON document (for programs), or aligned columns (for people).
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT",
          default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,

    /// Indent the JSON output (not with -o table).
    #[arg(long)]
    pub pretty: bool,

    /// Give up on a namespace after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// What to list.
    #[arg(value_enum, default_value_t = QueryKind::Links)]
    pub what: QueryKind,

    /// Join the namespaces of this process (by default its net, pid and mnt namespaces).
    /// May be given more than once.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// A network namespace: an `ip netns` NAME, or a PATH (any value with a `/`) to a
    /// namespace file such as /proc/PID/ns/net or a bind mount. May be given more than once.
    #[arg(long = "netns", value_name = "NAME|PATH",
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub netns: Vec<String>,

    /// Every network namespace of the host: those of processes and of single threads, the
    /// named ones, nsfs bind mounts, and those held open only by a file descriptor.
    #[arg(long, conflicts_with_all = ["pids", "netns"])]
    pub all: bool,

    /// Which of each process's namespaces to join, comma-separated, from
    /// net,pid,mnt,uts,ipc,cgroup,user.
    #[arg(long, value_name = "LIST", requires = "pids", value_delimiter = ',',
          value_parser = parse_namespace_type)]
    pub ns: Option<Vec<NsType>>,

    /// Add each link's stats64 counters.
    #[arg(long)]
    pub stats: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct WhoisArgs {
    /// An interface name, an ifindex (of the caller's namespace), a MAC address or an IP
    /// address.
    pub query: String,

    #[command(flatten)]
    pub common: CommonArgs,
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
    if seconds.is_nan() || seconds < 0.001 {
        return Err(format!(
            "the timeout must be at least 0.001 seconds, not {text}"
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{text}' seconds is too long"))
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["pid", "netns"]))]
pub struct ExecArgs {
    /// Join the namespaces of this process (by default its net, pid and mnt namespaces).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// A network namespace: an `ip netns` NAME, or a PATH (any value with a `/`).
    #[arg(long, value_name = "NAME|PATH",
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub netns: Option<String>,

    /// Which of the process's namespaces to join, comma-separated, from
    /// net,pid,mnt,uts,ipc,cgroup,user.
    #[arg(long, value_name = "LIST", requires = "pid", value_delimiter = ',',
          value_parser = parse_namespace_type)]
    pub ns: Option<Vec<NsType>>,

    /// Run the command with an empty environment.
    #[arg(long)]
    pub clear_env: bool,

    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD [ARGS...]"
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The document whose schema to print; by default one schema for all of them.
    #[arg(value_enum)]
    pub document: Option<SchemaDocument>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaDocument {
    /// The document of `nshelper query`.
    Query,
    /// The document of `nshelper list`.
    List,
    /// The document of `nshelper whois`.
    Whois,
}

/// The command line of the commonest call, `query [KIND] (--pid N | --netns NAME)...
/// [--stats] [--pretty]` (or `--all` for the targets), parsed without clap; `None` for
/// anything else, which clap then parses. Building clap's whole command tree is a fifth of
/// a millisecond of a cold start, as much as joining a container's namespaces, and
/// monitoring agents make this call over and over. It accepts only what clap reads the
/// same way: a unit test holds the two to that.
pub fn parse_common_query(args: &[std::ffi::OsString]) -> Option<Cli> {
    let mut words = args.get(1..)?.iter().map(|arg| arg.to_str());
    if words.next()?? != "query" {
        return None;
    }
    let mut query = QueryArgs {
        what: QueryKind::Links,
        pids: Vec::new(),
        netns: Vec::new(),
        all: false,
        ns: None,
        stats: false,
        common: CommonArgs {
            output: OutputFormat::Json,
            pretty: false,
            timeout: Duration::from_secs(10),
        },
    };
    let mut first = true;
    while let Some(word) = words.next() {
        let word = word?;
        let (option, inline) = match word.split_once('=') {
            Some((option, value)) if option.starts_with("--") => (option, Some(value)),
            _ => (word, None),
        };
        let mut value = || match inline {
            Some(value) => Some(value),
            // A value that looks like an option is left to clap, which may read it either way.
            None => words.next()?.filter(|value| !value.starts_with('-')),
        };
        match option {
            "--pid" => {
                let pid = value()?;
                if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                query.pids.push(pid.parse().ok()?);
            }
            "--netns" => {
                let netns = value()?;
                if netns.is_empty() {
                    return None;
                }
                query.netns.push(netns.to_owned());
            }
            "--all" if inline.is_none() && !query.all => query.all = true,
            "--stats" if inline.is_none() && !query.stats => query.stats = true,
            "--pretty" if inline.is_none() && !query.common.pretty => query.common.pretty = true,
            kind if first && inline.is_none() => {
                query.what = match kind {
                    "links" => QueryKind::Links,
                    "veths" => QueryKind::Veths,
                    "addrs" => QueryKind::Addrs,
                    "routes" => QueryKind::Routes,
                    "neighbors" => QueryKind::Neighbors,
                    "all" => QueryKind::All,
                    _ => return None,
                }
            }
            _ => return None,
        }
        first = false;
    }
    if query.all && !(query.pids.is_empty() && query.netns.is_empty()) {
        return None;
    }
    Some(Cli {
        verbose: 0,
        command: Command::Query(query),
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    /// Words that the fast path reads, or must leave to clap, in a query's command line.
    const WORDS: [&str; 22] = [
        "links",
        "veths",
        "all",
        "addrs",
        "bogus",
        "--pid",
        "--pid=7",
        "--pid=",
        "12",
        "007",
        "-3",
        "4294967296",
        "--netns",
        "red",
        "--netns=-x",
        "--all",
        "--stats",
        "--pretty",
        "--pretty=yes",
        "-v",
        "--",
        "--ns",
    ];

    /// What the fast path made of `words` after `nshelper query`, next to what clap made.
    fn both(words: &[&str]) -> (Option<String>, Option<String>) {
        let args: Vec<OsString> = ["nshelper", "query"]
            .iter()
            .chain(words)
            .map(OsString::from)
            .collect();
        let fast = parse_common_query(&args).map(|cli| format!("{cli:?}"));
        let clap = Cli::try_parse_from(&args)
            .ok()
            .map(|cli| format!("{cli:?}"));
        (fast, clap)
    }

    #[test]
    fn the_fast_path_reads_every_command_line_it_takes_exactly_as_clap_does() {
        // Every sequence of up to three words, and a deterministic sample of longer ones.
        let mut lines: Vec<Vec<&str>> = vec![Vec::new()];
        for length in 1..=3 {
            let mut index = vec![0usize; length];
            loop {
                lines.push(index.iter().map(|&i| WORDS[i]).collect());
                let Some(at) = index.iter().rposition(|&i| i + 1 < WORDS.len()) else {
                    break;
                };
                index[at] += 1;
                index[at + 1..].fill(0);
            }
        }
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                usize::try_from(state % 1000).unwrap()
            };
            let length = 4 + next() % 4;
            lines.push((0..length).map(|_| WORDS[next() % WORDS.len()]).collect());
        }
        let mut taken = 0;
        for words in &lines {
            let (fast, clap) = both(words);
            if let Some(fast) = fast {
                assert_eq!(Some(&fast), clap.as_ref(), "query {}", words.join(" "));
                taken += 1;
            }
        }
        // The fast path is not a parser that refuses everything.
        assert!(taken > 250, "the fast path took only {taken} command lines");
    }

    #[test]
    fn the_fast_path_takes_the_common_calls() {
        for words in [
            &["links", "--pid", "4242"][..],
            &["--pid", "4242"],
            &["veths", "--netns", "red", "--netns=/proc/1/ns/net"],
            &["addrs", "--all", "--pretty"],
            &["all", "--pid=1", "--stats"],
            &[],
        ] {
            let (fast, clap) = both(words);
            assert!(fast.is_some(), "query {}", words.join(" "));
            assert_eq!(fast, clap, "query {}", words.join(" "));
        }
    }
}
