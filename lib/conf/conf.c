/*
 * conf.c - the configuration snapshot's public entry points (see conf.h).
 *
 *   sw_conf_load(path) --read--> sw__conf_parse (conf_parse.c) --> snapshot
 *   sw_conf_ref / sw_conf_unref: atomic count; the last unref frees the
 *   arena, which holds the snapshot itself and everything it points to.
 *
 * Owns nothing between calls. Loading runs on one thread; ref/unref and the
 * lookups are safe from any thread on an immutable snapshot.
 */
#include "conf_int.h"

#include <errno.h>
#include <limits.h>

/* Build the folder part of path in out; NULL when it has none. */
static const char *
dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return NULL;
    }
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= n) {
        return NULL;
    }
    memcpy(out, path, len);
    out[len] = '\0';
    return out;
}

struct sw_conf *
sw_conf_load(const char *path, char *err, size_t errlen)
{
    struct sw__conf_errors errs;
    struct sw_conf *cf = NULL;
    char *text = NULL;
    char *real = NULL;
    char dir[PATH_MAX];
    size_t len;
    sw__conf_errors_init(&errs, err, errlen);
    enum sw_status rc = sw__conf_read_file(path, &text, &len);
    if (rc != SW_OK) {
        sw__conf_error(&errs, path, 1, 1, "cannot read configuration: %s",
                       rc == SW_ETOOBIG  ? "file too large"
                       : rc == SW_ENOMEM ? "out of memory"
                                         : strerror(errno));
        goto out;
    }
    real = realpath(path, NULL);
    cf = sw__conf_parse(text, len, path, dir_of(path, dir, sizeof(dir)), real,
                        &errs);
out:
    free(real);
    free(text);
    return cf;
}

struct sw_conf *
sw_conf_load_string(const char *text, const char *name, const char *dir,
                    char *err, size_t errlen)
{
    struct sw__conf_errors errs;
    sw__conf_errors_init(&errs, err, errlen);
    return sw__conf_parse(text, strlen(text), name != NULL ? name : "(string)",
                          dir, NULL, &errs);
}

struct sw_conf *
sw_conf_ref(struct sw_conf *cf)
{
    atomic_fetch_add_explicit(&cf->refcnt, 1, memory_order_relaxed);
    return cf;
}

void
sw_conf_unref(struct sw_conf *cf)
{
    if (cf == NULL) {
        return;
    }
    /* acq_rel: every use of the snapshot by other threads happens before
     * the free done by the last one. */
    if (atomic_fetch_sub_explicit(&cf->refcnt, 1, memory_order_acq_rel) == 1) {
        if (cf->tls_free != NULL) {
            cf->tls_free(cf->tls);
        }
        if (cf->health_free != NULL) {
            cf->health_free(cf);
        }
        if (cf->plugins_free != NULL) {
            cf->plugins_free(cf);
        }
        sw__conf_arena_free(cf->arena);
    }
}

enum sw_status
sw_conf_parse_size(struct sw_str s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < s.len && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        unsigned dgt = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) {
            return SW_EINVAL;
        }
        v = v * 10 + dgt;
    }
    if (i == 0) {
        return SW_EINVAL;
    }
    unsigned shift = 0;
    if (i + 1 == s.len) {
        switch (s.p[i]) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            return SW_EINVAL;
        }
    } else if (i != s.len) {
        return SW_EINVAL;
    }
    if (shift > 0 && v > (UINT64_MAX >> shift)) {
        return SW_EINVAL;
    }
    *out = v << shift;
    return SW_OK;
}

enum sw_status
sw_conf_parse_duration(struct sw_str s, uint64_t *out_ms)
{
    uint64_t total = 0;
    size_t i = 0;
    if (s.len == 0) {
        return SW_EINVAL;
    }
    /* "1h30m" is allowed: number-unit pairs, largest first is not
     * enforced. A bare number is seconds, and only when it stands alone. */
    while (i < s.len) {
        uint64_t v = 0;
        size_t start = i;
        for (; i < s.len && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
            unsigned dgt = (unsigned)(s.p[i] - '0');
            if (v > (UINT64_MAX - dgt) / 10) {
                return SW_EINVAL;
            }
            v = v * 10 + dgt;
        }
        if (i == start) {
            return SW_EINVAL;
        }
        uint64_t mul;
        if (i == s.len) {
            if (start != 0) {
                return SW_EINVAL;
            }
            mul = 1000;
        } else if (i + 1 < s.len && s.p[i] == 'm' && s.p[i + 1] == 's') {
            mul = 1;
            i += 2;
        } else {
            switch (s.p[i]) {
            case 's':
                mul = 1000;
                break;
            case 'm':
                mul = 60000;
                break;
            case 'h':
                mul = 3600000;
                break;
            case 'd':
                mul = 86400000;
                break;
            default:
                return SW_EINVAL;
            }
            i++;
        }
        if (v > (UINT64_MAX - total) / mul) {
            return SW_EINVAL;
        }
        total += v * mul;
    }
    *out_ms = total;
    return SW_OK;
}

const struct sw_conf_upstream *
sw_conf_find_upstream(const struct sw_conf *cf, struct sw_str name)
{
    for (size_t i = 0; i < cf->nupstreams; i++) {
        const struct sw_conf_upstream *u = &cf->upstreams[i];
        if (u->name.len == name.len &&
            memcmp(u->name.p, name.p, name.len) == 0) {
            return u;
        }
    }
    return NULL;
}
