"""compare_kernel.py - the "Shockwave's kernel relay against the user-space
relay" section of loadtest/compare's report: per worker count, for the
scenarios of the kernel relay's issue, direct, Shockwave and Shockwave
kernel relay (same binary, same configuration but for `ws_kernel_relay`)
side by side: machine CPU and proxy CPU per message, p50 and p99 round
trip, the latency each relay adds over direct, the ratio kernel /
user-space, the issue's targets met or not, and from /metrics the share of
frames the kernel carried."""

import statistics

from compare_conf import LABEL, SW_KERNEL
from compare_report import change, fmt, fmt_ratio, median, pair_spread, ratio

# The scenarios, in its order, and how their rows are named.
KERNEL_SCENARIOS = [
    ("echo-17", "echo 17 B, 1 conn"),
    ("concurrent-17", "echo 17 B, 100 conns"),
    ("ping", "ping/pong, 1 conn"),
    ("throughput-1k", "one-way 1 KiB frames"),
    ("large-1m", "echo 1 MiB messages"),
]
# What one message is, per scenario (else a round trip).
UNIT = {"throughput-1k": "frame", "ping": "ping"}
# The targets, kernel / user-space: at 1 connection with small
# messages, the p50 latency the gateway adds over direct and the machine
# CPU per round trip; on every row, no worse beyond the spread.
GOAL_SCENARIO = "echo-17"
GOAL_ADDED = 0.70
GOAL_CPU = 0.90
ADDED = "added_p50_us"  # pseudo-key: p50 of the target - p50 of direct
SHARE = "kernel_share"  # from /metrics: kernel frames / all WebSocket frames
USER = "shockwave"
# The verdict of an added-latency row where the user-space relay's p50 is
# at or below direct's.
NO_RATIO = "cannot tell: user-space adds none"


def kernel_rows(scen):
    """(key, label, goal ratio or None) of one scenario's rows."""
    unit = UNIT.get(scen, "round trip")
    rows = [("machine_cpu_us", "machine CPU us per " + unit,
             GOAL_CPU if scen == GOAL_SCENARIO else None),
            ("cpu_us", "proxy CPU us per " + unit, None)]
    if not scen.startswith("throughput"):
        rows += [("p50_us", "p50 %s (us)" % unit, None),
                 ("p99_us", "p99 %s (us)" % unit, None),
                 (ADDED, "p50 added over direct (us)",
                  GOAL_ADDED if scen == GOAL_SCENARIO else None)]
    rows.append((SHARE, "share of frames the kernel carried", None))
    return rows


def per_round(results, workers, target, scen, key):
    """The value of key in each round (None where a run gave none)."""
    return [r.get(key) if r else None
            for r in results.get((workers, target, scen), [])]


def added(results, workers, target, scen):
    """(median over the rounds of the target's p50 latency minus direct's,
    the spread of that difference over the rounds). The rounds are paired:
    both ran in the same round, one after the other."""
    t = median(results, workers, target, scen, "p50_us")
    d = median(results, workers, "direct", scen, "p50_us")
    value = t - d if t is not None and d is not None else None
    pairs = [a - b for a, b in zip(
        per_round(results, workers, target, scen, "p50_us"),
        per_round(results, workers, "direct", scen, "p50_us"))
        if a is not None and b is not None]
    sp = None
    if len(pairs) >= 2 and statistics.median(pairs):
        sp = (max(pairs) - min(pairs)) / abs(statistics.median(pairs))
    return value, sp


def row_values(results, workers, scen, key):
    """(direct, user-space, kernel, spread) of one row."""
    if key == ADDED:
        u, su = added(results, workers, USER, scen)
        k, sk = added(results, workers, SW_KERNEL, scen)
        sp = max([x for x in (su, sk) if x is not None], default=None)
        return None, u, k, sp
    d = None if key in ("cpu_us", SHARE) else median(
        results, workers, "direct", scen, key)
    u = median(results, workers, USER, scen, key)
    k = median(results, workers, SW_KERNEL, scen, key)
    sp = None if key == SHARE else pair_spread(
        results, workers, (USER, SW_KERNEL), scen, key)
    return d, u, k, sp


def judge(key, u, k, sp, goal):
    """(ratio kernel / user-space, change word, target text, verdict) of a
    row. Every row is lower-is-better but the share, which has no target.
    A row with a goal of its own is met at or under it; any other is met
    unless the kernel relay is worse (over 5%) beyond the spread."""
    if key == SHARE:
        used = "-" if k is None else ("kernel path used" if k > 0
                                      else "kernel path unused")
        return None, "-", "-", used
    if key == ADDED and u is not None and u <= 0:
        # the user-space relay added nothing over direct (noise): no ratio
        return None, "-", "<= %.2fx" % goal if goal else "-", NO_RATIO
    r = ratio(k, u)
    # a relay faster than direct (noise) is better, not a negative ratio
    word = change(None if r is None else max(r, 0.0), False, sp)
    if goal is not None:
        target = "<= %.2fx" % goal
        verdict = ("-" if r is None else
                   "**met**" if r <= goal else "**not met**")
    else:
        target = "not worse beyond spread"
        if r is None:
            verdict = "-"
        elif word == "worse":
            verdict = ("**not met** (no spread)" if sp is None
                       else "**not met**")
        else:
            verdict = "met"
    return r, word, target, verdict


def fmt_cell(key, v):
    if key == SHARE:
        return "-" if v is None else "%.1f%%" % (100 * v)
    return fmt(v)


def write_kernel_section(w, args, results):
    """Shockwave kernel relay against Shockwave (the user-space relay) and
    direct, per worker count."""
    if SW_KERNEL not in args.targets or USER not in args.targets:
        return
    scens = [(s, n) for s, n in KERNEL_SCENARIOS if s in args.scenarios]
    w("## Shockwave's kernel relay against the user-space relay")
    w("")
    w("%s (`ws_kernel_relay on;`) against %s (`ws_kernel_relay off;`, the "
      "user-space relay), the same binary and otherwise the same "
      "configuration, and direct (no proxy), run in the same rounds, for "
      "the scenarios of the kernel relay's issue. Machine CPU is the busy "
      "time of every CPU (client, backend, gateway and the kernel's "
      "softirq and kworker time, where the redirects run) per message; "
      "direct is its floor. Proxy CPU is the gateway process's own, which "
      "leaves the redirects out. `p50 added over direct` is the target's "
      "p50 minus direct's: the latency the gateway adds; its kernel / user "
      "ratio is that of the two added latencies. Ratios are kernel / "
      "user-space, below 1 favours the kernel relay; `change` counts a "
      "difference under 5%% as even and marks one smaller than the "
      "round-to-round spread (the larger of the two targets', (max - min) "
      "/ median) as within spread. The share of frames the kernel carried "
      "is the change in `shockwave_ws_kernel_relay_frames_total` over the "
      "change in `shockwave_ws_frames_total` (which counts the kernel's "
      "frames too) around each run, from the admin listener's `/metrics` "
      "read outside the CPU window; the user-space relay's should be 0." % (
          LABEL[SW_KERNEL], LABEL[USER]))
    w("")
    w("The issue's targets, written next to the figures: at 1 connection "
      "(%s) the p50 latency added over direct at most %.2fx the user-space "
      "relay's and the machine CPU per round trip at most %.2fx; on every "
      "other row, no worse than the user-space relay beyond the "
      "round-to-round spread. Pings are control frames, which the kernel "
      "relay hands to the gateway: it answers them itself on both targets "
      "(`ws_ping local`), so the ping rows show what being in the sockmap "
      "costs a session whose frames all go to the gateway."
      % (dict(KERNEL_SCENARIOS)[GOAL_SCENARIO], GOAL_ADDED, GOAL_CPU))
    w("")
    if args.rounds < 3:
        w("With %d round%s the spread says little or nothing: a row worse "
          "by more than 5%% counts as not met." % (
              args.rounds, "" if args.rounds == 1 else "s"))
        w("")
    if not scens:
        w("None of its scenarios (%s) was run." % ", ".join(
            s for s, _ in KERNEL_SCENARIOS))
        w("")
        return
    goals = {GOAL_ADDED: [], GOAL_CPU: []}  # goal -> (workers, ratio)
    worse = {}    # workers -> rows not met
    unused = {}   # workers -> scenarios the kernel carried no frame of
    shares = {}   # workers -> (scenario name, share)
    for workers in args.workers:
        worse[workers], unused[workers], shares[workers] = [], [], []
        w("### %d worker%s" % (workers, "" if workers == 1 else "s"))
        w("")
        w("| metric | better | direct | user-space | kernel | kernel / user "
          "| change | spread | target | verdict |")
        w("|---|---|---:|---:|---:|---:|---|---:|---|---|")
        for scen, name in scens:
            for key, label, goal in kernel_rows(scen):
                d, u, k, sp = row_values(results, workers, scen, key)
                if u is None and k is None:
                    continue
                r, word, target, verdict = judge(key, u, k, sp, goal)
                w("| %s: %s | %s | %s | %s | **%s** | %s | %s | %s | %s | "
                  "%s |" % (
                      name, label, "higher" if key == SHARE else "lower",
                      fmt_cell(key, d), fmt_cell(key, u), fmt_cell(key, k),
                      fmt_ratio(r), word,
                      ("%.0f%%" % (100 * sp)) if sp is not None else "-",
                      target, verdict))
                if goal is not None:
                    goals[goal].append((workers, r, verdict))
                elif "not met" in verdict:
                    worse[workers].append("%s: %s %s (%s)" % (
                        name, label, fmt_ratio(r), word))
                if key == SHARE:
                    shares[workers].append((name, k))
                    if not k:
                        unused[workers].append(name)
        w("")
    write_goals(w, goals, worse, unused, shares)


def write_goals(w, goals, worse, unused, shares):
    """The issue's targets, met or not, per worker count."""
    def per_workers(rows, goal):
        return "; ".join(
            ("%d worker%s: %s" % (n, "" if n == 1 else "s",
                                  verdict if verdict != "-"
                                  else "not measured")) if r is None
            else "%d worker%s %s (%s)" % (
                n, "" if n == 1 else "s", fmt_ratio(r),
                "met" if r <= goal else "not met")
            for n, r, verdict in rows) or "not measured"

    name = dict(KERNEL_SCENARIOS)[GOAL_SCENARIO]
    w("### Targets")
    w("")
    w("Computed from the tables above; on this shared machine a ratio "
      "within the spread can be noise either way.")
    w("")
    w("- %s, p50 latency added over direct, kernel / user-space at most "
      "%.2fx: %s." % (name, GOAL_ADDED, per_workers(goals[GOAL_ADDED],
                                                     GOAL_ADDED)))
    w("- %s, machine CPU per round trip, kernel / user-space at most "
      "%.2fx: %s." % (name, GOAL_CPU, per_workers(goals[GOAL_CPU],
                                                   GOAL_CPU)))
    w("- No other row worse than the user-space relay beyond the "
      "round-to-round spread:")
    for n, rows in sorted(worse.items()):
        w("  - %d worker%s: %s" % (n, "" if n == 1 else "s",
                                  "met" if not rows else
                                  "not met; " + "; ".join(rows)))
    w("- The kernel path in use (share of frames it carried):")
    for n, rows in sorted(shares.items()):
        w("  - %d worker%s: %s%s" % (
            n, "" if n == 1 else "s",
            "; ".join("%s: %s" % (s, fmt_cell(SHARE, v)) for s, v in rows)
            or "no figure",
            (". None in %s: there every frame went through the gateway "
             "on both targets" % "; ".join(unused[n])) if unused[n] else ""))
    w("")
