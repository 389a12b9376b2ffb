//! nshelper: looks inside Linux namespaces and reports what it finds as JSON, or as tables
//! for people.

#![forbid(unsafe_code)]
// The process starts in `run`, through `nshelper_namespaces::entry_point!` below: it skips
// Rust's runtime start-up, which cost a tenth of a one-container query. The macro's one
// unsafe attribute lives with the rest of nshelper's unsafe code, in that crate's sys.rs.
// Unit tests keep the test harness's `main`, and so never call `run`: what only `run` uses
// is dead there, and only there.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod diag;
mod exec;
mod failure;
mod inside;
mod jobs;
mod list;
mod parallel;
mod privileges;
mod query;
mod schema;
mod table;
mod whois;

use std::io::Write;
use std::os::fd::AsFd;

use clap::{CommandFactory, Parser};
use nshelper_model::{Target, TargetError};
use serde::Serialize;

use crate::cli::{Cli, Command, CommonArgs, OutputFormat};
use crate::failure::{EXIT_OK, EXIT_TARGET_FAILED, EXIT_USAGE};

#[cfg(not(test))]
nshelper_namespaces::entry_point!(run);

/// Whether stdout was closed when nshelper started (it is on /dev/null now): the output would
/// vanish, which is reported as a failure to write it.
static STDOUT_CLOSED_AT_START: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn run(closed: nshelper_namespaces::ClosedAtStart) -> i32 {
    STDOUT_CLOSED_AT_START.store(closed.stdout, std::sync::atomic::Ordering::Relaxed);
    diag::init(0);
    // Recorded now: error messages later say what privilege was missing, and by then the
    // helper has dropped what it had.
    privileges::record_starting_capabilities();
    raise_descriptor_limit();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::parse_common_query(&args).map_or_else(|| Cli::try_parse_from(&args), Ok) {
        Ok(cli) => cli,
        Err(error) => return report_usage_error(error),
    };
    diag::init(cli.verbose);
    diag::say(1, || {
        format!(
            "nshelper {}, started with {}",
            env!("CARGO_PKG_VERSION"),
            privileges::describe_starting_capabilities()
        )
    });
    if let Some(error) = conflicting_options(&cli) {
        return report_usage_error(error);
    }
    let code = match cli.command {
        Command::Query(args) => {
            let (results, errors) = query::run(&args);
            finish(&errors, false, || match args.common.output {
                OutputFormat::Json => print_document(
                    &query::PrintedDocument::new(results, errors.clone()),
                    args.common.pretty,
                ),
                OutputFormat::Table => {
                    let results = results
                        .into_iter()
                        .map(query::PrintedResult::into_finished)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(std::io::Error::other)?;
                    print_text(&table::query(&results, args.what))
                }
            })
        }
        Command::List(args) => {
            let document = list::run(&args);
            finish(&document.errors, false, || {
                print_output(&document, &args, |d| table::list(&d.namespaces))
            })
        }
        Command::Exec(args) => exec::run(&args),
        Command::Schema(args) => {
            let schema = schema::print(args.document);
            match print_document(&schema, true) {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    eprintln!("nshelper: cannot write the schema: {e}; {STDOUT_HINT}");
                    EXIT_TARGET_FAILED
                }
            }
        }
        Command::Whois(args) => {
            let document = whois::run(&args);
            if document.matches.is_empty() {
                eprintln!(
                    "nshelper: whois {}: no interface, ifindex, MAC or address matches in any \
                     network namespace; check the spelling, or see every address with \
                     'nshelper query addrs --all -o table'",
                    one_line(&args.query)
                );
            }
            finish(&document.errors, document.matches.is_empty(), || {
                print_output(&document, &args.common, |d| table::whois(&d.matches))
            })
        }
    };
    code
}

/// `--pretty` indents JSON, and `-o table` prints none: saying so beats ignoring an option
/// that the caller expected to do something.
fn conflicting_options(cli: &Cli) -> Option<clap::Error> {
    let common = match &cli.command {
        Command::Query(args) => &args.common,
        Command::List(args) => args,
        Command::Whois(args) => &args.common,
        Command::Exec(_) | Command::Schema(_) => return None,
    };
    (common.pretty && common.output == OutputFormat::Table).then(|| {
        Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            "the argument '--pretty' cannot be used with '--output table': --pretty indents JSON",
        )
    })
}

/// `--all` keeps two descriptors open per namespace in the walker (the namespace's file, which
/// also names it to the kernel for nsids, and a socket in it); the common soft limit of 1024
/// would stop it near 500 namespaces, while the hard limit is there to be used.
fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// What to do when stdout cannot be written.
const STDOUT_HINT: &str = "check that stdout is open and that what reads it reads to the end";

/// Prints one line on stderr for each error, then the output; returns the exit status.
fn finish(
    errors: &[TargetError],
    failed: bool,
    print: impl FnOnce() -> std::io::Result<()>,
) -> i32 {
    for error in errors {
        let line = format!(
            "{}: {}: {}",
            describe(&error.target),
            error.kind.as_str(),
            error.message
        );
        eprintln!("nshelper: {}", one_line(&line));
    }
    if let Err(e) = print() {
        eprintln!("nshelper: cannot write the output: {e}; {STDOUT_HINT}");
        return EXIT_TARGET_FAILED;
    }
    if failed || !errors.is_empty() {
        EXIT_TARGET_FAILED
    } else {
        EXIT_OK
    }
}

/// The document as JSON, or as the table `table` makes of it, as `-o` asks.
fn print_output<D: Printable>(
    document: &D,
    common: &CommonArgs,
    table: impl FnOnce(&D) -> String,
) -> std::io::Result<()> {
    match common.output {
        OutputFormat::Json => print_document(document, common.pretty),
        OutputFormat::Table => print_text(&table(document)),
    }
}

/// Help and version go to stdout with status 0; any other command-line problem is one line
/// on stderr and status 2.
fn report_usage_error(error: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    // exec's own statuses leave 1 and 2 to the command; its usage errors are 125, as env's.
    let usage_status = if std::env::args_os().nth(1).as_deref() == Some("exec".as_ref()) {
        exec::EXIT_EXEC_FAILED
    } else {
        EXIT_USAGE
    };
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                usage_status
            } else {
                EXIT_OK
            }
        }
        _ => {
            // clap's first paragraph is the error itself; the usage text after it is noise in
            // a log line.
            let rendered = error.render().to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|line| line.is_empty())
                .take_while(|line| !line.is_empty())
                .collect();
            let line = paragraph.join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!(
                "nshelper: {}; run '{} --help' for the options and examples",
                one_line(line),
                command_line_name()
            );
            usage_status
        }
    }
}

/// `nshelper SUBCOMMAND` when the command line names one, else `nshelper`: whose `--help`
/// a usage error points to.
fn command_line_name() -> String {
    let first = std::env::args().nth(1).unwrap_or_default();
    if Cli::command()
        .get_subcommands()
        .any(|sub| sub.get_name() == first)
    {
        format!("nshelper {first}")
    } else {
        "nshelper".to_owned()
    }
}

/// Text from the command line or from inside a target, made safe for one line of a log or
/// terminal: control characters are escaped.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A document nshelper prints.
pub(crate) trait Printable: Serialize {
    /// Writes the compact form; a document may know a faster way than serde's.
    fn write_compact<W: Write>(&self, out: &mut W) -> std::io::Result<()> {
        serde_json::to_writer(out, self).map_err(std::io::Error::from)
    }
}

impl Printable for query::PrintedDocument {
    fn write_compact<W: Write>(&self, out: &mut W) -> std::io::Result<()> {
        query::PrintedDocument::write_compact(self, out)
    }
}
impl Printable for nshelper_model::ListDocument {}
impl Printable for nshelper_model::WhoisDocument {}
impl Printable for serde_json::Value {}

fn print_document(document: &impl Printable, pretty: bool) -> std::io::Result<()> {
    let step = diag::step("print the document");
    let printed = write_stdout(|out| {
        if pretty {
            serde_json::to_writer_pretty(&mut *out, document)?;
        } else {
            document.write_compact(&mut *out)?;
        }
        out.write_all(b"\n")
    });
    step.done(String::new);
    printed
}

fn print_text(text: &str) -> std::io::Result<()> {
    write_stdout(|out| out.write_all(text.as_bytes()))
}

fn write_stdout(
    write: impl FnOnce(&mut std::io::BufWriter<RawStdout>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    // A result must not vanish into the /dev/null that stands in for a closed stdout.
    if STDOUT_CLOSED_AT_START.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(std::io::Error::other("stdout is closed"));
    }
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, RawStdout(std::io::stdout()));
    write(&mut out)?;
    out.flush()
}

/// Descriptor 1, written with write(2) and every error reported. std's stdout takes EBADF
/// for success, and a setuid program started without a stdout (`sudo nshelper ... >&-`)
/// gets one from glibc that is /dev/null opened read-only: nothing at start can tell it
/// from a real one, and only writing to it fails.
struct RawStdout(std::io::Stdout);

impl Write for RawStdout {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        nix::unistd::write(self.0.as_fd(), bytes).map_err(std::io::Error::from)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn describe(target: &Target) -> String {
    match target {
        Target::Pid { pid } => format!("pid {pid}"),
        Target::Netns {
            name: Some(name), ..
        } => format!("netns {name}"),
        Target::Netns { path, .. } => format!("netns {path}"),
        Target::OwnNamespaces => "own namespaces".to_owned(),
        Target::Discovered(identity) => format!("netns {}", identity.netns),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::cli::Cli;

    /// The command lines of the `Examples:` section of `command`'s help: each line up to its
    /// description (two spaces on) or a pipe or redirection, without `sudo`.
    fn examples(command: &mut clap::Command) -> Vec<String> {
        let help = command.render_long_help().to_string();
        let (_, section) = help
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("no Examples: in the help of {}", command.get_name()));
        section
            .lines()
            .take_while(|line| !line.is_empty())
            .map(|line| {
                let line = line.trim_start();
                let command = line.split("  ").next().unwrap_or(line);
                let command = command.split(['|', '>']).next().unwrap_or(command).trim();
                command.strip_prefix("sudo ").unwrap_or(command).to_owned()
            })
            .collect()
    }

    #[test]
    fn every_command_has_examples_that_parse() {
        let mut top = Cli::command();
        top.build();
        let names: Vec<String> = top
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .filter(|name| name != "help")
            .collect();
        assert!(names.len() >= 5, "{names:?}");
        let mut seen = Vec::new();
        for example in examples(&mut top) {
            seen.push(example.split(' ').nth(1).unwrap_or_default().to_owned());
        }
        for name in &names {
            assert!(
                seen.contains(name),
                "nshelper --help shows no {name} example"
            );
            let sub = top.find_subcommand_mut(name).unwrap();
            let lines = examples(sub);
            assert!(!lines.is_empty(), "no examples for {name}");
            for line in lines {
                assert!(
                    line.starts_with(&format!("nshelper {name}")),
                    "an example of {name} that runs something else: {line}"
                );
            }
        }
        // Every example is a command line nshelper accepts.
        let mut all = examples(&mut top);
        for name in &names {
            all.extend(examples(top.find_subcommand_mut(name).unwrap()));
        }
        for example in all {
            let words = example.split_whitespace();
            if let Err(error) = Cli::try_parse_from(words) {
                panic!("{example}: {error}");
            }
        }
    }
}
