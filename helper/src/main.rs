//! nshelper: looks inside Linux namespaces and reports what it finds as JSON.

#![forbid(unsafe_code)]

mod cli;
mod failure;
mod privileges;
mod query;

use std::io::Write;

use clap::Parser;
use nshelper_model::{QueryDocument, Target};

use crate::cli::{Cli, Command};
use crate::failure::{EXIT_OK, EXIT_TARGET_FAILED, EXIT_USAGE};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => std::process::exit(report_usage_error(error)),
    };
    let code = match cli.command {
        Command::Query(args) => run_query(&args),
    };
    std::process::exit(code);
}

/// Help and version go to stdout with status 0; any other command-line problem is one line
/// on stderr and status 2.
fn report_usage_error(error: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                EXIT_USAGE
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
            eprintln!("nshelper: {line} (see 'nshelper --help')");
            EXIT_USAGE
        }
    }
}

fn run_query(args: &cli::QueryArgs) -> i32 {
    let target = query::target_of(args);
    let (results, errors) = match query::run(args, &target) {
        Ok(result) => (vec![result], Vec::new()),
        Err(error) => {
            eprintln!(
                "nshelper: {}: {}: {}",
                describe(&error.target),
                error.kind.as_str(),
                error.message
            );
            (Vec::new(), vec![error])
        }
    };
    let failed = !errors.is_empty();
    let document = QueryDocument::new(results, errors);
    if let Err(e) = print_document(&document, args.pretty) {
        eprintln!("nshelper: cannot write the JSON document: {e}");
        return EXIT_TARGET_FAILED;
    }
    if failed {
        EXIT_TARGET_FAILED
    } else {
        EXIT_OK
    }
}

fn print_document(document: &QueryDocument, pretty: bool) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if pretty {
        serde_json::to_writer_pretty(&mut out, document)?;
    } else {
        serde_json::to_writer(&mut out, document)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

fn describe(target: &Target) -> String {
    match target {
        Target::Pid { pid } => format!("pid {pid}"),
        Target::Netns {
            name: Some(name), ..
        } => format!("netns {name}"),
        Target::Netns { path, .. } => format!("netns {path}"),
        Target::OwnNamespaces => "own namespaces".to_owned(),
    }
}
