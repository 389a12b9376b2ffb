//! The Makefile and README promise things to a new user; these tests keep them true.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{bin_dir, nshelper, workspace_bin, workspace_root};

#[test]
fn make_help_lists_every_target_with_a_description() {
    let output = Command::new("make")
        .args(["-s", "help"])
        .current_dir(workspace_root())
        .output()
        .expect("run make");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for target in ["build", "test", "lint", "install", "clean", "help"] {
        let line = help
            .lines()
            .find(|line| line.split_whitespace().next() == Some(target))
            .unwrap_or_else(|| panic!("make help does not list {target}:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "no description: {line}"
        );
    }
}

#[test]
fn readme_documents_the_commands_error_kinds_and_exit_codes() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let opening: String = readme.lines().take(12).collect::<Vec<_>>().join("\n");
    assert!(opening.contains("make test"), "README opens with make test");
    assert!(
        opening.contains("make demo"),
        "README opens with the main job"
    );
    for kind in [
        "not_found",
        "permission_denied",
        "invalid_target",
        "timeout",
        "child_failed",
        "netlink",
    ] {
        assert!(readme.contains(&format!("`{kind}`")), "README lacks {kind}");
    }
    for status in ["| 0 |", "| 1 |", "| 2 |"] {
        assert!(readme.contains(status), "README lacks exit status {status}");
    }
}

/// The code of a fenced block that opens with `opening` (` ```rust `, say), every line
/// passed through `line`, which drops it by returning None.
fn fenced_block(text: &str, opening: &str, line: impl Fn(&str) -> Option<String>) -> String {
    let lines: Vec<String> = text.lines().filter_map(&line).collect();
    let start = lines
        .iter()
        .position(|l| l == opening)
        .unwrap_or_else(|| panic!("no {opening} block"));
    let length = lines[start + 1..]
        .iter()
        .position(|l| l == "```")
        .expect("a closed block");
    lines[start + 1..start + 1 + length].join("\n")
}

#[test]
fn readme_shows_the_model_crates_doctest_as_the_rust_example() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## Parsing nshelper's output from Rust\n")
        .nth(1)
        .expect("README has a section \"Parsing nshelper's output from Rust\"");
    let shown = fenced_block(section, "```rust", |l| Some(l.to_owned()));
    let model = std::fs::read_to_string(root.join("crates/model/src/lib.rs")).unwrap();
    // The doctest as rustdoc shows it: crate docs without their `//! ` and hidden `# ` lines.
    let doctest = fenced_block(&model, "```rust", |l| {
        let text = l.strip_prefix("//!")?;
        let text = text.strip_prefix(' ').unwrap_or(text);
        (!(text.starts_with("# ") || text == "#")).then(|| text.to_owned())
    });
    assert!(
        shown.contains("serde_json::from_slice::<QueryDocument>(&output.stdout)"),
        "{shown}"
    );
    assert_eq!(
        shown, doctest,
        "README's Rust example must be the doctest of crates/model/src/lib.rs, which runs"
    );
}

/// The subcommands `nshelper --help` lists, but for clap's `help`.
fn subcommands() -> Vec<String> {
    let output = Command::new(nshelper()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let listed: Vec<String> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(listed.len() >= 5, "no commands in --help:\n{help}");
    listed
}

/// Runs `shell -c script`, asserting that it succeeds without complaint; returns stdout.
fn shell(shell: &str, script: &str) -> String {
    let output: Output = Command::new(shell)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("run {shell} ({e}): `make deps` installs it"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "{shell} -c {script:?}: {} {stderr}",
        output.status
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn make_install_puts_nshelper_its_man_pages_and_completions_under_destdir_and_prefix() {
    let destdir = std::env::temp_dir().join(format!("nshelper-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&destdir);
    // BUILD_DIR names the binaries `cargo build --workspace` made, so that make builds nothing.
    workspace_bin("nshelper-gen-docs");
    let output = Command::new("make")
        .args(["-s", "install", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("BUILD_DIR={}", bin_dir().display()))
        .current_dir(workspace_root())
        .output()
        .expect("run make");
    assert!(
        output.status.success(),
        "make install failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let usr = destdir.join("usr");

    let binary = usr.join("bin/nshelper");
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read(nshelper()).unwrap(),
        "the installed binary is not the one built"
    );
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(version.status.success());

    let man1 = usr.join("share/man/man1");
    let mut expected_pages = vec!["nshelper.1".to_owned()];
    expected_pages.extend(subcommands().iter().map(|c| format!("nshelper-{c}.1")));
    let mut pages: Vec<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    expected_pages.sort();
    assert_eq!(pages, expected_pages, "man pages in {}", man1.display());
    for page in &pages {
        let path = man1.join(page);
        let source = std::fs::read_to_string(&path).unwrap();
        let title = source
            .lines()
            .find(|line| line.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{page} has no .TH"));
        // Title, section, date, source and manual: none of them may be left out.
        let name = page.trim_end_matches(".1");
        assert!(
            title.starts_with(&format!(".TH {name} 1 2")) && title.ends_with("\"nshelper manual\""),
            "{page}: {title}"
        );
        // man -l renders the file itself; --warnings makes groff report any bad markup.
        let rendered = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .env_remove("MAN_KEEP_FORMATTING")
            .output()
            .expect("run man (`make deps` installs man-db)");
        let stderr = String::from_utf8_lossy(&rendered.stderr);
        assert!(
            rendered.status.success() && stderr.is_empty(),
            "man -l {page}: {stderr}"
        );
        let text = String::from_utf8_lossy(&rendered.stdout);
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SEE ALSO"] {
            assert!(text.contains(section), "{page} lacks {section}:\n{text}");
        }
    }
    let top = String::from_utf8_lossy(
        &Command::new("man")
            .arg("-l")
            .arg(man1.join("nshelper.1"))
            .env("MANWIDTH", "100")
            .env_remove("MAN_KEEP_FORMATTING")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for command in subcommands() {
        assert!(
            top.contains(&format!("nshelper-{command}(1)")),
            "nshelper.1 does not name {command}:\n{top}"
        );
    }
    for section in ["EXAMPLES", "EXIT STATUS"] {
        assert!(top.contains(section), "nshelper.1 lacks {section}:\n{top}");
    }

    let share = usr.join("share");
    let bash = share.join("bash-completion/completions/nshelper");
    let zsh = share.join("zsh/site-functions/_nshelper");
    let fish = share.join("fish/vendor_completions.d/nshelper.fish");
    let quoted = |path: &Path| format!("'{}'", path.display());

    let registered = shell(
        "bash",
        &format!("source {}; complete -p nshelper", quoted(&bash)),
    );
    assert!(registered.contains("-F _nshelper nshelper"), "{registered}");
    // What bash offers for `nshelper que<TAB>` and `nshelper query --st<TAB>`.
    let offered = shell(
        "bash",
        &format!(
            r#"source {}
            complete_line() {{
              COMP_LINE="$1"; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<<"$1"
              COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
              _nshelper nshelper "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
              printf '%s\n' "${{COMPREPLY[@]}}"
            }}
            complete_line 'nshelper que'
            complete_line 'nshelper query --st'"#,
            quoted(&bash)
        ),
    );
    assert_eq!(offered, "query\n--stats\n");

    let function = shell(
        "zsh",
        &format!(
            "autoload -U compinit && compinit -u -D && source {} && print -r -- $_comps[nshelper]",
            quoted(&zsh)
        ),
    );
    assert_eq!(function, "_nshelper\n");

    let offered = shell(
        "fish",
        &format!(
            "source {}; complete -C 'nshelper que'; complete -C 'nshelper query --st'",
            quoted(&fish)
        ),
    );
    let words: Vec<&str> = offered
        .lines()
        .filter_map(|line| line.split('\t').next())
        .collect();
    assert_eq!(words, ["query", "--stats"], "{offered}");

    std::fs::remove_dir_all(&destdir).unwrap();
}
