/*
 * plugin_test.c - the plugin host through the real daemon, driven by the
 * probe plugin (tests/plugins/probe.c), over HTTP; plugin_ws_test.c does
 * the WebSocket hooks.
 *
 *   client --GET--> shockwave --on_request: edits--> swload echo "one"
 *                      |                 (it lists the headers it got)
 *                      +-- /pick/: on_upstream_pick --> "two", not "one"
 *                      +-- /ans/deny: answered, the fake never sees it
 *                      +-- /plain/: no plugin, nothing changes
 *
 * tests/conf/plugin.conf holds the routes; plugin_load.conf,
 * plugin_block.conf and plugin_unloaded.conf are files that `shockwave -t`
 * must refuse, at the positions asserted below. Covered: request header
 * set/add/remove as the upstream sees them, every request accessor,
 * per-connection state (per route) and per-worker state, response
 * headers, an answer with keep-alive after it, the server pick (and a
 * picked server that is down), access log fields (text and JSON), an ABI
 * major refused and a newer minor accepted, directive errors with
 * positions, a reload that changes a plugin block while older connections
 * keep their snapshot's, and a reload that a plugin's configure refuses.
 */
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WAIT_MS 5000

static struct sw_test_proc be[2]; /* swload echo "one", "two" */
static int be_port[2];            /* their ports */
static struct sw_test_fake fake;  /* the answer route's upstream */
static struct sw_test_gw gw;      /* the daemon */

static const char fake_reply[] = "HTTP/1.1 200 OK\r\n"
                                 "Content-Length: 5\r\n\r\n"
                                 "fake\n";

/* plugin.conf's values: the probe build, its set_header value, the access
 * log. The WebSocket recorder is not used here: the fake stands in. */
static const char **
vars(const char *probe, const char *setval, const char *access)
{
    static const char *kv[15];
    const char *v[] = {"PROBE",  probe,
                       "SETVAL", setval,
                       "ACCESS", access,
                       "B1",     sw_test_itoa(be_port[0]),
                       "B2",     sw_test_itoa(be_port[1]),
                       "FAKE",   sw_test_itoa(fake.port),
                       "REC",    sw_test_itoa(fake.port),
                       NULL};
    memcpy(kv, v, sizeof(v));
    /* sw_test_gw keeps values of up to 127 bytes */
    ck_assert_msg(strlen(probe) < 128, "probe path too long: %s", probe);
    return kv;
}

static void
setup(void)
{
    ck_assert(sw_test_backend_start(&be[0], "one", &be_port[0]));
    ck_assert(sw_test_backend_start(&be[1], "two", &be_port[1]));
    ck_assert(sw_test_fake_start(&fake, SW_TEST_FAKE_KEEP, fake_reply,
                                 strlen(fake_reply)));
    ck_assert(sw_test_gw_start(&gw, "plugin.conf",
                               vars(sw_test_env("SW_PROBE"), "v1", "stderr")));
}

static void
teardown(void)
{
    int st;
    ck_assert(sw_test_gw_stop_clean(&gw, &st));
    sw_test_fake_free(&fake);
    sw_test_proc_stop(&be[0], 2000);
    sw_test_proc_stop(&be[1], 2000);
}

/* `METHOD target` on c with Host probe.example and `extra` header lines;
 * the answer must be 200. */
static void
request(struct sw_test_conn *c, const char *method, const char *target,
        const char *extra, struct sw_test_resp *r)
{
    char req[2048];
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: probe.example\r\n%s\r\n", method, target,
             extra != NULL ? extra : "");
    ck_assert_int_eq(sw_test_conn_request(c, req, r), 1);
    ck_assert_msg(r->status == 200, "%s %s: status %d\n%s", method, target,
                  r->status, r->head);
}

/* The same on a connection of its own. */
static void
request_once(const char *target, const char *extra, struct sw_test_resp *r)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    request(&c, "GET", target, extra, r);
    sw_test_conn_close(&c);
}

/* The upstream got exactly one `name`, valued `want`. */
static void
expect_echo(const struct sw_test_resp *r, const char *name, const char *want)
{
    sw_test_expect_echo(r->body, name, want);
}

static long
echo_long(const struct sw_test_resp *r, const char *name)
{
    char *v = sw_test_echo_header(r->body, name);
    ck_assert_msg(v != NULL, "no %s upstream:\n%s", name, r->body);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static long long
probe_metric(const char *name)
{
    char full[128];
    snprintf(full, sizeof(full), "shockwave_plugin_probe_%s", name);
    return sw_test_metric(gw.admin_port, full);
}

/* The daemon's log line after `mark` that holds `needle` (waited for). */
static char *
log_line(long mark, const char *needle)
{
    char *line = sw_test_proc_log_line(&gw.proc, mark, needle, WAIT_MS);
    ck_assert_msg(line != NULL, "no log line with %s", needle);
    return line;
}

static bool
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* ---- on_request ---------------------------------------------------------- */

/* What the client sends on the probed route, and the plugin-less one. */
static const char client_headers[] = "X-Probe-Set: client-1\r\n"
                                     "X-Probe-Set: client-2\r\n"
                                     "X-Drop-Me: a\r\n"
                                     "X-Drop-Me: b\r\n"
                                     "Cookie: a=1; sid=s3cr3t; b=2\r\n"
                                     "X-Kept: same\r\n";

START_TEST(request_edits_reach_upstream)
{
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "%sX-Probe-Seen: forged\r\nX-Probe-Conn-Requests: 99\r\n",
             client_headers);
    struct sw_test_resp r;
    request_once("/q/path?x=1&who=me", extra, &r);
    /* set: one header, the plugin's; the client's copies do not pass */
    expect_echo(&r, "X-Probe-Set", "v1");
    expect_echo(&r, "X-Probe-Conn-Requests", "1");
    /* remove: every copy gone */
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Drop-Me"), 0);
    /* add, from the query argument and the cookie */
    expect_echo(&r, "X-Probe-Arg", "me");
    expect_echo(&r, "X-Probe-Cookie", "s3cr3t");
    expect_echo(&r, "X-Kept", "same");
    /* the accessors, as the probe read them */
    expect_echo(&r, "X-Probe-Seen",
                "GET /q/path q=x=1&who=me host=probe.example from=127.0.0.1 "
                "route=probed first=1");
    /* refused edits (a bad name, a CRLF in a value) were not written */
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Ok"), 0);
    ck_assert_int_eq(sw_test_echo_count(r.body, "Injected"), 0);
    /* the response header, once, after the upstream's own */
    ck_assert_uint_eq(sw_test_resp_header_count(&r, "X-Probe-Resp"), 1);
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Probe-Resp"), "r1");
    ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "one");
    sw_test_resp_free(&r);
    ck_assert_int_eq(probe_metric("requests_total"), 1);
}
END_TEST

/* Conn state counts this connection's requests and restarts on another;
 * is_first holds for the first request only; the method is the request's. */
START_TEST(conn_state_per_connection)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    static const char *const methods[] = {"GET", "DELETE", "OPTIONS"};
    for (int i = 0; i < 3; i++) {
        char target[32];
        snprintf(target, sizeof(target), "/k/%d", i + 1);
        request(&c, methods[i], target, NULL, &r);
        ck_assert_int_eq(echo_long(&r, "X-Probe-Conn-Requests"), i + 1);
        char seen[160];
        snprintf(seen, sizeof(seen),
                 "%s /k/%d q= host=probe.example from=127.0.0.1 "
                 "route=probed first=%d",
                 methods[i], i + 1, i == 0);
        expect_echo(&r, "X-Probe-Seen", seen);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
    request_once("/k/again", NULL, &r);
    ck_assert_int_eq(echo_long(&r, "X-Probe-Conn-Requests"), 1);
    ck_assert_ptr_nonnull(strstr(r.body, "first=1"));
    sw_test_resp_free(&r);
}
END_TEST

/* A connection's state belongs to a route: a request on another route in
 * between leaves it, and the next one on the route starts afresh. */
START_TEST(conn_state_per_route)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    static const char *const targets[] = {"/r/1", "/r/2", "/plain/x", "/r/3"};
    static const char *const counts[] = {"1", "2", NULL, "1"};
    for (int i = 0; i < 4; i++) {
        request(&c, "GET", targets[i], NULL, &r);
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "one");
        if (counts[i] != NULL) {
            expect_echo(&r, "X-Probe-Conn-Requests", counts[i]);
            ck_assert_ptr_nonnull(
                strstr(r.body, i == 1 ? "first=0" : "first=1"));
        } else {
            ck_assert_int_eq(sw_test_echo_count(r.body, "X-Probe-Seen"), 0);
        }
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
}
END_TEST

/* Worker state outlives connections: with 2 workers, 6 connections of one
 * request each put at least 3 on one worker, whose count then reads 3 or
 * more, and no count repeats more than once per worker. */
START_TEST(worker_state_across_connections)
{
    int seen[7] = {0};
    long max = 0;
    for (int i = 0; i < 6; i++) {
        struct sw_test_resp r;
        request_once("/w", NULL, &r);
        ck_assert_int_eq(echo_long(&r, "X-Probe-Conn-Requests"), 1);
        long n = echo_long(&r, "X-Probe-Worker-Requests");
        ck_assert_msg(n >= 1 && n <= 6, "worker count %ld", n);
        seen[n]++;
        max = n > max ? n : max;
        sw_test_resp_free(&r);
    }
    ck_assert_msg(max >= 3, "worker counts never passed %ld", max);
    for (int n = 1; n <= 6; n++) {
        ck_assert_msg(seen[n] <= 2, "worker count %d seen %d times", n,
                      seen[n]);
    }
}
END_TEST

/* ---- answers ------------------------------------------------------------- */

START_TEST(answer_keeps_connection)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "GET /ans/deny HTTP/1.1\r\n"
                                          "Host: probe.example\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(sw_test_resp_header(&r, "WWW-Authenticate"),
                     "Probe realm=test");
    ck_assert_str_eq(r.body, "no");
    ck_assert_ptr_null(sw_test_resp_header(&r, "X-Backend"));
    sw_test_resp_free(&r);
    /* the same connection carries the next request to the upstream */
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "GET /ans/ok HTTP/1.1\r\n"
                                          "Host: probe.example\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "fake\n");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
    char *rx = sw_test_fake_rx(&fake, NULL);
    ck_assert_msg(strstr(rx, "GET /ans/ok ") != NULL, "upstream got:\n%s", rx);
    ck_assert_msg(strstr(rx, "/ans/deny") == NULL, "upstream got:\n%s", rx);
    free(rx);
    ck_assert_int_eq(probe_metric("requests_total"), 2);
}
END_TEST

START_TEST(answer_to_head_has_no_body)
{
    /* RFC 9110 9.3.2: HEAD gets the head alone. Pipelined behind it, the
     * next response must start right after the first head: a body there
     * would be read as the start of the next response. */
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert(sw_test_conn_sendf(&c, "HEAD /ans/deny HTTP/1.1\r\n"
                                     "Host: probe.example\r\n\r\n"
                                     "GET /ans/deny HTTP/1.1\r\n"
                                     "Host: probe.example\r\n\r\n"));
    const char *second = NULL;
    while (second == NULL || strstr(second, "\r\n\r\nno") == NULL) {
        ck_assert_msg(sw_test_conn_fill(&c, 5000) > 0, "got:\n%.*s", (int)c.len,
                      c.buf);
        const char *end = memmem(c.buf, c.len, "\r\n\r\n", 4);
        second = end != NULL ? end + 4 : NULL;
        if (second != NULL && (size_t)(c.buf + c.len - second) >= 9) {
            ck_assert_msg(strncmp(second, "HTTP/1.1 ", 9) == 0,
                          "a body after the HEAD answer:\n%.*s", (int)c.len,
                          c.buf);
        } else {
            second = NULL;
        }
    }
    ck_assert(strncmp(c.buf, "HTTP/1.1 401 ", 13) == 0);
    ck_assert(strstr(c.buf, "Content-Length: 2\r\n") != NULL);
    sw_test_conn_close(&c);
}
END_TEST

/* ---- on_upstream_pick ---------------------------------------------------- */

START_TEST(pick_second_server)
{
    for (int i = 0; i < 6; i++) {
        struct sw_test_resp r;
        request_once("/pick/x", NULL, &r);
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "two");
        sw_test_resp_free(&r);
    }
    ck_assert_int_eq(probe_metric("picks_total"), 6);
}
END_TEST

/* The picked server refuses connections: the retry skips it (the plugin's
 * choice is tried once) and the balancer's server answers. */
START_TEST(pick_of_down_server_falls_back)
{
    sw_test_proc_stop(&be[1], 2000);
    for (int i = 0; i < 3; i++) {
        struct sw_test_resp r;
        request_once("/pick/x", NULL, &r);
        ck_assert_str_eq(sw_test_resp_header(&r, "X-Backend"), "one");
        sw_test_resp_free(&r);
    }
}
END_TEST

/* ---- on_log -------------------------------------------------------------- */

START_TEST(log_field_text)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_resp r;
    request_once("/logged", NULL, &r);
    sw_test_resp_free(&r);
    char *line = log_line(mark, "\"GET /logged HTTP/1.1\" 200 ");
    ck_assert_msg(ends_with(line, " probe=ok"), "access log: %s", line);
    free(line);
}
END_TEST

START_TEST(log_field_json)
{
    sw_test_gw_stop(&gw);
    ck_assert(
        sw_test_gw_start(&gw, "plugin.conf",
                         vars(sw_test_env("SW_PROBE"), "v1", "stderr json")));
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_resp r;
    request_once("/jlogged", NULL, &r);
    sw_test_resp_free(&r);
    request_once("/plain/jlogged", NULL, &r);
    sw_test_resp_free(&r);
    char *line = log_line(mark, "\"request\":\"GET /jlogged HTTP/1.1\"");
    ck_assert_msg(strstr(line, ",\"probe\":\"ok\"") != NULL &&
                      ends_with(line, "}"),
                  "access log: %s", line);
    free(line);
    line = log_line(mark, "\"request\":\"GET /plain/jlogged HTTP/1.1\"");
    ck_assert_msg(strstr(line, "\"probe\"") == NULL, "access log: %s", line);
    free(line);
}
END_TEST

/* ---- a route without plugins --------------------------------------------- */

START_TEST(route_without_plugin_untouched)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_resp r;
    request_once("/plain/x?who=me", client_headers, &r);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Probe-Set"), 2);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Drop-Me"), 2);
    static const char *const none[] = {"X-Probe-Seen", "X-Probe-Conn-Requests",
                                       "X-Probe-Worker-Requests", "X-Probe-Arg",
                                       "X-Probe-Cookie"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        ck_assert_msg(sw_test_echo_count(r.body, none[i]) == 0, "%s:\n%s",
                      none[i], r.body);
    }
    ck_assert_ptr_null(sw_test_resp_header(&r, "X-Probe-Resp"));
    sw_test_resp_free(&r);
    char *line = log_line(mark, "\"GET /plain/x?who=me HTTP/1.1\" 200 ");
    ck_assert_msg(strstr(line, "probe=") == NULL, "access log: %s", line);
    free(line);
    ck_assert_int_eq(probe_metric("requests_total"), 0);
}
END_TEST

/* ---- ABI ----------------------------------------------------------------- */

/* The newer minor's larger descriptor loads, and its hooks run. */
START_TEST(abi_newer_minor_accepted)
{
    sw_test_gw_stop(&gw);
    ck_assert(sw_test_gw_start(
        &gw, "plugin.conf",
        vars(sw_test_env("SW_PROBE_MINOR"), "minor", "stderr")));
    ck_assert_int_ge(sw_test_proc_log_count(&gw.proc, 0, "plugin probe 1.0",
                                            "(ABI 1.1)", NULL),
                     1);
    struct sw_test_resp r;
    request_once("/m", NULL, &r);
    expect_echo(&r, "X-Probe-Set", "minor");
    expect_echo(&r, "X-Probe-Conn-Requests", "1");
    sw_test_resp_free(&r);
}
END_TEST

/* ---- reload -------------------------------------------------------------- */

/* Render plugin.conf with set_header value `setval`, SIGHUP, and wait for
 * `outcome` in the log; returns the log mark from before the signal. */
static long
reload(const char *setval, const char *outcome)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_gw_render(
        &gw, "plugin.conf", vars(sw_test_env("SW_PROBE"), setval, "stderr")));
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, outcome, mark, WAIT_MS) >= 0,
                  "no \"%s\" after SIGHUP", outcome);
    return mark;
}

/*
 * SIGHUP with another set_header value: new connections get the new one, a
 * keep-alive connection opened before keeps its snapshot's, a WebSocket
 * opened before keeps relaying (and its plugin still drops), and the
 * counters keep counting under the same names.
 */
START_TEST(reload_changes_block)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    request(&c, "GET", "/before", NULL, &r);
    expect_echo(&r, "X-Probe-Set", "v1");
    sw_test_resp_free(&r);
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "probe.example", "/ws/before");
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "one", 3, WAIT_MS);

    reload("v2", "reloaded");

    request_once("/after", NULL, &r);
    expect_echo(&r, "X-Probe-Set", "v2");
    sw_test_resp_free(&r);
    request(&c, "GET", "/old-conn", NULL, &r);
    expect_echo(&r, "X-Probe-Set", "v1");
    ck_assert_int_eq(echo_long(&r, "X-Probe-Conn-Requests"), 2);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);

    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "skip", 4));
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "two", 3, WAIT_MS);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    /* /before, the upgrade, /after, /old-conn */
    ck_assert_int_eq(probe_metric("requests_total"), 4);
}
END_TEST

/* A block whose configure refuses fails the reload, at its position; the
 * old snapshot stays, its plugin states intact. */
START_TEST(reload_refused_keeps_old)
{
    long mark = reload("v3; fail_configure \"not now\"", "reload failed");
    char *line =
        sw_test_proc_log_line(&gw.proc, mark, "plugin probe: not now", WAIT_MS);
    ck_assert_ptr_nonnull(line);
    /* the set_header line, past "set_header X-Probe-Set v3; " */
    char *conf = NULL;
    ck_assert(sw_test_run((char *[]){"/bin/cat", gw.conf_path, NULL}, 5000,
                          &conf) == 0);
    char *sh = strstr(conf, "set_header X-Probe-Set v3;");
    ck_assert_ptr_nonnull(sh);
    char at[600];
    snprintf(at, sizeof(at), "%s:%zu:36: plugin probe: not now", gw.conf_path,
             sw_test_count(conf, (size_t)(sh - conf), "\n") + 1);
    free(conf);
    ck_assert_msg(strstr(line, at) != NULL, "want %s in: %s", at, line);
    free(line);
    struct sw_test_resp r;
    request_once("/kept", NULL, &r);
    expect_echo(&r, "X-Probe-Set", "v1");
    sw_test_resp_free(&r);
    reload("v4", "reloaded");
    request_once("/taken", NULL, &r);
    expect_echo(&r, "X-Probe-Set", "v4");
    sw_test_resp_free(&r);
}
END_TEST

/* ---- shockwave -t -------------------------------------------------------- */

static char conf_path[768]; /* the rendered file under test */

/* Render tests/conf/<name> with `probe`, run `shockwave -t` on it and
 * check its verdict: exit 0 and "test is successful" when `ok`, else exit
 * 1 and "test failed". Returns its output (malloc'd). */
static char *
run_t(const char *name, const char *probe, bool ok)
{
    /* where sw_test_conf_check renders it */
    snprintf(conf_path, sizeof(conf_path), "%s/check-%s", sw_test_tmpdir(),
             name);
    const char *kv[] = {"PORT", "18080", "B1", "19001", "PROBE", probe, NULL};
    char *out;
    int rc = sw_test_conf_check(name, kv, &out);
    ck_assert_msg(rc == (ok ? 0 : 1), "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, ok ? "test is successful" : "test failed") !=
                      NULL,
                  "%s", out);
    ck_assert_ptr_null(strstr(out, ok ? "test failed" : "test is successful"));
    return out;
}

/* The output has a line "<file>:<pos>: <msg>..." holding `more` too. */
static void
expect_error(const char *out, const char *pos, const char *msg,
             const char *more)
{
    char want[1024];
    snprintf(want, sizeof(want), "%s:%s: %s", conf_path, pos, msg);
    const char *hit = strstr(out, want);
    ck_assert_msg(hit != NULL, "missing \"%s\" in:\n%s", want, out);
    if (more != NULL) {
        size_t n = strcspn(hit, "\n");
        const char *m = strstr(hit, more);
        ck_assert_msg(m != NULL && m < hit + n, "no \"%s\" on the line:\n%.*s",
                      more, (int)n, hit);
    }
}

START_TEST(abi_major_refused)
{
    const char *bad = sw_test_env("SW_PROBE_BADABI");
    char *out = run_t("plugin_load.conf", bad, false);
    char msg[700];
    snprintf(msg, sizeof(msg), "load_plugin probe: %s: ", bad);
    expect_error(out, "5:1", msg, "ABI major version mismatch (plugin ABI 99.");
    free(out);
    /* and the daemon does not start with it */
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-R", "-c", conf_path,
                    NULL};
    int rc = sw_test_run(argv, 10000, &out);
    ck_assert_msg(rc > 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "ABI major version mismatch") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "ready"));
    free(out);
}
END_TEST

START_TEST(abi_minor_passes_test)
{
    char *out = run_t("plugin_load.conf", sw_test_env("SW_PROBE_MINOR"), true);
    free(out);
}
END_TEST

START_TEST(load_missing_file)
{
    char missing[700];
    snprintf(missing, sizeof(missing), "%s/no-such-probe.so", sw_test_tmpdir());
    char *out = run_t("plugin_load.conf", missing, false);
    /* dlerror's words, naming the file */
    expect_error(out, "5:1",
                 "load_plugin probe: ", "cannot open shared object file");
    ck_assert_ptr_nonnull(strstr(out, "no-such-probe.so"));
    free(out);
}
END_TEST

START_TEST(block_errors_with_positions)
{
    char *out = run_t("plugin_block.conf", sw_test_env("SW_PROBE"), false);
    expect_error(out, "13:9", "unknown directive \"set_headr\" in plugin probe",
                 NULL);
    expect_error(out, "14:9",
                 "plugin probe: \"pick\" takes 1 to 1 arguments, got 2", NULL);
    expect_error(out, "15:7",
                 "plugin probe: \"answer\" takes 3 to 3 arguments, got 2",
                 NULL);
    /* configure's own error, at the directive it names */
    expect_error(out, "23:9", "plugin probe: refused right here", NULL);
    expect_error(out, "31:9", "plugin probe: duplicate \"pick\" (line 30)",
                 NULL);
    free(out);
}
END_TEST

START_TEST(block_without_load)
{
    char *out = run_t("plugin_unloaded.conf", "unused", false);
    expect_error(out, "10:7", "plugin \"probe\" is not loaded", NULL);
    free(out);
}
END_TEST

static Suite *
plugin_suite(void)
{
    Suite *s = suite_create("plugin");
    TCase *tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, request_edits_reach_upstream);
    tcase_add_test(tc, conn_state_per_connection);
    tcase_add_test(tc, conn_state_per_route);
    tcase_add_test(tc, worker_state_across_connections);
    tcase_add_test(tc, answer_keeps_connection);
    tcase_add_test(tc, answer_to_head_has_no_body);
    tcase_add_test(tc, pick_second_server);
    tcase_add_test(tc, pick_of_down_server_falls_back);
    tcase_add_test(tc, log_field_text);
    tcase_add_test(tc, log_field_json);
    tcase_add_test(tc, route_without_plugin_untouched);
    tcase_add_test(tc, abi_newer_minor_accepted);
    tcase_add_test(tc, reload_changes_block);
    tcase_add_test(tc, reload_refused_keeps_old);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("conf_test");
    tcase_set_timeout(tt, 60);
    tcase_add_test(tt, abi_major_refused);
    tcase_add_test(tt, abi_minor_passes_test);
    tcase_add_test(tt, load_missing_file);
    tcase_add_test(tt, block_errors_with_positions);
    tcase_add_test(tt, block_without_load);
    suite_add_tcase(s, tt);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(plugin_suite());
}
