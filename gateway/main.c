/*
 * main.c - shockwave's entry point: command line, configuration test and
 * dump, version, start-up and the main thread's loop (signals and admin).
 *
 *   shockwave [-c FILE] [-t | -T] [-R] [-v] [-h]
 *
 * Start-up order (docs/operations.md):
 *   load and check the file -> resolve `user` (refuse root without it)
 *   -> TLS contexts (keys read as root) -> log files (handed to the user)
 *   -> workers and their listeners, admin listener (bound as root)
 *   -> drop to `user` -> worker threads -> signals -> READY=1
 *
 * The main thread owns the current configuration snapshot. Workers run the
 * data path on their own threads (gateway/worker.c).
 */
#include "gateway.h"

#include "build_config.h"

#include <shockwave/log.h>
#include <shockwave/plugin_host.h>
#include <shockwave/tls.h>

#include <event2/event.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: shockwave [-c FILE] [-t | -T] [-R] [-v] [-h]\n"
            "  -c FILE  configuration file (default: gateway.conf)\n"
            "  -t       test the configuration and exit (0 ok, 1 errors)\n"
            "  -T       test it and print the effective configuration\n"
            "  -R       allow running as root without a \"user\" directive\n"
            "  -v       print the version and build options and exit\n"
            "  -h       this help\n"
            "signals: HUP reloads the configuration, TERM/INT drain and stop,"
            " USR1 reopens the log files\n");
}

static void
version(void)
{
    printf("shockwave %s\n", SW_VERSION);
    printf("built with: %s, %s build", SW_BUILD_COMPILER, SW_BUILD_TYPE);
    if (strcmp(SW_BUILD_SANITIZE, "none") != 0) {
        printf(", sanitizers %s", SW_BUILD_SANITIZE);
    }
    printf("\nTLS: %s (built against %s)\n", OpenSSL_version(OPENSSL_VERSION),
           OPENSSL_VERSION_TEXT);
    printf("libevent: %s (built against %s)\n", event_get_version(),
           LIBEVENT_VERSION);
    printf("configuration: %s/shockwave/gateway.conf when installed\n",
           SW_BUILD_SYSCONFDIR);
}

enum sw_status
sw_gateway_attach(struct sw_conf *cf, unsigned nworkers, char *err,
                  size_t errlen)
{
    struct sw_tls_ctx *tls = sw_tls_ctx_new(cf, nworkers, err, errlen);
    if (tls == NULL) {
        return SW_ERROR;
    }
    cf->tls = tls;
    cf->tls_free = sw_tls_ctx_free;
    /* plugins: opened once per process, configured per snapshot */
    if (sw_plugin_bind(cf, nworkers, SW_BUILD_PLUGINDIR, err, errlen) !=
        SW_OK) {
        return SW_ERROR;
    }
    return SW_OK;
}

/* -t and -T: exit code 0 when the file (and its certificates) load. */
static int
test_config(const char *path, bool dump)
{
    static char err[16384];
    struct sw_conf *cf = sw_conf_load(path, err, sizeof(err));
    if (cf == NULL) {
        fputs(err, stderr);
        if (err[0] != '\0' && err[strlen(err) - 1] != '\n') {
            fputc('\n', stderr);
        }
        fprintf(stderr, "shockwave: configuration file %s test failed\n", path);
        return 1;
    }
    fprintf(stderr, "shockwave: configuration file %s syntax is ok\n", path);
    /* The user must exist; certificates, keys and cipher lists are checked
     * by building the TLS contexts, plugins by loading and configuring
     * them, as a start or a reload would. */
    err[0] = '\0';
    if (sw_gateway_privs_check(cf, path) != SW_OK ||
        sw_gateway_attach(cf, sw_gateway_worker_count(cf), err, sizeof(err)) !=
            SW_OK) {
        sw_conf_unref(cf);
        fputs(err, stderr);
        fprintf(stderr, "shockwave: configuration file %s test failed\n", path);
        return 1;
    }
    fprintf(stderr, "shockwave: configuration file %s test is successful\n",
            path);
    if (dump) {
        sw_conf_dump(cf, stdout);
        fflush(stdout);
    }
    sw_conf_unref(cf);
    return 0;
}

/* Load the file and everything read as root: TLS keys, log files. */
static enum sw_status
load(struct sw_gateway *g)
{
    static char err[16384];
    g->cf = sw_conf_load(g->conf_path, err, sizeof(err));
    if (g->cf == NULL) {
        fputs(err, stderr);
        fprintf(stderr,
                "shockwave: cannot start: configuration %s has "
                "errors\n",
                g->conf_path);
        return SW_ERROR;
    }
    g->cf->generation = 1;
    if (sw_gateway_privs_resolve(g) != SW_OK) {
        return SW_ERROR;
    }
    /* One session cache per worker (the count sw_gateway_start_workers
     * uses). */
    if (sw_gateway_attach(g->cf, sw_gateway_worker_count(g->cf), err,
                          sizeof(err)) != SW_OK) {
        fputs(err, stderr);
        fprintf(stderr,
                "shockwave: cannot start: TLS or plugin configuration in "
                "%s has errors\n",
                g->conf_path);
        return SW_ERROR;
    }
    return sw_gateway_logs_open(g);
}

int
main(int argc, char **argv)
{
    struct sw_gateway g = {.conf_path = "gateway.conf",
                           .admin_fd = -1,
                           .notify_fd = -1,
                           .error_fd = 2,
                           .access_fd = -1};
    int test_only = 0; /* 1: -t, 2: -T */
    int opt;
    while ((opt = getopt(argc, argv, "c:tTRvh")) != -1) {
        switch (opt) {
        case 'c':
            g.conf_path = optarg;
            break;
        case 't':
            test_only = SW_MAX(test_only, 1);
            break;
        case 'T':
            test_only = 2;
            break;
        case 'R':
            g.allow_root = true;
            break;
        case 'v':
            version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shockwave: unexpected argument \"%s\"\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (test_only != 0) {
        return test_config(g.conf_path, test_only == 2);
    }

    int rc = 1;
    if (load(&g) != SW_OK) {
        goto out;
    }
    g.start_unix = g.loaded_unix = (uint64_t)time(NULL);
    g.last_reload_ok = true;
    signal(SIGPIPE, SIG_IGN);
    g.base = event_base_new();
    if (g.base == NULL) {
        sw_log_error("event_base_new failed");
        goto out;
    }
    g.started_ms = sw_wall_ms();
    /* Active health checks run here, on the main thread's loop: one probe
     * per server whatever the number of workers (docs/architecture.md). */
    g.health = sw_health_new(g.base);
    if (g.health == NULL) {
        goto out;
    }
    sw_health_apply(g.health, g.cf);
    /* Every socket is bound before the drop; threads start after it. */
    if (sw_gateway_notify_open(&g) != SW_OK ||
        sw_gateway_start_workers(&g) != SW_OK ||
        sw_gateway_admin_start(&g) != SW_OK ||
        sw_gateway_privs_drop(&g) != SW_OK ||
        sw_gateway_run_workers(&g) != SW_OK ||
        sw_gateway_signals_start(&g) != SW_OK) {
        goto out;
    }
    sw_log_info("shockwave %s ready: %u workers, %zu listeners, pid %d",
                SW_VERSION, g.nworkers, g.cf->nlistens, (int)getpid());
    sw_gateway_notify(&g,
                      "READY=1\nSTATUS=ready: %u workers, %zu listeners, "
                      "configuration generation %llu\nMAINPID=%d",
                      g.nworkers, g.cf->nlistens,
                      (unsigned long long)g.cf->generation, (int)getpid());
    event_base_dispatch(g.base);
    rc = 0;
out:
    sw_gateway_stop_workers(&g);
    sw_gateway_admin_stop(&g);
    sw_gateway_signals_stop(&g);
    sw_health_free(g.health);
    if (g.base != NULL) {
        event_base_free(g.base);
    }
    sw_conf_unref(g.cf);
    if (rc == 0) {
        sw_log_info("shockwave stopped");
    }
    sw_gateway_notify_close(&g);
    sw_gateway_logs_close(&g);
    return rc;
}
