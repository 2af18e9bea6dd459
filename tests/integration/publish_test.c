/*
 * publish_test.c - POST /publish?upstream=NAME&channel=KEY on the admin
 * listener (tests/conf/publish.conf, no fanout_bus: one gateway).
 *
 *   test --raw HTTP--> admin listener --sw_fanout_hub_publish--> channel
 *                                                  |
 *   fan-out clients (wsclient) <-- the message ----+
 *
 * Every refusal with its status and reason (405 with Allow, 411, 413,
 * 400 for bad arguments and bad UTF-8, 404 for an upstream the
 * configuration lacks, 431 for a long head), the 202 and its JSON, bodies
 * in pieces and behind "100 Continue"; a published message, text and
 * binary, reaching the clients of its channel and no other, also with a
 * bus whose Redis is down ("bus":true, local delivery goes on); and a
 * reload that changes the bus settings warning that they wait for a
 * restart.
 */
#include "fanctl.h"
#include "net.h"
#include "proc.h"
#include "support.h"
#include "wsclient.h"

#include <check.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000
#define MIB (1u << 20)

static struct sw_test_fan_rig *rig; /* the fixture's (fanctl.h) */

/* Send head (a printf format) and then body[0..len) on a new admin
 * connection; read the answer into r (1xx answers skipped unless
 * keep_interim). Returns sw_test_conn_read_resp's result. */
static int
request(struct sw_test_resp *r, const void *body, size_t len, const char *head)
{
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, rig->gw.admin_port));
    ck_assert(sw_test_conn_send(&c, head, strlen(head)));
    if (len > 0) {
        ck_assert(sw_test_conn_send(&c, body, len));
    }
    int rc;
    do {
        memset(r, 0, sizeof(*r));
        rc = sw_test_conn_read_resp(&c, r, false);
        if (rc == 1 && r->status >= 100 && r->status < 200) {
            sw_test_resp_free(r);
            continue;
        }
        break;
    } while (true);
    sw_test_conn_close(&c);
    return rc;
}

/* POST /publish?QUERY with a body; the answer in r. */
static void
publish(struct sw_test_resp *r, const char *query, const char *type,
        const void *body, size_t len)
{
    char head[4096];
    snprintf(head, sizeof(head),
             "POST /publish?%s HTTP/1.1\r\nHost: admin\r\n%s%s%s"
             "Content-Length: %zu\r\n\r\n",
             query, type ? "Content-Type: " : "", type ? type : "",
             type ? "\r\n" : "", len);
    ck_assert_int_eq(request(r, body, len, head), 1);
}

static void
expect_answer(const struct sw_test_resp *r, int status, const char *text,
              const char *what)
{
    ck_assert_msg(r->status == status && strstr(r->body, text) != NULL,
                  "%s: want %d with \"%s\", got %d:\n%s%s", what, status, text,
                  r->status, r->head, r->body);
    ck_assert_str_eq(sw_test_resp_header(r, "Connection"), "close");
}

START_TEST(refusals)
{
    static const struct {
        const char *req; /* a whole request */
        int status;
        const char *text; /* in the answer's body */
    } cases[] = {
        {"GET /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n\r\n",
         405, "GET: /publish takes POST only"},
        {"PUT /publish HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", 405,
         "PUT: /publish takes POST only"},
        {"POST /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n\r\n",
         411, "a Content-Length is required"},
        {"POST /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n"
         "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
         411, "a Content-Length is required (not chunked)"},
        /* the head alone: refused before a byte of the body */
        {"POST /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1048577\r\n\r\n",
         413, "message of 1048577 bytes: at most 1048576 are taken"},
        {"POST /publish?channel=x HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, "missing argument \"upstream\""},
        {"POST /publish?upstream=feed HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, "missing argument \"channel\""},
        {"POST /publish HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", 400,
         "missing argument \"upstream\""},
        {"POST /publish?upstream=feed&channel= HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, "missing argument \"channel\""},
        {"POST /publish?upstream=feed&channel=a%zz HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, "bad percent escape in argument \"channel\""},
        {"POST /publish?upstream=feed&channel=a%2 HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, "bad percent escape in argument \"channel\""},
        {"POST /publish?upstream=fe%00ed&channel=a HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, "bad percent escape in argument \"upstream\""},
        {"POST /publish?upstream=nope&channel=/live/a HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         404, "unknown upstream \"nope\""},
        /* names are matched exactly: case counts */
        {"POST /publish?upstream=FEED&channel=/live/a HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         404, "unknown upstream \"FEED\""},
        /* the key separator cannot be smuggled into a name */
        {"POST /publish?upstream=feed%1Fx&channel=a HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 1\r\n\r\nx",
         404, "unknown upstream \"feed?x\""},
        {"POST /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n"
         "Content-Length: 2\r\n\r\n\xc3\x28",
         400, "the message is not valid UTF-8"},
        /* a text message that ends inside a character */
        {"POST /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Length: 3\r\n\r\nab\xe2",
         400, "the message is not valid UTF-8"},
        /* HTTP/1.1 without Host: the gateway's request decoder says no */
        {"POST /publish?upstream=feed&channel=x HTTP/1.1\r\n"
         "Content-Length: 1\r\n\r\nx",
         400, ""},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_test_resp r;
        ck_assert_int_eq(request(&r, NULL, 0, cases[i].req), 1);
        expect_answer(&r, cases[i].status, cases[i].text, cases[i].req);
        if (cases[i].status == 405) {
            ck_assert_str_eq(sw_test_resp_header(&r, "Allow"), "POST");
        }
        sw_test_resp_free(&r);
    }

    /* "feed", the separator and the channel: 1,024 bytes at most, as the
     * key of a fan-out join */
    static char q[1200];
    char *p = q + sprintf(q, "upstream=feed&channel=");
    memset(p, 'k', 1019);
    p[1019] = '\0';
    struct sw_test_resp r;
    publish(&r, q, NULL, "x", 1);
    expect_answer(&r, 202, "kkkk\"", "1,024-byte key");
    sw_test_resp_free(&r);
    strcat(q, "k");
    publish(&r, q, NULL, "x", 1);
    expect_answer(&r, 400,
                  "argument \"channel\" too long: upstream and channel are at "
                  "most 1023 bytes together",
                  "long channel");
    sw_test_resp_free(&r);

    /* a head past the admin's 2 KiB */
    char head[3000];
    snprintf(head, sizeof(head),
             "POST /publish?upstream=feed&channel=x HTTP/1.1\r\nHost: a\r\n"
             "X-Pad: %02100d\r\nContent-Length: 1\r\n\r\nx",
             0);
    ck_assert_int_eq(request(&r, NULL, 0, head), 1);
    ck_assert_int_eq(r.status, 431);
    sw_test_resp_free(&r);

    /* each refusal has its log line */
    long n = sw_test_proc_log_count(&rig->gw.proc, 0,
                                    "admin: /publish refused:", NULL);
    ck_assert_msg(n >= (long)SW_NELEMS(cases) + 1,
                  "%ld refusal lines in the log", n);
    ck_assert_int_ge(sw_test_proc_log_count(&rig->gw.proc, 0,
                                            "refused: 404 unknown upstream "
                                            "\"nope\"",
                                            NULL),
                     1);

    /* the daemon serves on */
    ck_assert_int_eq(sw_test_http_get(rig->gw.admin_port, "a", "/healthz", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
}
END_TEST

START_TEST(accepted_answers)
{
    struct sw_test_resp r;
    publish(&r, "upstream=feed&channel=/live/nobody", NULL, "hello", 5);
    expect_answer(&r, 202, "", "plain");
    ck_assert_str_eq(sw_test_resp_header(&r, "Content-Type"),
                     "application/json");
    ck_assert_str_eq(r.body, "{\"channel\":\"/live/nobody\",\"upstream\":"
                             "\"feed\",\"local\":false,\"bus\":false}");
    sw_test_resp_free(&r);

    /* arguments percent-decoded, in any order, "+" kept; UTF-8 names shown
     * as they are */
    publish(&r, "channel=room-a%20b+c%C3%A9&x=1&upstream=fe%65d", NULL, "", 0);
    expect_answer(&r, 202, "", "decoded");
    ck_assert_str_eq(r.body, "{\"channel\":\"room-a b+c\xc3\xa9\",\"upstream\":"
                             "\"feed\",\"local\":false,\"bus\":false}");
    sw_test_resp_free(&r);

    /* binary: any bytes, up to exactly 1 MiB */
    uint8_t *big = malloc(MIB);
    ck_assert_ptr_nonnull(big);
    sw_test_pattern_fill(0, big, MIB);
    big[7] = 0xff;
    publish(&r, "upstream=feed&channel=x", "application/octet-stream", big,
            MIB);
    expect_answer(&r, 202, "\"channel\":\"x\"", "1 MiB");
    sw_test_resp_free(&r);
    /* as text, the same bytes are refused */
    publish(&r, "upstream=feed&channel=x", "text/plain", big, MIB);
    expect_answer(&r, 400, "not valid UTF-8", "1 MiB text");
    sw_test_resp_free(&r);
    free(big);

    /* the body in pieces, after the head */
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, rig->gw.admin_port));
    ck_assert(sw_test_conn_sendf(&c, "POST /publish?upstream=chat&channel=p "
                                     "HTTP/1.1\r\nHost: a\r\n"
                                     "Content-Length: 11\r\n\r\nhel"));
    sw_test_sleep_ms(50);
    ck_assert(sw_test_conn_sendf(&c, "lo "));
    sw_test_sleep_ms(50);
    ck_assert(sw_test_conn_sendf(&c, "world"));
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    expect_answer(&r, 202, "\"upstream\":\"chat\"", "pieces");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);

    /* Expect: 100-continue gets its interim answer before the body */
    ck_assert(sw_test_conn_open(&c, rig->gw.admin_port));
    ck_assert(sw_test_conn_sendf(&c, "POST /publish?upstream=feed&channel=e "
                                     "HTTP/1.1\r\nHost: a\r\n"
                                     "Expect: 100-continue\r\n"
                                     "Content-Length: 4\r\n\r\n"));
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    ck_assert_int_eq(r.status, 100);
    sw_test_resp_free(&r);
    ck_assert(sw_test_conn_sendf(&c, "body"));
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    expect_answer(&r, 202, "\"channel\":\"e\"", "100-continue");
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);

    /* a body cut short: no answer, nothing published, the daemon serves on */
    ck_assert(sw_test_conn_open(&c, rig->gw.admin_port));
    ck_assert(sw_test_conn_sendf(&c, "POST /publish?upstream=feed&channel=cut "
                                     "HTTP/1.1\r\nHost: a\r\n"
                                     "Content-Length: 100\r\n\r\nonly this"));
    shutdown(c.fd, SHUT_WR);
    ck_assert(sw_test_conn_closed(&c, WAIT_MS));
    sw_test_conn_close(&c);
    ck_assert_int_eq(sw_test_http_get(rig->gw.admin_port, "a", "/healthz", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    ck_assert_int_eq(
        sw_test_proc_log_count(&rig->gw.proc, 0, "channel \"cut\"", NULL), 0);
}
END_TEST

/* The next message on ws: opcode and payload as given. */
static void
expect_msg(struct sw_test_ws *ws, const char *who, uint8_t opcode,
           const void *payload, size_t len)
{
    struct sw_test_ws_msg m;
    int rc = sw_test_ws_recv_msg(ws, &m, WAIT_MS);
    ck_assert_msg(rc == 1, "%s: no message (%d, %s)", who, rc,
                  ws->why ? ws->why : "-");
    ck_assert_msg(m.opcode == opcode && m.len == len &&
                      memcmp(m.payload, payload, len) == 0,
                  "%s: got opcode %u, %llu bytes \"%.*s\"; want opcode %u, "
                  "%zu bytes",
                  who, m.opcode, (unsigned long long)m.len,
                  (int)SW_MIN(m.len, 64), (const char *)m.payload, opcode, len);
    sw_test_ws_msg_free(&m);
}

START_TEST(reaches_the_channel)
{
    /* two clients of /live/pub (on either worker), one of another channel */
    struct sw_test_ws a, b, other, room;
    sw_test_fan_join(&a, rig->gw.port, "/live/pub", NULL);
    sw_test_fan_join(&b, rig->gw.port, "/live/pub", NULL);
    sw_test_fan_join(&other, rig->gw.port, "/live/other", NULL);
    /* $arg_room is taken raw: the key is "room-a%20b" */
    sw_test_fan_join(&room, rig->gw.port, "/room/?room=a%20b", NULL);
    sw_test_fan_metric_is(rig, "shockwave_fanout_clients", 4);

    struct sw_test_resp r;
    publish(&r, "upstream=feed&channel=/live/pub", NULL, "hello \xe2\x9c\x93",
            9);
    expect_answer(&r, 202, "", "text");
    ck_assert_str_eq(r.body, "{\"channel\":\"/live/pub\",\"upstream\":"
                             "\"feed\",\"local\":true,\"bus\":false}");
    sw_test_resp_free(&r);
    expect_msg(&a, "a", SW_WS_OP_TEXT, "hello \xe2\x9c\x93", 9);
    expect_msg(&b, "b", SW_WS_OP_TEXT, "hello \xe2\x9c\x93", 9);

    static const uint8_t bin[] = {0x00, 0xff, 0x80, 0x01, 0x00};
    publish(&r, "upstream=feed&channel=/live/pub", "application/octet-stream",
            bin, sizeof(bin));
    expect_answer(&r, 202, "\"local\":true", "binary");
    sw_test_resp_free(&r);
    expect_msg(&a, "a", SW_WS_OP_BINARY, bin, sizeof(bin));
    expect_msg(&b, "b", SW_WS_OP_BINARY, bin, sizeof(bin));

    /* the same key under another upstream is another channel: the first
     * message the other clients see is their own */
    publish(&r, "upstream=chat&channel=/live/other", NULL, "not yours", 9);
    expect_answer(&r, 202, "\"local\":false", "other upstream");
    sw_test_resp_free(&r);
    publish(&r, "upstream=feed&channel=/live/other", NULL, "yours", 5);
    expect_answer(&r, 202, "\"local\":true", "other");
    sw_test_resp_free(&r);
    expect_msg(&other, "other", SW_WS_OP_TEXT, "yours", 5);
    publish(&r, "upstream=feed&channel=room-a%2520b", NULL, "room", 4);
    expect_answer(&r, 202, "\"channel\":\"room-a%20b\"", "room");
    sw_test_resp_free(&r);
    expect_msg(&room, "room", SW_WS_OP_TEXT, "room", 4);
    /* and a/b got nothing of those: their next message is the next one */
    publish(&r, "upstream=feed&channel=/live/pub", NULL, "last", 4);
    sw_test_resp_free(&r);
    expect_msg(&a, "a", SW_WS_OP_TEXT, "last", 4);
    expect_msg(&b, "b", SW_WS_OP_TEXT, "last", 4);

    sw_test_fan_leave(&other);
    sw_test_fan_leave(&room);
    /* published messages go to the clients only, never upstream; what the
     * backend sends afterwards still comes, after them */
    ck_assert_int_eq(sw_test_fanback_stat(&rig->feed, "msgs"), 0);
    unsigned long long first = sw_test_fanback_send(&rig->feed, 2, 50, false);
    sw_test_fan_expect(&a, "a", first, 2, "/live/pub", 50, WAIT_MS);
    sw_test_fan_expect(&b, "b", first, 2, "/live/pub", 50, WAIT_MS);
    sw_test_fan_leave(&a);
    sw_test_fan_leave(&b);
}
END_TEST

START_TEST(bus_down_still_delivers)
{
    /* a second gateway with a bus whose Redis does not answer */
    struct sw_test_gw gw;
    const char *kv[] = {"FEED", sw_test_itoa(rig->feed.port), "DEAD",
                        sw_test_itoa(sw_test_free_port()), NULL};
    ck_assert(sw_test_gw_start(&gw, "publish_bus.conf", kv));
    struct sw_test_ws a;
    sw_test_fan_join(&a, gw.port, "/live/bus", NULL);
    struct sw_test_conn c;
    ck_assert(sw_test_conn_open(&c, gw.admin_port));
    ck_assert(sw_test_conn_sendf(&c, "POST /publish?upstream=feed&channel="
                                     "/live/bus HTTP/1.1\r\nHost: a\r\n"
                                     "Content-Length: 7\r\n\r\nno bus!"));
    struct sw_test_resp r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(sw_test_conn_read_resp(&c, &r, false), 1);
    sw_test_conn_close(&c);
    expect_answer(&r, 202, "", "bus down");
    ck_assert_str_eq(r.body, "{\"channel\":\"/live/bus\",\"upstream\":"
                             "\"feed\",\"local\":true,\"bus\":true}");
    sw_test_resp_free(&r);
    expect_msg(&a, "a", SW_WS_OP_TEXT, "no bus!", 7);
    sw_test_fan_leave(&a);
    int st = 0;
    ck_assert_msg(sw_test_gw_stop_clean(&gw, &st), "exit status 0x%x", st);
}
END_TEST

START_TEST(reload_keeps_the_bus)
{
    /* fanout_bus_prefix and _lease changed: the reload goes through and
     * says they wait for a restart */
    char *text = NULL;
    ck_assert_int_eq(sw_test_shell(&text, "cat '%s'", rig->gw.conf_path), 0);
    size_t n = strlen(text) + 128;
    char *more = malloc(n);
    ck_assert_ptr_nonnull(more);
    snprintf(more, n, "%sfanout_bus_prefix other:;\nfanout_bus_lease 5s;\n",
             text);
    ck_assert(sw_test_write_file(rig->gw.conf_path, more));
    free(more);
    free(text);
    long mark = sw_test_proc_log_size(&rig->gw.proc);
    ck_assert(sw_test_proc_signal(&rig->gw.proc, SIGHUP));
    char *line = sw_test_proc_log_line(&rig->gw.proc, mark,
                                       "reload: fanout_bus", WAIT_MS);
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strstr(line, "take effect at the next restart") != NULL, "%s",
                  line);
    free(line);
    ck_assert_int_ge(sw_test_proc_wait_log(&rig->gw.proc,
                                           "configuration reloaded", mark,
                                           WAIT_MS),
                     0);
    /* a reload that leaves them alone says nothing of them */
    mark = sw_test_proc_log_size(&rig->gw.proc);
    ck_assert(sw_test_proc_signal(&rig->gw.proc, SIGHUP));
    long end = sw_test_proc_wait_log(&rig->gw.proc, "configuration reloaded",
                                     mark, WAIT_MS);
    ck_assert_int_ge(end, 0);
    ck_assert_int_eq(
        sw_test_proc_log_count(&rig->gw.proc, mark, "reload: fanout_bus", NULL),
        0);
}
END_TEST

static Suite *
publish_suite(void)
{
    Suite *s = suite_create("publish");
    TCase *tc = tcase_create("publish");
    tcase_set_timeout(tc, 120);
    rig = sw_test_fan_fixture(tc, "publish.conf", NULL);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, accepted_answers);
    tcase_add_test(tc, reaches_the_channel);
    tcase_add_test(tc, bus_down_still_delivers);
    tcase_add_test(tc, reload_keeps_the_bus);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(publish_suite());
}
