/*
 * access_log_test.c - `access_log FILE json;`: one JSON object per line for
 * every HTTP request and every WebSocket session, and SIGUSR1 reopening the
 * file for logrotate.
 *
 *   requests (proxied, answered by the gateway, refused with 400) and a
 *   client X-Request-Id with quotes, a backslash, a tab, valid UTF-8 and a
 *   byte that is not UTF-8; one WebSocket session of 3 messages each way
 *   closed with 1000
 *   -> /usr/bin/python3's json.loads takes every line; the fields hold
 *      what happened; the raw line escapes the bad byte as \u00ff
 *   a fan-out client (the echo backend as its channel's upstream)
 *   -> its line has "upstream":"fanout", its "channel" and "dropped"
 *   rename the file, SIGUSR1, more requests
 *   -> they land in a new file at the original path, none in the old one
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
#include <sys/stat.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define WAIT_MS 5000

static struct sw_test_proc be; /* swload echo */
static struct sw_test_gw gw;   /* the daemon */
static char logp[600];         /* the access log */

/*
 * Checks every line of a log with json.loads and prints one summary line
 * per object ("http STATUS REQUEST REQUEST_ID" with JSON-quoted strings,
 * or "websocket ..."), so the C side can assert on values. Exits 1 on the
 * first line that does not parse or lacks a field.
 */
static const char checker[] =
    "import json, sys\n"
    "need = {'http': ['time', 'client', 'client_port', 'request', 'status',\n"
    "                 'bytes_sent', 'bytes_received', 'duration_ms',\n"
    "                 'request_id'],\n"
    "        'websocket': ['time', 'client', 'upstream', 'duration_ms',\n"
    "                      'client_messages', 'client_bytes',\n"
    "                      'upstream_messages', 'upstream_bytes',\n"
    "                      'closed_by', 'close_code']}\n"
    "n = 0\n"
    "for raw in open(sys.argv[1], 'rb'):\n"
    "    n += 1\n"
    "    assert raw.endswith(b'\\n'), 'line %d: no newline' % n\n"
    "    o = json.loads(raw.decode('utf-8'))\n"
    "    missing = [k for k in need[o['type']] if k not in o]\n"
    "    assert not missing, 'line %d: no %s' % (n, missing)\n"
    "    assert isinstance(o['duration_ms'], int)\n"
    "    if o['type'] == 'http':\n"
    "        print('http', o['status'], json.dumps(o['request']),\n"
    "              json.dumps(o['request_id']), o.get('upstream', '-'))\n"
    "    else:\n"
    "        print('websocket', o['client_messages'], o['client_bytes'],\n"
    "              o['upstream_messages'], o['upstream_bytes'],\n"
    "              o['closed_by'], o['close_code'], o['upstream'],\n"
    "              json.dumps(o.get('channel', '-')), o.get('dropped', '-'))\n"
    "print('lines', n)\n";

/* The checker's output for the file at path; fails the test if it fails. */
static char *
check_json(const char *path)
{
    char *argv[] = {PYTHON, "-c", (char *)checker, (char *)path, NULL};
    char *out;
    int rc = sw_test_run(argv, 20000, &out);
    ck_assert_msg(rc == 0, "%s: not JSON lines (exit %d):\n%s", path, rc, out);
    return out;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* Lines in the log, once it has at least `want` (writes are per request,
 * from the workers: wait for them with a deadline). */
static int
wait_lines(const char *path, int want)
{
    int n = 0;
    for (int i = 0; i < WAIT_MS / 20; i++) {
        char *t = read_file(path);
        n = (int)sw_test_count(t, strlen(t), "\n");
        free(t);
        if (n >= want) {
            break;
        }
        sw_test_sleep_ms(20);
    }
    return n;
}

static void
get(const char *path, const char *extra, int status)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: a\r\n%sConnection: close\r\n\r\n", path,
             extra);
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_once(gw.port, req, &r), 1);
    ck_assert_int_eq(r.status, status);
    sw_test_resp_free(&r);
}

static void
setup(void)
{
    int port;
    ck_assert(sw_test_backend_start(&be, "echo", &port));
    snprintf(logp, sizeof(logp), "%s/access.json", sw_test_tmpdir());
    unlink(logp);
    const char *kv[] = {"B1", sw_test_itoa(port), "LOG", logp, NULL};
    ck_assert(sw_test_gw_start(&gw, "access_log.conf", kv));
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
}

/* A WebSocket session on path: n "hello" messages echoed back, then
 * close 1000. */
static void
ws_session(const char *path, int n)
{
    struct sw_test_ws ws;
    ck_assert_int_eq(sw_test_ws_open(&ws, gw.port, "a", path, NULL), 101);
    for (int i = 0; i < n; i++) {
        ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "hello", 5));
        struct sw_test_ws_msg m;
        ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
        ck_assert_uint_eq(m.len, 5);
        sw_test_ws_msg_free(&m);
    }
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}

START_TEST(json_lines)
{
    get("/plain", "", 200);
    get("/own/x", "", 200);
    /* A client's request id: quotes, backslash, tab, UTF-8 and 0xff. */
    get("/id", "X-Request-Id: q\"b\\s\tt caf\xc3\xa9 \xff!\r\n", 200);
    struct sw_test_resp r;
    ck_assert_int_eq(
        sw_test_http_once(gw.port, "BAD\x01 / HTTP/1.1\r\n\r\n", &r), 1);
    ck_assert_int_eq(r.status, 400);
    sw_test_resp_free(&r);

    ws_session("/ws/chat", 3);

    /* 4 requests, the upgrade request, the session. */
    ck_assert_int_ge(wait_lines(logp, 6), 6);
    char *out = check_json(logp);
    ck_assert_msg(strstr(out, "http 200 \"GET /plain HTTP/1.1\"") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, "http 200 \"GET /own/x HTTP/1.1\"") != NULL, "%s",
                  out);
    /* Decoded by json.loads: each byte as it was sent, 0xff as U+00FF. */
    ck_assert_msg(strstr(out, "\"q\\\"b\\\\s\\tt caf\\u00e9 \\u00ff!\"") !=
                      NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "http 400 \"-\"") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "http 101 \"GET /ws/chat HTTP/1.1\"") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "websocket 3 15 3 15 client 1000") != NULL, "%s",
                  out);
    free(out);
    /* In the raw line: valid UTF-8 as it is, the stray byte escaped. */
    char *raw = read_file(logp);
    ck_assert_msg(strstr(raw, "caf\xc3\xa9 \\u00ff!") != NULL, "%s", raw);
    ck_assert_msg(strstr(raw, "q\\\"b\\\\s\\tt") != NULL, "%s", raw);
    free(raw);
}
END_TEST

/* A fan-out client's session line names its channel and what it missed;
 * the echo backend is the channel's upstream, so the client's message
 * comes back to it through the channel. */
START_TEST(fanout_session_line)
{
    ws_session("/fan/x", 1);
    /* the upgrade request, the session */
    ck_assert_int_ge(wait_lines(logp, 2), 2);
    char *out = check_json(logp);
    ck_assert_msg(strstr(out, "http 101 \"GET /fan/x HTTP/1.1\"") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, "websocket 1 5 1 5 client 1000 fanout "
                              "\"/fan/x\" 0") != NULL,
                  "%s", out);
    free(out);
}
END_TEST

START_TEST(reopen_on_sigusr1)
{
    get("/before", "", 200);
    ck_assert_int_ge(wait_lines(logp, 1), 1);
    char old[700];
    snprintf(old, sizeof(old), "%s.1", logp);
    ck_assert_int_eq(rename(logp, old), 0);
    /* Until the signal, lines still go to the renamed file. */
    get("/renamed", "", 200);
    ck_assert_int_ge(wait_lines(old, 2), 2);

    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGUSR1));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "log files reopened", mark,
                                    WAIT_MS) >= 0);
    struct stat st;
    ck_assert_msg(stat(logp, &st) == 0, "no new file at %s", logp);
    for (int i = 0; i < 5; i++) {
        get("/after", "", 200);
    }
    ck_assert_int_ge(wait_lines(logp, 5), 5);
    char *out = check_json(logp);
    ck_assert_int_eq((int)sw_test_count(out, strlen(out), "/after"), 5);
    ck_assert_ptr_null(strstr(out, "/before"));
    ck_assert_msg(strstr(out, "lines 5\n") != NULL, "%s", out);
    free(out);
    out = check_json(old);
    ck_assert_ptr_null(strstr(out, "/after"));
    ck_assert_msg(strstr(out, "lines 2\n") != NULL, "%s", out);
    free(out);
}
END_TEST

static Suite *
access_log_suite(void)
{
    Suite *s = suite_create("access_log");
    TCase *tc = tcase_create("access_log");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_lines);
    tcase_add_test(tc, fanout_session_line);
    tcase_add_test(tc, reopen_on_sigusr1);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(access_log_suite());
}
