#!/usr/bin/env bash
# Installs what Shockwave needs to build, test and benchmark on Debian 12.
# Safe to run again: it installs only what is missing.
set -euo pipefail

# prometheus: its promtool checks /metrics in tests/integration/metrics_test.c
# libjwt-dev, libjansson-dev: the jwt_auth plugin (plugins/jwt_auth)
# libhiredis-dev: the Redis bus between gateways (fanout_bus); redis-server:
# the bus in the scale-out tests, started by each test on loopback
# liburing-dev: the io_uring engine (io_engine io_uring) and
# loadtest/bench_uring, the epoll / io_uring relay probe
# linux-perf: loadtest/compare counts the proxies' system calls per message
# libbpf-dev, bpftool: the kernel relay (ws_kernel_relay), its BPF programs
# built with clang's BPF target and loaded through a bpftool skeleton
packages=(build-essential pkg-config meson ninja-build libevent-dev libssl-dev
          libhttp-parser-dev check curl openssl python3-websockets wrk
          nginx-light haproxy nodejs npm clang libclang-rt-14-dev valgrind
          chromium groff-base prometheus
          libjwt-dev libjansson-dev libhiredis-dev redis-server
          liburing-dev linux-perf libbpf-dev bpftool)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done
# nodejs may come from another repository with npm bundled: accept a working npm
if command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/npm}")
    missing=("${missing[@]/nodejs}")
fi
read -r -a missing <<< "${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Third-party peers for the integration tests: npm's ws (WebSocket) and
# jsonwebtoken (tokens for the jwt_auth suite).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/js/package.json" ] &&
   { [ ! -d "$here/tests/js/node_modules/ws" ] ||
     [ ! -d "$here/tests/js/node_modules/jsonwebtoken" ]; }; then
    (cd "$here/tests/js" && npm install --no-audit --no-fund --silent)
fi
