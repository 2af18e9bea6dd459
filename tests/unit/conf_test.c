/*
 * conf_test.c - Check suite for lib/conf: sizes and durations, the lexer and
 * parser, every directive and its default, includes and include cycles,
 * every error message with its exact FILE:LINE:COL, suggestions, semantic
 * errors and the snapshot's reference count.
 *
 * Include tests write their files into a fresh temporary folder, removed at
 * the end of each test.
 */
#include <shockwave/conf.h>
#include <shockwave/log.h>

#include "support.h"

#include <check.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define BASE                                                                   \
    "listen 127.0.0.1:8080;\n"                                                 \
    "upstream demo { server 127.0.0.1:9000; }\n"                               \
    "route { upstream demo; }\n"

static char err[8192];

static struct sw_conf *
load(const char *text)
{
    return sw_conf_load_string(text, "t.conf", NULL, err, sizeof(err));
}

static bool
str_is(struct sw_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

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

/* ---- errors ------------------------------------------------------------ */

static const struct {
    const char *text;
    const char *want; /* the whole error text */
} error_vectors[] = {
    {"listn 127.0.0.1:8080;\n" BASE,
     "t.conf:1:1: unknown directive \"listn\", did you mean \"listen\"?"},
    {"    workerz 4;\n" BASE,
     "t.conf:1:5: unknown directive \"workerz\", did you mean \"workers\"?"},
    {"frobnicate 1;\n" BASE, "t.conf:1:1: unknown directive \"frobnicate\""},
    {BASE "route {\n  upstream demo;\n  websockt on;\n}\n",
     "t.conf:6:3: unknown directive \"websockt\", did you mean "
     "\"websocket\"?"},
    {BASE "upstream b {\n  server 127.0.0.1:1;\n  keepalve 2;\n}\n",
     "t.conf:6:3: unknown directive \"keepalve\", did you mean "
     "\"keepalive\"?"},
    {"server 127.0.0.1:80;\n" BASE,
     "t.conf:1:1: \"server\" is not allowed at the top level, only inside "
     "upstream { }"},
    {"path_prefix /x;\n" BASE,
     "t.conf:1:1: \"path_prefix\" is not allowed at the top level, only "
     "inside route { }"},
    {BASE "route {\n  upstream demo;\n  listen 127.0.0.1:1;\n}\n",
     "t.conf:6:3: \"listen\" is not allowed inside route { }, only at the "
     "top level"},
    {"workers 2;\nworkers 3;\n" BASE,
     "t.conf:2:1: duplicate \"workers\" directive"},
    {BASE "route {\n  upstream demo;\n  path_prefix /a;\n  path_prefix /b;\n}"
          "\n",
     "t.conf:7:3: duplicate \"path_prefix\" directive"},
    {"workers many;\n" BASE,
     "t.conf:1:9: \"workers\" expects \"auto\" or a number from 1 to 1024, "
     "got \"many\""},
    {"workers 0;\n" BASE,
     "t.conf:1:9: \"workers\" expects \"auto\" or a number from 1 to 1024, "
     "got \"0\""},
    {"buffer_size 12q;\n" BASE,
     "t.conf:1:13: invalid size \"12q\" for \"buffer_size\": expected a "
     "number with an optional k, m or g suffix"},
    {"buffer_size 16;\n" BASE,
     "t.conf:1:13: \"buffer_size\" must be from 1k to 64m, got \"16\""},
    {"ws_pipe_size 2g;\n" BASE,
     "t.conf:1:14: \"ws_pipe_size\" must be from 4k to 1g, got \"2g\""},
    {"keepalive_timeout 5x;\n" BASE,
     "t.conf:1:19: invalid duration \"5x\" for \"keepalive_timeout\": "
     "expected a number with a ms, s, m, h or d suffix"},
    {"send_timeout 8d;\n" BASE,
     "t.conf:1:14: \"send_timeout\" must be from 1ms to 7d, got \"8d\""},
    {"max_headers 0;\n" BASE,
     "t.conf:1:13: \"max_headers\" must be from 1 to 10000, got \"0\""},
    {"max_headers 1x;\n" BASE,
     "t.conf:1:13: invalid number \"1x\" for \"max_headers\": expected "
     "digits"},
    {"workers 2\n" BASE, "t.conf:1:10: expected \";\" or \"{\" after \"2\""},
    {BASE "route {\n  upstream demo }\n",
     "t.conf:5:16: expected \";\" or \"{\" after \"demo\""},
    {"error_log \"abc;\n" BASE,
     "t.conf:1:11: unterminated string: missing the closing quote"},
    {"error_log \"a\\qb\";\n" BASE,
     "t.conf:1:13: unknown escape in string: only \\\" and \\\\ are "
     "allowed"},
    {"error_log off;\n" BASE,
     "t.conf:1:11: the error log cannot be turned off: use \"stderr\" or a "
     "path"},
    {"access_log \"\";\n" BASE,
     "t.conf:1:12: \"access_log\" needs a path, \"stderr\" or \"off\""},
    {"log_level loud;\n" BASE,
     "t.conf:1:11: \"log_level\" expects error, warn, info or debug, got "
     "\"loud\""},
    {"listen 127.0.0.1;\n" BASE,
     "t.conf:1:8: expected HOST:PORT, got \"127.0.0.1\" (no port)"},
    {"listen :8081;\n" BASE,
     "t.conf:1:8: expected HOST:PORT, got \":8081\" (no host)"},
    {"listen 127.0.0.1:99999;\n" BASE,
     "t.conf:1:18: invalid port \"99999\": expected 1 to 65535"},
    {"listen 127.0.0.1:0;\n" BASE,
     "t.conf:1:18: invalid port \"0\": expected 1 to 65535"},
    {"listen ::1:8081;\n" BASE,
     "t.conf:1:8: an IPv6 address needs brackets, as in \"[::1]:8080\", got "
     "\"::1:8081\""},
    {"listen [::1:8081;\n" BASE,
     "t.conf:1:8: missing \"]\" in address \"[::1:8081\""},
    {"listen [::1]8081;\n" BASE,
     "t.conf:1:13: expected \":PORT\" after \"]\" in \"[::1]8081\""},
    {"listen 127.0.0.1:8081 backlog=x;\n" BASE,
     "t.conf:1:31: invalid number \"x\" for \"backlog\": expected digits"},
    {"listen 127.0.0.1:8081 reuseport;\n" BASE,
     "t.conf:1:23: unknown option \"reuseport\" for \"listen\": expected "
     "backlog=N, tls or proxy_protocol"},
    {"listen 127.0.0.1:8080;\n" BASE,
     "t.conf:2:8: duplicate listen address \"127.0.0.1:8080\""},
    {"upstream demo { server 127.0.0.1:9001; }\n" BASE,
     "t.conf:3:10: duplicate upstream \"demo\", first defined at t.conf:1:10"},
    {"upstream empty {\n}\n" BASE,
     "t.conf:1:1: upstream \"empty\" has no \"server\""},
    {"upstream b { server 127.0.0.1:9001 weight=0; }\n" BASE,
     "t.conf:1:43: \"weight\" must be from 1 to 1000, got \"0\""},
    {"upstream b { server 127.0.0.1:9001 weight=heavy; }\n" BASE,
     "t.conf:1:43: invalid number \"heavy\" for \"weight\": expected digits"},
    {"upstream b { server 127.0.0.1:9001 wieght=2; }\n" BASE,
     "t.conf:1:36: unknown option \"wieght=2\" for \"server\": expected "
     "weight=N, max_fails=N, fail_timeout=TIME, tls or backup"},
    {"upstream b { server 127.0.0.1:9001 fail_timeout=soon; }\n" BASE,
     "t.conf:1:49: invalid duration \"soon\" for \"fail_timeout\": expected "
     "a number with a ms, s, m, h or d suffix"},
    {"upstream b { server *:9001; }\n" BASE,
     "t.conf:1:21: \"*\" is only for listen addresses, got \"*:9001\""},
    {"upstream b { server 127.0.0.1:1; balance random; }\n" BASE,
     "t.conf:1:42: \"balance\" expects round_robin, least_conn, \"hash "
     "$remote_addr\" or \"hash header NAME\""},
    {"upstream b { server 127.0.0.1:1; balance hash header \"X Y\"; }\n" BASE,
     "t.conf:1:56: invalid character in header name \"X Y\": expected "
     "letters, digits or !#$%&'*+-.^_`|~"},
    {BASE "route {\n    upstream dmeo;\n}\n",
     "t.conf:5:14: unknown upstream \"dmeo\", did you mean \"demo\"?"},
    {BASE "route {\n    upstream elsewhere;\n}\n",
     "t.conf:5:14: unknown upstream \"elsewhere\""},
    {BASE "route {\n    path_prefix /x;\n}\n",
     "t.conf:4:1: route has neither \"upstream\" nor \"return\""},
    {BASE "route {\n    upstream demo;\n    return 204;\n}\n",
     "t.conf:4:1: route has both \"upstream\" and \"return\": keep one"},
    {BASE "route { return 99; }\n",
     "t.conf:4:16: invalid status \"99\" for \"return\": expected 200 to 599"},
    {BASE "route { upstream demo; websocket maybe; }\n",
     "t.conf:4:34: \"websocket\" expects \"on\" or \"off\", got \"maybe\""},
    {BASE "route { upstream demo; ws_ping echo; }\n",
     "t.conf:4:32: \"ws_ping\" expects \"local\" or \"forward\", got \"echo\""},
    {BASE "route { upstream demo; ws_max_buffer 10; }\n",
     "t.conf:4:38: \"ws_max_buffer\" must be from 1k to 64m, got \"10\""},
    {BASE "route {\n    upstream demo;\n"
          "    request_header set X-A \"ip=$remote_adr\";\n}\n",
     "t.conf:6:32: unknown variable \"$remote_adr\", did you mean "
     "\"$remote_addr\"?"},
    {BASE "route {\n    upstream demo;\n"
          "    response_header add X-A ${nope}x;\n}\n",
     "t.conf:6:29: unknown variable \"$nope\""},
    {BASE "route { upstream demo; request_header set X-A \"${host\"; }\n",
     "t.conf:4:48: unterminated \"${\" in \"${host\": expected \"}\""},
    {BASE "route { upstream demo; request_header set X-A \"a\nb\"; }\n",
     "t.conf:4:49: control character in header value \"a\nb\""},
    {BASE "route { upstream demo; request_header set X-A; }\n",
     "t.conf:4:24: \"request_header set\" takes a header name and a value"},
    {BASE "route { upstream demo; request_header remove X-A b; }\n",
     "t.conf:4:50: \"request_header remove\" takes a header name"},
    {BASE "route { upstream demo; request_header put X-A b; }\n",
     "t.conf:4:39: \"request_header\" expects set, add or remove, got "
     "\"put\""},
    {BASE "route { upstream demo; request_header set X:A b; }\n",
     "t.conf:4:44: invalid character in header name \"X:A\": expected "
     "letters, digits or !#$%&'*+-.^_`|~"},
    {BASE "route { upstream demo; host example.com:8080; }\n",
     "t.conf:4:29: host \"example.com:8080\" has a port: route hosts match "
     "names only"},
    {BASE "route { upstream demo; host a.*.example.com; }\n",
     "t.conf:4:31: a wildcard host must start with \"*.\", as in "
     "\"*.example.com\""},
    {BASE "route { upstream demo; host \"bad host\"; }\n",
     "t.conf:4:29: invalid host name \"bad host\""},
    {BASE "route { upstream demo; host "
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a12345678901234567; }\n",
     "t.conf:4:29: invalid host name "
     "\"a123456789a123456789a123456789a123456789a123456789a123456789a123\""},
    {BASE "route { upstream demo; host [::g]; }\n",
     "t.conf:4:29: invalid host name \"[::g]\""},
    {BASE "route { upstream demo; path_prefix api; }\n",
     "t.conf:4:36: \"path_prefix\" must start with \"/\", got \"api\""},
    {BASE "route { upstream demo; path_prefix /a?b; }\n",
     "t.conf:4:38: invalid character in \"path_prefix\": no spaces, "
     "controls, \"?\" or \"#\""},
    {"}\n" BASE, "t.conf:1:1: unexpected \"}\""},
    {"; " BASE, "t.conf:1:1: unexpected \";\": expected a directive"},
    {"{ workers 1; }\n" BASE, "t.conf:1:1: unexpected \"{\": expected a "
                              "directive"},
    {"\"workers\" 1;\n" BASE,
     "t.conf:1:1: expected a directive name, got a quoted string"},
    {BASE "route {\n upstream demo;\n",
     "t.conf:6:1: unexpected end of file, expected \"}\""},
    {"workers;\n" BASE, "t.conf:1:1: \"workers\" takes 1 argument, got 0"},
    {"workers 1 2;\n" BASE, "t.conf:1:11: \"workers\" takes 1 argument, got 2"},
    {"listen 127.0.0.1:8081 backlog=1 tls proxy_protocol x;\n" BASE,
     "t.conf:1:52: \"listen\" takes 1 to 4 arguments, got 5"},
    {BASE "route { upstream demo; host; }\n",
     "t.conf:4:24: \"host\" needs at least 1 argument"},
    {"workers 1 { }\n" BASE,
     "t.conf:1:1: \"workers\" takes no block: expected \";\""},
    {"route;\n" BASE, "t.conf:1:1: \"route\" needs a block: expected \"{\""},
    {"upstream demo { server 127.0.0.1:9000; }\nroute { upstream demo; }\n",
     "t.conf:1:1: no \"listen\" directive: at least one is required"},
    /* a bad listen line is reported once, not also as missing */
    {"listen 127.0.0.1:0;\nupstream demo { server 127.0.0.1:9000; }\n"
     "route { upstream demo; }\n",
     "t.conf:1:18: invalid port \"0\": expected 1 to 65535"},
    {"buffer_size 4k;\n" BASE,
     "t.conf:1:1: max_header_bytes (16384) is larger than buffer_size "
     "(4096): a request head must fit in one buffer"},
    {"max_header_bytes 4k;\nmax_request_line 5k;\n" BASE,
     "t.conf:2:1: max_request_line (5120) is larger than max_header_bytes "
     "(4096)"},
    {"include nothere.conf;\n" BASE,
     "t.conf:1:9: cannot open \"nothere.conf\": No such file or directory"},
    {"workers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18;\n" BASE,
     "t.conf:1:48: too many arguments for \"workers\" (limit 16)"},
    /* TLS */
    {"listen 127.0.0.1:8443 tls;\n" BASE,
     "t.conf:1:1: \"listen ... tls\" needs at least one \"tls_certificate\" "
     "and \"tls_certificate_key\""},
    {"tls_certificate a.pem;\n" BASE,
     "t.conf:1:1: \"tls_certificate\" has no \"tls_certificate_key\": "
     "write one right after it"},
    {"tls_certificate_key a.key;\n" BASE,
     "t.conf:1:1: \"tls_certificate_key\" must follow the "
     "\"tls_certificate\" it belongs to"},
    {"tls_certificate a.pem;\ntls_certificate_key a.key;\n"
     "tls_certificate_key b.key;\n" BASE,
     "t.conf:3:1: the certificate at t.conf:1:1 already has a "
     "\"tls_certificate_key\": start the next pair with "
     "\"tls_certificate\""},
    {"tls_ocsp_response a.der;\n" BASE,
     "t.conf:1:1: \"tls_ocsp_response\" must follow the "
     "\"tls_certificate\" it belongs to"},
    {"tls_protocols TLSv1.1 TLSv1.2;\n" BASE,
     "t.conf:1:15: \"TLSv1.1\" is not supported (RFC 8996 deprecates it): "
     "use TLSv1.2 and TLSv1.3"},
    {"tls_protocols TLSv1.4;\n" BASE,
     "t.conf:1:15: \"tls_protocols\" expects TLSv1.2 and/or TLSv1.3, got "
     "\"TLSv1.4\""},
    {"tls_session_cache lots;\n" BASE,
     "t.conf:1:19: \"tls_session_cache\" expects \"off\" or a session "
     "count from 1 to 1000000 (k and m suffixes allowed), got \"lots\""},
    {"tls_ticket_rotate 10ms;\n" BASE,
     "t.conf:1:19: \"tls_ticket_rotate\" must be from 1s to 7d, got "
     "\"10ms\""},
    {"tls_handshake_timeout never;\n" BASE,
     "t.conf:1:23: invalid duration \"never\" for "
     "\"tls_handshake_timeout\": expected a number with a ms, s, m, h or d "
     "suffix"},
    {"tls_ciphers \"\";\n" BASE,
     "t.conf:1:13: \"tls_ciphers\" needs a non-empty value"},
    {BASE "upstream b {\n  server 127.0.0.1:1 tls;\n  tls_verify maybe;\n}\n",
     "t.conf:6:14: \"tls_verify\" expects \"on\" or \"off\", got "
     "\"maybe\""},
    {BASE "upstream b {\n  server 127.0.0.1:1 tls;\n"
          "  tls_server_name \"a b\";\n}\n",
     "t.conf:6:19: invalid name \"a b\" for \"tls_server_name\""},
    {"tls_verify off;\n" BASE,
     "t.conf:1:1: \"tls_verify\" is not allowed at the top level, only "
     "inside upstream { }"},
    {"tls_certficate a.pem;\n" BASE,
     "t.conf:1:1: unknown directive \"tls_certficate\", did you mean "
     "\"tls_certificate\"?"},
    /* several errors are collected, one per line */
    {"listn 127.0.0.1:8080;\nworkers x;\n" BASE
     "route {\n    upstream nope;\n}\n",
     "t.conf:1:1: unknown directive \"listn\", did you mean \"listen\"?\n"
     "t.conf:2:9: \"workers\" expects \"auto\" or a number from 1 to 1024, "
     "got \"x\"\n"
     "t.conf:7:14: unknown upstream \"nope\""},
};

START_TEST(test_errors)
{
    size_t failed = 0;
    for (size_t i = 0; i < SW_NELEMS(error_vectors); i++) {
        memset(err, 'x', sizeof(err));
        struct sw_conf *cf = load(error_vectors[i].text);
        if (cf != NULL) {
            fprintf(stderr, "case %zu loaded\n", i);
            sw_conf_unref(cf);
            failed++;
        } else if (strcmp(err, error_vectors[i].want) != 0) {
            fprintf(stderr, "case %zu:\n got: %s\nwant: %s\n", i, err,
                    error_vectors[i].want);
            failed++;
        }
    }
    ck_assert_msg(failed == 0, "%zu of %zu error cases failed", failed,
                  SW_NELEMS(error_vectors));
}
END_TEST

START_TEST(test_unresolvable)
{
    struct sw_conf *cf =
        load("upstream b { server no-such-host.invalid:80; }\n" BASE);
    ck_assert_ptr_null(cf);
    const char *want = "t.conf:1:21: cannot resolve \"no-such-host.invalid\" "
                       "in \"no-such-host.invalid:80\": ";
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(test_error_cap)
{
    char text[4096] = "";
    for (int i = 0; i < 30; i++) {
        strcat(text, "bogus;\n");
    }
    strcat(text, BASE);
    ck_assert_ptr_null(load(text));
    size_t lines = 1;
    for (const char *p = err; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    ck_assert_uint_eq(lines, 21);
    ck_assert_ptr_nonnull(strstr(err, "t.conf:20:1: unknown directive "
                                      "\"bogus\"\n"
                                      "t.conf: too many errors (limit 20), "
                                      "stopping"));
    ck_assert_ptr_null(strstr(err, "t.conf:21:1"));
}
END_TEST

START_TEST(test_error_buffer)
{
    char small[16];
    memset(small, 'x', sizeof(small));
    struct sw_conf *cf =
        sw_conf_load_string("listn 1;\n", "t.conf", NULL, small, sizeof(small));
    ck_assert_ptr_null(cf);
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
    ck_assert_int_eq(memcmp(small, "t.conf:1:1: unk", 15), 0);
    /* No buffer at all is fine too. */
    ck_assert_ptr_null(sw_conf_load_string("listn 1;\n", NULL, NULL, NULL, 0));
    memset(small, 'x', sizeof(small));
    ck_assert_ptr_null(sw_conf_load_string("x;", NULL, NULL, small, 1));
    ck_assert_int_eq(small[0], '\0');
    /* The default name in messages. */
    ck_assert_ptr_null(sw_conf_load_string("x;", NULL, NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "(string):1:1: unknown directive \"x\"\n"
                          "(string):1:1: no \"listen\" directive: at least "
                          "one is required");
}
END_TEST

/* ---- files and includes ------------------------------------------------ */

static char tmpdir[PATH_MAX];

static void
mkfile(const char *rel, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void
setup_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/swconfXXXXXX",
             base != NULL ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char sub[PATH_MAX * 2];
    snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
}

static void
rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char path[PATH_MAX * 2];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR) {
            rm_tree(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void
teardown_dir(void)
{
    rm_tree(tmpdir);
}

static struct sw_conf *
load_file(const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    return sw_conf_load(path, err, sizeof(err));
}

/* The error text with the temporary folder cut out: "main.conf:1:1: ..." */
static const char *
rel_err(void)
{
    static char out[sizeof(err)];
    size_t n = strlen(tmpdir);
    size_t o = 0;
    for (const char *p = err; *p != '\0' && o + 1 < sizeof(out);) {
        if (strncmp(p, tmpdir, n) == 0 && p[n] == '/') {
            p += n + 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

START_TEST(test_load_file)
{
    mkfile("main.conf", BASE);
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "%s/main.conf", tmpdir);
    ck_assert_str_eq(cf->path.p, want);
    sw_conf_unref(cf);
    ck_assert_ptr_null(load_file("missing.conf"));
    ck_assert_str_eq(rel_err(), "missing.conf:1:1: cannot read "
                                "configuration: No such file or directory");
    ck_assert_ptr_null(load_file("sub"));
    ck_assert_str_eq(rel_err(), "sub:1:1: cannot read configuration: Is a "
                                "directory");
}
END_TEST

START_TEST(test_include)
{
    mkfile("main.conf", "include sub/upstreams.conf;\n"
                        "listen 127.0.0.1:8080;\n"
                        "route {\n"
                        "    include route-common.conf;\n"
                        "    upstream demo;\n"
                        "}\n");
    /* Relative to the including file: sub/ includes its own sibling. */
    mkfile("sub/upstreams.conf", "upstream demo {\n"
                                 "    include servers.conf;\n"
                                 "}\n");
    mkfile("sub/servers.conf", "server 127.0.0.1:9000;\n"
                               "server 127.0.0.1:9001 weight=2;\n");
    mkfile("route-common.conf", "websocket on;\n"
                                "request_header set X-From $remote_addr;\n");
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->upstreams[0].nservers, 2);
    ck_assert_uint_eq(cf->upstreams[0].servers[1].weight, 2);
    ck_assert(cf->routes[0].websocket);
    ck_assert_uint_eq(cf->routes[0].nrequest_edits, 1);
    ck_assert_ptr_eq(cf->routes[0].upstream, &cf->upstreams[0]);
    sw_conf_unref(cf);

    /* Same through load_string with a folder for includes. */
    char text[256];
    snprintf(text, sizeof(text),
             "include sub/upstreams.conf;\n"
             "listen 127.0.0.1:8080;\n"
             "route { upstream demo; }\n");
    cf = sw_conf_load_string(text, "mem.conf", tmpdir, err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->upstreams[0].nservers, 2);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_include_errors_name_the_file)
{
    mkfile("main.conf", BASE "include sub/bad.conf;\nworkers 2;\n");
    mkfile("sub/bad.conf", "# a comment line\n  listn 127.0.0.1:1;\n"
                           "route {\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(),
                     "sub/bad.conf:2:3: unknown directive \"listn\", did you "
                     "mean \"listen\"?\n"
                     "sub/bad.conf:4:1: unexpected end of file, expected "
                     "\"}\"");

    /* A block cannot be closed by the including file. */
    mkfile("main.conf", BASE "include sub/open.conf;\n}\n");
    mkfile("sub/open.conf", "route { upstream demo; }\n}\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "sub/open.conf:2:1: unexpected \"}\"\n"
                                "main.conf:5:1: unexpected \"}\"");
}
END_TEST

START_TEST(test_include_cycle)
{
    mkfile("main.conf", BASE "include a.conf;\n");
    mkfile("a.conf", "workers 2;\ninclude sub/b.conf;\n");
    mkfile("sub/b.conf", "include ../a.conf;\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "sub/b.conf:1:9: include cycle: "
                                "\"sub/../a.conf\" is already being read");

    mkfile("main.conf", BASE "include main.conf;\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "main.conf:4:9: include cycle: "
                                "\"main.conf\" is already being read");

    /* The same file twice, not nested, is no cycle. */
    mkfile("main.conf", BASE "include a.conf;\ninclude a.conf;\n");
    mkfile("a.conf", "# nothing\n");
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_include_depth)
{
    /* f0 includes f1 ... f16 includes f17: 17 nested includes. */
    for (int i = 0; i <= 17; i++) {
        char name[32];
        char text[64];
        snprintf(name, sizeof(name), "f%d.conf", i);
        snprintf(text, sizeof(text), "include f%d.conf;\n", i + 1);
        mkfile(name, i == 17 ? "workers 1;\n" : text);
    }
    mkfile("main.conf", BASE "include f1.conf;\n");
    /* main -> f1 ... f16: 16 nested includes, the limit. */
    mkfile("f16.conf", "workers 1;\n");
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->workers, 1);
    sw_conf_unref(cf);
    /* One more is too deep. */
    mkfile("f16.conf", "include f17.conf;\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "f16.conf:1:9: includes nested too deep "
                                "(limit 16)");
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

static const char tls_conf[] =
    "listen 127.0.0.1:8080;\n"
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
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_unresolvable);
    tcase_add_test(tc, test_error_cap);
    tcase_add_test(tc, test_error_buffer);
    tcase_add_test(tc, test_refcount);
    tcase_add_test(tc, test_tls_defaults);
    tcase_add_test(tc, test_tls_every_directive);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup_dir, teardown_dir);
    tcase_add_test(files, test_load_file);
    tcase_add_test(files, test_include);
    tcase_add_test(files, test_include_errors_name_the_file);
    tcase_add_test(files, test_include_cycle);
    tcase_add_test(files, test_include_depth);
    suite_add_tcase(s, files);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conf_suite());
}
