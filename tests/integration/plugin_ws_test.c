/*
 * plugin_ws_test.c - the plugin host's WebSocket side through the real
 * daemon, driven by the probe plugin (tests/plugins/probe.c) on
 * tests/conf/plugin.conf; plugin_test.c does HTTP.
 *
 *   wsclient --upgrade--> shockwave --on_request, on_upgrade--> upstream
 *            <--101 + X-Probe-Resp--   (edits in the upgrade request)
 *            --frames--> on_ws_message: CONTINUE, DROP ("skip"),
 *                        CLOSE ("bye": 4001 to the client, 1001 upstream)
 *            on_ws_open / on_ws_close: counters in /metrics
 *            on_log: a field on the session's access log line
 *
 * Also: an upgrade answered by on_request, a parked WebSocket that keeps
 * its plugins' side, and a WebSocket route without plugins.
 *
 * Two upstreams: `swload echo` (echoes messages) and a scripted fake whose
 * canned 101 holds the accept for a fixed key and which records every
 * byte, so the upgrade head and the close the gateway sent it can be read.
 */
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 5000
#define FIXED_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static struct sw_test_proc be;  /* swload echo "one" */
static int be_port;             /* its port */
static struct sw_test_fake rec; /* canned 101, then records */
static char rec_reply[512];     /* its answer */
static struct sw_test_gw gw;    /* the daemon */

static void
start_gw(const char *access)
{
    const char *port = sw_test_itoa(be_port);
    const char *probe = sw_test_env("SW_PROBE");
    ck_assert_msg(strlen(probe) < 128, "probe path too long: %s", probe);
    const char *kv[] = {"PROBE",  probe,
                        "SETVAL", "v1",
                        "ACCESS", access,
                        "B1",     port,
                        "B2",     port,
                        "FAKE",   port,
                        "REC",    sw_test_itoa(rec.port),
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "plugin.conf", kv));
}

static void
setup(void)
{
    sw_test_ws_answer_101(rec_reply, sizeof(rec_reply), SW_STR(FIXED_KEY),
                          NULL);
    ck_assert(sw_test_backend_start(&be, "one", &be_port));
    ck_assert(sw_test_fake_start(&rec, SW_TEST_FAKE_STALL, rec_reply,
                                 strlen(rec_reply)));
    start_gw("stderr");
}

static void
teardown(void)
{
    int st;
    ck_assert(sw_test_gw_stop_clean(&gw, &st));
    sw_test_fake_free(&rec);
    sw_test_proc_stop(&be, 2000);
}

static long long
probe_metric(const char *name)
{
    char full[128];
    snprintf(full, sizeof(full), "shockwave_plugin_probe_%s", name);
    return sw_test_metric(gw.admin_port, full);
}

/* Wait for a probe counter to reach `want` (hooks run on the workers). */
static void
expect_metric(const char *name, long long want)
{
    long long v = -1;
    for (int i = 0; i < WAIT_MS / 20 && v != want; i++) {
        v = probe_metric(name);
        if (v != want) {
            sw_test_sleep_ms(20);
        }
    }
    ck_assert_msg(v == want, "shockwave_plugin_probe_%s: %lld, want %lld", name,
                  v, want);
}

/* Occurrences of the header line "Name: value" in a raw head. */
static size_t
head_count(const char *head, const char *line)
{
    char needle[256];
    snprintf(needle, sizeof(needle), "\r\n%s\r\n", line);
    return sw_test_count(head, strlen(head), needle);
}

/* The upgrade request the recorder got (its head, NUL-terminated). */
static char *
rec_head(void)
{
    char *rx = NULL;
    for (int i = 0; i < WAIT_MS / 20; i++) {
        free(rx);
        rx = sw_test_fake_rx(&rec, NULL);
        char *eoh = strstr(rx, "\r\n\r\n");
        if (eoh != NULL) {
            eoh[2] = '\0';
            return rx;
        }
        sw_test_sleep_ms(20);
    }
    ck_abort_msg("no upgrade request at the recorder:\n%s", rx);
    return NULL;
}

/* The access log line of the session of client port `port`. */
static char *
session_line(long mark, int port)
{
    char needle[96];
    /* the session line: "ws CLIENT -> UPSTREAM 12ms ..." (no colon after
     * the upstream, unlike the relay's other lines) */
    snprintf(needle, sizeof(needle), "ws 127.0.0.1:%d -> 127.0.0.1:%d ", port,
             be_port);
    char *line = sw_test_proc_log_line(&gw.proc, mark, needle, WAIT_MS);
    ck_assert_msg(line != NULL, "no access log line \"%s\"", needle);
    return line;
}

/* A session on `path`: the text message `msg` echoed, then close 1000.
 * Returns the client's port; *head (when not NULL) gets the 101's head. */
static int
short_session(const char *path, const char *msg, char **head)
{
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "probe.example", path);
    int port = sw_test_conn_local_port(&ws.conn);
    if (head != NULL) {
        *head = strdup(ws.head);
    }
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, msg, strlen(msg), WAIT_MS);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    return port;
}

/* ---- on_request and on_upgrade in the upgrade request -------------------- */

START_TEST(upgrade_request_edited)
{
    struct sw_test_ws ws;
    int st = sw_test_ws_open_key(&ws, gw.port, "probe.example", "/rec/x",
                                 "X-Probe-In: hello\r\n"
                                 "X-Probe-Upgrade: forged\r\n",
                                 FIXED_KEY);
    ck_assert_msg(st == 101, "upgrade: %d (%s)", st, ws.why ? ws.why : "-");
    /* resp_header on the 101 */
    ck_assert_msg(head_count(ws.head, "X-Probe-Resp: on101") == 1, "%s",
                  ws.head);
    char *head = rec_head();
    /* on_upgrade's set replaced the client's copy */
    ck_assert_msg(head_count(head, "X-Probe-Upgrade: yes") == 1 &&
                      strstr(head, "forged") == NULL,
                  "%s", head);
    /* the variable on_request set, read back by on_upgrade */
    ck_assert_msg(head_count(head, "X-Probe-Var: hello") == 1, "%s", head);
    /* on_request ran first, on the same request */
    ck_assert_msg(head_count(head, "X-Probe-Seen: GET /rec/x q= "
                                   "host=probe.example from=127.0.0.1 "
                                   "route=rec first=1") == 1,
                  "%s", head);
    ck_assert_msg(head_count(head, "X-Probe-Conn-Requests: 1") == 1, "%s",
                  head);
    free(head);
    sw_test_ws_free(&ws);
    expect_metric("upgrades_total", 1);
}
END_TEST

/* on_request answers an upgrade: the client gets the answer, not a 101,
 * and the upstream is never even connected to. */
START_TEST(upgrade_answered)
{
    struct sw_test_ws ws;
    int st = sw_test_ws_open_key(&ws, gw.port, "probe.example", "/rec/deny",
                                 NULL, FIXED_KEY);
    ck_assert_msg(st == 403, "upgrade answered %d\n%s", st,
                  ws.head != NULL ? ws.head : "");
    ck_assert_msg(strstr(ws.head, "X-Probe-Resp") == NULL, "%s", ws.head);
    sw_test_ws_free(&ws);
    ck_assert_int_eq(probe_metric("requests_total"), 1);
    ck_assert_int_eq(probe_metric("upgrades_total"), 0);
    ck_assert_int_eq(probe_metric("ws_opens_total"), 0);
    ck_assert_int_eq(atomic_load(&rec.accepts), 0);
}
END_TEST

/* ---- on_ws_open, on_ws_close --------------------------------------------- */

START_TEST(session_hooks_counted)
{
    ck_assert_int_eq(probe_metric("upgrades_total"), 0);
    ck_assert_int_eq(probe_metric("ws_opens_total"), 0);
    ck_assert_int_eq(probe_metric("ws_closes_total"), 0);
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "probe.example", "/ws/c");
    ck_assert_msg(head_count(ws.head, "X-Probe-Resp: r1") == 1, "%s", ws.head);
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "hi", 2, WAIT_MS);
    expect_metric("upgrades_total", 1);
    expect_metric("ws_opens_total", 1);
    ck_assert_int_eq(probe_metric("ws_closes_total"), 0);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 4100, WAIT_MS), 4100);
    sw_test_ws_free(&ws);
    expect_metric("ws_closes_total", 1);
    /* on_ws_close read the code that ended the session */
    char *line =
        sw_test_proc_log_line(&gw.proc, mark, "ws closed with ", WAIT_MS);
    ck_assert_msg(line != NULL && strstr(line, "plugin probe: ") != NULL &&
                      strstr(line, "ws closed with 4100") != NULL,
                  "log: %s", line != NULL ? line : "(none)");
    free(line);
    ck_assert_int_eq(probe_metric("ws_opens_total"), 1);
}
END_TEST

/* ---- on_ws_message ------------------------------------------------------- */

START_TEST(message_close_4001)
{
    size_t mark = sw_test_fake_rx_mark(&rec);
    struct sw_test_ws ws;
    int st = sw_test_ws_open_key(&ws, gw.port, "probe.example", "/rec/y", NULL,
                                 FIXED_KEY);
    ck_assert_msg(st == 101, "upgrade: %d (%s)", st, ws.why ? ws.why : "-");
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "hello", 5));
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "bye", 3));
    int code = sw_test_ws_expect_close(&ws, WAIT_MS);
    ck_assert_msg(code == 4001, "client got close %d (%s)", code,
                  ws.why ? ws.why : "-");
    sw_test_ws_free(&ws);
    int up = sw_test_fake_ws_close(&rec, mark);
    ck_assert_msg(up == 1001, "upstream got close %d (-1: none)", up);
    /* both messages were seen, the second one not forwarded */
    expect_metric("ws_frames_total", 2);
    expect_metric("ws_closes_total", 1);
}
END_TEST

START_TEST(message_dropped)
{
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "probe.example", "/ws/d");
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "skip", 4));
    /* the next message comes back first: "skip" never reached the echo */
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "next", 4, WAIT_MS);
    sw_test_ws_echo(&ws, SW_WS_OP_BINARY, "skip", 4, WAIT_MS);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    /* one call per data frame, either way: skip, next + its echo, the
     * binary "skip" (not text: kept) + its echo */
    expect_metric("ws_closes_total", 1);
    ck_assert_int_eq(probe_metric("ws_frames_total"), 5);
}
END_TEST

/* An idle WebSocket is parked (ws_park_after, 500ms by default) with its
 * plugins' side and brought back by its client: the plugin still reads its
 * frames, on_ws_open does not run again, on_ws_close runs once. */
START_TEST(parked_session_keeps_plugins)
{
    struct sw_test_ws ws;
    sw_test_ws_open_ok(&ws, gw.port, "probe.example", "/ws/park");
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "before", 6, WAIT_MS);
    long long parked = -1;
    for (int i = 0; i < WAIT_MS / 20 && parked != 1; i++) {
        sw_test_sleep_ms(20);
        parked = sw_test_metric(gw.admin_port, "shockwave_ws_sessions_parked");
    }
    ck_assert_msg(parked == 1, "ws_sessions_parked %lld", parked);
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "skip", 4));
    sw_test_ws_echo(&ws, SW_WS_OP_TEXT, "after", 5, WAIT_MS);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    expect_metric("ws_closes_total", 1);
    ck_assert_int_eq(probe_metric("ws_opens_total"), 1);
    /* before + echo, skip, after + echo */
    ck_assert_int_eq(probe_metric("ws_frames_total"), 5);
}
END_TEST

/* ---- on_log -------------------------------------------------------------- */

START_TEST(session_log_field_text)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    int port = short_session("/ws/l", "x", NULL);
    char *line = session_line(mark, port);
    size_t n = strlen(line);
    static const char tail[] = " code=1000 probe=ok";
    ck_assert_msg(n >= sizeof(tail) - 1 &&
                      strcmp(line + n - (sizeof(tail) - 1), tail) == 0,
                  "access log: %s", line);
    free(line);
}
END_TEST

START_TEST(session_log_field_json)
{
    sw_test_gw_stop(&gw);
    start_gw("stderr json");
    long mark = sw_test_proc_log_size(&gw.proc);
    short_session("/ws/j", "x", NULL);
    char *line = sw_test_proc_log_line(&gw.proc, mark, "\"type\":\"websocket\"",
                                       WAIT_MS);
    ck_assert_msg(line != NULL, "no websocket line in the JSON access log");
    ck_assert_msg(strstr(line, "\"close_code\":1000,\"probe\":\"ok\"}") != NULL,
                  "access log: %s", line);
    free(line);
}
END_TEST

/* ---- a WebSocket route without plugins ----------------------------------- */

START_TEST(ws_route_without_plugin)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    char *head;
    /* "skip" is the probe's drop word: here it passes */
    int port = short_session("/plain/ws", "skip", &head);
    ck_assert_msg(strstr(head, "X-Probe") == NULL, "%s", head);
    free(head);
    char *line = session_line(mark, port);
    ck_assert_msg(strstr(line, "probe=") == NULL, "access log: %s", line);
    free(line);
    char *m1 = sw_test_metrics_fetch(gw.admin_port);
    static const char *const names[] = {"requests_total", "upgrades_total",
                                        "ws_opens_total", "ws_closes_total",
                                        "ws_frames_total"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char full[128];
        snprintf(full, sizeof(full), "shockwave_plugin_probe_%s", names[i]);
        ck_assert_msg(sw_test_metric_in(m1, full) == 0, "%s moved", full);
    }
    free(m1);
}
END_TEST

static Suite *
plugin_ws_suite(void)
{
    Suite *s = suite_create("plugin_ws");
    TCase *tc = tcase_create("plugin_ws");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, upgrade_request_edited);
    tcase_add_test(tc, upgrade_answered);
    tcase_add_test(tc, session_hooks_counted);
    tcase_add_test(tc, message_close_4001);
    tcase_add_test(tc, message_dropped);
    tcase_add_test(tc, parked_session_keeps_plugins);
    tcase_add_test(tc, session_log_field_text);
    tcase_add_test(tc, session_log_field_json);
    tcase_add_test(tc, ws_route_without_plugin);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(plugin_ws_suite());
}
