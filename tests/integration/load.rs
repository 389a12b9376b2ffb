//! Under load: a namespace that keeps changing, and many `--all` queries at once.

use std::collections::HashSet;

use serde_json::json;

use crate::util::{require_root, World};

#[test]
fn two_hundred_queries_of_a_changing_namespace_never_duplicate_a_link() {
    if !require_root("two_hundred_queries_of_a_changing_namespace_never_duplicate_a_link") {
        return;
    }
    let world = World::run(
        "churning-links",
        r#"
        ip netns add busy
        for i in $(seq 40); do ip -n busy link add name keep$i type veth peer name peer$i; done
        ( i=0; while :; do
            i=$((i + 1))
            ip -n busy link add name tmp$i type veth peer name tmq$i
            ip -n busy link del tmp$i
          done ) </dev/null >/dev/null 2>&1 &
        CHURN=$!
        for i in $(seq 200); do run_nshelper "q$i" query links --netns busy; done
        kill "$CHURN"
        "#,
    );
    for i in 1..=200 {
        let result = world.nshelper_run(&format!("q{i}")).only_result();
        let links = result["links"].as_array().unwrap();
        let indexes: HashSet<u64> = links
            .iter()
            .map(|l| l["ifindex"].as_u64().unwrap())
            .collect();
        let names: HashSet<&str> = links
            .iter()
            .map(|l| l["ifname"].as_str().unwrap())
            .collect();
        assert_eq!(indexes.len(), links.len(), "duplicate ifindex in query {i}");
        assert_eq!(names.len(), links.len(), "duplicate ifname in query {i}");
        // The links that never change are always all there.
        for n in 1..=40 {
            assert!(
                names.contains(format!("keep{n}").as_str()),
                "query {i} lost keep{n}"
            );
        }
    }
}

#[test]
fn twenty_four_concurrent_all_queries_all_succeed() {
    if !require_root("twenty_four_concurrent_all_queries_all_succeed") {
        return;
    }
    let world = World::run(
        "concurrent-all",
        r#"
        for i in $(seq 12); do
          ip netns add "ns$i"
          ip link add name "v$i" type veth peer name eth0 netns "ns$i"
        done
        for i in $(seq 24); do run_nshelper "all$i" query links --all & done
        wait
        "#,
    );
    for i in 1..=24 {
        let run = world.nshelper_run(&format!("all{i}"));
        assert_eq!(run.status, 0, "query {i}: {}", run.stderr);
        let document = run.document();
        assert_eq!(document["errors"], json!([]));
        let results = document["results"].as_array().unwrap();
        assert_eq!(
            results.len(),
            13,
            "the world's own namespace and 12 named ones"
        );
        for result in results {
            for link in result["links"].as_array().unwrap() {
                if link["kind"] == "veth" {
                    assert!(link["peer"]["ifname"].is_string(), "{link}");
                }
            }
        }
    }
}
