/*
 * jwt_keys.c - the verification keys of a jwt_auth block: literal and file
 * secrets (HS256/384/512), PEM public keys (RS256/384/512, ES256/384/512)
 * and JWKS files, every key pinned to exactly one algorithm.
 *
 * libjwt verifies RS and ES signatures from a PEM SubjectPublicKeyInfo, and
 * has no JWKS support: a JWKS key (RFC 7517, RFC 7518 section 6) is parsed
 * with jansson, rebuilt as an EVP_PKEY with OpenSSL 3's EVP_PKEY_fromdata
 * and written out as PEM. A PEM file is parsed and written out again the
 * same way, so a bad file is refused here and libjwt always gets one form.
 *
 * Runs on the main thread only (configure). Owns nothing beyond the keys it
 * appends to the route, which jwt_keys_free releases.
 */
#include "jwt_auth.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

/* Largest key file read (a JWKS of many keys fits easily). */
#define KEY_FILE_MAX (1024 * 1024)

static const struct {
    const char *name;
    jwt_alg_t alg;
} alg_names[] = {
    {"HS256", JWT_ALG_HS256}, {"HS384", JWT_ALG_HS384},
    {"HS512", JWT_ALG_HS512}, {"RS256", JWT_ALG_RS256},
    {"RS384", JWT_ALG_RS384}, {"RS512", JWT_ALG_RS512},
    {"ES256", JWT_ALG_ES256}, {"ES384", JWT_ALG_ES384},
    {"ES512", JWT_ALG_ES512},
};

jwt_alg_t
jwt_alg_parse(const char *s)
{
    for (size_t i = 0; s != NULL && i < SW_NELEMS(alg_names); i++) {
        if (strcmp(s, alg_names[i].name) == 0) {
            return alg_names[i].alg;
        }
    }
    return JWT_ALG_INVAL;
}

static bool
alg_is_hmac(jwt_alg_t a)
{
    return a == JWT_ALG_HS256 || a == JWT_ALG_HS384 || a == JWT_ALG_HS512;
}

static bool
alg_is_rsa(jwt_alg_t a)
{
    return a == JWT_ALG_RS256 || a == JWT_ALG_RS384 || a == JWT_ALG_RS512;
}

/* The curve an ES algorithm needs (RFC 7518 3.4), or NULL. */
static const char *
alg_curve(jwt_alg_t a)
{
    switch (a) {
    case JWT_ALG_ES256:
        return "P-256";
    case JWT_ALG_ES384:
        return "P-384";
    case JWT_ALG_ES512:
        return "P-521";
    default:
        return NULL;
    }
}

int
jwt_key_add(struct jwt_route *rt, jwt_alg_t alg, char *kid, unsigned char *buf,
            size_t len)
{
    struct jwt_key *k =
        realloc(rt->keys, (rt->nkeys + 1) * sizeof(struct jwt_key));
    if (k == NULL) {
        free(kid);
        free(buf);
        return SW_ENOMEM;
    }
    rt->keys = k;
    rt->keys[rt->nkeys++] = (struct jwt_key){alg, kid, buf, len};
    return SW_OK;
}

void
jwt_keys_free(struct jwt_route *rt)
{
    for (size_t i = 0; i < rt->nkeys; i++) {
        free(rt->keys[i].kid);
        if (rt->keys[i].buf != NULL) {
            OPENSSL_cleanse(rt->keys[i].buf, rt->keys[i].len);
        }
        free(rt->keys[i].buf);
    }
    free(rt->keys);
    rt->keys = NULL;
    rt->nkeys = 0;
}

/* Read a whole file (resolved against the config's folder) into a
 * NUL-terminated malloc'd buffer. SW_OK, or a conf error at i. */
static int
read_file(struct sw_plugin_conf *pc, size_t i, const char *arg,
          unsigned char **out, size_t *len)
{
    char path[4096];
    if (sw_plugin_conf_path(pc, arg, path, sizeof(path)) != SW_OK) {
        return sw_plugin_conf_error(pc, i, "path too long: %s", arg);
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return sw_plugin_conf_error(pc, i, "cannot open %s: %s", path,
                                    strerror(errno));
    }
    unsigned char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, KEY_FILE_MAX + 1, f) : 0;
    bool err = ferror(f) != 0;
    fclose(f);
    int st = SW_OK;
    if (buf == NULL) {
        st = sw_plugin_conf_error(pc, i, "out of memory reading %s", path);
    } else if (err) {
        st = sw_plugin_conf_error(pc, i, "cannot read %s", path);
    } else if (n > KEY_FILE_MAX) {
        st = sw_plugin_conf_error(pc, i, "%s is larger than %d bytes", path,
                                  KEY_FILE_MAX);
    }
    if (st != SW_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SW_OK;
}

/* The optional HMAC algorithm argument j of directive i (HS256 when
 * absent). JWT_ALG_INVAL after a conf error. */
static jwt_alg_t
hmac_arg(struct sw_plugin_conf *pc, size_t i, size_t j)
{
    const char *a = sw_plugin_conf_arg(pc, i, j);
    if (a == NULL) {
        return JWT_ALG_HS256;
    }
    jwt_alg_t alg = jwt_alg_parse(a);
    if (!alg_is_hmac(alg)) {
        sw_plugin_conf_error(pc, i,
                             "a secret verifies HS256, HS384 or HS512, not "
                             "\"%s\"",
                             a);
        return JWT_ALG_INVAL;
    }
    return alg;
}

static int
add_secret(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt,
           jwt_alg_t alg, unsigned char *buf, size_t len)
{
    if (len == 0) {
        free(buf);
        return sw_plugin_conf_error(pc, i, "the secret is empty");
    }
    if (jwt_key_add(rt, alg, NULL, buf, len) != SW_OK) {
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    return SW_OK;
}

int
jwt_keys_secret(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    jwt_alg_t alg = hmac_arg(pc, i, 1);
    if (alg == JWT_ALG_INVAL) {
        return SW_EINVAL;
    }
    const char *s = sw_plugin_conf_arg(pc, i, 0);
    char *copy = strdup(s);
    if (copy == NULL) {
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    return add_secret(pc, i, rt, alg, (unsigned char *)copy, strlen(copy));
}

int
jwt_keys_secret_file(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    jwt_alg_t alg = hmac_arg(pc, i, 1);
    if (alg == JWT_ALG_INVAL) {
        return SW_EINVAL;
    }
    unsigned char *buf;
    size_t len;
    int st = read_file(pc, i, sw_plugin_conf_arg(pc, i, 0), &buf, &len);
    if (st != SW_OK) {
        return st;
    }
    /* An editor's trailing newline is not part of the secret. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }
    return add_secret(pc, i, rt, alg, buf, len);
}

/* Whether pkey can verify alg: RSA for RS*, EC on the right curve for ES*.
 * NULL when it can, else what is wrong. */
static const char *
pkey_mismatch(EVP_PKEY *pkey, jwt_alg_t alg)
{
    if (alg_is_rsa(alg)) {
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            return "the key is not an RSA key";
        }
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            return "RSA keys shorter than 2048 bits are refused";
        }
        return NULL;
    }
    const char *crv = alg_curve(alg);
    if (crv == NULL || !EVP_PKEY_is_a(pkey, "EC")) {
        return "the key is not an EC key";
    }
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                        sizeof(group), &glen)) {
        return "the EC key has no named curve";
    }
    /* OpenSSL names P-256 "prime256v1" and P-384/P-521 "secp384r1" and
     * "secp521r1"; accept either spelling. */
    static const char *const openssl_names[] = {"prime256v1", "secp384r1",
                                                "secp521r1"};
    static const char *const nist_names[] = {"P-256", "P-384", "P-521"};
    for (size_t k = 0; k < 3; k++) {
        if (strcmp(crv, nist_names[k]) == 0 &&
            (strcmp(group, openssl_names[k]) == 0 ||
             strcasecmp(group, nist_names[k]) == 0)) {
            return NULL;
        }
    }
    return "the EC key's curve does not match the algorithm";
}

/* Write pkey as an SPKI PEM into a malloc'd NUL-terminated buffer. */
static unsigned char *
pkey_pem(EVP_PKEY *pkey, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *out = NULL;
    char *data;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        long n = BIO_get_mem_data(bio, &data);
        out = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (out != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
            *len = (size_t)n;
        }
    }
    BIO_free(bio);
    return out;
}

/* Check pkey against alg, then add it (as PEM) with kid (owned). */
static int
add_pkey(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt,
         EVP_PKEY *pkey, jwt_alg_t alg, char *kid, const char *what)
{
    const char *bad = pkey_mismatch(pkey, alg);
    if (bad != NULL) {
        free(kid);
        return sw_plugin_conf_error(pc, i, "%s: %s for %s", what, bad,
                                    jwt_alg_str(alg));
    }
    size_t len = 0;
    unsigned char *pem = pkey_pem(pkey, &len);
    if (pem == NULL || jwt_key_add(rt, alg, kid, pem, len) != SW_OK) {
        if (pem == NULL) {
            free(kid);
        }
        return sw_plugin_conf_error(pc, i, "%s: cannot encode the key", what);
    }
    return SW_OK;
}

int
jwt_keys_public_key(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    const char *path = sw_plugin_conf_arg(pc, i, 0);
    const char *a = sw_plugin_conf_arg(pc, i, 1);
    jwt_alg_t alg = jwt_alg_parse(a);
    if (alg == JWT_ALG_INVAL || alg_is_hmac(alg)) {
        return sw_plugin_conf_error(pc, i,
                                    "a public key verifies RS256, RS384, "
                                    "RS512, ES256, ES384 or ES512, not \"%s\"",
                                    a);
    }
    unsigned char *buf;
    size_t len;
    int st = read_file(pc, i, path, &buf, &len);
    if (st != SW_OK) {
        return st;
    }
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    EVP_PKEY *pkey =
        bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(buf);
    if (pkey == NULL) {
        return sw_plugin_conf_error(pc, i,
                                    "%s: not a PEM public key (\"-----BEGIN "
                                    "PUBLIC KEY-----\")",
                                    path);
    }
    st = add_pkey(pc, i, rt, pkey, alg, NULL, path);
    EVP_PKEY_free(pkey);
    return st;
}

/* ---- JWKS --------------------------------------------------------------- */

/* The base64url member `name` of a JWK, decoded into a malloc'd buffer. */
static unsigned char *
jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (s == NULL || *s == '\0') {
        return NULL;
    }
    size_t n = strlen(s);
    unsigned char *out = malloc(n * 3 / 4 + 3);
    ssize_t got = out != NULL ? jwt_b64url_decode(s, n, out) : -1;
    if (got <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)got;
    return out;
}

/* Build an EVP_PKEY of type `type` from params. NULL on failure. */
static EVP_PKEY *
pkey_from(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* RFC 7518 6.3.1: n and e, big-endian unsigned. */
static EVP_PKEY *
jwk_rsa(json_t *jwk)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = jwk_bytes(jwk, "n", &nlen);
    unsigned char *e = jwk_bytes(jwk, "e", &elen);
    BIGNUM *bn = n != NULL ? BN_bin2bn(n, (int)nlen, NULL) : NULL;
    BIGNUM *be = e != NULL ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn != NULL && be != NULL && bld != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1) {
        pkey = pkey_from("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pkey;
}

/* RFC 7518 6.2.1: crv, x and y (each the curve's size); the public key is
 * the uncompressed point 0x04 || x || y. */
static EVP_PKEY *
jwk_ec(json_t *jwk, const char *crv)
{
    static const char *const nist[] = {"P-256", "P-384", "P-521"};
    static const char *const ossl[] = {"prime256v1", "secp384r1", "secp521r1"};
    static const size_t sizes[] = {32, 48, 66};
    size_t c = 0;
    while (c < 3 && strcmp(crv, nist[c]) != 0) {
        c++;
    }
    if (c == 3) {
        return NULL;
    }
    size_t xlen = 0, ylen = 0;
    unsigned char *x = jwk_bytes(jwk, "x", &xlen);
    unsigned char *y = jwk_bytes(jwk, "y", &ylen);
    unsigned char point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (x != NULL && y != NULL && xlen == sizes[c] && ylen == sizes[c] &&
        bld != NULL) {
        point[0] = 0x04;
        memcpy(point + 1, x, xlen);
        memcpy(point + 1 + xlen, y, ylen);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            ossl[c], 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                             point, 1 + xlen + ylen) == 1) {
            pkey = pkey_from("EC", bld);
        }
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

/* The algorithm a JWK is pinned to: its "alg", else from kty and crv
 * (RSA -> RS256, EC P-256/384/521 -> ES256/384/512; oct needs "alg").
 * JWT_ALG_INVAL with *err set when there is none. */
static jwt_alg_t
jwk_alg(json_t *jwk, const char *kty, const char **err)
{
    json_t *ja = json_object_get(jwk, "alg");
    if (ja != NULL) {
        jwt_alg_t alg = jwt_alg_parse(json_string_value(ja));
        if (alg == JWT_ALG_INVAL) {
            *err = "unsupported \"alg\"";
        }
        return alg;
    }
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (strcmp(kty, "RSA") == 0) {
        return JWT_ALG_RS256;
    }
    if (strcmp(kty, "EC") == 0 && crv != NULL) {
        jwt_alg_t ec[] = {JWT_ALG_ES256, JWT_ALG_ES384, JWT_ALG_ES512};
        for (size_t k = 0; k < 3; k++) {
            if (strcmp(crv, alg_curve(ec[k])) == 0) {
                return ec[k];
            }
        }
        *err = "unsupported \"crv\"";
        return JWT_ALG_INVAL;
    }
    *err = "an \"oct\" key needs \"alg\"";
    return JWT_ALG_INVAL;
}

/* Add key number n of a JWKS (directive i). SW_OK (also for a key skipped
 * because it is for encryption or of a type JWS here does not use). */
static int
jwks_key(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt, json_t *jwk,
         size_t n)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    json_t *jkid = json_object_get(jwk, "kid");
    if (!json_is_object(jwk) || kty == NULL) {
        return sw_plugin_conf_error(pc, i, "JWKS key %zu has no \"kty\"", n);
    }
    if (jkid != NULL && !json_is_string(jkid)) {
        return sw_plugin_conf_error(pc, i,
                                    "JWKS key %zu: \"kid\" is not a "
                                    "string",
                                    n);
    }
    /* RFC 7517 4.2: "enc" keys are not for signatures; OKP (EdDSA) is not
     * an algorithm libjwt 1.10 verifies. Both are skipped, not refused, so
     * an identity provider's whole set can be used as published. */
    if ((use != NULL && strcmp(use, "sig") != 0) || strcmp(kty, "OKP") == 0) {
        return SW_OK;
    }
    const char *err = NULL;
    jwt_alg_t alg = jwk_alg(jwk, kty, &err);
    if (alg == JWT_ALG_INVAL) {
        return sw_plugin_conf_error(pc, i, "JWKS key %zu: %s", n, err);
    }
    char *kid = jkid != NULL ? strdup(json_string_value(jkid)) : NULL;
    if (jkid != NULL && kid == NULL) {
        return sw_plugin_conf_error(pc, i, "out of memory");
    }
    char what[64];
    snprintf(what, sizeof(what), "JWKS key %zu", n);
    if (strcmp(kty, "oct") == 0) {
        size_t len = 0;
        unsigned char *k = jwk_bytes(jwk, "k", &len);
        if (k == NULL || !alg_is_hmac(alg)) {
            free(kid);
            free(k);
            return sw_plugin_conf_error(pc, i,
                                        "%s: an \"oct\" key needs \"k\" and "
                                        "an HS algorithm",
                                        what);
        }
        k[len] = '\0'; /* the buffer has room: see jwk_bytes */
        if (jwt_key_add(rt, alg, kid, k, len) != SW_OK) {
            return sw_plugin_conf_error(pc, i, "out of memory");
        }
        return SW_OK;
    }
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "RSA") == 0) {
        pkey = jwk_rsa(jwk);
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        pkey = crv != NULL ? jwk_ec(jwk, crv) : NULL;
    } else {
        free(kid);
        return sw_plugin_conf_error(pc, i, "%s: unsupported \"kty\" \"%s\"",
                                    what, kty);
    }
    if (pkey == NULL) {
        free(kid);
        return sw_plugin_conf_error(pc, i, "%s: bad %s key parameters", what,
                                    kty);
    }
    int st = add_pkey(pc, i, rt, pkey, alg, kid, what);
    EVP_PKEY_free(pkey);
    return st;
}

int
jwt_keys_jwks(struct sw_plugin_conf *pc, size_t i, struct jwt_route *rt)
{
    unsigned char *buf;
    size_t len;
    const char *path = sw_plugin_conf_arg(pc, i, 0);
    int st = read_file(pc, i, path, &buf, &len);
    if (st != SW_OK) {
        return st;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, len, 0, &jerr);
    free(buf);
    if (root == NULL) {
        return sw_plugin_conf_error(pc, i, "%s: bad JSON at line %d: %s", path,
                                    jerr.line, jerr.text);
    }
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        json_decref(root);
        return sw_plugin_conf_error(pc, i, "%s: no \"keys\" array", path);
    }
    size_t before = rt->nkeys;
    for (size_t n = 0; n < json_array_size(keys) && st == SW_OK; n++) {
        st = jwks_key(pc, i, rt, json_array_get(keys, n), n);
    }
    json_decref(root);
    if (st == SW_OK && rt->nkeys == before) {
        st = sw_plugin_conf_error(pc, i, "%s: no signature key", path);
    }
    return st;
}
