/*
 * jwt_auth.h - the jwt_auth plugin's private declarations, shared by its
 * three files:
 *
 *   jwt_auth.c   descriptor, directives, configure, the on_request hook
 *   jwt_keys.c   keys: literal and file secrets, PEM public keys, JWKS
 *                (JSON Web Key Set) converted to PEM with OpenSSL 3
 *   jwt_token.c  token extraction (header, query, cookie), the JOSE header
 *                pre-check (alg, kid), key choice, libjwt verification and
 *                the claim checks (exp, nbf, aud, iss)
 *
 * Ownership: a struct jwt_route is built by configure on the main thread,
 * owns every key and string in it, and is read-only afterwards: the worker
 * threads only read it (no locks). It is freed by unconfigure when the
 * snapshot holding it is released.
 */
#ifndef JWT_AUTH_H
#define JWT_AUTH_H

#include <shockwave/plugin.h>

#include <jansson.h>
#include <jwt.h>

/* Longest token accepted (bytes); longer ones are malformed. */
#define JWT_TOKEN_MAX 8192
/* Longest claim value copied into a request header. */
#define JWT_CLAIM_MAX 1024

/* Why a request was refused; each has a counter and an error_description. */
enum jwt_reason {
    JWT_R_MISSING = 0, /* no token in any configured place */
    JWT_R_MALFORMED,   /* not three base64url segments, bad JSON */
    JWT_R_ALG,         /* alg none, unknown, or not the key's algorithm */
    JWT_R_KID,         /* kid names no configured key */
    JWT_R_SIGNATURE,   /* no candidate key verifies it */
    JWT_R_EXPIRED,     /* exp (plus leeway) has passed */
    JWT_R_NBF,         /* nbf (minus leeway) is still ahead */
    JWT_R_NO_EXP,      /* require_exp on and the token has no exp */
    JWT_R_AUD,         /* aud has none of the configured audiences */
    JWT_R_ISS,         /* iss is not the configured issuer */
    JWT_R_COUNT,
};

/* One verification key, pinned to one algorithm. */
struct jwt_key {
    jwt_alg_t alg;      /* the only algorithm this key verifies */
    char *kid;          /* owned: key id from JWKS, NULL when none */
    unsigned char *buf; /* owned: secret bytes (HS*) or SPKI PEM text (RS*,
                           ES*), NUL-terminated either way */
    size_t len;         /* bytes in buf, without the NUL */
};

enum jwt_src_kind {
    JWT_SRC_HEADER = 0, /* a request header ("Bearer " stripped) */
    JWT_SRC_QUERY,      /* a query argument, raw */
    JWT_SRC_COOKIE,     /* a cookie */
};

/* One place a token is looked for, in configuration order. */
struct jwt_source {
    enum jwt_src_kind kind; /* where */
    char *name;             /* owned: header, argument or cookie name */
};

/* claim_header CLAIM HEADER: a claim copied toward the upstream. */
struct jwt_claim_map {
    char *claim;  /* owned: claim name in the token's payload */
    char *header; /* owned: request header set (or removed) */
    char *var;    /* owned: request variable "jwt_<claim>" */
};

/* The route state: everything configure read, read-only afterwards. */
struct jwt_route {
    struct jwt_key *keys;         /* owned: nkeys keys */
    size_t nkeys;                 /* entries in keys */
    struct jwt_source *srcs;      /* owned: nsrcs places, first wins */
    size_t nsrcs;                 /* entries in srcs */
    struct jwt_claim_map *claims; /* owned: nclaims copies */
    size_t nclaims;               /* entries in claims */
    char **aud;                   /* owned: naud accepted audiences */
    size_t naud;                  /* entries in aud; 0 = no aud check */
    char *iss;                    /* owned: required issuer, or NULL */
    int64_t leeway_s;             /* clock skew allowed on exp/nbf */
    bool require_exp;             /* refuse tokens without exp */
    char *challenge;              /* owned: WWW-Authenticate for a
                                     missing token */
    char *invalid[JWT_R_COUNT];   /* owned: WWW-Authenticate per reason */
    int c_accepted;               /* counter id, or -1 */
    int c_rejected;               /* counter id, or -1 */
    int c_reason[JWT_R_COUNT];    /* counter id per reason, or -1 */
};

/* A short name for a reason ("expired"), used in counters and logs. */
const char *jwt_reason_name(enum jwt_reason r);
/* The RFC 6750 error_description of a reason. */
const char *jwt_reason_text(enum jwt_reason r);

/* ---- jwt_keys.c --------------------------------------------------------- */

/* The algorithm named s ("HS256"...), or JWT_ALG_INVAL for "none" and
 * anything unknown. */
jwt_alg_t jwt_alg_parse(const char *s);

/* Append a key to rt (takes ownership of kid and buf, freed on failure).
 * SW_OK or SW_ENOMEM. */
int jwt_key_add(struct jwt_route *rt, jwt_alg_t alg, char *kid,
                unsigned char *buf, size_t len);

/* The directives `secret`, `secret_file`, `public_key` and `jwks` at index
 * i: add their keys to rt. SW_OK, or the status of sw_plugin_conf_error. */
int jwt_keys_secret(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt);
int jwt_keys_secret_file(struct sw_plugin_conf *pc, size_t i,
                         struct jwt_route *rt);
int jwt_keys_public_key(struct sw_plugin_conf *pc, size_t i,
                        struct jwt_route *rt);
int jwt_keys_jwks(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt);

void jwt_keys_free(struct jwt_route *rt);

/* ---- jwt_token.c -------------------------------------------------------- */

/* Decode base64url (no padding, '=' tolerated at the end) of s[0..n) into
 * out (room for n * 3 / 4 + 3 bytes). Returns the bytes written, or -1 on
 * a character outside the alphabet. */
ssize_t jwt_b64url_decode(const char *s, size_t n, unsigned char *out);

/* The token of this request from the first configured place that has one;
 * false when none has. */
bool jwt_token_find(struct sw_plugin_ctx *ctx, const struct jwt_route *rt,
                    struct sw_str *token);

/* Verify token against rt's keys and claims at wall-clock time `now`
 * (seconds). JWT_R_COUNT when it is good (then *claims holds its payload,
 * to release with json_decref), else the reason, with a detail for the log
 * in why[cap]. */
enum jwt_reason jwt_token_verify(const struct jwt_route *rt,
                                 struct sw_str token, int64_t now,
                                 json_t **claims, char *why, size_t cap);

#endif
