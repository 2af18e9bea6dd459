/*
 * plugin_load.c - the process's plugins and the binding of a snapshot to
 * them (docs/plugins.md, "Life of a plugin").
 *
 *   load_one         dlopen (RTLD_NOW: a missing accessor fails here, with
 *                    its name), the entry symbol, the descriptor checked
 *   check_block      a route block's directives against the descriptor's
 *                    table: names, counts, repeats, with positions
 *   sw_plugin_bind   every load_plugin, then every route block configured
 *   free_set         unconfigure, on the snapshot's last unref
 *   counters         the names of the plugins' counters, and their
 *                    exposition
 *
 * Owns: the process table of loaded plugins (never unloaded) and the
 * counters' names; each snapshot's chains (freed with it).
 *
 * Threading: bind and free run on the main thread (free may run on a
 * worker that drops the last reference to an old snapshot: unconfigure
 * must not assume a thread). The counter table is appended to on the main
 * thread and read by the admin thread: entries are written before the
 * count is published with a release store.
 */
#include "plugin_int.h"

#include <shockwave/log.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>

static struct sw__plugin_loaded *loaded[SW_PLUGIN_MAX];
static unsigned nloaded;

struct counter_name {
    char name[160]; /* plugin_<plugin>_<name> */
    char help[256];
};
static struct counter_name counters[SW_METRICS_PLUGIN_COUNTERS];
static unsigned ncounters; /* published with release */
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

void
sw__plugin_error(struct sw__plugin_errors *e, struct sw_str file, unsigned line,
                 unsigned col, const char *fmt, ...)
{
    e->n++;
    if (e->buf == NULL || e->len + 1 >= e->cap) {
        return;
    }
    int n = snprintf(e->buf + e->len, e->cap - e->len,
                     "%.*s:%u:%u: ", (int)file.len, file.p, line, col);
    if (n > 0) {
        e->len = SW_MIN(e->cap - 1, e->len + (size_t)n);
    }
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        e->len = SW_MIN(e->cap - 1, e->len + (size_t)n);
    }
    if (e->len + 1 < e->cap) {
        e->buf[e->len++] = '\n';
        e->buf[e->len] = '\0';
    }
}

/* ---- loading ----------------------------------------------------------- */

static struct sw__plugin_loaded *
find_loaded(const char *name)
{
    for (unsigned i = 0; i < nloaded; i++) {
        if (strcmp(loaded[i]->name, name) == 0) {
            return loaded[i];
        }
    }
    return NULL;
}

static bool
name_ok(const char *n)
{
    size_t len = n != NULL ? strlen(n) : 0;
    if (len == 0 || len > 64) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') ||
              n[i] == '_')) {
            return false;
        }
    }
    return true;
}

/* The descriptor's own rules; NULL when it passes, else why not. */
static const char *
check_descriptor(const struct sw_plugin *d, const char *want)
{
    if (d->abi_major != SW_PLUGIN_ABI_MAJOR) {
        return "ABI major version mismatch";
    }
    if (d->size < offsetof(struct sw_plugin, on_log) + sizeof(d->on_log)) {
        return "descriptor smaller than ABI 1.0's";
    }
    /* want passed the conf's name rules: equal is enough */
    if (d->name == NULL || strcmp(d->name, want) != 0) {
        return "descriptor name differs from load_plugin's NAME";
    }
    if (d->configure == NULL) {
        return "descriptor has no configure";
    }
    for (const struct sw_plugin_directive *pd = d->directives;
         pd != NULL && pd->name != NULL; pd++) {
        if (pd->min_args > pd->max_args || pd->max_args > 16) {
            return "a directive's argument counts are out of order or over "
                   "16";
        }
    }
    return NULL;
}

static struct sw__plugin_loaded *
load_one(const struct sw_conf_plugin_load *pl, const char *default_dir,
         struct sw__plugin_errors *e)
{
    struct sw__plugin_loaded *have = find_loaded(pl->name.p);
    char path[4096];
    if (pl->path.len > 0) {
        snprintf(path, sizeof(path), "%s", pl->path.p);
    } else {
        snprintf(path, sizeof(path), "%s/%s.so", default_dir, pl->name.p);
    }
    if (have != NULL) {
        /* loaded by an earlier snapshot: the same file, or say it stays */
        if (strcmp(have->path, path) != 0) {
            sw_log_warn("load_plugin %s: %s was loaded first and stays (a "
                        "plugin is loaded once per process); restart to load "
                        "%s",
                        pl->name.p, have->path, path);
        }
        return have;
    }
    if (nloaded == SW_PLUGIN_MAX) {
        sw__plugin_error(e, pl->file, pl->line, pl->col,
                         "load_plugin %s: too many plugins (limit %d)",
                         pl->name.p, SW_PLUGIN_MAX);
        return NULL;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        sw__plugin_error(e, pl->file, pl->line, pl->col, "load_plugin %s: %s",
                         pl->name.p, dlerror());
        return NULL;
    }
    const struct sw_plugin *(*entry)(void) = NULL;
    *(void **)&entry = dlsym(h, SW_PLUGIN_ENTRY);
    const struct sw_plugin *d = entry != NULL ? entry() : NULL;
    if (d == NULL) {
        sw__plugin_error(e, pl->file, pl->line, pl->col,
                         "load_plugin %s: %s has no %s() or it returned NULL",
                         pl->name.p, path, SW_PLUGIN_ENTRY);
        dlclose(h);
        return NULL;
    }
    const char *why = check_descriptor(d, pl->name.p);
    if (why != NULL) {
        sw__plugin_error(
            e, pl->file, pl->line, pl->col,
            "load_plugin %s: %s: %s (plugin ABI %u.%u, gateway ABI "
            "%d.%d)",
            pl->name.p, path, why, d->abi_major, d->abi_minor,
            SW_PLUGIN_ABI_MAJOR, SW_PLUGIN_ABI_MINOR);
        dlclose(h);
        return NULL;
    }
    struct sw__plugin_loaded *lp = calloc(1, sizeof(*lp));
    if (lp == NULL) {
        sw__plugin_error(e, pl->file, pl->line, pl->col, "out of memory");
        dlclose(h);
        return NULL;
    }
    /* a newer minor's descriptor is larger: copy what this ABI knows */
    memcpy(&lp->desc, d, SW_MIN((size_t)d->size, sizeof(lp->desc)));
    lp->handle = h;
    lp->index = nloaded;
    snprintf(lp->name, sizeof(lp->name), "%s", d->name);
    snprintf(lp->path, sizeof(lp->path), "%s", path);
    loaded[nloaded] = lp;
    /* workers read the table (sw__plugin_loaded_at) */
    __atomic_store_n(&nloaded, nloaded + 1, __ATOMIC_RELEASE);
    sw_log_info("plugin %s %s loaded from %s (ABI %u.%u)", lp->name,
                d->version != NULL ? d->version : "-", path, d->abi_major,
                d->abi_minor);
    return lp;
}

const struct sw__plugin_loaded *
sw__plugin_loaded_at(unsigned index)
{
    return index < __atomic_load_n(&nloaded, __ATOMIC_ACQUIRE) ? loaded[index]
                                                               : NULL;
}

/* ---- binding route blocks ---------------------------------------------- */

static const struct sw_plugin_directive *
find_directive(const struct sw_plugin *d, struct sw_str name)
{
    for (const struct sw_plugin_directive *pd = d->directives;
         pd != NULL && pd->name != NULL; pd++) {
        if (strlen(pd->name) == name.len &&
            memcmp(pd->name, name.p, name.len) == 0) {
            return pd;
        }
    }
    return NULL;
}

/* Names and counts, before configure sees the block. */
static bool
check_block(const struct sw_conf_plugin_block *pb,
            const struct sw__plugin_loaded *pl, struct sw__plugin_errors *e)
{
    unsigned before = e->n;
    for (size_t i = 0; i < pb->ndirectives; i++) {
        const struct sw_conf_plugin_directive *cd = &pb->directives[i];
        const struct sw_plugin_directive *pd =
            find_directive(&pl->desc, cd->name);
        if (pd == NULL) {
            sw__plugin_error(e, pb->file, cd->line, cd->col,
                             "unknown directive \"%.*s\" in plugin %s",
                             (int)SW_MIN(cd->name.len, 64), cd->name.p,
                             pl->name);
            continue;
        }
        if (cd->nargs < pd->min_args || cd->nargs > pd->max_args) {
            sw__plugin_error(
                e, pb->file, cd->line, cd->col,
                "plugin %s: \"%s\" takes %u to %u arguments, got %zu", pl->name,
                pd->name, pd->min_args, pd->max_args, cd->nargs);
        }
        for (size_t k = 0; !pd->multiple && k < i; k++) {
            if (pb->directives[k].name.len == cd->name.len &&
                memcmp(pb->directives[k].name.p, cd->name.p, cd->name.len) ==
                    0) {
                sw__plugin_error(e, pb->file, cd->line, cd->col,
                                 "plugin %s: duplicate \"%s\" (line %u)",
                                 pl->name, pd->name, pb->directives[k].line);
                break;
            }
        }
    }
    return e->n == before;
}

static void
unconfigure_chain(struct sw_plugin_chain *ch)
{
    for (size_t i = 0; i < ch->n; i++) {
        struct sw__plugin_use *u = &ch->uses[i];
        if (u->configured && u->pl->desc.unconfigure != NULL) {
            u->pl->desc.unconfigure(u->route_state);
        }
    }
    free(ch->uses);
}

static void
free_set(struct sw_conf *cf)
{
    struct sw__plugin_set *set = cf->plugins;
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        unconfigure_chain(&set->chains[i]);
    }
    if (set != NULL) {
        free(set->chains);
        free(set);
    }
    cf->plugins = NULL;
}

static unsigned
hooks_of(const struct sw_plugin *d)
{
    return (d->on_request ? SW_PLUGIN_HOOK_REQUEST : 0) |
           (d->on_upgrade ? SW_PLUGIN_HOOK_UPGRADE : 0) |
           (d->on_upstream_pick ? SW_PLUGIN_HOOK_PICK : 0) |
           (d->on_ws_open ? SW_PLUGIN_HOOK_WS_OPEN : 0) |
           (d->on_ws_close ? SW_PLUGIN_HOOK_WS_CLOSE : 0) |
           (d->on_ws_message ? SW_PLUGIN_HOOK_WS_MESSAGE : 0) |
           (d->on_log ? SW_PLUGIN_HOOK_LOG : 0);
}

static void
bind_route(struct sw_conf_route *rt, struct sw_plugin_chain *ch,
           unsigned nworkers, struct sw__plugin_errors *e)
{
    ch->route = rt->name;
    for (size_t k = 0; k < rt->nplugins; k++) {
        const struct sw_conf_plugin_block *pb = &rt->plugins[k];
        struct sw__plugin_use *u = &ch->uses[ch->n++];
        u->pl = find_loaded(pb->name.p);
        if (u->pl == NULL) {
            continue; /* its load_plugin failed: reported */
        }
        if (!check_block(pb, u->pl, e)) {
            continue;
        }
        struct sw_plugin_conf pc = {pb, u->pl, rt, nworkers, e, false};
        unsigned before = e->n;
        int st = u->pl->desc.configure(&pc, &u->route_state);
        if (st != SW_OK) {
            if (e->n == before) {
                sw__plugin_error(e, pb->file, pb->line, pb->col,
                                 "plugin %s: configuration refused (%s)",
                                 u->pl->name, sw_strerror(st));
            }
            continue;
        }
        u->configured = true;
        u->frames = u->pl->desc.on_ws_message != NULL && !pc.skip_frames;
        u->conn_off = ch->conn_size;
        ch->conn_size +=
            SW_ALIGN_UP(u->pl->desc.conn_state_size, alignof(max_align_t));
        unsigned hooks = hooks_of(&u->pl->desc);
        ch->hooks |=
            u->frames ? hooks : hooks & ~(unsigned)SW_PLUGIN_HOOK_WS_MESSAGE;
    }
    rt->plugin_chain = ch;
    if ((ch->hooks & SW_PLUGIN_HOOK_WS_MESSAGE) && rt->websocket &&
        rt->ws_splice_threshold != 0) {
        sw_log_info("route %.*s: a plugin reads its WebSocket frames: payloads "
                    "are copied, never spliced",
                    (int)rt->name.len, rt->name.p);
    }
}

enum sw_status
sw_plugin_bind(struct sw_conf *cf, unsigned nworkers, const char *default_dir,
               char *err, size_t errlen)
{
    struct sw__plugin_errors e = {err, errlen, 0, 0};
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    for (size_t i = 0; i < cf->nplugin_loads; i++) {
        load_one(&cf->plugin_loads[i], default_dir, &e);
    }
    size_t nchains = 0;
    for (size_t i = 0; i < cf->nroutes; i++) {
        nchains += cf->routes[i].nplugins > 0;
    }
    if (nchains == 0) {
        return e.n == 0 ? SW_OK : SW_EINVAL;
    }
    struct sw__plugin_set *set = calloc(1, sizeof(*set));
    if (set == NULL ||
        (set->chains = calloc(nchains, sizeof(*set->chains))) == NULL) {
        free(set);
        sw__plugin_error(&e, cf->path, 1, 1, "out of memory");
        return SW_EINVAL;
    }
    cf->plugins = set;
    cf->plugins_free = free_set;
    for (size_t i = 0; i < cf->nroutes; i++) {
        struct sw_conf_route *rt = &cf->routes[i];
        if (rt->nplugins == 0) {
            continue;
        }
        struct sw_plugin_chain *ch = &set->chains[set->n++];
        ch->uses = calloc(rt->nplugins, sizeof(*ch->uses));
        if (ch->uses == NULL) {
            sw__plugin_error(&e, cf->path, rt->line, 1, "out of memory");
            continue;
        }
        bind_route(rt, ch, nworkers, &e);
    }
    return e.n == 0 ? SW_OK : SW_EINVAL;
}

bool
sw_plugin_chain_has(const struct sw_plugin_chain *ch, unsigned mask)
{
    return ch != NULL && (ch->hooks & mask) != 0;
}

/* ---- counters ----------------------------------------------------------- */

int
sw__plugin_counter_register(const char *plugin, const char *name,
                            const char *help)
{
    if (!name_ok(name)) {
        return SW_EINVAL;
    }
    char full[160];
    snprintf(full, sizeof(full), "plugin_%s_%s", plugin, name);
    pthread_mutex_lock(&counters_lock);
    unsigned n = __atomic_load_n(&ncounters, __ATOMIC_RELAXED);
    int id = SW_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(counters[i].name, full) == 0) {
            id = (int)i;
            goto out;
        }
    }
    if (n < SW_METRICS_PLUGIN_COUNTERS) {
        snprintf(counters[n].name, sizeof(counters[n].name), "%s", full);
        snprintf(counters[n].help, sizeof(counters[n].help), "%s",
                 help != NULL && help[0] != '\0' ? help
                                                 : "A plugin's counter.");
        __atomic_store_n(&ncounters, n + 1, __ATOMIC_RELEASE);
        id = (int)n;
    }
out:
    pthread_mutex_unlock(&counters_lock);
    return id;
}

const char *
sw__plugin_counter_name(int id)
{
    unsigned n = __atomic_load_n(&ncounters, __ATOMIC_ACQUIRE);
    return id >= 0 && (unsigned)id < n ? counters[id].name : NULL;
}

void
sw_plugin_metrics_format(const struct sw_metrics *globals,
                         struct sw_metrics_out *o)
{
    unsigned n = __atomic_load_n(&ncounters, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++) {
        sw_metrics_put_family(o, counters[i].name, "counter", counters[i].help);
        sw_metrics_printf(o, "shockwave_%s %llu\n", counters[i].name,
                          (unsigned long long)globals->plugin[i]);
    }
}
