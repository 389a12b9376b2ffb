//! The JSON Schemas of the contract: the checked-in files are what `nshelper schema` prints,
//! and every document nshelper prints in a real world is valid against them.

use std::process::Command;

use crate::util::{nshelper, workspace_root};

/// `nshelper schema` arguments and the file under docs/schema/ that holds their output.
const SCHEMA_FILES: [(&[&str], &str); 4] = [
    (&[], "nshelper.json"),
    (&["query"], "query.json"),
    (&["list"], "list.json"),
    (&["whois"], "whois.json"),
];

fn printed_schema(args: &[&str]) -> Vec<u8> {
    let output = Command::new(nshelper())
        .arg("schema")
        .args(args)
        .output()
        .expect("run nshelper schema");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "nshelper schema {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn checked_in_schemas_are_what_nshelper_schema_prints() {
    let directory = workspace_root().join("docs/schema");
    for (args, file) in SCHEMA_FILES {
        let path = directory.join(file);
        let checked_in = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("read {}: {e} (run `make schema`)", path.display()));
        assert!(
            printed_schema(args) == checked_in,
            "docs/schema/{file} differs from `nshelper schema {}`: the model's types changed; \
             run `make schema` and commit the result",
            args.join(" ")
        );
    }
    let mut present: Vec<String> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    let mut expected: Vec<String> = SCHEMA_FILES.iter().map(|(_, f)| f.to_string()).collect();
    expected.sort();
    assert_eq!(
        present, expected,
        "docs/schema/ holds a file nshelper does not print"
    );
}
