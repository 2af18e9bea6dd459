/*
 * dump_test.c - `shockwave -T` prints the effective configuration and
 * `shockwave -v` the version and build.
 *
 * -T: tests/conf/dump.conf sets every kind of directive away from its
 * default and includes dump_include.conf; the dump must show each value
 * (included ones in place, defaults written out), pass -t, and be a fixed
 * point: the dump of the dump is the same text. Every other template in
 * tests/conf that passes -t once rendered goes through the same fixed-point
 * check, so a directive the dump forgets or prints wrongly shows up.
 *
 * The engine switch: with SW_TEST_IO_ENGINE set, the file a started daemon
 * reads, before and after a reload, names that engine, -T prints it, and
 * on io_uring the daemon holds io_uring instances (none on epoll).
 */
#include "net.h"
#include "proc.h"
#include "support.h"

#include <check.h>
#include <errno.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char certs[512]; /* @CERTS@: made once per test process */

static void
make_certs(void)
{
    snprintf(certs, sizeof(certs), "%s/pki", sw_test_tmpdir());
    struct stat st;
    if (stat(certs, &st) == 0) {
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "sh '%s/tests/tls/gen-certs.sh' '%s' >/dev/null 2>&1 && "
             "cp '%s/b.pem' '%s/live.pem' && cp '%s/b.key' '%s/live.key'",
             sw_test_env("SW_SOURCE_ROOT"), certs, certs, certs, certs, certs);
    ck_assert_msg(system(cmd) == 0, "gen-certs.sh failed: %s", cmd);
}

/* Every placeholder any template uses, with a value that loads. */
static const char *const *
all_vars(void)
{
    static const char *kv[64];
    static const char *const ports[] = {
        "PORT",    "ADMIN",      "B1",       "B2",    "B3",      "F",
        "H1",      "H2",         "W",        "S",     "REC",     "NODE",
        "DEAD",    "BAD",        "A",        "B",     "TLSPORT", "B_WILD",
        "B_EXACT", "B_DEEPWILD", "B_CANARY", "B_API", "B_ANY"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        kv[n++] = ports[i];
        kv[n++] = sw_test_itoa(20000 + (long)i);
    }
    kv[n++] = "TARGET";
    kv[n++] = "a";
    kv[n++] = "CERTS";
    kv[n++] = certs;
    kv[n++] = "TMP";
    kv[n++] = sw_test_tmpdir();
    kv[n] = NULL;
    return kv;
}

/* Run the daemon with `flag` on `file`; exit code, output in *out. */
static int
run(const char *flag, const char *file, char **out)
{
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), (char *)flag, "-c",
                    (char *)file, NULL};
    return sw_test_run(argv, 20000, out);
}

/* The dump printed on stdout, without shockwave's own stderr lines and
 * the first comment (it names the file). Caller frees. */
static char *
dump_of(const char *file)
{
    char cmd[4096];
    char outp[1024];
    snprintf(outp, sizeof(outp), "%s.dump", file);
    ck_assert(sw_test_conf_engine(file)); /* not spawned: system() */
    snprintf(cmd, sizeof(cmd), "'%s' -T -c '%s' > '%s' 2>/dev/null",
             sw_test_env("SW_SHOCKWAVE"), file, outp);
    ck_assert_msg(system(cmd) == 0, "-T failed on %s", file);
    FILE *f = fopen(outp, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "# effective configuration of ", 29) == 0,
                  "no header comment:\n%s", buf);
    const char *body = strchr(buf, '\n');
    ck_assert_ptr_nonnull(body);
    return strdup(body + 1);
}

/* -T on file: passes, loads again with -t, and dumps to the same text. */
static char *
check_fixed_point(const char *file)
{
    char *d1 = dump_of(file);
    ck_assert_msg(strstr(d1, "# not shown:") == NULL,
                  "%s: the dump misses directives:\n%s", file, d1);
    char again[1024];
    snprintf(again, sizeof(again), "%s.again.conf", file);
    ck_assert(sw_test_write_file(again, d1));
    char *out;
    int rc = run("-t", again, &out);
    ck_assert_msg(rc == 0, "%s: the dump does not pass -t (exit %d):\n%s\n%s",
                  file, rc, out, d1);
    free(out);
    char *d2 = dump_of(again);
    ck_assert_msg(strcmp(d1, d2) == 0,
                  "%s: dumping the dump changes it:\n--- first\n%s\n--- "
                  "second\n%s",
                  file, d1, d2);
    free(d2);
    return d1;
}

static void
expect_line(const char *dump, const char *line)
{
    char want[1024];
    int n = snprintf(want, sizeof(want), "\n%s\n", line);
    ck_assert(n > 0 && (size_t)n < sizeof(want));
    ck_assert_msg(strstr(dump, want) != NULL ||
                      strncmp(dump, want + 1, strlen(want) - 1) == 0,
                  "missing line \"%s\" in:\n%s", line, dump);
}

START_TEST(dump_shows_every_setting)
{
    make_certs();
    char file[600], inc[600];
    snprintf(file, sizeof(file), "%s/dump.conf", sw_test_tmpdir());
    snprintf(inc, sizeof(inc), "%s/dump_include.conf", sw_test_tmpdir());
    ck_assert(sw_test_conf_render("dump.conf", file, all_vars()));
    ck_assert(sw_test_conf_render("dump_include.conf", inc, all_vars()));

    /* -T also tests: the "successful" line goes to stderr, as with -t. */
    char *out;
    int rc = run("-T", file, &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "test is successful") != NULL, "%s", out);
    free(out);

    char *d = check_fixed_point(file);
    char line[1024];
    expect_line(d, "user nobody nogroup;");
    expect_line(d, "workers 3;");
    expect_line(d, "io_engine io_uring;");
    expect_line(d, "listen 127.0.0.1:20000 backlog=77;");
    expect_line(d, "listen 127.0.0.1:20016 backlog=511 tls;");
    expect_line(d, "listen 127.0.0.1:20099 backlog=9 tls proxy_protocol;");
    expect_line(d, "log_level warn;");
    snprintf(line, sizeof(line), "access_log \"%s/access log.json\" json;",
             sw_test_tmpdir());
    expect_line(d, line);
    /* From the included file, and defaults written out. */
    expect_line(d, "buffer_size 32k;");
    expect_line(d, "keepalive_timeout 0;");
    expect_line(d, "max_request_line 8k;");
    expect_line(d, "send_timeout 1m;");
    expect_line(d, "client_body_timeout 90m;");
    expect_line(d, "shutdown_timeout 250ms;");
    expect_line(d, "tls_protocols TLSv1.3;");
    expect_line(d, "tls_session_cache off;");
    snprintf(line, sizeof(line), "tls_ocsp_response %s/a.ocsp;", certs);
    expect_line(d, line);
    expect_line(d, "    server 127.0.0.1:20002 weight=3 max_fails=0 "
                   "fail_timeout=2m;");
    expect_line(d, "    server localhost:20002 weight=1 max_fails=1 "
                   "fail_timeout=10s tls;");
    expect_line(d, "    balance hash header X-User;");
    expect_line(d, "    balance hash $remote_addr;");
    expect_line(d, "    tls_verify off;");
    expect_line(d, "    tls_server_name api.internal;");
    expect_line(d, "    host example.com *.cdn.example.com;");
    expect_line(d, "    header X-Canary 1;");
    expect_line(d, "    header X-Debug;");
    expect_line(d, "    request_header set X-Real-IP \"${remote_addr}\";");
    expect_line(d, "    request_header add X-Price \"$$5 and \\\"quotes\\\" "
                   "\\\\ ${host}:${server_port}\";");
    expect_line(d, "    request_header remove Cookie;");
    expect_line(d, "    response_header set X-Served-By \"gate way\";");
    expect_line(d, "    return 503 \"busy; \\\"try\\\" {later}\";");
    expect_line(d, "    read_timeout 5m;");
    expect_line(d, "    ws_ping forward;");
    expect_line(d, "    ws_max_message 0;");
    expect_line(d, "    ws_validate_utf8 on;");
    expect_line(d, "    ws_max_frame 16m;");
    ck_assert_ptr_null(strstr(d, "include"));
    free(d);
}
END_TEST

START_TEST(dump_shows_documented_defaults)
{
    /* basic.conf sets almost nothing: the dump holds the defaults of
     * docs/configuration.md. */
    char file[600];
    snprintf(file, sizeof(file), "%s/defaults.conf", sw_test_tmpdir());
    ck_assert(sw_test_conf_render("basic.conf", file, all_vars()));
    char *d = check_fixed_point(file);
    char engine[64];
    snprintf(engine, sizeof(engine), "io_engine %s;", sw_test_io_engine());
    expect_line(d, engine);
    static const char *const lines[] = {
        "error_log stderr;",
        "log_level info;",
        "access_log off;",
        "real_ip_header X-Forwarded-For;",
        "real_ip_recursive off;",
        "buffer_size 16k;",
        "ws_pipe_size 1m;",
        "max_header_bytes 16k;",
        "max_request_line 8k;",
        "max_headers 100;",
        "max_client_connections 10000;",
        "client_header_timeout 10s;",
        "client_body_timeout 1m;",
        "keepalive_timeout 75s;",
        "send_timeout 1m;",
        "shutdown_timeout 10s;",
        "tls_protocols TLSv1.2 TLSv1.3;",
        "tls_ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
        "TLS_CHACHA20_POLY1305_SHA256;",
        "tls_ticket_rotate 1h;",
        "tls_session_cache 20480;",
        "tls_handshake_timeout 10s;",
        "fanout_bus_prefix shockwave:;",
        "fanout_bus_lease 3s;",
        "    balance round_robin;",
        "    keepalive 16;",
        "    keepalive_timeout 1m;",
        "    connect_timeout 5s;",
        "    read_timeout 1m;",
        "    send_timeout 1m;",
        "    tls_verify on;",
        "    path_prefix /;",
        "    websocket off;",
        "    ws_ping local;",
        "    ws_ping_interval 0;",
        "    ws_idle_timeout 0;",
        "    ws_close_timeout 5s;",
        "    ws_park_after 500ms;",
        "    ws_max_message 16m;",
        "    ws_max_frame 16m;",
        "    ws_max_buffer 256k;",
        "    ws_splice_threshold 16k;",
        "    ws_validate_utf8 off;",
        "    max_body_size 0;",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        expect_line(d, lines[i]);
    }
    ck_assert_ptr_null(strstr(d, "\nuser "));
    ck_assert_ptr_null(strstr(d, "\nfanout_bus "));
    free(d);
}
END_TEST

START_TEST(dump_shows_the_bus)
{
    /* The Redis bus: the URL as written (percent escapes kept), the prefix
     * quoted when it must be, the lease in its largest unit. */
    char file[600];
    snprintf(file, sizeof(file), "%s/bus.conf", sw_test_tmpdir());
    ck_assert(sw_test_write_file(
        file, "listen 127.0.0.1:20000;\n"
              "fanout_bus redis://gw:p%40ss@[::1]:6380/2;\n"
              "fanout_bus_prefix \"eu;1:\";\n"
              "fanout_bus_lease 1500ms;\n"
              "upstream feed { server 127.0.0.1:20001; }\n"
              "route { upstream feed; websocket on; fanout $uri; }\n"));
    char *d = check_fixed_point(file);
    expect_line(d, "fanout_bus redis://gw:p%40ss@[::1]:6380/2;");
    expect_line(d, "fanout_bus_prefix \"eu;1:\";");
    expect_line(d, "fanout_bus_lease 1500ms;");
    free(d);
    /* -t names a bad URL with its place */
    ck_assert(sw_test_write_file(file, "listen 127.0.0.1:20000;\n"
                                       "fanout_bus rediss://h;\n"));
    char *out;
    ck_assert_int_ne(run("-t", file, &out), 0);
    ck_assert_msg(strstr(out, "bus.conf:2:12: \"fanout_bus\": rediss:// "
                              "(Redis over TLS) is not supported") != NULL,
                  "%s", out);
    free(out);
}
END_TEST

START_TEST(every_template_dumps_to_a_fixed_point)
{
    make_certs();
    char dirp[600];
    snprintf(dirp, sizeof(dirp), "%s/tests/conf",
             sw_test_env("SW_SOURCE_ROOT"));
    DIR *dir = opendir(dirp);
    ck_assert_ptr_nonnull(dir);
    int checked = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".conf") != 0) {
            continue;
        }
        char file[800];
        snprintf(file, sizeof(file), "%s/fp-%s", sw_test_tmpdir(), e->d_name);
        if (!sw_test_conf_render(e->d_name, file, all_vars())) {
            continue;
        }
        char *out;
        int rc = run("-t", file, &out);
        free(out);
        if (rc != 0) {
            continue; /* a file made to fail (cli_typo.conf ...) */
        }
        free(check_fixed_point(file));
        checked++;
    }
    closedir(dir);
    ck_assert_msg(checked >= 15, "only %d templates checked", checked);
}
END_TEST

/* The file at path holds `io_engine ENGINE;` from the switch when it is
 * set, and names no engine when it is not; -T prints the engine. */
static void
expect_switch_engine(const char *path)
{
    char *text = NULL;
    ck_assert_int_eq(sw_test_shell(&text, "cat '%s'", path), 0);
    const char *e = getenv("SW_TEST_IO_ENGINE");
    char want[64];
    snprintf(want, sizeof(want), "\nio_engine %s; # SW_TEST_IO_ENGINE\n",
             sw_test_io_engine());
    if (e != NULL && e[0] != '\0') {
        ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in:\n%s", want + 1,
                      text);
    } else {
        ck_assert_msg(strstr(text, "io_engine") == NULL, "%s", text);
    }
    free(text);
    char *d = dump_of(path);
    snprintf(want, sizeof(want), "io_engine %s;", sw_test_io_engine());
    expect_line(d, want);
    free(d);
}

/* The io_uring instances a process holds: its "anon_inode:[io_uring]"
 * descriptors. */
static int
rings_of(pid_t pid)
{
    char dirp[64];
    snprintf(dirp, sizeof(dirp), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(dirp);
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char path[400], link[64];
        snprintf(path, sizeof(path), "%s/%s", dirp, e->d_name);
        ssize_t k = readlink(path, link, sizeof(link) - 1);
        if (k > 0) {
            link[k] = '\0';
            n += strcmp(link, "anon_inode:[io_uring]") == 0;
        }
    }
    closedir(dir);
    return n;
}

/* On io_uring the workers hold rings (or each said why it could not make
 * one and runs on epoll); on epoll there is none. */
static void
expect_engine_running(struct sw_test_gw *gw)
{
    if (strcmp(sw_test_io_engine(), "epoll") == 0) {
        ck_assert_int_eq(rings_of(gw->proc.pid), 0);
        return;
    }
    for (int i = 0; i < 100 && rings_of(gw->proc.pid) == 0; i++) {
        if (sw_test_proc_log_count(&gw->proc, 0, "io_uring unavailable", NULL) >
            0) {
            return;
        }
        sw_test_sleep_ms(50);
    }
    ck_assert_msg(rings_of(gw->proc.pid) > 0, "no io_uring in the daemon");
}

START_TEST(engine_switch_reaches_the_daemon)
{
    struct sw_test_gw gw;
    const char *kv[] = {"B1", sw_test_itoa(sw_test_free_port()), NULL};
    ck_assert(sw_test_gw_start(&gw, "basic.conf", kv));
    expect_switch_engine(gw.conf_path);
    expect_engine_running(&gw);
    /* A reload of a re-rendered file (without the line) keeps it. */
    ck_assert(sw_test_gw_render(&gw, "basic.conf", kv));
    long mark = sw_test_proc_log_size(&gw.proc);
    ck_assert(sw_test_proc_signal(&gw.proc, SIGHUP));
    ck_assert_int_ge(
        sw_test_proc_wait_log(&gw.proc, "configuration reloaded", mark, 10000),
        0);
    ck_assert_int_eq(
        sw_test_proc_log_count(&gw.proc, mark, "reload: io_engine", NULL), 0);
    expect_switch_engine(gw.conf_path);
    expect_engine_running(&gw);
    int st = 0;
    ck_assert_msg(sw_test_gw_stop_clean(&gw, &st), "exit status 0x%x", st);
}
END_TEST

/* io_uring refused (a seccomp filter, as in many containers): each worker
 * says why once and runs on epoll. */
START_TEST(refused_io_uring_falls_back_to_epoll)
{
    struct sw_test_gw gw;
    memset(&gw, 0, sizeof(gw));
    gw.port = sw_test_free_port();
    gw.admin_port = sw_test_free_port();
    const char *kv[] = {"B1", sw_test_itoa(sw_test_free_port()), NULL};
    snprintf(gw.conf_path, sizeof(gw.conf_path), "%s/refused.%d.conf",
             sw_test_tmpdir(), gw.port);
    ck_assert(sw_test_gw_render(&gw, "basic.conf", kv));
    FILE *f = fopen(gw.conf_path, "a");
    ck_assert_ptr_nonnull(f);
    fputs("io_engine io_uring;\n", f);
    fclose(f);
    char *argv[] = {(char *)sw_test_env("SW_NO_IO_URING"),
                    (char *)sw_test_env("SW_SHOCKWAVE"), "-R", "-c",
                    gw.conf_path, NULL};
    ck_assert(sw_test_proc_spawn(&gw.proc, "shockwave", argv));
    ck_assert_int_ge(sw_test_proc_wait_log(&gw.proc, "ready", 0, 10000), 0);
    /* basic.conf has two workers: one line each */
    char line[160];
    snprintf(line, sizeof(line),
             "io_uring unavailable (io_uring_setup: %s): running on epoll",
             strerror(ENOSYS));
    ck_assert_int_eq(sw_test_proc_log_count(&gw.proc, 0, line, NULL), 2);
    ck_assert_int_eq(rings_of(gw.proc.pid), 0);
    int st = 0;
    ck_assert_msg(sw_test_gw_stop_clean(&gw, &st), "exit status 0x%x", st);
}
END_TEST

START_TEST(version_and_build)
{
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-v", NULL};
    char *out;
    ck_assert_int_eq(sw_test_run(argv, 10000, &out), 0);
    ck_assert_msg(strncmp(out, "shockwave 0.", 12) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\nTLS: OpenSSL 3.") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "\nlibevent: 2.") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "built with: ") != NULL, "%s", out);
    free(out);
}
END_TEST

static Suite *
dump_suite(void)
{
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("dump");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, dump_shows_every_setting);
    tcase_add_test(tc, dump_shows_documented_defaults);
    tcase_add_test(tc, dump_shows_the_bus);
    tcase_add_test(tc, every_template_dumps_to_a_fixed_point);
    tcase_add_test(tc, engine_switch_reaches_the_daemon);
    tcase_add_test(tc, refused_io_uring_falls_back_to_epoll);
    tcase_add_test(tc, version_and_build);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(dump_suite());
}
