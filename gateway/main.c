/*
 * main.c - shockwave's entry point: command line, configuration test,
 * logs, start-up and the main thread's loop (signals and admin).
 *
 *   shockwave [-c FILE] [-t] [-v] [-h]
 *
 * The main thread owns the current configuration snapshot. Workers run the
 * data path on their own threads (gateway/worker.c).
 */
#include "gateway.h"

#include <shockwave/log.h>
#include <shockwave/tls.h>

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

static void
usage(FILE *out)
{
    fprintf(
        out,
        "usage: shockwave [-c FILE] [-t] [-v] [-h]\n"
        "  -c FILE  configuration file (default: gateway.conf)\n"
        "  -t       test the configuration and exit (0 ok, 1 errors)\n"
        "  -v       print the version and exit\n"
        "  -h       this help\n"
        "signals: HUP reloads the configuration, TERM/INT drain and stop\n");
}

static int
test_config(const char *path)
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
    /* Certificates, keys and cipher lists are checked by building the TLS
     * contexts, as a start or a reload would. */
    struct sw_tls_ctx *t = sw_tls_ctx_new(cf, 1, err, sizeof(err));
    sw_conf_unref(cf);
    if (t == NULL) {
        fputs(err, stderr);
        fprintf(stderr, "shockwave: configuration file %s test failed\n", path);
        return 1;
    }
    sw_tls_ctx_free(t);
    fprintf(stderr, "shockwave: configuration file %s test is successful\n",
            path);
    return 0;
}

/* Open the error and access logs named by the configuration. */
static enum sw_status
open_logs(const struct sw_conf *cf)
{
    int fd = 2;
    if (cf->error_log.len > 0 && !sw_str_eq_ci(cf->error_log, "stderr")) {
        fd = open(cf->error_log.p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0644);
        if (fd < 0) {
            fprintf(stderr, "shockwave: cannot open error_log %s: %s\n",
                    cf->error_log.p, strerror(errno));
            return SW_ERROR;
        }
    }
    sw_log_init(fd, (enum sw_log_level)cf->log_level);
    if (cf->access_log.len == 0 || sw_str_eq_ci(cf->access_log, "off")) {
        sw_log_set_access_fd(-1);
    } else if (sw_str_eq_ci(cf->access_log, "stderr")) {
        sw_log_set_access_fd(2);
    } else {
        int afd = open(cf->access_log.p,
                       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (afd < 0) {
            sw_log_error("cannot open access_log %s: %s", cf->access_log.p,
                         strerror(errno));
            return SW_ERROR;
        }
        sw_log_set_access_fd(afd);
    }
    return SW_OK;
}

int
main(int argc, char **argv)
{
    struct sw_gateway g = {.conf_path = "gateway.conf", .admin_fd = -1};
    bool test_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            g.conf_path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'v':
            printf("shockwave %s\n", SW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (test_only) {
        return test_config(g.conf_path);
    }

    static char err[16384];
    g.cf = sw_conf_load(g.conf_path, err, sizeof(err));
    if (g.cf == NULL) {
        fputs(err, stderr);
        fprintf(stderr,
                "shockwave: cannot start: configuration %s has "
                "errors\n",
                g.conf_path);
        return 1;
    }
    g.cf->generation = 1;
    /* The TLS contexts ride on the snapshot; one session cache per worker
     * (the same count sw_gateway_start_workers uses). */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nw = g.cf->workers != 0 ? g.cf->workers
                  : ncpu > 0         ? (unsigned)ncpu
                                     : 1;
    struct sw_tls_ctx *tls = sw_tls_ctx_new(g.cf, nw, err, sizeof(err));
    if (tls == NULL) {
        fputs(err, stderr);
        fprintf(stderr,
                "shockwave: cannot start: TLS configuration in %s has "
                "errors\n",
                g.conf_path);
        sw_conf_unref(g.cf);
        return 1;
    }
    g.cf->tls = tls;
    g.cf->tls_free = sw_tls_ctx_free;
    if (open_logs(g.cf) != SW_OK) {
        sw_conf_unref(g.cf);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    g.base = event_base_new();
    if (g.base == NULL) {
        sw_log_error("event_base_new failed");
        goto out;
    }
    g.started_ms = sw_gateway_wall_ms();
    /* Active health checks run here, on the main thread's loop: one probe
     * per server whatever the number of workers (docs/architecture.md). */
    g.health = sw_health_new(g.base);
    if (g.health == NULL) {
        goto out;
    }
    sw_health_apply(g.health, g.cf);
    if (sw_gateway_start_workers(&g) != SW_OK ||
        sw_gateway_admin_start(&g) != SW_OK ||
        sw_gateway_signals_start(&g) != SW_OK) {
        goto out;
    }
    sw_log_info("shockwave %s ready: %u workers, %zu listeners, pid %d",
                SW_VERSION, g.nworkers, g.cf->nlistens, (int)getpid());
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
    return rc;
}
