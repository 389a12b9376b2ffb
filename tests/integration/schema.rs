//! The JSON Schemas of the contract: the checked-in files are what `nshelper schema` prints,
//! and every document nshelper prints in a real world is valid against them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::host::SCENE;
use crate::util::{nshelper, require_root, workspace_root, World};

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

/// Runs that cover every document, every query, and every part of the schema: on top of the
/// host scene of host.rs, names that are not UTF-8 (a veth pair in one namespace, an alias
/// and an altname) and a point-to-point address. `NAME STATUS ARGS...` each.
const RUNS: &str = r#"
ip -n blue link add name $'u\xff8' type veth peer name $'v\xfe8'
ip -n blue link set dev $'u\xff8' alias $'to \xff'
ip -n blue link property add dev $'u\xff8' altname $'alt\xfd'
c1 ip addr add 10.7.7.1 peer 10.7.7.2/32 dev eth0
run_nshelper own 0 query
run_nshelper links 0 query links --pid "$C1"
run_nshelper veths 0 query veths --pid "$C1" --pretty
run_nshelper addrs 0 query addrs --pid "$C1"
run_nshelper routes 0 query routes --pid "$C1"
run_nshelper neighbors 0 query neighbors --pid "$C1"
run_nshelper all 0 query all --pid "$C1" --stats
run_nshelper every-type 0 query links --pid "$C1" --ns net,pid,mnt,uts,ipc,cgroup,user
run_nshelper named 0 query all --netns red --netns blue --netns /run/pinned/ns1
run_nshelper host 0 query all --all --stats
run_nshelper list 0 list
run_nshelper whois-veth 0 whois vc1
run_nshelper whois-ip 0 whois 10.0.3.7
run_nshelper whois-none 1 whois no-such-interface
run_nshelper no-pid 1 query --pid 999999
run_nshelper pid0 1 query addrs --pid 0
run_nshelper no-netns 1 query routes --netns nosuch
run_nshelper mixed 1 query links --pid "$C1" --pid 999999
"#;

/// Which schema file each run's document must be valid against, besides nshelper.json.
fn document_of(args: &str) -> &'static str {
    match args.split_whitespace().next() {
        Some("query") => "query.json",
        Some("list") => "list.json",
        Some("whois") => "whois.json",
        other => panic!("no document for {other:?}"),
    }
}

/// Validates each document file against the schema file with python3-jsonschema, using the
/// validator for the schema's own `$schema`, after checking the schema itself against it.
const VALIDATE: &str = r#"
import json, sys
import jsonschema
with open(sys.argv[1]) as f:
    schema = json.load(f)
validator = jsonschema.validators.validator_for(schema)
validator.check_schema(schema)
validator = validator(schema)
errors = 0
for path in sys.argv[2:]:
    with open(path) as f:
        document = json.load(f)
    for error in validator.iter_errors(document):
        errors += 1
        if errors <= 40:
            where = "/".join(str(p) for p in error.absolute_path)
            print(f"{path}: at /{where}: {error.message[:400]}")
if errors > 40:
    print(f"... {errors - 40} more")
sys.exit(1 if errors else 0)
"#;

/// The failures python3-jsonschema finds, one line each; empty when every document is valid.
fn validation_failures(schema: &std::path::Path, documents: &[std::path::PathBuf]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema)
        .args(documents)
        .output()
        .expect("run python3 (make deps installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'jsonschema'"),
        "python3 lacks jsonschema: run `make deps` (Debian: apt-get install python3-jsonschema)"
    );
    match output.status.code() {
        Some(0) => String::new(),
        Some(1) if stderr.is_empty() => String::from_utf8_lossy(&output.stdout).into_owned(),
        _ => panic!("the validator failed ({}): {stderr}", output.status),
    }
}

#[test]
fn every_document_nshelper_prints_is_valid_against_the_schemas() {
    if !require_root("every_document_nshelper_prints_is_valid_against_the_schemas") {
        return;
    }
    let runs: Vec<(&str, i32, &str)> = RUNS
        .lines()
        .filter_map(|line| line.strip_prefix("run_nshelper "))
        .map(|line| {
            let mut words = line.splitn(3, ' ');
            let name = words.next().unwrap();
            let status = words.next().unwrap().parse().unwrap();
            (name, status, words.next().unwrap())
        })
        .collect();
    // The script runs each `run_nshelper NAME STATUS ARGS` as `run_nshelper NAME ARGS`.
    let script: String = RUNS
        .lines()
        .map(|line| match line.strip_prefix("run_nshelper ") {
            Some(rest) => {
                let mut words = rest.splitn(3, ' ');
                let (name, _, args) = (words.next(), words.next(), words.next());
                format!("run_nshelper {} {}\n", name.unwrap(), args.unwrap())
            }
            None => format!("{line}\n"),
        })
        .collect();
    let world = World::run(
        "schema",
        &format!("{SCENE}\nC1=$(cat \"$OUT/c1\")\n{script}"),
    );

    let schemas = workspace_root().join("docs/schema");
    let mut documents = Vec::new();
    let mut by_schema: BTreeMap<&str, Vec<PathBuf>> = BTreeMap::new();
    for &(name, status, args) in &runs {
        let run = world.nshelper_run(name);
        assert_eq!(
            run.status, status,
            "nshelper {args}: stderr: {}",
            run.stderr
        );
        documents.push(run.document());
        let path = world.path(&format!("{name}.out"));
        by_schema
            .entry(document_of(args))
            .or_default()
            .push(path.clone());
        by_schema.entry("nshelper.json").or_default().push(path);
    }
    for (schema, paths) in &by_schema {
        let failures = validation_failures(&schemas.join(schema), paths);
        assert!(failures.is_empty(), "invalid against {schema}:\n{failures}");
    }

    // The documents must use every property the schema defines, or some of it was never
    // checked against real output.
    let combined: Value =
        serde_json::from_slice(&std::fs::read(schemas.join("nshelper.json")).unwrap()).unwrap();
    let mut coverage = Coverage {
        root: &combined,
        used: BTreeSet::new(),
    };
    for document in &documents {
        coverage.visit(String::new(), &combined, document);
    }
    let mut defined = BTreeSet::new();
    defined_properties(String::new(), &combined, &mut defined);
    let unused: Vec<String> = defined
        .difference(&coverage.used)
        .map(|(at, key)| format!("{at}/properties/{key}"))
        .collect();
    assert!(
        unused.is_empty(),
        "no real document used these properties of the schema: {unused:#?}"
    );

    // And the check can fail: a renamed key, an unknown key and a wrong type are caught.
    let veths = world.path("veths.out");
    let mut document = world.nshelper_run("veths").document();
    let link = &mut document["results"][0]["links"][0];
    let ifname = link.as_object_mut().unwrap().remove("ifname").unwrap();
    link["name"] = ifname;
    document["results"][0]["extra"] = Value::Bool(true);
    document["errors"] = Value::String("none".into());
    std::fs::write(&veths, serde_json::to_vec(&document).unwrap()).unwrap();
    let failures = validation_failures(&schemas.join("query.json"), &[veths]);
    for expected in [
        "'ifname' is a required property",
        "('name' was unexpected)",
        "('extra' was unexpected)",
        "'none' is not of type 'array'",
    ] {
        assert!(
            failures.contains(expected),
            "the validator missed {expected:?}:\n{failures}"
        );
    }
}

/// Every `(schema object, property)` pair the schema defines, the object named by its JSON
/// pointer.
fn defined_properties(at: String, schema: &Value, found: &mut BTreeSet<(String, String)>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                for key in properties.keys() {
                    found.insert((at.clone(), key.clone()));
                }
            }
            for (key, value) in map {
                defined_properties(format!("{at}/{key}"), value, found);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                defined_properties(format!("{at}/{index}"), value, found);
            }
        }
        _ => {}
    }
}

/// Walks a document along the schema it is valid against, recording which properties of
/// which schema objects it uses.
struct Coverage<'a> {
    root: &'a Value,
    used: BTreeSet<(String, String)>,
}

impl<'a> Coverage<'a> {
    fn resolve(&self, mut at: String, mut schema: &'a Value) -> (String, &'a Value) {
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            at = reference
                .strip_prefix('#')
                .expect("a local $ref")
                .to_owned();
            schema = self.root.pointer(&at).expect("a $ref that resolves");
        }
        (at, schema)
    }

    fn visit(&mut self, at: String, schema: &'a Value, instance: &Value) {
        let (at, schema) = self.resolve(at, schema);
        for choice in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = schema.get(choice) {
                for (index, branch) in branches.iter().enumerate() {
                    let (branch_at, branch) =
                        self.resolve(format!("{at}/{choice}/{index}"), branch);
                    if shape_matches(branch, instance) {
                        self.visit(branch_at, branch, instance);
                    }
                }
            }
        }
        match instance {
            Value::Object(map) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                for (key, value) in map {
                    if let Some(property) = properties.and_then(|p| p.get(key)) {
                        self.used.insert((at.clone(), key.clone()));
                        self.visit(format!("{at}/properties/{key}"), property, value);
                    } else if let Some(values) = schema.get("additionalProperties") {
                        if values.is_object() {
                            self.visit(format!("{at}/additionalProperties"), values, value);
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for value in items {
                        self.visit(format!("{at}/items"), item, value);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether `instance` has the shape of an object schema (its required keys, no other keys,
/// its constants): enough to pick the branch of a `oneOf` that a valid document took.
fn shape_matches(schema: &Value, instance: &Value) -> bool {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return !instance.is_object() || schema.get("type").is_none_or(|t| t == "object");
    };
    let Some(map) = instance.as_object() else {
        return false;
    };
    let required = schema["required"].as_array().into_iter().flatten();
    required
        .filter_map(Value::as_str)
        .all(|key| map.contains_key(key))
        && map.iter().all(|(key, value)| {
            properties
                .get(key)
                .is_some_and(|p| p.get("const").is_none_or(|c| c == value))
        })
}
