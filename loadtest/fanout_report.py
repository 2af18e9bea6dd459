"""fanout_report.py - the "Fan-out" section of docs/benchmarks.md, written
by loadtest/fanout: per client count a table of the targets (medians over
the rounds, the spread beside the CPU figures), the ratios against the
issue's targets, the anomalies and the raw medians.

The section sits between MARK_BEGIN and MARK_END; loadtest/compare keeps it
when it rewrites the rest of the page (compare_report.keep_section)."""

import json

from compare_conf import FANOUT_BEGIN as MARK_BEGIN
from compare_conf import FANOUT_END as MARK_END
from compare_conf import LABEL
from compare_report import fmt, fmt_ratio, median, ratio, spread

PEERS = ["nginx", "nginx-64k", "haproxy", "haproxy-splice"]
# Targets of the issue: gateway CPU per delivery vs the best peer at 1,000
# clients and vs the floor; backend CPU per broadcast vs the peers'; the
# original benchmark's goal per broadcast at 10 clients.
GOAL_PEER = 0.5
GOAL_FLOOR = 1.2
GOAL_BACKEND = 0.05
GOAL_BROADCAST_NS = 25000


def med(results, clients, target, key):
    return median(results, clients, target, "fanout", key)


def spr(results, clients, target, key):
    s = spread(results, clients, target, "fanout", key)
    return "" if s is None else " ±%.0f%%" % (50 * s)


def best_peer(results, clients, targets, key):
    have = [(med(results, clients, t, key), t) for t in PEERS
            if t in targets and med(results, clients, t, key) is not None]
    return min(have)[1] if have else None


def ratios(results, clients, targets):
    """The figures the issue asks for at one client count: a dict."""
    sw = "shockwave"
    out = {}
    gw = med(results, clients, sw, "gw_ns_per_delivery")
    bp = best_peer(results, clients, targets, "gw_ns_per_delivery")
    floor = med(results, clients, "direct", "backend_ns_per_delivery")
    out["best_peer"] = bp
    out["vs_peer"] = ratio(gw, med(results, clients, bp, "gw_ns_per_delivery")
                           if bp else None)
    out["vs_floor"] = ratio(gw, floor)
    bb = best_peer(results, clients, targets, "backend_ns_per_broadcast")
    out["backend_peer"] = bb
    out["backend_vs_peer"] = ratio(
        med(results, clients, sw, "backend_ns_per_broadcast"),
        med(results, clients, bb, "backend_ns_per_broadcast") if bb else None)
    out["gw_per_broadcast"] = med(results, clients, sw, "gw_ns_per_broadcast")
    out["floor_per_broadcast"] = med(results, clients, "direct",
                                     "backend_ns_per_broadcast")
    return out


INTEGER = ("held", "missed", "deliveries")


def fmt_cell(key, v):
    if v is not None and key in INTEGER:
        return "{:,.0f}".format(v)
    return fmt(v)


COLUMNS = [
    # (key, header, with spread)
    ("deliveries_per_s", "deliveries/s", False),
    ("p50_us", "p50 us", False),
    ("p99_us", "p99 us", False),
    ("max_us", "max us", False),
    ("gw_ns_per_delivery", "gateway CPU ns / delivery", True),
    ("gw_ns_per_broadcast", "gateway CPU ns / broadcast", True),
    ("backend_ns_per_broadcast", "backend CPU ns / broadcast", True),
    ("backend_ns_per_delivery", "backend CPU ns / delivery", True),
    ("held", "upstream conns at backend", False),
    ("missed", "missed", False),
    ("connect_s", "connect all s", False),
]


def table(results, clients, targets):
    lines = ["| target | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for t in targets:
        cells = []
        for key, _, with_spread in COLUMNS:
            v = med(results, clients, t, key)
            cells.append(fmt_cell(key, v) + (spr(results, clients, t, key)
                                   if with_spread and v is not None else ""))
        label = LABEL.get(t, t) + (" (fan-out)" if t == "shockwave" else "")
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    return lines


def ratio_lines(results, clients, targets):
    r = ratios(results, clients, targets)
    L = []
    if "shockwave" not in targets:
        return L
    if r["best_peer"] is not None:
        L.append("- gateway CPU per delivery, Shockwave / best peer (%s): "
                 "**%s**%s" % (LABEL[r["best_peer"]], fmt_ratio(r["vs_peer"]),
                               " (target <= %.1fx at 1,000 clients)"
                               % GOAL_PEER if clients == 1000 else ""))
    if r["vs_floor"] is not None:
        L.append("- gateway CPU per delivery, Shockwave / floor (the "
                 "backend's CPU per delivery, direct): **%s** (target <= "
                 "%.1fx)" % (fmt_ratio(r["vs_floor"]), GOAL_FLOOR))
    if r["backend_peer"] is not None:
        L.append("- backend CPU per broadcast, Shockwave / best peer (%s): "
                 "**%s** (target <= %.2fx)"
                 % (LABEL[r["backend_peer"]], fmt_ratio(r["backend_vs_peer"]),
                    GOAL_BACKEND))
    fo = med(results, clients, "shockwave", "fo_deliveries_total")
    got = med(results, clients, "shockwave", "deliveries")
    if fo is not None and got is not None:
        L.append("- cross-check, Shockwave's /metrics over the measurement "
                 "(median): %s deliveries queued "
                 "(shockwave_fanout_deliveries_total), %s dropped for slow "
                 "clients; the subscribers counted %s"
                 % ("{:,.0f}".format(fo), "{:,.0f}".format(med(
                     results, clients, "shockwave", "fo_dropped_total") or 0),
                    "{:,.0f}".format(got)))
    if clients == 10:
        L.append("- gateway CPU per broadcast to 10 clients: **%s ns** "
                 "(original target %s ns; floor, the backend's own CPU per "
                 "broadcast direct: %s ns)"
                 % (fmt(r["gw_per_broadcast"]), "{:,}".format(
                     GOAL_BROADCAST_NS), fmt(r["floor_per_broadcast"])))
    return L


def reading(results, args):
    """What the figures say about the targets, with this run's numbers."""
    L = ["### Reading the figures", ""]
    if "shockwave" not in args.targets or "direct" not in args.targets:
        return []
    if 1000 in args.clients:
        r = ratios(results, 1000, args.targets)
        bp = r["best_peer"] and med(results, 1000, r["best_peer"],
                                    "gw_ns_per_delivery")
        floor = med(results, 1000, "direct", "backend_ns_per_delivery")
        if bp and floor:
            goal = GOAL_PEER * bp
            L.append("- 1,000 clients: the target, %.1fx the best peer, is "
                     "%s ns per delivery; the floor, one plain send of the "
                     "frame per client, is %s ns here (the best peer costs "
                     "%.1fx the floor), so the target %s. A send to a "
                     "loopback TCP socket includes the kernel's delivery "
                     "into the receiving socket and its wake-up: most of "
                     "what a peer pays per delivery is that send."
                     % (GOAL_PEER, fmt(goal), fmt(floor), bp / floor,
                        "leaves %.0f%% over a plain send" %
                        (100 * (goal / floor - 1)) if goal >= floor
                        else "is below a plain send"))
    if 10 in args.clients:
        r = ratios(results, 10, args.targets)
        fb = r["floor_per_broadcast"]
        if fb:
            L.append("- 10 clients: the floor per broadcast (ten plain "
                     "sends and the backend's own per-broadcast work) is %s "
                     "ns, %s the original target of %s ns; Shockwave's "
                     "gateway spends %s ns per broadcast."
                     % (fmt(fb), "above" if fb > GOAL_BROADCAST_NS else
                        "below", "{:,}".format(
                         GOAL_BROADCAST_NS), fmt(r["gw_per_broadcast"])))
        sw_b = med(results, 10, "shockwave", "backend_ns_per_broadcast")
        if sw_b and r["backend_peer"]:
            L.append("- Backend CPU per broadcast at 10 clients (%s ns for "
                     "its one send with fan-out) is mostly its fixed cost "
                     "per broadcast (timer wake-up, time stamp), the same "
                     "for every target; from 1,000 clients on, the N sends "
                     "dominate and the ratio falls far below %.2fx."
                     % (fmt(sw_b), GOAL_BACKEND))
    L.append("- Latency at 1,000 and 10,000 clients is set by the broadcast "
             "itself: with a connection per client the backend writes N "
             "frames one after the other (and the peers relay each), "
             "with fan-out the gateway does; the last client's message "
             "waits for the others.")
    L.append("")
    return L


def print_table(args, results, interval_for):
    for clients in args.clients:
        print("\n%d clients, broadcast every %g ms" % (
            clients, interval_for(args, clients)))
        for line in table(results, clients, args.targets):
            print(line)
        for line in ratio_lines(results, clients, args.targets):
            print(line)
    print(flush=True)


def section(args, info, results, anomalies, started, elapsed, interval_for):
    L = [MARK_BEGIN, "", "## Fan-out: broadcast to many clients", ""]
    w = L.append
    w("Written by `loadtest/fanout` on %s UTC (run time %.1f min, commit `%s`,"
      " load average %s at the start, %s at the end; %d CPUs). Command: "
      "`loadtest/fanout%s`."
      % (started.strftime("%Y-%m-%d %H:%M"), elapsed / 60, info["commit"],
         " ".join("%.2f" % x for x in info["machine"]["load"]),
         " ".join("%.2f" % x for x in info["load_end"]),
         info["machine"]["nproc"],
         "" if not args.cmdline else " " + " ".join(args.cmdline)))
    w("")
    w("One `swload broadcast` backend sends a %d-byte binary message, "
      "numbered and time-stamped, to every WebSocket it holds; `swload "
      "subscribe` opens the clients (source addresses 127.0.0.2-5) and "
      "measures each delivery from the backend's send to the client's "
      "receipt, and the sequence gaps per connection. Per client count "
      "every target runs %d times, %g s each, the order rotating; the "
      "tables show medians, ± half the round-to-round range over the "
      "median." % (args.size, args.rounds, args.duration))
    w("")
    w("- **Shockwave (fan-out)**: route `fanout $uri;` "
      "([config](../loadtest/conf/shockwave-fanout.conf.in), %d worker): "
      "every client on one channel, one upstream WebSocket."
      % args.sw_workers)
    w("- **nginx**, **HAProxy** (and their tuned variants from "
      "`loadtest/compare`): each client its own upstream WebSocket, so the "
      "backend holds N and writes each message N times. Both run 2 "
      "processes (nginx `worker_processes 2`; two HAProxy processes of one "
      "thread on one port): relaying 10,000 WebSockets takes over 20,000 "
      "descriptors, more than one process may open here (limit %d)."
      % info["nofile"])
    w("- **direct**: the clients connect to the backend; its CPU per "
      "delivery is the floor, a plain send of the same frame to each "
      "client.")
    w("- CPU: each process's CPU clock (user + system, every thread, ns) "
      "read as the measurement starts and ends; per delivery it is CPU per "
      "second over deliveries per second. Gateway = the proxy's processes; "
      "backend = the broadcast process.")
    w("- Broadcast interval: chosen for about %s deliveries/s in every row "
      "(interval = clients / rate), so that the 2 shared cores are not "
      "saturated; per row below." % "{:,.0f}".format(args.rate)
      if args.interval is None else
      "- Broadcast interval: %g ms in every row." % args.interval)
    w("- Versions: %s; Shockwave `%s`." % (
        "; ".join("`%s`" % info["versions"][k] for k in ("nginx", "haproxy")),
        info["versions"]["shockwave"]))
    w("")
    for clients in args.clients:
        w("### %s clients, one broadcast every %g ms" % (
            "{:,}".format(clients), interval_for(args, clients)))
        w("")
        L.extend(table(results, clients, args.targets))
        w("")
        L.extend(ratio_lines(results, clients, args.targets))
        w("")
    L.extend(reading(results, args))
    w("### Fan-out anomalies")
    w("")
    if not anomalies:
        w("None: every client opened, nothing missed or reordered, no "
          "backend send skipped.")
    else:
        w("```")
        for a in anomalies:
            w(a.rstrip())
        w("```")
    w("")
    raw = {}
    for (clients, target, _), rs in sorted(results.items()):
        keys = sorted({k for r in rs if r for k in r})
        raw.setdefault(str(clients), {})[target] = {
            k: med(results, clients, target, k) for k in keys}
    w("<details><summary>Raw medians (JSON)</summary>")
    w("")
    w("```json")
    w(json.dumps(raw, sort_keys=True))
    w("```")
    w("")
    w("</details>")
    w("")
    w(MARK_END)
    return "\n".join(L) + "\n"


def write_report(path, args, info, results, anomalies, started, elapsed,
                 interval_for):
    """Replace the section in path (between the markers), or append it."""
    text = section(args, info, results, anomalies, started, elapsed,
                   interval_for)
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        old = ""
    a, b = old.find(MARK_BEGIN), old.find(MARK_END)
    if a >= 0 and b > a:
        new = old[:a] + text + old[b + len(MARK_END):].lstrip("\n")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    with open(path, "w") as f:
        f.write(new)
