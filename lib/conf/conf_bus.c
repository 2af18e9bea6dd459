/*
 * conf_bus.c - the Redis bus between gateways, as the configuration names
 * it (docs/configuration.md, "The Redis bus"):
 *
 *   sw__conf_set_bus()         fanout_bus redis://[[USER]:PASSWORD@]HOST
 *                              [:PORT][/DB]
 *   sw__conf_set_bus_prefix()  fanout_bus_prefix PREFIX
 *   sw__conf_bus_defaults()    no bus, port 6379, DB 0, "shockwave:", 3s
 *
 * `fanout_bus_lease` goes through the generic duration setter.
 *
 * The URL is read the way redis-cli reads `-u`: USER and PASSWORD may be
 * percent-encoded (%40 for "@"), the host is a name, an IPv4 address or
 * an IPv6 address in brackets (stored without them). The host is not
 * resolved here: the bus resolves it when it connects, so a Redis that
 * is not up yet does not fail a load.
 *
 *   redis://  userinfo@  host  :port  /db
 *   scheme    optional   [v6]  1..    0..2147483647, then nothing
 *
 * Ownership: what is stored is copied into the snapshot's arena. One
 * thread.
 */
#include "conf_int.h"

#include <arpa/inet.h>

#define SCHEME "redis://"
#define PORT_MAX 65535
#define DB_MAX 2147483647ull
#define PREFIX_MAX 64
#define USAGE "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"

/* The parts of a URL. */
struct url {
    struct sw_str user;     /* owned (arena): decoded; NULL without "@" */
    struct sw_str password; /* owned (arena): decoded; NULL without "@" */
    struct sw_str host;     /* borrowed (the token): without brackets */
    uint16_t port;
    unsigned db;
};

/* Offset in s of the first byte of any of `set`, or s.len. */
static size_t
span_to(struct sw_str s, size_t from, const char *set)
{
    size_t i = from;
    while (i < s.len && strchr(set, s.p[i]) == NULL) {
        i++;
    }
    return i;
}

static bool
is_host_byte(char ch)
{
    return sw__conf_is_host_char(ch) || (ch >= 'A' && ch <= 'Z');
}

/* t->text[from..end) percent-decoded into the arena. */
static bool
decode(struct sw__conf_parser *ps, const struct sw__conf_src *s,
       const struct sw__conf_tok *t, size_t from, size_t end,
       struct sw_str *out)
{
    struct sw_str v = {t->text.p + from, end - from};
    char *d = sw__conf_alloc(ps->arena, v.len + 1);
    if (d == NULL) {
        sw__conf_oom(ps);
        return false;
    }
    size_t bad = 0;
    ssize_t n = sw_percent_decode(v, d, v.len, &bad);
    if (n < 0) {
        sw__conf_err_off(ps, s, t, from + bad,
                         "\"fanout_bus\": invalid percent escape in the user "
                         "or password: expected %%XX with two hex digits, "
                         "not %%00");
        return false;
    }
    d[n] = '\0';
    *out = (struct sw_str){d, (size_t)n};
    return true;
}

/* USER:PASSWORD in t->text[from..at), at being the "@". */
static bool
parse_userinfo(struct sw__conf_parser *ps, const struct sw__conf_src *s,
               const struct sw__conf_tok *t, size_t from, size_t at,
               struct url *u)
{
    const char *p = t->text.p;
    const char *colon = memchr(p + from, ':', at - from);
    if (colon == NULL) {
        sw__conf_err_off(ps, s, t, from,
                         "\"fanout_bus\" expects USER:PASSWORD@ or "
                         ":PASSWORD@ before the host (a password alone is "
                         "written \":PASSWORD@\")");
        return false;
    }
    size_t c = (size_t)(colon - p);
    if (at == c + 1) {
        sw__conf_err_off(ps, s, t, c + 1,
                         "\"fanout_bus\": empty password after \":\"");
        return false;
    }
    return decode(ps, s, t, from, c, &u->user) &&
           decode(ps, s, t, c + 1, at, &u->password);
}

/* HOST, [V6] or HOST:PORT at t->text[from..end). */
static bool
parse_address(struct sw__conf_parser *ps, const struct sw__conf_src *s,
              const struct sw__conf_tok *t, size_t from, size_t end,
              struct url *u)
{
    struct sw_str a = t->text;
    size_t i;
    if (from < end && a.p[from] == '[') {
        const char *rb = memchr(a.p + from, ']', end - from);
        if (rb == NULL) {
            sw__conf_err_off(ps, s, t, from,
                             "\"fanout_bus\": missing \"]\" after the IPv6 "
                             "address");
            return false;
        }
        i = (size_t)(rb - a.p);
        u->host = (struct sw_str){a.p + from + 1, i - from - 1};
        char text[INET6_ADDRSTRLEN + 1];
        struct in6_addr in6;
        bool ok = u->host.len > 0 && u->host.len < sizeof(text);
        if (ok) {
            memcpy(text, u->host.p, u->host.len);
            text[u->host.len] = '\0';
            ok = inet_pton(AF_INET6, text, &in6) == 1;
        }
        if (!ok) {
            sw__conf_err_off(ps, s, t, from + 1,
                             "\"fanout_bus\": invalid IPv6 address \"%.*s\"",
                             (int)SW_MIN(u->host.len, SW__CONF_SHOW),
                             u->host.p);
            return false;
        }
        i++;
        if (i < end && a.p[i] != ':') {
            sw__conf_err_off(ps, s, t, i,
                             "\"fanout_bus\": expected \":PORT\" or \"/DB\" "
                             "after \"]\"");
            return false;
        }
    } else {
        i = span_to(a, from, ":");
        i = SW_MIN(i, end);
        u->host = (struct sw_str){a.p + from, i - from};
        if (u->host.len == 0) {
            sw__conf_err_off(ps, s, t, from,
                             "\"fanout_bus\": empty host, expected " USAGE);
            return false;
        }
        if (u->host.len > SW__CONF_NAME_MAX) {
            sw__conf_err_off(ps, s, t, from,
                             "\"fanout_bus\": host name longer than %d bytes",
                             SW__CONF_NAME_MAX);
            return false;
        }
        for (size_t k = 0; k < u->host.len; k++) {
            if (!is_host_byte(u->host.p[k])) {
                sw__conf_err_off(ps, s, t, from + k,
                                 "\"fanout_bus\": invalid character in host "
                                 "\"%.*s\": expected letters, digits, \"-\", "
                                 "\".\" or \"_\"",
                                 (int)SW_MIN(u->host.len, SW__CONF_SHOW),
                                 u->host.p);
                return false;
            }
        }
    }
    if (i == end) {
        return true;
    }
    /* a.p[i] == ':' */
    struct sw_str port = {a.p + i + 1, end - i - 1};
    uint64_t v;
    if (memchr(port.p, ':', port.len) != NULL) {
        sw__conf_err_off(ps, s, t, from,
                         "\"fanout_bus\": an IPv6 address needs brackets, as "
                         "in redis://[::1]:6379");
        return false;
    }
    if (!sw__conf_parse_u64(port, &v) || v < 1 || v > PORT_MAX) {
        sw__conf_err_off(ps, s, t, i + 1,
                         "\"fanout_bus\": invalid port \"%.*s\": expected 1 "
                         "to 65535",
                         (int)SW_MIN(port.len, SW__CONF_SHOW), port.p);
        return false;
    }
    u->port = (uint16_t)v;
    return true;
}

/* "/DB" at t->text[from..), from pointing at the "/". */
static bool
parse_db(struct sw__conf_parser *ps, const struct sw__conf_src *s,
         const struct sw__conf_tok *t, size_t from, struct url *u)
{
    struct sw_str a = t->text;
    size_t end = span_to(a, from + 1, "/?#");
    struct sw_str db = {a.p + from + 1, end - from - 1};
    uint64_t v;
    if (db.len > 10 || !sw__conf_parse_u64(db, &v) || v > DB_MAX) {
        sw__conf_err_off(ps, s, t, from + 1,
                         "\"fanout_bus\": invalid DB \"%.*s\": expected a "
                         "number from 0 to %llu",
                         (int)SW_MIN(db.len, SW__CONF_SHOW), db.p,
                         (unsigned long long)DB_MAX);
        return false;
    }
    u->db = (unsigned)v;
    if (end < a.len) {
        sw__conf_err_off(ps, s, t, end,
                         "\"fanout_bus\": unexpected \"%.*s\" after the DB "
                         "number (the URL ends there)",
                         (int)SW_MIN(a.len - end, SW__CONF_SHOW), a.p + end);
        return false;
    }
    return true;
}

static bool
parse_url(struct sw__conf_parser *ps, const struct sw__conf_src *s,
          const struct sw__conf_tok *t, struct url *u)
{
    struct sw_str a = t->text;
    size_t n = sizeof(SCHEME) - 1;
    if (a.len < n || strncasecmp(a.p, SCHEME, n) != 0) {
        if (a.len >= n + 1 && strncasecmp(a.p, "rediss://", n + 1) == 0) {
            sw__conf_err_tok(ps, s, t,
                             "\"fanout_bus\": rediss:// (Redis over TLS) is "
                             "not supported; use redis:// on a trusted "
                             "network, or a TLS tunnel to Redis");
        } else {
            sw__conf_err_tok(ps, s, t,
                             "\"fanout_bus\" expects " USAGE ", got \"%.*s\"",
                             SW__CONF_TOKF(t));
        }
        return false;
    }
    /* The authority ends at the first "/"; USER:PASSWORD ends at its last
     * "@", so a password may hold an "@" even unencoded. */
    size_t end = span_to(a, n, "/?#");
    size_t host = n;
    const char *at = memrchr(a.p + n, '@', end - n);
    if (at != NULL) {
        host = (size_t)(at - a.p) + 1;
        if (!parse_userinfo(ps, s, t, n, host - 1, u)) {
            return false;
        }
    }
    if (!parse_address(ps, s, t, host, end, u)) {
        return false;
    }
    if (end == a.len) {
        return true;
    }
    if (a.p[end] != '/') {
        sw__conf_err_off(ps, s, t, end,
                         "\"fanout_bus\": unexpected \"%.*s\" after the "
                         "address (no query or fragment is read)",
                         (int)SW_MIN(a.len - end, SW__CONF_SHOW), a.p + end);
        return false;
    }
    return parse_db(ps, s, t, end, u);
}

void
sw__conf_set_bus(struct sw__conf_parser *ps, struct sw__conf_src *s,
                 struct sw__conf_block *b, const struct sw__conf_stmt *st,
                 const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    struct url u = {.port = 6379};
    if (!parse_url(ps, s, t, &u)) {
        return;
    }
    cf->bus_url = sw__conf_dup_str(ps, t->text.p, t->text.len);
    cf->bus_host = sw__conf_dup_str(ps, u.host.p, u.host.len);
    cf->bus_port = u.port;
    cf->bus_db = u.db;
    if (u.password.p != NULL) { /* else the defaults' "" stay */
        cf->bus_user = u.user;
        cf->bus_password = u.password;
    }
}

void
sw__conf_set_bus_prefix(struct sw__conf_parser *ps, struct sw__conf_src *s,
                        struct sw__conf_block *b,
                        const struct sw__conf_stmt *st,
                        const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    struct sw_str v = t->text;
    if (v.len == 0 || v.len > PREFIX_MAX) {
        sw__conf_err_tok(ps, s, t,
                         "\"fanout_bus_prefix\" must be 1 to %d bytes, got "
                         "%zu",
                         PREFIX_MAX, v.len);
        return;
    }
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch <= ' ' || ch == 0x7f) {
            sw__conf_err_off(ps, s, t, i,
                             "\"fanout_bus_prefix\": no spaces or control "
                             "bytes allowed, got \"%.*s\"",
                             SW__CONF_TOKF(t));
            return;
        }
    }
    cf->bus_prefix = sw__conf_dup_str(ps, v.p, v.len);
}

void
sw__conf_bus_defaults(struct sw__conf_parser *ps)
{
    struct sw_conf *cf = ps->cf;
    cf->bus_url = sw__conf_dup_str(ps, "", 0);
    cf->bus_host = cf->bus_url;
    cf->bus_user = cf->bus_url;
    cf->bus_password = cf->bus_url;
    cf->bus_port = 6379;
    cf->bus_db = 0;
    cf->bus_prefix = sw__conf_dup_str(ps, "shockwave:", 10);
    cf->bus_lease_ms = 3 * SW__CONF_SEC;
}
