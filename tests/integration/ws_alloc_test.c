/*
 * ws_alloc_test.c - steady-state WebSocket relaying allocates nothing.
 *
 * The daemon (tests/conf/ws_alloc.conf, one worker) runs with
 * LD_PRELOAD=$SW_ALLOCCOUNT (tests/support/alloccount.c), whose counter
 * the admin listener exports as shockwave_process_allocations_total. After
 * a warm-up on one connection, 10,000 echo messages (16 B, 4 KiB, 1 MiB)
 * and pings on the same connection must add exactly as many allocations as two
 * /metrics reads with no traffic at all (the admin's own cost).
 *
 *   m0 --(no traffic)--> m1 --(no traffic)--> m2 --(10,000 messages)--> m3
 *   baseline = m1 - m0 = m2 - m1;  assert m3 - m2 == baseline
 * The counter counts worker threads only (tests/support/alloccount.c), so
 * the baseline is 0; a new connection afterwards must count (the control
 * that shows the counter works).
 *
 * Skips (with a message) only when SW_ALLOCCOUNT is empty, or when the
 * daemon is an AddressSanitizer build, whose runtime owns malloc and makes
 * the preload unusable.
 */
#include "alloc_gw.h"
#include "net.h"
#include "support.h"
#include "proc.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WAIT_MS 10000
#define MIB (1024 * 1024)

/* One echo of n bytes of the pattern (one in flight: all fits buffers). */
static void
echo(struct sw_test_ws *ws, uint64_t n)
{
    ck_assert(sw_test_ws_send_pattern(ws, true, SW_WS_OP_BINARY, 0, n));
    struct sw_test_ws_frame f;
    uint64_t got = 0;
    while (got < n || n == 0) {
        int rc = sw_test_ws_recv(ws, &f, WAIT_MS);
        ck_assert_msg(rc == 1, "echo of %llu: rc %d (%s)",
                      (unsigned long long)n, rc, ws->why ? ws->why : "-");
        ck_assert_uint_eq(f.opcode, got == 0 ? SW_WS_OP_BINARY : SW_WS_OP_CONT);
        ck_assert(sw_test_pattern_ok(got, f.payload, (size_t)f.len));
        got += f.len;
        bool fin = f.fin;
        sw_test_ws_frame_free(&f);
        if (fin) {
            break;
        }
    }
    ck_assert_uint_eq(got, n);
}

static void
ping(struct sw_test_ws *ws, unsigned i)
{
    char p[16];
    int n = snprintf(p, sizeof(p), "ping%u", i);
    ck_assert(sw_test_ws_send(ws, true, SW_WS_OP_PING, p, (size_t)n));
    struct sw_test_ws_frame f;
    ck_assert_int_eq(sw_test_ws_recv(ws, &f, WAIT_MS), 1);
    ck_assert_uint_eq(f.opcode, SW_WS_OP_PONG);
    ck_assert_str_eq((const char *)f.payload, p);
    sw_test_ws_frame_free(&f);
}

/* Message i of a run: mostly 16 B and 4 KiB, every 100th 1 MiB, and a
 * ping every 10th. */
static void
traffic(struct sw_test_ws *ws, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        uint64_t n = i % 100 == 99 ? MIB : (i % 2 == 0 ? 16 : 4096);
        echo(ws, n);
        if (i % 10 == 5) {
            ping(ws, i);
        }
    }
}

START_TEST(zero_alloc_per_message)
{
    struct sw_test_proc be;
    int be_port;
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    struct sw_test_gw gw;
    const char *kv[] = {"B1", sw_test_itoa(be_port), NULL};
    if (!sw_test_gw_start_counted(&gw, "ws_alloc.conf", kv, "ws_alloc")) {
        sw_test_proc_stop(&be, 2000);
        return;
    }

    struct sw_test_ws ws;
    int st = sw_test_ws_open(&ws, gw.port, "app.example", "/ws", NULL);
    ck_assert_msg(st == 101, "upgrade: %d (%s)", st, ws.why ? ws.why : "-");
    /* warm-up: 1,000 messages of every size, pings, on this connection */
    traffic(&ws, 1000);

    long long m2b;
    long long base = sw_test_alloc_baseline(gw.admin_port, &m2b);
    traffic(&ws, 10000);
    long long m3 = sw_test_allocs(gw.admin_port);
    fprintf(stderr,
            "ws_alloc: baseline %lld allocations per /metrics read; "
            "10,000 messages: %lld\n",
            base, m3 - m2b);
    ck_assert_msg(m3 - m2b == base,
                  "10,000 messages cost %lld allocations beyond the "
                  "/metrics baseline (%lld)",
                  m3 - m2b - base, base);
    /* Control: the counter does see the workers' allocations. A new
     * WebSocket allocates its session and its relay on a worker thread. */
    struct sw_test_ws ws2;
    st = sw_test_ws_open(&ws2, gw.port, "app.example", "/ws", NULL);
    ck_assert_msg(st == 101, "second upgrade: %d", st);
    echo(&ws2, 16);
    long long m4 = sw_test_allocs(gw.admin_port);
    fprintf(stderr, "ws_alloc: a new connection: %lld allocations\n",
            m4 - m3 - base);
    ck_assert_msg(m4 - m3 - base >= 2,
                  "a new connection counted %lld allocations: the counter "
                  "does not see the worker threads",
                  m4 - m3 - base);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws2, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws2);
    ck_assert_int_eq(sw_test_ws_close_handshake(&ws, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&ws);
    int rc = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                  "shockwave did not exit 0 (status 0x%x)", rc);
    sw_test_proc_stop(&be, 2000);
}
END_TEST

static Suite *
ws_alloc_suite(void)
{
    Suite *s = suite_create("ws_alloc");
    TCase *tc = tcase_create("ws_alloc");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, zero_alloc_per_message);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(ws_alloc_suite());
}
