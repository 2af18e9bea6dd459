/*
 * plugin_jwt_test.c - the jwt_auth plugin in the real daemon, against tokens
 * made by a third-party library (npm jsonwebtoken, tests/js/jwt_tokens.js)
 * with keys made by `openssl genpkey`:
 *
 *   curl-like requests (net.h) / npm ws (tests/js/jwt_ws.js)
 *        --> shockwave + jwt_auth.so (tests/conf/plugin_jwt.conf)
 *        --> swload echo (lists the headers it received)
 *
 * main() makes the keys, secrets, JWKS and tokens once into a folder every
 * forked test reads; each test starts its own daemon and backend. Covered:
 * valid tokens of every algorithm (and the claim header arriving while the
 * client's forged one does not), expiry with and without leeway, nbf, no
 * exp, wrong key, alg none, HS256 keyed with the RSA key's PEM against an
 * RS256 route (the confusion attack), aud/iss, token in query and cookie,
 * missing and malformed tokens, JWKS by kid, reload of a changed secret
 * file and JWKS, config errors with file:line in `shockwave -t`, and a
 * WebSocket route (npm ws); last, jwt_auth in front of ratelimit keyed on
 * the jwt_sub variable it sets (tests/conf/plugin_jwt_rl.conf).
 * Algorithms: HS256/384/512, RS256/512, ES256/384.
 *
 * Needs openssl and node with tests/js/node_modules (scripts/deps.sh); a
 * missing piece fails the test with a message saying so.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <shockwave/core.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000
#define LITERAL "literal-secret-0123456789abcdef0123456789abcdef"
#define SECRET_A "secret-a-0123456789abcdef0123456789"
#define SECRET_B "secret-b-0123456789abcdef0123456789"

static char prep_error[512]; /* why main() could not make the tokens */
static char keydir[512];     /* keys, secrets, jwks.json (made by main) */
static char node_bin[512];   /* node on PATH */
static char plugin_so[600];  /* the built module */
static struct {
    char name[32]; /* as printed by jwt_tokens.js */
    char *value;   /* owned: the token */
} toks[40];
static size_t ntoks;

static struct sw_test_proc be; /* swload echo "b1" */
static int be_port;            /* its port */
static struct sw_test_gw gw;   /* the daemon */
static char rl_path[600];      /* the /rl/ route's secret file */
static char jrl_path[600];     /* the /jrl/ route's JWKS file */

/* ---- preparation (main, before any test) -------------------------------- */

static bool
run_ok(char *const argv[])
{
    char *out = NULL;
    int rc = sw_test_run(argv, 60000, &out);
    if (rc != 0) {
        snprintf(prep_error, sizeof(prep_error), "%s exit %d: %.300s", argv[0],
                 rc, out != NULL ? out : "");
    }
    free(out);
    return rc == 0;
}

static bool
write_in(const char *dir, const char *file, const char *text)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    return sw_test_write_file(p, text);
}

/* openssl genpkey (and pkey -pubout) into keydir. */
static bool
make_keys(void)
{
    char openssl[512], key[700], pub[700];
    if (!sw_test_which("openssl", openssl, sizeof(openssl))) {
        snprintf(prep_error, sizeof(prep_error), "openssl is not on PATH");
        return false;
    }
    static const char *const kinds[][3] = {
        {"rsa", "RSA", "rsa_keygen_bits:2048"},
        {"rsa_other", "RSA", "rsa_keygen_bits:2048"},
        {"ec", "EC", "ec_paramgen_curve:P-256"},
        {"ec384", "EC", "ec_paramgen_curve:P-384"},
    };
    for (size_t i = 0; i < SW_NELEMS(kinds); i++) {
        snprintf(key, sizeof(key), "%s/%s.key", keydir, kinds[i][0]);
        snprintf(pub, sizeof(pub), "%s/%s.pub", keydir, kinds[i][0]);
        char *gen[] = {
            openssl,    "genpkey",           "-algorithm", (char *)kinds[i][1],
            "-pkeyopt", (char *)kinds[i][2], "-out",       key,
            NULL};
        char *out[] = {openssl,   "pkey", "-in", key,
                       "-pubout", "-out", pub,   NULL};
        if (!run_ok(gen) || !run_ok(out)) {
            return false;
        }
    }
    /* secret files end in a newline, which is not part of the secret */
    return write_in(keydir, "secret_a.txt", SECRET_A "\n") &&
           write_in(keydir, "secret_b.txt", SECRET_B "\n") &&
           write_in(keydir, "secret_lit.txt", LITERAL);
}

/* node tests/js/jwt_tokens.js keydir: the "NAME TOKEN" lines into toks. */
static bool
make_tokens(void)
{
    if (!sw_test_which("node", node_bin, sizeof(node_bin))) {
        snprintf(prep_error, sizeof(prep_error),
                 "node is not on PATH (Node 20 is required)");
        return false;
    }
    char script[600], mod[600];
    struct stat sb;
    snprintf(script, sizeof(script), "%s/tests/js/jwt_tokens.js",
             sw_test_env("SW_SOURCE_ROOT"));
    snprintf(mod, sizeof(mod), "%s/tests/js/node_modules/jsonwebtoken",
             sw_test_env("SW_SOURCE_ROOT"));
    if (stat(mod, &sb) != 0) {
        snprintf(prep_error, sizeof(prep_error),
                 "npm jsonwebtoken is not installed in tests/js: run "
                 "scripts/deps.sh (or npm install in tests/js)");
        return false;
    }
    char *argv[] = {node_bin, script, keydir, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 60000, &out);
    if (rc != 0 || strstr(out, "\ndone") == NULL) {
        snprintf(prep_error, sizeof(prep_error),
                 "jwt_tokens.js exit %d: %.300s", rc, out != NULL ? out : "");
        free(out);
        return false;
    }
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save);
         line != NULL && ntoks < SW_NELEMS(toks);
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (sp != NULL && (size_t)(sp - line) < sizeof(toks[0].name)) {
            memcpy(toks[ntoks].name, line, (size_t)(sp - line));
            toks[ntoks].value = strdup(sp + 1);
            ntoks++;
        }
    }
    free(out);
    return true;
}

static const char *
tok(const char *name)
{
    for (size_t i = 0; i < ntoks; i++) {
        if (strcmp(toks[i].name, name) == 0) {
            return toks[i].value;
        }
    }
    ck_abort_msg("jwt_tokens.js made no token \"%s\"", name);
    return NULL;
}

/* ---- per test ------------------------------------------------------------ */

/* Copy keydir/name to path. */
static void
copy_file(const char *name, const char *path)
{
    char src[700];
    snprintf(src, sizeof(src), "%s/%s", keydir, name);
    char *argv[] = {"/bin/cp", src, (char *)path, NULL};
    ck_assert_int_eq(sw_test_run(argv, 10000, NULL), 0);
}

static void
setup(void)
{
    ck_assert_msg(prep_error[0] == '\0', "%s", prep_error);
    snprintf(rl_path, sizeof(rl_path), "%s/rl_secret.txt", sw_test_tmpdir());
    ck_assert(sw_test_write_file(rl_path, SECRET_A "\n"));
    snprintf(jrl_path, sizeof(jrl_path), "%s/jwks.json", sw_test_tmpdir());
    copy_file("jwks_ec.json", jrl_path);
    ck_assert(sw_test_backend_start(&be, "b1", &be_port));
    const char *kv[] = {"B1",     sw_test_itoa(be_port),
                        "PLUGIN", plugin_so,
                        "DIR",    keydir,
                        "RL",     rl_path,
                        "LIT",    LITERAL,
                        "JRL",    jrl_path,
                        NULL};
    ck_assert(sw_test_gw_start(&gw, "plugin_jwt.conf", kv));
}

static void
teardown(void)
{
    sw_test_gw_teardown(&gw, &be);
}

/* GET path with extra header lines (each ending in CRLF); the response. */
static void
get(const char *path, const char *headers, struct sw_test_resp *r)
{
    char *req = NULL;
    ck_assert(asprintf(&req,
                       "GET %s HTTP/1.1\r\nHost: app.test\r\n%s"
                       "Connection: close\r\n\r\n",
                       path, headers != NULL ? headers : "") > 0);
    ck_assert_int_eq(sw_test_http_once(gw.port, req, r), 1);
    free(req);
}

/* GET path with "Authorization: Bearer <token name>"; the status. */
static int
bearer(const char *path, const char *name, struct sw_test_resp *r)
{
    char *h = NULL;
    ck_assert(asprintf(&h, "Authorization: Bearer %s\r\n", tok(name)) > 0);
    get(path, h, r);
    free(h);
    return r->status;
}

static void
accepted(const char *path, const char *name)
{
    struct sw_test_resp r;
    int st = bearer(path, name, &r);
    ck_assert_msg(st == 200, "%s with %s: %d\n%s", path, name, st, r.head);
    sw_test_resp_free(&r);
}

/* 401 with an invalid_token challenge naming `desc`, and a log line with
 * the reason. */
static void
refused(const char *path, const char *name, const char *reason,
        const char *desc)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    struct sw_test_resp r;
    int st = bearer(path, name, &r);
    ck_assert_msg(st == 401, "%s with %s: %d (want 401)\n%s", path, name, st,
                  r.head);
    const char *wa = sw_test_resp_header(&r, "WWW-Authenticate");
    ck_assert_msg(wa != NULL && strncmp(wa, "Bearer realm=\"", 14) == 0 &&
                      strstr(wa, "error=\"invalid_token\"") != NULL &&
                      strstr(wa, desc) != NULL,
                  "%s with %s: WWW-Authenticate %s", path, name,
                  wa != NULL ? wa : "(none)");
    sw_test_resp_free(&r);
    char needle[80];
    snprintf(needle, sizeof(needle), "token refused (%s)", reason);
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, needle, mark, 5000) >= 0,
                  "no \"%s\" logged for %s on %s", needle, name, path);
}

START_TEST(valid_token_and_claim_headers)
{
    struct sw_test_resp r;
    /* the client's own X-User must not reach the backend */
    char *h = NULL;
    ck_assert(asprintf(&h,
                       "X-User: mallory\r\nX-Tenant: 1\r\n"
                       "Authorization: bearer %s\r\nX-User: eve\r\n",
                       tok("hs256")) > 0);
    get("/hs/a", h, &r);
    free(h);
    ck_assert_msg(r.status == 200, "%d\n%s", r.status, r.head);
    char *user = sw_test_echo_header(r.body, "X-User");
    char *tenant = sw_test_echo_header(r.body, "X-Tenant");
    ck_assert_str_eq(user != NULL ? user : "(none)", "alice");
    ck_assert_str_eq(tenant != NULL ? tenant : "(none)", "42");
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-User"), 1);
    ck_assert_int_eq(sw_test_echo_count(r.body, "X-Tenant"), 1);
    free(user);
    free(tenant);
    sw_test_resp_free(&r);
    /* every algorithm, each on a route pinned to it */
    accepted("/hs384/", "hs384");
    accepted("/hs512/", "hs512");
    accepted("/rs/", "rs256");
    accepted("/es/", "es256");
    accepted("/rs512-es384/", "rs512");
    accepted("/rs512-es384/", "es384");
    refused("/rs512-es384/", "rs256", "wrong_alg", "algorithm");
    refused("/rs512-es384/", "es256", "wrong_alg", "algorithm");
    /* aud as an array holding one of the accepted audiences */
    accepted("/hs/", "aud_array");
    ck_assert_int_ge(sw_test_metric(gw.admin_port,
                                    "shockwave_plugin_jwt_auth_accepted_total"),
                     6);
}
END_TEST

START_TEST(time_claims)
{
    refused("/hs/", "expired", "expired", "expired");
    /* the same token within a 10 minute leeway */
    accepted("/leeway/", "expired");
    refused("/hs/", "nbf_future", "not_yet_valid", "not yet valid");
    refused("/leeway/", "nbf_future", "not_yet_valid", "not yet valid");
    /* require_exp is on by default */
    refused("/hs/", "no_exp", "no_exp", "no expiry");
    accepted("/noexp/", "no_exp");
    ck_assert_int_ge(sw_test_metric(gw.admin_port,
                                    "shockwave_plugin_jwt_auth_rejected_"
                                    "expired_total"),
                     1);
}
END_TEST

START_TEST(wrong_key_and_alg)
{
    static const char *const cases[][4] = {
        /* path, token, logged reason, error_description word */
        {"/hs/", "hs256_wrong_key", "bad_signature", "signature"},
        {"/rs/", "rs256_wrong_key", "bad_signature", "signature"},
        /* unsigned tokens, wherever they are sent */
        {"/hs/", "none", "wrong_alg", "algorithm"},
        {"/rs/", "none", "wrong_alg", "algorithm"},
        {"/jwks/", "none", "wrong_alg", "algorithm"},
        /* a route pinned to HS384 refuses HS256, an RS256 route ES256 */
        {"/hs384/", "hs256", "wrong_alg", "algorithm"},
        {"/rs/", "es256", "wrong_alg", "algorithm"},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        refused(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
    }
}
END_TEST

START_TEST(confusion_attack)
{
    /* HMAC keyed with the RSA public key's PEM is a valid token where the
     * PEM is the secret ... */
    accepted("/pem-as-secret/", "confusion_trimmed");
    /* ... but the RS256 route, holding that very PEM, never uses it as an
     * HMAC key: the alg is refused before any verification. */
    refused("/rs/", "confusion", "wrong_alg", "algorithm");
    refused("/rs/", "confusion_trimmed", "wrong_alg", "algorithm");
    refused("/jwks/", "confusion", "bad_signature", "signature");
}
END_TEST

START_TEST(audience_and_issuer)
{
    refused("/hs/", "aud_wrong", "wrong_aud", "audience");
    refused("/hs/", "iss_wrong", "wrong_iss", "issuer");
    /* routes without audience/issuer do not check them */
    accepted("/leeway/", "aud_wrong");
}
END_TEST

START_TEST(query_and_cookie)
{
    struct sw_test_resp r;
    char *path = NULL, *h = NULL;
    ck_assert(asprintf(&path, "/hs/q?x=1&access_token=%s&y=2", tok("hs256")) >
              0);
    get(path, NULL, &r);
    ck_assert_msg(r.status == 200, "query: %d\n%s", r.status, r.head);
    sw_test_resp_free(&r);
    free(path);
    ck_assert(asprintf(&h, "Cookie: a=b; jwt=%s; c=d\r\n", tok("hs256")) > 0);
    get("/hs/c", h, &r);
    ck_assert_msg(r.status == 200, "cookie: %d\n%s", r.status, r.head);
    sw_test_resp_free(&r);
    free(h);
    /* the first place with a token wins: a bad header beats a good cookie */
    ck_assert(asprintf(&h, "Authorization: Bearer %s\r\nCookie: jwt=%s\r\n",
                       tok("hs256_wrong_key"), tok("hs256")) > 0);
    get("/hs/c", h, &r);
    ck_assert_int_eq(r.status, 401);
    sw_test_resp_free(&r);
    free(h);
    /* a route without `token query` ignores the argument */
    ck_assert(asprintf(&path, "/rs/?access_token=%s", tok("rs256")) > 0);
    get(path, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    sw_test_resp_free(&r);
    free(path);
}
END_TEST

START_TEST(missing_and_malformed)
{
    long mark = sw_test_proc_log_size(&gw.proc);
    const char *cases[] = {NULL, "Authorization: Basic YWxhZGRpbjpvcGVu\r\n",
                           "Authorization: Bearer \r\n"};
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_test_resp r;
        get("/hs/", cases[i], &r);
        ck_assert_msg(r.status == 401, "case %zu: %d", i, r.status);
        const char *wa = sw_test_resp_header(&r, "WWW-Authenticate");
        /* RFC 6750 3.1: no error code when the request had no token */
        ck_assert_str_eq(wa != NULL ? wa : "(none)",
                         "Bearer realm=\"shockwave-test\"");
        ck_assert(strstr(r.body, "token") != NULL);
        sw_test_resp_free(&r);
    }
    ck_assert(sw_test_proc_wait_log(&gw.proc, "token refused (missing)", mark,
                                    5000) >= 0);
    /* malformed tokens are invalid ones: two segments, a bad byte, a
     * header that is not JSON ("{not json"), a payload that is not an
     * object ("[1]"), an unknown critical extension */
    static const char *const malformed[] = {
        "Authorization: Bearer not.a-token\r\n",
        "Authorization: Bearer a.b!.c\r\n",
        "Authorization: Bearer e25vdCBqc29u.e30.c2ln\r\n",
    };
    for (size_t i = 0; i < SW_NELEMS(malformed); i++) {
        struct sw_test_resp r;
        get("/hs/", malformed[i], &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert(strstr(sw_test_resp_header(&r, "WWW-Authenticate"),
                         "error_description=\"the token is malformed\"") !=
                  NULL);
        sw_test_resp_free(&r);
    }
    refused("/noexp/", "payload_array", "malformed", "malformed");
    refused("/hs/", "crit", "malformed", "malformed");
    refused("/hs/", "typ_at_jwt", "malformed", "malformed");
    /* every request of a keep-alive connection is checked */
    struct sw_test_conn c;
    struct sw_test_resp r;
    ck_assert(sw_test_conn_open(&c, gw.port));
    char *req = NULL;
    ck_assert(asprintf(&req,
                       "GET /hs/1 HTTP/1.1\r\nHost: app.test\r\n"
                       "Authorization: Bearer %s\r\n\r\n",
                       tok("hs256")) > 0);
    ck_assert_int_eq(sw_test_conn_request(&c, req, &r), 1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    free(req);
    ck_assert_int_eq(
        sw_test_conn_request(&c, "GET /hs/2 HTTP/1.1\r\nHost: app.test\r\n\r\n",
                             &r),
        1);
    ck_assert_int_eq(r.status, 401);
    sw_test_resp_free(&r);
    sw_test_conn_close(&c);
    ck_assert_int_ge(sw_test_metric(gw.admin_port,
                                    "shockwave_plugin_jwt_auth_rejected_"
                                    "missing_total"),
                     3);
    ck_assert_int_ge(sw_test_metric(gw.admin_port,
                                    "shockwave_plugin_jwt_auth_rejected_total"),
                     4);
}
END_TEST

START_TEST(jwks_by_kid)
{
    struct sw_test_resp r;
    ck_assert_int_eq(bearer("/jwks/", "kid_rsa", &r), 200);
    char *user = sw_test_echo_header(r.body, "X-User");
    ck_assert_str_eq(user != NULL ? user : "(none)", "alice");
    free(user);
    sw_test_resp_free(&r);
    accepted("/jwks/", "kid_ec");
    accepted("/jwks/", "kid_oct");
    /* no kid: the keys pinned to the token's alg */
    accepted("/jwks/", "rs256");
    refused("/jwks/", "kid_unknown", "unknown_kid", "key id");
    /* kid of the RSA key, alg ES256 (signed with the EC key) */
    refused("/jwks/", "kid_rsa_es256", "wrong_alg", "algorithm");
    /* the "use": "enc" key of the set is not a signature key */
    refused("/jwks/", "rs256_wrong_key", "bad_signature", "signature");
}
END_TEST

START_TEST(reload_changed_secret)
{
    accepted("/rl/", "hs256");
    refused("/rl/", "hs256_b", "bad_signature", "signature");
    ck_assert(sw_test_write_file(rl_path, SECRET_B "\n"));
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc, "reloaded", mark, 5000) >= 0,
                  "no \"reloaded\" after SIGHUP");
    refused("/rl/", "hs256", "bad_signature", "signature");
    accepted("/rl/", "hs256_b");
    accepted("/jrl/", "kid_ec");
    refused("/jrl/", "kid_rsa", "unknown_kid", "key id");
    /* a JWKS that gained a key */
    copy_file("jwks.json", jrl_path);
    mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reloaded", mark, 5000) >= 0);
    accepted("/jrl/", "kid_rsa");
    accepted("/jrl/", "kid_ec");
    /* a secret file that vanished fails the reload, the old key stays */
    ck_assert_int_eq(unlink(rl_path), 0);
    mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "reload failed", mark, 5000) >=
              0);
    accepted("/rl/", "hs256_b");
}
END_TEST

/* `shockwave -t` on plugin_jwt_bad.conf with line 12 = bad: exit 1, and
 * "FILE:LINE:" with `msg` in the output. */
static void
conf_error(const char *bad, int line, const char *msg)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/plugin_jwt_bad.conf", sw_test_tmpdir());
    const char *kv[] = {"PORT", "1", "PLUGIN", plugin_so, "BAD", bad, NULL};
    ck_assert(sw_test_conf_render("plugin_jwt_bad.conf", path, kv));
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-t", "-c", path,
                    NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 10000, &out);
    char where[800];
    snprintf(where, sizeof(where), "%s:%d:", path, line);
    ck_assert_msg(rc == 1 && strstr(out, where) != NULL &&
                      strstr(out, msg) != NULL,
                  "\"%s\": exit %d, want \"%s\" and \"%s\" in:\n%s", bad, rc,
                  where, msg, out);
    free(out);
}

START_TEST(config_errors)
{
    char bad[900], json[700];
    conf_error("secret \"x\" HS999;", 12, "not \"HS999\"");
    conf_error("secret \"x\" RS256;", 12, "not \"RS256\"");
    snprintf(bad, sizeof(bad), "public_key %s/rsa.pub HS256;", keydir);
    conf_error(bad, 12, "not \"HS256\"");
    snprintf(bad, sizeof(bad), "public_key %s/rsa.pub ES256;", keydir);
    conf_error(bad, 12, "not an EC key");
    snprintf(bad, sizeof(bad), "public_key %s/secret_a.txt RS256;", keydir);
    conf_error(bad, 12, "not a PEM public key");
    conf_error("secret_file /nonexistent/jwt.key;", 12, "cannot open");
    snprintf(json, sizeof(json), "%s/bad.json", sw_test_tmpdir());
    ck_assert(sw_test_write_file(json, "{\"keys\": [\n  {\"kty\": \n"));
    snprintf(bad, sizeof(bad), "jwks %s;", json);
    conf_error(bad, 12, "bad JSON at line 3");
    ck_assert(sw_test_write_file(json, "{\"keys\": [{\"kty\": \"oct\", "
                                       "\"k\": \"c2VjcmV0\"}]}"));
    conf_error(bad, 12, "needs \"alg\"");
    conf_error("token body x;", 12, "not \"body\"");
    conf_error("leeway soon;", 12, "leeway");
    /* no key at all: the error is at the block's `plugin` line */
    conf_error("", 11, "no key");
}
END_TEST

/* node jwt_ws.js URL TOKEN N, N messages on /ws/echo: its exit code,
 * output in *out. A NULL token sends none. */
static int
ws_client(const char *token, int n, char **out)
{
    char script[600], url[128], count[16];
    snprintf(script, sizeof(script), "%s/tests/js/jwt_ws.js",
             sw_test_env("SW_SOURCE_ROOT"));
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws/echo", gw.port);
    snprintf(count, sizeof(count), "%d", n);
    char *argv[] = {node_bin, script, url, (char *)(token != NULL ? token : ""),
                    count,    NULL};
    return sw_test_run(argv, 30000, out);
}

START_TEST(websocket_route)
{
    char *out = NULL;
    int rc = ws_client(tok("hs256"), 1, &out);
    ck_assert_msg(rc == 0 && strstr(out, "ok echo") != NULL,
                  "valid token: exit %d\n%s", rc, out);
    free(out);
    /* expired, unsigned, wrong key, and no token at all (NULL) */
    const char *bad[] = {tok("expired"), tok("none"), tok("hs256_b"), NULL};
    for (size_t i = 0; i < SW_NELEMS(bad); i++) {
        rc = ws_client(bad[i], 1, &out);
        ck_assert_msg(rc == 2 && strstr(out, "status 401") != NULL &&
                          strstr(out, "www-authenticate Bearer realm=") != NULL,
                      "token %zu: exit %d\n%s", i, rc, out);
        free(out);
    }
}
END_TEST

/* GET /http/ with a token (by name) on the ratelimit configuration. */
static int
status_of(const char *name)
{
    struct sw_test_resp r;
    int st = bearer("/http/", name, &r);
    sw_test_resp_free(&r);
    return st;
}

START_TEST(with_ratelimit)
{
    /* the fixture's daemon is replaced by one with jwt_auth + ratelimit */
    int st;
    ck_assert(sw_test_gw_stop_clean(&gw, &st));
    char rl_so[600];
    sw_test_plugin_so("ratelimit", rl_so, sizeof(rl_so));
    const char *kv[] = {
        "B1",   sw_test_itoa(be_port), "PLUGIN", plugin_so, "DIR",
        keydir, "RATELIMIT",           rl_so,    NULL};
    ck_assert(sw_test_gw_start(&gw, "plugin_jwt_rl.conf", kv));
    /* buckets per user (jwt_sub): alice's third request is over, bob,
     * from the same address, still has his two */
    ck_assert_int_eq(status_of("hs256"), 200);
    ck_assert_int_eq(status_of("hs256"), 200);
    ck_assert_int_eq(status_of("hs256"), 429);
    ck_assert_int_eq(status_of("hs256_bob"), 200);
    ck_assert_int_eq(status_of("hs256_bob"), 200);
    /* jwt_auth comes first: no token is 401, not a ratelimit matter */
    struct sw_test_resp r;
    get("/http/", NULL, &r);
    ck_assert_int_eq(r.status, 401);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_metric(gw.admin_port,
                                    "shockwave_plugin_ratelimit_limited_total"),
                     1);
    /* WebSocket: two messages per session pass, the third closes 1008 */
    char *out = NULL;
    int rc = ws_client(tok("hs256"), 2, &out);
    ck_assert_msg(rc == 0, "2 messages: exit %d\n%s", rc, out);
    free(out);
    rc = ws_client(tok("hs256"), 3, &out);
    ck_assert_msg(rc == 3 && strstr(out, "echoed 2") != NULL &&
                      strstr(out, "close 1008") != NULL,
                  "3 messages: exit %d\n%s", rc, out);
    free(out);
    rc = ws_client(tok("expired"), 1, &out);
    ck_assert_msg(rc == 2 && strstr(out, "status 401") != NULL,
                  "expired: exit %d\n%s", rc, out);
    free(out);
}
END_TEST

static Suite *
plugin_jwt_suite(void)
{
    Suite *s = suite_create("plugin_jwt");
    TCase *tc = tcase_create("jwt_auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, valid_token_and_claim_headers);
    tcase_add_test(tc, time_claims);
    tcase_add_test(tc, wrong_key_and_alg);
    tcase_add_test(tc, confusion_attack);
    tcase_add_test(tc, audience_and_issuer);
    tcase_add_test(tc, query_and_cookie);
    tcase_add_test(tc, missing_and_malformed);
    tcase_add_test(tc, jwks_by_kid);
    tcase_add_test(tc, reload_changed_secret);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, websocket_route);
    tcase_add_test(tc, with_ratelimit);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    sw_test_plugin_so("jwt_auth", plugin_so, sizeof(plugin_so));
    const char *base = getenv("TMPDIR");
    snprintf(keydir, sizeof(keydir), "%s/swjwt.XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(keydir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (make_keys()) {
        make_tokens();
    }
    int rc = sw_test_run_suite(plugin_jwt_suite());
    char *rm[] = {"/bin/rm", "-rf", keydir, NULL};
    sw_test_run(rm, 10000, NULL);
    for (size_t i = 0; i < ntoks; i++) {
        free(toks[i].value);
    }
    return rc;
}
