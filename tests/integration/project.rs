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
