"""compare_conf.py - what loadtest/compare runs: its targets, their labels and
settings, and its scenarios. Shared by the runner (compare) and the report
(compare_report.py)."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Shockwave runs three times, same binary and configuration but for its
# io_engine and ws_kernel_relay lines: "shockwave" on epoll, SW_URING on
# io_uring (--engines) and SW_KERNEL on epoll with the kernel relay on
# (--no-kernel-relay leaves it out).
SW_URING = "shockwave-io_uring"
SW_KERNEL = "shockwave-kernel"
TARGETS = ["direct", "nginx", "nginx-64k", "haproxy", "haproxy-splice",
           "shockwave", SW_URING, SW_KERNEL]
PROXIES = TARGETS[1:]
# The peers Shockwave is measured against: each at its defaults and at its
# best settings for this traffic. A row's best peer is chosen among these.
PEERS = ["nginx", "nginx-64k", "haproxy", "haproxy-splice"]
# Peer target -> the line that fills its template's placeholder
# (@PROXY_BUFFERS@ in each proxied location of nginx.conf.in, @SPLICE@ in
# the defaults section of haproxy.cfg.in); nothing else differs.
NGINX_BUFFERS = {
    "nginx": "# proxy_buffer_size, proxy_buffers: nginx's defaults",
    "nginx-64k": "proxy_buffer_size 64k; proxy_buffers 8 64k;",
}
HAPROXY_SPLICE = {
    "haproxy": "# no option splice-auto: HAProxy's default",
    "haproxy-splice": "option splice-auto",
}
# Shockwave target -> the line that fills @IO_ENGINE@ in the main context of
# loadtest/conf/shockwave.conf.in; nothing else differs. The epoll target
# names its engine too, so that it stays epoll whatever the default; a
# binary that does not know io_engine (an older --baseline) gets
# NO_IO_ENGINE instead, and has no io_uring target.
IO_ENGINE = {"shockwave": "io_engine epoll;", SW_URING: "io_engine io_uring;"}
NO_IO_ENGINE = "# no io_engine: this binary has epoll only"
# --engines value -> its Shockwave target
ENGINE_TARGET = {"epoll": "shockwave", "io_uring": SW_URING}
# Shockwave target -> the line that fills @KERNEL_RELAY@ in the main context
# (the default of every route). The other targets turn it off by name, so
# that they stay on the user-space relay whatever the default; a binary
# that does not know ws_kernel_relay gets NO_KERNEL_RELAY instead.
KERNEL_RELAY = {SW_KERNEL: "ws_kernel_relay on;"}
USER_RELAY = "ws_kernel_relay off;"
NO_KERNEL_RELAY = "# no ws_kernel_relay: this binary relays in user space"
# With --baseline: another shockwave binary, same config, same rounds.
BASELINE = "shockwave-before"
LABEL = {"direct": "direct", "nginx": "nginx", "nginx-64k": "nginx 64k",
         "haproxy": "HAProxy", "haproxy-splice": "HAProxy splice",
         "shockwave": "Shockwave", SW_URING: "Shockwave io_uring",
         SW_KERNEL: "Shockwave kernel relay", BASELINE: "Shockwave (before)"}
# Every Shockwave target (an admin listener, /metrics, bold in the tables).
SHOCKWAVES = ("shockwave", SW_URING, SW_KERNEL, BASELINE)

# Scenario name -> (swload scenario, path, extra client arguments).
# "http" is wrk; "idle" is handled on its own (RSS while holding).
WS_SCENARIOS = {
    "echo": ("echo", "/ws", []),
    "echo-17": ("echo", "/ws", ["--size", "17"]),
    "concurrent": ("concurrent", "/ws", ["--connections", "100"]),
    "concurrent-17": ("concurrent", "/ws", ["--connections", "100",
                                            "--size", "17"]),
    "throughput-64": ("throughput", "/sink", ["--size", "64"]),
    "throughput-1k": ("throughput", "/sink", ["--size", "1024"]),
    "throughput-4k": ("throughput", "/sink", ["--size", "4096"]),
    "large-1m": ("large", "/ws", ["--size", str(1 << 20)]),
    "ping": ("ping", "/ws", []),
}
SCENARIO_ORDER = ["echo", "echo-17", "concurrent", "concurrent-17",
                  "throughput-64", "throughput-1k", "throughput-4k",
                  "large-1m", "ping", "http", "idle"]

# System calls counted in the syscall pass, by kind (tracepoint names).
SYSCALL_GROUPS = [
    ("epoll_wait", ["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
    ("recv", ["read", "readv", "recvfrom", "recvmsg"]),
    ("send", ["write", "writev", "sendto", "sendmsg"]),
    ("splice", ["splice"]),
    ("epoll_ctl", ["epoll_ctl"]),
    ("io_uring_enter", ["io_uring_enter"]),
]

# The Fan-out section of docs/benchmarks.md lies between these lines:
# loadtest/fanout writes it, loadtest/compare keeps it when it rewrites the
# rest of the page.
FANOUT_BEGIN = "<!-- fanout: begin (written by loadtest/fanout) -->"
FANOUT_END = "<!-- fanout: end -->"
# The Plugins section, likewise: written from a `compare --plugin` run.
PLUGINS_BEGIN = "<!-- plugins: begin (from loadtest/compare --plugin runs) -->"
PLUGINS_END = "<!-- plugins: end -->"
# The Scale-out section, likewise: written by loadtest/scaleout.
SCALEOUT_BEGIN = "<!-- scaleout: begin -->"
SCALEOUT_END = "<!-- scaleout: end -->"
# The io_uring relay probe, likewise: written by loadtest/uring_probe.
URING_BEGIN = "<!-- uring-probe: begin -->"
URING_END = "<!-- uring-probe: end -->"
KEPT_SECTIONS = [(FANOUT_BEGIN, FANOUT_END), (PLUGINS_BEGIN, PLUGINS_END),
                 (SCALEOUT_BEGIN, SCALEOUT_END), (URING_BEGIN, URING_END)]
