/*
 * logfiles.c - the error_log and access_log files: opened at start, handed
 * to the `user` the daemon drops to, reopened on SIGUSR1 (logrotate).
 *
 * A reopen opens the path anew and dup3()s the new file onto the fd number
 * in use, so a worker writing a line at that moment writes it whole to the
 * old file or the new one, and no thread ever sees a closed or reused fd
 * (no lock per line). When the open fails (a folder the user cannot write,
 * say) the old file stays in use and the error is logged.
 *
 * Owns g->error_fd and g->access_fd (when they are files). Main thread.
 */
#include "gateway.h"

#include <shockwave/log.h>

#include <fcntl.h>
#include <unistd.h>

#define LOG_MODE 0640 /* new log files: the user writes, its group reads */

static bool
is_file(struct sw_str path)
{
    return path.len > 0 && !sw_str_eq_ci(path, "stderr") &&
           !sw_str_eq_ci(path, "off");
}

/* Open a log file; hand it to the user the daemon will drop to. */
static int
open_log(const struct sw_gateway *g, const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, LOG_MODE);
    if (fd >= 0 && g->privs.drop &&
        fchown(fd, g->privs.uid, g->privs.gid) != 0) {
        fprintf(stderr, "shockwave: log %s: fchown to user %s: %s\n", path,
                g->privs.name, strerror(errno));
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

enum sw_status
sw_gateway_logs_open(struct sw_gateway *g)
{
    const struct sw_conf *cf = g->cf;
    g->error_fd = 2;
    g->access_fd = -1;
    if (is_file(cf->error_log)) {
        g->error_fd = open_log(g, cf->error_log.p);
        if (g->error_fd < 0) {
            fprintf(stderr, "shockwave: cannot open error_log %s: %s\n",
                    cf->error_log.p, strerror(errno));
            g->error_fd = 2;
            return SW_ERROR;
        }
    }
    sw_log_init(g->error_fd, (enum sw_log_level)cf->log_level);
    if (sw_str_eq_ci(cf->access_log, "stderr")) {
        g->access_fd = 2;
    } else if (is_file(cf->access_log)) {
        g->access_fd = open_log(g, cf->access_log.p);
        if (g->access_fd < 0) {
            sw_log_error("cannot open access_log %s: %s", cf->access_log.p,
                         strerror(errno));
            return SW_ERROR;
        }
    }
    /* The paths stay those of the start: a reload that names others logs
     * a warning (signals.c), a restart takes them. */
    snprintf(g->error_path, sizeof(g->error_path), "%s",
             is_file(cf->error_log) ? cf->error_log.p : "");
    snprintf(g->access_path, sizeof(g->access_path), "%s",
             is_file(cf->access_log) ? cf->access_log.p : "");
    sw_log_set_access_fd(g->access_fd);
    sw_log_set_access_json(cf->access_log_json);
    return SW_OK;
}

/* Reopen one file onto fd; false when it failed (logged). */
static bool
reopen(const struct sw_gateway *g, const char *path, int fd, const char *what)
{
    if (path[0] == '\0' || fd < 0) {
        return true;
    }
    int nfd = open_log(g, path);
    if (nfd < 0) {
        sw_log_error("reopen %s %s: %s (still writing to the old file)", what,
                     path, strerror(errno));
        return false;
    }
    int rc = dup3(nfd, fd, O_CLOEXEC);
    int err = errno;
    close(nfd);
    if (rc < 0) {
        sw_log_error("reopen %s %s: dup3: %s", what, path, strerror(err));
        return false;
    }
    return true;
}

void
sw_gateway_logs_reopen(struct sw_gateway *g)
{
    bool ok = reopen(g, g->error_path, g->error_fd, "error_log");
    ok = reopen(g, g->access_path, g->access_fd, "access_log") && ok;
    if (ok) {
        sw_log_info("log files reopened (SIGUSR1)");
    }
}

void
sw_gateway_logs_close(struct sw_gateway *g)
{
    if (g->access_fd > 2) {
        sw_log_set_access_fd(-1);
        close(g->access_fd);
    }
    g->access_fd = -1;
}
