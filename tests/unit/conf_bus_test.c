/*
 * conf_bus_test.c - the Redis bus settings (`fanout_bus`,
 * `fanout_bus_prefix`, `fanout_bus_lease`): URLs that load and what they
 * store (and the percent decoder their user info goes through), every refusal
 * with its message and FILE:LINE:COL, the defaults, the bounds of the prefix
 * and the lease, and `shockwave -T` printing them back so the dump loads as the
 * same settings.
 */
#include "support.h"

#include <shockwave/conf.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE                                                                   \
    "listen 127.0.0.1:8080;\n"                                                 \
    "upstream demo { server 127.0.0.1:9000; }\n"                               \
    "route { upstream demo; }\n"

static char err[8192];
static char text[4096];

static struct sw_conf *
load(const char *conf)
{
    return sw_conf_load_string(conf, "t.conf", NULL, err, sizeof(err));
}

/* BASE with `fanout_bus URL;` on line 4. */
static struct sw_conf *
load_url(const char *url)
{
    snprintf(text, sizeof(text), BASE "fanout_bus %s;\n", url);
    return load(text);
}

static void
str_is(struct sw_str s, const char *want, const char *what, const char *url)
{
    ck_assert_msg(s.len == strlen(want) && memcmp(s.p, want, s.len) == 0 &&
                      s.p[s.len] == '\0',
                  "%s: %s is \"%.*s\", want \"%s\"", url, what, (int)s.len, s.p,
                  want);
}

START_TEST(test_good_urls)
{
    static const struct {
        const char *url;
        const char *host;
        unsigned port;
        unsigned db;
        const char *user;
        const char *password;
    } cases[] = {
        {"redis://localhost", "localhost", 6379, 0, "", ""},
        {"redis://redis.internal:6380", "redis.internal", 6380, 0, "", ""},
        {"redis://127.0.0.1:7000/3", "127.0.0.1", 7000, 3, "", ""},
        {"redis://[::1]", "::1", 6379, 0, "", ""},
        {"redis://[::1]:6390/15", "::1", 6390, 15, "", ""},
        {"redis://[2001:db8::7]/1", "2001:db8::7", 6379, 1, "", ""},
        {"redis://Cache-1.EXAMPLE_net", "Cache-1.EXAMPLE_net", 6379, 0, "", ""},
        {"redis://:s3cret@10.0.0.5", "10.0.0.5", 6379, 0, "", "s3cret"},
        {"redis://gw:s3cret@10.0.0.5:1/2147483647", "10.0.0.5", 1, 2147483647u,
         "gw", "s3cret"},
        /* percent escapes in the user info, as redis-cli -u reads them */
        {"redis://g%77:p%40ss%3Aw%2f@h", "h", 6379, 0, "gw", "p@ss:w/"},
        /* the user info ends at the last "@" */
        {"redis://:p@ss@h:65535/0", "h", 65535, 0, "", "p@ss"},
        {"REDIS://h/007", "h", 6379, 7, "", ""},
        {"\"redis://:pass word@h\"", "h", 6379, 0, "", "pass word"},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_conf *cf = load_url(cases[i].url);
        ck_assert_msg(cf != NULL, "%s refused:\n%s", cases[i].url, err);
        str_is(cf->bus_host, cases[i].host, "host", cases[i].url);
        ck_assert_uint_eq(cf->bus_port, cases[i].port);
        ck_assert_uint_eq(cf->bus_db, cases[i].db);
        str_is(cf->bus_user, cases[i].user, "user", cases[i].url);
        str_is(cf->bus_password, cases[i].password, "password", cases[i].url);
        const char *u = cases[i].url;
        size_t n = strlen(u);
        if (u[0] == '"') {
            u++;
            n -= 2;
        }
        ck_assert_uint_eq(cf->bus_url.len, n);
        ck_assert(memcmp(cf->bus_url.p, u, n) == 0);
        sw_conf_unref(cf);
    }
}
END_TEST

START_TEST(test_bad_urls)
{
    /* fanout_bus is on line 4; its URL starts at column 12. */
    static const struct {
        const char *url;
        const char *want;
    } cases[] = {
        {"rediss://h:6380",
         "t.conf:4:12: \"fanout_bus\": rediss:// (Redis over TLS) is not "
         "supported"},
        {"http://h", "t.conf:4:12: \"fanout_bus\" expects "
                     "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], got "
                     "\"http://h\""},
        {"h:6379", "t.conf:4:12: \"fanout_bus\" expects redis://"},
        {"redis://", "t.conf:4:20: \"fanout_bus\": empty host"},
        {"redis://:6379", "t.conf:4:20: \"fanout_bus\": empty host"},
        {"redis://:pw@/0", "t.conf:4:24: \"fanout_bus\": empty host"},
        {"redis://h:0", "t.conf:4:22: \"fanout_bus\": invalid port \"0\": "
                        "expected 1 to 65535"},
        {"redis://h:65536/1", "t.conf:4:22: \"fanout_bus\": invalid port "
                              "\"65536\""},
        {"redis://h:", "t.conf:4:22: \"fanout_bus\": invalid port \"\""},
        {"redis://h:63x79", "t.conf:4:22: \"fanout_bus\": invalid port "
                            "\"63x79\""},
        {"redis://h/x", "t.conf:4:22: \"fanout_bus\": invalid DB \"x\": "
                        "expected a number from 0 to 2147483647"},
        {"redis://h/", "t.conf:4:22: \"fanout_bus\": invalid DB \"\""},
        {"redis://h/2147483648", "t.conf:4:22: \"fanout_bus\": invalid DB "
                                 "\"2147483648\""},
        {"redis://h/-1", "t.conf:4:22: \"fanout_bus\": invalid DB \"-1\""},
        {"redis://h:6379/1/2", "t.conf:4:28: \"fanout_bus\": unexpected "
                               "\"/2\" after the DB number"},
        {"redis://h/0?timeout=1", "t.conf:4:23: \"fanout_bus\": unexpected "
                                  "\"?timeout=1\" after the DB number"},
        {"redis://h?db=1", "t.conf:4:21: \"fanout_bus\": unexpected "
                           "\"?db=1\" after the address"},
        {"redis://h:6379#x", "t.conf:4:26: \"fanout_bus\": unexpected "
                             "\"#x\" after the address"},
        {"redis://[::1", "t.conf:4:20: \"fanout_bus\": missing \"]\""},
        {"redis://[nope]:1", "t.conf:4:21: \"fanout_bus\": invalid IPv6 "
                             "address \"nope\""},
        {"redis://[]", "t.conf:4:21: \"fanout_bus\": invalid IPv6 address"},
        {"redis://[::1]x", "t.conf:4:25: \"fanout_bus\": expected \":PORT\" "
                           "or \"/DB\" after \"]\""},
        {"redis://::1", "t.conf:4:20: \"fanout_bus\": empty host"},
        {"redis://fe80::1:6379", "t.conf:4:20: \"fanout_bus\": an IPv6 "
                                 "address needs brackets"},
        {"redis://ho$t", "t.conf:4:22: \"fanout_bus\": invalid character in "
                         "host \"ho$t\""},
        {"redis://secret@h", "t.conf:4:20: \"fanout_bus\" expects "
                             "USER:PASSWORD@ or :PASSWORD@"},
        {"redis://gw:@h", "t.conf:4:23: \"fanout_bus\": empty password"},
        {"redis://:p%4@h", "t.conf:4:22: \"fanout_bus\": invalid percent "
                           "escape"},
        {"redis://g%zz:p@h", "t.conf:4:21: \"fanout_bus\": invalid percent "
                             "escape"},
        {"redis://:a%00b@h", "t.conf:4:22: \"fanout_bus\": invalid percent "
                             "escape"},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_conf *cf = load_url(cases[i].url);
        ck_assert_msg(cf == NULL, "%s loaded", cases[i].url);
        ck_assert_msg(strstr(err, cases[i].want) != NULL,
                      "%s: want \"%s\" in:\n%s", cases[i].url, cases[i].want,
                      err);
    }
}
END_TEST

/* sw_percent_decode (lib/core), which the URL's user info goes through. */
START_TEST(test_percent_decode)
{
    static const struct {
        const char *in;
        ssize_t rc;      /* length, or the status */
        const char *out; /* decoded, or NULL */
        size_t bad;      /* offset of the bad escape */
    } cases[] = {
        {"", 0, "", 0},
        {"plain+text", 10, "plain+text", 0},
        {"%40%3a%3A%2f%7E", 5, "@::/~", 0},
        {"a%20b%C3%A9", 5, "a b\xc3\xa9", 0},
        {"%ff", 1, "\xff", 0},
        {"%", SW_EINVAL, NULL, 0},
        {"ab%4", SW_EINVAL, NULL, 2},
        {"ab%4g", SW_EINVAL, NULL, 2},
        {"%%41", SW_EINVAL, NULL, 0},
        {"x%00", SW_EINVAL, NULL, 1},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        char out[32];
        size_t bad = 99;
        struct sw_str in = {cases[i].in, strlen(cases[i].in)};
        ssize_t rc = sw_percent_decode(in, out, sizeof(out), &bad);
        ck_assert_msg(rc == cases[i].rc, "\"%s\": %zd, want %zd", cases[i].in,
                      rc, cases[i].rc);
        if (rc >= 0) {
            ck_assert(memcmp(out, cases[i].out, (size_t)rc) == 0);
        } else {
            ck_assert_uint_eq(bad, cases[i].bad);
        }
    }
    /* the output is bounded: exactly full is fine, one more is not */
    char out[3];
    ck_assert_int_eq(sw_percent_decode(SW_STR("a%42c"), out, 3, NULL), 3);
    ck_assert_int_eq(sw_percent_decode(SW_STR("a%42cd"), out, 3, NULL),
                     SW_ETOOBIG);
    ck_assert_int_eq(sw_hex_value('F'), 15);
    ck_assert_int_eq(sw_hex_value('g'), -1);
}
END_TEST

START_TEST(test_long_host)
{
    char url[512];
    int n = snprintf(url, sizeof(url), "redis://");
    memset(url + n, 'a', 255);
    url[n + 255] = '\0';
    struct sw_conf *cf = load_url(url);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->bus_host.len, 255);
    sw_conf_unref(cf);
    strcat(url, "a");
    ck_assert_ptr_null(load_url(url));
    ck_assert_msg(strstr(err, "t.conf:4:20: \"fanout_bus\": host name longer "
                              "than 255 bytes") != NULL,
                  "%s", err);
}
END_TEST

START_TEST(test_defaults)
{
    struct sw_conf *cf = load(BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    /* no bus; every string still NUL-terminated */
    str_is(cf->bus_url, "", "url", "defaults");
    str_is(cf->bus_host, "", "host", "defaults");
    str_is(cf->bus_user, "", "user", "defaults");
    str_is(cf->bus_password, "", "password", "defaults");
    ck_assert_uint_eq(cf->bus_port, 6379);
    ck_assert_uint_eq(cf->bus_db, 0);
    str_is(cf->bus_prefix, "shockwave:", "prefix", "defaults");
    ck_assert_uint_eq(cf->bus_lease_ms, 3000);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_prefix_and_lease)
{
    struct sw_conf *cf = load(BASE "fanout_bus redis://h;\n"
                                   "fanout_bus_prefix eu-1/sw:;\n"
                                   "fanout_bus_lease 1500ms;\n");
    ck_assert_msg(cf != NULL, "%s", err);
    str_is(cf->bus_prefix, "eu-1/sw:", "prefix", "prefix");
    ck_assert_uint_eq(cf->bus_lease_ms, 1500);
    sw_conf_unref(cf);

    /* the bounds: 64 bytes and 1s..60s load, one more does not */
    char p64[65];
    memset(p64, 'p', 64);
    p64[64] = '\0';
    snprintf(text, sizeof(text),
             BASE "fanout_bus_prefix %s;\nfanout_bus_lease 1s;\n", p64);
    cf = load(text);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->bus_prefix.len, 64);
    ck_assert_uint_eq(cf->bus_lease_ms, 1000);
    /* a prefix works without a bus: it is only read when there is one */
    str_is(cf->bus_host, "", "host", "prefix");
    sw_conf_unref(cf);
    cf = load(BASE "fanout_bus_lease 60s;\n");
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->bus_lease_ms, 60000);
    sw_conf_unref(cf);

    static const struct {
        const char *line;
        const char *want;
    } cases[] = {
        {"fanout_bus_prefix \"\";",
         "t.conf:4:19: \"fanout_bus_prefix\" must be 1 to 64 bytes, got 0"},
        {"fanout_bus_prefix "
         "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp;",
         "t.conf:4:19: \"fanout_bus_prefix\" must be 1 to 64 bytes, got 65"},
        {"fanout_bus_prefix \"sw :\";",
         "t.conf:4:22: \"fanout_bus_prefix\": no spaces or control bytes"},
        {"fanout_bus_prefix \"sw\t\";",
         "t.conf:4:22: \"fanout_bus_prefix\": no spaces or control bytes"},
        {"fanout_bus_lease 999ms;",
         "t.conf:4:18: \"fanout_bus_lease\" must be from 1s to 1m, got "
         "\"999ms\""},
        {"fanout_bus_lease 61s;",
         "t.conf:4:18: \"fanout_bus_lease\" must be from 1s to 1m"},
        {"fanout_bus_lease soon;",
         "t.conf:4:18: invalid duration \"soon\" for \"fanout_bus_lease\""},
        {"fanout_bus redis://a;\nfanout_bus redis://b;", "t.conf:5:1:"},
        {"fanout_bus;", "t.conf:4:1:"},
        {"fanout_bus redis://a redis://b;",
         "t.conf:4:22: \"fanout_bus\" takes 1 argument, got 2"},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        snprintf(text, sizeof(text), BASE "%s\n", cases[i].line);
        ck_assert_msg(load(text) == NULL, "%s loaded", cases[i].line);
        ck_assert_msg(strstr(err, cases[i].want) != NULL,
                      "%s: want \"%s\" in:\n%s", cases[i].line, cases[i].want,
                      err);
    }
    /* main context only */
    ck_assert_ptr_null(
        load("listen 127.0.0.1:8080;\n"
             "upstream demo { server 127.0.0.1:9000; }\n"
             "route { upstream demo; fanout_bus redis://h; }\n"));
    ck_assert_msg(strstr(err,
                         "t.conf:3:24: \"fanout_bus\" is not allowed "
                         "inside route { }, only at the top level") != NULL,
                  "%s", err);
}
END_TEST

static char *
dump(const struct sw_conf *cf)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    sw_conf_dump(cf, f);
    fclose(f);
    return out;
}

START_TEST(test_dump_round_trip)
{
    struct sw_conf *cf =
        load(BASE "fanout_bus redis://gw:p%40ss@[::1]:6380/2;\n"
                  "fanout_bus_prefix \"eu;1:\";\n"
                  "fanout_bus_lease 10s;\n");
    ck_assert_msg(cf != NULL, "%s", err);
    char *d = dump(cf);
    ck_assert_msg(strstr(d, "\nfanout_bus redis://gw:p%40ss@[::1]:6380/2;\n") !=
                          NULL &&
                      strstr(d, "\nfanout_bus_prefix \"eu;1:\";\n") != NULL &&
                      strstr(d, "\nfanout_bus_lease 10s;\n") != NULL,
                  "%s", d);
    ck_assert_msg(strstr(d, "# not shown") == NULL, "%s", d);
    struct sw_conf *again = load(d);
    ck_assert_msg(again != NULL, "%s\n%s", err, d);
    str_is(again->bus_host, "::1", "host", "dump");
    str_is(again->bus_password, "p@ss", "password", "dump");
    ck_assert_uint_eq(again->bus_port, 6380);
    ck_assert_uint_eq(again->bus_db, 2);
    str_is(again->bus_prefix, "eu;1:", "prefix", "dump");
    ck_assert_uint_eq(again->bus_lease_ms, 10000);
    sw_conf_unref(again);
    sw_conf_unref(cf);
    free(d);

    /* without a bus: no fanout_bus line, the defaults of the other two */
    cf = load(BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    d = dump(cf);
    ck_assert_msg(strstr(d, "\nfanout_bus ") == NULL &&
                      strstr(d, "\nfanout_bus_prefix shockwave:;\n") != NULL &&
                      strstr(d, "\nfanout_bus_lease 3s;\n") != NULL,
                  "%s", d);
    sw_conf_unref(cf);
    free(d);
}
END_TEST

static Suite *
bus_suite(void)
{
    Suite *s = suite_create("conf_bus");
    TCase *tc = tcase_create("bus");
    tcase_add_test(tc, test_good_urls);
    tcase_add_test(tc, test_bad_urls);
    tcase_add_test(tc, test_percent_decode);
    tcase_add_test(tc, test_long_host);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_prefix_and_lease);
    tcase_add_test(tc, test_dump_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(bus_suite());
}
