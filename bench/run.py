#!/usr/bin/env python3
"""`make bench`: measures the targets of issue 6 and writes bench/RESULTS.md.

Runs only inside a world of its own, as `make bench` starts it:

    unshare --net --mount --pid --fork --mount-proc --propagation private python3 bench/run.py

It then mounts a tmpfs on /run and another on /run/netns, so the host's /run/netns and
interfaces are never touched, and everything it made dies with it.

Every figure is the median of alternating runs: in each round every tool of a scenario runs
once, the round's first tool rotating, so slow drift of the machine hits all tools alike.
Each tool first runs once untimed, with its output checked (the right number of namespaces
and links, no errors). Every timed run must exit 0 and write nothing on stderr, or the
benchmark fails: a failing run is an error, never a fast time.

Times are wall-clock, from spawning the command (posix_spawn, stdout and stdin on /dev/null)
to reaping it (wait4). Peak RSS (nshelper and the probe only) comes from one more untimed run
under peak-rss (bench/src/bin/peak-rss.rs), which runs the command as its only child and reports
getrusage(RUSAGE_CHILDREN).ru_maxrss: the largest peak of the command and of every
descendant reaped under it (nshelper's query children included). See peak_rss() for why
this script cannot read it itself.

Options (or the environment variables in brackets):
  --runs N         timed runs per tool [BENCH_RUNS, default 7]
  --slow-runs N    timed runs of `ip -all netns exec` at 3,000 namespaces
                   [BENCH_SLOW_RUNS, default 3]
  --nshelper PATH  [NSHELPER, default target/release/nshelper; `make bench` passes
                   the static build's target/<triple>/release/nshelper]
  --probe PATH     [LIMIT_PROBE, default target/release/limit-probe]
  --peak-rss PATH  [PEAK_RSS, default target/release/peak-rss]
  --output PATH    [default bench/RESULTS.md]
  --quick          tiny sizes, to test the harness itself (the figures mean nothing)
Exit status: 0 when every measurement was made, even if a target is missed (the table says
so); 1 when a measurement failed; 2 when not run in a private world.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = "/run/bench"
# Where the measured binaries are copied: see snapshot().
SNAPSHOT = os.path.join(ROOT, "target", "bench-snapshot")
RUN_TIMEOUT = 900  # seconds; one run of anything taking longer is a failure

# Targets of issue 6.
TARGET_ALL_VS_IP = 80.0  # ip -all netns exec / nshelper --all, at least
TARGET_ALL_VS_PROBE = 2.0  # nshelper --all / limit probe, at most
TARGET_BIG_VS_IP = 1.5  # ip -n big -j -d link / nshelper --netns big, at least
TARGET_BIG_VS_PROBE = 1.5  # nshelper --netns big / limit probe, at most
TARGET_BIG_RSS_KIB = 16 * 1024  # nshelper's peak RSS on the big namespace, at most
TARGET_PID_VS_NSENTER = 2.0  # nsenter ... ip -j link / nshelper --pid, at least
# "Time per namespace must stay flat": the issue gives no number. Taken here as: the time per
# namespace at 3,000 is at most this many times the time per namespace at 1,000.
TARGET_FLAT = 1.25

MANY = 1000
GROWTH = (100, 1000, 3000)
# One container's runs take milliseconds: it gets this many times more of them.
CONTAINER_RUNS_FACTOR = 15
# Nor are the many-links runs long: that scenario gets this many times more.
MANY_LINKS_RUNS_FACTOR = 3
BIG_PAIRS = 2500


class MeasurementError(Exception):
    """A command failed, hung, or printed something other than what was expected."""


class Timeout(Exception):
    pass


BUSY = []  # scenarios measured while the machine was not quiet


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Running commands


def check(argv, stdin=None):
    """Runs a setup command; its failure is a measurement failure."""
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise MeasurementError(
            f"{' '.join(argv)} exited with {result.returncode}: {result.stderr.strip()[:2000]}"
        )
    return result.stdout


def _on_alarm(signum, frame):
    raise Timeout()


def spawn(argv, stdout_path):
    """Runs argv once: (seconds, exit code, stderr text)."""
    err_path = os.path.join(SCRATCH, "stderr")
    # Opened (and truncated) before the clock starts, so that the timed spawn only hands
    # descriptors over: opening files in the child is a cost of the harness, not the tool.
    fds = [
        os.open("/dev/null", os.O_RDONLY),
        os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
    try:
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        signal.alarm(RUN_TIMEOUT)
        try:
            _, status, _ = os.wait4(pid, 0)
        except Timeout:
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
            raise MeasurementError(f"{' '.join(argv)}: no answer within {RUN_TIMEOUT} s")
        finally:
            signal.alarm(0)
        elapsed = (time.perf_counter_ns() - start) / 1e9
    finally:
        for fd in fds:
            os.close(fd)
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()
    return elapsed, os.waitstatus_to_exitcode(status), stderr


def run_checked(argv, stdout_path="/dev/null"):
    seconds, code, stderr = spawn(argv, stdout_path)
    if code != 0 or stderr:
        how = f"exited with {code}" if code >= 0 else f"was killed by signal {-code}"
        raise MeasurementError(
            f"{' '.join(argv)} {how}" + (f"; stderr: {stderr.strip()[:2000]}" if stderr else "")
        )
    return seconds


def peak_rss(paths, argv):
    """Peak RSS in KiB of argv and every descendant it reaped, through `peak-rss`.

    Not wait4's ru_maxrss of a child of this script: a process started from Python begins
    with Python's own high-water mark (exec records the old memory's), so it would report at
    least Python's RSS whatever it really used. RUSAGE_CHILDREN deltas in this script do not
    help either: it is a running maximum over every child ever reaped.
    """
    out = os.path.join(SCRATCH, "rss")
    run_checked([paths.peak_rss, out] + argv)
    with open(out) as f:
        (line,) = f.read().split()
    key, value = line.split("=")
    if key != "maxrss_kib":
        raise MeasurementError(f"peak-rss wrote {line!r}")
    return int(value)


class Tool:
    def __init__(self, label, argv, verify, runs, rss=False):
        self.label = label
        self.argv = argv
        self.verify = verify  # called with the stdout of the untimed run
        self.runs = runs
        self.times = []
        self.measure_rss = rss
        self.rss = None  # KiB
        self.facts = None  # what verify found (e.g. the namespaces visited)

    @property
    def median_ms(self):
        return statistics.median(self.times) * 1000.0


def measure(scenario, tools, paths):
    """One checked untimed run of each tool, one through peak-rss for those whose memory is
    reported, then alternating timed runs."""
    if not wait_quiet():
        BUSY.append(scenario)
    for index, tool in enumerate(tools):
        out = os.path.join(SCRATCH, f"out.{index}")
        run_checked(tool.argv, out)
        with open(out, encoding="utf-8", errors="replace") as f:
            text = f.read()
        os.unlink(out)
        try:
            tool.facts = tool.verify(text)
        except MeasurementError as e:
            raise MeasurementError(f"{scenario}: {tool.label}: {e}") from None
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise MeasurementError(
                f"{scenario}: {tool.label}: unexpected output ({e!r}): {text[:300]!r}"
            ) from None
        if tool.measure_rss:
            tool.rss = peak_rss(paths, tool.argv)
    rounds = max(tool.runs for tool in tools)
    for round_index in range(rounds):
        shift = round_index % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            if len(tool.times) < tool.runs:
                tool.times.append(run_checked(tool.argv))
    for tool in tools:
        log(
            f"{scenario}: {tool.label}: median {tool.median_ms:.2f} ms "
            f"(min {min(tool.times) * 1000:.2f}, max {max(tool.times) * 1000:.2f}, "
            f"{len(tool.times)} runs)"
        )


def wait_quiet(limit=20.0):
    """Waits (at most `limit` seconds) until the CPUs are at least 90% idle over 0.3 s, so
    that the kernel's cleanup of namespaces deleted before does not land in a measurement."""

    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        total0, idle0 = sample()
        time.sleep(0.3)
        total1, idle1 = sample()
        if total1 > total0 and (idle1 - idle0) / (total1 - total0) >= 0.9:
            return True
    log(f"the machine stayed busy for {limit:.0f} s; measuring anyway (figures may be noisy)")
    return False


def live_network_namespaces():
    """Network namespaces the kernel still holds, freed or not yet (None if unknown)."""
    # slabinfo counts objects freed into a CPU's own slab as still in use, until that slab
    # turns over: a few namespaces made and dropped first make the count true. Without
    # this, thousands freed long ago kept the count up, and the wait below ran to its end.
    for _ in range(20):
        subprocess.run(["unshare", "--net", "true"], check=False)
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] == "net_namespace":
                    return int(fields[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def wait_for_namespace_cleanup(limit=300.0, few=200):
    """Waits until the kernel has freed the namespaces of an earlier run (thousands, from a
    bench run just before), which slow every namespace operation while they linger, even
    with the CPUs idle."""
    deadline = time.monotonic() + limit
    live = live_network_namespaces()
    if live is None or live <= few:
        return
    log(f"waiting for the kernel to free {live} network namespaces of an earlier run")
    while time.monotonic() < deadline:
        time.sleep(2)
        live = live_network_namespaces()
        if live is None or live <= few:
            return
    log(f"{live} network namespaces still held after {limit:.0f} s; measuring anyway")


# ---------------------------------------------------------------------------------------------
# Checks of each tool's output


def nshelper_results(text, results, errors_allowed=False):
    document = json.loads(text)
    if not errors_allowed and document["errors"]:
        raise MeasurementError(f"errors: {document['errors'][:3]}")
    if len(document["results"]) != results:
        raise MeasurementError(f"{len(document['results'])} results, expected {results}")
    return document["results"]


def probe_line(text, namespaces=None):
    fields = dict(item.split("=", 1) for item in text.split())
    facts = {key: int(value) for key, value in fields.items()}
    if set(facts) != {"namespaces", "bytes", "elapsed_us"}:
        raise MeasurementError(f"unexpected output {text!r}")
    if namespaces is not None and facts["namespaces"] != namespaces:
        raise MeasurementError(f"visited {facts['namespaces']} namespaces, expected {namespaces}")
    return facts


def ip_all_output(text, namespaces, links_each):
    """`ip -all netns exec ip -j link`: a `netns: NAME` line, then a JSON array, per namespace."""
    headers = [line for line in text.splitlines() if line.startswith("netns: ")]
    if len(headers) != namespaces:
        raise MeasurementError(f"{len(headers)} namespaces in the output, expected {namespaces}")
    arrays = [json.loads(line) for line in text.splitlines() if line.startswith("[")]
    if len(arrays) != namespaces or any(len(a) != links_each for a in arrays):
        raise MeasurementError(f"expected {namespaces} lists of {links_each} links")
    return {"namespaces": namespaces}


def json_links(text, links):
    found = len(json.loads(text))
    if found != links:
        raise MeasurementError(f"{found} links, expected {links}")
    return {"links": found}


# ---------------------------------------------------------------------------------------------
# The world


def ensure_private_world():
    problems = []
    if os.getpid() != 1:
        problems.append("not pid 1 of a pid namespace of its own")
    links = json.loads(check(["ip", "-j", "link"]))
    if [link["ifname"] for link in links] != ["lo"]:
        problems.append("the network namespace has links other than lo (is it the host's?)")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/" and any(tag.startswith("shared:") for tag in fields[6:]):
                problems.append("/ is a shared mount (is this the host's mount namespace?)")
    if problems:
        print(
            "bench/run.py runs only in a world of its own (use `make bench`):\n  "
            + "\n  ".join(problems),
            file=sys.stderr,
        )
        sys.exit(2)


def make_world():
    check(["mount", "-t", "tmpfs", "tmpfs", "/run"])
    os.mkdir("/run/netns")
    check(["mount", "-t", "tmpfs", "tmpfs", "/run/netns"])
    os.mkdir(SCRATCH)


def snapshot(paths):
    """Copies the binaries aside, so that a rebuild during the run cannot change what is
    measured: {name: (original path, sha256 prefix, modification time)}.

    The copies go to the build's disk, not to the world's tmpfs: a static binary started
    from tmpfs took 0.17 ms longer to start here than the same file on disk, where ip and
    nsenter are."""
    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    os.makedirs(SNAPSHOT)
    origins = {}
    for name in ("nshelper", "probe", "peak_rss"):
        original = getattr(paths, name)
        copy = os.path.join(SNAPSHOT, os.path.basename(original))
        shutil.copy2(original, copy)
        with open(copy, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        built = datetime.datetime.fromtimestamp(os.stat(copy).st_mtime, datetime.timezone.utc)
        origins[name] = (original, digest, built.strftime("%Y-%m-%d %H:%M UTC"))
        setattr(paths, name, copy)
    return origins


def grow_namespaces(have, want):
    """Named namespaces ns1..nsWANT, each with a veth vN here whose peer is its eth0."""
    if want <= have:
        return
    started = time.monotonic()
    numbers = range(have + 1, want + 1)
    check(["ip", "-batch", "-"], "".join(f"netns add ns{i}\n" for i in numbers))
    check(
        ["ip", "-batch", "-"],
        "".join(f"link add name v{i} type veth peer name eth0 netns ns{i}\n" for i in numbers),
    )
    log(f"made namespaces {have + 1}..{want} in {time.monotonic() - started:.1f} s")


def start_container():
    """A container-like process with a veth to this world: (launcher, pid)."""
    launcher = subprocess.Popen(
        ["unshare", "--net", "--pid", "--mount", "--uts", "--fork", "--mount-proc", "sleep", "600"]
    )
    children = f"/proc/{launcher.pid}/task/{launcher.pid}/children"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(children) as f:
            pids = f.read().split()
        if pids:
            break
        time.sleep(0.01)
    else:
        launcher.kill()
        raise MeasurementError("the container did not start")
    pid = int(pids[0])
    check(["ip", "link", "add", "name", "vc", "type", "veth", "peer", "name", "eth0", "netns", str(pid)])
    return launcher, pid


def stop_container(launcher, pid):
    # Deleting the veth here removes both ends now; the container's namespace, freed later by
    # the kernel, would take its end (and so this one) only some time after.
    check(["ip", "link", "del", "vc"])
    # The launcher first (SIGKILL on its child would make it complain that it cannot re-raise
    # SIGKILL), then the container's init, which is then ours: its pid namespace goes with it.
    launcher.kill()
    launcher.wait()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


# ---------------------------------------------------------------------------------------------
# Scenarios


def many_links(paths, runs):
    check(["ip", "netns", "add", "big"])
    check(
        ["ip", "-n", "big", "-batch", "-"],
        "".join(f"link add name va{i} type veth peer name vb{i}\n" for i in range(1, BIG_PAIRS + 1)),
    )
    links = 2 * BIG_PAIRS + 1
    def nshelper_big(text):
        (result,) = nshelper_results(text, 1)
        if len(result["links"]) != links:
            raise MeasurementError(f"{len(result['links'])} links, expected {links}")
        return {}

    tools = [
        Tool("nshelper query links --netns big",
             [paths.nshelper, "query", "links", "--netns", "big"], nshelper_big, runs, rss=True),
        Tool("ip -n big -j -d link",
             [paths.ip, "-n", "big", "-j", "-d", "link"], lambda t: json_links(t, links), runs),
        Tool("limit-probe --skip-stats --netns /run/netns/big",
             [paths.probe, "--skip-stats", "--netns", "/run/netns/big"],
             lambda t: probe_line(t, 1), runs, rss=True),
        Tool("limit-probe --netns /run/netns/big (with stats)",
             [paths.probe, "--netns", "/run/netns/big"], lambda t: probe_line(t, 1), runs,
             rss=True),
    ]
    measure("many links", tools, paths)
    check(["ip", "netns", "del", "big"])
    return tools


def version_line(text):
    if not text.startswith("nshelper "):
        raise MeasurementError(f"not a version line: {text[:80]!r}")
    return {}


def one_container(paths, runs):
    launcher, pid = start_container()
    try:
        def nshelper_pid(text):
            (result,) = nshelper_results(text, 1)
            if len(result["links"]) != 2:
                raise MeasurementError(f"{len(result['links'])} links, expected 2")
            return {}

        tools = [
            Tool("nshelper query links --pid PID",
                 [paths.nshelper, "query", "links", "--pid", str(pid)], nshelper_pid, runs,
                 rss=True),
            Tool("nsenter -t PID -n -p -m ip -j link",
                 [paths.nsenter, "-t", str(pid), "-n", "-p", "-m", "ip", "-j", "link"],
                 lambda t: json_links(t, 2), runs),
            # Starting the binary and nothing else: what any query pays before it begins.
            Tool("nshelper --version (start-up alone)", [paths.nshelper, "--version"],
                 version_line, runs),
        ]
        measure("one container", tools, paths)
    finally:
        stop_container(launcher, pid)
    return tools


def namespaces_tools(paths, n, runs, ip_runs, with_probes):
    """nshelper --all and ip -all over n named namespaces (each: lo and eth0) plus this world
    (lo and n veths)."""
    expected_links = 2 * n + (1 + n)

    def nshelper_all(text):
        results = nshelper_results(text, n + 1)
        found = sum(len(r["links"]) for r in results)
        if found != expected_links:
            raise MeasurementError(f"{found} links in all, expected {expected_links}")
        return {"namespaces": n + 1}

    tools = [
        Tool("nshelper query links --all", [paths.nshelper, "query", "links", "--all"],
             nshelper_all, runs, rss=True),
        Tool("ip -all netns exec ip -j link",
             [paths.ip, "-all", "netns", "exec", "ip", "-j", "link"],
             lambda t: ip_all_output(t, n, 2), ip_runs),
    ]
    # The probe at every size: how the kernel's own cost per namespace grows.
    tools.append(Tool("limit-probe --skip-stats (discovery, as --all)",
                      [paths.probe, "--skip-stats"], lambda t: probe_line(t, n + 1), runs,
                      rss=with_probes))
    if with_probes:
        tools += [
            Tool("limit-probe (discovery, with stats)",
                 [paths.probe], lambda t: probe_line(t, n + 1), runs, rss=True),
            Tool("limit-probe --skip-stats --self --netns-dir /run/netns (no discovery)",
                 [paths.probe, "--skip-stats", "--self", "--netns-dir", "/run/netns"],
                 lambda t: probe_line(t, n + 1), runs, rss=True),
        ]
    return tools


# ---------------------------------------------------------------------------------------------
# Report


def ms(value):
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def mib(kib):
    return "" if kib is None else f"{kib / 1024:.1f} MiB"


def yes(ok):
    return "yes" if ok else "**no**"


def row(scenario, tool, ratio="", target="", met=""):
    return [scenario, tool.label, ms(tool.median_ms), ratio, target, met, mib(tool.rss)]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine():
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "kernel": platform.release(),
        "cpu": model,
        "cores": os.cpu_count(),
        "usable": len(os.sched_getaffinity(0)),
        "iproute2": check(["ip", "-V"]).strip(),
        "load": load,
    }


def main():
    parser = argparse.ArgumentParser(description="make bench: the measurements of issue 6")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "7")))
    parser.add_argument("--slow-runs", type=int,
                        default=int(os.environ.get("BENCH_SLOW_RUNS", "3")))
    parser.add_argument("--nshelper", default=os.environ.get(
        "NSHELPER", os.path.join(ROOT, "target/release/nshelper")))
    parser.add_argument("--probe", default=os.environ.get(
        "LIMIT_PROBE", os.path.join(ROOT, "target/release/limit-probe")))
    parser.add_argument("--peak-rss", default=os.environ.get(
        "PEAK_RSS", os.path.join(ROOT, "target/release/peak-rss")))
    parser.add_argument("--output", default=os.path.join(ROOT, "bench/RESULTS.md"))
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, to test the harness itself; not the issue's figures")
    paths = parser.parse_args()
    if paths.quick:
        global MANY, GROWTH, BIG_PAIRS
        MANY, GROWTH, BIG_PAIRS = 30, (10, 30, 60), 100
    if paths.runs < 1 or paths.slow_runs < 1:
        parser.error("--runs and --slow-runs must be at least 1")
    for name in ("nshelper", "probe", "peak_rss"):
        setattr(paths, name, os.path.abspath(getattr(paths, name)))
        if not os.access(getattr(paths, name), os.X_OK):
            parser.error(f"{getattr(paths, name)} is not an executable (run `make bench`)")
    paths.ip = shutil.which("ip")
    paths.nsenter = shutil.which("nsenter")
    if not paths.ip or not paths.nsenter:
        parser.error("ip and nsenter are needed (make deps)")

    ensure_private_world()
    wait_for_namespace_cleanup()
    signal.signal(signal.SIGALRM, _on_alarm)
    make_world()
    origins = snapshot(paths)
    host = machine()
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = paths.runs
    log(f"{runs} runs per tool; nshelper {origins['nshelper'][0]} (sha256 {origins['nshelper'][1]})")

    try:
        # First, in a world with nothing else in it: deleting the big namespace leaves the
        # kernel unregistering 10,000 veths for a while after, and this scenario, whose runs
        # take milliseconds, was 15% slower after it (start-up alone, 1.51 against 1.31 ms).
        container = one_container(paths, runs * CONTAINER_RUNS_FACTOR)
        # Its runs take a tenth of a second: three times the runs cost a few seconds.
        big = many_links(paths, runs * MANY_LINKS_RUNS_FACTOR)

        growth = {}
        have = 0
        for n in GROWTH:
            grow_namespaces(have, n)
            have = n
            ip_runs = paths.slow_runs if n == GROWTH[-1] else runs
            tools = namespaces_tools(paths, n, runs, ip_runs, with_probes=(n == MANY))
            measure(f"{n} namespaces", tools, paths)
            growth[n] = tools
    except MeasurementError as e:
        print(f"bench: measurement failed: {e}", file=sys.stderr)
        return 1

    # The table.
    rows = []
    many = growth[MANY]
    nsh, ip, probe, probe_stats, probe_bare = many
    scenario = f"many namespaces ({MANY:,} + this world's)"
    r_ip = ip.median_ms / nsh.median_ms
    r_probe = nsh.median_ms / probe.median_ms
    rows.append(row(scenario, nsh))
    rows.append(row(scenario, ip, f"ip/nshelper {r_ip:.1f}x", f"≥ {TARGET_ALL_VS_IP:g}x",
                    yes(r_ip >= TARGET_ALL_VS_IP)))
    rows.append(row(scenario, probe, f"nshelper/probe {r_probe:.2f}x",
                    f"≤ {TARGET_ALL_VS_PROBE:g}x", yes(r_probe <= TARGET_ALL_VS_PROBE)))
    rows.append(row(scenario, probe_stats,
                    f"nshelper/probe {nsh.median_ms / probe_stats.median_ms:.2f}x", "(info)"))
    rows.append(row(scenario, probe_bare,
                    f"nshelper/probe {nsh.median_ms / probe_bare.median_ms:.2f}x", "(info)"))
    # The probe does the least --all can do; no tool doing that work beats ip by more.
    rows.append(["", "ceiling: ip -all / limit-probe (discovery)", "",
                 f"{ip.median_ms / probe.median_ms:.1f}x", "(info)", "", ""])

    b_nsh, b_ip, b_probe, b_probe_stats = big
    scenario = f"many links ({2 * BIG_PAIRS + 1:,} in big)"
    r_ip = b_ip.median_ms / b_nsh.median_ms
    r_probe = b_nsh.median_ms / b_probe.median_ms
    rows.append(row(scenario, b_nsh, "peak RSS", f"≤ {TARGET_BIG_RSS_KIB // 1024} MiB",
                    yes(b_nsh.rss <= TARGET_BIG_RSS_KIB)))
    rows.append(row(scenario, b_ip, f"ip/nshelper {r_ip:.2f}x", f"≥ {TARGET_BIG_VS_IP:g}x",
                    yes(r_ip >= TARGET_BIG_VS_IP)))
    rows.append(row(scenario, b_probe, f"nshelper/probe {r_probe:.2f}x",
                    f"≤ {TARGET_BIG_VS_PROBE:g}x", yes(r_probe <= TARGET_BIG_VS_PROBE)))
    rows.append(row(scenario, b_probe_stats,
                    f"nshelper/probe {b_nsh.median_ms / b_probe_stats.median_ms:.2f}x", "(info)"))
    rows.append(["", "ceiling: ip -n big / limit-probe", "",
                 f"{b_ip.median_ms / b_probe.median_ms:.2f}x", "(info)", "", ""])

    c_nsh, c_nsenter, c_start = container
    r_c = c_nsenter.median_ms / c_nsh.median_ms
    rows.append(row("one container", c_nsh))
    rows.append(row("one container", c_nsenter, f"nsenter/nshelper {r_c:.2f}x",
                    f"≥ {TARGET_PID_VS_NSENTER:g}x", yes(r_c >= TARGET_PID_VS_NSENTER)))
    rows.append(row("one container", c_start,
                    f"nsenter/start-up {c_nsenter.median_ms / c_start.median_ms:.2f}x", "(info)"))

    per_ns = {n: growth[n][0].median_ms * 1000 / (n + 1) for n in GROWTH}
    flat = per_ns[GROWTH[-1]] / per_ns[MANY]
    probe_per_ns = {n: growth[n][2].median_ms * 1000 / (n + 1) for n in GROWTH}
    for n in GROWTH:
        rows.append(row(f"growth {n:,}", growth[n][0], f"{per_ns[n]:.1f} µs/namespace"))
        rows.append(row(f"growth {n:,}", growth[n][1],
                        f"ip/nshelper {growth[n][1].median_ms / growth[n][0].median_ms:.1f}x"))
        rows.append(row(f"growth {n:,}", growth[n][2], f"{probe_per_ns[n]:.1f} µs/namespace",
                        "(info)"))
    rows.append(["growth", f"limit-probe µs/namespace, {GROWTH[-1]:,} vs {MANY:,}", "",
                 f"{probe_per_ns[GROWTH[-1]] / probe_per_ns[MANY]:.2f}x", "(info)", "", ""])
    rows.append(["growth", f"nshelper µs/namespace, {GROWTH[-1]:,} vs {MANY:,}", "", f"{flat:.2f}x",
                 f"≤ {TARGET_FLAT:g}x", yes(flat <= TARGET_FLAT), ""])

    header = ["scenario", "tool", "median ms", "ratio", "target", "met", "peak RSS"]
    main_table = table(header, rows)

    growth_rows = []
    for n in GROWTH:
        g_nsh, g_ip = growth[n][0], growth[n][1]
        growth_rows.append([
            f"{n:,}", ms(g_nsh.median_ms), f"{per_ns[n]:.1f}",
            ms(g_ip.median_ms), f"{g_ip.median_ms * 1000 / n:,.0f}",
            f"{g_ip.median_ms / g_nsh.median_ms:.1f}x", f"{len(g_ip.times)}",
        ])
    growth_table = table(
        ["namespaces", "nshelper ms", "nshelper µs/namespace", "ip -all ms",
         "ip -all µs/namespace", "ip/nshelper", "ip runs"],
        growth_rows,
    )

    missed = [r for r in rows if r[5] == "**no**"]
    summary = (
        "Every target is met." if not missed
        else f"{len(missed)} target(s) missed: " + "; ".join(f"{r[0]}: {r[1]} ({r[3]})" for r in missed)
    )
    busy = (
        "Before each scenario the CPUs were at least 90% idle."
        if not BUSY else
        "**The machine was busy** (under 90% idle for 20 s) before: " + ", ".join(BUSY)
        + "; those figures may be noisy."
    )
    notes = f"""\
- Median of {runs} alternating runs per tool (`ip -all netns exec` at {GROWTH[-1]:,} namespaces:
  {paths.slow_runs}; one container: {runs * CONTAINER_RUNS_FACTOR}; many links:
  {runs * MANY_LINKS_RUNS_FACTOR}), each after one untimed run
  whose output was checked. Wall time from spawn to reap, stdout on /dev/null; every run
  exited 0 with nothing on stderr.
- nshelper: `{os.path.relpath(origins['nshelper'][0], ROOT)}`, sha256 {origins['nshelper'][1]}…,
  built {origins['nshelper'][2]}; it and the probe were copied to `target/bench-snapshot/` at
  the start, so a rebuild during the run cannot change what is measured (on disk, as ip and
  nsenter are: started from tmpfs, a static binary took 0.17 ms longer here). The files a
  run gets as stdin, stdout and stderr are opened before its clock starts.
- The probe's rows use the same namespaces as nshelper: with no arguments it finds them with
  nshelper's own discovery (`discover_network_namespaces`), so it visits the {MANY:,} named
  namespaces and this world's own, as `--all` does. The targets compare nshelper with the
  `--skip-stats` probe, the request nshelper should send when `--stats` is not given; the
  probe with stats, and the probe without discovery (`--self --netns-dir /run/netns`), are
  shown for reference.
- `ip -all netns exec` visits the named namespaces only (not this world's).
- Peak RSS: one more run under `peak-rss` (bench/src/bin/peak-rss.rs), which starts the
  command as its only child and reports `getrusage(RUSAGE_CHILDREN).ru_maxrss`: the
  largest peak RSS of the command and of every descendant reaped under it, so nshelper's
  forked query processes are included. Its floor is peak-rss's own RSS (about 2 MiB).
- Growth: µs/namespace is the median over the namespaces visited (n + 1 for nshelper,
  n for ip). Flat is taken as: at {GROWTH[-1]:,} at most {TARGET_FLAT:g}x the figure at {MANY:,}.
  The limit probe's own µs/namespace at each size shows how much of the growth is the
  kernel's: with a veth from this world to every namespace, each link of this world's dump
  names its peer's nsid by a search over all of them (peernet2id), so the kernel's cost per
  namespace rises with their number whatever reads it.
- {busy}"""

    report = f"""\
# nshelper benchmark results

Written by `make bench` ([bench/run.py](run.py)) on {started.strftime('%Y-%m-%d %H:%M UTC')}.

- Kernel {host['kernel']}; {host['cpu']}, {host['cores']} cores ({host['usable']} usable);
  {host['iproute2']}; load average at start {host['load']}.

{summary}

{main_table}

Growth:

{growth_table}

{notes}
"""
    print(report)
    with open(paths.output, "w", encoding="utf-8") as f:
        f.write(report)
    log(f"wrote {paths.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
