/*
 * fanout_workers_test.c - fan-out channels whose clients sit on two
 * workers, and live channels across reloads (tests/conf/fanout_workers.conf).
 *
 *   worker owning the upstream --ring--> other worker
 *        |  \                                |
 *      clients                            clients     (SO_REUSEPORT spreads
 *                                                      NCLIENTS over both)
 *
 * Every client must get every message in order whichever worker it is on;
 * shockwave_fanout_ring_messages_total shows that messages did cross
 * workers. Client messages from either worker reach the one upstream. A
 * SIGHUP with a changed route keeps live channels delivering; the change
 * applies to channels opened after it.
 */
#include "fanctl.h"
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000
#define NCLIENTS 24

/* @MODE@ of the daemon's first configuration */
static const char *const forward_kv[] = {"MODE", "forward", NULL};
static struct sw_test_fan_rig *rig; /* the fixture's (fanctl.h) */

/* One round: `n` messages (fragmented upstream when frag), every client
 * in [from, to) reads them all. */
static void
round_to(struct sw_test_ws *ws, int from, int to, unsigned n, bool frag,
         const char *target)
{
    unsigned long long s = sw_test_fanback_send(&rig->feed, n, 100, frag);
    for (int i = from; i < to; i++) {
        char who[32];
        snprintf(who, sizeof(who), "client %d", i);
        sw_test_fan_expect(&ws[i], who, s, n, target, 100, WAIT_MS);
    }
}

START_TEST(clients_on_two_workers)
{
    struct sw_test_ws ws[NCLIENTS + 8];
    for (int i = 0; i < NCLIENTS; i++) {
        sw_test_fan_join(&ws[i], rig->gw.port, "/w/all", NULL);
    }
    /* a client counts as joined once the gateway counts it (a client on
     * the worker without the upstream joins through the ring) */
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", NCLIENTS);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channel_clients_max",
                          NCLIENTS);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    for (int r = 0; r < 10; r++) {
        round_to(ws, 0, NCLIENTS, 20, r % 3 == 2, "/w/all");
    }
    long long ring =
        sw_test_fan_metric(rig, "shockwave_fanout_ring_messages_total");
    ck_assert_msg(ring > 0,
                  "shockwave_fanout_ring_messages_total is %lld with %d "
                  "clients on two workers",
                  ring, NCLIENTS);
    /* counted once per channel, delivered once per client */
    sw_test_fan_metric_is(rig, "shockwave_fanout_messages_total", 200);
    sw_test_fan_metric_is(rig, "shockwave_fanout_deliveries_total",
                          200 * NCLIENTS);
    ck_assert_int_eq(sw_test_fan_metric(rig, "shockwave_fanout_dropped_total"),
                     0);

    /* every client's message reaches the one upstream, from both
     * workers */
    for (int i = 0; i < NCLIENTS; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "hello-%d", i);
        ck_assert(sw_test_ws_send(&ws[i], true, SW_WS_OP_TEXT, msg, (size_t)n));
    }
    long long got = sw_test_fanback_wait(&rig->feed, "msgs", NCLIENTS, WAIT_MS);
    ck_assert_msg(got == NCLIENTS, "the upstream received %lld of %d", got,
                  NCLIENTS);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "errors"), 0);

    /* half leave, new ones join (on either worker): the others are
     * unaffected, the new ones get what follows their join */
    for (int i = 0; i < NCLIENTS / 2; i++) {
        sw_test_fan_leave(&ws[i]);
    }
    for (int i = NCLIENTS; i < NCLIENTS + 8; i++) {
        sw_test_fan_join(&ws[i], rig->gw.port, "/w/all", NULL);
    }
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", NCLIENTS / 2 + 8);
    round_to(ws, NCLIENTS / 2, NCLIENTS + 8, 30, false, "/w/all");
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    for (int i = NCLIENTS / 2; i < NCLIENTS + 8; i++) {
        sw_test_fan_leave(&ws[i]);
    }
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 0);
    sw_test_fan_metric_is(
        rig, "shockwave_fanout_client_messages_forwarded_total", NCLIENTS);
}
END_TEST

/* Render fanout_workers.conf with `mode`, SIGHUP, wait for "reloaded". */
static void
reload(const char *mode)
{
    long mark = sw_test_proc_log_size(&rig->gw.proc);
    const char *kv[] = {"FEED", sw_test_itoa(rig->feed.port), "MODE", mode,
                        NULL};
    ck_assert(sw_test_gw_render(&rig->gw, "fanout_workers.conf", kv));
    ck_assert(sw_test_proc_signal(&rig->gw.proc, SIGHUP));
    ck_assert_msg(
        sw_test_proc_wait_log(&rig->gw.proc, "reloaded", mark, WAIT_MS) >= 0,
        "no \"reloaded\" after SIGHUP");
}

START_TEST(reload_keeps_live_channels)
{
    struct sw_test_ws ws[4];
    sw_test_fan_join(&ws[0], rig->gw.port, "/r/x", NULL);
    sw_test_fan_join(&ws[1], rig->gw.port, "/r/x", NULL);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 2);
    round_to(ws, 0, 2, 5, false, "/r/x");
    ck_assert(sw_test_ws_send(&ws[0], true, SW_WS_OP_TEXT, "before", 6));
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "msgs", 1, WAIT_MS), 1);

    /* the route now drops client messages; the live channel goes on */
    reload("drop");
    round_to(ws, 0, 2, 5, false, "/r/x");
    /* four more reloads, ending with drop, during traffic */
    for (int i = 0; i < 4; i++) {
        reload(i % 2 == 0 ? "forward" : "drop");
        round_to(ws, 0, 2, 5, true, "/r/x");
    }
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "live"), 1);
    ck_assert_int_eq(
        sw_test_fan_metric(rig, "shockwave_fanout_upstream_losses_total"), 0);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channels", 1);

    /* a channel opened after the reload follows the new route: its
     * client's message is dropped */
    sw_test_fan_join(&ws[2], rig->gw.port, "/r/y", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 2);
    ck_assert(sw_test_ws_send(&ws[2], true, SW_WS_OP_TEXT, "new", 3));
    /* the gateway has handled "new" once it answers the ping after it */
    ck_assert(sw_test_ws_send(&ws[2], true, SW_WS_OP_PING, "sync", 4));
    sw_test_fan_expect_pong(&ws[2], "sync");
    /* a later client of the live channel joins it, no new upstream */
    sw_test_fan_join(&ws[3], rig->gw.port, "/r/x", NULL);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 4);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 2);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 5, 100, false);
    for (int i = 0; i < 4; i++) {
        char who[32];
        snprintf(who, sizeof(who), "client %d", i);
        sw_test_fan_expect(&ws[i], who, s, 5, i == 2 ? "/r/y" : "/r/x", 100,
                           WAIT_MS);
    }
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "msgs"), 1);
    for (int i = 0; i < 4; i++) {
        sw_test_fan_leave(&ws[i]);
    }
    sw_test_fan_metric_is(rig, "shockwave_fanout_client_messages_dropped_total",
                          1);
}
END_TEST

static Suite *
fanout_workers_suite(void)
{
    Suite *s = suite_create("fanout_workers");
    TCase *tc = tcase_create("fanout_workers");
    rig = sw_test_fan_fixture(tc, "fanout_workers.conf", forward_kv);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, clients_on_two_workers);
    tcase_add_test(tc, reload_keeps_live_channels);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_workers_suite());
}
