/*
 * conf_engine_test.c - the `io_engine epoll | io_uring;` directive: the
 * default, both values anywhere in the main context (before or after the
 * blocks, from an include), every refusal with its message and
 * FILE:LINE:COL, the names sw_conf_io_engine_name() gives, and
 * `shockwave -T` printing the engine so the dump loads as the same engine.
 */
#include <shockwave/conf.h>

#include "conf_cases.h"
#include "support.h"

#include <check.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

START_TEST(test_default_is_epoll)
{
    struct sw_conf *cf = load(BASE);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_int_eq(cf->io_engine, SW_IO_ENGINE_EPOLL);
    sw_conf_unref(cf);
}
END_TEST

START_TEST(test_values)
{
    static const struct {
        const char *text;
        enum sw_io_engine want;
    } cases[] = {
        {"io_engine io_uring;\n" BASE, SW_IO_ENGINE_IO_URING},
        {"io_engine epoll;\n" BASE, SW_IO_ENGINE_EPOLL},
        {"io_engine \"io_uring\";\n" BASE, SW_IO_ENGINE_IO_URING},
        /* the main context takes its directives in any order */
        {BASE "io_engine io_uring;\n", SW_IO_ENGINE_IO_URING},
        {"# a comment first\n\nio_engine io_uring; workers 2;\n" BASE,
         SW_IO_ENGINE_IO_URING},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_conf *cf = load(cases[i].text);
        ck_assert_msg(cf != NULL, "%s refused:\n%s", cases[i].text, err);
        ck_assert_msg(cf->io_engine == cases[i].want, "%s: engine %d",
                      cases[i].text, (int)cf->io_engine);
        sw_conf_unref(cf);
    }
}
END_TEST

START_TEST(test_refusals)
{
    static const struct {
        const char *text;
        const char *want; /* the whole error text */
    } cases[] = {
        {"io_engine uring;\n" BASE,
         "t.conf:1:11: \"io_engine\" expects epoll or io_uring, got "
         "\"uring\""},
        {"io_engine IO_URING;\n" BASE,
         "t.conf:1:11: \"io_engine\" expects epoll or io_uring, got "
         "\"IO_URING\""},
        {"io_engine \"\";\n" BASE,
         "t.conf:1:11: \"io_engine\" expects epoll or io_uring, got \"\""},
        {BASE "io_engine epoll;\nio_engine io_uring;\n",
         "t.conf:5:1: duplicate \"io_engine\" directive"},
        {"io_engine;\n" BASE,
         "t.conf:1:1: \"io_engine\" takes 1 argument, got 0"},
        {"io_engine epoll io_uring;\n" BASE,
         "t.conf:1:17: \"io_engine\" takes 1 argument, got 2"},
        {"io_engin io_uring;\n" BASE,
         "t.conf:1:1: unknown directive \"io_engin\", did you mean "
         "\"io_engine\"?"},
        {"listen 127.0.0.1:8080;\n"
         "upstream demo { server 127.0.0.1:9000; io_engine epoll; }\n"
         "route { upstream demo; }\n",
         "t.conf:2:40: \"io_engine\" is not allowed inside upstream { }, "
         "only at the top level"},
        {BASE "route { upstream demo; io_engine io_uring; }\n",
         "t.conf:4:24: \"io_engine\" is not allowed inside route { }, only "
         "at the top level"},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_conf *cf = load(cases[i].text);
        ck_assert_msg(cf == NULL, "%s: loaded", cases[i].text);
        ck_assert_msg(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0,
                      "%s: want \"%s\", got:\n%s", cases[i].text, cases[i].want,
                      err);
    }
}
END_TEST

/* From an included file, the error names that file. */
START_TEST(test_include)
{
    const char *base = getenv("TMPDIR");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/swengineXXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/engine.conf", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("io_engine io_uring;\n", f);
    fclose(f);
    struct sw_conf *cf = sw_conf_load_string("include engine.conf;\n" BASE,
                                             "t.conf", dir, err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert_int_eq(cf->io_engine, SW_IO_ENGINE_IO_URING);
    sw_conf_unref(cf);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("\n  io_engine kqueue;\n", f);
    fclose(f);
    cf = sw_conf_load_string("include engine.conf;\n" BASE, "t.conf", dir, err,
                             sizeof(err));
    ck_assert_ptr_null(cf);
    ck_assert_msg(strstr(err, "engine.conf:2:13: \"io_engine\" expects epoll "
                              "or io_uring, got \"kqueue\"") != NULL,
                  "%s", err);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(sw_conf_io_engine_name(SW_IO_ENGINE_EPOLL), "epoll");
    ck_assert_str_eq(sw_conf_io_engine_name(SW_IO_ENGINE_IO_URING), "io_uring");
    ck_assert_str_eq(sw_conf_io_engine_name((enum sw_io_engine)7), "unknown");
}
END_TEST

START_TEST(test_dump_round_trip)
{
    static const struct {
        const char *text;
        const char *line; /* in the dump */
        enum sw_io_engine want;
    } cases[] = {
        {BASE, "\nio_engine epoll;\n", SW_IO_ENGINE_EPOLL},
        {BASE "io_engine io_uring;\n", "\nio_engine io_uring;\n",
         SW_IO_ENGINE_IO_URING},
    };
    for (size_t i = 0; i < SW_NELEMS(cases); i++) {
        struct sw_conf *cf = load(cases[i].text);
        ck_assert_msg(cf != NULL, "%s", err);
        char *d = dump_text(cf);
        ck_assert_ptr_nonnull(d);
        ck_assert_msg(strstr(d, cases[i].line) != NULL, "want %s in:\n%s",
                      cases[i].line, d);
        ck_assert_msg(strstr(d, "# not shown") == NULL, "%s", d);
        struct sw_conf *again = load(d);
        ck_assert_msg(again != NULL, "%s\n%s", err, d);
        ck_assert_int_eq(again->io_engine, cases[i].want);
        sw_conf_unref(again);
        sw_conf_unref(cf);
        free(d);
    }
}
END_TEST

static Suite *
engine_suite(void)
{
    Suite *s = suite_create("conf_engine");
    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, test_default_is_epoll);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_include);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_dump_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(engine_suite());
}
