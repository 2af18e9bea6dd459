/*
 * route.h - the routing table and per-route header edits.
 *
 * Matching order (documented in docs/configuration.md):
 *   1. Host: a route whose host list names the request's host exactly beats
 *      one that matches it by wildcard ("*.example.com", the longest wildcard
 *      suffix first), which beats a route with no host list (any host).
 *      The request host is compared lower-cased, without its port.
 *   2. Among routes of the best host rank whose header matches all hold,
 *      the longest path_prefix that the request path starts with wins.
 *   3. Ties are won by the route written first in the file.
 * No match -> NULL (the proxy answers 404).
 *
 * Pure functions over the immutable snapshot; thread-safe.
 */
#ifndef SHOCKWAVE_ROUTE_H
#define SHOCKWAVE_ROUTE_H

#include <shockwave/conf.h>
#include <shockwave/http.h>

/* Pick the route for a request; NULL when none matches. */
const struct sw_conf_route *
sw_route_match(const struct sw_conf *cf, struct sw_str host, struct sw_str path,
               const struct sw_http_header *hdrs, size_t nhdrs);

/*
 * The path routes are matched against, like nginx's: "%2E" and "%2F" are
 * decoded, "//" merged, "." and ".." segments resolved, so "/api/../admin"
 * matches as "/admin" and cannot slip past a route. The request is still
 * forwarded with its target as sent. Writes into out[0..cap).
 * Returns the length, SW_EPROTO for ".." above the root or an encoded NUL
 * (400), SW_ETOOBIG when cap is too small.
 */
ssize_t sw_route_normalize_path(struct sw_str path, char *out, size_t cap);

/* Values of the variables usable in header edits, for one request. */
struct sw_route_vars {
    struct sw_str remote_addr; /* borrowed: "127.0.0.1" or "::1" */
    struct sw_str remote_port; /* borrowed: "53122" */
    struct sw_str scheme;      /* borrowed: "http" or "https" */
    struct sw_str host;        /* borrowed: request Host (or empty) */
    struct sw_str request_id;  /* borrowed: X-Request-Id sent upstream */
    struct sw_str request_uri; /* borrowed: request-target */
    struct sw_str server_port; /* borrowed: listener port */
    /* borrowed: the connection's peer, before set_real_ip_from */
    struct sw_str realip_remote_addr;
};

/* Append the expansion of a template to w. */
void sw_route_tpl_write(struct sw_http_writer *w, const struct sw_conf_tpl *t,
                        const struct sw_route_vars *vars);

/* True when an edit list drops headers called `name` (a set or remove). */
bool sw_route_edits_drop(const struct sw_conf_edit *edits, size_t n,
                         struct sw_str name);

/* Append "Name: value\r\n" for every set and add edit, in order. */
void sw_route_edits_write(struct sw_http_writer *w,
                          const struct sw_conf_edit *edits, size_t n,
                          const struct sw_route_vars *vars);

#endif
