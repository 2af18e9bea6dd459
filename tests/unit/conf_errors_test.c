/*
 * conf_errors_test.c - Check suite for lib/conf's refusals: every error
 * message with its exact FILE:LINE:COL, suggestions, semantic errors, the
 * error cap and a short error buffer, then loading from files: includes,
 * include cycles and depth, and errors that name the included file.
 *
 * Include tests write their files into a fresh temporary folder, removed at
 * the end of each test.
 */
#include <shockwave/conf.h>
#include <shockwave/log.h>

#include "conf_cases.h"
#include "support.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------ */

static const struct {
    const char *text;
    const char *want; /* the whole error text */
} error_vectors[] = {
    {"listn 127.0.0.1:8080;\n" BASE,
     "t.conf:1:1: unknown directive \"listn\", did you mean \"listen\"?"},
    {"    workerz 4;\n" BASE,
     "t.conf:1:5: unknown directive \"workerz\", did you mean \"workers\"?"},
    {"frobnicate 1;\n" BASE, "t.conf:1:1: unknown directive \"frobnicate\""},
    {BASE "route {\n  upstream demo;\n  websockt on;\n}\n",
     "t.conf:6:3: unknown directive \"websockt\", did you mean "
     "\"websocket\"?"},
    {BASE "upstream b {\n  server 127.0.0.1:1;\n  keepalve 2;\n}\n",
     "t.conf:6:3: unknown directive \"keepalve\", did you mean "
     "\"keepalive\"?"},
    {"server 127.0.0.1:80;\n" BASE,
     "t.conf:1:1: \"server\" is not allowed at the top level, only inside "
     "upstream { }"},
    {"path_prefix /x;\n" BASE,
     "t.conf:1:1: \"path_prefix\" is not allowed at the top level, only "
     "inside route { }"},
    {BASE "route {\n  upstream demo;\n  listen 127.0.0.1:1;\n}\n",
     "t.conf:6:3: \"listen\" is not allowed inside route { }, only at the "
     "top level"},
    {"workers 2;\nworkers 3;\n" BASE,
     "t.conf:2:1: duplicate \"workers\" directive"},
    {BASE "route {\n  upstream demo;\n  path_prefix /a;\n  path_prefix /b;\n}"
          "\n",
     "t.conf:7:3: duplicate \"path_prefix\" directive"},
    {"workers many;\n" BASE,
     "t.conf:1:9: \"workers\" expects \"auto\" or a number from 1 to 1024, "
     "got \"many\""},
    {"workers 0;\n" BASE,
     "t.conf:1:9: \"workers\" expects \"auto\" or a number from 1 to 1024, "
     "got \"0\""},
    {"buffer_size 12q;\n" BASE,
     "t.conf:1:13: invalid size \"12q\" for \"buffer_size\": expected a "
     "number with an optional k, m or g suffix"},
    {"buffer_size 16;\n" BASE,
     "t.conf:1:13: \"buffer_size\" must be from 1k to 64m, got \"16\""},
    {"ws_pipe_size 2g;\n" BASE,
     "t.conf:1:14: \"ws_pipe_size\" must be from 4k to 1g, got \"2g\""},
    {"keepalive_timeout 5x;\n" BASE,
     "t.conf:1:19: invalid duration \"5x\" for \"keepalive_timeout\": "
     "expected a number with a ms, s, m, h or d suffix"},
    {"send_timeout 8d;\n" BASE,
     "t.conf:1:14: \"send_timeout\" must be from 1ms to 7d, got \"8d\""},
    {"max_headers 0;\n" BASE,
     "t.conf:1:13: \"max_headers\" must be from 1 to 10000, got \"0\""},
    {"max_headers 1x;\n" BASE,
     "t.conf:1:13: invalid number \"1x\" for \"max_headers\": expected "
     "digits"},
    {"workers 2\n" BASE, "t.conf:1:10: expected \";\" or \"{\" after \"2\""},
    {BASE "route {\n  upstream demo }\n",
     "t.conf:5:16: expected \";\" or \"{\" after \"demo\""},
    {"error_log \"abc;\n" BASE,
     "t.conf:1:11: unterminated string: missing the closing quote"},
    {"error_log \"a\\qb\";\n" BASE,
     "t.conf:1:13: unknown escape in string: only \\\" and \\\\ are "
     "allowed"},
    {"error_log off;\n" BASE,
     "t.conf:1:11: the error log cannot be turned off: use \"stderr\" or a "
     "path"},
    {"access_log \"\";\n" BASE,
     "t.conf:1:12: \"access_log\" needs a path, \"stderr\" or \"off\""},
    {"log_level loud;\n" BASE,
     "t.conf:1:11: \"log_level\" expects error, warn, info or debug, got "
     "\"loud\""},
    {"listen 127.0.0.1;\n" BASE,
     "t.conf:1:8: expected HOST:PORT, got \"127.0.0.1\" (no port)"},
    {"listen :8081;\n" BASE,
     "t.conf:1:8: expected HOST:PORT, got \":8081\" (no host)"},
    {"listen 127.0.0.1:99999;\n" BASE,
     "t.conf:1:18: invalid port \"99999\": expected 1 to 65535"},
    {"listen 127.0.0.1:0;\n" BASE,
     "t.conf:1:18: invalid port \"0\": expected 1 to 65535"},
    {"listen ::1:8081;\n" BASE,
     "t.conf:1:8: an IPv6 address needs brackets, as in \"[::1]:8080\", got "
     "\"::1:8081\""},
    {"listen [::1:8081;\n" BASE,
     "t.conf:1:8: missing \"]\" in address \"[::1:8081\""},
    {"listen [::1]8081;\n" BASE,
     "t.conf:1:13: expected \":PORT\" after \"]\" in \"[::1]8081\""},
    {"listen 127.0.0.1:8081 backlog=x;\n" BASE,
     "t.conf:1:31: invalid number \"x\" for \"backlog\": expected digits"},
    {"listen 127.0.0.1:8081 reuseport;\n" BASE,
     "t.conf:1:23: unknown option \"reuseport\" for \"listen\": expected "
     "backlog=N, tls or proxy_protocol"},
    {"listen 127.0.0.1:8080;\n" BASE,
     "t.conf:2:8: duplicate listen address \"127.0.0.1:8080\""},
    {"upstream demo { server 127.0.0.1:9001; }\n" BASE,
     "t.conf:3:10: duplicate upstream \"demo\", first defined at t.conf:1:10"},
    {"upstream empty {\n}\n" BASE,
     "t.conf:1:1: upstream \"empty\" has no \"server\""},
    {"upstream b { server 127.0.0.1:9001 weight=0; }\n" BASE,
     "t.conf:1:43: \"weight\" must be from 1 to 1000, got \"0\""},
    {"upstream b { server 127.0.0.1:9001 weight=heavy; }\n" BASE,
     "t.conf:1:43: invalid number \"heavy\" for \"weight\": expected digits"},
    {"upstream b { server 127.0.0.1:9001 wieght=2; }\n" BASE,
     "t.conf:1:36: unknown option \"wieght=2\" for \"server\": expected "
     "weight=N, max_fails=N, fail_timeout=TIME, tls or backup"},
    {"upstream b { server 127.0.0.1:9001 fail_timeout=soon; }\n" BASE,
     "t.conf:1:49: invalid duration \"soon\" for \"fail_timeout\": expected "
     "a number with a ms, s, m, h or d suffix"},
    {"upstream b { server *:9001; }\n" BASE,
     "t.conf:1:21: \"*\" is only for listen addresses, got \"*:9001\""},
    {"upstream b { server 127.0.0.1:1; balance random; }\n" BASE,
     "t.conf:1:42: \"balance\" expects round_robin, least_conn, \"hash "
     "$remote_addr\" or \"hash header NAME\""},
    {"upstream b { server 127.0.0.1:1; balance hash header \"X Y\"; }\n" BASE,
     "t.conf:1:56: invalid character in header name \"X Y\": expected "
     "letters, digits or !#$%&'*+-.^_`|~"},
    {BASE "route {\n    upstream dmeo;\n}\n",
     "t.conf:5:14: unknown upstream \"dmeo\", did you mean \"demo\"?"},
    {BASE "route {\n    upstream elsewhere;\n}\n",
     "t.conf:5:14: unknown upstream \"elsewhere\""},
    {BASE "route {\n    path_prefix /x;\n}\n",
     "t.conf:4:1: route has neither \"upstream\" nor \"return\""},
    {BASE "route {\n    upstream demo;\n    return 204;\n}\n",
     "t.conf:4:1: route has both \"upstream\" and \"return\": keep one"},
    {BASE "route { return 99; }\n",
     "t.conf:4:16: invalid status \"99\" for \"return\": expected 200 to 599"},
    {BASE "route { upstream demo; websocket maybe; }\n",
     "t.conf:4:34: \"websocket\" expects \"on\" or \"off\", got \"maybe\""},
    {BASE "route { upstream demo; ws_ping echo; }\n",
     "t.conf:4:32: \"ws_ping\" expects \"local\" or \"forward\", got \"echo\""},
    {BASE "route { upstream demo; ws_max_buffer 10; }\n",
     "t.conf:4:38: \"ws_max_buffer\" must be from 1k to 64m, got \"10\""},
    {BASE "route {\n    upstream demo;\n"
          "    request_header set X-A \"ip=$remote_adr\";\n}\n",
     "t.conf:6:32: unknown variable \"$remote_adr\", did you mean "
     "\"$remote_addr\"?"},
    {BASE "route {\n    upstream demo;\n"
          "    response_header add X-A ${nope}x;\n}\n",
     "t.conf:6:29: unknown variable \"$nope\""},
    {BASE "route { upstream demo; request_header set X-A \"${host\"; }\n",
     "t.conf:4:48: unterminated \"${\" in \"${host\": expected \"}\""},
    {BASE "route { upstream demo; request_header set X-A \"a\nb\"; }\n",
     "t.conf:4:49: control character in header value \"a\nb\""},
    {BASE "route { upstream demo; request_header set X-A; }\n",
     "t.conf:4:24: \"request_header set\" takes a header name and a value"},
    {BASE "route { upstream demo; request_header remove X-A b; }\n",
     "t.conf:4:50: \"request_header remove\" takes a header name"},
    {BASE "route { upstream demo; request_header put X-A b; }\n",
     "t.conf:4:39: \"request_header\" expects set, add or remove, got "
     "\"put\""},
    {BASE "route { upstream demo; request_header set X:A b; }\n",
     "t.conf:4:44: invalid character in header name \"X:A\": expected "
     "letters, digits or !#$%&'*+-.^_`|~"},
    {BASE "route { upstream demo; host example.com:8080; }\n",
     "t.conf:4:29: host \"example.com:8080\" has a port: route hosts match "
     "names only"},
    {BASE "route { upstream demo; host a.*.example.com; }\n",
     "t.conf:4:31: a wildcard host must start with \"*.\", as in "
     "\"*.example.com\""},
    {BASE "route { upstream demo; host \"bad host\"; }\n",
     "t.conf:4:29: invalid host name \"bad host\""},
    {BASE "route { upstream demo; host "
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a123456789a123456789a123456789a123456789a123456789a123456789"
          "a12345678901234567; }\n",
     "t.conf:4:29: invalid host name "
     "\"a123456789a123456789a123456789a123456789a123456789a123456789a123\""},
    {BASE "route { upstream demo; host [::g]; }\n",
     "t.conf:4:29: invalid host name \"[::g]\""},
    {BASE "route { upstream demo; path_prefix api; }\n",
     "t.conf:4:36: \"path_prefix\" must start with \"/\", got \"api\""},
    {BASE "route { upstream demo; path_prefix /a?b; }\n",
     "t.conf:4:38: invalid character in \"path_prefix\": no spaces, "
     "controls, \"?\" or \"#\""},
    {"}\n" BASE, "t.conf:1:1: unexpected \"}\""},
    {"; " BASE, "t.conf:1:1: unexpected \";\": expected a directive"},
    {"{ workers 1; }\n" BASE, "t.conf:1:1: unexpected \"{\": expected a "
                              "directive"},
    {"\"workers\" 1;\n" BASE,
     "t.conf:1:1: expected a directive name, got a quoted string"},
    {BASE "route {\n upstream demo;\n",
     "t.conf:6:1: unexpected end of file, expected \"}\""},
    {"workers;\n" BASE, "t.conf:1:1: \"workers\" takes 1 argument, got 0"},
    {"workers 1 2;\n" BASE, "t.conf:1:11: \"workers\" takes 1 argument, got 2"},
    {"listen 127.0.0.1:8081 backlog=1 tls proxy_protocol x;\n" BASE,
     "t.conf:1:52: \"listen\" takes 1 to 4 arguments, got 5"},
    {BASE "route { upstream demo; host; }\n",
     "t.conf:4:24: \"host\" needs at least 1 argument"},
    {"workers 1 { }\n" BASE,
     "t.conf:1:1: \"workers\" takes no block: expected \";\""},
    {"route;\n" BASE, "t.conf:1:1: \"route\" needs a block: expected \"{\""},
    {"upstream demo { server 127.0.0.1:9000; }\nroute { upstream demo; }\n",
     "t.conf:1:1: no \"listen\" directive: at least one is required"},
    /* a bad listen line is reported once, not also as missing */
    {"listen 127.0.0.1:0;\nupstream demo { server 127.0.0.1:9000; }\n"
     "route { upstream demo; }\n",
     "t.conf:1:18: invalid port \"0\": expected 1 to 65535"},
    {"buffer_size 4k;\n" BASE,
     "t.conf:1:1: max_header_bytes (16384) is larger than buffer_size "
     "(4096): a request head must fit in one buffer"},
    {"max_header_bytes 4k;\nmax_request_line 5k;\n" BASE,
     "t.conf:2:1: max_request_line (5120) is larger than max_header_bytes "
     "(4096)"},
    {"include nothere.conf;\n" BASE,
     "t.conf:1:9: cannot open \"nothere.conf\": No such file or directory"},
    {"workers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18;\n" BASE,
     "t.conf:1:48: too many arguments for \"workers\" (limit 16)"},
    /* TLS */
    {"listen 127.0.0.1:8443 tls;\n" BASE,
     "t.conf:1:1: \"listen ... tls\" needs at least one \"tls_certificate\" "
     "and \"tls_certificate_key\""},
    {"tls_certificate a.pem;\n" BASE,
     "t.conf:1:1: \"tls_certificate\" has no \"tls_certificate_key\": "
     "write one right after it"},
    {"tls_certificate_key a.key;\n" BASE,
     "t.conf:1:1: \"tls_certificate_key\" must follow the "
     "\"tls_certificate\" it belongs to"},
    {"tls_certificate a.pem;\ntls_certificate_key a.key;\n"
     "tls_certificate_key b.key;\n" BASE,
     "t.conf:3:1: the certificate at t.conf:1:1 already has a "
     "\"tls_certificate_key\": start the next pair with "
     "\"tls_certificate\""},
    {"tls_ocsp_response a.der;\n" BASE,
     "t.conf:1:1: \"tls_ocsp_response\" must follow the "
     "\"tls_certificate\" it belongs to"},
    {"tls_protocols TLSv1.1 TLSv1.2;\n" BASE,
     "t.conf:1:15: \"TLSv1.1\" is not supported (RFC 8996 deprecates it): "
     "use TLSv1.2 and TLSv1.3"},
    {"tls_protocols TLSv1.4;\n" BASE,
     "t.conf:1:15: \"tls_protocols\" expects TLSv1.2 and/or TLSv1.3, got "
     "\"TLSv1.4\""},
    {"tls_session_cache lots;\n" BASE,
     "t.conf:1:19: \"tls_session_cache\" expects \"off\" or a session "
     "count from 1 to 1000000 (k and m suffixes allowed), got \"lots\""},
    {"tls_ticket_rotate 10ms;\n" BASE,
     "t.conf:1:19: \"tls_ticket_rotate\" must be from 1s to 7d, got "
     "\"10ms\""},
    {"tls_handshake_timeout never;\n" BASE,
     "t.conf:1:23: invalid duration \"never\" for "
     "\"tls_handshake_timeout\": expected a number with a ms, s, m, h or d "
     "suffix"},
    {"tls_ciphers \"\";\n" BASE,
     "t.conf:1:13: \"tls_ciphers\" needs a non-empty value"},
    {BASE "upstream b {\n  server 127.0.0.1:1 tls;\n  tls_verify maybe;\n}\n",
     "t.conf:6:14: \"tls_verify\" expects \"on\" or \"off\", got "
     "\"maybe\""},
    {BASE "upstream b {\n  server 127.0.0.1:1 tls;\n"
          "  tls_server_name \"a b\";\n}\n",
     "t.conf:6:19: invalid name \"a b\" for \"tls_server_name\""},
    {"tls_verify off;\n" BASE,
     "t.conf:1:1: \"tls_verify\" is not allowed at the top level, only "
     "inside upstream { }"},
    {"tls_certficate a.pem;\n" BASE,
     "t.conf:1:1: unknown directive \"tls_certficate\", did you mean "
     "\"tls_certificate\"?"},
    /* several errors are collected, one per line */
    {"listn 127.0.0.1:8080;\nworkers x;\n" BASE
     "route {\n    upstream nope;\n}\n",
     "t.conf:1:1: unknown directive \"listn\", did you mean \"listen\"?\n"
     "t.conf:2:9: \"workers\" expects \"auto\" or a number from 1 to 1024, "
     "got \"x\"\n"
     "t.conf:7:14: unknown upstream \"nope\""},
};

START_TEST(test_errors)
{
    size_t failed = 0;
    for (size_t i = 0; i < SW_NELEMS(error_vectors); i++) {
        memset(err, 'x', sizeof(err));
        struct sw_conf *cf = load(error_vectors[i].text);
        if (cf != NULL) {
            fprintf(stderr, "case %zu loaded\n", i);
            sw_conf_unref(cf);
            failed++;
        } else if (strcmp(err, error_vectors[i].want) != 0) {
            fprintf(stderr, "case %zu:\n got: %s\nwant: %s\n", i, err,
                    error_vectors[i].want);
            failed++;
        }
    }
    ck_assert_msg(failed == 0, "%zu of %zu error cases failed", failed,
                  SW_NELEMS(error_vectors));
}
END_TEST

START_TEST(test_unresolvable)
{
    struct sw_conf *cf =
        load("upstream b { server no-such-host.invalid:80; }\n" BASE);
    ck_assert_ptr_null(cf);
    const char *want = "t.conf:1:21: cannot resolve \"no-such-host.invalid\" "
                       "in \"no-such-host.invalid:80\": ";
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(test_error_cap)
{
    char text[4096] = "";
    for (int i = 0; i < 30; i++) {
        strcat(text, "bogus;\n");
    }
    strcat(text, BASE);
    ck_assert_ptr_null(load(text));
    size_t lines = 1;
    for (const char *p = err; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    ck_assert_uint_eq(lines, 21);
    ck_assert_ptr_nonnull(strstr(err, "t.conf:20:1: unknown directive "
                                      "\"bogus\"\n"
                                      "t.conf: too many errors (limit 20), "
                                      "stopping"));
    ck_assert_ptr_null(strstr(err, "t.conf:21:1"));
}
END_TEST

START_TEST(test_error_buffer)
{
    char small[16];
    memset(small, 'x', sizeof(small));
    struct sw_conf *cf =
        sw_conf_load_string("listn 1;\n", "t.conf", NULL, small, sizeof(small));
    ck_assert_ptr_null(cf);
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
    ck_assert_int_eq(memcmp(small, "t.conf:1:1: unk", 15), 0);
    /* No buffer at all is fine too. */
    ck_assert_ptr_null(sw_conf_load_string("listn 1;\n", NULL, NULL, NULL, 0));
    memset(small, 'x', sizeof(small));
    ck_assert_ptr_null(sw_conf_load_string("x;", NULL, NULL, small, 1));
    ck_assert_int_eq(small[0], '\0');
    /* The default name in messages. */
    ck_assert_ptr_null(sw_conf_load_string("x;", NULL, NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "(string):1:1: unknown directive \"x\"\n"
                          "(string):1:1: no \"listen\" directive: at least "
                          "one is required");
}
END_TEST

/* ---- files and includes ------------------------------------------------ */

static char tmpdir[PATH_MAX];

static void
mkfile(const char *rel, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void
setup_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/swconfXXXXXX",
             base != NULL ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char sub[PATH_MAX * 2];
    snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
}

static void
rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char path[PATH_MAX * 2];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR) {
            rm_tree(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void
teardown_dir(void)
{
    rm_tree(tmpdir);
}

static struct sw_conf *
load_file(const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    return sw_conf_load(path, err, sizeof(err));
}

/* The error text with the temporary folder cut out: "main.conf:1:1: ..." */
static const char *
rel_err(void)
{
    return sw_test_cut_dir(err, tmpdir);
}

START_TEST(test_load_file)
{
    mkfile("main.conf", BASE);
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "%s/main.conf", tmpdir);
    ck_assert_str_eq(cf->path.p, want);
    sw_conf_unref(cf);
    ck_assert_ptr_null(load_file("missing.conf"));
    ck_assert_str_eq(rel_err(), "missing.conf:1:1: cannot read "
                                "configuration: No such file or directory");
    ck_assert_ptr_null(load_file("sub"));
    ck_assert_str_eq(rel_err(), "sub:1:1: cannot read configuration: Is a "
                                "directory");
}
END_TEST

START_TEST(test_include)
{
    mkfile("main.conf", "include sub/upstreams.conf;\n"
                        "listen 127.0.0.1:8080;\n"
                        "route {\n"
                        "    include route-common.conf;\n"
                        "    upstream demo;\n"
                        "}\n");
    /* Relative to the including file: sub/ includes its own sibling. */
    mkfile("sub/upstreams.conf", "upstream demo {\n"
                                 "    include servers.conf;\n"
                                 "}\n");
    mkfile("sub/servers.conf", "server 127.0.0.1:9000;\n"
                               "server 127.0.0.1:9001 weight=2;\n");
    mkfile("route-common.conf", "websocket on;\n"
                                "request_header set X-From $remote_addr;\n");
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->upstreams[0].nservers, 2);
    ck_assert_uint_eq(cf->upstreams[0].servers[1].weight, 2);
    ck_assert(cf->routes[0].websocket);
    ck_assert_uint_eq(cf->routes[0].nrequest_edits, 1);
    ck_assert_ptr_eq(cf->routes[0].upstream, &cf->upstreams[0]);
    sw_conf_unref(cf);

    /* Same through load_string with a folder for includes. */
    char text[256];
    snprintf(text, sizeof(text),
             "include sub/upstreams.conf;\n"
             "listen 127.0.0.1:8080;\n"
             "route { upstream demo; }\n");
    cf = sw_conf_load_string(text, "mem.conf", tmpdir, err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->upstreams[0].nservers, 2);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_include_errors_name_the_file)
{
    mkfile("main.conf", BASE "include sub/bad.conf;\nworkers 2;\n");
    mkfile("sub/bad.conf", "# a comment line\n  listn 127.0.0.1:1;\n"
                           "route {\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(),
                     "sub/bad.conf:2:3: unknown directive \"listn\", did you "
                     "mean \"listen\"?\n"
                     "sub/bad.conf:4:1: unexpected end of file, expected "
                     "\"}\"");

    /* A block cannot be closed by the including file. */
    mkfile("main.conf", BASE "include sub/open.conf;\n}\n");
    mkfile("sub/open.conf", "route { upstream demo; }\n}\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "sub/open.conf:2:1: unexpected \"}\"\n"
                                "main.conf:5:1: unexpected \"}\"");
}
END_TEST

START_TEST(test_include_cycle)
{
    mkfile("main.conf", BASE "include a.conf;\n");
    mkfile("a.conf", "workers 2;\ninclude sub/b.conf;\n");
    mkfile("sub/b.conf", "include ../a.conf;\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "sub/b.conf:1:9: include cycle: "
                                "\"sub/../a.conf\" is already being read");

    mkfile("main.conf", BASE "include main.conf;\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "main.conf:4:9: include cycle: "
                                "\"main.conf\" is already being read");

    /* The same file twice, not nested, is no cycle. */
    mkfile("main.conf", BASE "include a.conf;\ninclude a.conf;\n");
    mkfile("a.conf", "# nothing\n");
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_include_depth)
{
    /* f0 includes f1 ... f16 includes f17: 17 nested includes. */
    for (int i = 0; i <= 17; i++) {
        char name[32];
        char text[64];
        snprintf(name, sizeof(name), "f%d.conf", i);
        snprintf(text, sizeof(text), "include f%d.conf;\n", i + 1);
        mkfile(name, i == 17 ? "workers 1;\n" : text);
    }
    mkfile("main.conf", BASE "include f1.conf;\n");
    /* main -> f1 ... f16: 16 nested includes, the limit. */
    mkfile("f16.conf", "workers 1;\n");
    struct sw_conf *cf = load_file("main.conf");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->workers, 1);
    sw_conf_unref(cf);
    /* One more is too deep. */
    mkfile("f16.conf", "include f17.conf;\n");
    ck_assert_ptr_null(load_file("main.conf"));
    ck_assert_str_eq(rel_err(), "f16.conf:1:9: includes nested too deep "
                                "(limit 16)");
}
END_TEST

static Suite *
conf_errors_suite(void)
{
    Suite *s = suite_create("conf_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_unresolvable);
    tcase_add_test(tc, test_error_cap);
    tcase_add_test(tc, test_error_buffer);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup_dir, teardown_dir);
    tcase_add_test(files, test_load_file);
    tcase_add_test(files, test_include);
    tcase_add_test(files, test_include_errors_name_the_file);
    tcase_add_test(files, test_include_cycle);
    tcase_add_test(files, test_include_depth);
    suite_add_tcase(s, files);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conf_errors_suite());
}
