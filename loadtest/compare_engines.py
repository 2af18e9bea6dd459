"""compare_engines.py - the "Shockwave on io_uring against epoll" section of
loadtest/compare's report: per worker count and scenario, the two Shockwave
targets (same binary, same configuration but for `io_engine`) side by side
with the ratio io_uring / epoll of proxy CPU per message, rate, latency,
kernel entries per message and idle memory, then the engine's goals."""

from compare_conf import SCENARIO_ORDER, SW_URING
from compare_report import (fmt_ratio, median, pair_head, pair_row,
                            pair_spread)

# Scenario -> how its rows are named in this section.
SCENARIO_LABEL = {
    "echo": "echo 64 B, 1 conn",
    "echo-17": "echo 17 B, 1 conn",
    "concurrent": "echo 64 B, 100 conns",
    "concurrent-17": "echo 17 B, 100 conns",
    "throughput-64": "one-way 64 B frames",
    "throughput-1k": "one-way 1 KiB frames",
    "throughput-4k": "one-way 4 KiB frames",
    "large-1m": "echo 1 MiB messages",
    "ping": "ping/pong, 1 conn",
    "http": "HTTP GET 64 B, 50 conns",
    "idle": "idle WebSockets",
}
# What one message is, per scenario.
UNIT = {"throughput-64": "frame", "throughput-1k": "frame",
        "throughput-4k": "frame", "http": "request", "ping": "ping"}
# The row whose CPU ratio has a goal of its own: many connections, small
# messages, where batching the kernel entries has the most to give.
GOAL_SCENARIO = "concurrent-17"
GOAL_CPU = 0.80   # io_uring / epoll CPU per message there, at most
GOAL_ANY = 1.05   # io_uring / epoll CPU per message on any row, at most
KERNEL = "kernel_entries"  # pseudo-key: from the syscall pass


def engine_rows(scen):
    """(key, label, higher is better) of one scenario's rows."""
    name = SCENARIO_LABEL.get(scen, scen)
    if scen == "idle":
        return [("bytes_per_conn", name + ": proxy RSS bytes per connection",
                 False)]
    unit = UNIT.get(scen, "round trip")
    rows = [("cpu_us", "%s: proxy CPU us per %s" % (name, unit), False)]
    if scen == "large-1m":
        rows.append(("mb_per_s", name + ": MB/s", True))
    else:
        rows.append(("msgs_per_s", "%s: %ss/s" % (name, unit), True))
    if not scen.startswith("throughput"):
        rows.append(("p50_us", name + ": p50 latency (us)", False))
    rows.append((KERNEL, "%s: kernel entries per %s" % (name, unit), False))
    return rows


def value(results, syscalls, workers, target, scen, key):
    if key == KERNEL:
        sc = syscalls.get((workers, target, scen))
        return sc["total"] if sc else None
    return median(results, workers, target, scen, key)


def write_engines_section(w, args, info, results, syscalls):
    """Shockwave io_uring against Shockwave (epoll), per worker count."""
    if SW_URING not in args.targets or "shockwave" not in args.targets:
        return
    engines = info.get("engines", {})
    w("## Shockwave on io_uring against epoll")
    w("")
    w("The two Shockwave columns of the tables above, row by row: the same "
      "binary and configuration, but for `%s` (epoll) and `%s` (io_uring) "
      "in the main context, run in the same rounds. Ratios are io_uring / "
      "epoll: below 1 favours io_uring on lower-is-better rows (CPU, "
      "latency, kernel entries, memory), above 1 on rates. A difference "
      "under 5%% counts as even; `spread` is the larger (max - min) / "
      "median over the rounds of the two, and a change smaller than it is "
      "marked as within spread. Kernel entries per message are the system "
      "calls of all the gateway's threads in the syscall pass (one run, "
      "`perf stat` on `raw_syscalls:sys_enter`, see System calls per "
      "message) divided by that run's messages; they have no spread." % (
          engines.get("shockwave", "?"), engines.get(SW_URING, "?")))
    w("")
    goals = []   # (workers, CPU ratio on GOAL_SCENARIO)
    worse = {}   # workers -> rows whose CPU ratio is above GOAL_ANY
    for workers in args.workers:
        counts = {}
        pair_head(w, workers, "epoll", "io_uring")
        worse[workers] = []
        for scen in [s for s in SCENARIO_ORDER if s in args.scenarios]:
            for key, label, higher in engine_rows(scen):
                ep = value(results, syscalls, workers, "shockwave", scen, key)
                ur = value(results, syscalls, workers, SW_URING, scen, key)
                if ep is None and ur is None:
                    continue
                sp = (None if key == KERNEL else pair_spread(
                    results, workers, ("shockwave", SW_URING), scen, key))
                r = pair_row(w, counts, label, higher, ep, ur, sp)
                if key == "cpu_us" and r is not None and r > GOAL_ANY:
                    worse[workers].append("%s: %s%s" % (
                        SCENARIO_LABEL.get(scen, scen), fmt_ratio(r),
                        " (within spread)" if sp is not None
                        and abs(r - 1) < sp else ""))
                if key == "cpu_us" and scen == GOAL_SCENARIO:
                    goals.append((workers, r))
        w("")
        w("Rows where io_uring is better: %d, worse: %d, even: %d." % (
            counts.get("better", 0), counts.get("worse", 0),
            counts.get("even", 0)))
        w("")
    w("### Goals")
    w("")
    w("Computed from the tables above; on this shared machine a ratio "
      "within the spread can be noise either way.")
    w("")
    w("- %s, proxy CPU per round trip, io_uring / epoll at most %.2fx: %s." % (
        SCENARIO_LABEL[GOAL_SCENARIO], GOAL_CPU, "; ".join(
            "%d worker%s %s (%s)" % (
                n, "" if n == 1 else "s", fmt_ratio(r),
                "-" if r is None else ("met" if r <= GOAL_CPU else "not met"))
            for n, r in goals) or "not measured"))
    w("- No row's proxy CPU per message above %.2fx epoll's:" % GOAL_ANY)
    for n, rows in sorted(worse.items()):
        w("  - %d worker%s: %s" % (n, "" if n == 1 else "s",
                                  "met" if not rows else
                                  "not met; " + "; ".join(rows)))
    w("")
