/*
 * jwt_token.c - one token's way through jwt_auth, on a worker thread:
 *
 *   find (header | query | cookie, first present wins)
 *     -> shape: three base64url segments, at most JWT_TOKEN_MAX bytes
 *     -> JOSE header (base64url + jansson): alg, kid, crit
 *     -> key choice: by kid, else every key pinned to the token's alg;
 *        a token whose alg is not its key's is refused here, before any
 *        verification (alg "none", HS256 keyed with an RSA key's PEM)
 *     -> libjwt jwt_decode with that key (signature), jwt_get_alg re-checked
 *     -> claims (jansson on jwt_get_grants_json): exp, nbf with leeway,
 *        require_exp, aud, iss
 *
 * libjwt 1.10 decides the alg from the token itself and has no claim
 * validation, so the pinning and the claim checks are ours (README.md).
 *
 * Reads the route state only; allocates per call (libjwt, jansson) and
 * frees before returning, except the claims handed to the caller.
 */
#include "jwt_auth.h"

#include <errno.h>
#include <math.h>

static const struct {
    const char *name; /* counter suffix and log word */
    const char *text; /* RFC 6750 error_description */
} reasons[JWT_R_COUNT] = {
    [JWT_R_MISSING] = {"missing", "no token"},
    [JWT_R_MALFORMED] = {"malformed", "the token is malformed"},
    [JWT_R_ALG] = {"wrong_alg", "the token's algorithm is not accepted"},
    [JWT_R_KID] = {"unknown_kid", "the token's key id is unknown"},
    [JWT_R_SIGNATURE] = {"bad_signature", "the signature is invalid"},
    [JWT_R_EXPIRED] = {"expired", "the token has expired"},
    [JWT_R_NBF] = {"not_yet_valid", "the token is not yet valid"},
    [JWT_R_NO_EXP] = {"no_exp", "the token has no expiry"},
    [JWT_R_AUD] = {"wrong_aud", "the token's audience is not accepted"},
    [JWT_R_ISS] = {"wrong_iss", "the token's issuer is not accepted"},
};

const char *
jwt_reason_name(enum jwt_reason r)
{
    return r < JWT_R_COUNT ? reasons[r].name : "ok";
}

const char *
jwt_reason_text(enum jwt_reason r)
{
    return r < JWT_R_COUNT ? reasons[r].text : "";
}

/* base64url alphabet value of c, or -1 (RFC 4648 section 5). */
static int
b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

ssize_t
jwt_b64url_decode(const char *s, size_t n, unsigned char *out)
{
    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    if (n % 4 == 1) {
        return -1; /* no byte ends on a lone sextet */
    }
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (ssize_t)o;
}

/* Cut leading and trailing spaces and tabs. */
static struct sw_str
trim(struct sw_str v)
{
    while (v.len > 0 && (v.p[0] == ' ' || v.p[0] == '\t')) {
        v.p++;
        v.len--;
    }
    while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t')) {
        v.len--;
    }
    return v;
}

/* RFC 6750 2.1: "Bearer" (any case), then spaces, then the token. With
 * `required`, a value of another scheme (Basic ...) is not a token. */
static bool
strip_bearer(struct sw_str *v, bool required)
{
    if (v->len > 7 && strncasecmp(v->p, "bearer", 6) == 0 &&
        (v->p[6] == ' ' || v->p[6] == '\t')) {
        *v = trim((struct sw_str){v->p + 7, v->len - 7});
        return true;
    }
    return !required;
}

bool
jwt_token_find(struct sw_plugin_ctx *ctx, const struct jwt_route *rt,
               struct sw_str *token)
{
    for (size_t i = 0; i < rt->nsrcs; i++) {
        const struct jwt_source *s = &rt->srcs[i];
        struct sw_str v;
        bool found = false;
        switch (s->kind) {
        case JWT_SRC_HEADER:
            found = sw_plugin_req_header(ctx, s->name, &v);
            if (found) {
                v = trim(v);
                found =
                    strip_bearer(&v, strcasecmp(s->name, "Authorization") == 0);
            }
            break;
        case JWT_SRC_QUERY:
            found = sw_plugin_req_arg(ctx, s->name, &v);
            break;
        case JWT_SRC_COOKIE:
            found = sw_plugin_req_cookie(ctx, s->name, &v);
            break;
        }
        if (found && v.len > 0) {
            *token = v;
            return true;
        }
    }
    return false;
}

/* The JOSE header of a token, read before any key is chosen. */
struct jose {
    jwt_alg_t alg;  /* JWT_ALG_INVAL for "none" and unknown */
    char alg_s[16]; /* as written (for the log), truncated */
    char kid[128];  /* "" when none */
};

static enum jwt_reason
parse_jose(const char *tok, size_t hlen, struct jose *h, char *why, size_t cap)
{
    unsigned char raw[JWT_TOKEN_MAX];
    ssize_t n = jwt_b64url_decode(tok, hlen, raw);
    json_t *js =
        n > 0 ? json_loadb((const char *)raw, (size_t)n, 0, NULL) : NULL;
    enum jwt_reason r = JWT_R_COUNT;
    const char *alg = json_string_value(json_object_get(js, "alg"));
    json_t *kid = json_object_get(js, "kid");
    json_t *typ = json_object_get(js, "typ");
    if (!json_is_object(js) || alg == NULL) {
        snprintf(why, cap, "header is not a JSON object with \"alg\"");
        r = JWT_R_MALFORMED;
    } else if (kid != NULL &&
               (!json_is_string(kid) ||
                strlen(json_string_value(kid)) >= sizeof(h->kid))) {
        snprintf(why, cap, "\"kid\" is not a short string");
        r = JWT_R_MALFORMED;
    } else if (typ != NULL &&
               (!json_is_string(typ) ||
                strcasecmp(json_string_value(typ), "JWT") != 0)) {
        /* libjwt 1.10 refuses any other typ (RFC 9068's "at+jwt" too):
         * say so rather than let it pass for a bad signature */
        snprintf(why, cap, "typ other than \"JWT\" is not supported");
        r = JWT_R_MALFORMED;
    } else if (json_object_get(js, "crit") != NULL) {
        /* RFC 7515 4.1.11: extensions we do not know must be refused. */
        snprintf(why, cap, "\"crit\" extensions are not supported");
        r = JWT_R_MALFORMED;
    } else {
        snprintf(h->alg_s, sizeof(h->alg_s), "%s", alg);
        h->alg = jwt_alg_parse(alg);
        snprintf(h->kid, sizeof(h->kid), "%s",
                 kid != NULL ? json_string_value(kid) : "");
        if (h->alg == JWT_ALG_INVAL) {
            snprintf(why, cap, "alg \"%s\" is not accepted", h->alg_s);
            r = JWT_R_ALG;
        }
    }
    json_decref(js);
    return r;
}

/* Try one key; the decoded token or NULL. */
static jwt_t *
try_key(const char *tok, const struct jwt_key *k)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, tok, k->buf, (int)k->len) != 0) {
        return NULL;
    }
    /* Belt and braces: the library took alg from the token, which we
     * checked against the key; check what it actually verified. */
    if (jwt_get_alg(jwt) != k->alg) {
        jwt_free(jwt);
        return NULL;
    }
    return jwt;
}

/* Choose the keys for h and verify with them: the token's payload or NULL
 * with the reason in *r. */
static json_t *
verify_sig(const struct jwt_route *rt, const char *tok, const struct jose *h,
           enum jwt_reason *r, char *why, size_t cap)
{
    jwt_t *jwt = NULL;
    bool kid_match = false, tried = false, kidless = false;
    for (size_t i = 0; i < rt->nkeys && jwt == NULL; i++) {
        const struct jwt_key *k = &rt->keys[i];
        if (h->kid[0] != '\0' && k->kid != NULL &&
            strcmp(k->kid, h->kid) == 0) {
            kid_match = true;
            if (k->alg != h->alg) {
                snprintf(why, cap, "alg %s, but key \"%s\" is %s", h->alg_s,
                         h->kid, jwt_alg_str(k->alg));
                *r = JWT_R_ALG;
                return NULL;
            }
            tried = true;
            jwt = try_key(tok, k);
            break;
        }
    }
    /* No key by that kid (or no kid): every key without a kid, or every
     * key when the token names none, pinned to the token's alg. */
    for (size_t i = 0; i < rt->nkeys && jwt == NULL && !kid_match; i++) {
        const struct jwt_key *k = &rt->keys[i];
        if (h->kid[0] != '\0' && k->kid != NULL) {
            continue;
        }
        kidless = true;
        if (k->alg == h->alg) {
            tried = true;
            jwt = try_key(tok, k);
        }
    }
    if (jwt == NULL) {
        if (!tried && !kid_match && !kidless) {
            snprintf(why, cap, "no key has kid \"%s\"", h->kid);
            *r = JWT_R_KID;
        } else if (!tried) {
            snprintf(why, cap, "no key is pinned to alg %s", h->alg_s);
            *r = JWT_R_ALG;
        } else {
            snprintf(why, cap, "%s signature does not verify%s%s", h->alg_s,
                     h->kid[0] != '\0' ? " with kid " : "", h->kid);
            *r = JWT_R_SIGNATURE;
        }
        return NULL;
    }
    char *grants = jwt_get_grants_json(jwt, NULL);
    json_t *claims =
        grants != NULL ? json_loads(grants, JSON_DECODE_ANY, NULL) : NULL;
    free(grants);
    jwt_free(jwt);
    if (!json_is_object(claims)) {
        json_decref(claims);
        snprintf(why, cap, "the payload is not a JSON object");
        *r = JWT_R_MALFORMED;
        return NULL;
    }
    return claims;
}

/* A NumericDate claim (RFC 7519 2): *v gets it; false when absent. A
 * present claim that is not a number makes *bad true. */
static bool
numeric_date(json_t *claims, const char *name, double *v, bool *bad)
{
    json_t *j = json_object_get(claims, name);
    if (j == NULL) {
        return false;
    }
    if (!json_is_number(j) || !isfinite(json_number_value(j))) {
        *bad = true;
        return false;
    }
    *v = json_number_value(j);
    return true;
}

static bool
aud_ok(const struct jwt_route *rt, json_t *aud)
{
    for (size_t i = 0; i < rt->naud; i++) {
        if (json_is_string(aud) &&
            strcmp(json_string_value(aud), rt->aud[i]) == 0) {
            return true;
        }
        size_t k;
        json_t *a;
        json_array_foreach(aud, k, a)
        {
            if (json_is_string(a) &&
                strcmp(json_string_value(a), rt->aud[i]) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* RFC 7519 4.1: exp, nbf, aud, iss. */
static enum jwt_reason
check_claims(const struct jwt_route *rt, json_t *claims, int64_t now, char *why,
             size_t cap)
{
    double exp = 0, nbf = 0;
    bool bad = false;
    bool has_exp = numeric_date(claims, "exp", &exp, &bad);
    bool has_nbf = numeric_date(claims, "nbf", &nbf, &bad);
    if (bad) {
        snprintf(why, cap, "exp or nbf is not a number");
        return JWT_R_MALFORMED;
    }
    /* 4.1.4: the token must not be accepted on or after exp. */
    if (has_exp && (double)now >= exp + (double)rt->leeway_s) {
        snprintf(why, cap, "expired %.0fs ago (leeway %llds)",
                 (double)now - exp, (long long)rt->leeway_s);
        return JWT_R_EXPIRED;
    }
    if (!has_exp && rt->require_exp) {
        snprintf(why, cap, "no exp claim and require_exp is on");
        return JWT_R_NO_EXP;
    }
    /* 4.1.5: nor before nbf. */
    if (has_nbf && (double)now + (double)rt->leeway_s < nbf) {
        snprintf(why, cap, "not valid for another %.0fs (leeway %llds)",
                 nbf - (double)now, (long long)rt->leeway_s);
        return JWT_R_NBF;
    }
    if (rt->naud > 0 && !aud_ok(rt, json_object_get(claims, "aud"))) {
        snprintf(why, cap, "aud is not one of the accepted audiences");
        return JWT_R_AUD;
    }
    if (rt->iss != NULL) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (iss == NULL || strcmp(iss, rt->iss) != 0) {
            snprintf(why, cap, "iss \"%.64s\" is not \"%.64s\"",
                     iss != NULL ? iss : "", rt->iss);
            return JWT_R_ISS;
        }
    }
    return JWT_R_COUNT;
}

enum jwt_reason
jwt_token_verify(const struct jwt_route *rt, struct sw_str token, int64_t now,
                 json_t **claims, char *why, size_t cap)
{
    /* libjwt wants a C string; the copy also bounds the length. */
    char tok[JWT_TOKEN_MAX + 1];
    size_t dots[2], ndots = 0;
    if (token.len > JWT_TOKEN_MAX) {
        snprintf(why, cap, "longer than %d bytes", JWT_TOKEN_MAX);
        return JWT_R_MALFORMED;
    }
    for (size_t i = 0; i < token.len; i++) {
        unsigned char c = (unsigned char)token.p[i];
        if (c == '.') {
            if (ndots == 2) {
                ndots = 3;
                break;
            }
            dots[ndots++] = i;
        } else if (b64url_val(c) < 0) {
            snprintf(why, cap, "byte 0x%02x at %zu is not base64url", c, i);
            return JWT_R_MALFORMED;
        }
    }
    if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1) {
        snprintf(why, cap, "not three segments (header.payload.signature)");
        return JWT_R_MALFORMED;
    }
    memcpy(tok, token.p, token.len);
    tok[token.len] = '\0';

    struct jose h;
    enum jwt_reason r = parse_jose(tok, dots[0], &h, why, cap);
    if (r != JWT_R_COUNT) {
        return r;
    }
    if (dots[1] + 1 == token.len) {
        snprintf(why, cap, "alg %s without a signature", h.alg_s);
        return JWT_R_SIGNATURE;
    }
    json_t *c = verify_sig(rt, tok, &h, &r, why, cap);
    if (c == NULL) {
        return r;
    }
    r = check_claims(rt, c, now, why, cap);
    if (r != JWT_R_COUNT) {
        json_decref(c);
        return r;
    }
    *claims = c;
    return JWT_R_COUNT;
}
