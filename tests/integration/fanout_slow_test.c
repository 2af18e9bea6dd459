/*
 * fanout_slow_test.c - a slow client under `fanout_slow drop` and `close`,
 * and the loss of the channel's upstream with and without reconnect
 * (tests/conf/fanout_slow.conf).
 *
 *   fanback ==flood==> shockwave ==> fast clients a, b (read every round)
 *                                \=> slow client s (reads nothing)
 *
 * The flood goes in rounds of ROUND messages; a and b read each round
 * whole before the next, so only s falls behind: a and b must get every
 * message in order, s must be dropped from (drop: it stays connected and
 * later sees a subsequence of increasing SEQs) or closed with 1008
 * (close). Upstream loss is made by the backend's commands "down" (reset
 * and stop listening) and "up", "close CODE" and "fin".
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

#define WAIT_MS 10000
#define ROUND 32        /* messages per round of the flood */
#define MSG_SIZE 4096   /* bytes per message */
#define MAX_ROUNDS 1000 /* 128 MiB at most before giving up */

static struct sw_test_fan_rig *rig; /* the fixture's (fanctl.h) */

/* Join `path` as the slow client, which reads nothing until the test
 * says so. (Its receive buffer is left alone: the kernel grows it only
 * while the application reads, so it stays at its initial size; a buffer
 * locked small with SO_RCVBUF would drain at a few KiB a tick later.) */
static void
join_slow(struct sw_test_ws *s, const char *path)
{
    sw_test_fan_join(s, rig->gw.port, path, NULL);
}

/*
 * Flood in rounds until `counter` is at least 1: a and b read every round
 * whole and in order. Returns the SEQ of the last message sent.
 */
static unsigned long long
flood_until(struct sw_test_ws *a, struct sw_test_ws *b, const char *path,
            const char *counter)
{
    unsigned long long last = 0;
    int rounds = 0;
    for (; rounds < MAX_ROUNDS; rounds++) {
        unsigned long long s =
            sw_test_fanback_send(&rig->feed, ROUND, MSG_SIZE, false);
        sw_test_fan_expect(a, "a", s, ROUND, path, MSG_SIZE, WAIT_MS);
        sw_test_fan_expect(b, "b", s, ROUND, path, MSG_SIZE, WAIT_MS);
        last = s + ROUND - 1;
        if (sw_test_fan_metric(rig, counter) >= 1) {
            break;
        }
    }
    fprintf(stderr, "fanout_slow: %s after %d rounds of %d x %d bytes\n",
            counter, rounds + 1, ROUND, MSG_SIZE);
    ck_assert_msg(rounds < MAX_ROUNDS,
                  "%s still 0 after %d MiB to a client that reads nothing",
                  counter, MAX_ROUNDS * ROUND * MSG_SIZE >> 20);
    return last;
}

START_TEST(slow_client_drop)
{
    struct sw_test_ws a, b, s;
    sw_test_fan_join(&a, rig->gw.port, "/drop/s", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/drop/s", NULL);
    join_slow(&s, "/drop/s");
    unsigned long long last =
        flood_until(&a, &b, "/drop/s", "shockwave_fanout_dropped_total");
    ck_assert_int_eq(
        sw_test_fan_metric(rig, "shockwave_fanout_slow_closes_total"), 0);
    /* one more message after the flood: s, reading again, gets an
     * increasing run of SEQs with gaps, ending with that one */
    unsigned long long mark = sw_test_fanback_send(&rig->feed, 1, 16, false);
    ck_assert_uint_eq(mark, last + 1);
    sw_test_fan_expect(&a, "a", mark, 1, "/drop/s", 16, WAIT_MS);
    sw_test_fan_expect(&b, "b", mark, 1, "/drop/s", 16, WAIT_MS);
    unsigned long long prev = 0, got = 0;
    while (prev != mark) {
        unsigned long long q =
            sw_test_fan_expect(&s, "slow", 0, 1, "/drop/s", 16, WAIT_MS);
        ck_assert_msg(q > prev && q <= mark,
                      "slow client: SEQ %llu after %llu (last sent %llu)", q,
                      prev, mark);
        prev = q;
        got++;
    }
    fprintf(stderr, "fanout_slow: the slow client got %llu of %llu\n", got,
            mark);
    ck_assert_msg(got < mark,
                  "the slow client missed nothing (%llu of %llu) "
                  "although drops were counted",
                  got, mark);
    long long dropped =
        sw_test_fan_metric(rig, "shockwave_fanout_dropped_total");
    ck_assert_msg(got + (unsigned long long)dropped == mark,
                  "slow client: %llu received + %lld dropped != %llu sent", got,
                  dropped, mark);
    /* it is still connected, and so are the others */
    ck_assert(sw_test_ws_send(&s, true, SW_WS_OP_PING, "alive", 5));
    sw_test_fan_expect_pong(&s, "alive");
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 3);
    sw_test_fan_leave(&s);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(slow_client_close)
{
    struct sw_test_ws a, b, s;
    sw_test_fan_join(&a, rig->gw.port, "/close/s", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/close/s", NULL);
    join_slow(&s, "/close/s");
    flood_until(&a, &b, "/close/s", "shockwave_fanout_slow_closes_total");
    ck_assert_int_eq(
        sw_test_fan_metric(rig, "shockwave_fanout_slow_closes_total"), 1);
    int code = sw_test_ws_expect_close(&s, WAIT_MS);
    ck_assert_msg(code == 1008, "slow client: close %d, expected 1008 (%s)",
                  code, s.why != NULL ? s.why : "-");
    sw_test_ws_free(&s);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 2);
    /* the others carry on */
    unsigned long long m = sw_test_fanback_send(&rig->feed, 5, 64, false);
    sw_test_fan_expect(&a, "a", m, 5, "/close/s", 64, WAIT_MS);
    sw_test_fan_expect(&b, "b", m, 5, "/close/s", 64, WAIT_MS);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 1);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

/* The channel's upstream is lost by `how` (backend commands); the clients
 * must stay connected, the gateway reconnect, and new messages arrive. */
static void
lose_and_reconnect(struct sw_test_ws *a, struct sw_test_ws *b, const char *how,
                   const char *again, int n)
{
    sw_test_fanback_ok(&rig->feed, how, "ok");
    sw_test_fan_metric_is(rig, "shockwave_fanout_upstream_losses_total", n - 1);
    /* the clients are still there: the gateway answers their pings */
    ck_assert(sw_test_ws_send(a, true, SW_WS_OP_PING, "gap", 3));
    sw_test_fan_expect_pong(a, "gap");
    if (again != NULL) {
        sw_test_fanback_ok(&rig->feed, again, "ok");
    }
    long long up = sw_test_fanback_wait(&rig->feed, "upgraded", n, 3 * WAIT_MS);
    ck_assert_msg(up == n,
                  "after %s: no reconnect (%lld upgrades, expected "
                  "%d)",
                  how, up, n);
    /* the old connection may still be closing after "close CODE" */
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "live", 1, WAIT_MS), 1);
    sw_test_fan_metric_is(rig, "shockwave_fanout_upstream_connects_total", n);
    char *head = sw_test_fanback_cmd(&rig->feed, "head %d", n);
    ck_assert_msg(head != NULL && strncmp(head, "GET /re/x ", 10) == 0,
                  "reconnect request: %s", head != NULL ? head : "-");
    free(head);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 5, 32, false);
    sw_test_fan_expect(a, "a", s, 5, "/re/x", 32, WAIT_MS);
    sw_test_fan_expect(b, "b", s, 5, "/re/x", 32, WAIT_MS);
}

START_TEST(upstream_restart_reconnect)
{
    struct sw_test_ws a, b;
    sw_test_fan_join(&a, rig->gw.port, "/re/x", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/re/x", NULL);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 3, 32, false);
    sw_test_fan_expect(&a, "a", s, 3, "/re/x", 32, WAIT_MS);
    sw_test_fan_expect(&b, "b", s, 3, "/re/x", 32, WAIT_MS);
    sw_test_fan_metric_is(rig, "shockwave_fanout_upstream_connects_total", 1);
    /* a restart: reset, refused connects for a while, then back */
    lose_and_reconnect(&a, &b, "down", "up", 2);
    /* a close frame, then a FIN without one */
    lose_and_reconnect(&a, &b, "close 1001", NULL, 3);
    lose_and_reconnect(&a, &b, "fin", NULL, 4);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 2);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(upstream_lost_no_reconnect)
{
    struct sw_test_ws a, b, c;
    sw_test_fan_join(&a, rig->gw.port, "/nore/x", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/nore/x", NULL);
    sw_test_fanback_ok(&rig->feed, "reset", "ok 1");
    int ca = sw_test_ws_expect_close(&a, WAIT_MS);
    int cb = sw_test_ws_expect_close(&b, WAIT_MS);
    ck_assert_msg(ca == 1011 && cb == 1011,
                  "upstream lost, reconnect off: closes %d and %d, expected "
                  "1011",
                  ca, cb);
    sw_test_ws_free(&a);
    sw_test_ws_free(&b);
    sw_test_fan_metric_is(rig, "shockwave_fanout_upstream_losses_total", 1);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channels", 0);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 0);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    /* a new client opens a new channel */
    sw_test_fan_join(&c, rig->gw.port, "/nore/x", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 2);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 2, 32, false);
    sw_test_fan_expect(&c, "c", s, 2, "/nore/x", 32, WAIT_MS);
    sw_test_fan_leave(&c);
}
END_TEST

static Suite *
fanout_slow_suite(void)
{
    Suite *s = suite_create("fanout_slow");
    TCase *tc = tcase_create("fanout_slow");
    rig = sw_test_fan_fixture(tc, "fanout_slow.conf", NULL);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, slow_client_drop);
    tcase_add_test(tc, slow_client_close);
    tcase_add_test(tc, upstream_restart_reconnect);
    tcase_add_test(tc, upstream_lost_no_reconnect);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_slow_suite());
}
