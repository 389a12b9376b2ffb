//! The Makefile and README promise things to a new user; these tests keep them true.

use std::process::Command;

use crate::util::workspace_root;

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
