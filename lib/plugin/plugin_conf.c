/*
 * plugin_conf.c - what a plugin's configure may call (plugin.h,
 * "configuration"): its block's directives, errors with positions, paths
 * resolved like the gateway's own, durations and sizes read like the
 * gateway's own, counters.
 *
 * Owns nothing: a struct sw_plugin_conf lives on plugin_load.c's stack
 * for one configure call. Main thread.
 */
#include "plugin_int.h"

#include <stdarg.h>

size_t
sw_plugin_conf_count(const struct sw_plugin_conf *pc)
{
    return pc->pb->ndirectives;
}

const char *
sw_plugin_conf_name(const struct sw_plugin_conf *pc, size_t i)
{
    return i < pc->pb->ndirectives ? pc->pb->directives[i].name.p : NULL;
}

size_t
sw_plugin_conf_nargs(const struct sw_plugin_conf *pc, size_t i)
{
    return i < pc->pb->ndirectives ? pc->pb->directives[i].nargs : 0;
}

const char *
sw_plugin_conf_arg(const struct sw_plugin_conf *pc, size_t i, size_t j)
{
    if (i >= pc->pb->ndirectives || j >= pc->pb->directives[i].nargs) {
        return NULL;
    }
    return pc->pb->directives[i].args[j].p;
}

ssize_t
sw_plugin_conf_find(const struct sw_plugin_conf *pc, const char *name)
{
    for (size_t i = pc->pb->ndirectives; i > 0; i--) {
        if (strcmp(pc->pb->directives[i - 1].name.p, name) == 0) {
            return (ssize_t)(i - 1);
        }
    }
    return -1;
}

int
sw_plugin_conf_error(struct sw_plugin_conf *pc, size_t i, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct sw_conf_plugin_block *pb = pc->pb;
    unsigned line = pb->line;
    unsigned col = pb->col;
    if (i < pb->ndirectives) {
        line = pb->directives[i].line;
        col = pb->directives[i].col;
    }
    sw__plugin_error(pc->e, pb->file, line, col, "plugin %s: %s", pc->pl->name,
                     msg);
    return SW_EINVAL;
}

int
sw_plugin_conf_path(const struct sw_plugin_conf *pc, const char *path,
                    char *out, size_t outlen)
{
    const struct sw_str dir = pc->pb->dir;
    int n;
    if (path[0] == '/' || dir.len == 0) {
        n = snprintf(out, outlen, "%s", path);
    } else {
        bool slash = dir.p[dir.len - 1] == '/';
        n = snprintf(out, outlen, "%.*s%s%s", (int)dir.len, dir.p,
                     slash ? "" : "/", path);
    }
    return n >= 0 && (size_t)n < outlen ? SW_OK : SW_ETOOBIG;
}

/* digits then a unit from units[] (scale per suffix); empty suffix uses
 * bare_scale. */
struct unit {
    const char *suffix;
    uint64_t scale;
};

static int
parse_scaled(const char *s, const struct unit *units, size_t nunits,
             uint64_t bare_scale, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return SW_EINVAL;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0) {
        return SW_EINVAL;
    }
    uint64_t scale = 0;
    if (s[i] == '\0') {
        scale = bare_scale;
    }
    for (size_t k = 0; scale == 0 && k < nunits; k++) {
        if (strcmp(s + i, units[k].suffix) == 0) {
            scale = units[k].scale;
        }
    }
    if (scale == 0 || (v != 0 && v > UINT64_MAX / scale)) {
        return SW_EINVAL;
    }
    *out = v * scale;
    return SW_OK;
}

int
sw_plugin_parse_duration(const char *s, uint64_t *ms)
{
    static const struct unit units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    return parse_scaled(s, units, SW_NELEMS(units), 1000, ms);
}

int
sw_plugin_parse_size(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {
        {"k", 1024},        {"K", 1024},          {"m", 1024 * 1024},
        {"M", 1024 * 1024}, {"g", 1024ull << 20}, {"G", 1024ull << 20},
    };
    return parse_scaled(s, units, SW_NELEMS(units), 1, bytes);
}

unsigned
sw_plugin_conf_workers(const struct sw_plugin_conf *pc)
{
    return pc->nworkers;
}

const char *
sw_plugin_conf_route(const struct sw_plugin_conf *pc)
{
    return pc->rt->name.p;
}

void
sw_plugin_conf_skip_frames(struct sw_plugin_conf *pc)
{
    pc->skip_frames = true;
}

int
sw_plugin_conf_counter(struct sw_plugin_conf *pc, const char *name,
                       const char *help)
{
    return sw__plugin_counter_register(pc->pl->name, name, help);
}
