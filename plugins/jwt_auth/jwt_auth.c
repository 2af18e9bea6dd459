/*
 * jwt_auth.c - the jwt_auth plugin: a route's requests (plain HTTP and
 * WebSocket upgrades alike, in on_request, before any byte goes upstream)
 * must carry a valid JSON Web Token, or get 401 with WWW-Authenticate
 * (RFC 6750 3). Claims of a good token can be copied into request headers
 * toward the upstream and into request variables (jwt_<claim>) that later
 * plugins of the route, such as ratelimit, key on.
 *
 *   configure (main thread, at load, -t and every SIGHUP)
 *       directives -> struct jwt_route (keys re-read from their files)
 *   on_request (worker threads, route state read-only)
 *       jwt_token_find -> jwt_token_verify -> claim headers -> CONTINUE
 *                                \-> 401 + log line + counters -> ANSWERED
 *
 * Directives and their defaults: README.md. No per-worker or
 * per-connection state: every request is checked on its own.
 */
#include "jwt_auth.h"

#include <time.h>

static const struct sw_plugin_directive directives[] = {
    {"token", 2, 2, true},        {"secret", 1, 2, true},
    {"secret_file", 1, 2, true},  {"public_key", 2, 2, true},
    {"jwks", 1, 1, true},         {"leeway", 1, 1, false},
    {"require_exp", 1, 1, false}, {"audience", 1, 15, false},
    {"issuer", 1, 1, false},      {"claim_header", 2, 2, true},
    {"realm", 1, 1, false},       {NULL, 0, 0, false},
};

static void
route_free(struct jwt_route *rt)
{
    if (rt == NULL) {
        return;
    }
    jwt_keys_free(rt);
    for (size_t i = 0; i < rt->nsrcs; i++) {
        free(rt->srcs[i].name);
    }
    free(rt->srcs);
    for (size_t i = 0; i < rt->nclaims; i++) {
        free(rt->claims[i].claim);
        free(rt->claims[i].header);
        free(rt->claims[i].var);
    }
    free(rt->claims);
    for (size_t i = 0; i < rt->naud; i++) {
        free(rt->aud[i]);
    }
    free(rt->aud);
    free(rt->iss);
    free(rt->challenge);
    for (size_t i = 0; i < JWT_R_COUNT; i++) {
        free(rt->invalid[i]);
    }
    free(rt);
}

/* RFC 9110 5.6.2: a token (header names, cookie and argument names). */
static bool
is_token(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!(((unsigned char)*s >= 'a' && *s <= 'z') ||
              (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s) != NULL)) {
            return false;
        }
    }
    return true;
}

static int
add_source(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt,
           enum jwt_src_kind kind, const char *name)
{
    struct jwt_source *s =
        realloc(rt->srcs, (rt->nsrcs + 1) * sizeof(struct jwt_source));
    char *copy = strdup(name);
    if (s != NULL) {
        rt->srcs = s;
    }
    if (s == NULL || copy == NULL) {
        free(copy);
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    rt->srcs[rt->nsrcs++] = (struct jwt_source){kind, copy};
    return SW_OK;
}

/* token header NAME | query NAME | cookie NAME */
static int
conf_token(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    static const char *const kinds[] = {"header", "query", "cookie"};
    const char *kind = sw_plugin_conf_arg(pc, i, 0);
    const char *name = sw_plugin_conf_arg(pc, i, 1);
    for (size_t k = 0; k < SW_NELEMS(kinds); k++) {
        if (strcmp(kind, kinds[k]) == 0) {
            if (!is_token(name)) {
                return sw_plugin_conf_error(pc, i, "bad %s name \"%s\"", kind,
                                            name);
            }
            return add_source(pc, i, rt, (enum jwt_src_kind)k, name);
        }
    }
    return sw_plugin_conf_error(pc, i,
                                "token is read from \"header\", \"query\" "
                                "or \"cookie\", not \"%s\"",
                                kind);
}

/* claim_header CLAIM HEADER */
static int
conf_claim(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    const char *claim = sw_plugin_conf_arg(pc, i, 0);
    const char *header = sw_plugin_conf_arg(pc, i, 1);
    for (const char *p = claim; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_')) {
            return sw_plugin_conf_error(pc, i,
                                        "claim names here are [A-Za-z0-9_]+, "
                                        "not \"%s\"",
                                        claim);
        }
    }
    if (*claim == '\0' || !is_token(header)) {
        return sw_plugin_conf_error(pc, i, "bad claim or header name");
    }
    struct jwt_claim_map *m =
        realloc(rt->claims, (rt->nclaims + 1) * sizeof(struct jwt_claim_map));
    if (m == NULL) {
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    rt->claims = m;
    m = &rt->claims[rt->nclaims];
    m->claim = strdup(claim);
    m->header = strdup(header);
    m->var = NULL;
    if (m->claim == NULL || m->header == NULL ||
        asprintf(&m->var, "jwt_%s", claim) < 0) {
        free(m->claim);
        free(m->header);
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    rt->nclaims++;
    return SW_OK;
}

static int
conf_audience(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    size_t n = sw_plugin_conf_nargs(pc, i);
    rt->aud = calloc(n, sizeof(char *));
    if (rt->aud == NULL) {
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    for (size_t j = 0; j < n; j++) {
        rt->aud[j] = strdup(sw_plugin_conf_arg(pc, i, j));
        if (rt->aud[j] == NULL) {
            return sw_plugin_conf_error(pc, i, "out of memory");
        }
        rt->naud = j + 1;
    }
    return SW_OK;
}

/* The realm goes into a quoted-string: printable ASCII without '"' and
 * '\' keeps it one without escapes. */
static bool
realm_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\') {
            return false;
        }
    }
    return true;
}

static int
conf_misc(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt,
          const char *name, const char **realm)
{
    const char *a = sw_plugin_conf_arg(pc, i, 0);
    if (strcmp(name, "leeway") == 0) {
        uint64_t ms;
        if (sw_plugin_parse_duration(a, &ms) != SW_OK ||
            ms > 24 * 3600 * 1000ull) {
            return sw_plugin_conf_error(pc, i,
                                        "leeway is a duration up to 1d, not "
                                        "\"%s\"",
                                        a);
        }
        rt->leeway_s = (int64_t)(ms / 1000);
    } else if (strcmp(name, "require_exp") == 0) {
        if (strcmp(a, "on") != 0 && strcmp(a, "off") != 0) {
            return sw_plugin_conf_error(pc, i, "require_exp is on or off");
        }
        rt->require_exp = strcmp(a, "on") == 0;
    } else if (strcmp(name, "issuer") == 0) {
        rt->iss = strdup(a);
        if (rt->iss == NULL) {
            return sw_plugin_conf_error(pc, i, "out of memory");
        }
    } else if (strcmp(name, "realm") == 0) {
        if (!realm_ok(a)) {
            return sw_plugin_conf_error(pc, i,
                                        "the realm is printable ASCII "
                                        "without '\"' or '\\'");
        }
        *realm = a;
    } else if (strcmp(name, "audience") == 0) {
        return conf_audience(pc, i, rt);
    }
    return SW_OK;
}

/* The WWW-Authenticate values, built once per configuration. */
static int
build_challenges(struct sw_plugin_conf *pc, struct jwt_route *rt,
                 const char *realm)
{
    if (asprintf(&rt->challenge, "Bearer realm=\"%s\"", realm) < 0) {
        rt->challenge = NULL;
        return sw_plugin_conf_error(pc, (size_t)-1, "out of memory");
    }
    for (size_t r = 0; r < JWT_R_COUNT; r++) {
        if (asprintf(&rt->invalid[r],
                     "Bearer realm=\"%s\", error=\"invalid_token\", "
                     "error_description=\"%s\"",
                     realm, jwt_reason_text((enum jwt_reason)r)) < 0) {
            rt->invalid[r] = NULL;
            return sw_plugin_conf_error(pc, (size_t)-1, "out of memory");
        }
    }
    return SW_OK;
}

static void
register_counters(struct sw_plugin_conf *pc, struct jwt_route *rt)
{
    rt->c_accepted = sw_plugin_conf_counter(pc, "accepted_total",
                                            "requests with a valid token");
    rt->c_rejected = sw_plugin_conf_counter(
        pc, "rejected_total", "requests refused with 401 (every reason)");
    for (size_t r = 0; r < JWT_R_COUNT; r++) {
        char name[64];
        snprintf(name, sizeof(name), "rejected_%s_total",
                 jwt_reason_name((enum jwt_reason)r));
        /* a full counter table leaves the per-reason counters out */
        rt->c_reason[r] =
            sw_plugin_conf_counter(pc, name, "requests refused, by reason");
    }
}

static int
configure_block(struct sw_plugin_conf *pc, struct jwt_route *rt)
{
    const char *realm = "shockwave";
    int st = SW_OK;
    for (size_t i = 0; i < sw_plugin_conf_count(pc) && st == SW_OK; i++) {
        const char *name = sw_plugin_conf_name(pc, i);
        if (strcmp(name, "token") == 0) {
            st = conf_token(pc, i, rt);
        } else if (strcmp(name, "secret") == 0) {
            st = jwt_keys_secret(pc, i, rt);
        } else if (strcmp(name, "secret_file") == 0) {
            st = jwt_keys_secret_file(pc, i, rt);
        } else if (strcmp(name, "public_key") == 0) {
            st = jwt_keys_public_key(pc, i, rt);
        } else if (strcmp(name, "jwks") == 0) {
            st = jwt_keys_jwks(pc, i, rt);
        } else if (strcmp(name, "claim_header") == 0) {
            st = conf_claim(pc, i, rt);
        } else {
            st = conf_misc(pc, i, rt, name, &realm);
        }
    }
    if (st != SW_OK) {
        return st;
    }
    if (rt->nkeys == 0) {
        return sw_plugin_conf_error(pc, (size_t)-1,
                                    "no key: give secret, secret_file, "
                                    "public_key or jwks");
    }
    /* RFC 6750 2.1 is the default place. */
    if (rt->nsrcs == 0 && add_source(pc, (size_t)-1, rt, JWT_SRC_HEADER,
                                     "Authorization") != SW_OK) {
        return SW_ENOMEM;
    }
    st = build_challenges(pc, rt, realm);
    if (st == SW_OK) {
        register_counters(pc, rt);
    }
    return st;
}

static int
configure(struct sw_plugin_conf *pc, void **route_state)
{
    struct jwt_route *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return sw_plugin_conf_error(pc, (size_t)-1, "out of memory");
    }
    /* A token without exp would be valid forever: refuse it unless the
     * configuration says otherwise. */
    rt->require_exp = true;
    int st = configure_block(pc, rt);
    if (st != SW_OK) {
        route_free(rt);
        return st;
    }
    *route_state = rt;
    return SW_OK;
}

static void
unconfigure(void *route_state)
{
    route_free(route_state);
}

static void
count(const struct sw_plugin_ctx *ctx, int id)
{
    if (id >= 0) {
        sw_plugin_count(ctx, id, 1);
    }
}

static int
reject(struct sw_plugin_ctx *ctx, const struct jwt_route *rt, enum jwt_reason r,
       const char *why)
{
    sw_plugin_log(ctx, 2, "token refused (%s): %s", jwt_reason_name(r), why);
    count(ctx, rt->c_rejected);
    count(ctx, rt->c_reason[r]);
    const char *ch = r == JWT_R_MISSING ? rt->challenge : rt->invalid[r];
    sw_plugin_respond_header(ctx, "WWW-Authenticate",
                             (struct sw_str){ch, strlen(ch)});
    sw_plugin_respond_header(ctx, "Cache-Control", SW_STR("no-store"));
    sw_plugin_respond(ctx, 401,
                      r == JWT_R_MISSING ? SW_STR("a bearer token is "
                                                  "required\n")
                                         : SW_STR("the bearer token is not "
                                                  "accepted\n"));
    return SW_PLUGIN_ANSWERED;
}

/* A string, number or boolean claim as text into buf; false for others. */
static bool
claim_text(json_t *v, char *buf, size_t cap, struct sw_str *out)
{
    int n = -1;
    if (json_is_string(v)) {
        *out = (struct sw_str){json_string_value(v), json_string_length(v)};
        /* RFC 9110 5.5: no CR, LF, NUL or other controls in a field value,
         * whatever the issuer put in the claim */
        for (size_t i = 0; i < out->len; i++) {
            unsigned char c = (unsigned char)out->p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return false;
            }
        }
        return out->len <= JWT_CLAIM_MAX;
    }
    if (json_is_integer(v)) {
        n = snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        n = snprintf(buf, cap, "%.17g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        n = snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    }
    if (n < 0 || (size_t)n >= cap) {
        return false;
    }
    *out = (struct sw_str){buf, (size_t)n};
    return true;
}

/* Copy the configured claims toward the upstream. A claim the token lacks
 * (or cannot be a header value) removes the header, so a client never
 * supplies it. SW_OK or SW_ETOOBIG (the request's edit room is full). */
static int
copy_claims(struct sw_plugin_ctx *ctx, const struct jwt_route *rt,
            json_t *claims)
{
    for (size_t i = 0; i < rt->nclaims; i++) {
        const struct jwt_claim_map *m = &rt->claims[i];
        char num[64];
        struct sw_str v;
        int st = SW_EINVAL;
        if (claim_text(json_object_get(claims, m->claim), num, sizeof(num),
                       &v)) {
            st = sw_plugin_req_set_header(ctx, m->header, v);
        }
        if (st == SW_EINVAL) {
            sw_plugin_log(ctx, 3, "claim %s not copied into %s", m->claim,
                          m->header);
            st = sw_plugin_req_remove_header(ctx, m->header);
        } else if (st == SW_OK && sw_plugin_var_set(ctx, m->var, v) != SW_OK) {
            sw_plugin_log(ctx, 1, "request variable %s not set", m->var);
        }
        if (st != SW_OK) {
            return st;
        }
    }
    return SW_OK;
}

static int
on_request(struct sw_plugin_ctx *ctx)
{
    const struct jwt_route *rt = sw_plugin_route_state(ctx);
    struct sw_str tok;
    if (!jwt_token_find(ctx, rt, &tok)) {
        return reject(ctx, rt, JWT_R_MISSING, "no token in the request");
    }
    /* exp and nbf are wall-clock times (RFC 7519 2, NumericDate). */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *claims = NULL;
    char why[256];
    enum jwt_reason r = jwt_token_verify(rt, tok, (int64_t)now.tv_sec, &claims,
                                         why, sizeof(why));
    if (r != JWT_R_COUNT) {
        return reject(ctx, rt, r, why);
    }
    int st = copy_claims(ctx, rt, claims);
    json_decref(claims);
    if (st != SW_OK) {
        sw_plugin_log(ctx, 0, "claim headers do not fit: %s",
                      st == SW_ETOOBIG ? "edit room full" : "error");
        sw_plugin_respond(ctx, 500, SW_STR("internal error\n"));
        return SW_PLUGIN_ANSWERED;
    }
    count(ctx, rt->c_accepted);
    return SW_PLUGIN_CONTINUE;
}

static const struct sw_plugin jwt_auth_plugin = {
    .abi_major = SW_PLUGIN_ABI_MAJOR,
    .abi_minor = SW_PLUGIN_ABI_MINOR,
    .size = sizeof(struct sw_plugin),
    .name = "jwt_auth",
    .version = "1.0",
    .directives = directives,
    .configure = configure,
    .unconfigure = unconfigure,
    .on_request = on_request,
};

SW_PLUGIN_DEFINE(jwt_auth_plugin)
