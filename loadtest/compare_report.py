"""compare_report.py - the Markdown report of loadtest/compare: its tables
(each peer at its defaults and tuned, best peer per row, ratios, spreads),
the now/before section, system calls per message, method and caveats."""

import json
import os
import statistics

from compare_conf import (BASELINE, CLK_TCK, KEPT_SECTIONS, LABEL,
                          PEERS, PROXIES, SCENARIO_ORDER, SW_KERNEL,
                          SW_URING, SYSCALL_GROUPS, TARGETS)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

# (scenario, metric key, label, higher is better)
ROWS = [
    ("echo", "msgs_per_s", "echo 64 B, 1 conn: round trips/s", True),
    ("echo", "p50_us", "echo 64 B, 1 conn: p50 latency (us)", False),
    ("echo", "p99_us", "echo 64 B, 1 conn: p99 latency (us)", False),
    ("echo", "cpu_us", "echo 64 B, 1 conn: proxy CPU us per round trip",
     False),
    ("echo", "machine_cpu_us", "echo 64 B, 1 conn: machine CPU us per round "
     "trip", False),
    ("echo-17", "msgs_per_s", "echo 17 B, 1 conn: round trips/s", True),
    ("echo-17", "p50_us", "echo 17 B, 1 conn: p50 latency (us)", False),
    ("echo-17", "p99_us", "echo 17 B, 1 conn: p99 latency (us)", False),
    ("echo-17", "cpu_us", "echo 17 B, 1 conn: proxy CPU us per round trip",
     False),
    ("echo-17", "machine_cpu_us", "echo 17 B, 1 conn: machine CPU us per "
     "round trip", False),
    ("concurrent", "msgs_per_s", "echo 64 B, 100 conns: round trips/s", True),
    ("concurrent", "p99_us", "echo 64 B, 100 conns: p99 latency (us)", False),
    ("concurrent", "cpu_us", "echo 64 B, 100 conns: proxy CPU us per round "
     "trip", False),
    ("concurrent", "machine_cpu_us", "echo 64 B, 100 conns: machine CPU us "
     "per round trip", False),
    ("concurrent-17", "msgs_per_s", "echo 17 B, 100 conns: round trips/s",
     True),
    ("concurrent-17", "p99_us", "echo 17 B, 100 conns: p99 latency (us)",
     False),
    ("concurrent-17", "cpu_us", "echo 17 B, 100 conns: proxy CPU us per "
     "round trip", False),
    ("concurrent-17", "machine_cpu_us", "echo 17 B, 100 conns: machine CPU us "
     "per round trip", False),
    ("throughput-64", "msgs_per_s", "one-way 64 B frames: delivered/s", True),
    ("throughput-64", "cpu_us", "one-way 64 B frames: proxy CPU us per frame",
     False),
    ("throughput-64", "machine_cpu_us", "one-way 64 B frames: machine CPU us "
     "per frame", False),
    ("throughput-1k", "msgs_per_s", "one-way 1 KiB frames: delivered/s",
     True),
    ("throughput-1k", "mb_per_s", "one-way 1 KiB frames: MB/s", True),
    ("throughput-1k", "cpu_us", "one-way 1 KiB frames: proxy CPU us per "
     "frame", False),
    ("throughput-1k", "machine_cpu_us", "one-way 1 KiB frames: machine CPU us "
     "per frame", False),
    ("throughput-4k", "msgs_per_s", "one-way 4 KiB frames: delivered/s",
     True),
    ("throughput-4k", "mb_per_s", "one-way 4 KiB frames: MB/s", True),
    ("throughput-4k", "cpu_us", "one-way 4 KiB frames: proxy CPU us per "
     "frame", False),
    ("throughput-4k", "machine_cpu_us", "one-way 4 KiB frames: machine CPU us "
     "per frame", False),
    ("large-1m", "mb_per_s", "echo 1 MiB messages: MB/s", True),
    ("large-1m", "p50_us", "echo 1 MiB messages: p50 latency (us)", False),
    ("large-1m", "cpu_us", "echo 1 MiB messages: proxy CPU us per round "
     "trip", False),
    ("large-1m", "machine_cpu_us", "echo 1 MiB messages: machine CPU us per "
     "round trip", False),
    ("large-1m", "splice_calls_per_mib", "echo 1 MiB messages: Shockwave "
     "splice() calls per MiB spliced", False),
    ("large-1m", "spliced_share", "echo 1 MiB messages: Shockwave payload "
     "share spliced (not copied)", True),
    ("ping", "msgs_per_s", "ping/pong, 1 conn: round trips/s", True),
    ("ping", "p50_us", "ping/pong, 1 conn: p50 latency (us)", False),
    ("ping", "cpu_us", "ping/pong, 1 conn: proxy CPU us per ping", False),
    ("ping", "machine_cpu_us", "ping/pong, 1 conn: machine CPU us per "
     "ping", False),
    ("http", "msgs_per_s", "HTTP GET 64 B, 50 conns: requests/s", True),
    ("http", "p99_us", "HTTP GET 64 B, 50 conns: p99 latency (us)", False),
    ("http", "cpu_us", "HTTP GET 64 B, 50 conns: proxy CPU us per request",
     False),
    ("http", "machine_cpu_us", "HTTP GET 64 B, 50 conns: machine CPU us per "
     "request", False),
    ("idle", "bytes_per_conn", "idle WebSockets: proxy RSS bytes per "
     "connection", False),
    ("idle", "opened", "idle WebSockets: connections opened", True),
]

# The rows of the "now / before" section (--baseline): per scenario its
# rate, p50 latency and proxy CPU per message, and RSS per idle connection.
# Throughput has no latency (one-way writes).
BASELINE_ROWS = [
    ("echo", "msgs_per_s", "echo 64 B, 1 conn: round trips/s", True),
    ("echo", "p50_us", "echo 64 B, 1 conn: p50 latency (us)", False),
    ("echo", "cpu_us", "echo 64 B, 1 conn: proxy CPU us per round trip",
     False),
    ("echo-17", "msgs_per_s", "echo 17 B, 1 conn: round trips/s", True),
    ("echo-17", "p50_us", "echo 17 B, 1 conn: p50 latency (us)", False),
    ("echo-17", "cpu_us", "echo 17 B, 1 conn: proxy CPU us per round trip",
     False),
    ("concurrent", "msgs_per_s", "echo 64 B, 100 conns: round trips/s", True),
    ("concurrent", "p50_us", "echo 64 B, 100 conns: p50 latency (us)", False),
    ("concurrent", "cpu_us", "echo 64 B, 100 conns: proxy CPU us per round "
     "trip", False),
    ("concurrent-17", "msgs_per_s", "echo 17 B, 100 conns: round trips/s",
     True),
    ("concurrent-17", "p50_us", "echo 17 B, 100 conns: p50 latency (us)",
     False),
    ("concurrent-17", "cpu_us", "echo 17 B, 100 conns: proxy CPU us per "
     "round trip", False),
    ("throughput-64", "msgs_per_s", "one-way 64 B frames: delivered/s", True),
    ("throughput-64", "cpu_us", "one-way 64 B frames: proxy CPU us per frame",
     False),
    ("throughput-1k", "msgs_per_s", "one-way 1 KiB frames: delivered/s",
     True),
    ("throughput-1k", "cpu_us", "one-way 1 KiB frames: proxy CPU us per "
     "frame", False),
    ("throughput-4k", "msgs_per_s", "one-way 4 KiB frames: delivered/s",
     True),
    ("throughput-4k", "cpu_us", "one-way 4 KiB frames: proxy CPU us per "
     "frame", False),
    ("large-1m", "mb_per_s", "echo 1 MiB messages: MB/s", True),
    ("large-1m", "p50_us", "echo 1 MiB messages: p50 latency (us)", False),
    ("large-1m", "cpu_us", "echo 1 MiB messages: proxy CPU us per round "
     "trip", False),
    ("large-1m", "splice_calls_per_mib", "echo 1 MiB messages: splice() "
     "calls per MiB spliced", False),
    ("ping", "msgs_per_s", "ping/pong, 1 conn: round trips/s", True),
    ("ping", "p50_us", "ping/pong, 1 conn: p50 latency (us)", False),
    ("ping", "cpu_us", "ping/pong, 1 conn: proxy CPU us per ping", False),
    ("http", "msgs_per_s", "HTTP GET 64 B, 50 conns: requests/s", True),
    ("http", "p50_us", "HTTP GET 64 B, 50 conns: p50 latency (us)", False),
    ("http", "cpu_us", "HTTP GET 64 B, 50 conns: proxy CPU us per request",
     False),
    ("idle", "bytes_per_conn", "idle WebSockets: proxy RSS bytes per "
     "connection", False),
]


# The Shockwave targets of the tables (bold).
SW_TARGETS = ("shockwave", SW_URING, SW_KERNEL)

# Rows where Shockwave / direct is reported: what the extra hop costs.
DIRECT_KEYS = ("msgs_per_s", "mb_per_s", "p50_us", "p99_us",
               "machine_cpu_us")


def best_peer(values, higher, peers):
    """The peer with the best value on a row (the highest if higher is
    better, else the lowest), or None if no peer has one. Ties go to the
    first in PEERS order, the defaults before the tuned variants."""
    have = [t for t in peers if values.get(t) is not None]
    if not have:
        return None
    pick = max if higher else min
    return pick(have, key=lambda t: values[t])


def median(results, workers, target, scenario, key):
    vals = [r[key] for r in results.get((workers, target, scenario), [])
            if r is not None and r.get(key) is not None]
    if not vals:
        return None
    return statistics.median(vals)


def spread(results, workers, target, scenario, key):
    """(max - min) / median over the rounds, or None."""
    vals = [r[key] for r in results.get((workers, target, scenario), [])
            if r is not None and r.get(key) is not None]
    if len(vals) < 2 or not statistics.median(vals):
        return None
    return (max(vals) - min(vals)) / abs(statistics.median(vals))


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(sw, other):
    if sw is None or other is None or other == 0:
        return None
    return sw / other


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def verdict(r, higher):
    """'win', 'loss' or 'tie' for Shockwave against one peer, or for
    Shockwave against its baseline, from ratio r (5% band)."""
    if r is None:
        return None
    good = r if higher else (1 / r if r else float("inf"))
    if good > 1.05:
        return "win"
    if good < 1 / 1.05:
        return "loss"
    return "tie"


def change(r, higher, sp):
    """'better', 'worse' or 'even' for now / before = r; a change smaller
    than the spread over the rounds is flagged, it may be noise."""
    v = verdict(r, higher)
    if v is None:
        return "-"
    word = {"win": "better", "loss": "worse", "tie": "even"}[v]
    if v != "tie" and sp is not None and abs(r - 1) < sp:
        word += " (within spread)"
    return word


def baseline_caveats(args, info):
    """What to keep in mind before reading the now / before table."""
    notes = []
    if info["sha256"] == info["baseline"]["sha256"]:
        notes.append("The two binaries are identical (same SHA-256): every "
                     "difference below is noise.")
    if args.rounds < 3:
        notes.append("%d round%s: the spread says little or nothing, so a "
                     "change cannot be told from noise; use --rounds 3 or "
                     "more." % (args.rounds, "" if args.rounds == 1 else "s"))
    notes.append("Rates and latencies move with the load of the shared "
                 "machine; the proxy CPU per message is the steadiest row.")
    return notes


def write_baseline_section(w, args, info, results):
    """Shockwave against the --baseline binary, now / before per row."""
    w("## Shockwave now / before")
    w("")
    w("Now: this checkout's build (commit `%s`). Before: `%s`. Same "
      "configuration, same rounds, interleaved with the other targets. "
      "Ratios are now / before: for higher-is-better rows above 1 is an "
      "improvement, for lower-is-better rows below 1 is. A difference "
      "under 5%% counts as even; `spread` is the larger (max - min) / "
      "median over the rounds of the two, and a change smaller than it is "
      "marked as within spread." % (info["commit"],
                                    info["baseline"]["path"]))
    w("")
    for note in baseline_caveats(args, info):
        w("- " + note)
    w("")
    for workers in args.workers:
        counts = {}
        pair_head(w, workers, "before", "now")
        for scen, key, label, higher in BASELINE_ROWS:
            if scen not in args.scenarios:
                continue
            now = median(results, workers, "shockwave", scen, key)
            before = median(results, workers, BASELINE, scen, key)
            sp = pair_spread(results, workers, ("shockwave", BASELINE), scen,
                             key)
            pair_row(w, counts, label, higher, before, now, sp)
        w("")
        w("Rows better: %d, worse: %d, even: %d." % (
            counts.get("better", 0), counts.get("worse", 0),
            counts.get("even", 0)))
        w("")


def pair_head(w, workers, old, new):
    """The heading and header of a table of two Shockwave targets, row by
    row (now / before, io_uring / epoll)."""
    w("### %d worker%s" % (workers, "" if workers == 1 else "s"))
    w("")
    w("| metric | better | %s | %s | %s / %s | change | spread |"
      % (old, new, new, old))
    w("|---|---|---:|---:|---:|---|---:|")


def pair_spread(results, workers, targets, scen, key):
    """The larger round-to-round spread of the two targets on a row."""
    sp = [spread(results, workers, t, scen, key) for t in targets]
    return max([x for x in sp if x is not None], default=None)


def pair_row(w, counts, label, higher, old, new, sp):
    """One row of a pair_head table; counts its change word. Returns the
    ratio new / old."""
    r = ratio(new, old)
    word = change(r, higher, sp)
    kind = word.split()[0]
    counts[kind] = counts.get(kind, 0) + 1
    w("| %s | %s | %s | **%s** | %s | %s | %s |" % (
        label, "higher" if higher else "lower", fmt(old), fmt(new),
        fmt_ratio(r), word, ("%.0f%%" % (100 * sp)) if sp is not None
        else "-"))
    return r


def write_syscalls_section(w, args, syscalls):
    """System calls per message, one run of each scenario per proxy under
    perf stat (the syscall pass): every proxy at the first worker count,
    the Shockwave engines at the others."""
    if not syscalls:
        return
    kinds = [k for k, _ in SYSCALL_GROUPS] + ["other"]
    for workers in args.workers:
        targets = [t for t in args.targets if t != "direct"
                   and any((workers, t, s) in syscalls
                           for s in SCENARIO_ORDER)]
        if not targets:
            continue
        first = workers == args.workers[0]
        w("## System calls per message (%d worker%s%s)" % (
            workers, "" if workers == 1 else "s",
            "" if first else ", Shockwave only"))
        w("")
        if first:
            w("One more run of each scenario per proxy, after the timed "
              "rounds, with `perf stat` counting the syscall tracepoints of "
              "every thread of the proxy (`raw_syscalls:sys_enter` for the "
              "total, one tracepoint per call for the kinds), divided by the "
              "messages of that run (round trips for echo and ping, frames "
              "delivered for the one-way rows, requests for HTTP). Counting "
              "costs each call a little, so these runs are not the ones "
              "timed above. recv = read, readv, recvfrom, recvmsg; send = "
              "write, writev, sendto, sendmsg; epoll_wait includes "
              "epoll_pwait and epoll_pwait2; io_uring_enter is every "
              "submission or wait on a ring (the sends and receives it "
              "carries are no system calls of their own). The total is "
              "every kernel entry by a system call.")
        else:
            w("The same pass for the Shockwave targets only (the peers are "
              "counted at %d worker%s)." % (
                  args.workers[0], "" if args.workers[0] == 1 else "s"))
        w("")
        w("| scenario | proxy | total | " + " | ".join(kinds) + " |")
        w("|---|---|---:|" + "---:|" * len(kinds))
        for scen in SCENARIO_ORDER:
            for t in targets:
                sc = syscalls.get((workers, t, scen))
                if sc is None:
                    continue
                name = (("**%s**" % LABEL[t]) if t in SW_TARGETS
                        else LABEL[t])
                w("| %s | %s | %s | " % (scen, name, fmt_calls(sc["total"]))
                  + " | ".join(fmt_calls(sc.get(k, 0)) for k in kinds)
                  + " |")
        w("")


def fmt_calls(v):
    return "%.3f" % v if v < 10 else "%.1f" % v


def write_report(path, args, info, results, micro, anomalies, started,
                 elapsed, syscalls=None):
    L = []
    w = L.append
    w("# Benchmarks: Shockwave, nginx, HAProxy and no proxy")
    w("")
    w("Written by `loadtest/compare%s%s%s` on %s (run time %.1f min). Do "
      "not edit by hand: run the script again." % (
          " --quick" if args.quick else "",
          " --baseline BINARY" if args.baseline else "",
          ((" --engines " + ",".join(args.engines))
           if args.engines != ["epoll", "io_uring"] else "")
          + ("" if args.kernel_relay else " --no-kernel-relay"),
          started.strftime("%Y-%m-%d %H:%M UTC"), elapsed / 60))
    w("")
    w("## Machine and versions")
    w("")
    m = info["machine"]
    w("| | |")
    w("|---|---|")
    w("| CPUs (nproc) | %s |" % m["nproc"])
    w("| CPU model | %s |" % m["cpu"])
    w("| kernel | %s |" % m["kernel"])
    w("| memory | %s MiB |" % m["mem_mib"])
    w("| load average at start | %.2f %.2f %.2f |" % tuple(m["load"]))
    w("| load average at end | %.2f %.2f %.2f |" % os.getloadavg())
    w("| open files limit | %d (so %d idle connections: each proxied one "
      "takes 2 descriptors in the proxy) |" % (info["nofile"], args.idle))
    for k in ("nginx", "haproxy", "shockwave", "wrk"):
        w("| %s | `%s` |" % (k, info["versions"][k]))
    w("| Shockwave source | commit `%s` |" % info["commit"])
    engines = info.get("engines", {})
    for t in ("shockwave", SW_URING, BASELINE):
        if t in engines:
            w("| %s engine line | `%s` |" % (LABEL[t], engines[t]))
    relays = info.get("relays", {})
    for t in ("shockwave", SW_KERNEL):
        if t in relays:
            w("| WebSocket relay line of %s | `%s` |" % (LABEL[t], relays[t]))
    if info.get("io_uring_disabled") is not None:
        w("| kernel.io_uring_disabled | %d |" % info["io_uring_disabled"])
    if args.baseline:
        b = info["baseline"]
        w("| Shockwave binary | sha256 `%s` |" % info["sha256"])
        w("| Shockwave (before) | `%s`, `%s`, sha256 `%s` |"
          % (b["path"], b["version"], b["sha256"]))
    w("")
    w("Configurations (ports, worker count and paths are filled in by the "
      "script): [nginx](../loadtest/peers/nginx.conf.in), "
      "[HAProxy](../loadtest/peers/haproxy.cfg.in), "
      "[Shockwave](../loadtest/conf/shockwave.conf.in). Each peer runs "
      "twice: at its defaults (nginx, HAProxy) and tuned for this traffic, "
      "everything else equal: nginx 64k adds "
      "`proxy_buffer_size 64k; proxy_buffers 8 64k;` to the proxied "
      "locations (nginx relays an upgraded connection through "
      "`proxy_buffer_size` buffers, one memory page by default), HAProxy "
      "splice adds `option splice-auto` (kernel splice() of the tunnel "
      "between the two sockets when HAProxy sees fit; both HAProxy "
      "targets get `maxpipes`, to fit the open files limit). Shockwave "
      "keeps its defaults but for its engine and its WebSocket relay, "
      "named in the main context: `%s` and `%s` for Shockwave%s%s. All log "
      "nothing per request, keep upstream connections alive for HTTP and "
      "run N workers (nginx `worker_processes N` with `reuseport`, HAProxy "
      "`nbthread N`, Shockwave `workers N`). Backends: one `swload echo` "
      "and one `swload sink`, single-threaded, shared by every target."
      % (engines.get("shockwave", "?"), relays.get("shockwave", "?"),
         ", the same file with `io_engine io_uring;` for Shockwave "
         "io_uring" if SW_URING in args.targets else "",
         ", the same file with `%s` for Shockwave kernel relay"
         % relays[SW_KERNEL] if SW_KERNEL in relays else ""))
    w("")
    w("## Method")
    w("")
    w("- Every scenario runs against each target in turn (%s; the order "
      "rotates every round), %d round%s, %d s per run; the tables show the "
      "median over rounds." % (
          ", ".join(LABEL[t] for t in args.targets),
          args.rounds, "" if args.rounds == 1 else "s", args.duration))
    if args.baseline:
        w("- Shockwave (before) is the binary given with `--baseline`, run "
          "with the configuration rendered for Shockwave (only its ports "
          "and error log differ). The tables per worker count leave it "
          "out; it has a section of its own below the summary.")
    if SW_URING in args.targets:
        w("- Shockwave runs twice, as two targets in the same rounds: "
          "Shockwave with `io_engine epoll;` and Shockwave io_uring with "
          "`io_engine io_uring;`, the same binary and otherwise the same "
          "configuration (`--engines epoll` leaves the second out). "
          "`io_uring / epoll` in the tables is the ratio of their medians "
          "on every row; the section \"Shockwave on io_uring against "
          "epoll\" lists per scenario the proxy CPU per message, the rate, "
          "the p50 latency, the kernel entries per message and the idle "
          "memory of both, their ratio and whether the gap is larger than "
          "the round-to-round spread. Both are left out of `best peer`. "
          "The kernel's io_uring threads of the gateway (io-wq workers, a "
          "polling thread if any) belong to its process, so their CPU "
          "time is in its `/proc/PID/stat` like that of the workers. A "
          "worker that cannot set io_uring up logs why and runs on epoll: "
          "any line of the gateway's error log naming an engine is listed "
          "under Anomalies.")
    if SW_KERNEL in args.targets:
        w("- Shockwave kernel relay is the Shockwave configuration with "
          "`ws_kernel_relay on;` in the main context (the default of both "
          "routes), in the same rounds: each WebSocket session's two "
          "sockets join a BPF sockmap whose sk_skb verdict redirects small "
          "data frames from one to the other inside the kernel, without "
          "waking the gateway; everything else (control frames, large or "
          "odd frames, a direction with bytes buffered) goes to the gateway "
          "as before (`--no-kernel-relay` leaves the target out). The "
          "redirects run in softirq or kworker context, charged to no "
          "process: its proxy CPU leaves them out, the machine CPU has "
          "them. `kernel / user` in the tables is Shockwave kernel relay / "
          "Shockwave on every row; the section \"Shockwave's kernel relay "
          "against the user-space relay\" gives the figures the issue "
          "names, with its targets, and from `/metrics` the share of "
          "frames the kernel carried. It is left out of `best peer`. A "
          "worker that cannot load the relay logs `kernel relay "
          "unavailable` and relays in user space: such lines are listed "
          "under Anomalies.")
    w("- Kernel entries per message: after the timed rounds each scenario "
      "(but idle) runs once more per proxy with `perf stat -e "
      "raw_syscalls:sys_enter` (and one tracepoint per kind of call) "
      "attached to every thread of the proxy for the client's run only; "
      "the system calls counted, divided by that run's messages, give the "
      "System calls per message tables (every proxy at the first worker "
      "count, the Shockwave targets at each). Counting costs each call a "
      "little and these runs are not timed; the count per message hardly "
      "depends on it (a gateway slowed down may take a little more per "
      "loop turn where many connections are busy). On io_uring a send or "
      "receive carried by the ring is no kernel entry of its own: one "
      "`io_uring_enter` submits and waits for a whole loop turn.")
    w("- WebSocket load: `swload client` (masked frames, fresh key per "
      "frame, echoes checked for size). HTTP: `wrk -t1 -c50 -d%ds "
      "--latency` on `/size/64` (keep-alive GETs, 64-byte bodies)."
      % args.duration)
    w("- Proxy CPU: utime + stime of every process of the proxy (nginx "
      "master and workers; the HAProxy and Shockwave processes with all "
      "their threads) from `/proc/PID/stat`, read before and after each run,"
      " divided by the round trips (echo, ping), frames the sink confirmed "
      "(throughput) or requests (HTTP). Resolution is one clock tick "
      "(%d ms) over a run of several seconds. One echo round trip is two "
      "messages through the proxy." % (1000 // CLK_TCK))
    w("- Machine CPU: the busy time of the whole machine, every CPU "
      "(user + nice + system + irq + softirq + steal from the `cpu` line "
      "of `/proc/stat`: all but idle and iowait), read in the same window "
      "as the proxy CPU and divided by the same messages. It holds the "
      "client, the backend, the proxy and the kernel's work for all of "
      "them (softirq, kworkers: a BPF verdict's redirects too), and "
      "anything else running on the machine then; `direct` (no proxy) is "
      "the floor, and the targets are compared in the same rounds. Same "
      "resolution (one tick per CPU), so a short run at a low rate is "
      "coarse.")
    w("- Idle memory: resident set size of the proxy's processes (from "
      "`/proc/PID/statm`) with %d idle WebSockets open (held %d s), minus "
      "the same just before they were opened, divided by the connections "
      "opened. For direct it is the backend's own figure." % (
          args.idle, args.idle_hold))
    w("- Shockwave's splice counters: its admin listener's `/metrics` is "
      "read just before and just after each WebSocket run, outside the CPU "
      "window (counters the gateway keeps in memory: reading them costs "
      "the data path no syscall). `splice() calls per MiB spliced` is the "
      "change in `shockwave_ws_splice_calls_total` (every call, EAGAIN "
      "included) over the change in `shockwave_ws_spliced_bytes_total` in "
      "MiB; `payload share spliced` is `shockwave_ws_spliced_bytes_total` "
      "over spliced + `shockwave_ws_copied_bytes_total`. Other targets have "
      "no such figure.")
    w("- Client, backends and proxy share the same %s CPUs: with 2 proxy "
      "workers the proxy competes with the client and the backend, so the "
      "rates say less than the CPU per message, which is the steadiest "
      "figure here." % m["nproc"])
    w("- `best peer`: per row, the best of %s by that row's direction (the "
      "lowest CPU per message, latency or memory; the highest rate). The "
      "best peer may differ from row to row." % ", ".join(
          LABEL[t] for t in PEERS))
    w("- Ratios are Shockwave / peer. For rows marked higher-is-better a "
      "ratio above 1 favours Shockwave; for lower-is-better, below 1 does. "
      "`SW / direct` (rates, latencies and machine CPU) is what going "
      "through Shockwave costs against no proxy at all: the share of the "
      "direct rate kept, the latency and the machine's CPU per message "
      "multiplied.")
    w("- `spread`: the largest (max - min) / median over the rounds among "
      "the proxies on that row. Where it is larger than the gap between "
      "two proxies, the gap is noise.")
    w("")

    shown = [t for t in TARGETS if t in args.targets]
    peers = [t for t in PEERS if t in args.targets]
    uring = SW_URING in shown  # the io_uring / epoll column
    kern = SW_KERNEL in shown  # the kernel / user column
    against_best = {"loss": [], "tie": [], "win": []}
    summary = {"win": [], "win1": [], "loss": [], "loss1": [],
               "mixed": [], "tie": []}
    for workers in args.workers:
        w("## %d worker%s" % (workers, "" if workers == 1 else "s"))
        w("")
        extra = (["io_uring / epoll"] if uring else []) + (
            ["kernel / user"] if kern else [])
        w("| metric | better | %s | best peer | SW / best | SW / direct | "
          "%sspread |" % (" | ".join(LABEL[t] for t in shown),
                          "".join(x + " | " for x in extra)))
        w("|---|---|%s---|---:|---:|%s---:|" % ("---:|" * len(shown),
                                                "---:|" * len(extra)))
        for scen, key, label, higher in ROWS:
            if scen not in args.scenarios:
                continue
            v = {t: median(results, workers, t, scen, key) for t in TARGETS}
            if key in ("cpu_us",):
                v["direct"] = None
            best = best_peer(v, higher, peers)
            rb = ratio(v["shockwave"], v[best]) if best else None
            rd = (ratio(v["shockwave"], v["direct"])
                  if key in DIRECT_KEYS else None)
            sp = [spread(results, workers, t, scen, key)
                  for t in PROXIES if t in shown]
            sp = max([x for x in sp if x is not None], default=None)
            cells = [("**%s**" if t in SW_TARGETS else "%s")
                     % fmt(v[t]) for t in shown]
            ru = "".join("%s | " % fmt_ratio(ratio(v[t], v["shockwave"]))
                         for t, on in ((SW_URING, uring), (SW_KERNEL, kern))
                         if on)
            w("| %s | %s | %s | %s | %s | %s | %s%s |" % (
                label, "higher" if higher else "lower", " | ".join(cells),
                LABEL[best] if best else "-", fmt_ratio(rb), fmt_ratio(rd),
                ru, ("%.0f%%" % (100 * sp)) if sp is not None else "-"))
            if key == "opened":
                continue
            tag = "%s (%d worker%s)" % (label, workers,
                                        "" if workers == 1 else "s")
            vb = verdict(rb, higher)
            if vb is not None:
                note = (" (within spread)" if vb != "tie" and sp is not None
                        and abs(rb - 1) < sp else "")
                against_best[vb].append(
                    "%s: %s against %s%s; each peer: %s%s" % (
                        tag, fmt_ratio(rb), LABEL[best], note,
                        ", ".join("%s %s" % (LABEL[t], fmt_ratio(
                            ratio(v["shockwave"], v[t]))) for t in peers),
                        (", spread %.0f%%" % (100 * sp))
                        if sp is not None else ""))
            rn = ratio(v["shockwave"], v["nginx"])
            rh = ratio(v["shockwave"], v["haproxy"])
            vn, vh = verdict(rn, higher), verdict(rh, higher)
            if vn is None or vh is None:
                continue
            detail = "%s: nginx %s, HAProxy %s%s" % (
                tag, fmt_ratio(rn), fmt_ratio(rh),
                (", spread %.0f%%" % (100 * sp)) if sp is not None else "")
            vs = {vn, vh}
            if vs == {"win"}:
                summary["win"].append(detail)
            elif vs == {"loss"}:
                summary["loss"].append(detail)
            elif vs == {"win", "loss"}:
                summary["mixed"].append(detail)
            elif vs == {"win", "tie"}:
                summary["win1"].append(detail)
            elif vs == {"loss", "tie"}:
                summary["loss1"].append(detail)
            else:
                summary["tie"].append(detail)
        w("")

    write_syscalls_section(w, args, syscalls)
    # Imported here: compare_engines takes its helpers from this module.
    from compare_engines import write_engines_section
    write_engines_section(w, args, info, results, syscalls or {})
    from compare_kernel import write_kernel_section
    write_kernel_section(w, args, results)

    w("## Summary")
    w("")
    w("Computed from the tables above: Shockwave / peer per row, a "
      "difference under 5% counts as even. This is a shared 2-core machine "
      "running client, backend and proxy together: treat differences under "
      "about 10-15% as noise, and prefer the CPU-per-message rows to the "
      "rates.")
    w("")
    w("### Against the best peer of each row")
    w("")
    w("The best of %s on that row (see `best peer` in the tables); "
      "\"within spread\" marks a gap smaller than the round-to-round "
      "spread." % ", ".join(LABEL[t] for t in peers or PEERS))
    w("")
    for key, title in (
            ("loss", "Shockwave still behind the best peer"),
            ("tie", "Even with the best peer (within 5%)"),
            ("win", "Shockwave ahead of the best peer")):
        w("**%s** (%d):" % (title, len(against_best[key])))
        w("")
        for line in against_best[key] or ["none"]:
            w("- " + line)
        w("")
    w("### Against nginx and HAProxy at their defaults")
    w("")
    for key, title in (
            ("win", "Shockwave better than both nginx and HAProxy"),
            ("win1", "Shockwave better than one, even with the other"),
            ("loss", "Shockwave worse than both nginx and HAProxy"),
            ("loss1", "Shockwave worse than one, even with the other"),
            ("mixed", "Split: better than one, worse than the other"),
            ("tie", "Even with both (within 5%)")):
        w("**%s** (%d):" % (title, len(summary[key])))
        w("")
        for line in summary[key] or ["none"]:
            w("- " + line)
        w("")
    w("Read with care:")
    w("")
    w("- Shockwave answers pings itself (`ws_ping local`, its default); "
      "nginx and HAProxy forward them to the backend, so the ping rows "
      "compare a one-hop answer with a two-hop one.")
    w("- Shockwave parses every frame header; nginx and HAProxy relay the "
      "upgraded connection as an opaque byte stream. The per-frame rows "
      "(small frames) show the price of being frame-aware; the 1 MiB and "
      "4 KiB rows show what splice() (16 KiB threshold, woken per 512 KiB "
      "or the rest of the payload by SO_RCVLOWAT) and reads that grow to 256 KiB give back. nginx "
      "64k still copies, through 64 KiB buffers.")
    w("- HAProxy splice leaves splicing to HAProxy's heuristics, which its "
      "manual calls \"not much aggressive\": a run may be spliced in part "
      "or not at all (it splices the whole tunnel, frame headers included, "
      "once it does). Its rows say what `option splice-auto` gives on this "
      "traffic, not what a spliced tunnel costs.")
    w("- The echo backend itself tops out at a few tens of thousands of "
      "round trips per second (loadtest/README.md), so the `direct` column "
      "is the ceiling for rates, not a proxy.")
    w("")

    if args.baseline:
        write_baseline_section(w, args, info, results)

    w("## Frame codec micro-benchmarks (bench_ws)")
    w("")
    if micro is None:
        w("bench_ws was not built or gave no result.")
    else:
        w("`build-bench/loadtest/bench_ws %s` (release build, one core; "
          "buffer %s bytes):" % (args.bench_seconds,
                                 micro.get("buffer_bytes", "?")))
        w("")
        w("| case | value | unit | vs memcpy |")
        w("|---|---:|---|---:|")
        memcpy = micro.get("memcpy_gbps")
        for k, val in micro.items():
            if k in ("bench", "buffer_bytes") or not isinstance(
                    val, (int, float)):
                continue
            if k.endswith("_ns"):
                w("| %s | %.2f | ns/op | - |" % (k[:-3], val))
            elif k.endswith("_gbps"):
                rel = ("%.2fx" % (val / memcpy)) if memcpy else "-"
                w("| %s | %.2f | GB/s | %s |" % (k[:-5], val, rel))
            else:
                w("| %s | %s | | - |" % (k, val))
    w("")

    w("## Anomalies")
    w("")
    if not anomalies:
        w("None: every client run completed with every connection open, no "
          "errors and no proxy exit.")
    else:
        w("Errors, drops or crashes seen during the run (command and log "
          "tail for each):")
        w("")
        w("```")
        for a in anomalies:
            w(a.rstrip())
        w("```")
    w("")

    w("## Raw medians (JSON)")
    w("")
    w("```json")
    raw = {}
    for (workers, target, scen), rs in sorted(results.items()):
        keys = sorted({k for r in rs if r for k in r})
        raw.setdefault(str(workers), {}).setdefault(scen, {})[target] = {
            k: median(results, workers, target, scen, k) for k in keys}
    for (workers, target, scen), sc in sorted((syscalls or {}).items()):
        raw.setdefault(str(workers), {}).setdefault(scen, {}).setdefault(
            target, {})["kernel_entries"] = sc["total"]
    w(json.dumps(raw, sort_keys=True))
    w("```")
    w("")
    text = keep_section(path, "\n".join(L))
    with open(path, "w") as f:
        f.write(text)


def keep_section(path, text):
    """The sections other runs wrote into the page between their markers
    (Fan-out from loadtest/fanout, Plugins) survive a new compare report:
    appended to text in KEPT_SECTIONS order."""
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return text
    for begin, end in KEPT_SECTIONS:
        a, b = old.find(begin), old.find(end)
        if a >= 0 and b > a:
            text = text.rstrip("\n") + "\n\n" + old[a:b + len(end)] + "\n"
    return text
