/*
 * conf_realip.c - the trusted fronts whose forwarded client address is
 * believed, as nginx's realip module has them (docs/configuration.md,
 * "Real client address"):
 *
 *   sw_conf_addr_parse()           an IPv4 or IPv6 address, text to bytes
 *   sw_conf_cidr_parse()           ADDR or ADDR/BITS
 *   sw_conf_cidr_match()           an address against a list of networks
 *   sw__conf_set_real_ip_from()    set_real_ip_from CIDR (repeatable)
 *   sw__conf_set_real_ip_header()  real_ip_header NAME
 *
 * `real_ip_recursive on|off` goes through the generic flag setter.
 *
 * Ownership: what is stored is copied into the snapshot's arena. The
 * parse and match functions own nothing and run on any thread.
 */
#include "conf_int.h"

#include <arpa/inet.h>

#define ADDR_TEXT_MAX 64 /* longer than any address text */

bool
sw_conf_addr_parse(struct sw_str s, int *family, uint8_t addr[16])
{
    char text[ADDR_TEXT_MAX];
    if (s.len == 0 || s.len >= sizeof(text)) {
        return false;
    }
    memcpy(text, s.p, s.len);
    text[s.len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

enum sw_status
sw_conf_cidr_parse(struct sw_str s, struct sw_conf_cidr *out)
{
    const char *slash = memchr(s.p, '/', s.len);
    struct sw_str a = {s.p, slash != NULL ? (size_t)(slash - s.p) : s.len};
    int family;
    memset(out, 0, sizeof(*out));
    if (!sw_conf_addr_parse(a, &family, out->addr)) {
        return SW_EINVAL;
    }
    unsigned width = family == AF_INET ? 32 : 128;
    uint64_t bits = width;
    if (slash != NULL) {
        struct sw_str b = {slash + 1, s.len - a.len - 1};
        if (b.len == 0 || b.len > 3 || !sw__conf_parse_u64(b, &bits) ||
            bits > width) {
            return SW_EINVAL;
        }
    }
    out->family = (uint8_t)family;
    out->bits = (uint8_t)bits;
    /* clear the host bits, so a match is a plain compare */
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= (i + 1) * 8 ? 8
                        : bits > i * 8      ? bits - i * 8
                                            : 0;
        out->addr[i] &= (uint8_t)(0xff00u >> keep);
    }
    return SW_OK;
}

static bool
in_net(const struct sw_conf_cidr *c, const uint8_t addr[16])
{
    unsigned full = c->bits / 8u;
    unsigned rest = c->bits % 8u;
    if (memcmp(c->addr, addr, full) != 0) {
        return false;
    }
    return rest == 0 ||
           (addr[full] & (uint8_t)(0xff00u >> rest)) == c->addr[full];
}

bool
sw_conf_cidr_match(const struct sw_conf_cidr *list, size_t n, int family,
                   const uint8_t addr[16])
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].family == family && in_net(&list[i], addr)) {
            return true;
        }
    }
    return false;
}

void
sw__conf_set_real_ip_from(struct sw__conf_parser *ps, struct sw__conf_src *s,
                          struct sw__conf_block *b,
                          const struct sw__conf_stmt *st,
                          const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    struct sw_conf_cidr c;
    if (sw_conf_cidr_parse(t->text, &c) != SW_OK) {
        sw__conf_err_tok(ps, s, t,
                         "\"set_real_ip_from\" expects an IPv4 or IPv6 "
                         "address or ADDR/BITS (e.g. 10.0.0.0/8, "
                         "2001:db8::/32), got \"%.*s\"",
                         SW__CONF_TOKF(t));
        return;
    }
    c.text = sw__conf_dup_str(ps, t->text.p, t->text.len);
    SW__CONF_APPEND(ps, cf->real_ip_from, cf->nreal_ip_from, c);
}

void
sw__conf_set_real_ip_header(struct sw__conf_parser *ps, struct sw__conf_src *s,
                            struct sw__conf_block *b,
                            const struct sw__conf_stmt *st,
                            const struct sw__conf_directive *d)
{
    SW_UNUSED(d);
    struct sw_conf *cf = b->obj;
    const struct sw__conf_tok *t = &st->args[0];
    if (!sw__conf_check_header_name(ps, s, t)) {
        return;
    }
    cf->real_ip_header = sw__conf_dup_str(ps, t->text.p, t->text.len);
}
