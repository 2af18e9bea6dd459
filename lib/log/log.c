/*
 * log.c - timestamped log lines, one write(2) each.
 *
 * The sink is set once at start-up (see log.h); afterwards only read, so the
 * atomics here are for visibility, not for contention. The JSON line
 * builder works on the caller's storage only.
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
static atomic_bool access_json = false;

/* Bytes kept free at the end of a JSON line for ,"truncated":true}\n. */
#define JSON_TAIL (sizeof(",\"truncated\":true}\n") - 1)

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

const char *
sw_log_level_name(int level)
{
    return level >= 0 && (size_t)level < SW_NELEMS(level_names)
               ? level_names[level]
               : NULL;
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

bool
sw_log_access_is_on(void)
{
    return atomic_load(&access_fd) >= 0;
}

void
sw_log_set_access_json(bool json)
{
    atomic_store(&access_json, json);
}

bool
sw_log_access_is_json(void)
{
    return atomic_load(&access_json) && atomic_load(&access_fd) >= 0;
}

/* Length of the valid UTF-8 sequence at p[0..n), or 0 when p[0] does not
 * start one (RFC 3629 4: no overlongs, no surrogates, at most U+10FFFF). */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

size_t
sw_log_json_escape(char *out, size_t cap, const char *p, size_t n, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = (const unsigned char *)p;
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = in[i];
        char esc[6];
        size_t elen = 0, take = 1;
        const unsigned char *src = NULL;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            elen = 2;
        } else if (c < 0x20 || c == 0x7f ||
                   (c >= 0x80 && (take = utf8_len(in + i, n - i)) == 0)) {
            /* A control byte, or a byte outside valid UTF-8: its value as
             * a code point, so the line stays valid JSON. */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            take = 1;
        } else {
            src = in + i;
            elen = take;
        }
        if (o + elen > cap) {
            break;
        }
        memcpy(out + o, src != NULL ? (const char *)src : esc, elen);
        o += elen;
        i += take;
    }
    if (used != NULL) {
        *used = i;
    }
    return o;
}

/* Append raw bytes, keeping JSON_TAIL free; false (and cut) when they do
 * not fit. */
static bool
json_raw(struct sw_log_json *j, const char *p, size_t n)
{
    if (j->len + n + JSON_TAIL > sizeof(j->buf)) {
        j->cut = true;
        return false;
    }
    memcpy(j->buf + j->len, p, n);
    j->len += n;
    return true;
}

/* ,"key": copied in place rather than formatted: it runs for every field
 * of every access-log line. */
static bool
json_key(struct sw_log_json *j, const char *key)
{
    size_t n = strlen(key);
    if (j->len + n + 4 + JSON_TAIL > sizeof(j->buf)) {
        j->cut = true;
        return false;
    }
    char *o = j->buf + j->len;
    o[0] = ',';
    o[1] = '"';
    memcpy(o + 2, key, n);
    o[n + 2] = '"';
    o[n + 3] = ':';
    j->len += n + 4;
    return true;
}

void
sw_log_json_begin(struct sw_log_json *j, const char *type)
{
    char ts[40];
    size_t n = stamp(ts, sizeof(ts));
    j->len = 0;
    j->cut = false;
    json_raw(j, "{\"time\":\"", 9);
    json_raw(j, ts, n > 0 ? n - 1 : 0); /* stamp() ends with a space */
    json_raw(j, "\"", 1);
    sw_log_json_str(j, "type", type, strlen(type));
}

void
sw_log_json_str(struct sw_log_json *j, const char *key, const char *p, size_t n)
{
    size_t mark = j->len;
    /* Room for the key, both quotes and at least one escaped byte. */
    if (!json_key(j, key) || j->len + 8 + JSON_TAIL > sizeof(j->buf)) {
        j->len = mark;
        j->cut = true;
        return;
    }
    j->buf[j->len++] = '"';
    size_t room = sizeof(j->buf) - JSON_TAIL - j->len - 1;
    size_t used;
    j->len += sw_log_json_escape(j->buf + j->len, room, p, n, &used);
    j->buf[j->len++] = '"';
    if (used < n) {
        j->cut = true;
    }
}

void
sw_log_json_u64(struct sw_log_json *j, const char *key, uint64_t v)
{
    size_t mark = j->len;
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    if (!json_key(j, key) || !json_raw(j, num, (size_t)n)) {
        j->len = mark;
        j->cut = true;
    }
}

void
sw_log_json_write(struct sw_log_json *j)
{
    /* JSON_TAIL was kept free, so this always fits. */
    const char *tail = j->cut ? ",\"truncated\":true}\n" : "}\n";
    size_t n = strlen(tail);
    memcpy(j->buf + j->len, tail, n);
    j->len += n;
    int fd = atomic_load(&access_fd);
    if (fd >= 0) {
        ssize_t rc = write(fd, j->buf, j->len);
        SW_UNUSED(rc);
    }
}
