//! nshelper: looks inside Linux namespaces and reports what it finds as JSON.

#![forbid(unsafe_code)]

mod cli;
mod diag;
mod exec;
mod failure;
mod inside;
mod jobs;
mod list;
mod privileges;
mod query;
mod schema;
mod whois;

use std::io::Write;
use std::os::fd::AsFd;

use clap::Parser;
use nshelper_model::{Target, TargetError};
use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::failure::{EXIT_OK, EXIT_TARGET_FAILED, EXIT_USAGE};

fn main() {
    diag::init(0);
    // Recorded now: error messages later say what privilege was missing, and by then the
    // helper has dropped what it had.
    privileges::record_starting_capabilities();
    raise_descriptor_limit();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => std::process::exit(report_usage_error(error)),
    };
    diag::init(cli.verbose);
    diag::say(1, || {
        format!(
            "nshelper {}, started with {}",
            env!("CARGO_PKG_VERSION"),
            privileges::describe_starting_capabilities()
        )
    });
    let code = match cli.command {
        Command::Query(args) => {
            let (results, errors) = query::run(&args);
            finish(
                &query::PrintedDocument::new(results, errors.clone()),
                &errors,
                false,
                args.common.pretty,
            )
        }
        Command::List(args) => {
            let document = list::run(&args);
            finish(&document, &document.errors, false, args.pretty)
        }
        Command::Exec(args) => exec::run(&args),
        Command::Schema(args) => {
            let schema = schema::print(args.document);
            match print_document(&schema, true) {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    eprintln!("nshelper: cannot write the schema: {e}");
                    EXIT_TARGET_FAILED
                }
            }
        }
        Command::Whois(args) => {
            let document = whois::run(&args);
            if document.matches.is_empty() {
                eprintln!("nshelper: whois {}: no match", one_line(&args.query));
            }
            finish(
                &document,
                &document.errors,
                document.matches.is_empty(),
                args.common.pretty,
            )
        }
    };
    std::process::exit(code);
}

/// `--all` keeps two descriptors open per namespace (the one it joins and the one it offers
/// other query processes for their nsids); the common soft limit of 1024 would stop it near
/// 500 namespaces, while the hard limit is there to be used.
fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Prints one line on stderr for each error, then the document; returns the exit status.
fn finish(document: &impl Printable, errors: &[TargetError], failed: bool, pretty: bool) -> i32 {
    for error in errors {
        let line = format!(
            "{}: {}: {}",
            describe(&error.target),
            error.kind.as_str(),
            error.message
        );
        eprintln!("nshelper: {}", one_line(&line));
    }
    if let Err(e) = print_document(document, pretty) {
        eprintln!("nshelper: cannot write the JSON document: {e}");
        return EXIT_TARGET_FAILED;
    }
    if failed || !errors.is_empty() {
        EXIT_TARGET_FAILED
    } else {
        EXIT_OK
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
            eprintln!("nshelper: {} (see 'nshelper --help')", one_line(line));
            usage_status
        }
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
    let printed = write_document(document, pretty);
    step.done(String::new);
    printed
}

fn write_document(document: &impl Printable, pretty: bool) -> std::io::Result<()> {
    // Rust's stdout quietly drops writes to a closed descriptor; a result must not vanish.
    if nix::fcntl::fcntl(std::io::stdout().as_fd(), nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(std::io::Error::other("stdout is closed"));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if pretty {
        serde_json::to_writer_pretty(&mut out, document)?;
    } else {
        document.write_compact(&mut out)?;
    }
    out.write_all(b"\n")?;
    out.flush()
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
