/*
 * privs_test.c - `user NAME;`: started as root, the daemon binds its
 * listener and opens its logs as root, then runs as NAME: /proc/PID/status
 * shows NAME's uid and gid in every slot, no group 0 and no capability,
 * and the access log it opened belongs to NAME. A reload reads the file as
 * NAME: refused while the file is unreadable to NAME, taken once it is
 * readable. Without `user` (and without -R) a root start is refused with a
 * message saying what to add; `user root;` keeps root on purpose; an
 * unknown user fails -t.
 *
 * Needs root (the suites run as root); says SKIP otherwise.
 */
#include "net.h"
#include "proc.h"
#include "support.h"

#include <check.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool
need_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "privs: SKIP: not running as root\n");
        return false;
    }
    return true;
}

/* Line `key` of /proc/pid/status, without the key (static). */
static const char *
status_line(pid_t pid, const char *key)
{
    static char line[512];
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    const char *found = NULL;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            found = line + kl + 1;
            line[strcspn(line, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
    ck_assert_msg(found != NULL, "no %s in %s", key, path);
    return found;
}

START_TEST(drops_to_user)
{
    if (!need_root()) {
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    ck_assert_ptr_nonnull(pw);
    unsigned uid = pw->pw_uid, gid = pw->pw_gid;
    ck_assert_uint_ne(uid, 0);

    char alog[600];
    snprintf(alog, sizeof(alog), "%s/privs-access.log", sw_test_tmpdir());
    char user[700];
    snprintf(user, sizeof(user), "user nobody;\naccess_log %s;", alog);
    struct sw_test_gw gw;
    const char *kv[] = {"USER", user, NULL};
    ck_assert(sw_test_gw_start(&gw, "notify.conf", kv));
    ck_assert(sw_test_proc_wait_log(&gw.proc, "running as user nobody", 0,
                                    5000) >= 0);

    char want[128];
    snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", uid, uid, uid, uid);
    const char *u = status_line(gw.proc.pid, "Uid");
    ck_assert_msg(strcmp(u, want) == 0, "Uid:%s, want%s", u, want);
    snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", gid, gid, gid, gid);
    const char *g = status_line(gw.proc.pid, "Gid");
    ck_assert_msg(strcmp(g, want) == 0, "Gid:%s, want%s", g, want);
    const char *groups = status_line(gw.proc.pid, "Groups");
    ck_assert_msg(strstr(groups, "\t0 ") == NULL &&
                      strncmp(groups, "\t0", 3) != 0 &&
                      strcmp(groups, "\t0") != 0,
                  "Groups:%s holds root's group", groups);
    const char *cap = status_line(gw.proc.pid, "CapEff");
    ck_assert_msg(strcmp(cap, "\t0000000000000000") == 0, "CapEff:%s", cap);

    /* Requests are served; the log it opened as root is the user's. */
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(gw.port, "x", "/", &r), 1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
    struct stat st;
    ck_assert_int_eq(stat(alog, &st), 0);
    ck_assert_uint_eq(st.st_uid, uid);

    /* The test's folder is root's (0700): a reload, read as nobody, fails
     * and says why; the running configuration stays. */
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_msg(
        sw_test_proc_wait_log(&gw.proc, "reload failed", mark, 5000) >= 0,
        "a reload of a file nobody cannot read did not fail");
    char *log = sw_test_proc_log(&gw.proc);
    ck_assert_msg(strstr(log + mark, "ermission denied") != NULL, "%s",
                  log + mark);
    free(log);
    /* Readable by the user: the reload goes through. */
    ck_assert_int_eq(chmod(sw_test_tmpdir(), 0711), 0);
    ck_assert_int_eq(chmod(gw.conf_path, 0644), 0);
    mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_msg(sw_test_proc_wait_log(&gw.proc,
                                        "configuration reloaded (generation 2)",
                                        mark, 5000) >= 0,
                  "no reload once the file is readable");
    chmod(sw_test_tmpdir(), 0700);
    int stc;
    ck_assert(sw_test_gw_stop_clean(&gw, &stc));
}
END_TEST

/* Render notify.conf with `user` and run the daemon with `flag` (or
 * none); exit code, output in *out. */
static int
run_with(const char *user, const char *flag, char **out)
{
    char conf[600];
    snprintf(conf, sizeof(conf), "%s/privs-run.conf", sw_test_tmpdir());
    const char *kv[] = {"PORT",  sw_test_itoa(sw_test_free_port()),
                        "ADMIN", sw_test_itoa(sw_test_free_port()),
                        "USER",  user,
                        NULL};
    ck_assert(sw_test_conf_render("notify.conf", conf, kv));
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), (char *)flag, "-c",
                    conf, NULL};
    if (flag == NULL) {
        argv[1] = "-c";
        argv[2] = conf;
        argv[3] = NULL;
    }
    return sw_test_run(argv, 10000, out);
}

START_TEST(refuses_root_without_user)
{
    if (!need_root()) {
        return;
    }
    char *out;
    int rc = run_with("", NULL, &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "refusing to run as root") != NULL &&
                      strstr(out, "has no \"user\" directive") != NULL &&
                      strstr(out, "Add \"user NAME;\"") != NULL,
                  "%s", out);
    ck_assert_ptr_null(strstr(out, "ready"));
    free(out);
}
END_TEST

START_TEST(user_root_keeps_root)
{
    if (!need_root()) {
        return;
    }
    struct sw_test_gw gw;
    const char *kv[] = {"USER", "user root;", NULL};
    ck_assert(sw_test_gw_start(&gw, "notify.conf", kv));
    const char *u = status_line(gw.proc.pid, "Uid");
    ck_assert_msg(strcmp(u, "\t0\t0\t0\t0") == 0, "Uid:%s", u);
    char *log = sw_test_proc_log(&gw.proc);
    ck_assert_msg(strstr(log, "\"user root\" is root") != NULL, "%s", log);
    free(log);
    int st;
    ck_assert(sw_test_gw_stop_clean(&gw, &st));
}
END_TEST

START_TEST(unknown_user_fails_test)
{
    char *out;
    int rc = run_with("user no-such-user-here;", "-t", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "user \"no-such-user-here\"") != NULL &&
                      strstr(out, "no such user") != NULL,
                  "%s", out);
    free(out);
    rc = run_with("user 0;", "-t", &out);
    ck_assert_msg(rc == 1 && strstr(out, "not a number") != NULL, "%s", out);
    free(out);
}
END_TEST

static Suite *
privs_suite(void)
{
    Suite *s = suite_create("privs");
    TCase *tc = tcase_create("privs");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, drops_to_user);
    tcase_add_test(tc, refuses_root_without_user);
    tcase_add_test(tc, user_root_keeps_root);
    tcase_add_test(tc, unknown_user_fails_test);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(privs_suite());
}
