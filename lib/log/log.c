/*
 * log.c - timestamped log lines, one write(2) each.
 *
 * The sink is set once at start-up (see log.h); afterwards only read, so the
 * atomics here are for visibility, not for contention.
 */
#include <shockwave/log.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_fd = 2;
static atomic_int log_level = SW_LOG_INFO;
static atomic_int access_fd = -1;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void
sw_log_init(int fd, enum sw_log_level level)
{
    atomic_store(&log_fd, fd);
    atomic_store(&log_level, (int)level);
}

void
sw_log_set_access_fd(int fd)
{
    atomic_store(&access_fd, fd);
}

enum sw_status
sw_log_level_parse(const char *name, enum sw_log_level *out)
{
    for (size_t i = 0; i < SW_NELEMS(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum sw_log_level)i;
            return SW_OK;
        }
    }
    return SW_EINVAL;
}

bool
sw_log_enabled(enum sw_log_level level)
{
    return (int)level <= atomic_load(&log_level);
}

static size_t
stamp(char *out, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n +=
        (size_t)snprintf(out + n, cap - n, ".%03dZ ", (int)(tv.tv_usec / 1000));
    return n;
}

static void
vline(int fd, const char *prefix, const char *fmt, va_list ap)
{
    char line[2048];
    size_t n = stamp(line, sizeof(line));
    if (prefix != NULL) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", prefix);
    }
    int w = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (w < 0) {
        return;
    }
    n = SW_MIN(n + (size_t)w, sizeof(line) - 2);
    line[n++] = '\n';
    /* One write per line keeps lines whole across threads; a short write to a
     * log is not worth a retry loop. */
    ssize_t rc = write(fd, line, n);
    SW_UNUSED(rc);
}

void
sw_log(enum sw_log_level level, const char *fmt, ...)
{
    if (!sw_log_enabled(level)) {
        return;
    }
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "[%s] ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    vline(atomic_load(&log_fd), prefix, fmt, ap);
    va_end(ap);
}

void
sw_log_access(const char *fmt, ...)
{
    int fd = atomic_load(&access_fd);
    if (fd < 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vline(fd, NULL, fmt, ap);
    va_end(ap);
}
