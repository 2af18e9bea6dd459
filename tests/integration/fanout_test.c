/*
 * fanout_test.c - fan-out channels (tests/conf/fanout.conf): one upstream
 * WebSocket per channel whatever the number of clients, every message to
 * every client in order, joins and leaves during traffic, channels kept
 * apart by their keys ($uri, $arg_NAME, $http_NAME), later clients
 * answered at once, the channel's subprotocol, linger and a refused
 * upstream.
 *
 *   our C clients (wsclient) ==> shockwave (fanout KEY) --1 WS--> fanback
 *
 * The backend (tests/support/fanback.c) counts the connections it accepted
 * and broadcasts "SEQ TARGET ..." on command; the clients check SEQ order
 * and TARGET (the channel's upstream) of everything they receive
 * (tests/support/fanctl.h). Metrics are read from the admin listener.
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
#define NCLIENTS 5

static struct sw_test_fan_rig *rig; /* the fixture's (fanctl.h) */

START_TEST(one_upstream_per_channel)
{
    struct sw_test_ws ws[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        sw_test_fan_join(&ws[i], rig->gw.port, "/live/one", NULL);
    }
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channels", 1);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", NCLIENTS);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channel_clients_max",
                          NCLIENTS);
    ck_assert_int_eq(
        sw_test_fan_metric(rig, "shockwave_fanout_upstream_connects_total"), 1);

    /* 50 messages, then 10 sent in three fragments each: every client gets
     * all 60 in order, each as one frame */
    unsigned long long first = sw_test_fanback_send(&rig->feed, 50, 200, false);
    sw_test_fanback_send(&rig->feed, 10, 3000, true);
    for (int i = 0; i < NCLIENTS; i++) {
        char who[32];
        snprintf(who, sizeof(who), "client %d", i);
        ck_assert_uint_eq(sw_test_fan_expect(&ws[i], who, first, 50,
                                             "/live/one", 200, WAIT_MS),
                          first + 49);
        sw_test_fan_expect(&ws[i], who, first + 50, 10, "/live/one", 3000,
                           WAIT_MS);
    }
    sw_test_fan_metric_is(rig, "shockwave_fanout_messages_total", 60);
    sw_test_fan_metric_is(rig, "shockwave_fanout_deliveries_total",
                          60 * NCLIENTS);
    ck_assert_int_eq(sw_test_fan_metric(rig, "shockwave_fanout_dropped_total"),
                     0);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 1);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "errors"), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        sw_test_fan_leave(&ws[i]);
    }
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 0);
}
END_TEST

START_TEST(upstream_request_of_the_channel)
{
    /* the first client offers an extension: the upstream must not see it */
    struct sw_test_ws a, b;
    sw_test_fan_join(&a, rig->gw.port, "/live/one",
                     "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    sw_test_fan_join(&b, rig->gw.port, "/live/one", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 1);
    ck_assert_msg(a.head != NULL &&
                      strcasestr(a.head, "Sec-WebSocket-Extensions") == NULL,
                  "an extension was accepted for a fan-out client:\n%s",
                  a.head != NULL ? a.head : "");
    /* the upstream request: the first client's, with the route's edit, no
     * extension offer, and a key of the gateway's own */
    char *head = sw_test_fanback_cmd(&rig->feed, "head 1");
    ck_assert_ptr_nonnull(head);
    ck_assert_msg(strncmp(head, "GET /live/one HTTP/1.1", 22) == 0, "%s", head);
    ck_assert_msg(strcasestr(head, "X-Fanout-Edit: yes") != NULL,
                  "route edit missing upstream: %s", head);
    ck_assert_msg(strcasestr(head, "Sec-WebSocket-Extensions") == NULL,
                  "extension offer went upstream: %s", head);
    ck_assert_msg(strstr(head, a.key) == NULL,
                  "the client's own Sec-WebSocket-Key went upstream: %s", head);
    ck_assert_msg(strcasestr(head, "Sec-WebSocket-Key:") != NULL, "%s", head);
    free(head);

    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

/* Read one message of any SEQ, then the rest up to `last` in order:
 * for a client that joined while traffic was flowing. */
static void
catch_up(struct sw_test_ws *ws, const char *who, unsigned long long last)
{
    unsigned long long s =
        sw_test_fan_expect(ws, who, 0, 1, "/live/jl", 0, WAIT_MS);
    ck_assert_msg(s <= last, "%s: SEQ %llu after the last sent (%llu)", who, s,
                  last);
    if (s < last) {
        sw_test_fan_expect(ws, who, s + 1, (unsigned)(last - s), "/live/jl", 0,
                           WAIT_MS);
    }
}

START_TEST(join_and_leave_during_traffic)
{
    struct sw_test_ws a, b, c, d;
    sw_test_fan_join(&a, rig->gw.port, "/live/jl", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/live/jl", NULL);
    unsigned long long s1 = sw_test_fanback_send(&rig->feed, 10, 100, false);
    sw_test_fan_expect(&a, "a", s1, 10, "/live/jl", 100, WAIT_MS);
    sw_test_fan_expect(&b, "b", s1, 10, "/live/jl", 100, WAIT_MS);

    /* c joins between two batches: it gets the second batch, from its
     * first message */
    sw_test_fan_join(&c, rig->gw.port, "/live/jl", NULL);
    unsigned long long s2 = sw_test_fanback_send(&rig->feed, 10, 100, false);
    sw_test_fan_expect(&c, "c", s2, 10, "/live/jl", 100, WAIT_MS);

    /* d joins while 300 messages are on their way, b leaves in the middle
     * of them: a and c get every one, d a tail of them in order */
    unsigned long long s3 = sw_test_fanback_send(&rig->feed, 300, 100, false);
    sw_test_fan_join(&d, rig->gw.port, "/live/jl", NULL);
    ck_assert_int_eq(sw_test_ws_close_handshake(&b, 1000, WAIT_MS), 1000);
    sw_test_ws_free(&b);
    unsigned long long s4 = sw_test_fanback_send(&rig->feed, 10, 100, false);
    sw_test_fan_expect(&a, "a", s2, 320, "/live/jl", 100, WAIT_MS);
    sw_test_fan_expect(&c, "c", s3, 310, "/live/jl", 100, WAIT_MS);
    catch_up(&d, "d", s4 + 9);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 3);

    /* a leaves: c and d carry on */
    sw_test_fan_leave(&a);
    unsigned long long s5 = sw_test_fanback_send(&rig->feed, 5, 100, false);
    sw_test_fan_expect(&c, "c", s5, 5, "/live/jl", 100, WAIT_MS);
    sw_test_fan_expect(&d, "d", s5, 5, "/live/jl", 100, WAIT_MS);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 1);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 2);
    sw_test_fan_leave(&c);
    sw_test_fan_leave(&d);
}
END_TEST

/* Clients join `paths` (NULL-terminated, with header lines `extra[i]` or
 * NULL); after one broadcast each must see the messages of `want[i]`, the
 * upstream target of its channel. */
static void
apart(const char *const *paths, const char *const *extra,
      const char *const *want, int channels, int largest)
{
    struct sw_test_ws ws[8];
    int n = 0;
    for (; paths[n] != NULL; n++) {
        sw_test_fan_join(&ws[n], rig->gw.port, paths[n], extra[n]);
    }
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), channels);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channels", channels);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", n);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channel_clients_max", largest);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 20, 64, false);
    for (int i = 0; i < n; i++) {
        sw_test_fan_expect(&ws[i], paths[i], s, 20, want[i], 64, WAIT_MS);
    }
    /* every upstream message is fanned out once per channel */
    sw_test_fan_metric_is(rig, "shockwave_fanout_messages_total",
                          20 * channels);
    sw_test_fan_metric_is(rig, "shockwave_fanout_deliveries_total", 20 * n);
    for (int i = 0; i < n; i++) {
        sw_test_fan_leave(&ws[i]);
    }
}

START_TEST(channels_apart_by_path)
{
    const char *paths[] = {"/live/a", "/live/b", "/live/a",
                           "/live/b", "/live/a", NULL};
    const char *extra[8] = {NULL};
    const char *want[] = {"/live/a", "/live/b", "/live/a", "/live/b",
                          "/live/a"};
    apart(paths, extra, want, 2, 3);
}
END_TEST

START_TEST(uri_leaves_out_the_query)
{
    /* $uri is the normalised path without the query, as nginx's: ?x=1
     * and ?x=2 share the channel the first client opened ($arg_NAME is
     * how a query argument picks a channel) */
    const char *paths[] = {"/live/q?x=1", "/live/q?x=2", "/live/q?x=1", NULL};
    const char *extra[8] = {NULL};
    const char *want[] = {"/live/q?x=1", "/live/q?x=1", "/live/q?x=1"};
    apart(paths, extra, want, 1, 3);
}
END_TEST

START_TEST(channels_apart_by_arg)
{
    /* "room-$arg_room": the argument decides, wherever it stands */
    const char *paths[] = {"/room/x?room=1&u=alice", "/room/y?u=bob&room=1",
                           "/room/x?room=2", "/room/z?room=2&room2=9", NULL};
    const char *extra[8] = {NULL};
    const char *want[] = {"/room/x?room=1&u=alice", "/room/x?room=1&u=alice",
                          "/room/x?room=2", "/room/x?room=2"};
    apart(paths, extra, want, 2, 2);
}
END_TEST

START_TEST(channels_apart_by_header)
{
    /* $http_x_channel: header names in any case */
    const char *paths[] = {"/hdr/1", "/hdr/2", "/hdr/3",
                           "/hdr/4", "/hdr/5", NULL};
    const char *extra[8] = {"X-Channel: red\r\n", "x-channel: red\r\n",
                            "X-CHANNEL: blue\r\n", "X-Channel: blue\r\n",
                            "x-CHANNEL: red\r\n"};
    const char *want[] = {"/hdr/1", "/hdr/1", "/hdr/3", "/hdr/3", "/hdr/1"};
    apart(paths, extra, want, 2, 3);
}
END_TEST

START_TEST(channels_apart_by_host)
{
    /* "h-$host": the Host header as sent */
    const char *hosts[] = {"a.example", "b.example", "a.example"};
    struct sw_test_ws ws[3];
    for (int i = 0; i < 3; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/byhost/%d", i);
        int st = sw_test_ws_open(&ws[i], rig->gw.port, hosts[i], path, NULL);
        ck_assert_msg(st == 101, "host %s: status %d", hosts[i], st);
    }
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 2);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 10, 32, false);
    const char *want[] = {"/byhost/0", "/byhost/1", "/byhost/0"};
    for (int i = 0; i < 3; i++) {
        sw_test_fan_expect(&ws[i], hosts[i], s, 10, want[i], 32, WAIT_MS);
        sw_test_fan_leave(&ws[i]);
    }
}
END_TEST

static const char held_req[] =
    "GET /live/held2 HTTP/1.1\r\nHost: app.example\r\n"
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

START_TEST(later_client_answered_at_once)
{
    struct sw_test_ws a, b;
    sw_test_fan_join(&a, rig->gw.port, "/live/held", NULL);
    /* from now on the backend answers no upgrade: a later client of the
     * channel still gets its 101, without any upstream request */
    sw_test_fanback_ok(&rig->feed, "hold on", "ok");
    sw_test_fan_join(&b, rig->gw.port, "/live/held", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 1);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 3, 32, false);
    sw_test_fan_expect(&a, "a", s, 3, "/live/held", 32, WAIT_MS);
    sw_test_fan_expect(&b, "b", s, 3, "/live/held", 32, WAIT_MS);

    /* the first client of a new channel waits for the upstream's 101 */
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, rig->gw.port));
    ck_assert(sw_test_conn_send(&c, held_req, strlen(held_req)));
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "held", 1, WAIT_MS), 1);
    ck_assert_msg(sw_test_conn_fill(&c, 0) < 0 && c.len == 0,
                  "the gateway answered before the upstream did: %.*s",
                  (int)c.len, c.buf != NULL ? c.buf : "");
    sw_test_fanback_ok(&rig->feed, "hold off", "ok");
    struct sw_test_resp r;
    int rc = sw_test_conn_read_resp(&c, &r, false);
    ck_assert_msg(rc == 1 && r.status == 101, "new channel: rc %d status %d",
                  rc, r.status);
    ck_assert_str_eq(sw_test_resp_header(&r, "Sec-WebSocket-Accept"),
                     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

/*
 * An upgrade pipelined behind a request the gateway answers itself: the
 * answer is still queued to the client when the upgrade's head is read
 * (on io_uring, in the end's send queue, which must be sent before the
 * client can leave the ring for the channel). The 404 comes first, then
 * the 101, and the client is the channel's.
 */
START_TEST(upgrade_pipelined_behind_an_answer)
{
    static const char reqs[] =
        "GET /nowhere HTTP/1.1\r\nHost: app.example\r\n\r\n"
        "GET /live/piped HTTP/1.1\r\nHost: app.example\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, rig->gw.port));
    ck_assert(sw_test_conn_send(&c, reqs, strlen(reqs)));
    struct sw_test_resp r;
    int rc = sw_test_conn_read_resp(&c, &r, false);
    ck_assert_msg(rc == 1 && r.status == 404, "first: rc %d status %d", rc,
                  r.status);
    sw_test_resp_free(&r);
    rc = sw_test_conn_read_resp(&c, &r, false);
    ck_assert_msg(rc == 1 && r.status == 101, "upgrade: rc %d status %d", rc,
                  r.status);
    ck_assert_str_eq(sw_test_resp_header(&r, "Sec-WebSocket-Accept"),
                     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    sw_test_resp_free(&r);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 1);
    sw_test_conn_close(&c);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 0);
}
END_TEST

/* sw_test_ws_open on /proto/room offering `offer` (NULL: none). */
static int
open_proto(struct sw_test_ws *ws, const char *offer)
{
    char extra[128] = "";
    if (offer != NULL) {
        snprintf(extra, sizeof(extra), "Sec-WebSocket-Protocol: %s\r\n", offer);
    }
    return sw_test_ws_open(ws, rig->gw.port, "app.example", "/proto/room",
                           extra);
}

static void
has_proto(const struct sw_test_ws *ws, const char *who)
{
    ck_assert_msg(ws->head != NULL &&
                      strcasestr(ws->head, "Sec-WebSocket-Protocol: chat\r") !=
                          NULL,
                  "%s: 101 without the channel's subprotocol:\n%s", who,
                  ws->head != NULL ? ws->head : "");
}

START_TEST(subprotocol_of_the_channel)
{
    struct sw_test_ws a, b, c, d;
    ck_assert_int_eq(open_proto(&a, "superchat, chat"), 101);
    has_proto(&a, "first client");
    ck_assert_int_eq(open_proto(&b, "chat"), 101);
    has_proto(&b, "later client offering it");
    /* the channel speaks chat: a client that did not offer it is refused */
    int st = open_proto(&c, NULL);
    ck_assert_msg(st == 400, "no offer: status %d, expected 400", st);
    sw_test_ws_free(&c);
    st = open_proto(&d, "superchat");
    ck_assert_msg(st == 400, "other offer: status %d, expected 400", st);
    sw_test_ws_free(&d);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->chat, "upgraded"), 1);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 2);
    unsigned long long s = sw_test_fanback_send(&rig->chat, 4, 16, false);
    sw_test_fan_expect(&a, "a", s, 4, "/proto/room", 16, WAIT_MS);
    sw_test_fan_expect(&b, "b", s, 4, "/proto/room", 16, WAIT_MS);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(linger_then_close)
{
    /* fanout_linger 0: the upstream closes with the last client */
    struct sw_test_ws z;
    sw_test_fan_join(&z, rig->gw.port, "/now/x", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "live"), 1);
    sw_test_fan_leave(&z);
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "live", 0, WAIT_MS), 0);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "lastclose"), 1000);

    /* fanout_linger 3s */
    struct sw_test_ws a, b, c;
    sw_test_fan_join(&a, rig->gw.port, "/live/lg", NULL);
    unsigned long long s = sw_test_fanback_send(&rig->feed, 2, 16, false);
    sw_test_fan_expect(&a, "a", s, 2, "/live/lg", 16, WAIT_MS);
    sw_test_fan_leave(&a);
    /* back within the linger: the same upstream serves it */
    sw_test_fan_join(&b, rig->gw.port, "/live/lg", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "accepted"), 2);
    s = sw_test_fanback_send(&rig->feed, 2, 16, false);
    sw_test_fan_expect(&b, "b", s, 2, "/live/lg", 16, WAIT_MS);
    ck_assert_int_eq(
        sw_test_fan_metric(rig, "shockwave_fanout_upstream_connects_total"), 2);
    sw_test_fan_leave(&b);
    /* after the linger the upstream gets close 1000 */
    ck_assert_int_eq(sw_test_fanback_wait(&rig->feed, "live", 0, 3 * WAIT_MS),
                     0);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "closes"), 2);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "lastclose"), 1000);
    sw_test_fan_metric_is(rig, "shockwave_fanout_channels", 0);
    /* a client after that opens a new upstream */
    sw_test_fan_join(&c, rig->gw.port, "/live/lg", NULL);
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "upgraded"), 3);
    sw_test_fan_metric_is(rig, "shockwave_fanout_upstream_connects_total", 3);
    sw_test_fan_leave(&c);
}
END_TEST

START_TEST(upstream_refused_502)
{
    struct sw_test_ws a;
    int st = sw_test_ws_open(&a, rig->gw.port, "app.example", "/dead/x", NULL);
    ck_assert_msg(st == 502, "upstream refused: status %d, expected 502", st);
    sw_test_ws_free(&a);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 0);
    /* the daemon still serves the other routes */
    struct sw_test_ws b;
    sw_test_fan_join(&b, rig->gw.port, "/live/after502", NULL);
    sw_test_fan_leave(&b);
}
END_TEST

static Suite *
fanout_suite(void)
{
    Suite *s = suite_create("fanout");
    TCase *tc = tcase_create("fanout");
    rig = sw_test_fan_fixture(tc, "fanout.conf", NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_upstream_per_channel);
    tcase_add_test(tc, upstream_request_of_the_channel);
    tcase_add_test(tc, join_and_leave_during_traffic);
    tcase_add_test(tc, channels_apart_by_path);
    tcase_add_test(tc, uri_leaves_out_the_query);
    tcase_add_test(tc, channels_apart_by_arg);
    tcase_add_test(tc, channels_apart_by_header);
    tcase_add_test(tc, channels_apart_by_host);
    tcase_add_test(tc, later_client_answered_at_once);
    tcase_add_test(tc, upgrade_pipelined_behind_an_answer);
    tcase_add_test(tc, subprotocol_of_the_channel);
    tcase_add_test(tc, linger_then_close);
    tcase_add_test(tc, upstream_refused_502);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_suite());
}
