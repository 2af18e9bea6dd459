/*
 * conf_test.c - Check suite for lib/conf: sizes and durations, the parser,
 * every directive and its default (TLS ones too), templates and the
 * snapshot's reference count. Error messages and includes are in
 * conf_errors_test.c.
 */
#include <shockwave/conf.h>
#include <shockwave/log.h>

#include "conf_cases.h"
#include "support.h"

#include <check.h>
#include <limits.h>
#include <stdlib.h>

/* ---- sizes and durations ----------------------------------------------- */

static const struct {
    const char *in;
    enum sw_status rc;
    uint64_t out;
} size_vectors[] = {
    {"0", SW_OK, 0},
    {"512", SW_OK, 512},
    {"64k", SW_OK, 65536},
    {"64K", SW_OK, 65536},
    {"16m", SW_OK, 16777216},
    {"1g", SW_OK, 1073741824},
    {"1G", SW_OK, 1073741824},
    {"18446744073709551615", SW_OK, UINT64_MAX},
    {"", SW_EINVAL, 0},
    {"k", SW_EINVAL, 0},
    {"12q", SW_EINVAL, 0},
    {"1kb", SW_EINVAL, 0},
    {"-1", SW_EINVAL, 0},
    {"1.5k", SW_EINVAL, 0},
    {" 1", SW_EINVAL, 0},
    {"18446744073709551616", SW_EINVAL, 0},
    {"18014398509481984k", SW_EINVAL, 0},
};

START_TEST(test_sizes)
{
    for (size_t i = 0; i < SW_NELEMS(size_vectors); i++) {
        uint64_t v = 12345;
        const char *in = size_vectors[i].in;
        enum sw_status rc =
            sw_conf_parse_size((struct sw_str){in, strlen(in)}, &v);
        ck_assert_msg(rc == size_vectors[i].rc, "size \"%s\": rc %d", in, rc);
        if (rc == SW_OK) {
            ck_assert_msg(v == size_vectors[i].out, "size \"%s\": %llu", in,
                          (unsigned long long)v);
        } else {
            ck_assert_msg(v == 12345, "size \"%s\" wrote on failure", in);
        }
    }
}
END_TEST

static const struct {
    const char *in;
    enum sw_status rc;
    uint64_t ms;
} dur_vectors[] = {
    {"0", SW_OK, 0},
    {"250ms", SW_OK, 250},
    {"30s", SW_OK, 30000},
    {"5m", SW_OK, 300000},
    {"1h", SW_OK, 3600000},
    {"1d", SW_OK, 86400000},
    {"10", SW_OK, 10000},
    {"1h30m", SW_OK, 5400000},
    {"1m500ms", SW_OK, 60500},
    {"", SW_EINVAL, 0},
    {"ms", SW_EINVAL, 0},
    {"5x", SW_EINVAL, 0},
    {"1m30", SW_EINVAL, 0},
    {"s", SW_EINVAL, 0},
    {"5 s", SW_EINVAL, 0},
    {"-5s", SW_EINVAL, 0},
    {"1.5s", SW_EINVAL, 0},
    {"5S", SW_EINVAL, 0},
    {"99999999999999999999d", SW_EINVAL, 0},
    {"999999999999999d", SW_EINVAL, 0},
};

START_TEST(test_durations)
{
    for (size_t i = 0; i < SW_NELEMS(dur_vectors); i++) {
        uint64_t v = 12345;
        const char *in = dur_vectors[i].in;
        enum sw_status rc =
            sw_conf_parse_duration((struct sw_str){in, strlen(in)}, &v);
        ck_assert_msg(rc == dur_vectors[i].rc, "duration \"%s\": rc %d", in,
                      rc);
        if (rc == SW_OK) {
            ck_assert_msg(v == dur_vectors[i].ms, "duration \"%s\": %llu", in,
                          (unsigned long long)v);
        }
    }
}
END_TEST

/* ---- defaults and every directive -------------------------------------- */

START_TEST(test_defaults)
{
    struct sw_conf *cf = load(BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(atomic_load(&cf->refcnt), 1);
    ck_assert(str_is(cf->path, "t.conf"));
    ck_assert_uint_eq(cf->workers, 0);
    ck_assert_uint_eq(cf->nlistens, 1);
    ck_assert(str_is(cf->listens[0].text, "127.0.0.1:8080"));
    ck_assert_int_eq(cf->listens[0].backlog, 511);
    ck_assert_ptr_null(cf->admin);
    ck_assert(str_is(cf->error_log, "stderr"));
    ck_assert_str_eq(cf->error_log.p, "stderr"); /* NUL-terminated */
    ck_assert_int_eq(cf->log_level, SW_LOG_INFO);
    ck_assert(str_is(cf->access_log, "off"));
    ck_assert_uint_eq(cf->buffer_size, 16384);
    ck_assert_uint_eq(cf->ws_pipe_size, 1048576);
    ck_assert_uint_eq(cf->max_header_bytes, 16384);
    ck_assert_uint_eq(cf->max_request_line, 8192);
    ck_assert_uint_eq(cf->max_headers, 100);
    ck_assert_uint_eq(cf->max_body_size, 1048576);
    ck_assert_uint_eq(cf->max_client_connections, 10000);
    ck_assert_uint_eq(cf->client_header_timeout_ms, 10000);
    ck_assert_uint_eq(cf->client_body_timeout_ms, 60000);
    ck_assert_uint_eq(cf->keepalive_timeout_ms, 75000);
    ck_assert_uint_eq(cf->send_timeout_ms, 60000);
    ck_assert_uint_eq(cf->shutdown_timeout_ms, 10000);

    ck_assert_uint_eq(cf->nupstreams, 1);
    const struct sw_conf_upstream *u = &cf->upstreams[0];
    ck_assert(str_is(u->name, "demo"));
    ck_assert_uint_eq(u->index, 0);
    ck_assert_uint_eq(u->nservers, 1);
    ck_assert(str_is(u->servers[0].text, "127.0.0.1:9000"));
    ck_assert_uint_eq(u->servers[0].weight, 1);
    ck_assert_uint_eq(u->servers[0].max_fails, 1);
    ck_assert_uint_eq(u->servers[0].fail_timeout_ms, 10000);
    const struct sockaddr_in *sin =
        (const struct sockaddr_in *)&u->servers[0].addr;
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_uint_eq(u->servers[0].addrlen, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(ntohs(sin->sin_port), 9000);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    ck_assert_int_eq(u->balance, SW_CONF_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(u->keepalive, 32);
    ck_assert_uint_eq(u->keepalive_timeout_ms, 60000);
    ck_assert_uint_eq(u->connect_timeout_ms, 5000);
    ck_assert_uint_eq(u->read_timeout_ms, 60000);
    ck_assert_uint_eq(u->send_timeout_ms, 60000);

    ck_assert_uint_eq(cf->nroutes, 1);
    const struct sw_conf_route *r = &cf->routes[0];
    ck_assert_uint_eq(r->nhosts, 0);
    ck_assert(str_is(r->path_prefix, "/"));
    ck_assert_uint_eq(r->nheaders, 0);
    ck_assert_ptr_eq(r->upstream, u);
    ck_assert_int_eq(r->return_status, 0);
    ck_assert_uint_eq(r->nrequest_edits, 0);
    ck_assert_uint_eq(r->nresponse_edits, 0);
    ck_assert_uint_eq(r->connect_timeout_ms, 0);
    ck_assert_uint_eq(r->read_timeout_ms, 0);
    ck_assert_uint_eq(r->send_timeout_ms, 0);
    ck_assert_uint_eq(r->max_body_size, 0);
    ck_assert(!r->websocket);
    ck_assert_int_eq(r->ws_ping, SW_CONF_WS_PING_LOCAL);
    ck_assert_uint_eq(r->ws_ping_interval_ms, 0);
    ck_assert_uint_eq(r->ws_idle_timeout_ms, 0);
    ck_assert_uint_eq(r->ws_close_timeout_ms, 5000);
    ck_assert_uint_eq(r->ws_max_message, 16u << 20);
    ck_assert_uint_eq(r->ws_max_frame, 16u << 20);
    ck_assert_uint_eq(r->ws_max_buffer, 256u << 10);
    ck_assert_uint_eq(r->ws_splice_threshold, 16u << 10);
    ck_assert(!r->ws_validate_utf8);
    ck_assert_uint_eq(r->index, 0);
    ck_assert_uint_eq(r->line, 3);
    sw_conf_unref(cf);
}
END_TEST

static const char full_conf[] =
    "# every directive, none at its default\n"
    "workers 3;\n"
    "listen 127.0.0.1:8080 backlog=128;\n"
    "listen *:8081;\n"
    "listen [::1]:8082;\n"
    "admin 127.0.0.1:9901;\n"
    "error_log /var/log/sw/error.log;\n"
    "log_level debug;\n"
    "access_log stderr;\n"
    "buffer_size 32k;\n"
    "ws_pipe_size 256k;\n"
    "max_header_bytes 24k;\n"
    "max_request_line 4k;\n"
    "max_headers 50;\n"
    "max_body_size 0;\n"
    "max_client_connections 500;\n"
    "client_header_timeout 5s;\n"
    "client_body_timeout 30s;\n"
    "keepalive_timeout 0;\n"
    "send_timeout 20s;\n"
    "shutdown_timeout 1m;\n"
    "upstream api {\n"
    "    server 127.0.0.1:9000 weight=5 max_fails=3 fail_timeout=30s;\n"
    "    server [::1]:9001;\n"
    "    server localhost:9002 max_fails=0;\n"
    "    balance least_conn;\n"
    "    keepalive 8;\n"
    "    keepalive_timeout 10s;\n"
    "    connect_timeout 250ms;\n"
    "    read_timeout 2m;\n"
    "    send_timeout 3m;\n"
    "}\n"
    "upstream sticky { server 127.0.0.1:9100; balance hash $remote_addr; }\n"
    "upstream byuser {\n"
    "    server 127.0.0.1:9200;\n"
    "    balance hash header X-User;\n"
    "}\n"
    "route {\n"
    "    host API.Example.com *.example.com example.org.;\n"
    "    host [::1];\n"
    "    path_prefix /v1/;\n"
    "    header X-Canary 1;\n"
    "    header X-Debug;\n"
    "    upstream api;\n"
    "    request_header set X-Real-IP $remote_addr;\n"
    "    request_header add X-Forwarded-For \"${remote_addr}:$remote_port\";\n"
    "    request_header remove Cookie;\n"
    "    response_header set Server shockwave;\n"
    "    response_header remove X-Powered-By;\n"
    "    connect_timeout 1s;\n"
    "    read_timeout 2s;\n"
    "    send_timeout 3s;\n"
    "    max_body_size 10m;\n"
    "    websocket on;\n"
    "    ws_ping forward;\n"
    "    ws_ping_interval 20s;\n"
    "    ws_idle_timeout 1h;\n"
    "    ws_close_timeout 2s;\n"
    "    ws_max_message 1m;\n"
    "    ws_max_frame 0;\n"
    "    ws_max_buffer 128k;\n"
    "    ws_splice_threshold 0;\n"
    "    ws_validate_utf8 on;\n"
    "}\n"
    "route {\n"
    "    path_prefix /health;\n"
    "    return 200 \"ok \\\"fine\\\" \\\\ # not a comment\"; # a comment\n"
    "}\n"
    "route { upstream sticky; path_prefix /s; }\n"
    "route { upstream byuser; path_prefix /u; websocket off; }\n";

START_TEST(test_every_directive)
{
    struct sw_conf *cf = load(full_conf);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->workers, 3);
    ck_assert_uint_eq(cf->nlistens, 3);
    ck_assert_int_eq(cf->listens[0].backlog, 128);
    const struct sockaddr_in *any = (const void *)&cf->listens[1].addr;
    ck_assert_int_eq(any->sin_family, AF_INET);
    ck_assert_uint_eq(any->sin_addr.s_addr, htonl(INADDR_ANY));
    ck_assert_uint_eq(ntohs(any->sin_port), 8081);
    const struct sockaddr_in6 *v6 = (const void *)&cf->listens[2].addr;
    ck_assert_int_eq(v6->sin6_family, AF_INET6);
    ck_assert_uint_eq(cf->listens[2].addrlen, sizeof(struct sockaddr_in6));
    ck_assert(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    ck_assert_uint_eq(ntohs(v6->sin6_port), 8082);
    ck_assert(str_is(cf->listens[2].text, "[::1]:8082"));
    ck_assert_ptr_nonnull(cf->admin);
    ck_assert(str_is(cf->admin->text, "127.0.0.1:9901"));
    ck_assert(str_is(cf->error_log, "/var/log/sw/error.log"));
    ck_assert_int_eq(cf->log_level, SW_LOG_DEBUG);
    ck_assert(str_is(cf->access_log, "stderr"));
    ck_assert_uint_eq(cf->buffer_size, 32768);
    ck_assert_uint_eq(cf->ws_pipe_size, 262144);
    ck_assert_uint_eq(cf->max_header_bytes, 24576);
    ck_assert_uint_eq(cf->max_request_line, 4096);
    ck_assert_uint_eq(cf->max_headers, 50);
    ck_assert_uint_eq(cf->max_body_size, 0);
    ck_assert_uint_eq(cf->max_client_connections, 500);
    ck_assert_uint_eq(cf->client_header_timeout_ms, 5000);
    ck_assert_uint_eq(cf->client_body_timeout_ms, 30000);
    ck_assert_uint_eq(cf->keepalive_timeout_ms, 0);
    ck_assert_uint_eq(cf->send_timeout_ms, 20000);
    ck_assert_uint_eq(cf->shutdown_timeout_ms, 60000);

    ck_assert_uint_eq(cf->nupstreams, 3);
    const struct sw_conf_upstream *u = &cf->upstreams[0];
    ck_assert_uint_eq(u->nservers, 3);
    ck_assert_uint_eq(u->servers[0].weight, 5);
    ck_assert_uint_eq(u->servers[0].max_fails, 3);
    ck_assert_uint_eq(u->servers[0].fail_timeout_ms, 30000);
    ck_assert_int_eq(u->servers[1].addr.ss_family, AF_INET6);
    ck_assert_uint_eq(u->servers[2].max_fails, 0);
    ck_assert(u->servers[2].addr.ss_family == AF_INET ||
              u->servers[2].addr.ss_family == AF_INET6);
    ck_assert_int_eq(u->balance, SW_CONF_BALANCE_LEAST_CONN);
    ck_assert_uint_eq(u->keepalive, 8);
    ck_assert_uint_eq(u->keepalive_timeout_ms, 10000);
    ck_assert_uint_eq(u->connect_timeout_ms, 250);
    ck_assert_uint_eq(u->read_timeout_ms, 120000);
    ck_assert_uint_eq(u->send_timeout_ms, 180000);
    ck_assert_int_eq(cf->upstreams[1].balance, SW_CONF_BALANCE_HASH);
    ck_assert_int_eq(cf->upstreams[1].hash_key, SW_CONF_HASH_REMOTE_ADDR);
    ck_assert_int_eq(cf->upstreams[2].balance, SW_CONF_BALANCE_HASH);
    ck_assert_int_eq(cf->upstreams[2].hash_key, SW_CONF_HASH_HEADER);
    ck_assert(str_is(cf->upstreams[2].hash_header, "X-User"));
    ck_assert_uint_eq(cf->upstreams[2].index, 2);

    ck_assert_uint_eq(cf->nroutes, 4);
    const struct sw_conf_route *r = &cf->routes[0];
    ck_assert_uint_eq(r->nhosts, 4);
    ck_assert(str_is(r->hosts[0], "api.example.com"));
    ck_assert(str_is(r->hosts[1], "*.example.com"));
    ck_assert(str_is(r->hosts[2], "example.org"));
    ck_assert(str_is(r->hosts[3], "[::1]"));
    ck_assert(str_is(r->path_prefix, "/v1/"));
    ck_assert_uint_eq(r->nheaders, 2);
    ck_assert(str_is(r->headers[0].name, "X-Canary"));
    ck_assert(str_is(r->headers[0].value, "1"));
    ck_assert(str_is(r->headers[1].name, "X-Debug"));
    ck_assert_uint_eq(r->headers[1].value.len, 0);
    ck_assert_ptr_eq(r->upstream, u);
    ck_assert_uint_eq(r->nrequest_edits, 3);
    ck_assert_int_eq(r->request_edits[0].op, SW_CONF_EDIT_SET);
    ck_assert(str_is(r->request_edits[0].name, "X-Real-IP"));
    ck_assert_uint_eq(r->request_edits[0].value.nparts, 1);
    ck_assert_int_eq(r->request_edits[0].value.parts[0].var,
                     SW_CONF_VAR_REMOTE_ADDR);
    ck_assert_int_eq(r->request_edits[1].op, SW_CONF_EDIT_ADD);
    ck_assert_uint_eq(r->request_edits[1].value.nparts, 3);
    ck_assert_int_eq(r->request_edits[1].value.parts[0].var,
                     SW_CONF_VAR_REMOTE_ADDR);
    ck_assert_int_eq(r->request_edits[1].value.parts[1].var, SW_CONF_VAR_NONE);
    ck_assert(str_is(r->request_edits[1].value.parts[1].text, ":"));
    ck_assert_int_eq(r->request_edits[1].value.parts[2].var,
                     SW_CONF_VAR_REMOTE_PORT);
    ck_assert_int_eq(r->request_edits[2].op, SW_CONF_EDIT_REMOVE);
    ck_assert(str_is(r->request_edits[2].name, "Cookie"));
    ck_assert_uint_eq(r->request_edits[2].value.nparts, 0);
    ck_assert_uint_eq(r->nresponse_edits, 2);
    ck_assert(str_is(r->response_edits[0].value.parts[0].text, "shockwave"));
    ck_assert_int_eq(r->response_edits[1].op, SW_CONF_EDIT_REMOVE);
    ck_assert_uint_eq(r->connect_timeout_ms, 1000);
    ck_assert_uint_eq(r->read_timeout_ms, 2000);
    ck_assert_uint_eq(r->send_timeout_ms, 3000);
    ck_assert_uint_eq(r->max_body_size, 10u << 20);
    ck_assert(r->websocket);
    ck_assert_int_eq(r->ws_ping, SW_CONF_WS_PING_FORWARD);
    ck_assert_uint_eq(r->ws_ping_interval_ms, 20000);
    ck_assert_uint_eq(r->ws_idle_timeout_ms, 3600000);
    ck_assert_uint_eq(r->ws_close_timeout_ms, 2000);
    ck_assert_uint_eq(r->ws_max_message, 1u << 20);
    ck_assert_uint_eq(r->ws_max_frame, 0);
    ck_assert_uint_eq(r->ws_max_buffer, 128u << 10);
    ck_assert_uint_eq(r->ws_splice_threshold, 0);
    ck_assert(r->ws_validate_utf8);
    ck_assert_uint_eq(r->line, 38);

    r = &cf->routes[1];
    ck_assert_ptr_null(r->upstream);
    ck_assert_int_eq(r->return_status, 200);
    ck_assert(str_is(r->return_body, "ok \"fine\" \\ # not a comment"));
    ck_assert_uint_eq(r->index, 1);
    ck_assert_ptr_eq(cf->routes[2].upstream, &cf->upstreams[1]);
    ck_assert_ptr_eq(cf->routes[3].upstream, &cf->upstreams[2]);
    ck_assert(!cf->routes[3].websocket);
    sw_conf_unref(cf);
}
END_TEST

/* An upstream may be named before it is defined; workers auto is 0. */
START_TEST(test_forward_reference)
{
    struct sw_conf *cf = load("workers auto;\n"
                              "route { upstream later; }\n"
                              "listen 127.0.0.1:8080;\n"
                              "upstream later { server 127.0.0.1:1; }\n");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->workers, 0);
    ck_assert_ptr_eq(cf->routes[0].upstream, &cf->upstreams[0]);
    ck_assert_ptr_eq(sw_conf_find_upstream(cf, SW_STR("later")),
                     &cf->upstreams[0]);
    ck_assert_ptr_null(sw_conf_find_upstream(cf, SW_STR("late")));
    ck_assert_ptr_null(sw_conf_find_upstream(cf, SW_STR("laterx")));
    sw_conf_unref(cf);
}
END_TEST

/* Arrays grow past their first capacity without losing entries. */
START_TEST(test_many_entries)
{
    char text[16384];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "upstream big {\n");
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "  server 127.0.0.1:%d weight=%d;\n", 10000 + i,
                              i + 1);
    }
    n += (size_t)snprintf(text + n, sizeof(text) - n, "}\n");
    for (int i = 0; i < 30; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "listen 127.0.0.1:%d;\n", 20000 + i);
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "route { path_prefix /r%d; upstream big; "
                              "host h%d.example a%d.example; }\n",
                              i, i, i);
    }
    struct sw_conf *cf = load(text);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->upstreams[0].nservers, 40);
    for (unsigned i = 0; i < 40; i++) {
        ck_assert_uint_eq(cf->upstreams[0].servers[i].weight, i + 1);
    }
    ck_assert_uint_eq(cf->nlistens, 30);
    ck_assert_uint_eq(cf->nroutes, 30);
    for (size_t i = 0; i < 30; i++) {
        char want[16];
        snprintf(want, sizeof(want), "/r%zu", i);
        ck_assert(str_is(cf->routes[i].path_prefix, want));
        ck_assert_uint_eq(cf->routes[i].index, i);
        ck_assert_uint_eq(cf->routes[i].nhosts, 2);
        ck_assert_ptr_eq(cf->routes[i].upstream, &cf->upstreams[0]);
    }
    sw_conf_unref(cf);
}
END_TEST

/* ---- templates --------------------------------------------------------- */

static const struct {
    const char *value; /* as written in the file */
    const char *shape; /* parts: literal text, or $var by name */
} tpl_vectors[] = {
    {"$remote_addr", "$remote_addr"},
    {"\"${host}x\"", "$host|x"},
    {"a$$b", "a$b"},
    {"\"$scheme://$host$request_uri\"", "$scheme|://|$host|$request_uri"},
    {"\"cost: $ 5\"", "cost: $ 5"},
    {"$", "$"},
    {"\"id=${request_id};port=$server_port\"",
     "id=|$request_id|;port=|$server_port"},
    {"\"\"", ""},
    {"\"tab\there\"", "tab\there"},
    {"\"q\\\"$remote_port\\\\\"", "q\"|$remote_port|\\"},
};

static const char *const var_names[] = {
    "",      "$remote_addr", "$remote_port", "$scheme",
    "$host", "$request_id",  "$request_uri", "$server_port",
};

START_TEST(test_templates)
{
    for (size_t i = 0; i < SW_NELEMS(tpl_vectors); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 BASE "route { upstream demo; request_header set X-T %s; }\n",
                 tpl_vectors[i].value);
        struct sw_conf *cf = load(text);
        ck_assert_msg(cf != NULL, "%s: %s", tpl_vectors[i].value, err);
        const struct sw_conf_tpl *t = &cf->routes[1].request_edits[0].value;
        char shape[256] = "";
        for (size_t k = 0; k < t->nparts; k++) {
            if (k > 0) {
                strcat(shape, "|");
            }
            if (t->parts[k].var == SW_CONF_VAR_NONE) {
                ck_assert_uint_gt(t->parts[k].text.len, 0);
                strncat(shape, t->parts[k].text.p, t->parts[k].text.len);
                /* literal parts are NUL-terminated too */
                ck_assert_int_eq(t->parts[k].text.p[t->parts[k].text.len],
                                 '\0');
            } else {
                strcat(shape, var_names[t->parts[k].var]);
            }
        }
        ck_assert_msg(strcmp(shape, tpl_vectors[i].shape) == 0,
                      "%s: got \"%s\", want \"%s\"", tpl_vectors[i].value,
                      shape, tpl_vectors[i].shape);
        sw_conf_unref(cf);
    }
}
END_TEST

/* ---- reference count --------------------------------------------------- */

START_TEST(test_refcount)
{
    struct sw_conf *cf = load(BASE);
    ck_assert_ptr_nonnull(cf);
    ck_assert_ptr_eq(sw_conf_ref(cf), cf);
    ck_assert_ptr_eq(sw_conf_ref(cf), cf);
    ck_assert_int_eq(atomic_load(&cf->refcnt), 3);
    sw_conf_unref(cf);
    sw_conf_unref(cf);
    ck_assert_int_eq(atomic_load(&cf->refcnt), 1);
    /* Still usable while a reference is held. */
    ck_assert_ptr_nonnull(sw_conf_find_upstream(cf, SW_STR("demo")));
    sw_conf_unref(cf); /* frees: ASan reports a leak or a double free */
    sw_conf_unref(NULL);
}
END_TEST

/* ---- TLS directives ---------------------------------------------------- */

START_TEST(test_tls_defaults)
{
    struct sw_conf *cf = load(BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert(!cf->listens[0].tls);
    ck_assert_uint_eq(cf->ntls_certs, 0);
    ck_assert_ptr_null(cf->tls_certs);
    ck_assert_uint_eq(cf->tls_protocols, SW_CONF_TLS_V12 | SW_CONF_TLS_V13);
    ck_assert(str_is(cf->tls_ciphers,
                     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-"
                     "SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-"
                     "GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-"
                     "CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-"
                     "AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"));
    ck_assert(str_is(cf->tls_ciphersuites,
                     "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                     "TLS_CHACHA20_POLY1305_SHA256"));
    ck_assert_uint_eq(cf->tls_ticket_rotate_ms, 3600000);
    ck_assert_uint_eq(cf->tls_session_cache, 20480);
    ck_assert_uint_eq(cf->tls_handshake_timeout_ms, 10000);
    const struct sw_conf_upstream *u = &cf->upstreams[0];
    ck_assert(!u->servers[0].tls);
    ck_assert(u->tls_verify);
    ck_assert_uint_eq(u->tls_ca.len, 0);
    ck_assert_uint_eq(u->tls_server_name.len, 0);
    ck_assert_ptr_null(cf->tls);
    ck_assert_ptr_null(cf->tls_free);
    sw_conf_unref(cf);
}
END_TEST

static const char tls_conf[] = "listen 127.0.0.1:8080;\n"
                               "listen 127.0.0.1:8443 backlog=64 tls;\n"
                               "tls_certificate /etc/sw/a.pem;\n"
                               "tls_certificate_key /etc/sw/a.key;\n"
                               "tls_ocsp_response /etc/sw/a.ocsp;\n"
                               "tls_certificate b.pem;\n"
                               "tls_certificate_key \"keys/b.key\";\n"
                               "tls_protocols TLSv1.3;\n"
                               "tls_ciphers ECDHE-RSA-AES128-GCM-SHA256;\n"
                               "tls_ciphersuites TLS_AES_256_GCM_SHA384;\n"
                               "tls_ticket_rotate 30m;\n"
                               "tls_session_cache 1k;\n"
                               "tls_handshake_timeout 2500ms;\n"
                               "upstream secure {\n"
                               "    server 127.0.0.1:9443 tls weight=2;\n"
                               "    server 127.0.0.1:9000;\n"
                               "    tls_verify off;\n"
                               "    tls_ca ca/bundle.pem;\n"
                               "    tls_server_name Backend.example.com;\n"
                               "}\n"
                               "route { upstream secure; }\n";

START_TEST(test_tls_every_directive)
{
    struct sw_conf *cf =
        sw_conf_load_string(tls_conf, "t.conf", "/srv/conf", err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert(!cf->listens[0].tls);
    ck_assert(cf->listens[1].tls);
    ck_assert_int_eq(cf->listens[1].backlog, 64);
    ck_assert_uint_eq(cf->ntls_certs, 2);
    const struct sw_conf_tls_cert *a = &cf->tls_certs[0];
    const struct sw_conf_tls_cert *b = &cf->tls_certs[1];
    ck_assert_str_eq(a->cert.p, "/etc/sw/a.pem");
    ck_assert_str_eq(a->key.p, "/etc/sw/a.key");
    ck_assert_str_eq(a->ocsp_response.p, "/etc/sw/a.ocsp");
    ck_assert_str_eq(a->file.p, "t.conf");
    ck_assert_uint_eq(a->line, 3);
    ck_assert_uint_eq(a->col, 1);
    /* Relative paths are relative to the configuration's folder. */
    ck_assert_str_eq(b->cert.p, "/srv/conf/b.pem");
    ck_assert(str_is(b->cert, "/srv/conf/b.pem"));
    ck_assert_str_eq(b->key.p, "/srv/conf/keys/b.key");
    ck_assert_uint_eq(b->ocsp_response.len, 0);
    ck_assert_uint_eq(b->line, 6);
    ck_assert_uint_eq(cf->tls_protocols, SW_CONF_TLS_V13);
    ck_assert_str_eq(cf->tls_ciphers.p, "ECDHE-RSA-AES128-GCM-SHA256");
    ck_assert_str_eq(cf->tls_ciphersuites.p, "TLS_AES_256_GCM_SHA384");
    ck_assert_uint_eq(cf->tls_ticket_rotate_ms, 1800000);
    ck_assert_uint_eq(cf->tls_session_cache, 1024);
    ck_assert_uint_eq(cf->tls_handshake_timeout_ms, 2500);
    const struct sw_conf_upstream *u = &cf->upstreams[0];
    ck_assert(u->servers[0].tls);
    ck_assert_uint_eq(u->servers[0].weight, 2);
    ck_assert(!u->servers[1].tls);
    ck_assert(!u->tls_verify);
    ck_assert_str_eq(u->tls_ca.p, "/srv/conf/ca/bundle.pem");
    ck_assert_str_eq(u->tls_server_name.p, "Backend.example.com");
    sw_conf_unref(cf);

    /* Without a folder, relative names stay relative (current folder). */
    cf = load("listen 127.0.0.1:8443 tls;\ntls_certificate c.pem;\n"
              "tls_certificate_key c.key;\ntls_session_cache off;\n"
              "tls_protocols TLSv1.3 TLSv1.2;\n" BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_str_eq(cf->tls_certs[0].cert.p, "c.pem");
    ck_assert_uint_eq(cf->tls_session_cache, 0);
    ck_assert_uint_eq(cf->tls_protocols, SW_CONF_TLS_V12 | SW_CONF_TLS_V13);
    sw_conf_unref(cf);
}
END_TEST

static Suite *
conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_every_directive);
    tcase_add_test(tc, test_forward_reference);
    tcase_add_test(tc, test_many_entries);
    tcase_add_test(tc, test_templates);
    tcase_add_test(tc, test_refcount);
    tcase_add_test(tc, test_tls_defaults);
    tcase_add_test(tc, test_tls_every_directive);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conf_suite());
}
