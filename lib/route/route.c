/*
 * route.c - the routing table and per-route header edits (see route.h).
 *
 * sw_route_match makes one pass over the routes in file order and keeps the
 * best so far by the key (host rank, wildcard length, prefix length):
 *
 *   host rank:  2 exact name  >  1 wildcard "*.suffix"  >  0 no host list
 *   then the longer wildcard suffix, then the longer path_prefix;
 *   a later route must be strictly better to win, so ties go to the first.
 *
 * A route only competes when its host, path_prefix and every header match
 * hold. Header matches are checked last: they are the costly part and most
 * routes are ruled out before. Cost: O(routes x (hosts + headers x request
 * headers)), no allocation.
 *
 * Owns nothing: pure functions over an immutable snapshot and the caller's
 * slices. Thread-safe.
 */
#include <shockwave/route.h>

#include <strings.h>

static bool
eq_ci(struct sw_str a, struct sw_str b)
{
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

/* The request's host without port and trailing dot: "Example.com:80" ->
 * "Example.com", "[::1]:8080" -> "[::1]". Case is left to the compares. */
static struct sw_str
host_name(struct sw_str h)
{
    if (h.len > 0 && h.p[0] == '[') {
        const char *rb = memchr(h.p, ']', h.len);
        if (rb != NULL) {
            h.len = (size_t)(rb - h.p) + 1;
        }
        return h;
    }
    const char *colon = memchr(h.p, ':', h.len);
    if (colon != NULL) {
        h.len = (size_t)(colon - h.p);
    }
    if (h.len > 1 && h.p[h.len - 1] == '.') {
        h.len--;
    }
    return h;
}

/* Rank of route r for host h (see the file comment); -1 when no match.
 * *wlen is the length of the matching wildcard for rank 1. */
static int
host_rank(const struct sw_conf_route *r, struct sw_str h, size_t *wlen)
{
    int rank = -1;
    *wlen = 0;
    if (r->nhosts == 0) {
        return 0;
    }
    for (size_t i = 0; i < r->nhosts; i++) {
        struct sw_str pat = r->hosts[i];
        if (pat.len > 1 && pat.p[0] == '*') {
            /* "*.example.com" covers "a.example.com", "a.b.example.com",
             * not "example.com" itself. */
            struct sw_str suf = {pat.p + 1, pat.len - 1};
            if (h.len > suf.len &&
                strncasecmp(h.p + h.len - suf.len, suf.p, suf.len) == 0 &&
                rank <= 1 && pat.len > *wlen) {
                rank = 1;
                *wlen = pat.len;
            }
        } else if (eq_ci(pat, h)) {
            *wlen = 0;
            return 2;
        }
    }
    return rank;
}

static bool
headers_match(const struct sw_conf_route *r, const struct sw_http_header *hdrs,
              size_t nhdrs)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct sw_conf_header_match *m = &r->headers[i];
        bool found = false;
        /* Any header of that name may carry the value: a repeated header
         * is several values, not an error here. */
        for (size_t k = 0; k < nhdrs && !found; k++) {
            if (!eq_ci(hdrs[k].name, m->name)) {
                continue;
            }
            found = m->value.len == 0 ||
                    (hdrs[k].value.len == m->value.len &&
                     memcmp(hdrs[k].value.p, m->value.p, m->value.len) == 0);
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

const struct sw_conf_route *
sw_route_match(const struct sw_conf *cf, struct sw_str host, struct sw_str path,
               const struct sw_http_header *hdrs, size_t nhdrs)
{
    const struct sw_conf_route *best = NULL;
    int best_rank = -1;
    size_t best_wlen = 0;
    size_t best_plen = 0;
    struct sw_str h = host_name(host);
    for (size_t i = 0; i < cf->nroutes; i++) {
        const struct sw_conf_route *r = &cf->routes[i];
        size_t wlen;
        int rank = host_rank(r, h, &wlen);
        if (rank < 0 || rank < best_rank ||
            (rank == best_rank && wlen < best_wlen)) {
            continue;
        }
        struct sw_str pre = r->path_prefix;
        if (path.len < pre.len || memcmp(path.p, pre.p, pre.len) != 0) {
            continue;
        }
        if (best != NULL && rank == best_rank && wlen == best_wlen &&
            pre.len <= best_plen) {
            continue;
        }
        if (!headers_match(r, hdrs, nhdrs)) {
            continue;
        }
        best = r;
        best_rank = rank;
        best_wlen = wlen;
        best_plen = pre.len;
    }
    return best;
}

static struct sw_str
var_value(enum sw_conf_var v, const struct sw_route_vars *vars)
{
    switch (v) {
    case SW_CONF_VAR_REMOTE_ADDR:
        return vars->remote_addr;
    case SW_CONF_VAR_REMOTE_PORT:
        return vars->remote_port;
    case SW_CONF_VAR_SCHEME:
        return vars->scheme;
    case SW_CONF_VAR_HOST:
        return vars->host;
    case SW_CONF_VAR_REQUEST_ID:
        return vars->request_id;
    case SW_CONF_VAR_REQUEST_URI:
        return vars->request_uri;
    case SW_CONF_VAR_SERVER_PORT:
        return vars->server_port;
    case SW_CONF_VAR_REALIP_REMOTE_ADDR:
        return vars->realip_remote_addr;
    case SW_CONF_VAR_NONE:
    case SW_CONF_VAR_URI: /* only in fan-out keys (lib/proxy) */
    case SW_CONF_VAR_ARG:
    case SW_CONF_VAR_HTTP:
        break;
    }
    return (struct sw_str){"", 0};
}

void
sw_route_tpl_write(struct sw_http_writer *w, const struct sw_conf_tpl *t,
                   const struct sw_route_vars *vars)
{
    for (size_t i = 0; i < t->nparts; i++) {
        const struct sw_conf_tpl_part *part = &t->parts[i];
        struct sw_str s = part->var == SW_CONF_VAR_NONE
                              ? part->text
                              : var_value(part->var, vars);
        sw_http_write(w, s.p, s.len);
    }
}

bool
sw_route_edits_drop(const struct sw_conf_edit *edits, size_t n,
                    struct sw_str name)
{
    for (size_t i = 0; i < n; i++) {
        if (edits[i].op != SW_CONF_EDIT_ADD && eq_ci(edits[i].name, name)) {
            return true;
        }
    }
    return false;
}

void
sw_route_edits_write(struct sw_http_writer *w, const struct sw_conf_edit *edits,
                     size_t n, const struct sw_route_vars *vars)
{
    for (size_t i = 0; i < n; i++) {
        const struct sw_conf_edit *e = &edits[i];
        if (e->op == SW_CONF_EDIT_REMOVE) {
            continue;
        }
        sw_http_write_str(w, e->name);
        sw_http_write(w, ": ", 2);
        sw_route_tpl_write(w, &e->value, vars);
        sw_http_write(w, "\r\n", 2);
    }
}

ssize_t
sw_route_normalize_path(struct sw_str path, char *out, size_t cap)
{
    size_t n = 0;
    size_t i = 0;
    while (i < path.len) {
        char ch = path.p[i++];
        if (ch == '%' && i + 1 < path.len) {
            int hi = sw_hex_value(path.p[i]);
            int lo = sw_hex_value(path.p[i + 1]);
            int v = hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
            /* decode what could change the segment structure */
            if (v == '.' || v == '/') {
                ch = (char)v;
                i += 2;
            } else if (v == 0) {
                return SW_EPROTO;
            }
        }
        if (n == cap) {
            return SW_ETOOBIG;
        }
        out[n++] = ch;
        if (ch != '/') {
            continue;
        }
        /* at each segment end: merge "//", drop "/./", resolve "/../" */
        if (n >= 2 && out[n - 2] == '/') {
            n--;
        } else if (n >= 3 && out[n - 2] == '.' && out[n - 3] == '/') {
            n -= 2;
        } else if (n >= 4 && out[n - 2] == '.' && out[n - 3] == '.' &&
                   out[n - 4] == '/') {
            if (n == 4) {
                return SW_EPROTO; /* above the root */
            }
            n -= 4;
            while (n > 0 && out[n - 1] != '/') {
                n--;
            }
        }
    }
    /* a final "/." or "/.." segment */
    if (n >= 2 && out[n - 1] == '.' && out[n - 2] == '/') {
        n--;
    } else if (n >= 3 && out[n - 1] == '.' && out[n - 2] == '.' &&
               out[n - 3] == '/') {
        if (n == 3) {
            return SW_EPROTO;
        }
        n -= 3;
        while (n > 0 && out[n - 1] != '/') {
            n--;
        }
    }
    return (ssize_t)n;
}
