/*
 * notify_test.c - the service manager's notify protocol against a fake
 * NOTIFY_SOCKET: the test binds an AF_UNIX datagram socket (a path, or an
 * abstract "@name"), starts the daemon with NOTIFY_SOCKET naming it, and
 * reads what arrives:
 *
 *   READY=1 (with MAINPID) once the listener accepts: a connection made as
 *   soon as READY=1 is read gets an answer
 *   SIGHUP: RELOADING=1 with a MONOTONIC_USEC between the test's clock
 *   before the signal and after the message, then READY=1; a file with
 *   errors: the same pair, READY=1 with a "reload failed" STATUS=
 *   SIGTERM: STOPPING=1, and the daemon exits 0
 */
#include "net.h"
#include "proc.h"
#include "support.h"

#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sock = -1;          /* the fake manager's socket */
static char conf[600];         /* rendered notify.conf */
static int port;               /* its listener */
static struct sw_test_proc gw; /* the daemon */

/* Bind the fake manager's socket; name is a path or "@abstract". */
static void
manager_open(const char *name)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    size_t n = strlen(name);
    ck_assert(n < sizeof(sun.sun_path));
    memcpy(sun.sun_path, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@') {
        sun.sun_path[0] = '\0';
    } else {
        len++;
        unlink(name);
    }
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(sock, 0);
    ck_assert_msg(bind(sock, (struct sockaddr *)&sun, len) == 0, "bind %s: %s",
                  name, strerror(errno));
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", name, 1), 0);
}

/* The next datagram as a string (static), or NULL after timeout_ms. */
static const char *
manager_recv(int timeout_ms)
{
    static char msg[4096];
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) != 1) {
        return NULL;
    }
    ssize_t n = recv(sock, msg, sizeof(msg) - 1, 0);
    if (n < 0) {
        return NULL;
    }
    msg[n] = '\0';
    return msg;
}

/* Read datagrams until one holds line `key` (a whole "KEY=VALUE" line or
 * its start); fail after 10 s. Returns that datagram. */
static const char *
expect(const char *key)
{
    for (int i = 0; i < 20; i++) {
        const char *m = manager_recv(10000);
        ck_assert_msg(m != NULL, "no datagram with %s within 10 s", key);
        size_t kl = strlen(key);
        for (const char *l = m; l != NULL && *l != '\0';) {
            if (strncmp(l, key, kl) == 0) {
                return m;
            }
            l = strchr(l, '\n');
            l = l != NULL ? l + 1 : NULL;
        }
        fprintf(stderr, "notify: skipped datagram: %s\n", m);
    }
    ck_abort_msg("too many datagrams without %s", key);
    return NULL;
}

static unsigned long long
now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull +
           (unsigned long long)ts.tv_nsec / 1000ull;
}

static void
render(const char *user)
{
    const char *kv[] = {"PORT",  sw_test_itoa(port),
                        "ADMIN", sw_test_itoa(sw_test_free_port()),
                        "USER",  user,
                        NULL};
    ck_assert(sw_test_conf_render("notify.conf", conf, kv));
}

/* Start the daemon with the manager's NOTIFY_SOCKET; wait for READY=1
 * only (not the log), then connect at once. */
static void
start_and_expect_ready(void)
{
    port = sw_test_free_port();
    snprintf(conf, sizeof(conf), "%s/notify.%d.conf", sw_test_tmpdir(), port);
    render("");
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-R", "-c", conf,
                    NULL};
    ck_assert(sw_test_proc_spawn(&gw, "shockwave", argv));
    unsetenv("NOTIFY_SOCKET");
    const char *m = expect("READY=1");
    char pid[64];
    snprintf(pid, sizeof(pid), "MAINPID=%d", (int)gw.pid);
    ck_assert_msg(strstr(m, pid) != NULL, "READY without %s: %s", pid, m);
    ck_assert_msg(strstr(m, "STATUS=ready") != NULL, "%s", m);
    /* READY=1 means the listener accepts: this request is answered. */
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(port, "x", "/", &r), 1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);
}

static void
stop_and_expect_stopping(void)
{
    ck_assert(sw_test_proc_signal(&gw, SIGTERM));
    const char *m = expect("STOPPING=1");
    ck_assert_msg(strstr(m, "STATUS=draining") != NULL, "%s", m);
    int st;
    ck_assert(sw_test_proc_wait(&gw, 10000, &st));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
    close(sock);
    sock = -1;
}

/* SIGHUP: RELOADING=1 + MONOTONIC_USEC, then READY=1; returns the READY
 * datagram (static). */
static const char *
reload_and_expect(void)
{
    unsigned long long before = now_usec();
    ck_assert(sw_test_proc_signal(&gw, SIGHUP));
    const char *m = expect("RELOADING=1");
    unsigned long long after = now_usec();
    const char *mono = strstr(m, "MONOTONIC_USEC=");
    ck_assert_msg(mono != NULL, "RELOADING=1 without MONOTONIC_USEC: %s", m);
    unsigned long long usec = strtoull(mono + 15, NULL, 10);
    ck_assert_msg(usec >= before && usec <= after,
                  "MONOTONIC_USEC=%llu outside [%llu, %llu]", usec, before,
                  after);
    return expect("READY=1");
}

START_TEST(path_socket)
{
    char name[600];
    snprintf(name, sizeof(name), "%s/notify.sock", sw_test_tmpdir());
    manager_open(name);
    start_and_expect_ready();

    const char *m = reload_and_expect();
    ck_assert_msg(strstr(m, "STATUS=configuration generation 2") != NULL, "%s",
                  m);

    /* A file with errors: the manager still hears READY=1, with why. */
    ck_assert(sw_test_write_file(conf, "listen 127.0.0.1:1;\nlisten;\n"));
    m = reload_and_expect();
    ck_assert_msg(strstr(m, "STATUS=reload failed, keeping configuration "
                            "generation 2") != NULL,
                  "%s", m);
    /* The old configuration still serves. */
    struct sw_test_resp r;
    ck_assert_int_eq(sw_test_http_get(port, "x", "/", &r), 1);
    ck_assert_int_eq(r.status, 200);
    sw_test_resp_free(&r);

    stop_and_expect_stopping();
}
END_TEST

START_TEST(abstract_socket)
{
    char name[64];
    snprintf(name, sizeof(name), "@shockwave-notify-test-%d", (int)getpid());
    manager_open(name);
    start_and_expect_ready();
    render(""); /* same file, generation 2 */
    reload_and_expect();
    stop_and_expect_stopping();
}
END_TEST

static Suite *
notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("notify");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, path_socket);
    tcase_add_test(tc, abstract_socket);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(notify_suite());
}
