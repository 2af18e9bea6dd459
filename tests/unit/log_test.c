/*
 * log_test.c - Check suite for lib/log's JSON access-log lines: the string
 * escape (RFC 8259 7) over a table of vectors, fed whole and cut at every
 * length (an escape is never split), and whole lines written through a
 * pipe: valid JSON shape, the closing brace and "truncated" when a value
 * does not fit, numbers as numbers.
 */
#include <shockwave/log.h>

#include "support.h"

#include <check.h>
#include <unistd.h>

static const struct {
    const char *in;  /* bytes in */
    size_t len;      /* their count (NULs allowed) */
    const char *out; /* escaped */
} vectors[] = {
    {"plain", 5, "plain"},
    {"a\"b\\c", 5, "a\\\"b\\\\c"},
    {"\n\r\t", 3, "\\n\\r\\t"},
    {"\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f"},
    {"a\0b", 3, "a\\u0000b"},
    {"caf\xc3\xa9", 5, "caf\xc3\xa9"},            /* U+00E9 */
    {"\xe2\x82\xac", 3, "\xe2\x82\xac"},          /* U+20AC */
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},  /* U+1F600 */
    {"\xff", 1, "\\u00ff"},                       /* never UTF-8 */
    {"\xc3", 1, "\\u00c3"},                       /* cut sequence */
    {"\xc3(", 2, "\\u00c3("},                     /* bad continuation */
    {"\xc0\xaf", 2, "\\u00c0\\u00af"},            /* overlong "/" */
    {"\xe0\x80\xaf", 3, "\\u00e0\\u0080\\u00af"}, /* overlong */
    {"\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080"}, /* surrogate */
    {"\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080"}, /* > U+10FFFF */
    {"\x80x", 2, "\\u0080x"}, /* lone continuation */
};

START_TEST(escape_vectors)
{
    for (size_t i = 0; i < SW_NELEMS(vectors); i++) {
        char out[128];
        size_t used;
        size_t n = sw_log_json_escape(out, sizeof(out), vectors[i].in,
                                      vectors[i].len, &used);
        ck_assert_uint_eq(used, vectors[i].len);
        ck_assert_msg(n == strlen(vectors[i].out) &&
                          memcmp(out, vectors[i].out, n) == 0,
                      "vector %zu: got \"%.*s\", want \"%s\"", i, (int)n, out,
                      vectors[i].out);
        /* With less room, the output is a prefix ending at a whole
         * escape, and `used` says how much input it covers. */
        for (size_t cap = 0; cap < n; cap++) {
            char part[128];
            size_t u2;
            size_t m = sw_log_json_escape(part, cap, vectors[i].in,
                                          vectors[i].len, &u2);
            ck_assert_uint_le(m, cap);
            ck_assert_uint_lt(u2, vectors[i].len);
            char again[128];
            size_t k = sw_log_json_escape(again, sizeof(again), vectors[i].in,
                                          u2, NULL);
            ck_assert_uint_eq(k, m);
            ck_assert(memcmp(part, again, m) == 0);
            ck_assert(memcmp(part, out, m) == 0);
        }
    }
}
END_TEST

/* Write one line through a pipe as the access log; return it (static). */
static const char *
line_of(void (*fill)(struct sw_log_json *j))
{
    static char buf[SW_LOG_JSON_MAX + 16];
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    sw_log_set_access_fd(fds[1]);
    sw_log_set_access_json(true);
    ck_assert(sw_log_access_is_json());
    static struct sw_log_json j;
    sw_log_json_begin(&j, "http");
    fill(&j);
    sw_log_json_write(&j);
    sw_log_set_access_fd(-1);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    return buf;
}

static void
fill_small(struct sw_log_json *j)
{
    sw_log_json_str(j, "request", "GET / HTTP/1.1", 14);
    sw_log_json_u64(j, "status", 200);
    sw_log_json_u64(j, "bytes_sent", 18446744073709551615ull);
}

static void
fill_huge(struct sw_log_json *j)
{
    static char big[3 * SW_LOG_JSON_MAX];
    memset(big, '"', sizeof(big)); /* every byte doubles when escaped */
    sw_log_json_str(j, "request", big, sizeof(big));
    sw_log_json_u64(j, "status", 400);
}

START_TEST(whole_lines)
{
    const char *l = line_of(fill_small);
    ck_assert_msg(strncmp(l, "{\"time\":\"20", 11) == 0, "%s", l);
    ck_assert_msg(strstr(l, "Z\",\"type\":\"http\",\"request\":\"GET / "
                            "HTTP/1.1\",\"status\":200,\"bytes_sent\":"
                            "18446744073709551615}\n") != NULL,
                  "%s", l);
    ck_assert_ptr_null(strstr(l, "truncated"));

    /* Too big: cut, bounded, still closed; the field after it did not
     * fit either and is left out whole. */
    l = line_of(fill_huge);
    size_t n = strlen(l);
    ck_assert_uint_le(n, SW_LOG_JSON_MAX);
    ck_assert_msg(strcmp(l + n - 19, ",\"truncated\":true}\n") == 0, "%s",
                  l + n - 40);
    /* The value is whole escapes only: \" pairs, then its quote. */
    const char *v = strstr(l, "\"request\":\"");
    ck_assert_ptr_nonnull(v);
    v += 11;
    const char *end = strstr(v, "\",\"truncated\"");
    ck_assert_ptr_nonnull(end);
    ck_assert_uint_gt((size_t)(end - v), 1000);
    ck_assert_uint_eq((size_t)(end - v) % 2, 0);
    for (const char *q = v; q < end; q += 2) {
        ck_assert(q[0] == '\\' && q[1] == '"');
    }
    ck_assert_ptr_null(strstr(l, "\"status\""));
}
END_TEST

START_TEST(off_by_default)
{
    sw_log_set_access_fd(-1);
    sw_log_set_access_json(true);
    ck_assert(!sw_log_access_is_json());
    sw_log_set_access_json(false);
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, escape_vectors);
    tcase_add_test(tc, whole_lines);
    tcase_add_test(tc, off_by_default);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(log_suite());
}
