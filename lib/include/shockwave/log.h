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
 * Access log line: written as given by the caller, behind the same timestamp,
 * or one JSON object per line (sw_log_json_*).
 *
 * Log files are reopened by the daemon with dup3() onto the same fd numbers
 * (SIGUSR1, for logrotate): a writer on another thread never sees a closed
 * or reused fd, and no lock is taken per line.
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
/* The name sw_log_level_parse reads back; NULL for a value out of range. */
const char *sw_log_level_name(int level);

bool sw_log_enabled(enum sw_log_level level);

void sw_log(enum sw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One access log line (no effect when the access log is off). */
void sw_log_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * JSON access log (`access_log PATH json;`): one object per line, built in
 * fixed storage on the caller's stack and written with one write(2).
 *
 *   struct sw_log_json j;
 *   sw_log_json_begin(&j, "http");      {"time":"...Z","type":"http"
 *   sw_log_json_str(&j, "client", p, n);  ,"client":"10.0.0.1"
 *   sw_log_json_u64(&j, "status", 200);   ,"status":200
 *   sw_log_json_write(&j);                }\n
 *
 * Strings are escaped per RFC 8259 7: `"` and `\`, control characters as
 * \n \r \t or \u00XX, DEL as \u007f; valid UTF-8 passes as it is, and each
 * byte that is not part of a valid UTF-8 sequence becomes \u00XX (its value
 * as a code point), so a client's bytes never break the line. A value that
 * does not fit is cut at a character boundary and the object gets
 * "truncated":true; the line always closes.
 */
#define SW_LOG_JSON_MAX 4096 /* bytes of one JSON line, newline included */

struct sw_log_json {
    size_t len;                /* bytes used in buf */
    bool cut;                  /* a value was shortened */
    char buf[SW_LOG_JSON_MAX]; /* the line so far */
};

/* Turn JSON lines on or off for the access log (default off: text). */
void sw_log_set_access_json(bool json);

/* True when the access log is on. */
bool sw_log_access_is_on(void);

/* True when the access log is on and writes JSON lines. */
bool sw_log_access_is_json(void);

void sw_log_json_begin(struct sw_log_json *j, const char *type);
void sw_log_json_str(struct sw_log_json *j, const char *key, const char *p,
                     size_t n);
void sw_log_json_u64(struct sw_log_json *j, const char *key, uint64_t v);

/* Close the object and write it to the access log. */
void sw_log_json_write(struct sw_log_json *j);

/* Escape p[0..n) as the inside of a JSON string into out (no quotes, no
 * NUL). Returns the bytes written; stops before a character whose escape
 * would pass cap, and sets *used (if not NULL) to the input bytes taken. */
size_t sw_log_json_escape(char *out, size_t cap, const char *p, size_t n,
                          size_t *used);

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
