/*
 * notify.c - the service manager's notify protocol (sd_notify(3)), written
 * directly: one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET ("/run/systemd/notify", or "@name" for an abstract
 * socket). No libsystemd: the protocol is a documented datagram of text
 * (systemd's sd_notify(3) "Notes"), and the daemon stays free of a
 * dependency it would use for nothing else.
 *
 *   start:   READY=1, STATUS=..., MAINPID=...   after the listeners accept
 *   SIGHUP:  RELOADING=1, MONOTONIC_USEC=...    before re-reading the file
 *            READY=1, STATUS=...                after, ok or failed
 *   SIGTERM: STOPPING=1, STATUS=draining
 *
 * Owns the notify socket (g->notify_fd). Main thread only. A datagram that
 * cannot be sent is logged once and dropped: the daemon never blocks on or
 * fails because of its service manager.
 */
#include "gateway.h"

#include <shockwave/log.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum sw_status
sw_gateway_notify_open(struct sw_gateway *g)
{
    g->notify_fd = -1;
    const char *name = getenv("NOTIFY_SOCKET");
    if (name == NULL || name[0] == '\0') {
        return SW_OK;
    }
    struct sockaddr_un *sun = &g->notify_addr;
    size_t n = strlen(name);
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if ((name[0] != '/' && name[0] != '@') || n >= sizeof(sun->sun_path)) {
        sw_log_warn("NOTIFY_SOCKET %s: not an absolute path or an @abstract "
                    "name (of at most %zu bytes); not notifying",
                    name, sizeof(sun->sun_path) - 1);
        return SW_OK;
    }
    memcpy(sun->sun_path, name, n);
    if (name[0] == '@') {
        /* An abstract name: a leading NUL, and no NUL at the end (the
         * address length says where it stops). */
        sun->sun_path[0] = '\0';
    }
    g->notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                                (name[0] == '/' ? 1 : 0));
    g->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (g->notify_fd < 0) {
        sw_log_error("NOTIFY_SOCKET: socket: %s", strerror(errno));
        return SW_ERROR;
    }
    return SW_OK;
}

void
sw_gateway_notify_close(struct sw_gateway *g)
{
    if (g->notify_fd >= 0) {
        close(g->notify_fd);
        g->notify_fd = -1;
    }
}

void
sw_gateway_notify(struct sw_gateway *g, const char *fmt, ...)
{
    if (g->notify_fd < 0) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    size_t len = SW_MIN((size_t)n, sizeof(msg) - 1);
    /* MSG_DONTWAIT: a full queue at the manager loses one status update
     * rather than stalling the main thread (signals, admin). */
    ssize_t w = sendto(g->notify_fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                       (const struct sockaddr *)&g->notify_addr, g->notify_len);
    if (w < 0 && !g->notify_warned) {
        g->notify_warned = true;
        sw_log_warn("NOTIFY_SOCKET: send: %s (further failures not logged)",
                    strerror(errno));
    }
}

uint64_t
sw_gateway_monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
