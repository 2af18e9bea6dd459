/*
 * cli_test.c - `shockwave -t -c FILE` (validate and exit) and start-up with
 * a bad file: exit codes, the "test is successful" / "test failed" lines,
 * every error as FILE:LINE:COL with a did-you-mean suggestion for typos.
 *
 * Uses the fixed files tests/conf/cli_*.conf in the source tree; the line
 * and column numbers below refer to them.
 */
#include "net.h"
#include "support.h"
#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char path[768]; /* the file under test */

static int
run_t(const char *name, char **out)
{
    snprintf(path, sizeof(path), "%s/tests/conf/%s",
             sw_test_env("SW_SOURCE_ROOT"), name);
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-t", "-c", path,
                    NULL};
    return sw_test_run(argv, 10000, out);
}

/* The output holds "<path>:<pos>: <msg>" on one line. */
static void
expect_error(const char *out, const char *pos, const char *msg)
{
    char want[1024];
    snprintf(want, sizeof(want), "%s:%s: %s", path, pos, msg);
    ck_assert_msg(strstr(out, want) != NULL, "missing \"%s\" in:\n%s", want,
                  out);
}

START_TEST(good_file)
{
    char *out;
    int rc = run_t("cli_good.conf", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "test is successful") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "test failed"));
    free(out);
}
END_TEST

START_TEST(typo_suggestions)
{
    char *out;
    int rc = run_t("cli_typo.conf", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    expect_error(out, "3:1", "unknown directive \"listn\", did you mean "
                             "\"listen\"?");
    /* Errors do not stop at the first: the one in the block is there. */
    expect_error(out, "5:5", "unknown directive \"sever\", did you mean "
                             "\"server\"?");
    ck_assert_msg(strstr(out, "test failed") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "test is successful"));
    /* "test failed" comes after the errors. */
    ck_assert(strstr(out, "test failed") > strstr(out, "listn"));
    free(out);
}
END_TEST

START_TEST(bad_values)
{
    char *out;
    int rc = run_t("cli_value.conf", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    char want[800];
    snprintf(want, sizeof(want), "%s:4:", path);
    char *l4 = strstr(out, want);
    ck_assert_msg(l4 != NULL, "no error on line 4:\n%s", out);
    ck_assert_msg(strstr(l4, "12q") != NULL, "line 4 error names 12q:\n%s",
                  out);
    snprintf(want, sizeof(want), "%s:5:", path);
    char *l5 = strstr(out, want);
    ck_assert_msg(l5 != NULL, "no error on line 5:\n%s", out);
    ck_assert_msg(strstr(l5, "soon") != NULL, "%s", out);
    ck_assert(strstr(out, "test failed") != NULL);
    free(out);
}
END_TEST

START_TEST(unknown_upstream)
{
    char *out;
    int rc = run_t("cli_unknown_upstream.conf", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    char want[800];
    snprintf(want, sizeof(want), "%s:8:", path);
    char *l8 = strstr(out, want);
    ck_assert_msg(l8 != NULL && strstr(l8, "nosuch") != NULL,
                  "no error naming \"nosuch\" on line 8:\n%s", out);
    ck_assert(strstr(out, "test failed") != NULL);
    free(out);
}
END_TEST

START_TEST(unbalanced_block)
{
    char *out;
    int rc = run_t("cli_syntax.conf", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    char want[800];
    snprintf(want, sizeof(want), "%s:", path);
    ck_assert_msg(strstr(out, want) != NULL, "no positioned error:\n%s", out);
    ck_assert(strstr(out, "test failed") != NULL);
    free(out);
}
END_TEST

START_TEST(missing_file)
{
    char *out;
    int rc = run_t("no_such_file.conf", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "no_such_file.conf") != NULL, "%s", out);
    ck_assert(strstr(out, "test failed") != NULL);
    free(out);
}
END_TEST

START_TEST(start_with_bad_file)
{
    /* Without -t a bad file stops start-up: non-zero exit, the error, and
     * no "ready". */
    snprintf(path, sizeof(path), "%s/tests/conf/cli_typo.conf",
             sw_test_env("SW_SOURCE_ROOT"));
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-c", path, NULL};
    char *out;
    int rc = sw_test_run(argv, 10000, &out);
    ck_assert_msg(rc > 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "did you mean \"listen\"?") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "ready"));
    free(out);
}
END_TEST

START_TEST(rendered_test_configs_are_valid)
{
    /* Every template the other suites use passes -t once rendered. */
    const char *names[] = {"basic.conf", "proxy.conf", "routing.conf",
                           "edits.conf", "errors.conf", "smuggling.conf",
                           "upstream_faults.conf", "keepalive.conf",
                           "reload.conf"};
    const char *kv[] = {"PORT", "18080", "ADMIN", "18081", "B1", "19001",
                        "B2", "19002", "B3", "19003", "F", "19004",
                        "DEAD", "19005", "TARGET", "a",
                        "B_EXACT", "19011", "B_WILD", "19012",
                        "B_DEEPWILD", "19013", "B_ANY", "19014",
                        "B_API", "19015", "B_CANARY", "19016", NULL};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", sw_test_tmpdir(), names[i]);
        ck_assert(sw_test_conf_render(names[i], path, kv));
        char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-t", "-c",
                        path, NULL};
        char *out;
        int rc = sw_test_run(argv, 10000, &out);
        ck_assert_msg(rc == 0, "%s: exit %d\n%s", names[i], rc, out);
        free(out);
    }
    /* And the bad reload file fails, at the typo. */
    snprintf(path, sizeof(path), "%s/reload_bad.conf", sw_test_tmpdir());
    ck_assert(sw_test_conf_render("reload_bad.conf", path, kv));
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-t", "-c", path,
                    NULL};
    char *out;
    ck_assert_int_eq(sw_test_run(argv, 10000, &out), 1);
    expect_error(out, "12:5", "unknown directive \"upstrem\", did you mean "
                              "\"upstream\"?");
    free(out);
}
END_TEST

static Suite *
cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, good_file);
    tcase_add_test(tc, typo_suggestions);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, unknown_upstream);
    tcase_add_test(tc, unbalanced_block);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, start_with_bad_file);
    tcase_add_test(tc, rendered_test_configs_are_valid);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(cli_suite());
}
