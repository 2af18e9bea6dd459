#!/bin/sh
# install_test.sh - `meson install` into a temporary DESTDIR, then check the
# tree: every file in place, paths substituted, man pages render without
# warnings, the unit verifies, and a program builds against the installed
# headers and library through pkg-config.
#
# Environment (from tests/meson.build): SW_BUILD_ROOT, SW_PREFIX,
# SW_SBINDIR, SW_SYSCONFDIR, SW_UNITDIR, SW_MANDIR, SW_INCLUDEDIR,
# SW_LIBDIR, SW_SANITIZE, SW_CC. Runs alongside other suites: it writes only
# below its own temporary folder.
set -eu

fail() {
    echo "install_test: FAIL: $*" >&2
    exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest="$tmp/root"

meson install -C "$SW_BUILD_ROOT" --no-rebuild --quiet --destdir "$dest" \
    >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "meson install"; }

# Every file, at the place this build's options name.
sbin="$dest$SW_SBINDIR/shockwave"
conf="$dest$SW_SYSCONFDIR/shockwave/gateway.conf"
rot="$dest$SW_SYSCONFDIR/logrotate.d/shockwave"
unit="$dest$SW_UNITDIR/shockwave.service"
man8="$dest$SW_MANDIR/man8/shockwave.8"
man5="$dest$SW_MANDIR/man5/gateway.conf.5"
lib="$dest$SW_LIBDIR/libshockwave.a"
pc="$dest$SW_LIBDIR/pkgconfig/shockwave.pc"
for f in "$sbin" "$conf" "$rot" "$unit" "$man8" "$man5" "$lib" "$pc"; do
    [ -f "$f" ] || fail "missing $f"
done
[ -x "$sbin" ] || fail "$sbin is not executable"
nhdr=$(ls "$dest$SW_INCLUDEDIR/shockwave/"*.h | wc -l)
[ "$nhdr" -ge 10 ] || fail "only $nhdr headers in $dest$SW_INCLUDEDIR/shockwave"

# No placeholder left; the paths are this prefix's.
if grep -n '@[A-Z_]*@' "$unit" "$rot" "$man8" "$man5"; then
    fail "unsubstituted @NAME@ above"
fi
grep -q "^ExecStart=$SW_SBINDIR/shockwave -c $SW_SYSCONFDIR/shockwave/gateway.conf\$" "$unit" ||
    fail "ExecStart does not name $SW_SBINDIR and $SW_SYSCONFDIR"
grep -q '^Type=notify$' "$unit" || fail "unit is not Type=notify"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "no ExecReload"
grep -q 'kill -USR1' "$rot" || fail "logrotate snippet does not send SIGUSR1"
grep -q "$SW_SYSCONFDIR/shockwave/gateway.conf" "$man8" || fail "man page path"

# The installed daemon runs and accepts the installed sample.
"$sbin" -v | grep -q '^shockwave [0-9]' || fail "installed shockwave -v"
"$sbin" -t -c "$conf" >"$tmp/t.log" 2>&1 || { cat "$tmp/t.log" >&2; fail "installed gateway.conf does not pass -t"; }

# Man pages render without a warning.
if command -v groff >/dev/null 2>&1; then
    for m in "$man8" "$man5"; do
        groff -man -Tutf8 -ww -z "$m" >"$tmp/groff.log" 2>&1 || fail "groff $m"
        if [ -s "$tmp/groff.log" ]; then
            cat "$tmp/groff.log" >&2
            fail "groff warns about $m"
        fi
    done
    groff -man -Tutf8 -P-cbou "$man8" 2>/dev/null | grep -q 'SIGUSR1' || fail "shockwave.8 renders empty"
else
    echo "install_test: groff not installed: man pages not rendered" >&2
fi

# The unit: systemd-analyze when present (with the daemon's path pointed
# into DESTDIR, since it checks that ExecStart exists), else its sections.
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir "$tmp/unit"
    sed "s|$SW_SBINDIR/shockwave|$sbin|g" "$unit" >"$tmp/unit/shockwave.service"
    systemd-analyze verify --man=no "$tmp/unit/shockwave.service" \
        >"$tmp/verify.log" 2>&1 || { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify"; }
    if [ -s "$tmp/verify.log" ]; then
        cat "$tmp/verify.log" >&2
        fail "systemd-analyze warns about the unit"
    fi
else
    for s in '[Unit]' '[Service]' '[Install]'; do
        grep -qF "$s" "$unit" || fail "unit has no $s"
    done
    if grep -v '^#' "$unit" | grep -v '^$' | grep -v '^\[' | grep -v '^[A-Za-z]*='; then
        fail "unit lines above are not Key=Value"
    fi
fi

# A program built against the installed headers and library.
cat >"$tmp/hello.c" <<'CEOF'
#include <shockwave/buf.h>
#include <shockwave/conf.h>
#include <shockwave/conn.h>
#include <shockwave/core.h>
#include <shockwave/http.h>
#include <shockwave/io.h>
#include <shockwave/log.h>
#include <shockwave/metrics.h>
#include <shockwave/proxy.h>
#include <shockwave/relay.h>
#include <shockwave/route.h>
#include <shockwave/tls.h>
#include <shockwave/upstream.h>
#include <shockwave/ws.h>
#include <stdio.h>

int
main(void)
{
    char err[512];
    struct sw_conf *cf = sw_conf_load_string(
        "listen 127.0.0.1:8080;\nroute { return 200 \"ok\"; }\n", "hello",
        NULL, err, sizeof(err));
    if (cf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("listens=%zu %s\n", cf->nlistens, sw_strerror(SW_EPROTO));
    sw_conf_unref(cf);
    return 0;
}
CEOF
export PKG_CONFIG_PATH="$dest$SW_LIBDIR/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs shockwave) || fail "pkg-config shockwave"
san=""
if [ -n "$SW_SANITIZE" ] && [ "$SW_SANITIZE" != none ]; then
    san="-fsanitize=$SW_SANITIZE"
fi
# shellcheck disable=SC2086
$SW_CC -std=gnu11 -Wall -Wextra -Werror $san -o "$tmp/hello" "$tmp/hello.c" $flags \
    >"$tmp/cc.log" 2>&1 || { echo "flags: $flags" >&2; cat "$tmp/cc.log" >&2; fail "hello.c does not build"; }
out=$("$tmp/hello") || fail "hello exited non-zero"
[ "$out" = "listens=1 SW_EPROTO" ] || fail "hello printed: $out"

# A plugin built outside the tree against plugin.h alone (no library),
# loaded by the installed daemon; and the plugins installed with it.
plugdir="$dest$SW_LIBDIR/shockwave/plugins"
cat >"$tmp/myplug.c" <<'CEOF'
#include <shockwave/plugin.h>

static int
configure(struct sw_plugin_conf *pc, void **state)
{
    *state = NULL;
    return sw_plugin_conf_count(pc) == 0 ? SW_OK
                                         : sw_plugin_conf_error(pc, 0, "none");
}

static const struct sw_plugin desc = {
    .abi_major = SW_PLUGIN_ABI_MAJOR,
    .abi_minor = SW_PLUGIN_ABI_MINOR,
    .size = sizeof(struct sw_plugin),
    .name = "myplug",
    .version = "1",
    .configure = configure,
};

SW_PLUGIN_DEFINE(desc)
CEOF
# shellcheck disable=SC2086
$SW_CC -std=gnu11 -Wall -Wextra -Werror -shared -fPIC -o "$tmp/myplug.so" \
    -I"$dest$SW_INCLUDEDIR" "$tmp/myplug.c" >"$tmp/cc.log" 2>&1 ||
    { cat "$tmp/cc.log" >&2; fail "myplug.c does not build"; }
cat >"$tmp/plug.conf" <<PEOF
listen 127.0.0.1:8080;
load_plugin myplug $tmp/myplug.so;
load_plugin example $plugdir/example.so;
route { plugin myplug { } plugin example { header X-A b; } return 200 "ok"; }
PEOF
for p in example jwt_auth ratelimit; do
    [ -f "$plugdir/$p.so" ] || fail "missing $plugdir/$p.so"
done
"$sbin" -t -c "$tmp/plug.conf" >"$tmp/plug.log" 2>&1 ||
    { cat "$tmp/plug.log" >&2; fail "the installed daemon does not load plugins"; }
echo "install_test: ok: $(find "$dest" -type f | wc -l) files under DESTDIR"
