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

/* The gateway's own readers: a plugin's values read like its directives. */
int
sw_plugin_parse_duration(const char *s, uint64_t *ms)
{
    return sw_conf_parse_duration((struct sw_str){s, strlen(s)}, ms);
}

int
sw_plugin_parse_size(const char *s, uint64_t *bytes)
{
    return sw_conf_parse_size((struct sw_str){s, strlen(s)}, bytes);
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
