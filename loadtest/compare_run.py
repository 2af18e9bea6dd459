"""compare_run.py - the runs of loadtest/compare: one set of servers per
worker count (Stack), system calls per message (SyscallCount) and the
scenarios themselves (Runner, bench_ws, allocations per message)."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

from compare_conf import (BASELINE, CLK_TCK, HAPROXY_SPLICE, IO_ENGINE,
                          KERNEL_RELAY, LABEL, NGINX_BUFFERS, NO_IO_ENGINE,
                          NO_KERNEL_RELAY, PROXIES, SHOCKWAVES, SW_KERNEL,
                          SW_URING, SYSCALL_GROUPS, USER_RELAY, WS_SCENARIOS)
from compare_proc import (BENCH_WS, BUILD, CHILDREN, ROOT, SHOCKWAVE, SWLOAD,
                          admin_metrics, cpu_ticks, exe, free_port,
                          kernel_relay_figures, log, machine_busy_ticks,
                          plugin_lines, render, rss_bytes, settled_metrics,
                          spawn, splice_figures, stop, tail, tree, wait_port)

TRACEFS_ROOT = "/sys/kernel/tracing"
TRACEFS = TRACEFS_ROOT + "/events/syscalls"


# --------------------------------------------------------------------------
# One set of servers for a given worker count
# --------------------------------------------------------------------------

class Stack:
    """Backends and the proxies for one worker count (those of --targets),
    plus the baseline Shockwave binary when one is given."""

    def __init__(self, tmp, workers, maxconn, nofile, targets,
                 baseline=None, plugin=None):
        self.tmp = tmp
        self.workers = workers
        self.baseline = baseline
        self.plugin = plugin  # "NAME:DIRECTIVES" for the Shockwave targets
        self.ports = {"echo": free_port(), "sink": free_port()}
        self.admin = {}  # Shockwave target -> its admin (/metrics) port
        self.engine = {}  # Shockwave target -> its io_engine line
        self.relay = {}  # Shockwave target -> its ws_kernel_relay line
        self.log_start = {}  # Shockwave target -> error log size at start
        self.procs = {}
        self.logs = {}
        self.argv = {}   # name -> (argv, port, log file) to restart it
        self.proxies = [t for t in PROXIES + [BASELINE] if t in targets]
        for name in self.proxies:
            self.ports[name] = free_port()
            if name in SHOCKWAVES:
                self.admin[name] = free_port()
        self.ports["direct"] = self.ports["echo"]
        self.values = {
            "WORKERS": workers, "TMP": tmp, "NOFILE": nofile,
            "WORKER_CONNECTIONS": nofile - 100, "MAXCONN": maxconn,
            # HAProxy: the descriptors maxconn leaves, two per pipe.
            "MAXPIPES": max(16, (nofile - 2 * maxconn - 100) // 2),
            "ECHO_PORT": self.ports["echo"], "SINK_PORT": self.ports["sink"],
        }

    def _start(self, name, argv, port, logname):
        path = os.path.join(self.tmp, logname)
        self.logs.setdefault(name, path)
        self.argv[name] = (argv, port, logname)
        p = spawn(name, argv, path)
        self.procs[name] = p
        if not wait_port(port, p):
            raise RuntimeError("%s did not start; log %s:\n%s"
                               % (name, path, tail(path)))
        return p

    def start(self):
        t = self.tmp
        self._start("echo", [SWLOAD, "echo", "--listen",
                             "127.0.0.1:%d" % self.ports["echo"]],
                    self.ports["echo"], "echo.log")
        self._start("sink", [SWLOAD, "sink", "--listen",
                             "127.0.0.1:%d" % self.ports["sink"]],
                    self.ports["sink"], "sink.log")
        for name in self.proxies:
            if name in NGINX_BUFFERS:
                self._start_nginx(name)
            elif name in HAPROXY_SPLICE:
                v = dict(self.values, LISTEN_PORT=self.ports[name],
                         SPLICE=HAPROXY_SPLICE[name])
                conf = os.path.join(t, "%s-%d.cfg" % (name, self.workers))
                render("loadtest/peers/haproxy.cfg.in", conf, v)
                self._start(name, [exe("haproxy"), "-db", "-f", conf],
                            self.ports[name], "%s.log" % name)
            elif name == "shockwave":
                self._start_shockwave(name, SHOCKWAVE, t)
            elif name in (SW_URING, SW_KERNEL, BASELINE):
                # Same template, same values: only the ports, the folder
                # of the error log (two processes cannot share either) and,
                # for SW_URING, the io_engine line, for SW_KERNEL the
                # ws_kernel_relay line differ.
                folder = os.path.join(t, name)
                os.makedirs(folder, exist_ok=True)
                self._start_shockwave(name, self.baseline if name == BASELINE
                                      else SHOCKWAVE, folder)

    def _start_nginx(self, name):
        """nginx or nginx-64k: same template; each instance has a folder of
        its own (pid file, error log, temp paths)."""
        folder = self.tmp if name == "nginx" else os.path.join(self.tmp, name)
        os.makedirs(folder, exist_ok=True)
        # Its workers run as nobody: they need to reach their temp folders.
        os.chmod(folder, 0o755)
        v = dict(self.values, LISTEN_PORT=self.ports[name], TMP=folder,
                 PROXY_BUFFERS=NGINX_BUFFERS[name])
        conf = os.path.join(self.tmp, "%s-%d.conf" % (name, self.workers))
        render("loadtest/peers/nginx.conf.in", conf, v)
        error_log = os.path.join(folder, "nginx-error.log")
        self._start(name, [exe("nginx"), "-p", folder, "-e", error_log,
                           "-c", conf], self.ports[name], "%s.log" % name)
        self.logs[name] = error_log

    def _start_shockwave(self, name, binary, folder):
        v = dict(self.values, LISTEN_PORT=self.ports[name], TMP=folder,
                 ADMIN_PORT=self.admin[name],
                 PLUGIN_LOAD="# no plugin", PLUGIN_USE="# no plugin")
        if self.plugin is not None and name in ("shockwave", SW_URING,
                                                SW_KERNEL):
            v.update(plugin_lines(self.plugin))
        conf = os.path.join(self.tmp, "%s-%d.conf" % (name, self.workers))
        argv = [binary, "-c", conf]
        # As root, a Shockwave that knows -R refuses to start without a
        # `user` directive; the comparison runs every peer as root.
        usage = subprocess.run([binary, "-h"], capture_output=True).stdout
        if os.geteuid() == 0 and b" -R " in usage:
            argv.insert(1, "-R")
        self.engine[name], self.relay[name] = self._render_engine(
            name, argv, conf, v)
        error_log = os.path.join(folder, "shockwave-error.log")
        # engine_notes reads what this process appends, not an earlier one's
        self.log_start[name] = (os.path.getsize(error_log)
                                if os.path.exists(error_log) else 0)
        self._start(name, argv, self.ports[name], "%s.log" % name)
        self.logs[name] = error_log

    def _render_engine(self, name, argv, conf, v):
        """Render the Shockwave config with its io_engine and
        ws_kernel_relay lines (SW_URING, SW_KERNEL and the baseline take the
        epoll target's lines but for the one that names them) and check it
        with -t. A binary that rejects ws_kernel_relay gets NO_KERNEL_RELAY,
        one that rejects io_engine too NO_IO_ENGINE; for SW_URING and
        SW_KERNEL that is an error. Returns (engine line, relay line)."""
        engine = IO_ENGINE.get(name, IO_ENGINE["shockwave"])
        relay = KERNEL_RELAY.get(name, USER_RELAY)
        tries = [(engine, relay)]
        if name not in (SW_URING, SW_KERNEL):
            tries += [(engine, NO_KERNEL_RELAY),
                      (NO_IO_ENGINE, NO_KERNEL_RELAY)]
        for engine, relay in tries:
            render("loadtest/conf/shockwave.conf.in", conf,
                   dict(v, IO_ENGINE=engine, KERNEL_RELAY=relay))
            r = subprocess.run(argv + ["-t"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               timeout=30)
            if r.returncode == 0:
                return engine, relay
        if name in (SW_URING, SW_KERNEL):
            raise RuntimeError("%s: the configuration with `%s` and `%s` "
                               "does not pass `shockwave -t` (a binary "
                               "without it? run with %s):\n%s"
                               % (name, engine, relay,
                                  "--engines epoll" if name == SW_URING
                                  else "--no-kernel-relay",
                                  r.stdout[-1500:]))
        return engine, relay

    def engine_notes(self, name):
        """Lines of a Shockwave target's error log that name an engine (a
        worker that could not set io_uring up says so there and runs on
        epoll): the report lists them as anomalies."""
        return self._log_lines(name, ("io_uring", "epoll"))

    def kernel_notes(self, name):
        """Lines of a Shockwave target's error log saying that a worker
        could not load the kernel relay (no BPF, no privilege, no sockmap:
        its WebSockets then use the user-space relay): anomalies too."""
        return self._log_lines(name, ("kernel relay unavailable",))

    def _log_lines(self, name, words):
        """Lines this process appended to its error log holding any of
        words."""
        path = self.logs.get(name)
        try:
            with open(path, errors="replace") as f:
                f.seek(self.log_start.get(name, 0))
                return [ln.rstrip() for ln in f
                        if any(wd in ln for wd in words)]
        except (OSError, TypeError):
            return []

    def stop(self):
        for name in list(reversed(self.proxies)) + ["sink", "echo"]:
            p = self.procs.pop(name, None)
            if p is not None:
                stop(p.pid)

    def restart(self, name):
        """A fresh process, so that memory kept by an allocator from an
        earlier run does not hide what new connections cost."""
        stop(self.procs.pop(name).pid)
        argv, port, logname = self.argv[name]
        self._start(name, argv, port, logname)

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def url(self, target, path):
        return "ws://127.0.0.1:%d%s" % (self.port_for(target, path), path)

    def port_for(self, target, path):
        if target == "direct":
            return self.ports["sink" if path == "/sink" else "echo"]
        return self.ports[target]


# --------------------------------------------------------------------------
# System calls per message
# --------------------------------------------------------------------------

class SyscallCount:
    """`perf stat` counting the syscall tracepoints of a proxy's processes
    (every thread) while a run goes on: `with SyscallCount(pids) as sc:`
    around the client, then sc.per(messages). Counting costs each call a
    little, so it runs in a pass of its own, never in the timed rounds."""

    def __init__(self, pids):
        self.pids = pids
        self.counts = {}
        self.proc = None

    @staticmethod
    def available():
        if shutil.which("perf") is None:
            return False
        probe = os.path.join(TRACEFS, "sys_enter_epoll_wait")
        if not os.path.isdir(probe) and not os.path.ismount(TRACEFS_ROOT):
            # a fresh boot has tracefs unmounted until a tool mounts it
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS_ROOT],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return os.path.isdir(probe)

    def __enter__(self):
        names = sorted({n for _, group in SYSCALL_GROUPS for n in group
                        if os.path.isdir(os.path.join(TRACEFS,
                                                      "sys_enter_" + n))})
        events = ["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + n
                                               for n in names]
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-e", ",".join(events), "-p",
             ",".join(str(p) for p in self.pids)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        CHILDREN[self.proc.pid] = ("perf", self.proc)
        time.sleep(0.3)  # attached before the load starts
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            stop(self.proc.pid)
            err = ""
        CHILDREN.pop(self.proc.pid, None)
        for line in err.splitlines():
            f = line.split(",")
            if len(f) >= 3 and f[0].strip().isdigit():
                name = f[2].split(":")[-1].replace("sys_enter_", "")
                self.counts[name] = int(f[0])
        return False

    def per(self, messages):
        """{"total": calls per message, group: calls per message...}, or
        None without counts."""
        total = self.counts.get("sys_enter")
        if not total or not messages:
            return None
        out = {"total": total / messages}
        known = 0
        for label, group in SYSCALL_GROUPS:
            n = sum(self.counts.get(g, 0) for g in group)
            known += n
            out[label] = n / messages
        out["other"] = max(0, total - known) / messages
        return out


# --------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------

class Runner:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.anomalies = []   # (text) for the report
        self.seq = 0
        self.count_syscalls = False  # the syscall pass: perf stat on

    def _client(self, pid, argv, **kw):
        """subprocess.run(argv), under perf stat in the syscall pass; returns
        (completed process, SyscallCount or None)."""
        if not (self.count_syscalls and pid):
            return subprocess.run(argv, **kw), None
        with SyscallCount(tree(pid)) as sc:
            r = subprocess.run(argv, **kw)
        return r, sc

    def _anomaly(self, stack, target, scenario, argv, detail):
        name = target if target != "direct" else "echo"
        entry = ("workers=%d, %s, %s: %s\n    command: %s\n"
                 % (stack.workers, LABEL[target], scenario, detail,
                    " ".join(argv)))
        path = stack.logs.get(name)
        if path:
            entry += "    log tail (%s):\n" % os.path.basename(path)
            entry += "".join("      " + ln + "\n"
                             for ln in tail(path, 8).splitlines())
        self.anomalies.append(entry)
        log("ANOMALY " + entry.rstrip())

    def _proxy_pid(self, stack, target):
        if target == "direct":
            return None
        return stack.procs[target].pid

    def ws(self, stack, target, scenario):
        sw_scen, path, extra = WS_SCENARIOS[scenario]
        argv = [SWLOAD, "client", "--url", stack.url(target, path),
                "--scenario", sw_scen, "--duration", str(self.args.duration),
                "--json-only"] + extra
        pid = self._proxy_pid(stack, target)
        # Shockwave's counters are read outside the CPU window: answering
        # /metrics costs the gateway CPU too.
        admin = stack.admin.get(target)
        m0 = admin_metrics(admin) if admin else None
        c0 = cpu_ticks(pid) if pid else 0
        k0 = machine_busy_ticks()
        try:
            r, sc = self._client(pid, argv, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 timeout=self.args.duration * 4 + 60)
        except subprocess.TimeoutExpired:
            self._anomaly(stack, target, scenario, argv, "client timed out")
            return None
        k1 = machine_busy_ticks()
        c1 = cpu_ticks(pid) if pid else 0
        m1 = settled_metrics(admin) if admin else None
        res = None
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                res = json.loads(line)
        if res is None:
            self._anomaly(stack, target, scenario, argv,
                          "no result (exit %d): %s"
                          % (r.returncode, r.stderr.strip()[-300:]))
            return None
        if r.returncode != 0 or res.get("errors") or res.get("dropped"):
            self._anomaly(stack, target, scenario, argv,
                          "exit %d, opened %s/%s, errors %s, dropped %s"
                          % (r.returncode, res.get("opened"),
                             res.get("connections"), res.get("errors"),
                             res.get("dropped")))
        msgs = res.get("messages", 0)
        out = {"msgs_per_s": res.get("msgs_per_s"),
               "mb_per_s": res.get("mb_per_s"),
               "p50_us": res.get("p50_us"), "p99_us": res.get("p99_us"),
               "errors": res.get("errors", 0)}
        if scenario.startswith("throughput"):
            # Latency means nothing for one-way writes; the sink's count
            # says what really went through.
            out.pop("p50_us")
            out.pop("p99_us")
            dur = res.get("duration_s") or 1
            out["msgs_per_s"] = res.get("acked", 0) / dur
            msgs = res.get("acked", 0)
        if pid and msgs:
            out["cpu_us"] = (c1 - c0) / CLK_TCK * 1e6 / msgs
        if msgs:
            out["machine_cpu_us"] = (k1 - k0) / CLK_TCK * 1e6 / msgs
        if sc is not None:
            out["syscalls"] = sc.per(msgs)
        if m0 is not None and m1 is not None:
            out.update(splice_figures(m0, m1))
            out.update(kernel_relay_figures(m0, m1))
        elif admin:
            self._anomaly(stack, target, scenario, argv,
                          "no /metrics from the admin port %d" % admin)
        if not stack.alive(target if target != "direct" else "echo"):
            self._anomaly(stack, target, scenario, argv, "process exited")
        return out

    def http(self, stack, target):
        port = stack.port_for(target, "/")
        argv = ["wrk", "-t1", "-c50", "-d%ds" % self.args.duration,
                "--latency", "http://127.0.0.1:%d/size/64" % port]
        pid = self._proxy_pid(stack, target)
        c0 = cpu_ticks(pid) if pid else 0
        k0 = machine_busy_ticks()
        try:
            r, sc = self._client(pid, argv, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True,
                                 timeout=self.args.duration * 4 + 30)
        except subprocess.TimeoutExpired:
            self._anomaly(stack, target, "http", argv, "wrk timed out")
            return None
        k1 = machine_busy_ticks()
        c1 = cpu_ticks(pid) if pid else 0
        text = r.stdout
        m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
        rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
        if r.returncode != 0 or not m or not rps:
            self._anomaly(stack, target, "http", argv,
                          "wrk failed: " + text.strip()[-300:])
            return None
        out = {"msgs_per_s": float(rps.group(1))}
        for pct, key in (("50", "p50_us"), ("99", "p99_us")):
            lm = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text,
                           re.M)
            if lm:
                mult = {"us": 1, "ms": 1e3, "s": 1e6}[lm.group(2)]
                out[key] = float(lm.group(1)) * mult
        bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
        sock = re.search(r"Socket errors:(.*)", text)
        errs = int(bad.group(1)) if bad else 0
        if sock:
            errs += sum(int(x) for x in re.findall(r"\d+", sock.group(1)))
        out["errors"] = errs
        if errs:
            self._anomaly(stack, target, "http", argv,
                          "%d errors: %s" % (errs, (sock.group(0) if sock
                                                    else bad.group(0))))
        reqs = int(m.group(1))
        if pid and reqs:
            out["cpu_us"] = (c1 - c0) / CLK_TCK * 1e6 / reqs
        if reqs:
            out["machine_cpu_us"] = (k1 - k0) / CLK_TCK * 1e6 / reqs
        if sc is not None:
            out["syscalls"] = sc.per(reqs)
        return out

    def idle(self, stack, target):
        n = self.args.idle
        argv = [SWLOAD, "client", "--url", stack.url(target, "/ws"),
                "--scenario", "idle", "--connections", str(n),
                "--duration", str(self.args.idle_hold),
                "--source-addrs", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5"]
        extra = None
        if target == "direct":
            # A backend of its own, fresh, on another port.
            port = free_port()
            extra = spawn("idle-echo", [SWLOAD, "echo", "--listen",
                                        "127.0.0.1:%d" % port],
                          os.path.join(self.tmp, "idle-echo.log"))
            if not wait_port(port, extra):
                stop(extra.pid)
                self._anomaly(stack, target, "idle", [], "no backend")
                return None
            argv[3] = "ws://127.0.0.1:%d/ws" % port
            pid = extra.pid
        else:
            stack.restart(target)
            pid = stack.procs[target].pid
        try:
            return self._idle(stack, target, argv, pid)
        finally:
            if extra is not None:
                stop(extra.pid)

    def _idle(self, stack, target, argv, pid):
        n = self.args.idle
        time.sleep(0.5)
        before = rss_bytes(pid)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        CHILDREN[p.pid] = ("idle-client", p)
        held = None
        res = None
        deadline = time.time() + 90 + self.args.idle_hold
        try:
            for line in p.stdout:
                if line.startswith("all ") and held is None:
                    # Every handshake went through; let the proxy settle.
                    time.sleep(min(1.0, self.args.idle_hold / 2))
                    held = rss_bytes(pid)
                elif line.startswith("{"):
                    res = json.loads(line)
                if time.time() > deadline:
                    break
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if p.poll() is None:
                stop(p.pid)
            CHILDREN.pop(p.pid, None)
        err = p.stderr.read() if p.stderr else ""
        if res is None or held is None:
            self._anomaly(stack, target, "idle", argv,
                          "no result (exit %s): %s"
                          % (p.returncode, err.strip()[-300:]))
            return None
        opened = res.get("opened", 0)
        if opened < n or res.get("dropped"):
            self._anomaly(stack, target, "idle", argv,
                          "opened %d/%d, dropped %s"
                          % (opened, n, res.get("dropped")))
        out = {"opened": opened, "dropped": res.get("dropped", 0)}
        if opened:
            out["bytes_per_conn"] = (held - before) / opened
        return out

    def run(self, stack, target, scenario):
        self.seq += 1
        if scenario == "http":
            return self.http(stack, target)
        if scenario == "idle":
            return self.idle(stack, target)
        return self.ws(stack, target, scenario)


def bench_ws(seconds):
    if not os.path.exists(BENCH_WS):
        return None
    try:
        r = subprocess.run([BENCH_WS, str(seconds)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return None


def allocations_per_message():
    """Run the zero-allocation check (tests/integration/ws_alloc_test.c):
    the gateway with an LD_PRELOAD counter of worker-thread allocations,
    10,000 WebSocket messages (16 B, 4 KiB, 1 MiB, pings) after a warm-up.
    Returns the allocations those messages cost, or None."""
    exe = os.path.join(BUILD, "tests", "it_ws_alloc")
    lib = os.path.join(BUILD, "tests", "liballoccount.so")
    if not (os.path.exists(exe) and os.path.exists(lib)):
        return None
    env = dict(os.environ, SW_ALLOCCOUNT=lib, SW_SOURCE_ROOT=ROOT,
               SW_BUILD_ROOT=BUILD,
               SW_SHOCKWAVE=os.path.join(BUILD, "gateway", "shockwave"),
               SW_SWLOAD=os.path.join(BUILD, "loadtest", "swload"))
    try:
        r = subprocess.run([exe], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env,
                           timeout=300)
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"10,000 messages: (\d+)", r.stdout)
    return int(m.group(1)) if m and r.returncode == 0 else None
