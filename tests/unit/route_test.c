/*
 * route_test.c - Check suite for lib/route: host precedence (exact, longest
 * wildcard, any), longest path prefix, header matches, ties by file order,
 * hosts with ports and IPv6 literals, misses, template expansion and the
 * header edit helpers.
 *
 * Each test builds a snapshot from text with sw_conf_load_string and asks
 * which route (by its index in file order) a request gets.
 */
#include <shockwave/route.h>

#include "support.h"

#include <check.h>

#define HEAD                                                                   \
    "listen 127.0.0.1:8080;\n"                                                 \
    "upstream a { server 127.0.0.1:9000; }\n"

static char err[4096];

static struct sw_conf *
conf(const char *routes)
{
    size_t n = strlen(HEAD) + strlen(routes) + 1;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    snprintf(text, n, "%s%s", HEAD, routes);
    struct sw_conf *cf =
        sw_conf_load_string(text, "r.conf", NULL, err, sizeof(err));
    free(text);
    ck_assert_msg(cf != NULL, "%s", err);
    return cf;
}

static struct sw_str
S(const char *s) {
    return (struct sw_str){s, strlen(s)};
}

/* Index of the route picked, -1 for none. */
static int
pick_h(const struct sw_conf *cf, const char *host, const char *path,
       const struct sw_http_header *h, size_t nh)
{
    const struct sw_conf_route *r = sw_route_match(cf, S(host), S(path), h, nh);
    if (r == NULL) {
        return -1;
    }
    ck_assert_ptr_eq(r, &cf->routes[r->index]);
    return (int)r->index;
}

static int
pick(const struct sw_conf *cf, const char *host, const char *path)
{
    return pick_h(cf, host, path, NULL, 0);
}

START_TEST(test_host_precedence)
{
    /* Routes 0 to 4, in file order. */
    struct sw_conf *cf = conf("route { upstream a; }\n"
                              "route { upstream a; host *.example.com; }\n"
                              "route { upstream a; host *.api.example.com; }\n"
                              "route { upstream a; host www.example.com; }\n"
                              "route { upstream a; host Mixed.Example.ORG; }"
                              "\n");
    ck_assert_int_eq(pick(cf, "www.example.com", "/"), 3);
    ck_assert_int_eq(pick(cf, "WWW.Example.COM", "/"), 3);
    ck_assert_int_eq(pick(cf, "www.example.com:8080", "/"), 3);
    ck_assert_int_eq(pick(cf, "www.example.com.", "/"), 3);
    ck_assert_int_eq(pick(cf, "x.api.example.com", "/"), 2);
    ck_assert_int_eq(pick(cf, "a.b.api.example.com", "/"), 2);
    ck_assert_int_eq(pick(cf, "api.example.com", "/"), 1);
    ck_assert_int_eq(pick(cf, "a.example.com", "/"), 1);
    ck_assert_int_eq(pick(cf, "A.EXAMPLE.COM:443", "/"), 1);
    /* "*.example.com" covers subdomains, not the name itself. */
    ck_assert_int_eq(pick(cf, "example.com", "/"), 0);
    ck_assert_int_eq(pick(cf, "badexample.com", "/"), 0);
    ck_assert_int_eq(pick(cf, "other.org", "/"), 0);
    ck_assert_int_eq(pick(cf, "", "/"), 0);
    ck_assert_int_eq(pick(cf, "mixed.example.org", "/"), 4);
    ck_assert_int_eq(pick(cf, "www.example.co", "/"), 0);
    ck_assert_int_eq(pick(cf, "www.example.comm", "/"), 0);
    sw_conf_unref(cf);

    /* The order in the file does not change the ranking. */
    cf = conf("route { upstream a; host www.example.com; }\n"
              "route { upstream a; host *.api.example.com; }\n"
              "route { upstream a; host *.example.com; }\n"
              "route { upstream a; }\n");
    ck_assert_int_eq(pick(cf, "www.example.com", "/"), 0);
    ck_assert_int_eq(pick(cf, "x.api.example.com", "/"), 1);
    ck_assert_int_eq(pick(cf, "a.example.com", "/"), 2);
    ck_assert_int_eq(pick(cf, "example.com", "/"), 3);
    sw_conf_unref(cf);
}
END_TEST

/* A route lists several hosts: its best match counts. */
START_TEST(test_host_lists)
{
    struct sw_conf *cf = conf("route { upstream a; host *.example.com; }\n"
                              "route { upstream a; host x.org *.example.com "
                              "www.example.com; }\n");
    ck_assert_int_eq(pick(cf, "www.example.com", "/"), 1);
    ck_assert_int_eq(pick(cf, "x.org", "/"), 1);
    ck_assert_int_eq(pick(cf, "a.example.com", "/"), 0); /* tie: first */
    ck_assert_int_eq(pick(cf, "y.org", "/"), -1);
    sw_conf_unref(cf);
}
END_TEST

/* Host rank is decided before the path prefix. */
START_TEST(test_host_before_prefix)
{
    struct sw_conf *cf =
        conf("route { upstream a; path_prefix /api/long; }\n"
             "route { upstream a; path_prefix /api/; host *.example.com; }\n"
             "route { upstream a; path_prefix /; host www.example.com; }\n");
    ck_assert_int_eq(pick(cf, "www.example.com", "/api/long/x"), 2);
    ck_assert_int_eq(pick(cf, "a.example.com", "/api/long/x"), 1);
    ck_assert_int_eq(pick(cf, "other", "/api/long/x"), 0);
    /* A route only competes if its prefix matches: a better-ranked host
     * with no matching prefix leaves the request to the next rank. */
    ck_assert_int_eq(pick(cf, "a.example.com", "/other"), -1);
    ck_assert_int_eq(pick(cf, "a.example.com", "/api/long"), 1);
    ck_assert_int_eq(pick(cf, "b.example.com", "/api"), -1);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_longest_prefix)
{
    struct sw_conf *cf = conf("route { upstream a; path_prefix /api; }\n"
                              "route { upstream a; }\n"
                              "route { upstream a; path_prefix /api/v2; }\n"
                              "route { upstream a; path_prefix /api/v2/; }\n");
    ck_assert_int_eq(pick(cf, "h", "/api/v2/x"), 3);
    ck_assert_int_eq(pick(cf, "h", "/api/v2"), 2);
    ck_assert_int_eq(pick(cf, "h", "/api/v20"), 2);
    ck_assert_int_eq(pick(cf, "h", "/api/v1"), 0);
    ck_assert_int_eq(pick(cf, "h", "/api"), 0);
    ck_assert_int_eq(pick(cf, "h", "/apix"), 0); /* a byte prefix */
    ck_assert_int_eq(pick(cf, "h", "/ap"), 1);
    ck_assert_int_eq(pick(cf, "h", "/"), 1);
    ck_assert_int_eq(pick(cf, "h", "/API/v2"), 1); /* case-sensitive */
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_header_match)
{
    struct sw_conf *cf =
        conf("route { upstream a; header X-Canary 1; }\n"
             "route { upstream a; header x-debug; header X-Env prod; "
             "path_prefix /d; }\n"
             "route { upstream a; }\n"
             "route { upstream a; header X-Late yes; }\n");
    struct sw_http_header canary[] = {
        {S("Accept"), S("*/*")},
        {S("x-CANARY"), S("1")},
    };
    ck_assert_int_eq(pick_h(cf, "h", "/", canary, 2), 0);
    struct sw_http_header canary2[] = {{S("X-Canary"), S("2")}};
    ck_assert_int_eq(pick_h(cf, "h", "/", canary2, 1), 2);
    struct sw_http_header canary_prefix[] = {{S("X-Canary"), S("10")}};
    ck_assert_int_eq(pick_h(cf, "h", "/", canary_prefix, 1), 2);
    /* A repeated header: any of its values may match. */
    struct sw_http_header repeated[] = {
        {S("X-Canary"), S("0")},
        {S("X-Canary"), S("1")},
    };
    ck_assert_int_eq(pick_h(cf, "h", "/", repeated, 2), 0);
    /* All matches must hold; presence only for X-Debug; values exact. */
    struct sw_http_header both[] = {
        {S("X-Debug"), S("")},
        {S("X-Env"), S("prod")},
    };
    ck_assert_int_eq(pick_h(cf, "h", "/d/x", both, 2), 1);
    ck_assert_int_eq(pick_h(cf, "h", "/x", both, 2), 2);
    ck_assert_int_eq(pick_h(cf, "h", "/d/x", both, 1), 2);
    struct sw_http_header upper[] = {
        {S("X-Debug"), S("on")},
        {S("X-Env"), S("Prod")},
    };
    ck_assert_int_eq(pick_h(cf, "h", "/d/x", upper, 2), 2);
    /* Tie with route 2 (same rank, same prefix): file order wins. */
    struct sw_http_header late[] = {{S("X-Late"), S("yes")}};
    ck_assert_int_eq(pick_h(cf, "h", "/", late, 1), 2);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_ties_file_order)
{
    struct sw_conf *cf = conf("route { upstream a; path_prefix /x; }\n"
                              "route { upstream a; path_prefix /x; }\n"
                              "route { upstream a; host h; }\n"
                              "route { upstream a; host h; }\n");
    ck_assert_int_eq(pick(cf, "g", "/x"), 0);
    ck_assert_int_eq(pick(cf, "h", "/x"), 2);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_ports_and_ipv6)
{
    struct sw_conf *cf = conf("route { upstream a; host [::1]; }\n"
                              "route { upstream a; host 127.0.0.1; }\n"
                              "route { upstream a; host [2001:DB8::1]; }\n"
                              "route { return 404; }\n");
    ck_assert_int_eq(pick(cf, "[::1]:8080", "/"), 0);
    ck_assert_int_eq(pick(cf, "[::1]", "/"), 0);
    ck_assert_int_eq(pick(cf, "127.0.0.1:80", "/"), 1);
    ck_assert_int_eq(pick(cf, "127.0.0.1", "/"), 1);
    ck_assert_int_eq(pick(cf, "[2001:db8::1]:443", "/"), 2);
    ck_assert_int_eq(pick(cf, "[::2]:8080", "/"), 3);
    ck_assert_int_eq(pick(cf, "127.0.0.10", "/"), 3);
    ck_assert_ptr_null(cf->routes[3].upstream);
    ck_assert_int_eq(cf->routes[3].return_status, 404);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_no_match)
{
    struct sw_conf *cf = conf("route { upstream a; host a.example; }\n"
                              "route { upstream a; path_prefix /api; }\n"
                              "route { upstream a; header X-Key k; }\n");
    ck_assert_int_eq(pick(cf, "b.example", "/"), -1);
    ck_assert_int_eq(pick(cf, "a.example", "/"), 0);
    ck_assert_int_eq(pick(cf, "b.example", "/api/1"), 1);
    ck_assert_int_eq(pick(cf, "b.example", ""), -1);
    sw_conf_unref(cf);
    /* No routes at all. */
    cf = conf("");
    ck_assert_int_eq(pick(cf, "h", "/"), -1);
    sw_conf_unref(cf);
}
END_TEST

/* ---- templates and edits ----------------------------------------------- */

static const struct sw_route_vars vars = {
    .remote_addr = {"10.0.0.1", 8},
    .remote_port = {"53122", 5},
    .scheme = {"https", 5},
    .host = {"www.example.com", 15},
    .request_id = {"abc123", 6},
    .request_uri = {"/p?q=1", 6},
    .server_port = {"8443", 4},
};

static void
writer(struct sw_http_writer *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->p = buf;
    w->cap = cap;
}

START_TEST(test_template_expansion)
{
    struct sw_conf *cf =
        conf("route {\n"
             "  upstream a;\n"
             "  request_header set X-All \"$remote_addr:$remote_port "
             "$scheme://${host}$request_uri id=$request_id "
             "sp=$server_port $$ $\";\n"
             "  request_header set X-Empty \"\";\n"
             "}\n");
    const struct sw_conf_route *r = &cf->routes[0];
    char buf[256];
    struct sw_http_writer w;
    writer(&w, buf, sizeof(buf));
    sw_route_tpl_write(&w, &r->request_edits[0].value, &vars);
    ck_assert(!w.overflow);
    const char *want = "10.0.0.1:53122 https://www.example.com/p?q=1 "
                       "id=abc123 sp=8443 $ $";
    ck_assert_uint_eq(w.len, strlen(want));
    ck_assert_int_eq(memcmp(buf, want, w.len), 0);

    /* An empty variable and an empty template write nothing. */
    struct sw_route_vars none;
    memset(&none, 0, sizeof(none));
    none.remote_addr = S("");
    writer(&w, buf, sizeof(buf));
    sw_route_tpl_write(&w, &r->request_edits[1].value, &vars);
    ck_assert_uint_eq(w.len, 0);

    /* Too small: overflow is sticky and nothing past cap is written. */
    char small[12];
    memset(small, '#', sizeof(small));
    writer(&w, small, 10);
    sw_route_tpl_write(&w, &r->request_edits[0].value, &vars);
    ck_assert(w.overflow);
    ck_assert_uint_le(w.len, 10);
    ck_assert_int_eq(small[10], '#');
    size_t len = w.len;
    sw_route_tpl_write(&w, &r->request_edits[1].value, &vars);
    ck_assert(w.overflow);
    ck_assert_uint_eq(w.len, len);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_edits)
{
    struct sw_conf *cf =
        conf("route {\n"
             "  upstream a;\n"
             "  request_header set X-Real-IP $remote_addr;\n"
             "  request_header add X-Forwarded-For $remote_addr;\n"
             "  request_header remove Cookie;\n"
             "  request_header add Via \"1.1 shockwave\";\n"
             "  response_header set Server sw;\n"
             "}\n");
    const struct sw_conf_route *r = &cf->routes[0];
    const struct sw_conf_edit *e = r->request_edits;
    size_t n = r->nrequest_edits;
    ck_assert(sw_route_edits_drop(e, n, S("X-Real-IP")));
    ck_assert(sw_route_edits_drop(e, n, S("x-real-ip")));
    ck_assert(sw_route_edits_drop(e, n, S("COOKIE")));
    ck_assert(!sw_route_edits_drop(e, n, S("X-Forwarded-For")));
    ck_assert(!sw_route_edits_drop(e, n, S("Via")));
    ck_assert(!sw_route_edits_drop(e, n, S("Server")));
    ck_assert(!sw_route_edits_drop(e, n, S("X-Real-I")));
    ck_assert(!sw_route_edits_drop(e, n, S("")));
    ck_assert(!sw_route_edits_drop(e, 0, S("Cookie")));
    ck_assert(sw_route_edits_drop(r->response_edits, r->nresponse_edits,
                                  S("server")));

    char buf[256];
    struct sw_http_writer w;
    writer(&w, buf, sizeof(buf));
    sw_route_edits_write(&w, e, n, &vars);
    ck_assert(!w.overflow);
    const char *want = "X-Real-IP: 10.0.0.1\r\n"
                       "X-Forwarded-For: 10.0.0.1\r\n"
                       "Via: 1.1 shockwave\r\n";
    ck_assert_uint_eq(w.len, strlen(want));
    ck_assert_int_eq(memcmp(buf, want, w.len), 0);

    /* Appends after what the writer holds. */
    writer(&w, buf, sizeof(buf));
    memcpy(buf, "GET / HTTP/1.1\r\n", 16);
    w.len = 16;
    sw_route_edits_write(&w, r->response_edits, r->nresponse_edits, &vars);
    ck_assert_uint_eq(w.len, 16 + 12);
    ck_assert_int_eq(memcmp(buf + 16, "Server: sw\r\n", 12), 0);

    writer(&w, buf, 30);
    sw_route_edits_write(&w, e, n, &vars);
    ck_assert(w.overflow);
    sw_conf_unref(cf);
}
END_TEST

/* Many routes: every one is reachable by its own prefix and host. */
START_TEST(test_big_table)
{
    char *text = malloc(1 << 16);
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    for (int i = 0; i < 200; i++) {
        len += (size_t)snprintf(text + len, (1 << 16) - len,
                                "route { upstream a; host h%d.example *.w%d."
                                "example; path_prefix /p%d/; }\n",
                                i % 20, i % 20, i);
    }
    struct sw_conf *cf = conf(text);
    free(text);
    for (int i = 0; i < 200; i++) {
        char host[32];
        char path[32];
        snprintf(host, sizeof(host), "h%d.example", i % 20);
        snprintf(path, sizeof(path), "/p%d/x", i);
        ck_assert_int_eq(pick(cf, host, path), i);
        snprintf(host, sizeof(host), "a.w%d.example", i % 20);
        ck_assert_int_eq(pick(cf, host, path), i);
        snprintf(host, sizeof(host), "h%d.example", (i + 1) % 20);
        ck_assert_int_eq(pick(cf, host, path), -1);
    }
    sw_conf_unref(cf);
}
END_TEST

/* Paths are matched after normalisation; the table covers each rule. */
static const struct {
    const char *in;
    const char *out; /* NULL: rejected */
} norm_cases[] = {
    {"/", "/"},
    {"/a/b", "/a/b"},
    {"/a//b", "/a/b"},
    {"/a/./b", "/a/b"},
    {"/a/../b", "/b"},
    {"/api/../admin", "/admin"},
    {"/a/b/..", "/a/"},
    {"/a/.", "/a/"},
    {"/a/%2e%2e/x", "/x"},
    {"/a/%2E%2E/x", "/x"},
    {"/x/%2F/y", "/x/y"},
    {"/a/%41", "/a/%41"},
    {"/a/%zz", "/a/%zz"},
    {"/a/b%", "/a/b%"},
    {"/..", NULL},
    {"/../x", NULL},
    {"/a/../..", NULL},
    {"/a/%00", NULL},
};

START_TEST(test_normalize_path)
{
    for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
        char out[64];
        struct sw_str in = {norm_cases[i].in, strlen(norm_cases[i].in)};
        ssize_t n = sw_route_normalize_path(in, out, sizeof(out));
        if (norm_cases[i].out == NULL) {
            ck_assert_msg(n == SW_EPROTO, "%s: want rejection, got %zd",
                          norm_cases[i].in, n);
            continue;
        }
        ck_assert_msg(n >= 0, "%s: rejected (%zd)", norm_cases[i].in, n);
        ck_assert_msg((size_t)n == strlen(norm_cases[i].out) &&
                          memcmp(out, norm_cases[i].out, (size_t)n) == 0,
                      "%s: want %s, got %.*s", norm_cases[i].in,
                      norm_cases[i].out, (int)n, out);
    }
    char small[4];
    ck_assert_int_eq(sw_route_normalize_path((struct sw_str){"/abcdef", 7},
                                             small, sizeof(small)),
                     SW_ETOOBIG);
}
END_TEST

static Suite *
route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("match");
    tcase_add_test(tc, test_host_precedence);
    tcase_add_test(tc, test_host_lists);
    tcase_add_test(tc, test_host_before_prefix);
    tcase_add_test(tc, test_longest_prefix);
    tcase_add_test(tc, test_header_match);
    tcase_add_test(tc, test_ties_file_order);
    tcase_add_test(tc, test_ports_and_ipv6);
    tcase_add_test(tc, test_no_match);
    tcase_add_test(tc, test_big_table);
    tcase_add_test(tc, test_normalize_path);
    suite_add_tcase(s, tc);
    TCase *ed = tcase_create("edits");
    tcase_add_test(ed, test_template_expansion);
    tcase_add_test(ed, test_edits);
    suite_add_tcase(s, ed);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(route_suite());
}
