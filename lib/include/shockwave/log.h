/*
 * log.h - the error log and the access log.
 *
 * One line per event, written with a single write(2) so lines from several
 * worker threads never interleave. The sink (fd and level) is set once by the
 * daemon before the workers start and only read afterwards: that is the one
 * process-wide setting in lib/ (an error log is a property of the process,
 * like nginx's). Thread-safe.
 *
 * Error log line:  2026-11-28T06:30:00.123Z [warn] <message>
 * Access log line: written as given by the caller, behind the same timestamp.
 */
#ifndef SHOCKWAVE_LOG_H
#define SHOCKWAVE_LOG_H

#include <shockwave/core.h>

enum sw_log_level {
    SW_LOG_ERROR = 0,
    SW_LOG_WARN = 1,
    SW_LOG_INFO = 2,
    SW_LOG_DEBUG = 3,
};

/* Set where error lines go and the most verbose level written. Call before
 * starting threads. Defaults: stderr, SW_LOG_INFO. */
void sw_log_init(int fd, enum sw_log_level level);

/* Set the access log fd (-1 disables it; the default). */
void sw_log_set_access_fd(int fd);

/* Parse "error|warn|info|debug"; returns SW_OK or SW_EINVAL. */
enum sw_status sw_log_level_parse(const char *name, enum sw_log_level *out);

bool sw_log_enabled(enum sw_log_level level);

void sw_log(enum sw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One access log line (no effect when the access log is off). */
void sw_log_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define sw_log_error(...) sw_log(SW_LOG_ERROR, __VA_ARGS__)
#define sw_log_warn(...) sw_log(SW_LOG_WARN, __VA_ARGS__)
#define sw_log_info(...) sw_log(SW_LOG_INFO, __VA_ARGS__)
#define sw_log_debug(...)                                                      \
    do {                                                                       \
        if (sw_log_enabled(SW_LOG_DEBUG)) {                                    \
            sw_log(SW_LOG_DEBUG, __VA_ARGS__);                                 \
        }                                                                      \
    } while (0)

#endif
