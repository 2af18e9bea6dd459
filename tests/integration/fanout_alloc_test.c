/*
 * fanout_alloc_test.c - steady-state fan-out delivery allocates nothing.
 *
 * The daemon (tests/conf/fanout_alloc.conf, one worker) runs with
 * LD_PRELOAD=$SW_ALLOCCOUNT (tests/support/alloccount.c), whose counter the
 * admin listener exports as shockwave_process_allocations_total (worker
 * threads only). NCLIENTS clients share one channel; after a warm-up of
 * the same traffic, 10,000 upstream messages (16 B, 4 KiB, 64 KiB, and
 * fragmented ones that the gateway joins) delivered to every client must
 * add exactly as many allocations as /metrics reads with no traffic:
 *
 *   warm-up --> m1 --> m2 --> m2b --(10,000 broadcasts x NCLIENTS)--> m3
 *   baseline = m2 - m1 = m2b - m2;  assert m3 - m2b == baseline
 *
 * Control: a client that opens a new channel afterwards must count (its
 * session and its upstream), which shows the counter sees the worker.
 *
 * Skips (with a message) only when SW_ALLOCCOUNT is empty, or when the
 * daemon is an AddressSanitizer build, whose runtime owns malloc and makes
 * the preload unusable.
 */
#include "fanctl.h"
#include "alloc_gw.h"
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WAIT_MS 10000
#define NCLIENTS 10

/* One cycle of traffic: 50 broadcasts of four kinds, each read by every
 * client. Returns the number of broadcasts. */
static unsigned
cycle(struct sw_test_fanback *b, struct sw_test_ws *ws)
{
    static const struct {
        unsigned n;
        size_t size;
        bool frag;
    } kinds[] = {
        {20, 16, false}, {20, 4096, false}, {2, 65536, false}, {8, 1000, true}};
    unsigned sent = 0;
    for (size_t k = 0; k < SW_NELEMS(kinds); k++) {
        unsigned long long s =
            sw_test_fanback_send(b, kinds[k].n, kinds[k].size, kinds[k].frag);
        for (int i = 0; i < NCLIENTS; i++) {
            sw_test_fan_expect(&ws[i], "client", s, kinds[k].n, "/a/z",
                               kinds[k].size, WAIT_MS);
        }
        sent += kinds[k].n;
    }
    return sent;
}

START_TEST(zero_alloc_per_delivery)
{
    struct sw_test_fanback b;
    ck_assert(sw_test_fanback_start(&b, NULL));
    const char *kv[] = {"FEED", sw_test_itoa(b.port), NULL};
    struct sw_test_gw gw;
    if (!sw_test_gw_start_counted(&gw, "fanout_alloc.conf", kv,
                                  "fanout_alloc")) {
        sw_test_fanback_stop(&b);
        return;
    }

    struct sw_test_ws ws[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        sw_test_fan_join(&ws[i], gw.port, "/a/z", NULL);
    }
    ck_assert_int_eq(sw_test_fanback_stat(&b, "upgraded"), 1);
    /* warm-up: the same traffic, 5,000 broadcasts */
    unsigned warm = 0;
    while (warm < 5000) {
        warm += cycle(&b, ws);
    }
    long long m2b;
    long long base = sw_test_alloc_baseline(gw.admin_port, &m2b);
    unsigned sent = 0;
    while (sent < 10000) {
        sent += cycle(&b, ws);
    }
    long long m3 = sw_test_allocs(gw.admin_port);
    long long dl =
        sw_test_metric(gw.admin_port, "shockwave_fanout_deliveries_total");
    fprintf(stderr,
            "fanout_alloc: baseline %lld allocations per /metrics read; "
            "%u broadcasts to %d clients: %lld (deliveries_total %lld)\n",
            base, sent, NCLIENTS, m3 - m2b, dl);
    ck_assert_msg(m3 - m2b == base,
                  "%u broadcasts to %d clients cost %lld allocations beyond "
                  "the /metrics baseline (%lld)",
                  sent, NCLIENTS, m3 - m2b - base, base);
    ck_assert_int_eq(dl, (long long)(sent + warm) * NCLIENTS);

    /* control: a new channel allocates on the worker */
    struct sw_test_ws extra;
    sw_test_fan_join(&extra, gw.port, "/a/new", NULL);
    long long m4 = sw_test_allocs(gw.admin_port);
    fprintf(stderr, "fanout_alloc: a new channel: %lld allocations\n",
            m4 - m3 - base);
    ck_assert_msg(m4 - m3 - base >= 1,
                  "a new channel counted %lld allocations: the counter does "
                  "not see the worker thread",
                  m4 - m3 - base);
    ck_assert_int_eq(sw_test_ws_close_handshake(&extra, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&extra);
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_int_eq(sw_test_ws_close_handshake(&ws[i], 1000, WAIT_MS),
                         1000);
        sw_test_ws_free(&ws[i]);
    }
    int rc = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                  "shockwave did not exit 0 (status 0x%x)", rc);
    sw_test_fanback_stop(&b);
}
END_TEST

static Suite *
fanout_alloc_suite(void)
{
    Suite *s = suite_create("fanout_alloc");
    TCase *tc = tcase_create("fanout_alloc");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, zero_alloc_per_delivery);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_alloc_suite());
}
