/*
 * conf_directive.c - the directive tables, one per context, and the look-up
 * the parser dispatches through (see conf_parse.c, docs/configuration.md).
 *
 *   main_directives[], upstream_directives[], route_directives[]
 *   sw__conf_lookup()             a name in one context's table
 *   sw__conf_unknown_directive()  "not allowed here" or "did you mean"
 *   sw__conf_nearest()            the closest of a list of names
 *   sw__conf_table()              one context's table (conf_dump.c)
 *
 * An entry names its setter, its argument count and flags; an entry for a
 * generic setter (conf_directive_value.c) also names the field it writes
 * (offset and width in the block's object: struct sw_conf at the top
 * level, sw_conf_upstream in upstream { }, sw_conf_route in route { }),
 * the kind of number it reads and the range allowed:
 *
 *   {.name = "buffer_size", VALUE(sw__conf_size, CF(buffer_size)),
 *    .lo = KB, .hi = 64 * MB}
 *
 * The setters with rules of their own are in conf_directive_main.c, _tls.c,
 * _upstream.c and _route.c. An entry's index is its bit in
 * sw__conf_block.seen, for the "duplicate directive" check.
 *
 * Owns nothing: the tables are constant. Any thread.
 */
#include "conf_int.h"

#define SUGGEST_MAX 2 /* edits between a name and a "did you mean" */

/* The field a generic setter writes, in the object of each context. */
#define FIELD(type, f) .off = offsetof(type, f), .width = sizeof(((type *)0)->f)
#define CF(f) FIELD(struct sw_conf, f)
#define UP(f) FIELD(struct sw_conf_upstream, f)
#define RT(f) FIELD(struct sw_conf_route, f)

/* An entry for sw__conf_set_value: one argument, a number of kind k (see
 * conf_int.h), stored in field f (CF, UP or RT); the range follows. */
#define VALUE(k, f)                                                            \
    .set = sw__conf_set_value, .min = 1, .max = 1, .value = &(k), f

/* Short names for the ranges below. */
#define KB SW__CONF_KB
#define MB SW__CONF_MB
#define MAX_DUR SW__CONF_MAX_DUR
#define MAX_SIZE SW__CONF_MAX_SIZE

static const char *const ctx_names[SW__CONF_CTX_COUNT] = {
    "at the top level",
    "inside upstream { }",
    "inside route { }",
};

static const struct sw__conf_directive main_directives[] = {
    {.name = "workers",
     .set = sw__conf_set_workers,
     .min = 1,
     .max = 1,
     .lo = 1,
     .hi = 1024},
    {.name = "io_engine", .set = sw__conf_set_io_engine, .min = 1, .max = 1},
    {.name = "ws_kernel_relay",
     .set = sw__conf_set_flag,
     .min = 1,
     .max = 1,
     CF(ws_kernel_relay)},
    {.name = "listen",
     .set = sw__conf_set_listen,
     .min = 1,
     .max = 4,
     .flags = SW__CONF_F_MULTI},
    {.name = "admin", .set = sw__conf_set_admin, .min = 1, .max = 1},
    {.name = "error_log",
     .set = sw__conf_set_path,
     .min = 1,
     .max = 1,
     CF(error_log)},
    {.name = "log_level", .set = sw__conf_set_log_level, .min = 1, .max = 1},
    {.name = "access_log",
     .set = sw__conf_set_access_log,
     .min = 1,
     .max = 2,
     CF(access_log)},
    {.name = "user", .set = sw__conf_set_user, .min = 1, .max = 2},
    {.name = "set_real_ip_from",
     .set = sw__conf_set_real_ip_from,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
    {.name = "real_ip_header",
     .set = sw__conf_set_real_ip_header,
     .min = 1,
     .max = 1},
    {.name = "real_ip_recursive",
     .set = sw__conf_set_flag,
     .min = 1,
     .max = 1,
     CF(real_ip_recursive)},
    {.name = "buffer_size",
     VALUE(sw__conf_size, CF(buffer_size)),
     .lo = KB,
     .hi = 64 * MB},
    {.name = "ws_pipe_size",
     VALUE(sw__conf_size, CF(ws_pipe_size)),
     .lo = 4 * KB,
     .hi = 1024 * MB},
    {.name = "max_header_bytes",
     VALUE(sw__conf_size, CF(max_header_bytes)),
     .lo = 256,
     .hi = 64 * MB},
    {.name = "max_request_line",
     VALUE(sw__conf_size, CF(max_request_line)),
     .lo = 64,
     .hi = 64 * MB},
    {.name = "max_headers",
     VALUE(sw__conf_number, CF(max_headers)),
     .lo = 1,
     .hi = 10000},
    {.name = "max_body_size",
     VALUE(sw__conf_size, CF(max_body_size)),
     .lo = 0,
     .hi = MAX_SIZE},
    {.name = "max_client_connections",
     VALUE(sw__conf_number, CF(max_client_connections)),
     .lo = 1,
     .hi = 10000000},
    {.name = "client_header_timeout",
     VALUE(sw__conf_duration, CF(client_header_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "client_body_timeout",
     VALUE(sw__conf_duration, CF(client_body_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "keepalive_timeout",
     VALUE(sw__conf_duration, CF(keepalive_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "send_timeout",
     VALUE(sw__conf_duration, CF(send_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "shutdown_timeout",
     VALUE(sw__conf_duration, CF(shutdown_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "include",
     .set = sw__conf_set_include,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
    {.name = "load_plugin",
     .set = sw__conf_set_load_plugin,
     .min = 1,
     .max = 2,
     .flags = SW__CONF_F_MULTI},
    {.name = "upstream",
     .set = sw__conf_set_upstream_block,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI | SW__CONF_F_BLOCK},
    {.name = "route",
     .set = sw__conf_set_route_block,
     .min = 0,
     .max = 0,
     .flags = SW__CONF_F_MULTI | SW__CONF_F_BLOCK},
    {.name = "tls_certificate",
     .set = sw__conf_set_tls_certificate,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
    {.name = "tls_certificate_key",
     .set = sw__conf_set_tls_cert_part,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
    {.name = "tls_ocsp_response",
     .set = sw__conf_set_tls_cert_part,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
    {.name = "tls_protocols",
     .set = sw__conf_set_tls_protocols,
     .min = 1,
     .max = 2},
    {.name = "tls_ciphers",
     .set = sw__conf_set_string,
     .min = 1,
     .max = 1,
     CF(tls_ciphers)},
    {.name = "tls_ciphersuites",
     .set = sw__conf_set_string,
     .min = 1,
     .max = 1,
     CF(tls_ciphersuites)},
    {.name = "tls_ticket_rotate",
     VALUE(sw__conf_duration, CF(tls_ticket_rotate_ms)),
     .lo = 1000,
     .hi = MAX_DUR},
    {.name = "tls_session_cache",
     .set = sw__conf_set_tls_session_cache,
     .min = 1,
     .max = 1,
     .lo = 1,
     .hi = 1000000},
    {.name = "tls_handshake_timeout",
     VALUE(sw__conf_duration, CF(tls_handshake_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "fanout_bus", .set = sw__conf_set_bus, .min = 1, .max = 1},
    {.name = "fanout_bus_prefix",
     .set = sw__conf_set_bus_prefix,
     .min = 1,
     .max = 1},
    {.name = "fanout_bus_lease",
     VALUE(sw__conf_duration, CF(bus_lease_ms)),
     .lo = SW__CONF_SEC,
     .hi = SW__CONF_MINUTE},
};

static const struct sw__conf_directive upstream_directives[] = {
    {.name = "server",
     .set = sw__conf_set_server,
     .min = 1,
     .max = 6,
     .flags = SW__CONF_F_MULTI},
    {.name = "balance", .set = sw__conf_set_balance, .min = 1, .max = 3},
    {.name = "health_check",
     .set = sw__conf_set_health_check,
     .min = 0,
     .max = 9},
    {.name = "keepalive",
     VALUE(sw__conf_number, UP(keepalive)),
     .lo = 0,
     .hi = 100000},
    {.name = "keepalive_timeout",
     VALUE(sw__conf_duration, UP(keepalive_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "connect_timeout",
     VALUE(sw__conf_duration, UP(connect_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "read_timeout",
     VALUE(sw__conf_duration, UP(read_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "send_timeout",
     VALUE(sw__conf_duration, UP(send_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "tls_verify",
     .set = sw__conf_set_flag,
     .min = 1,
     .max = 1,
     UP(tls_verify)},
    {.name = "tls_ca", .set = sw__conf_set_upstream_tls, .min = 1, .max = 1},
    {.name = "tls_server_name",
     .set = sw__conf_set_upstream_tls,
     .min = 1,
     .max = 1},
    {.name = "include",
     .set = sw__conf_set_include,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
};

static const struct sw__conf_directive route_directives[] = {
    {.name = "name", .set = sw__conf_set_route_name, .min = 1, .max = 1},
    {.name = "host",
     .set = sw__conf_set_host,
     .min = 1,
     .max = -1,
     .flags = SW__CONF_F_MULTI},
    {.name = "path_prefix",
     .set = sw__conf_set_path_prefix,
     .min = 1,
     .max = 1},
    {.name = "header",
     .set = sw__conf_set_header_match,
     .min = 1,
     .max = 2,
     .flags = SW__CONF_F_MULTI},
    {.name = "upstream",
     .set = sw__conf_set_route_upstream,
     .min = 1,
     .max = 1},
    {.name = "return", .set = sw__conf_set_return, .min = 1, .max = 2},
    {.name = "request_header",
     .set = sw__conf_set_edit,
     .min = 2,
     .max = 3,
     .flags = SW__CONF_F_MULTI},
    {.name = "response_header",
     .set = sw__conf_set_edit,
     .min = 2,
     .max = 3,
     .flags = SW__CONF_F_MULTI},
    {.name = "connect_timeout",
     VALUE(sw__conf_duration, RT(connect_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "read_timeout",
     VALUE(sw__conf_duration, RT(read_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "send_timeout",
     VALUE(sw__conf_duration, RT(send_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "max_body_size",
     VALUE(sw__conf_size, RT(max_body_size)),
     .lo = 0,
     .hi = MAX_SIZE},
    {.name = "websocket",
     .set = sw__conf_set_flag,
     .min = 1,
     .max = 1,
     RT(websocket)},
    {.name = "ws_ping", .set = sw__conf_set_ws_ping, .min = 1, .max = 1},
    {.name = "ws_ping_interval",
     VALUE(sw__conf_duration, RT(ws_ping_interval_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "ws_idle_timeout",
     VALUE(sw__conf_duration, RT(ws_idle_timeout_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "ws_park_after",
     VALUE(sw__conf_duration, RT(ws_park_after_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "ws_close_timeout",
     VALUE(sw__conf_duration, RT(ws_close_timeout_ms)),
     .lo = 1,
     .hi = MAX_DUR},
    {.name = "ws_max_message",
     VALUE(sw__conf_size, RT(ws_max_message)),
     .lo = 0,
     .hi = MAX_SIZE},
    {.name = "ws_max_frame",
     VALUE(sw__conf_size, RT(ws_max_frame)),
     .lo = 0,
     .hi = MAX_SIZE},
    {.name = "ws_max_buffer",
     VALUE(sw__conf_size, RT(ws_max_buffer)),
     .lo = KB,
     .hi = 64 * MB},
    {.name = "ws_splice_threshold",
     VALUE(sw__conf_size, RT(ws_splice_threshold)),
     .lo = 0,
     .hi = 1024 * MB},
    {.name = "ws_validate_utf8",
     .set = sw__conf_set_flag,
     .min = 1,
     .max = 1,
     RT(ws_validate_utf8)},
    {.name = "ws_kernel_relay",
     .set = sw__conf_set_kernel_relay,
     .min = 1,
     .max = 1,
     RT(ws_kernel_relay)},
    {.name = "fanout", .set = sw__conf_set_fanout, .min = 1, .max = 1},
    {.name = "plugin",
     .set = sw__conf_set_plugin_block,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI | SW__CONF_F_BLOCK},
    {.name = "fanout_linger",
     VALUE(sw__conf_duration, RT(fanout_linger_ms)),
     .lo = 0,
     .hi = MAX_DUR},
    {.name = "fanout_backlog",
     VALUE(sw__conf_size, RT(fanout_backlog)),
     .lo = KB,
     .hi = 1024 * MB},
    {.name = "fanout_client_messages",
     .set = sw__conf_set_fanout_choice,
     .min = 1,
     .max = 1},
    {.name = "fanout_slow",
     .set = sw__conf_set_fanout_choice,
     .min = 1,
     .max = 1},
    {.name = "fanout_reconnect",
     .set = sw__conf_set_flag,
     .min = 1,
     .max = 1,
     RT(fanout_reconnect)},
    {.name = "include",
     .set = sw__conf_set_include,
     .min = 1,
     .max = 1,
     .flags = SW__CONF_F_MULTI},
};

/* sw__conf_block.seen has one bit per entry. */
_Static_assert(SW_NELEMS(main_directives) <= SW__CONF_MAX_DIRECTIVES,
               "too many main directives");
_Static_assert(SW_NELEMS(upstream_directives) <= SW__CONF_MAX_DIRECTIVES,
               "too many upstream directives");
_Static_assert(SW_NELEMS(route_directives) <= SW__CONF_MAX_DIRECTIVES,
               "too many route directives");

static const struct sw__conf_directive *tables[SW__CONF_CTX_COUNT] = {
    main_directives,
    upstream_directives,
    route_directives,
};

static const size_t table_sizes[SW__CONF_CTX_COUNT] = {
    SW_NELEMS(main_directives),
    SW_NELEMS(upstream_directives),
    SW_NELEMS(route_directives),
};

const struct sw__conf_directive *
sw__conf_lookup(enum sw__conf_ctx ctx, struct sw_str name, size_t *idx)
{
    for (size_t i = 0; i < table_sizes[ctx]; i++) {
        if (sw__conf_str_eq(name, tables[ctx][i].name)) {
            if (idx != NULL) {
                *idx = i;
            }
            return &tables[ctx][i];
        }
    }
    return NULL;
}

const struct sw__conf_directive *
sw__conf_table(enum sw__conf_ctx ctx, size_t *n)
{
    *n = table_sizes[ctx];
    return tables[ctx];
}

const char *
sw__conf_nearest(const char *const *names, size_t n, size_t stride,
                 const char *p, size_t len)
{
    const char *best = NULL;
    size_t bestd = SUGGEST_MAX + 1;
    for (size_t i = 0; i < n; i++) {
        const char *cand =
            *(const char *const *)((const char *)names + i * stride);
        size_t d = sw__conf_distance(p, len, cand, strlen(cand), SUGGEST_MAX);
        /* A distance as large as the word itself is no suggestion. */
        if (d < bestd && d < len) {
            best = cand;
            bestd = d;
        }
    }
    return best;
}

void
sw__conf_unknown_directive(struct sw__conf_parser *ps, struct sw__conf_src *s,
                           const struct sw__conf_block *b,
                           const struct sw__conf_stmt *st)
{
    const struct sw__conf_tok *t = &st->name;
    for (int c = 0; c < SW__CONF_CTX_COUNT; c++) {
        const struct sw__conf_directive *d =
            sw__conf_lookup((enum sw__conf_ctx)c, t->text, NULL);
        if (c != (int)b->ctx && d != NULL) {
            sw__conf_err_tok(ps, s, t, "\"%s\" is not allowed %s, only %s",
                             d->name, ctx_names[b->ctx], ctx_names[c]);
            return;
        }
    }
    const char *sugg = sw__conf_nearest(
        &tables[b->ctx][0].name, table_sizes[b->ctx],
        sizeof(struct sw__conf_directive), t->text.p, t->text.len);
    if (sugg != NULL) {
        sw__conf_err_tok(ps, s, t,
                         "unknown directive \"%.*s\", did you mean \"%s\"?",
                         SW__CONF_TOKF(t), sugg);
    } else {
        sw__conf_err_tok(ps, s, t, "unknown directive \"%.*s\"",
                         SW__CONF_TOKF(t));
    }
}
