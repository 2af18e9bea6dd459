/*
 * fanout_thirdparty_test.c - third-party subscribers of one fan-out channel
 * next to our own client (tests/conf/fanout.conf, route /live/):
 *
 *   npm ws client (tests/js/fanout_client.js) --+
 *   Python websockets 10 (asyncio, inline)    --+--> shockwave --> fanback
 *   our C client (wsclient)                   --+   (one upstream)
 *
 * Each of them must get every broadcast in order (the same first and last
 * SEQ as the C client), have its ping answered and its message forwarded
 * to the single upstream.
 *
 * Needs node with tests/js/node_modules (scripts/deps.sh runs npm install)
 * and /usr/bin/python3 with the Debian python3-websockets package; a
 * missing piece fails the test with a message saying so.
 */
#include "fanctl.h"
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000
#define PYTHON "/usr/bin/python3"
#define COUNT 105 /* 100 whole messages, 5 fragmented upstream */

static struct sw_test_fan_rig *rig; /* the fixture's (fanctl.h) */

static const char py_client[] =
    "import asyncio, sys\n"
    "import websockets\n"
    "async def main(url, count):\n"
    "    async with websockets.connect(url, max_size=None,\n"
    "                                  compression=None) as ws:\n"
    "        print('open', flush=True)\n"
    "        await ws.send('hello from python')\n"
    "        pong = await ws.ping(b'pyping')\n"
    "        await asyncio.wait_for(pong, 10)\n"
    "        print('ok ping', flush=True)\n"
    "        first = prev = None\n"
    "        for i in range(count):\n"
    "            m = await asyncio.wait_for(ws.recv(), 20)\n"
    "            seq = int(m.split(' ', 1)[0])\n"
    "            if prev is not None and seq != prev + 1:\n"
    "                print('FAIL order', seq, 'after', prev, flush=True)\n"
    "                sys.exit(1)\n"
    "            first = seq if first is None else first\n"
    "            prev = seq\n"
    "        print('ok', count, 'first', first, 'last', prev, flush=True)\n"
    "    print('closed', ws.close_code, flush=True)\n"
    "asyncio.run(main(sys.argv[1], int(sys.argv[2])))\n";

/* Wait for `needle` in a subscriber's output; dump it if it never comes. */
static void
wait_line(struct sw_test_proc *p, const char *who, const char *needle)
{
    long at = sw_test_proc_wait_log(p, needle, 0, 3 * WAIT_MS);
    if (at < 0) {
        sw_test_proc_dump(p);
    }
    ck_assert_msg(at >= 0, "%s never printed \"%s\"", who, needle);
}

START_TEST(node_python_and_c_share_a_channel)
{
    char node[512];
    ck_assert_msg(sw_test_which("node", node, sizeof(node)),
                  "node is not on PATH (Node 20 is required)");
    ck_assert_msg(access(PYTHON, X_OK) == 0, "%s is missing", PYTHON);
    char script[600], mod[600];
    snprintf(script, sizeof(script), "%s/tests/js/fanout_client.js",
             sw_test_env("SW_SOURCE_ROOT"));
    snprintf(mod, sizeof(mod), "%s/tests/js/node_modules/ws/package.json",
             sw_test_env("SW_SOURCE_ROOT"));
    struct stat sb;
    ck_assert_msg(stat(mod, &sb) == 0,
                  "npm ws is not installed in tests/js: run scripts/deps.sh "
                  "(or npm install in tests/js)");

    struct sw_test_ws c;
    sw_test_fan_join(&c, rig->gw.port, "/live/tp", NULL);
    char url[128], count[16];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/live/tp", rig->gw.port);
    snprintf(count, sizeof(count), "%d", COUNT);
    struct sw_test_proc nodep, py;
    char *nargv[] = {node, script, url, count, NULL};
    ck_assert(sw_test_proc_spawn(&nodep, "node-sub", nargv));
    char *pargv[] = {PYTHON, "-c", (char *)py_client, url, count, NULL};
    ck_assert(sw_test_proc_spawn(&py, "python-sub", pargv));
    wait_line(&nodep, "node", "open");
    wait_line(&py, "python", "open");
    long long n = sw_test_fan_metric_wait(
        rig->gw.admin_port, "shockwave_fanout_clients", 3, WAIT_MS);
    ck_assert_msg(n == 3, "shockwave_fanout_clients is %lld, expected 3", n);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);

    unsigned long long s = sw_test_fanback_send(&rig->feed, 100, 200, false);
    sw_test_fanback_send(&rig->feed, 5, 5000, true);
    sw_test_fan_expect(&c, "C client", s, 100, "/live/tp", 200, WAIT_MS);
    sw_test_fan_expect(&c, "C client", s + 100, 5, "/live/tp", 5000, WAIT_MS);
    char want[96];
    snprintf(want, sizeof(want), "ok %d first %llu last %llu", COUNT, s,
             s + COUNT - 1);
    wait_line(&nodep, "node", want);
    wait_line(&py, "python", want);
    wait_line(&nodep, "node", "ok ping");
    wait_line(&py, "python", "ok ping");
    wait_line(&nodep, "node", "closed 1000");
    wait_line(&py, "python", "closed 1000");
    int st = 0;
    ck_assert(sw_test_proc_wait(&nodep, WAIT_MS, &st));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node exit 0x%x", st);
    ck_assert(sw_test_proc_wait(&py, WAIT_MS, &st));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python exit 0x%x",
                  st);

    /* both hellos reached the one upstream */
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "msgs", 2, WAIT_MS), 2);
    char *m1 = sw_test_fanback_cmd(&rig->feed, "msg 1");
    char *m2 = sw_test_fanback_cmd(&rig->feed, "msg 2");
    ck_assert_ptr_nonnull(m1);
    ck_assert_ptr_nonnull(m2);
    bool node_seen = strstr(m1, "text hello from node") != NULL ||
                     strstr(m2, "text hello from node") != NULL;
    bool py_seen = strstr(m1, "text hello from python") != NULL ||
                   strstr(m2, "text hello from python") != NULL;
    ck_assert_msg(node_seen && py_seen, "upstream records:\n%s\n%s", m1, m2);
    free(m1);
    free(m2);
    long long dl = sw_test_fan_metric_wait(rig->gw.admin_port,
                                           "shockwave_fanout_deliveries_total",
                                           3 * COUNT, WAIT_MS);
    ck_assert_msg(dl == 3 * COUNT, "deliveries_total %lld, expected %d", dl,
                  3 * COUNT);
    ck_assert_int_eq(sw_test_ws_close_handshake(&c, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&c);
}
END_TEST

static Suite *
fanout_thirdparty_suite(void)
{
    Suite *s = suite_create("fanout_thirdparty");
    TCase *tc = tcase_create("fanout_thirdparty");
    rig = sw_test_fan_fixture(tc, "fanout.conf", NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, node_python_and_c_share_a_channel);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_thirdparty_suite());
}
