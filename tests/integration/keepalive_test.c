/*
 * keepalive_test.c - keep-alive on both sides and the balancers.
 *
 * tests/conf/keepalive.conf runs one worker, so the upstream keep-alive pool
 * and the balancer state are shared by every client connection: reuse shows
 * as the same X-Conn-Id (the backend's per-TCP-connection id) over several
 * requests, and round robin weights come out exact.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static struct sw_test_proc be[3]; /* swload echo b1, b2, b3 */
static struct sw_test_gw gw;      /* the daemon */

static void
setup(void)
{
    const char *names[3] = {"b1", "b2", "b3"};
    const char *keys[3] = {"B1", "B2", "B3"};
    const char *kv[7];
    for (size_t i = 0; i < 3; i++) {
        int port;
        ck_assert(sw_test_backend_start(&be[i], names[i], &port));
        kv[2 * i] = keys[i];
        kv[2 * i + 1] = sw_test_itoa(port);
    }
    kv[6] = NULL;
    ck_assert(sw_test_gw_start(&gw, "keepalive.conf", kv));
}

static void
teardown(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    for (size_t i = 0; i < 3; i++) {
        sw_test_proc_stop(&be[i], 2000);
    }
}


/* One request on c; returns the response (caller frees). */
static void
get(struct sw_test_conn *c, const char *host, const char *path,
    const char *extra, struct sw_test_resp *r)
{
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path,
             host, extra);
    ck_assert_int_eq(sw_test_conn_request(c, req, r), 1);
    ck_assert_int_eq(r->status, 200);
}

START_TEST(upstream_reuse_one_client)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    char *m0 = sw_test_metrics_fetch(gw.admin_port);
    long long reused0 =
        sw_test_metric_in(m0, "shockwave_upstream_reused_total");
    long long conn0 =
        sw_test_metric_in(m0, "shockwave_upstream_connects_total");
    free(m0);
    ck_assert_int_ge(reused0, 0);
    ck_assert_int_ge(conn0, 0);

    ck_assert(sw_test_conn_open(&c, gw.port));
    char first_id[32] = "";
    for (int i = 1; i <= 5; i++) {
        get(&c, "a.test", "/ka", "", &r);
        const char *id = sw_test_resp_header(&r, "X-Conn-Id");
        const char *k = sw_test_resp_header(&r, "X-Conn-Requests");
        ck_assert_ptr_nonnull(id);
        ck_assert_ptr_nonnull(k);
        if (i == 1) {
            snprintf(first_id, sizeof(first_id), "%s", id);
        }
        ck_assert_str_eq(id, first_id);
        ck_assert_int_eq(atoi(k), i);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);

    char *m1 = sw_test_metrics_fetch(gw.admin_port);
    ck_assert_int_eq(sw_test_metric_in(m1, "shockwave_upstream_connects_total"),
                     conn0 + 1);
    ck_assert_int_ge(sw_test_metric_in(m1, "shockwave_upstream_reused_total"),
                     reused0 + 4);
    free(m1);
}
END_TEST

START_TEST(upstream_reuse_across_clients)
{
    struct sw_test_resp r;
    char first_id[32] = "";
    for (int i = 1; i <= 4; i++) {
        /* A fresh client connection each time, closed by the client. */
        struct sw_test_conn c;
        ck_assert(sw_test_conn_open(&c, gw.port));
        get(&c, "a.test", "/x", "", &r);
        const char *id = sw_test_resp_header(&r, "X-Conn-Id");
        ck_assert_ptr_nonnull(id);
        if (i == 1) {
            snprintf(first_id, sizeof(first_id), "%s", id);
        }
        ck_assert_msg(strcmp(id, first_id) == 0,
                      "request %d used upstream connection %s, not %s", i,
                      id, first_id);
        ck_assert_int_eq(atoi(sw_test_resp_header(&r, "X-Conn-Requests")),
                         i);
        sw_test_resp_free(&r);
        sw_test_conn_close(&c);
        /* Let the daemon see the close and park the upstream connection. */
        sw_test_sleep_ms(20);
    }
}
END_TEST

/* The ring's completions so far: [0] receives, [1] sends. */
static void
ring_completions(long long out[2])
{
    char *m = sw_test_metrics_fetch(gw.admin_port);
    out[0] =
        sw_test_metric_in(m, "shockwave_io_uring_receive_completions_total");
    out[1] = sw_test_metric_in(m, "shockwave_io_uring_send_completions_total");
    free(m);
    ck_assert_int_ge(out[0], 0);
    ck_assert_int_ge(out[1], 0);
}

/*
 * Plain keep-alive GETs go through the io_uring ring at both ends: the
 * client from its accept, the upstream from its connect, and again when a
 * second client takes it from the keep-alive pool. Each GET is at least
 * one receive and one send at each end (the client waits for the answer
 * before the next). On epoll there is no ring: the counters stay 0.
 */
#define RING_GETS 10
START_TEST(http_on_the_ring)
{
    long long before[2];
    long long after[2];
    ring_completions(before);
    struct sw_test_resp r;
    char first_id[32] = "";
    for (int k = 0; k < 2; k++) {
        struct sw_test_conn c;
        ck_assert(sw_test_conn_open(&c, gw.port));
        for (int i = 0; i < RING_GETS; i++) {
            get(&c, "a.test", "/ring", "", &r);
            const char *id = sw_test_resp_header(&r, "X-Conn-Id");
            ck_assert_ptr_nonnull(id);
            if (first_id[0] == '\0') {
                snprintf(first_id, sizeof(first_id), "%s", id);
            }
            /* the second client's GETs ride the pooled connection */
            ck_assert_str_eq(id, first_id);
            sw_test_resp_free(&r);
        }
        sw_test_conn_close(&c);
        sw_test_sleep_ms(20); /* the upstream connection goes to the pool */
    }
    ring_completions(after);
    long long gets = 2 * RING_GETS;
    if (sw_test_on_io_uring()) {
        ck_assert_int_ge(after[0] - before[0], 2 * gets);
        ck_assert_int_ge(after[1] - before[1], 2 * gets);
    } else {
        ck_assert_int_eq(after[0], 0);
        ck_assert_int_eq(after[1], 0);
    }
}
END_TEST

START_TEST(client_keepalive)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    for (int i = 0; i < 10; i++) {
        get(&c, "a.test", "/k", "", &r);
        const char *conn = sw_test_resp_header(&r, "Connection");
        ck_assert_msg(conn == NULL || strcasecmp(conn, "close") != 0,
                      "response %d closes the connection", i);
        sw_test_resp_free(&r);
    }
    ck_assert(!c.eof);
    /* keepalive_timeout 1s: the idle connection is closed by the daemon. */
    ck_assert_msg(sw_test_conn_closed(&c, 4000),
                  "idle client connection still open after 4 s");
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(http10_closes)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    ck_assert_int_eq(sw_test_conn_request(&c,
                                          "GET /old HTTP/1.0\r\n"
                                          "Host: a.test\r\n\r\n",
                                          &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    ck_assert(sw_test_conn_closed(&c, 2000));
    sw_test_conn_close(&c);

    /* An explicit Connection: close on 1.1 closes too. */
    ck_assert(sw_test_conn_open(&c, gw.port));
    get(&c, "a.test", "/bye", "Connection: close\r\n", &r);
    sw_test_resp_free(&r);
    ck_assert(sw_test_conn_closed(&c, 2000));
    sw_test_conn_close(&c);
}
END_TEST

START_TEST(round_robin_weights)
{
    struct sw_test_conn c;
    struct sw_test_resp r;
    int n1 = 0;
    int n2 = 0;
    int run = 0;
    int max_run = 0;
    ck_assert(sw_test_conn_open(&c, gw.port));
    for (int i = 0; i < 60; i++) {
        get(&c, "rr.test", "/rr", "", &r);
        const char *b = sw_test_resp_header(&r, "X-Backend");
        ck_assert_ptr_nonnull(b);
        if (strcmp(b, "b1") == 0) {
            n1++;
            run++;
            max_run = run > max_run ? run : max_run;
        } else {
            ck_assert_str_eq(b, "b2");
            n2++;
            run = 0;
        }
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
    ck_assert_int_eq(n1, 40);
    ck_assert_int_eq(n2, 20);
    /* Smooth weighted round robin never sends b1 three in a row. */
    ck_assert_int_le(max_run, 2);
}
END_TEST

START_TEST(least_conn)
{
    struct sw_test_conn slow;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&slow, gw.port));
    slow.timeout_ms = 8000;
    ck_assert(sw_test_conn_sendf(&slow, "GET /sleep/1500 HTTP/1.1\r\n"
                                        "Host: lc.test\r\n\r\n"));
    sw_test_sleep_ms(250);
    /* While one server is busy, every new request goes to the other. */
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.port));
    char other[16] = "";
    for (int i = 0; i < 6; i++) {
        get(&c, "lc.test", "/quick", "", &r);
        const char *b = sw_test_resp_header(&r, "X-Backend");
        ck_assert_ptr_nonnull(b);
        if (i == 0) {
            snprintf(other, sizeof(other), "%s", b);
        }
        ck_assert_str_eq(b, other);
        sw_test_resp_free(&r);
    }
    sw_test_conn_close(&c);
    ck_assert_int_eq(sw_test_conn_read_resp(&slow, &r, false), 1);
    ck_assert_int_eq(r.status, 200);
    const char *busy = sw_test_resp_header(&r, "X-Backend");
    ck_assert_ptr_nonnull(busy);
    ck_assert_str_ne(busy, other);
    sw_test_resp_free(&r);
    sw_test_conn_close(&slow);
}
END_TEST

START_TEST(hash_header_stable)
{
    struct sw_test_resp r;
    char seen[4][16] = {"", "", "", ""};
    int nseen = 0;
    /* The same user lands on the same server, over fresh connections. */
    char alice[16] = "";
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(sw_test_http_once(gw.port,
                                           "GET /h HTTP/1.1\r\n"
                                           "Host: hash.test\r\n"
                                           "X-User: alice\r\n"
                                           "Connection: close\r\n\r\n",
                                           &r),
                         1);
        const char *b = sw_test_resp_header(&r, "X-Backend");
        ck_assert_ptr_nonnull(b);
        if (i == 0) {
            snprintf(alice, sizeof(alice), "%s", b);
        }
        ck_assert_str_eq(b, alice);
        sw_test_resp_free(&r);
    }
    /* Each of 30 users is stable, and users spread over the servers. */
    for (int u = 0; u < 30; u++) {
        char first[16] = "";
        for (int k = 0; k < 3; k++) {
            char req[256];
            snprintf(req, sizeof(req),
                     "GET /h HTTP/1.1\r\nHost: hash.test\r\nX-User: user-%d\r\n"
                     "Connection: close\r\n\r\n",
                     u);
            ck_assert_int_eq(sw_test_http_once(gw.port, req, &r), 1);
            const char *b = sw_test_resp_header(&r, "X-Backend");
            ck_assert_ptr_nonnull(b);
            if (k == 0) {
                snprintf(first, sizeof(first), "%s", b);
            }
            ck_assert_msg(strcmp(b, first) == 0, "user-%d moved %s -> %s", u,
                          first, b);
            sw_test_resp_free(&r);
        }
        bool known = false;
        for (int i = 0; i < nseen; i++) {
            known = known || strcmp(seen[i], first) == 0;
        }
        if (!known && nseen < 4) {
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", first);
        }
    }
    ck_assert_msg(nseen >= 2, "30 users all hashed to %s", seen[0]);
}
END_TEST

static Suite *
keepalive_suite(void)
{
    Suite *s = suite_create("keepalive");
    TCase *tc = tcase_create("keepalive");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, upstream_reuse_one_client);
    tcase_add_test(tc, upstream_reuse_across_clients);
    tcase_add_test(tc, http_on_the_ring);
    tcase_add_test(tc, client_keepalive);
    tcase_add_test(tc, http10_closes);
    tcase_add_test(tc, round_robin_weights);
    tcase_add_test(tc, least_conn);
    tcase_add_test(tc, hash_header_stable);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(keepalive_suite());
}
