/*
 * proxy_realip.c - the client address a trusted front forwarded
 * (`set_real_ip_from`, `real_ip_header`, `real_ip_recursive`; nginx's
 * realip rules, docs/configuration.md "Real client address").
 *
 * Per request: when the connection's peer (p->raddr) is in a trusted
 * network, the address taken from the configured header becomes the
 * request's client address (p->real_addr), used by $remote_addr, the
 * access log, `balance hash $remote_addr` and the address appended to
 * X-Forwarded-For. p->raddr itself stays the connection's.
 *
 * Owns nothing; works on the session it is given (worker thread only).
 */
#include "proxy_int.h"

#include <shockwave/log.h>

#include <arpa/inet.h>

static bool
is_sep(char ch)
{
    return ch == ',' || ch == ' ' || ch == '\t';
}

struct addr {
    int family;
    uint8_t bytes[16];
};

static bool
trusted(const struct sw_conf *cf, const struct addr *a)
{
    return sw_conf_cidr_match(cf->real_ip_from, cf->nreal_ip_from, a->family,
                              a->bytes);
}

static void
not_an_address(const struct sw_session *p, const struct sw_conf *cf,
               struct sw_str item)
{
    sw_log_debug("client %s:%s: %.*s: \"%.*s\" is not an IP address, "
                 "ignored",
                 p->raddr, p->rport, (int)cf->real_ip_header.len,
                 cf->real_ip_header.p, (int)SW_MIN(item.len, 64), item.p);
}

/* X-Forwarded-For: every field line, as one list, walked from the right.
 * *a is the peer on entry; the result on return (true when it moved). */
static bool
from_list(const struct sw_session *p, const struct sw_conf *cf,
          const struct sw_http_request *r, struct addr *a)
{
    bool moved = false;
    for (size_t i = r->nheaders; i-- > 0;) {
        const struct sw_http_header *h = &r->headers[i];
        if (!sw_str_eq_ci(h->name, "X-Forwarded-For")) {
            continue;
        }
        size_t end = h->value.len;
        for (;;) {
            while (end > 0 && is_sep(h->value.p[end - 1])) {
                end--;
            }
            if (end == 0) {
                break; /* on to the field line before */
            }
            size_t start = end;
            while (start > 0 && !is_sep(h->value.p[start - 1])) {
                start--;
            }
            struct sw_str item = {h->value.p + start, end - start};
            struct addr next;
            if (!sw_conf_addr_parse(item, &next.family, next.bytes)) {
                not_an_address(p, cf, item);
                return moved; /* the walk stops at garbage */
            }
            *a = next;
            moved = true;
            if (!cf->real_ip_recursive || !trusted(cf, a)) {
                return true;
            }
            end = start;
        }
    }
    return moved;
}

/* Any other header (X-Real-IP): its first field line is one address. */
static bool
from_single(const struct sw_session *p, const struct sw_conf *cf,
            const struct sw_http_request *r, struct addr *a)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct sw_http_header *h = &r->headers[i];
        if (!sw_str_eq_ci(h->name, cf->real_ip_header.p)) {
            continue;
        }
        struct sw_str v = h->value; /* OWS trimmed by the parser */
        struct addr next;
        if (!sw_conf_addr_parse(v, &next.family, next.bytes)) {
            not_an_address(p, cf, v);
            return false;
        }
        *a = next;
        return true;
    }
    return false;
}

void
sw__proxy_realip(struct sw_session *p, const struct sw_http_request *r)
{
    const struct sw_conf *cf = conf_of(p);
    p->real_addr[0] = '\0';
    if (cf->nreal_ip_from == 0) {
        return;
    }
    struct addr a;
    struct sw_str peer = {p->raddr, strlen(p->raddr)};
    if (!sw_conf_addr_parse(peer, &a.family, a.bytes) || !trusted(cf, &a)) {
        return; /* an untrusted peer's headers change nothing */
    }
    bool moved = sw_str_eq_ci(cf->real_ip_header, "X-Forwarded-For")
                     ? from_list(p, cf, r, &a)
                     : from_single(p, cf, r, &a);
    if (moved && inet_ntop(a.family, a.bytes, p->real_addr,
                           sizeof(p->real_addr)) == NULL) {
        p->real_addr[0] = '\0';
    }
}
