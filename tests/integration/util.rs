//! Shared machinery: find the built binaries, make a private world with unshare, run a
//! scene script in it, and read back what it wrote.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// The directory cargo put the workspace's binaries in (`target/debug`), found from the test
/// executable's own path (`target/debug/deps/integration-*`), as ripgrep's tests do.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory");
    let dir = deps
        .parent()
        .expect("target profile directory")
        .to_path_buf();
    dir
}

/// A binary of this workspace; panics with the fix when it has not been built.
pub fn workspace_bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` (or `make test`) first",
        path.display()
    );
    path
}

pub fn nshelper() -> PathBuf {
    workspace_bin("nshelper")
}

/// The source tree: the Makefile, README.md and docs/ are read from here.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Whether this process holds CAP_SYS_ADMIN, which making namespaces needs.
pub fn have_sys_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 21) != 0)
}

/// True when the test may go on. Without privilege it fails under `CI=true`, and elsewhere
/// says loudly that it did not run.
pub fn require_root(test: &str) -> bool {
    if have_sys_admin() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root (CAP_SYS_ADMIN) to make namespaces, and CI=true");
    }
    eprintln!("NOT RUN: {test} needs root (CAP_SYS_ADMIN) to make namespaces");
    false
}

/// Defined for every scene script: a private /run, an up loopback, and helpers.
const PRELUDE: &str = r#"
set -euo pipefail
mount -t tmpfs tmpfs /run
mkdir -p /run/netns
mount -t tmpfs tmpfs /run/netns
ip link set lo up

# Starts a container-like process and prints its pid: the child of the unshare process.
start_container() {
  # Its output must not hold the pipe of a $(start_container) substitution open.
  unshare --net --pid --mount --uts --fork --mount-proc sleep 600 </dev/null >/dev/null 2>&1 &
  local launcher=$! pid=""
  for _ in $(seq 400); do
    pid=$(tr -d ' ' </proc/$launcher/task/$launcher/children 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]; then
      echo "$pid"; return 0
    fi
    sleep 0.025
  done
  echo "container did not start" >&2
  return 1
}

# thread_in_netns NSFILE TIDFILE: starts a process one of whose threads alone joins the
# network namespace NSFILE, and waits until that thread's id is in TIDFILE.
thread_in_netns() {
  python3 -c '
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
def inside():
    if libc.setns(fd, 0x40000000) != 0:
        sys.exit("setns failed")
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(threading.get_native_id()))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(600)
threading.Thread(target=inside, daemon=True).start()
time.sleep(600)
' "$1" "$2" </dev/null >/dev/null 2>&1 &
  until [ -e "$2" ]; do sleep 0.02; done
}

# run_nshelper NAME ARGS...: stdout, stderr and status go to $OUT/NAME.{out,err,rc}.
run_nshelper() {
  local name=$1; shift
  local rc=0
  "$NSHELPER" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
  echo "$rc" >"$OUT/$name.rc"
}

# snapshot NAME IP... -- NSHELPER-ARGS...: runs nshelper, then `IP... -j -d link` as the
# oracle, into $OUT/NAME.{out,err,rc} and $OUT/NAME.ip.json; again until `IP... -j link`
# reads the same before and after, so that a carrier or operstate change in flight cannot
# make the two disagree. (`-d` output holds bridge timers, which never settle.)
snapshot() {
  local name=$1; shift
  local ip=()
  while [ "$1" != "--" ]; do ip+=("$1"); shift; done
  shift
  # SNAPSHOT_STATS=1 compares the counters too, for --stats.
  local stats=()
  [ -n "${SNAPSHOT_STATS:-}" ] && stats=(-s)
  for _ in $(seq 50); do
    "${ip[@]}" "${stats[@]}" -j link >"$OUT/$name.ip.before"
    run_nshelper "$name" "$@"
    "${ip[@]}" "${stats[@]}" -j -d link >"$OUT/$name.ip.json"
    "${ip[@]}" "${stats[@]}" -j link >"$OUT/$name.ip.after"
    cmp -s "$OUT/$name.ip.before" "$OUT/$name.ip.after" && return 0
    sleep 0.2
  done
  echo "the links of $name never settled" >&2
  return 1
}

# save NAME COMMAND...: the command's stdout goes to $OUT/NAME.
save() {
  local name=$1; shift
  "$@" >"$OUT/$name"
}
"#;

/// A private world (network, mount and pid namespaces of its own) in which a scene script
/// ran, and the directory it wrote its findings to.
pub struct World {
    out: PathBuf,
}

impl World {
    /// Runs `script` after [`PRELUDE`] as root in a fresh world, and panics with its stderr
    /// if it fails. The script sees `$NSHELPER` and `$OUT`.
    pub fn run(test: &str, script: &str) -> World {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let out = std::env::temp_dir().join(format!(
            "nshelper-test-{}-{}-{}",
            test,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&out).expect("create output directory");
        let output = Command::new("timeout")
            .args(["--kill-after=10", "180"])
            .args([
                "unshare",
                "--net",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "bash",
                "-c",
            ])
            .arg(format!("{PRELUDE}\n{script}"))
            .env("NSHELPER", nshelper())
            .env("OUT", &out)
            .env("BIN_DIR", bin_dir())
            .output()
            .expect("run unshare");
        assert!(
            output.status.success(),
            "scene script of {test} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        World { out }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_else(|e| panic!("read {}: {e}", self.path(name).display()))
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name))
            .unwrap_or_else(|e| panic!("read {}: {e}", self.path(name).display()))
    }

    /// The result of a `run_nshelper NAME ...` line of the script.
    pub fn nshelper_run(&self, name: &str) -> Run {
        Run {
            stdout: self.bytes(&format!("{name}.out")),
            stderr: self.read(&format!("{name}.err")),
            status: self
                .read(&format!("{name}.rc"))
                .trim()
                .parse()
                .expect("status"),
        }
    }

    /// An `ip -j` output saved by the script, parsed leniently (see [`parse_ip_json`]).
    pub fn ip_json(&self, name: &str) -> Value {
        parse_ip_json(&self.bytes(name))
    }

    /// A namespace inode as `readlink /proc/PID/ns/TYPE` printed it (`net:[4026532290]`).
    pub fn inode(&self, name: &str) -> u64 {
        let text = self.read(name);
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no inode in {text:?}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.out);
    }
}

/// What one nshelper invocation produced.
#[derive(Debug)]
pub struct Run {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub status: i32,
}

impl Run {
    /// The stdout document, parsed strictly: nshelper must always print valid JSON.
    pub fn document(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "nshelper printed invalid JSON ({e}):\n{}\nstderr: {}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            )
        })
    }

    /// Asserts success and returns the links of the one result.
    pub fn only_result(&self) -> Value {
        assert_eq!(self.status, 0, "nshelper failed: {}", self.stderr);
        assert!(self.stderr.is_empty(), "unexpected stderr: {}", self.stderr);
        let document = self.document();
        assert_eq!(document["version"], 1);
        assert_eq!(document["errors"], Value::Array(vec![]), "{document}");
        let results = document["results"].as_array().expect("results array");
        assert_eq!(results.len(), 1, "{document}");
        results[0].clone()
    }

    /// Asserts success and returns the whole document, whatever the number of results.
    pub fn only_result_set(&self) -> Value {
        assert_eq!(self.status, 0, "nshelper failed: {}", self.stderr);
        let document = self.document();
        assert_eq!(document["errors"], Value::Array(vec![]), "{document}");
        document
    }

    /// Asserts that the run failed the documented way: status 1, one stderr line, and one
    /// error of `kind` in the document.
    pub fn only_error(&self, kind: &str) -> Value {
        assert_eq!(self.status, 1, "stderr: {}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "stderr: {:?}", self.stderr);
        let document = self.document();
        assert_eq!(document["results"], Value::Array(vec![]), "{document}");
        let errors = document["errors"].as_array().expect("errors array");
        assert_eq!(errors.len(), 1, "{document}");
        assert_eq!(errors[0]["kind"], kind, "{document}");
        assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
        errors[0].clone()
    }
}

/// Parses `ip -j` output. iproute2 6.1 prints control bytes in interface names raw, which is
/// not JSON, and passes bytes that are not UTF-8 through; both are repaired here for the
/// oracle only. nshelper's own output is always parsed strictly.
pub fn parse_ip_json(bytes: &[u8]) -> Value {
    let mut repaired = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            } else if byte < 0x20 {
                repaired.extend_from_slice(format!("\\u{byte:04x}").as_bytes());
                continue;
            }
        } else if byte == b'"' {
            in_string = true;
        }
        repaired.push(byte);
    }
    let text = String::from_utf8_lossy(&repaired);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse ip output ({e}): {text}"))
}

/// Asserts that nshelper's links equal `ip -j -d link` from the same namespace on every field
/// the contract shares with it.
pub fn assert_links_match_ip(ours: &Value, ip: &Value) {
    assert_links_match_ip_where(ours, ip, |_| true);
}

/// As [`assert_links_match_ip`], for the links of `ip` that `wanted` selects; the others
/// still serve to turn names into indexes.
pub fn assert_links_match_ip_where(ours: &Value, ip: &Value, wanted: impl Fn(&Value) -> bool) {
    let ours = ours.as_array().expect("links array");
    let ip_all = ip.as_array().expect("ip link array");
    let ip: Vec<&Value> = ip_all.iter().filter(|l| wanted(l)).collect();
    let ours_indexes: Vec<u64> = ours
        .iter()
        .map(|l| l["ifindex"].as_u64().unwrap())
        .collect();
    let mut ip_indexes: Vec<u64> = ip.iter().map(|l| l["ifindex"].as_u64().unwrap()).collect();
    ip_indexes.sort_unstable();
    assert_eq!(ours_indexes, ip_indexes, "ifindexes differ");
    let index_of = |name: &Value| -> Value {
        ip_all
            .iter()
            .find(|l| &l["ifname"] == name)
            .map(|l| l["ifindex"].clone())
            .unwrap_or(Value::Null)
    };
    for &theirs in &ip {
        let link = ours
            .iter()
            .find(|l| l["ifindex"] == theirs["ifindex"])
            .unwrap();
        let context = format!("ours: {link}\nip: {theirs}");
        assert_eq!(link["ifname"], theirs["ifname"], "{context}");
        assert_eq!(link["mtu"], theirs["mtu"], "{context}");
        assert_eq!(link["operstate"], theirs["operstate"], "{context}");
        assert_eq!(link["flags"], theirs["flags"], "{context}");
        let address = theirs.get("address").cloned().unwrap_or(Value::Null);
        assert_eq!(link["address"], address, "{context}");
        let kind = theirs["linkinfo"]
            .get("info_kind")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(link["kind"], kind, "{context}");
        let master = theirs.get("master").map_or(Value::Null, index_of);
        assert_eq!(link["master"], master, "{context}");
        // ip names a lower link in the same namespace, and gives the index of one elsewhere.
        let lower = match (theirs.get("link_index"), theirs.get("link")) {
            (Some(index), _) => index.clone(),
            (None, Some(name)) if !name.is_null() => index_of(name),
            _ => Value::Null,
        };
        if !lower.is_null() {
            assert_eq!(link["link_index"], lower, "{context}");
        }
        let netnsid = theirs.get("link_netnsid").cloned().unwrap_or(Value::Null);
        assert_eq!(link["link_netnsid"], netnsid, "{context}");
        let or_null = |key: &str| theirs.get(key).cloned().unwrap_or(Value::Null);
        assert_eq!(link["txqlen"], or_null("txqlen"), "{context}");
        assert_eq!(link["link_type"], theirs["link_type"], "{context}");
        assert_eq!(link["broadcast"], or_null("broadcast"), "{context}");
        assert_eq!(link["alias"], or_null("ifalias"), "{context}");
        let altnames = theirs
            .get("altnames")
            .cloned()
            .unwrap_or(Value::Array(vec![]));
        assert_eq!(link["altnames"], altnames, "{context}");
    }
}

/// The link called `name` in a links array.
pub fn link_named<'a>(links: &'a Value, name: &str) -> &'a Value {
    links
        .as_array()
        .expect("links array")
        .iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or_else(|| panic!("no link {name} in {links}"))
}
