/*
 * conf_dump.c - a snapshot printed back in the configuration syntax
 * (`shockwave -T`): includes expanded, every setting with its effective
 * value, defaults included, so the output loads again as the same
 * configuration.
 *
 *   main settings   -> the main table, in table order
 *   upstream blocks -> one per upstream, its table in order
 *   route blocks    -> in file order (matching does not depend on it)
 *
 * Directives stored by the generic setters (numbers, sizes, durations,
 * on/off, paths: conf_directive_value.c) are printed from the tables, so a
 * new one of those needs nothing here; the others have a printer below.
 * A directive that has neither is listed in a closing "# not shown:"
 * comment, which the tests look for.
 *
 * Owns nothing; reads an immutable snapshot. Any thread.
 */
#include "conf_int.h"

#include <shockwave/log.h>

#include <limits.h>
#include <stdlib.h>

/* Directives with printers of their own, or expanded (include). */
static const char *const main_custom[] = {
    "workers",
    "io_engine",
    "listen",
    "admin",
    "log_level",
    "access_log",
    "user",
    "set_real_ip_from",
    "real_ip_header",
    "include",
    "upstream",
    "route",
    "tls_certificate",
    "tls_certificate_key",
    "tls_ocsp_response",
    "tls_protocols",
    "tls_session_cache",
    "load_plugin",
    "fanout_bus",
    "fanout_bus_prefix",
};
static const char *const upstream_custom[] = {
    "server", "balance", "tls_ca", "tls_server_name", "include", "health_check",
};
static const char *const route_custom[] = {
    "host",
    "path_prefix",
    "header",
    "upstream",
    "return",
    "request_header",
    "response_header",
    "ws_ping",
    "ws_kernel_relay",
    "include",
    "name",
    "fanout",
    "fanout_client_messages",
    "fanout_slow",
    "plugin",
};

static bool
is_custom(enum sw__conf_ctx ctx, const char *name)
{
    static const struct {
        const char *const *names;
        size_t n;
    } lists[SW__CONF_CTX_COUNT] = {
        {main_custom, SW_NELEMS(main_custom)},
        {upstream_custom, SW_NELEMS(upstream_custom)},
        {route_custom, SW_NELEMS(route_custom)},
    };
    for (size_t i = 0; i < lists[ctx].n; i++) {
        if (strcmp(lists[ctx].names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static bool
is_generic(const struct sw__conf_directive *d)
{
    return d->set == sw__conf_set_value || d->set == sw__conf_set_flag ||
           d->set == sw__conf_set_path || d->set == sw__conf_set_string;
}

/* A quoted string: \" and \\ are the only escapes (conf_lex.c). */
static void
quoted(FILE *out, const char *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            fputc('\\', out);
        }
        fputc(p[i], out);
    }
    fputc('"', out);
}

/* A bare word when it reads back as one, else a quoted string. */
static void
word(FILE *out, const char *p, size_t n)
{
    bool bare = n > 0 && p[0] != '#';
    for (size_t i = 0; i < n && bare; i++) {
        unsigned char ch = (unsigned char)p[i];
        bare = ch > ' ' && ch != ';' && ch != '{' && ch != '}' && ch != '"' &&
               ch != '\\' && ch != 0x7f;
    }
    if (bare) {
        fwrite(p, 1, n, out);
        return;
    }
    quoted(out, p, n);
}

static void
sword(FILE *out, struct sw_str s)
{
    word(out, s.p, s.len);
}

/* A path read at load time, printed absolute so the output works from
 * any folder. */
static void
path_word(FILE *out, struct sw_str s)
{
    char real[PATH_MAX];
    if (s.len > 0 && s.p[0] != '/' && realpath(s.p, real) != NULL) {
        word(out, real, strlen(real));
        return;
    }
    sword(out, s);
}

/* "INDENT NAME VALUE;" with one value (a path made absolute). */
static void
setting(FILE *out, const char *indent, const char *name, struct sw_str v,
        bool path)
{
    fprintf(out, "%s%s ", indent, name);
    if (path) {
        path_word(out, v);
    } else {
        sword(out, v);
    }
    fputs(";\n", out);
}

/* As an error message shows a bound (sw__conf_value_show), except that 0
 * is written bare. */
static void
scaled(FILE *out, uint64_t v, const struct sw__conf_value *k)
{
    char text[SW__CONF_SHOW_MAX];
    if (v == 0) {
        fputc('0', out);
        return;
    }
    sw__conf_value_show(k, text, sizeof(text), v);
    fputs(text, out);
}

static void
duration(FILE *out, uint64_t ms)
{
    scaled(out, ms, &sw__conf_duration);
}

/* One directive stored by a generic setter, read from its field. */
static void
generic(FILE *out, const char *indent, const void *obj,
        const struct sw__conf_directive *d)
{
    const char *field = (const char *)obj + d->off;
    fprintf(out, "%s%s ", indent, d->name);
    if (d->set == sw__conf_set_flag) {
        bool on;
        memcpy(&on, field, sizeof(on));
        fputs(on ? "on" : "off", out);
    } else if (d->set == sw__conf_set_value) {
        uint64_t v = 0;
        if (d->width == sizeof(uint64_t)) {
            memcpy(&v, field, sizeof(v));
        } else {
            uint32_t n;
            memcpy(&n, field, sizeof(n));
            v = n;
        }
        scaled(out, v, d->value);
    } else {
        struct sw_str s;
        memcpy(&s, field, sizeof(s));
        sword(out, s);
    }
    fputs(";\n", out);
}

/* Every generic directive of a context, in table order. */
static void
generics(FILE *out, enum sw__conf_ctx ctx, const char *indent, const void *obj)
{
    size_t n;
    const struct sw__conf_directive *t = sw__conf_table(ctx, &n);
    for (size_t i = 0; i < n; i++) {
        if (is_generic(&t[i]) && !is_custom(ctx, t[i].name)) {
            generic(out, indent, obj, &t[i]);
        }
    }
}

static void
main_settings(FILE *out, const struct sw_conf *cf)
{
    if (cf->user.len > 0) {
        fputs("user ", out);
        sword(out, cf->user);
        if (cf->group.len > 0) {
            fputc(' ', out);
            sword(out, cf->group);
        }
        fputs(";\n", out);
    }
    if (cf->workers == 0) {
        fputs("workers auto;\n", out);
    } else {
        fprintf(out, "workers %u;\n", cf->workers);
    }
    fprintf(out, "io_engine %s;\n", sw_conf_io_engine_name(cf->io_engine));
    for (size_t i = 0; i < cf->nlistens; i++) {
        const struct sw_conf_listen *l = &cf->listens[i];
        fputs("listen ", out);
        sword(out, l->text);
        fprintf(out, " backlog=%d%s%s;\n", l->backlog, l->tls ? " tls" : "",
                l->proxy_protocol ? " proxy_protocol" : "");
    }
    if (cf->admin != NULL) {
        setting(out, "", "admin", cf->admin->text, false);
    }
    const char *level = sw_log_level_name(cf->log_level);
    if (level != NULL) {
        fprintf(out, "log_level %s;\n", level);
    }
    fputs("access_log ", out);
    sword(out, cf->access_log);
    fputs(cf->access_log_json ? " json;\n" : ";\n", out);
    for (size_t i = 0; i < cf->nreal_ip_from; i++) {
        setting(out, "", "set_real_ip_from", cf->real_ip_from[i].text, false);
    }
    setting(out, "", "real_ip_header", cf->real_ip_header, false);
    generics(out, SW__CONF_CTX_MAIN, "", cf);
    /* The URL as written (its password included: -T shows the file). */
    if (cf->bus_host.len > 0) {
        setting(out, "", "fanout_bus", cf->bus_url, false);
    }
    setting(out, "", "fanout_bus_prefix", cf->bus_prefix, false);
    fputs("tls_protocols", out);
    fputs(cf->tls_protocols & SW_CONF_TLS_V12 ? " TLSv1.2" : "", out);
    fputs(cf->tls_protocols & SW_CONF_TLS_V13 ? " TLSv1.3" : "", out);
    fputs(";\n", out);
    if (cf->tls_session_cache == 0) {
        fputs("tls_session_cache off;\n", out);
    } else {
        fprintf(out, "tls_session_cache %llu;\n",
                (unsigned long long)cf->tls_session_cache);
    }
    for (size_t i = 0; i < cf->ntls_certs; i++) {
        const struct sw_conf_tls_cert *c = &cf->tls_certs[i];
        setting(out, "", "tls_certificate", c->cert, true);
        setting(out, "", "tls_certificate_key", c->key, true);
        if (c->ocsp_response.len > 0) {
            setting(out, "", "tls_ocsp_response", c->ocsp_response, true);
        }
    }
}

/* One KEY=VALUE option as a single word (quoted when it must be). */
static void
option(FILE *out, const char *key, struct sw_str v)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s=%.*s", key, (int)v.len, v.p);
    fputc(' ', out);
    sword(out, (struct sw_str){buf, (size_t)SW_MIN(n, (int)sizeof(buf) - 1)});
}

static void
health_check(FILE *out, const struct sw_conf_health_check *hc)
{
    static const char *const types[] = {
        [SW_CONF_CHECK_HTTP] = "http",
        [SW_CONF_CHECK_TCP] = "tcp",
        [SW_CONF_CHECK_WEBSOCKET] = "websocket",
    };
    fprintf(out, "    health_check type=%s interval=", types[hc->type]);
    duration(out, hc->interval_ms);
    fputs(" timeout=", out);
    duration(out, hc->timeout_ms);
    if (hc->type != SW_CONF_CHECK_TCP) {
        option(out, "path", hc->path);
        if (hc->host.len > 0) {
            option(out, "host", hc->host);
        }
    }
    if (hc->type == SW_CONF_CHECK_HTTP) {
        fprintf(out, " expect=%u-%u", hc->expect_lo, hc->expect_hi);
    }
    fprintf(out, " fall=%u rise=%u;\n", hc->fall, hc->rise);
}

static void
upstream_block(FILE *out, const struct sw_conf_upstream *u)
{
    fputs("\nupstream ", out);
    sword(out, u->name);
    fputs(" {\n", out);
    for (size_t i = 0; i < u->nservers; i++) {
        const struct sw_conf_server *sv = &u->servers[i];
        fputs("    server ", out);
        sword(out, sv->text);
        fprintf(out, " weight=%u max_fails=%u fail_timeout=", sv->weight,
                sv->max_fails);
        duration(out, sv->fail_timeout_ms);
        fputs(sv->tls ? " tls" : "", out);
        fputs(sv->backup ? " backup;\n" : ";\n", out);
    }
    if (u->hc.enabled) {
        health_check(out, &u->hc);
    }
    if (u->balance == SW_CONF_BALANCE_LEAST_CONN) {
        fputs("    balance least_conn;\n", out);
    } else if (u->balance == SW_CONF_BALANCE_HASH &&
               u->hash_key == SW_CONF_HASH_HEADER) {
        fputs("    balance hash header ", out);
        sword(out, u->hash_header);
        fputs(";\n", out);
    } else if (u->balance == SW_CONF_BALANCE_HASH) {
        fputs("    balance hash $remote_addr;\n", out);
    } else {
        fputs("    balance round_robin;\n", out);
    }
    generics(out, SW__CONF_CTX_UPSTREAM, "    ", u);
    if (u->tls_ca.len > 0) {
        setting(out, "    ", "tls_ca", u->tls_ca, true);
    }
    if (u->tls_server_name.len > 0) {
        setting(out, "    ", "tls_server_name", u->tls_server_name, false);
    }
    fputs("}\n", out);
}

/* A header value template as a quoted string: "$" doubled, variables as
 * ${name}. */
static void template(FILE *out, const struct sw_conf_tpl *tpl)
{
    static const char *const names[] = {
        [SW_CONF_VAR_REMOTE_ADDR] = "remote_addr",
        [SW_CONF_VAR_REMOTE_PORT] = "remote_port",
        [SW_CONF_VAR_SCHEME] = "scheme",
        [SW_CONF_VAR_HOST] = "host",
        [SW_CONF_VAR_REQUEST_ID] = "request_id",
        [SW_CONF_VAR_REQUEST_URI] = "request_uri",
        [SW_CONF_VAR_SERVER_PORT] = "server_port",
        [SW_CONF_VAR_REALIP_REMOTE_ADDR] = "realip_remote_addr",
        [SW_CONF_VAR_URI] = "uri",
    };
    fputc('"', out);
    for (size_t i = 0; i < tpl->nparts; i++) {
        const struct sw_conf_tpl_part *pt = &tpl->parts[i];
        if (pt->var == SW_CONF_VAR_ARG || pt->var == SW_CONF_VAR_HTTP) {
            fprintf(out, "${%s%.*s}",
                    pt->var == SW_CONF_VAR_ARG ? "arg_" : "http_",
                    (int)pt->text.len, pt->text.p);
            continue;
        }
        if (pt->var != SW_CONF_VAR_NONE && (size_t)pt->var < SW_NELEMS(names) &&
            names[pt->var] != NULL) {
            fprintf(out, "${%s}", names[pt->var]);
            continue;
        }
        for (size_t j = 0; j < pt->text.len; j++) {
            char ch = pt->text.p[j];
            if (ch == '$') {
                fputc('$', out);
            } else if (ch == '"' || ch == '\\') {
                fputc('\\', out);
            }
            fputc(ch, out);
        }
    }
    fputc('"', out);
}

static void
edits(FILE *out, const char *what, const struct sw_conf_edit *e, size_t n)
{
    static const char *const ops[] = {"set", "add", "remove"};
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "    %s %s ", what, ops[e[i].op]);
        sword(out, e[i].name);
        if (e[i].op != SW_CONF_EDIT_REMOVE) {
            fputc(' ', out);
            template(out, &e[i].value);
        }
        fputs(";\n", out);
    }
}

static void
route_block(FILE *out, const struct sw_conf_route *r)
{
    fputs("\nroute {\n", out);
    setting(out, "    ", "name", r->name, false);
    if (r->nhosts > 0) {
        fputs("    host", out);
        for (size_t i = 0; i < r->nhosts; i++) {
            fputc(' ', out);
            sword(out, r->hosts[i]);
        }
        fputs(";\n", out);
    }
    setting(out, "    ", "path_prefix", r->path_prefix, false);
    for (size_t i = 0; i < r->nheaders; i++) {
        fputs("    header ", out);
        sword(out, r->headers[i].name);
        if (r->headers[i].value.len > 0) {
            fputc(' ', out);
            sword(out, r->headers[i].value);
        }
        fputs(";\n", out);
    }
    if (r->return_status != 0) {
        fprintf(out, "    return %d ", r->return_status);
        /* Always quoted: a body of digits or "on" must stay a string. */
        quoted(out, r->return_body.p, r->return_body.len);
        fputs(";\n", out);
    } else if (r->upstream != NULL) {
        setting(out, "    ", "upstream", r->upstream->name, false);
    }
    edits(out, "request_header", r->request_edits, r->nrequest_edits);
    edits(out, "response_header", r->response_edits, r->nresponse_edits);
    fprintf(out, "    ws_ping %s;\n",
            r->ws_ping == SW_CONF_WS_PING_FORWARD ? "forward" : "local");
    /* the value in force: the route's own or the main default */
    fprintf(out, "    ws_kernel_relay %s;\n",
            r->ws_kernel_relay ? "on" : "off");
    if (r->fanout) {
        fputs("    fanout ", out);
        template(out, &r->fanout_key);
        fprintf(out, ";\n    fanout_client_messages %s;\n    fanout_slow %s;\n",
                r->fanout_drop_client ? "drop" : "forward",
                r->fanout_slow_close ? "close" : "drop");
    }
    generics(out, SW__CONF_CTX_ROUTE, "    ", r);
    /* a plugin's statements as written: their meaning is the plugin's */
    for (size_t i = 0; i < r->nplugins; i++) {
        const struct sw_conf_plugin_block *pb = &r->plugins[i];
        fprintf(out, "    plugin %s {\n", pb->name.p);
        for (size_t k = 0; k < pb->ndirectives; k++) {
            fprintf(out, "        %s", pb->directives[k].name.p);
            for (size_t j = 0; j < pb->directives[k].nargs; j++) {
                fputc(' ', out);
                sword(out, pb->directives[k].args[j]);
            }
            fputs(";\n", out);
        }
        fputs("    }\n", out);
    }
    fputs("}\n", out);
}

void
sw_conf_dump(const struct sw_conf *cf, FILE *out)
{
    fputs("# effective configuration of ", out);
    fwrite(cf->path.p, 1, cf->path.len, out);
    fputs(" (shockwave -T): includes expanded, defaults written out\n", out);
    main_settings(out, cf);
    for (size_t i = 0; i < cf->nplugin_loads; i++) {
        const struct sw_conf_plugin_load *pl = &cf->plugin_loads[i];
        fprintf(out, "%sload_plugin %s", i == 0 ? "\n" : "", pl->name.p);
        if (pl->path.len > 0) {
            fputc(' ', out);
            sword(out, pl->path);
        }
        fputs(";\n", out);
    }
    for (size_t i = 0; i < cf->nupstreams; i++) {
        upstream_block(out, &cf->upstreams[i]);
    }
    for (size_t i = 0; i < cf->nroutes; i++) {
        route_block(out, &cf->routes[i]);
    }
    /* Anything neither generic nor printed above is named, so that a new
     * directive cannot go missing from the dump unnoticed. */
    bool any = false;
    for (int ctx = 0; ctx < SW__CONF_CTX_COUNT; ctx++) {
        size_t n;
        const struct sw__conf_directive *t = sw__conf_table(ctx, &n);
        for (size_t i = 0; i < n; i++) {
            if (!is_generic(&t[i]) && !is_custom(ctx, t[i].name)) {
                fputs(any ? " " : "\n# not shown: ", out);
                fputs(t[i].name, out);
                any = true;
            }
        }
    }
    if (any) {
        fputc('\n', out);
    }
}
