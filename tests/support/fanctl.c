/*
 * fanctl.c - control of the fan-out backend and checks of what fan-out
 * clients receive (see fanctl.h).
 *
 * Owns nothing beyond the control connection of each struct
 * sw_test_fanback; every wait is a poll with a deadline (net.h) or a loop
 * of short sleeps bounded by one.
 */
#include "fanctl.h"
#include "support.h"

#include <shockwave/core.h>

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CTL_MS 30000  /* a command's answer: "send" of a flood can take long */
#define POLL_MS 20    /* pause between two polls of a wait */
#define WAIT_MS 10000 /* a metric or a frame the tests wait for */

/* The port number printed after `needle` in the log, or -1. */
static int
log_port(struct sw_test_proc *p, const char *needle)
{
    long at = sw_test_proc_wait_log(p, needle, 0, 10000);
    if (at < 0) {
        return -1;
    }
    char *log = sw_test_proc_log(p);
    int prt = atoi(log + at);
    free(log);
    return prt;
}

bool
sw_test_fanback_start(struct sw_test_fanback *b, const char *protocol)
{
    memset(b, 0, sizeof(*b));
    b->ctl.fd = -1;
    char *argv[] = {(char *)sw_test_env("SW_FANBACK"),
                    protocol != NULL ? "--protocol" : NULL, (char *)protocol,
                    NULL};
    if (!sw_test_proc_spawn(&b->proc, "fanback", argv)) {
        return false;
    }
    b->port = log_port(&b->proc, "listening on 127.0.0.1:");
    b->ctl_port = log_port(&b->proc, "control on 127.0.0.1:");
    if (b->port <= 0 || b->ctl_port <= 0 ||
        !sw_test_conn_open(&b->ctl, b->ctl_port)) {
        sw_test_proc_dump(&b->proc);
        sw_test_proc_stop(&b->proc, 1000);
        return false;
    }
    b->ctl.timeout_ms = CTL_MS;
    return true;
}

void
sw_test_fanback_stop(struct sw_test_fanback *b)
{
    sw_test_conn_close(&b->ctl);
    sw_test_proc_stop(&b->proc, 2000);
}

char *
sw_test_fanback_cmd(struct sw_test_fanback *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof(line) - 1) {
        return NULL;
    }
    line[n++] = '\n';
    if (!sw_test_conn_send(&b->ctl, line, (size_t)n)) {
        return NULL;
    }
    for (;;) {
        char *nl =
            b->ctl.buf != NULL ? memchr(b->ctl.buf, '\n', b->ctl.len) : NULL;
        if (nl != NULL) {
            size_t k = (size_t)(nl - b->ctl.buf);
            char *ans = strndup(b->ctl.buf, k);
            memmove(b->ctl.buf, nl + 1, b->ctl.len - k - 1);
            b->ctl.len -= k + 1;
            return ans;
        }
        if (sw_test_conn_fill(&b->ctl, CTL_MS) <= 0) {
            return NULL;
        }
    }
}

void
sw_test_fanback_ok(struct sw_test_fanback *b, const char *cmd, const char *want)
{
    char *ans = sw_test_fanback_cmd(b, "%s", cmd);
    ck_assert_msg(ans != NULL && strncmp(ans, want, strlen(want)) == 0,
                  "backend command \"%s\": answer \"%s\", expected \"%s...\"",
                  cmd, ans != NULL ? ans : "(none)", want);
    free(ans);
}

long long
sw_test_fanback_stat(struct sw_test_fanback *b, const char *name)
{
    char *ans = sw_test_fanback_cmd(b, "stats");
    ck_assert_msg(ans != NULL, "backend: no answer to stats");
    char key[64];
    snprintf(key, sizeof(key), "%s ", name);
    long long v = -1;
    for (char *p = ans; (p = strstr(p, key)) != NULL; p++) {
        if (p == ans || p[-1] == ' ') {
            v = atoll(p + strlen(key));
            break;
        }
    }
    ck_assert_msg(v >= 0, "backend stats have no \"%s\": %s", name, ans);
    free(ans);
    return v;
}

/* Poll get(arg) until it equals want or timeout_ms passed; returns the
 * last value. */
static long long
poll_until(long long (*get)(void *, const char *), void *arg, const char *name,
           long long want, int timeout_ms)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    long long v = get(arg, name);
    while (v != want && sw_now_ms() < deadline) {
        sw_test_sleep_ms(POLL_MS);
        v = get(arg, name);
    }
    return v;
}

static long long
get_stat(void *arg, const char *name)
{
    return sw_test_fanback_stat(arg, name);
}

long long
sw_test_fanback_wait(struct sw_test_fanback *b, const char *name,
                     long long want, int timeout_ms)
{
    return poll_until(get_stat, b, name, want, timeout_ms);
}

unsigned long long
sw_test_fanback_send(struct sw_test_fanback *b, unsigned n, size_t size,
                     bool frag)
{
    char *ans =
        sw_test_fanback_cmd(b, "send %u %zu%s", n, size, frag ? " frag" : "");
    unsigned long long first = 0, last = 0;
    ck_assert_msg(ans != NULL &&
                      sscanf(ans, "sent %llu %llu", &first, &last) == 2 &&
                      last - first + 1 == n,
                  "backend send %u %zu: answer \"%s\"", n, size,
                  ans != NULL ? ans : "(none)");
    free(ans);
    return first;
}

bool
sw_test_fan_parse(const char *payload, unsigned long long *seq, char *target,
                  size_t cap)
{
    char *end = NULL;
    *seq = strtoull(payload, &end, 10);
    if (end == payload || *end != ' ' || *seq == 0) {
        return false;
    }
    const char *t = end + 1;
    size_t k = strcspn(t, " ");
    if (k == 0 || k >= cap) {
        return false;
    }
    memcpy(target, t, k);
    target[k] = '\0';
    return true;
}

unsigned long long
sw_test_fan_expect(struct sw_test_ws *ws, const char *who,
                   unsigned long long first, unsigned n, const char *target,
                   size_t min_size, int timeout_ms)
{
    unsigned long long want = first;
    for (unsigned i = 0; i < n; i++) {
        struct sw_test_ws_msg m;
        int rc = sw_test_ws_recv_msg(ws, &m, timeout_ms);
        ck_assert_msg(rc == 1,
                      "%s: message %u of %u (SEQ %llu expected): rc %d (%s)",
                      who, i + 1, n, want, rc, ws->why ? ws->why : "-");
        ck_assert_msg(m.opcode == SW_WS_OP_TEXT,
                      "%s: message %u of %u: opcode %u (close code %u), "
                      "expected a text message",
                      who, i + 1, n, m.opcode, m.close_code);
        unsigned long long s;
        char t[512];
        ck_assert_msg(
            sw_test_fan_parse((const char *)m.payload, &s, t, sizeof(t)),
            "%s: message %u is not \"SEQ TARGET\": %.60s", who, i + 1,
            (const char *)m.payload);
        ck_assert_msg(want == 0 || s == want,
                      "%s: message %u of %u has SEQ %llu, expected %llu "
                      "(order or loss)",
                      who, i + 1, n, s, want);
        ck_assert_msg(target == NULL || strcmp(t, target) == 0,
                      "%s: message SEQ %llu came from the upstream of %s, "
                      "expected %s (channels mixed)",
                      who, s, t, target);
        ck_assert_msg(m.frames == 1,
                      "%s: message SEQ %llu came in %u frames, expected one",
                      who, s, m.frames);
        ck_assert_msg(m.len >= min_size,
                      "%s: message SEQ %llu has %llu bytes, expected at "
                      "least %zu",
                      who, s, (unsigned long long)m.len, min_size);
        sw_test_ws_msg_free(&m);
        want = s + 1;
    }
    return want - 1;
}

static long long
get_metric(void *arg, const char *name)
{
    return sw_test_metric(*(int *)arg, name);
}

long long
sw_test_fan_metric_wait(int admin_port, const char *name, long long want,
                        int timeout_ms)
{
    return poll_until(get_metric, &admin_port, name, want, timeout_ms);
}

long long
sw_test_fan_metric(struct sw_test_fan_rig *r, const char *name)
{
    return sw_test_metric(r->gw.admin_port, name);
}

void
sw_test_fan_metric_is_at(struct sw_test_fan_rig *r, const char *name,
                         long long want, const char *file, int line)
{
    long long v =
        sw_test_fan_metric_wait(r->gw.admin_port, name, want, WAIT_MS);
    ck_assert_msg(v == want, "%s:%d: %s is %lld, expected %lld", file, line,
                  name, v, want);
}

void
sw_test_fan_expect_pong(struct sw_test_ws *ws, const char *payload)
{
    struct sw_test_ws_frame f;
    int rc = sw_test_ws_recv(ws, &f, WAIT_MS);
    ck_assert_msg(rc == 1, "pong: rc %d (%s)", rc, ws->why ? ws->why : "-");
    ck_assert_msg(f.opcode == SW_WS_OP_PONG, "opcode %u, expected a pong",
                  f.opcode);
    ck_assert_str_eq((const char *)f.payload, payload);
    sw_test_ws_frame_free(&f);
}

void
sw_test_fan_leave(struct sw_test_ws *ws)
{
    int code = sw_test_ws_close_handshake(ws, 1000, WAIT_MS);
    ck_assert_msg(code == 1000, "close handshake: %d, expected 1000", code);
    sw_test_ws_free(ws);
}

void
sw_test_fan_join(struct sw_test_ws *ws, int port, const char *path,
                 const char *extra)
{
    int st = sw_test_ws_open(ws, port, "app.example", path, extra);
    ck_assert_msg(st == 101, "join %s: status %d (%s)\n%s", path, st,
                  ws->why ? ws->why : "-", ws->head ? ws->head : "");
}

void
sw_test_fan_rig_start(struct sw_test_fan_rig *r, const char *conf_name,
                      const char *const *kv)
{
    memset(r, 0, sizeof(*r));
    ck_assert_msg(sw_test_fanback_start(&r->feed, NULL),
                  "fanback (feed) did not start");
    ck_assert_msg(sw_test_fanback_start(&r->chat, "chat"),
                  "fanback (chat) did not start");
    const char *all[32];
    size_t n = 0;
    all[n++] = "FEED";
    all[n++] = sw_test_itoa(r->feed.port);
    all[n++] = "CHAT";
    all[n++] = sw_test_itoa(r->chat.port);
    all[n++] = "DEAD";
    all[n++] = sw_test_itoa(sw_test_free_port());
    for (size_t i = 0; kv != NULL && kv[i] != NULL && n + 2 < 32; i += 2) {
        all[n++] = kv[i];
        all[n++] = kv[i + 1];
    }
    all[n] = NULL;
    ck_assert_msg(sw_test_gw_start(&r->gw, conf_name, all),
                  "shockwave did not start with %s", conf_name);
}

void
sw_test_fan_rig_stop(struct sw_test_fan_rig *r)
{
    int st = 0;
    bool clean = sw_test_gw_stop_clean(&r->gw, &st);
    sw_test_fanback_stop(&r->feed);
    sw_test_fanback_stop(&r->chat);
    ck_assert_msg(clean, "shockwave did not exit 0 on SIGTERM (status 0x%x)",
                  st);
}

/* The fixture's rig and what it starts with (one per test program). */
static struct sw_test_fan_rig fixture_rig;
static const char *fixture_conf;
static const char *const *fixture_kv;

static void
fixture_setup(void)
{
    sw_test_fan_rig_start(&fixture_rig, fixture_conf, fixture_kv);
}

static void
fixture_teardown(void)
{
    sw_test_fan_rig_stop(&fixture_rig);
}

struct sw_test_fan_rig *
sw_test_fan_fixture(TCase *tc, const char *conf_name, const char *const *kv)
{
    fixture_conf = conf_name;
    fixture_kv = kv;
    tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
    return &fixture_rig;
}
