/*
 * conf_directive_value.c - the values directives take, and the generic
 * setters that store one in the field a table entry names.
 *
 *   sw__conf_number, sw__conf_size, sw__conf_duration
 *                              the three kinds of number: parser, messages
 *   sw__conf_value_show()      a value as written: "64k", "7d", "511"
 *   sw__conf_get_value()       a number of one kind within a range
 *   sw__conf_option()          "key=value" arguments (backlog=, weight=)
 *   sw__conf_resolve()         HOST:PORT, [V6]:PORT, *:PORT
 *   sw__conf_check_header_name(), sw__conf_is_host_char()
 *   sw__conf_set_value()       the one setter for numbers, sizes, durations
 *   sw__conf_set_flag()        on | off
 *   sw__conf_set_path()        error_log, access_log
 *   sw__conf_set_string()      non-empty strings (cipher lists)
 *
 * A generic setter writes the field at d->off in the block's object
 * (struct sw_conf, sw_conf_upstream or sw_conf_route), the way nginx's
 * ngx_conf_set_size_slot does; which kind of number and which range come
 * from the table entry too (conf_directive.c).
 *
 * Ownership: strings stored are copied into the snapshot's arena. One
 * thread.
 */
#include "conf_int.h"

#include <netdb.h>

#define PORT_MAX 65535 /* largest TCP port */

static const struct sw__conf_unit size_units[] = {
    {SW__CONF_GB, "g"},
    {SW__CONF_MB, "m"},
    {SW__CONF_KB, "k"},
};

static const struct sw__conf_unit duration_units[] = {
    {SW__CONF_DAY, "d"},
    {SW__CONF_HOUR, "h"},
    {SW__CONF_MINUTE, "m"},
    {SW__CONF_SEC, "s"},
};

static enum sw_status
parse_number(struct sw_str s, uint64_t *out)
{
    return sw__conf_parse_u64(s, out) ? SW_OK : SW_EINVAL;
}

const struct sw__conf_value sw__conf_number = {
    .name = "number",
    .expect = "digits",
    .parse = parse_number,
    .base = "",
};

const struct sw__conf_value sw__conf_size = {
    .name = "size",
    .expect = "a number with an optional k, m or g suffix",
    .parse = sw_conf_parse_size,
    .units = size_units,
    .nunits = SW_NELEMS(size_units),
    .base = "",
};

const struct sw__conf_value sw__conf_duration = {
    .name = "duration",
    .expect = "a number with a ms, s, m, h or d suffix",
    .parse = sw_conf_parse_duration,
    .units = duration_units,
    .nunits = SW_NELEMS(duration_units),
    .base = "ms",
};

void
sw__conf_value_show(const struct sw__conf_value *k, char *out, size_t n,
                    uint64_t v)
{
    for (size_t i = 0; i < k->nunits; i++) {
        if (v != 0 && v % k->units[i].scale == 0) {
            snprintf(out, n, "%llu%s",
                     (unsigned long long)(v / k->units[i].scale),
                     k->units[i].suffix);
            return;
        }
    }
    snprintf(out, n, "%llu%s", (unsigned long long)v, k->base);
}

bool
sw__conf_get_value(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                   const struct sw__conf_tok *t, const char *what,
                   const struct sw__conf_value *k, uint64_t lo, uint64_t hi,
                   uint64_t *out)
{
    uint64_t v;
    if (k->parse(t->text, &v) != SW_OK) {
        sw__conf_err_tok(ps, s, t,
                         "invalid %s \"%.*s\" for \"%s\": expected %s", k->name,
                         SW__CONF_TOKF(t), what, k->expect);
        return false;
    }
    if (v < lo || v > hi) {
        char a[SW__CONF_SHOW_MAX];
        char z[SW__CONF_SHOW_MAX];
        sw__conf_value_show(k, a, sizeof(a), lo);
        sw__conf_value_show(k, z, sizeof(z), hi);
        sw__conf_err_tok(ps, s, t, "\"%s\" must be from %s to %s, got \"%.*s\"",
                         what, a, z, SW__CONF_TOKF(t));
        return false;
    }
    *out = v;
    return true;
}

bool
sw__conf_option(const struct sw__conf_tok *t, const char *key,
                struct sw__conf_tok *val)
{
    size_t n = strlen(key);
    if (t->text.len <= n || memcmp(t->text.p, key, n) != 0 ||
        t->text.p[n] != '=') {
        return false;
    }
    *val = *t;
    val->text.p += n + 1;
    val->text.len -= n + 1;
    val->raw = val->text;
    val->col += (unsigned)(n + 1);
    return true;
}

/*
 * Resolve "HOST:PORT", "[V6]:PORT" or (listen only) "*:PORT" with
 * getaddrinfo(3); the first address returned is kept.
 */
bool
sw__conf_resolve(struct sw__conf_parser *ps, const struct sw__conf_src *s,
                 const struct sw__conf_tok *t, bool listen,
                 struct sockaddr_storage *ss, socklen_t *sslen)
{
    struct sw_str a = t->text;
    char host[SW__CONF_NAME_MAX + 1];
    char port[sizeof("65535")];
    size_t hlen;
    size_t poff;
    bool v6 = false;
    if (a.len > 0 && a.p[0] == '[') {
        const char *rb = memchr(a.p, ']', a.len);
        if (rb == NULL) {
            sw__conf_err_tok(ps, s, t, "missing \"]\" in address \"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        hlen = (size_t)(rb - a.p) - 1;
        if (hlen == 0 || hlen >= sizeof(host)) {
            sw__conf_err_tok(ps, s, t, "invalid address \"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        memcpy(host, a.p + 1, hlen);
        poff = hlen + 2;
        if (poff >= a.len || a.p[poff] != ':') {
            sw__conf_err_off(ps, s, t, poff,
                             "expected \":PORT\" after \"]\" in "
                             "\"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        poff++;
        v6 = true;
    } else {
        const char *colon = memrchr(a.p, ':', a.len);
        if (colon == NULL) {
            sw__conf_err_tok(ps, s, t,
                             "expected HOST:PORT, got \"%.*s\" (no port)",
                             SW__CONF_TOKF(t));
            return false;
        }
        hlen = (size_t)(colon - a.p);
        if (memchr(a.p, ':', hlen) != NULL) {
            sw__conf_err_tok(ps, s, t,
                             "an IPv6 address needs brackets, as in "
                             "\"[::1]:8080\", got \"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        if (hlen == 0 || hlen >= sizeof(host)) {
            sw__conf_err_tok(ps, s, t,
                             "expected HOST:PORT, got \"%.*s\" (no host)",
                             SW__CONF_TOKF(t));
            return false;
        }
        memcpy(host, a.p, hlen);
        poff = hlen + 1;
    }
    host[hlen] = '\0';
    uint64_t pv;
    struct sw_str pstr = {a.p + poff, a.len - poff};
    if (!sw__conf_parse_u64(pstr, &pv) || pv < 1 || pv > PORT_MAX) {
        sw__conf_err_off(ps, s, t, poff,
                         "invalid port \"%.*s\": expected 1 to 65535",
                         (int)SW_MIN(pstr.len, SW__CONF_SHOW), pstr.p);
        return false;
    }
    snprintf(port, sizeof(port), "%u", (unsigned)pv);
    if (!v6 && strcmp(host, "*") == 0) {
        if (!listen) {
            sw__conf_err_tok(ps, s, t,
                             "\"*\" is only for listen addresses, got "
                             "\"%.*s\"",
                             SW__CONF_TOKF(t));
            return false;
        }
        strcpy(host, "0.0.0.0");
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (v6 ? AI_NUMERICHOST : 0);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        sw__conf_err_tok(ps, s, t, "cannot resolve \"%s\" in \"%.*s\": %s",
                         host, SW__CONF_TOKF(t),
                         rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return false;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static bool
is_tchar(unsigned char ch)
{
    /* RFC 9110 5.6.2: token characters. */
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9')) {
        return true;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

bool
sw__conf_check_header_name(struct sw__conf_parser *ps,
                           const struct sw__conf_src *s,
                           const struct sw__conf_tok *t)
{
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "empty header name");
        return false;
    }
    for (size_t i = 0; i < t->text.len; i++) {
        if (!is_tchar((unsigned char)t->text.p[i])) {
            sw__conf_err_off(
                ps, s, t, i,
                "invalid character in header name \"%.*s\": expected "
                "letters, digits or !#$%%&'*+-.^_`|~",
                SW__CONF_TOKF(t));
            return false;
        }
    }
    return true;
}

bool
sw__conf_is_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.' || ch == '_';
}

/* ---- generic setters --------------------------------------------------- */

static void *
field(const struct sw__conf_block *b, const struct sw__conf_directive *d)
{
    return (char *)b->obj + d->off;
}

void
sw__conf_set_value(struct sw__conf_parser *ps, struct sw__conf_src *s,
                   struct sw__conf_block *b, const struct sw__conf_stmt *st,
                   const struct sw__conf_directive *d)
{
    uint64_t v;
    if (!sw__conf_get_value(ps, s, &st->args[0], d->name, d->value, d->lo,
                            d->hi, &v)) {
        return;
    }
    /* The table's range keeps v within the field: size_t, uint64_t or
     * unsigned. */
    if (d->width == sizeof(uint64_t)) {
        memcpy(field(b, d), &v, sizeof(v));
    } else {
        SW_ASSERT(d->width == sizeof(uint32_t));
        uint32_t n = (uint32_t)v;
        memcpy(field(b, d), &n, sizeof(n));
    }
}

void
sw__conf_set_flag(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
                  const struct sw__conf_directive *d)
{
    const struct sw__conf_tok *t = &st->args[0];
    if (sw__conf_str_eq(t->text, "on")) {
        *(bool *)field(b, d) = true;
    } else if (sw__conf_str_eq(t->text, "off")) {
        *(bool *)field(b, d) = false;
    } else {
        sw__conf_err_tok(ps, s, t,
                         "\"%s\" expects \"on\" or \"off\", got \"%.*s\"",
                         d->name, SW__CONF_TOKF(t));
    }
}

void
sw__conf_set_path(struct sw__conf_parser *ps, struct sw__conf_src *s,
                  struct sw__conf_block *b, const struct sw__conf_stmt *st,
                  const struct sw__conf_directive *d)
{
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0) {
        sw__conf_err_tok(ps, s, t, "\"%s\" needs a path, \"stderr\" or \"off\"",
                         d->name);
        return;
    }
    if (sw__conf_str_eq(t->text, "off") && strcmp(d->name, "error_log") == 0) {
        sw__conf_err_tok(ps, s, t,
                         "the error log cannot be turned off: use "
                         "\"stderr\" or a path");
        return;
    }
    *(struct sw_str *)field(b, d) =
        sw__conf_dup_str(ps, t->text.p, t->text.len);
}

/* A cipher list: checked against OpenSSL when the TLS context is built. */
void
sw__conf_set_string(struct sw__conf_parser *ps, struct sw__conf_src *s,
                    struct sw__conf_block *b, const struct sw__conf_stmt *st,
                    const struct sw__conf_directive *d)
{
    const struct sw__conf_tok *t = &st->args[0];
    if (t->text.len == 0 || memchr(t->text.p, '\0', t->text.len) != NULL) {
        sw__conf_err_tok(ps, s, t, "\"%s\" needs a non-empty value", d->name);
        return;
    }
    *(struct sw_str *)field(b, d) =
        sw__conf_dup_str(ps, t->text.p, t->text.len);
}
