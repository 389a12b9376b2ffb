//! An unprivileged user and their own rootless container: nshelper joins the container's
//! user namespace first, as `nsenter --preserve-credentials` does.

use serde_json::json;

use crate::util::{assert_links_match_ip, require_root, World};

#[test]
fn an_unprivileged_user_can_query_and_exec_into_their_own_rootless_container() {
    if !require_root("an_unprivileged_user_can_query_and_exec_into_their_own_rootless_container") {
        return;
    }
    // Root only builds the world; everything else runs as uid 1000, with a copy of the
    // binary that uid 1000 may execute wherever the build tree lives.
    let world = World::run(
        "rootless",
        r#"
        cp "$NSHELPER" /run/nshelper && chmod 755 /run/nshelper
        user() { setpriv --reuid 1000 --regid 1000 --clear-groups --inh-caps=-all "$@"; }
        # Not through the function: $! must be the process that becomes unshare.
        setpriv --reuid 1000 --regid 1000 --clear-groups --inh-caps=-all \
          unshare --user --map-root-user --net --pid --mount --fork --mount-proc sleep 600 </dev/null >/dev/null 2>&1 &
        L=$!
        C=""
        for _ in $(seq 400); do
          C=$(tr -d ' ' </proc/$L/task/$L/children 2>/dev/null || true)
          [ -n "$C" ] && [ "$(readlink /proc/$C/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] && break
          C=""; sleep 0.025
        done
        [ -n "$C" ] || { echo "the rootless container did not start" >&2; exit 1; }
        user nsenter -t "$C" -U -n --preserve-credentials ip link add name veth-r type veth peer name eth0
        NSHELPER=setpriv
        run_nshelper query --reuid 1000 --regid 1000 --clear-groups --inh-caps=-all /run/nshelper query links --pid "$C"
        run_nshelper exec --reuid 1000 --regid 1000 --clear-groups --inh-caps=-all /run/nshelper exec --pid "$C" -- sh -c 'echo $$; readlink /proc/self/ns/user'
        user nsenter -t "$C" -U -n --preserve-credentials ip -j -d link >"$OUT/ip.json"
        for t in user net pid mnt; do readlink "/proc/$C/ns/$t" >"$OUT/target-$t"; done
        "#,
    );
    let result = world.nshelper_run("query").only_result();
    for kind in ["user", "net", "pid", "mnt"] {
        assert_eq!(
            result["namespaces"][kind],
            world.inode(&format!("target-{kind}")),
            "{kind}"
        );
    }
    assert_links_match_ip(&result["links"], &world.ip_json("ip.json"));
    assert!(result["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["ifname"] == json!("veth-r")));

    let exec = world.nshelper_run("exec");
    assert_eq!(exec.status, 0, "{}", exec.stderr);
    let out = String::from_utf8(exec.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].parse::<u32>().unwrap() < 10, "{out}");
    assert_eq!(lines[1], world.read("target-user").trim());
}
