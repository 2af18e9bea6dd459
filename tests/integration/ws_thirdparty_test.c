/*
 * ws_thirdparty_test.c - third-party WebSocket peers on either side of the
 * real daemon (tests/conf/ws_thirdparty.conf):
 *
 *   npm ws client (tests/js/client.js) --> shockwave --> swload echo
 *   our C client (wsclient)            --> shockwave --> npm ws server
 *                                                        (tests/js/server.js)
 *   Python websockets 10 (asyncio)     --> shockwave --> swload echo
 *   100 npm ws clients x 1 MiB (tests/js/many.js) --> shockwave --> swload
 *
 * Payloads are the suites' test pattern (byte i = i % 251); each side's
 * SHA-256 of what it received is compared with the pattern's. The last
 * case logs the gateway's peak RSS and bounds it.
 *
 * Needs node with tests/js/node_modules (scripts/deps.sh runs npm install)
 * and /usr/bin/python3 with the Debian python3-websockets package; a
 * missing piece fails the test with a message saying so.
 */
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000
#define MIB (1024 * 1024)
#define PYTHON "/usr/bin/python3"

static struct sw_test_proc be;   /* swload echo "b1" */
static struct sw_test_proc node; /* tests/js/server.js */
static struct sw_test_gw gw;     /* the daemon */
static char node_bin[512];       /* node found on PATH */
static char js_dir[512];         /* tests/js of the source tree */

static bool
find_node(void)
{
    const char *path = getenv("PATH");
    if (path == NULL) {
        return false;
    }
    char *copy = strdup(path);
    bool found = false;
    for (char *d = strtok(copy, ":"); d != NULL && !found;
         d = strtok(NULL, ":")) {
        snprintf(node_bin, sizeof(node_bin), "%s/node", d);
        found = access(node_bin, X_OK) == 0;
    }
    free(copy);
    return found;
}

static void
setup(void)
{
    ck_assert_msg(find_node(), "node is not on PATH (Node 20 is required)");
    snprintf(js_dir, sizeof(js_dir), "%s/tests/js",
             sw_test_env("SW_SOURCE_ROOT"));
    char mod[600];
    struct stat sb;
    snprintf(mod, sizeof(mod), "%s/node_modules/ws/package.json", js_dir);
    ck_assert_msg(stat(mod, &sb) == 0,
                  "npm ws is not installed in tests/js: run scripts/deps.sh "
                  "(or npm install in tests/js)");

    int port;
    ck_assert(sw_test_backend_start(&be, "b1", &port));
    char script[600];
    snprintf(script, sizeof(script), "%s/server.js", js_dir);
    char *argv[] = {node_bin, script, NULL};
    ck_assert(sw_test_proc_spawn(&node, "node-server", argv));
    long at = sw_test_proc_wait_log(&node, "listening on 127.0.0.1:", 0,
                                    WAIT_MS);
    if (at < 0) {
        sw_test_proc_dump(&node);
    }
    ck_assert(at >= 0);
    char *log = sw_test_proc_log(&node);
    int node_port = atoi(log + at);
    free(log);
    ck_assert_int_gt(node_port, 0);
    const char *kv[] = {"B1", sw_test_itoa(port), "NODE",
                        sw_test_itoa(node_port), NULL};
    ck_assert(sw_test_gw_start(&gw, "ws_thirdparty.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        sw_test_proc_dump(&gw.proc);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_proc_stop(&node, 2000);
    sw_test_proc_stop(&be, 2000);
}

static char *
url(const char *path)
{
    char *u = NULL;
    ck_assert(asprintf(&u, "ws://127.0.0.1:%d%s", gw.port, path) > 0);
    return u;
}

/* The value after "sha256 " in a tool's output, or "". */
static void
reported_sha(const char *out, char sum[65])
{
    const char *p = strstr(out, "sha256 ");
    sum[0] = '\0';
    if (p != NULL && strlen(p + 7) >= 64) {
        memcpy(sum, p + 7, 64);
        sum[64] = '\0';
    }
}

START_TEST(node_client_to_swload)
{
    char script[600];
    snprintf(script, sizeof(script), "%s/client.js", js_dir);
    char *u = url("/echo");
    char *argv[] = {node_bin, script, u, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 30000, &out);
    ck_assert_msg(rc == 0, "node client exit %d:\n%s", rc, out);
    const char *checks[] = {"ok text", "ok binary", "ok 1mib", "ok ping",
                            "ok close"};
    for (size_t i = 0; i < SW_NELEMS(checks); i++) {
        ck_assert_msg(strstr(out, checks[i]) != NULL, "no \"%s\":\n%s",
                      checks[i], out);
    }
    char want[65], got[65];
    sw_test_sha256_pattern(MIB, want);
    reported_sha(out, got);
    ck_assert_str_eq(got, want);
    free(out);
    free(u);
    /* the gateway answered the ping itself: pings answered counted */
    ck_assert_int_ge(
        sw_test_metric(gw.admin_port, "shockwave_ws_pings_answered_total"), 1);
}
END_TEST

static void
sha_cb(const uint8_t *p, size_t n, uint64_t off, void *arg)
{
    SW_UNUSED(off);
    sw_test_sha256_update(arg, p, n);
}

START_TEST(c_client_to_node_server)
{
    struct sw_test_ws ws;
    int st = sw_test_ws_open(&ws, gw.port, "app.example", "/node/echo", NULL);
    ck_assert_msg(st == 101, "upgrade: %d (%s)\n%s", st,
                  ws.why ? ws.why : "-", ws.head ? ws.head : "");
    /* text and binary */
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_TEXT, "hello node", 10));
    struct sw_test_ws_msg m;
    ck_assert_int_eq(sw_test_ws_recv_msg(&ws, &m, WAIT_MS), 1);
    ck_assert_uint_eq(m.opcode, SW_WS_OP_TEXT);
    ck_assert_str_eq((const char *)m.payload, "hello node");
    sw_test_ws_msg_free(&m);
    /* 1 MiB in one frame, then 4 MiB in 64 KiB fragments (node joins
     * them and echoes one message); checksums compared */
    const uint64_t sizes[] = {MIB, 4 * MIB};
    const uint64_t frames[] = {MIB, 64 * 1024};
    for (size_t i = 0; i < SW_NELEMS(sizes); i++) {
        for (uint64_t off = 0; off < sizes[i]; off += frames[i]) {
            uint64_t k = SW_MIN(frames[i], sizes[i] - off);
            ck_assert(sw_test_ws_send_pattern(
                &ws, off + k == sizes[i],
                off == 0 ? SW_WS_OP_BINARY : SW_WS_OP_CONT, off, k));
        }
        struct sw_test_sha256 h;
        sw_test_sha256_init(&h);
        ws.payload_cb = sha_cb;
        ws.payload_arg = &h;
        int rc = sw_test_ws_recv_msg(&ws, &m, WAIT_MS);
        char got[65], want[65];
        sw_test_sha256_final(&h, got);
        ws.payload_cb = NULL;
        ck_assert_msg(rc == 1, "echo of %llu: %d (%s)",
                      (unsigned long long)sizes[i], rc,
                      ws.why ? ws.why : "-");
        ck_assert_uint_eq(m.opcode, SW_WS_OP_BINARY);
        ck_assert_uint_eq(m.len, sizes[i]);
        sw_test_ws_msg_free(&m);
        sw_test_sha256_pattern(sizes[i], want);
        ck_assert_str_eq(got, want);
    }
    /* ping answered by the gateway (ws_ping local) */
    ck_assert(sw_test_ws_send(&ws, true, SW_WS_OP_PING, "cping", 5));
    struct sw_test_ws_frame f;
    ck_assert_int_eq(sw_test_ws_recv(&ws, &f, WAIT_MS), 1);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PONG);
    ck_assert_str_eq((const char *)f.payload, "cping");
    sw_test_ws_frame_free(&f);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
}
END_TEST

static const char py_client[] =
    "import asyncio, hashlib, sys\n"
    "import websockets\n"
    "async def main(url):\n"
    "    async with websockets.connect(url, max_size=None,\n"
    "                                  compression=None) as ws:\n"
    "        await ws.send('hello python')\n"
    "        r = await asyncio.wait_for(ws.recv(), 10)\n"
    "        assert r == 'hello python', r\n"
    "        print('ok text')\n"
    "        data = bytes(i % 251 for i in range(1 << 20))\n"
    "        await ws.send(data)\n"
    "        r = await asyncio.wait_for(ws.recv(), 10)\n"
    "        assert isinstance(r, bytes) and len(r) == len(data), len(r)\n"
    "        print('sha256', hashlib.sha256(r).hexdigest())\n"
    "        pong = await ws.ping(b'pyping')\n"
    "        await asyncio.wait_for(pong, 10)\n"
    "        print('ok ping')\n"
    "    print('ok close', ws.close_code)\n"
    "asyncio.run(main(sys.argv[1]))\n";

START_TEST(python_client_to_swload)
{
    ck_assert_msg(access(PYTHON, X_OK) == 0, "%s is missing", PYTHON);
    char *u = url("/py");
    char *argv[] = {PYTHON, "-c", (char *)py_client, u, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 30000, &out);
    ck_assert_msg(rc == 0, "python client exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "ok text") != NULL &&
                      strstr(out, "ok ping") != NULL &&
                      strstr(out, "ok close 1000") != NULL,
                  "python client:\n%s", out);
    char want[65], got[65];
    sw_test_sha256_pattern(MIB, want);
    reported_sha(out, got);
    ck_assert_str_eq(got, want);
    free(out);
    free(u);
}
END_TEST

START_TEST(many_clients_peak_rss)
{
    char script[600];
    snprintf(script, sizeof(script), "%s/many.js", js_dir);
    char *u = url("/many");
    char *argv[] = {node_bin, script, u, "100", "3", NULL};
    char *out = NULL;
    long long s0 = sw_test_metric(gw.admin_port, "shockwave_ws_sessions_total");
    int rc = sw_test_run(argv, 90000, &out);
    long hwm = sw_test_proc_hwm_kb(gw.proc.pid);
    fprintf(stderr,
            "ws_thirdparty: 100 connections x 3 x 1 MiB echo: gateway peak "
            "RSS (VmHWM) %ld KiB\n",
            hwm);
    ck_assert_msg(rc == 0 && strstr(out, "ok 100 3") != NULL,
                  "many.js exit %d:\n%s", rc, out);
    ck_assert_int_eq(
        sw_test_metric(gw.admin_port, "shockwave_ws_sessions_total"), s0 + 100);
    ck_assert_msg(hwm > 0 && hwm < 128 * 1024,
                  "gateway VmHWM %ld KiB (bound 128 MiB)", hwm);
    free(out);
    free(u);
}
END_TEST

static Suite *
ws_thirdparty_suite(void)
{
    Suite *s = suite_create("ws_thirdparty");
    TCase *tc = tcase_create("ws_thirdparty");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, node_client_to_swload);
    tcase_add_test(tc, c_client_to_node_server);
    tcase_add_test(tc, python_client_to_swload);
    tcase_add_test(tc, many_clients_peak_rss);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_thirdparty_suite());
}
