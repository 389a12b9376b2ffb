//! Writes nshelper's man pages and shell completions, generated from its clap command line,
//! for `make man completions` and `make install`. It is a binary of its own so that the
//! privileged nshelper carries none of this code.
//!
//! Usage: `nshelper-gen-docs man DIR` writes nshelper.1 and a page per subcommand
//! (nshelper-query.1, ...); `nshelper-gen-docs completions DIR` writes nshelper.bash,
//! _nshelper (zsh) and nshelper.fish.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

// The command line is shared with nshelper itself; this binary only describes it, so the
// argument structs are never built or read here.
#[allow(dead_code)]
#[path = "../cli.rs"]
mod cli;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [what, directory] if what == "man" => man_pages(Path::new(directory)),
        [what, directory] if what == "completions" => completions(Path::new(directory)),
        _ => {
            eprintln!("usage: nshelper-gen-docs (man|completions) DIRECTORY");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("nshelper-gen-docs: {error}");
            ExitCode::FAILURE
        }
    }
}

/// nshelper.1, then a page per subcommand, as clap_mangen lays them out, except that the
/// text after the options (examples, notes, exit status) gets sections of its own: clap's
/// one "EXTRA" section would fill the aligned example lines into a paragraph. The version is
/// in each page's footer (clap_mangen's VERSION section exists only for the top command).
fn man_pages(directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(directory)?;
    // A page left from a subcommand that is gone would be installed with the others.
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("nshelper") && name.ends_with(".1") {
            std::fs::remove_file(&path)?;
        }
    }
    let mut top = cli::Cli::command().disable_help_subcommand(true);
    top.build();
    let version = top.get_version().unwrap_or_default().to_owned();
    let subcommands: Vec<clap::Command> = top
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    let pages: Vec<String> = subcommands
        .iter()
        .map(|sub| format!("{}(1)", sub.get_display_name().unwrap_or_default()))
        .collect();
    let mut written = vec![man_page(
        directory,
        top,
        &version,
        &[pages.join(", "), "nsenter(1), lsns(8), ip-netns(8)".into()].join(", "),
    )?];
    for sub in subcommands {
        written.push(man_page(directory, sub, &version, "nshelper(1)")?);
    }
    Ok(written)
}

fn man_page(
    directory: &Path,
    command: clap::Command,
    version: &str,
    see_also: &str,
) -> std::io::Result<PathBuf> {
    let after_help = command
        .get_after_long_help()
        .or_else(|| command.get_after_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let has_arguments = command.get_arguments().any(|arg| !arg.is_hide_set());
    let has_subcommands = command.get_subcommands().any(|sub| !sub.is_hide_set());
    let man = clap_mangen::Man::new(command)
        .date(man_date())
        .source(format!("nshelper {version}"))
        .manual("nshelper manual");
    let path = directory.join(man.get_filename());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if has_arguments {
        man.render_options_section(&mut page)?;
    }
    if has_subcommands {
        man.render_subcommands_section(&mut page)?;
    }
    page.extend_from_slice(after_help_sections(&after_help).as_bytes());
    page.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", roff_text(see_also)).as_bytes());
    std::fs::write(&path, page)?;
    Ok(path)
}

/// The page's date, YYYY-MM-DD: that of `SOURCE_DATE_EPOCH` when it is set (the Makefile sets
/// the last commit's), so that a build from the same source makes the same pages, else today.
/// It must not be empty: clap_mangen would leave the argument out of `.TH`, and the source
/// and manual would slide into its place.
fn man_date() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        });
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm, for the proleptic
    // Gregorian calendar), to need no date crate for one line of a man page.
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The paragraphs of an after-help text as man sections: "Examples:" keeps its lines as
/// they are, "Exit status: ..." becomes EXIT STATUS, and the rest is NOTES.
fn after_help_sections(text: &str) -> String {
    let mut examples = String::new();
    let mut notes = String::new();
    let mut exit_status = String::new();
    for paragraph in text.split("\n\n") {
        if let Some(lines) = paragraph.strip_prefix("Examples:\n") {
            examples.push_str(".nf\n");
            for line in lines.lines() {
                examples.push_str(&roff_text(line.strip_prefix("  ").unwrap_or(line)));
                examples.push('\n');
            }
            examples.push_str(".fi\n");
        } else if let Some(status) = paragraph.strip_prefix("Exit status: ") {
            let status = status.replace('\n', " ");
            let mut chars = status.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            let status = first.unwrap_or_default() + chars.as_str();
            exit_status.push_str(&format!(".PP\n{}\n", roff_text(&status)));
        } else if !paragraph.trim().is_empty() {
            notes.push_str(&format!(
                ".PP\n{}\n",
                roff_text(&paragraph.replace('\n', " "))
            ));
        }
    }
    [
        ("EXAMPLES", examples),
        ("NOTES", notes),
        ("\"EXIT STATUS\"", exit_status),
    ]
    .into_iter()
    .filter(|(_, body)| !body.is_empty())
    .map(|(title, body)| format!(".SH {title}\n{body}"))
    .collect()
}

/// Text as roff prints it: backslashes and minus signs escaped (so that options can be
/// copied from the page), and a leading `.` or `'` kept from being read as a request.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

fn completions(directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(directory)?;
    let mut command = cli::Cli::command();
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| clap_complete::generate_to(shell, &mut command, "nshelper", directory))
        .collect()
}
