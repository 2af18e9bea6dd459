/*
 * conf_realip_test.c - the trusted-front list (`set_real_ip_from`,
 * `real_ip_header`, `real_ip_recursive`): CIDR parsing and matching for
 * IPv4 and IPv6, the edges (/0, /32, /128), bad input refused at load
 * with FILE:LINE:COL, the defaults, and `shockwave -T` printing it back.
 */
#include "support.h"

#include <shockwave/conf.h>

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE                                                                   \
    "listen 127.0.0.1:8080;\n"                                                 \
    "upstream demo { server 127.0.0.1:9000; }\n"                               \
    "route { upstream demo; }\n"

static char err[8192];

static struct sw_conf *
load(const char *text)
{
    return sw_conf_load_string(text, "t.conf", NULL, err, sizeof(err));
}

static struct sw_conf_cidr
cidr(const char *text)
{
    struct sw_conf_cidr c;
    ck_assert_msg(sw_conf_cidr_parse((struct sw_str){text, strlen(text)}, &c) ==
                      SW_OK,
                  "%s refused", text);
    return c;
}

/* Whether `addr` is inside the network `net`. */
static bool
in(const char *net, const char *addr)
{
    struct sw_conf_cidr c = cidr(net);
    int family;
    uint8_t a[16];
    ck_assert_msg(
        sw_conf_addr_parse((struct sw_str){addr, strlen(addr)}, &family, a),
        "%s is not an address", addr);
    return sw_conf_cidr_match(&c, 1, family, a);
}

START_TEST(test_ipv4)
{
    ck_assert(in("10.0.0.0/8", "10.1.2.3"));
    ck_assert(in("10.0.0.0/8", "10.255.255.255"));
    ck_assert(!in("10.0.0.0/8", "11.0.0.0"));
    ck_assert(in("192.168.1.0/25", "192.168.1.127"));
    ck_assert(!in("192.168.1.0/25", "192.168.1.128"));
    /* host bits in the network are cleared, as nginx warns and does */
    ck_assert(in("192.168.1.77/24", "192.168.1.1"));
    struct sw_conf_cidr c = cidr("192.168.1.77/24");
    ck_assert_uint_eq(c.family, AF_INET);
    ck_assert_uint_eq(c.bits, 24);
    ck_assert_uint_eq(c.addr[3], 0);
}
END_TEST

START_TEST(test_edges)
{
    /* /0 takes the whole family, and only that family */
    ck_assert(in("0.0.0.0/0", "203.0.113.9"));
    ck_assert(in("0.0.0.0/0", "0.0.0.0"));
    ck_assert(!in("0.0.0.0/0", "::1"));
    ck_assert(in("::/0", "2001:db8::1"));
    ck_assert(!in("::/0", "127.0.0.1"));
    /* /32 and a plain address are one host */
    ck_assert(in("127.0.0.1/32", "127.0.0.1"));
    ck_assert(!in("127.0.0.1/32", "127.0.0.2"));
    ck_assert(in("127.0.0.1", "127.0.0.1"));
    ck_assert(!in("127.0.0.1", "127.0.0.2"));
    ck_assert_uint_eq(cidr("127.0.0.1").bits, 32);
    /* /128 and a plain IPv6 address */
    ck_assert(in("2001:db8::1/128", "2001:db8::1"));
    ck_assert(!in("2001:db8::1/128", "2001:db8::2"));
    ck_assert(in("::1", "::1"));
    ck_assert_uint_eq(cidr("::1").bits, 128);
}
END_TEST

START_TEST(test_ipv6)
{
    ck_assert(in("2001:db8::/32", "2001:db8:ffff::1"));
    ck_assert(!in("2001:db8::/32", "2001:db9::1"));
    ck_assert(in("fe80::/10", "febf::1"));
    ck_assert(!in("fe80::/10", "fec0::1"));
    ck_assert(in("2001:DB8::/48", "2001:db8:0:ffff::1"));
    /* an IPv4-mapped address is IPv6: not in an IPv4 network */
    ck_assert(!in("127.0.0.0/8", "::ffff:127.0.0.1"));
}
END_TEST

START_TEST(test_bad_input)
{
    static const char *const bad[] = {
        "",          "/8",          "10.0.0.0/",     "10.0.0.0/33",
        "::/129",    "10.0.0.0/-1", "10.0.0.0/8x",   "10.0.0/8",
        "300.0.0.1", "localhost",   "10.0.0.0/0008", "::1/1234",
        "[::1]",     " 10.0.0.1",   "10.0.0.1:80",   "2001:db8::/ 32",
    };
    for (size_t i = 0; i < SW_NELEMS(bad); i++) {
        struct sw_conf_cidr c;
        ck_assert_msg(
            sw_conf_cidr_parse((struct sw_str){bad[i], strlen(bad[i])}, &c) ==
                SW_EINVAL,
            "\"%s\" accepted", bad[i]);
    }
    int family;
    uint8_t a[16];
    ck_assert(!sw_conf_addr_parse(SW_STR("unknown"), &family, a));
    ck_assert(!sw_conf_addr_parse(SW_STR(""), &family, a));
}
END_TEST

START_TEST(test_list_match)
{
    struct sw_conf *cf = load("set_real_ip_from 10.0.0.0/8;\n"
                              "set_real_ip_from 2001:db8::/32;\n"
                              "set_real_ip_from 192.0.2.7;\n"
                              "real_ip_header X-Real-IP;\n"
                              "real_ip_recursive on;\n" BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->nreal_ip_from, 3);
    ck_assert_str_eq(cf->real_ip_header.p, "X-Real-IP");
    ck_assert(cf->real_ip_recursive);
    static const struct {
        const char *addr;
        bool trusted;
    } cases[] = {
        {"10.9.8.7", true},   {"2001:db8::5", true}, {"192.0.2.7", true},
        {"192.0.2.8", false}, {"127.0.0.1", false},  {"::1", false},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        int family;
        uint8_t a[16];
        struct sw_str s = {cases[i].addr, strlen(cases[i].addr)};
        ck_assert(sw_conf_addr_parse(s, &family, a));
        ck_assert_msg(sw_conf_cidr_match(cf->real_ip_from, cf->nreal_ip_from,
                                         family, a) == cases[i].trusted,
                      "%s", cases[i].addr);
    }
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_defaults)
{
    struct sw_conf *cf = load(BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_uint_eq(cf->nreal_ip_from, 0);
    ck_assert_str_eq(cf->real_ip_header.p, "X-Forwarded-For");
    ck_assert(!cf->real_ip_recursive);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_load_errors)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {BASE "set_real_ip_from 10.0.0.0/40;\n",
         "t.conf:4:18: \"set_real_ip_from\" expects an IPv4 or IPv6"},
        {BASE "\n set_real_ip_from front.example;\n",
         "t.conf:5:19: \"set_real_ip_from\" expects"},
        {BASE "set_real_ip_from;\n", "t.conf:4:1:"},
        {BASE "real_ip_header \"X Bad\";\n",
         "t.conf:4:18: invalid character in header name"},
        {BASE "real_ip_recursive maybe;\n", "t.conf:4:19:"},
        {BASE "real_ip_header X-Real-IP;\nreal_ip_header X-Real-IP;\n",
         "t.conf:5:1:"},
        {"listen 127.0.0.1:8080;\n"
         "upstream demo { server 127.0.0.1:9000; }\n"
         "route { upstream demo; set_real_ip_from 10.0.0.1; }\n",
         "t.conf:3:24: \"set_real_ip_from\" is not allowed inside route"},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_conf *cf = load(cases[i].text);
        ck_assert_msg(cf == NULL, "case %zu loaded", i);
        ck_assert_msg(strstr(err, cases[i].want) != NULL,
                      "case %zu: want \"%s\" in:\n%s", i, cases[i].want, err);
    }
}
END_TEST

START_TEST(test_dump_round_trip)
{
    struct sw_conf *cf = load("set_real_ip_from 10.0.0.0/8;\n"
                              "set_real_ip_from ::1;\n"
                              "real_ip_recursive on;\n"
                              "real_ip_header X-Real-IP;\n" BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    sw_conf_dump(cf, out);
    fclose(out);
    ck_assert_msg(strstr(text, "set_real_ip_from 10.0.0.0/8;\n") != NULL &&
                      strstr(text, "set_real_ip_from ::1;\n") != NULL &&
                      strstr(text, "real_ip_header X-Real-IP;\n") != NULL &&
                      strstr(text, "real_ip_recursive on;\n") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "# not shown") == NULL, "%s", text);
    struct sw_conf *again = load(text);
    ck_assert_msg(again != NULL, "%s\n%s", err, text);
    ck_assert_uint_eq(again->nreal_ip_from, 2);
    ck_assert_uint_eq(again->real_ip_from[1].bits, 128);
    ck_assert(again->real_ip_recursive);
    sw_conf_unref(again);
    sw_conf_unref(cf);
    free(text);
}
END_TEST

static Suite *
realip_suite(void)
{
    Suite *s = suite_create("conf_realip");
    TCase *tc = tcase_create("cidr");
    tcase_add_test(tc, test_ipv4);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_list_match);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_dump_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(realip_suite());
}
