/*
 * status_test.c - the admin listener's status page with the real daemon
 * (tests/conf/status.conf) over two health-checked backends
 * (tests/support/hcback.c):
 *
 *   - GET /status is one self-contained HTML page (no external asset) that
 *     fetches /status.json; unknown admin paths stay 404;
 *   - in headless Chromium (tests/js/status_browser.js over the DevTools
 *     pipe) the page renders both servers up and the routes, shows a server
 *     down within one refresh of the gateway marking it down after its
 *     backend starts failing, and logs no console error or exception. The
 *     browser's profile lives in a folder of this test, removed afterwards;
 *     the browser is bounded by a timeout and every process of it killed.
 *     Skipped, with the reason printed, only when no chromium is installed
 *     (scripts/deps.sh installs it).
 */
#include "hcback.h"
#include "net.h"
#include "proc.h"
#include "support.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct sw_test_hcback a, b;
static struct sw_test_gw gw;

static void
start(void)
{
    ck_assert(sw_test_hcback_start(&a, "a"));
    ck_assert(sw_test_hcback_start(&b, "b"));
    const char *kv[] = {"A", sw_test_itoa(a.fake.port), "B",
                        sw_test_itoa(b.fake.port), NULL};
    ck_assert(sw_test_gw_start(&gw, "status.conf", kv));
}

static void
stop(void)
{
    int st = sw_test_gw_stop(&gw);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "shockwave did not exit 0 on SIGTERM (status 0x%x)", st);
    sw_test_hcback_stop(&a);
    sw_test_hcback_stop(&b);
}

START_TEST(status_page_served)
{
    start();
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.admin_port, "admin", "/status", &r),
                     1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sw_test_resp_header(&r, "Content-Type"),
                     "text/html; charset=utf-8");
    ck_assert_str_eq(sw_test_resp_header(&r, "Cache-Control"), "no-store");
    ck_assert(strstr(r.body, "<title>Shockwave status</title>") != NULL);
    ck_assert(strstr(r.body, "fetch('/status.json'") != NULL);
    /* works offline: nothing is loaded from elsewhere */
    ck_assert(strstr(r.body, "src=\"http") == NULL);
    ck_assert(strstr(r.body, "href=\"http") == NULL);
    ck_assert(strstr(r.body, "@import") == NULL);
    sw_test_resp_free(&r);
    ck_assert_int_eq(sw_test_http_get(gw.admin_port, "admin", "/statusx", &r),
                     1);
    ck_assert_int_eq(r.status, 404);
    sw_test_resp_free(&r);
    stop();
}
END_TEST

/* The first line of `text` starting with `prefix`, copied into out. */
static bool
line_with(const char *text, const char *prefix, char *out, size_t cap)
{
    const char *p = text;
    size_t n = strlen(prefix);
    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, n) == 0) {
            const char *e = strchr(p, '\n');
            size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
            snprintf(out, cap, "%.*s", (int)len, p);
            return true;
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return false;
}

START_TEST(status_page_in_chromium)
{
    char chromium[512];
    if (!sw_test_which("chromium", chromium, sizeof(chromium))) {
        printf("SKIP status_page_in_chromium: no chromium on PATH (Debian "
               "package chromium; scripts/deps.sh installs it)\n");
        fflush(stdout);
        return;
    }
    char node[512];
    ck_assert_msg(sw_test_which("node", node, sizeof(node)),
                  "node is not on PATH (Node 20 is required)");
    start();
    char work[600];
    snprintf(work, sizeof(work), "%s/status-chromium", sw_test_tmpdir());
    char script[600];
    snprintf(script, sizeof(script), "%s/tests/js/status_browser.js",
             sw_test_env("SW_SOURCE_ROOT"));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", gw.admin_port);
    char server[64];
    snprintf(server, sizeof(server), "127.0.0.1:%d", a.fake.port);
    char *argv[] = {node,  script, chromium, url, work,
                    "web", server, "40000",  NULL};
    struct sw_test_proc js;
    ck_assert(sw_test_proc_spawn(&js, "status-browser", argv));
    long at = sw_test_proc_wait_log(&js, "rendered\n", 0, 40000);
    if (at < 0) {
        /* SIGTERM: the script still kills the browser before it exits */
        sw_test_proc_stop(&js, 10000);
        sw_test_proc_dump(&js);
    }
    ck_assert(at >= 0);
    /* the page is up: now the backend fails its health checks */
    sw_test_hcback_set(&a, SW_TEST_HC_FAIL);
    if (sw_test_proc_wait_log(&js, "leftover ", at, 45000) < 0) {
        sw_test_proc_stop(&js, 10000);
        sw_test_proc_dump(&js);
        ck_abort_msg("the browser script did not finish");
    }
    int st = 0;
    ck_assert(sw_test_proc_wait(&js, 10000, &st));
    char *log = sw_test_proc_log(&js);
    char want[128];
    snprintf(want, sizeof(want), "row web 127.0.0.1:%d up UP\n", a.fake.port);
    ck_assert_msg(strstr(log, want) != NULL, "browser:\n%s", log);
    snprintf(want, sizeof(want), "row web 127.0.0.1:%d up UP\n", b.fake.port);
    ck_assert_msg(strstr(log, want) != NULL, "browser:\n%s", log);
    ck_assert_msg(strstr(log, "routes 2\n") != NULL, "browser:\n%s", log);
    char line[160];
    ck_assert_msg(line_with(log, "down after ", line, sizeof(line)),
                  "browser:\n%s", log);
    int refreshes = -1;
    sscanf(line, "down after %d refreshes", &refreshes);
    /* within a refresh: the one in flight when it changed, or the next */
    ck_assert_msg(refreshes >= 0 && refreshes <= 2, "%s", line);
    ck_assert_msg(strstr(line, "(DOWN)") != NULL, "%s", line);
    ck_assert_msg(strstr(log, "console errors 0\n") != NULL, "browser:\n%s",
                  log);
    ck_assert_msg(strstr(log, "result PASS\n") != NULL, "browser:\n%s", log);
    ck_assert_msg(strstr(log, "leftover 0\n") != NULL, "browser:\n%s", log);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "browser:\n%s", log);
    printf("%s", log); /* the browser's account, for the test log */
    free(log);
    char *rm[] = {"/bin/rm", "-rf", work, NULL};
    ck_assert_int_eq(sw_test_run(rm, 20000, NULL), 0);
    stop();
}
END_TEST

static Suite *
status_suite(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("status");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, status_page_served);
    tcase_add_test(tc, status_page_in_chromium);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(status_suite());
}
