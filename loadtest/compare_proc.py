"""compare_proc.py - the processes of loadtest/compare and of the tools
built on it (fanout, scaleout): spawning and stopping them by PID,
their CPU time and memory from /proc, ports, Shockwave's /metrics, and
the setup (packages, the build-bench build, configuration templates,
versions, machine)."""

import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
SWLOAD = os.path.join(BUILD, "loadtest", "swload")
BENCH_WS = os.path.join(BUILD, "loadtest", "bench_ws")
SHOCKWAVE = os.path.join(BUILD, "gateway", "shockwave")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Every process this script started: pid -> (name, Popen). Stopped by PID.
CHILDREN = {}


def log(msg):
    print("[compare %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def proc_table():
    """pid -> ppid for every process visible in /proc."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                data = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        rest = data[data.rindex(")") + 2:].split()
        table[int(d)] = int(rest[1])
    return table


def tree(pid):
    """pid and all its descendants (nginx workers are children)."""
    table = proc_table()
    out = [pid]
    i = 0
    while i < len(out):
        out.extend(p for p, pp in table.items() if pp == out[i])
        i += 1
    return [p for p in out if p in table]


def cpu_ticks(pid):
    """utime + stime, in clock ticks, of pid and its descendants. A
    process's /proc/PID/stat covers all its threads, live or exited."""
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2:].split()
        # Fields 14 and 15 of stat(5); rest[0] is field 3.
        total += int(rest[11]) + int(rest[12])
    return total


def machine_busy_ticks():
    """Busy clock ticks of the whole machine, every CPU, from the "cpu"
    line of /proc/stat: user + nice + system + irq + softirq + steal, i.e.
    everything but idle and iowait (guest time is already in user). Work
    done in softirq or a kworker on behalf of no process (a BPF verdict
    redirecting skbs, say) is charged here and to no /proc/PID/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    v += [0] * (8 - len(v))
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def rss_bytes(pid):
    """Resident set size of pid and its descendants, summed."""
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/statm" % p) as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


def spawn(name, argv, logpath, **kw):
    """Start a long-lived child, output to logpath; remember it by PID."""
    out = open(logpath, "ab")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, **kw)
    out.close()
    CHILDREN[p.pid] = (name, p)
    return p


def stop(pid, grace=5.0):
    """SIGTERM pid, wait, SIGKILL if needed; then the same for any of its
    descendants left behind (nginx workers whose master died)."""
    name, p = CHILDREN.get(pid, ("?", None))
    kids = [k for k in tree(pid) if k != pid]
    for target in [pid] + kids:
        try:
            os.kill(target, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    if p is not None:
        while p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if p.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    for k in kids:
        while time.time() < deadline and os.path.exists("/proc/%d" % k):
            time.sleep(0.05)
        try:
            os.kill(k, signal.SIGKILL)
        except ProcessLookupError:
            pass
    CHILDREN.pop(pid, None)


def stop_all():
    for pid in list(CHILDREN):
        stop(pid)


def on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, p, timeout=10.0):
    """Wait until something accepts on 127.0.0.1:port; fail if p died."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)\n" % path


def admin_metrics(port, timeout=2.0):
    """GET /metrics from a Shockwave admin listener: name -> value for every
    "name value" line, or None if it did not answer. The gateway keeps
    these counters in memory (no syscall on the data path to count them)."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Connection: close\r\n\r\n")
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    out = {}
    for line in body.decode("ascii", "replace").splitlines():
        if line.startswith("#"):
            continue  # HELP and TYPE lines of the Prometheus text format
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def splice_figures(m0, m1):
    """From /metrics before and after a run: splice() calls per MiB
    spliced and the share of WebSocket payload bytes that were spliced
    rather than copied. A counter the binary lacks (an older --baseline)
    gives no figure."""
    def delta(*names):
        # today's Prometheus name first, then an older binary's
        for name in names:
            if name in m0 and name in m1:
                return m1[name] - m0[name]
        return None
    out = {}
    calls = delta("shockwave_ws_splice_calls_total", "ws_splice_calls_total")
    spliced = delta("shockwave_ws_spliced_bytes_total",
                    "ws_bytes_spliced_total")
    copied = delta("shockwave_ws_copied_bytes_total", "ws_bytes_copied_total")
    if calls is not None and spliced:
        out["splice_calls_per_mib"] = calls / (spliced / float(1 << 20))
    if spliced is not None and copied is not None and spliced + copied:
        out["spliced_share"] = spliced / float(spliced + copied)
    return out


KERNEL_SESSIONS = "shockwave_ws_kernel_relay_sessions"


def settled_metrics(port, timeout=2.0):
    """admin_metrics once the sessions of a run have left the kernel relay:
    the gateway folds the frames the kernel moved into its counters every
    second and when a session ends, which may come a moment after the
    client exited. A binary or target without the kernel relay has the
    gauge at 0 (or not at all) and is read once."""
    deadline = time.time() + timeout
    m = admin_metrics(port)
    while m is not None and m.get(KERNEL_SESSIONS, 0) > 0 \
            and time.time() < deadline:
        time.sleep(0.05)
        m = admin_metrics(port)
    return m


def kernel_relay_figures(m0, m1):
    """From /metrics before and after a run: the share of WebSocket frames
    the kernel relay carried (shockwave_ws_kernel_relay_frames_total over
    shockwave_ws_frames_total, which counts the kernel's frames too), the
    payload bytes it moved and how often a direction went back to the
    gateway. A binary without those counters gives no figure."""
    def delta(name):
        name = "shockwave_" + name
        if name in m0 and name in m1:
            return m1[name] - m0[name]
        return None
    out = {}
    kf = delta("ws_kernel_relay_frames_total")
    frames = delta("ws_frames_total")
    if kf is None:
        return out
    if frames:
        out["kernel_share"] = kf / float(frames)
    out["kernel_frames"] = kf
    kb = delta("ws_kernel_relay_bytes_total")
    if kb is not None:
        out["kernel_bytes"] = kb
    ho = delta("ws_kernel_relay_handovers_total")
    if ho is not None:
        out["kernel_handovers"] = ho
    return out


# --------------------------------------------------------------------------
# Setup: packages, build, configs
# --------------------------------------------------------------------------

def ensure_packages():
    need = [pkg for pkg, exe in (("nginx-light", "nginx"),
                                 ("haproxy", "haproxy"), ("wrk", "wrk"),
                                 ("linux-perf", "perf"))
            if shutil.which(exe) is None
            and not os.path.exists("/usr/sbin/" + exe)]
    if not need:
        return
    log("installing " + " ".join(need))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + need,
                   check=True, env=env)


def exe(name):
    return shutil.which(name) or "/usr/sbin/" + name


def ensure_build():
    if not os.path.isdir(os.path.join(BUILD, "meson-private")):
        log("meson setup build-bench --buildtype=release")
        subprocess.run(["meson", "setup", BUILD, "--buildtype=release"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    # Only what the comparison runs, so a test someone is editing cannot
    # break it.
    log("ninja -C build-bench gateway/shockwave loadtest/swload")
    targets = ["ninja", "-C", BUILD, "gateway/shockwave", "loadtest/swload"]
    if subprocess.run(targets, stdout=subprocess.DEVNULL).returncode != 0:
        # meson.build picks source files up with fs.exists() at configure
        # time: a module added since needs a reconfigure.
        log("build failed: meson setup --reconfigure build-bench, retrying")
        subprocess.run(["meson", "setup", "--reconfigure", BUILD], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
        r = subprocess.run(targets, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise SystemExit("build failed:\n" + r.stdout[-3000:])
    r = subprocess.run(["ninja", "-C", BUILD, "loadtest/bench_ws"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        log("bench_ws not built (no loadtest/bench_ws.c?): skipped")
    r = subprocess.run(["ninja", "-C", BUILD, "tests/it_ws_alloc",
                        "tests/liballoccount.so"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        log("allocation counter not built: allocations per message skipped")


def render(template, dest, values):
    with open(os.path.join(ROOT, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise SystemExit("%s: unfilled %s" % (template, ", ".join(left)))
    with open(dest, "w") as f:
        f.write(text)


def plugin_lines(spec):
    """--plugin NAME:DIRECTIVES -> the two template lines: load_plugin of
    this build's plugins/NAME/NAME.so, and the route's plugin block."""
    name, _, block = spec.partition(":")
    path = os.path.join(BUILD, "plugins", name, name + ".so")
    if not os.path.exists(path):
        raise SystemExit("--plugin: %s is not built" % path)
    return {"PLUGIN_LOAD": "load_plugin %s %s;" % (name, path),
            "PLUGIN_USE": "plugin %s { %s }" % (name, block)}


def version(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def commit():
    """The commit Shockwave was built from, "+dirty" if the tree has
    uncommitted changes (other engineers may be mid-edit)."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short",
                               "HEAD"], stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "--untracked-files=no", "--", "lib",
                                "gateway"], stdout=subprocess.PIPE, text=True,
                               stderr=subprocess.DEVNULL).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty (lib/ or gateway/)" if dirty
                                  else "")


def sha256_short(path):
    """The first 12 hex digits of the file's SHA-256: both binaries print
    the same version, this tells them apart."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model,
            "kernel": platform.release(), "mem_mib": mem,
            "load": os.getloadavg()}

