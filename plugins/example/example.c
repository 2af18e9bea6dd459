/*
 * example.c - the smallest useful Shockwave plugin: copy this folder to
 * start your own. It adds response headers to every response of a route:
 *
 *   load_plugin example;        # LIBDIR/shockwave/plugins/example.so
 *   route {
 *       upstream app;
 *       plugin example {
 *           header X-Served-By shockwave;   # may repeat
 *           header X-Frame-Options DENY;
 *       }
 *   }
 *
 * What a plugin is made of, in the order this file shows it:
 *   1. a directive table: what may appear inside `plugin example { }`;
 *   2. configure/unconfigure: turn one block into a route state (main
 *      thread, at start, at `shockwave -t` and at every SIGHUP);
 *   3. a hook: on_request, called on a worker thread for every request of
 *      the route, reading its route state through an accessor;
 *   4. a counter: shown in /metrics as
 *      shockwave_plugin_example_responses_tagged_total;
 *   5. the descriptor and SW_PLUGIN_DEFINE: how the gateway finds it all.
 *
 * Include only <shockwave/plugin.h> (and system headers): the gateway's
 * structures are private, accessors are the whole interface.
 *
 * Threading: the route state is written by configure and only read by the
 * hooks, which may run on several workers at once; it needs no lock.
 */
#include <shockwave/plugin.h>

/* Log levels of sw_plugin_log (shockwave/log.h numbering). */
#define LOG_WARN 1

/* A route state: what one `plugin example { }` block configured. */
struct example_header {
    char *name;      /* owned */
    struct sw_str v; /* owned: its value (v.p malloc'd) */
};

struct example_route {
    struct example_header *hdr; /* owned: one per `header` line */
    size_t nhdr;                /* entries in hdr */
    int tagged;                 /* counter id: responses_tagged_total */
};

/* 1. Directives: name, min and max argument count, may repeat. The
 * gateway checks these (with file:line errors) before configure runs. */
static const struct sw_plugin_directive directives[] = {
    {"header", 2, 2, true},
    {NULL, 0, 0, false},
};

/* An HTTP field name is a token (RFC 9110 5.1): letters, digits and
 * !#$%&'*+-.^_`|~ only. */
static bool
is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        bool alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= 'A' && ch <= 'Z');
        if (!alnum && strchr(extra, ch) == NULL) {
            return false;
        }
    }
    return true;
}

/* A field value: visible characters, spaces and tabs (RFC 9110 5.5). */
static bool
is_value(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

static void
unconfigure(void *state)
{
    struct example_route *r = state;
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->nhdr; i++) {
        free(r->hdr[i].name);
        free((char *)r->hdr[i].v.p);
    }
    free(r->hdr);
    free(r);
}

/* 2. configure: read the block, check what the table cannot (here: that
 * the name and value are valid header text), build the route state. A
 * semantic error goes through sw_plugin_conf_error, which adds the file
 * and line of directive i. */
static int
configure(struct sw_plugin_conf *pc, void **state)
{
    size_t n = sw_plugin_conf_count(pc);
    struct example_route *r = calloc(1, sizeof(*r));
    if (r == NULL || (n > 0 && (r->hdr = calloc(n, sizeof(*r->hdr))) == NULL)) {
        free(r);
        return sw_plugin_conf_error(pc, (size_t)-1, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        /* "header" is the only directive: the gateway refused others */
        const char *name = sw_plugin_conf_arg(pc, i, 0);
        const char *value = sw_plugin_conf_arg(pc, i, 1);
        if (!is_token(name)) {
            unconfigure(r);
            return sw_plugin_conf_error(pc, i, "invalid header name \"%s\"",
                                        name);
        }
        if (!is_value(value)) {
            unconfigure(r);
            return sw_plugin_conf_error(pc, i, "invalid value for \"%s\"",
                                        name);
        }
        struct example_header *h = &r->hdr[r->nhdr++];
        h->name = strdup(name);
        h->v.p = strdup(value);
        h->v.len = strlen(value);
        if (h->name == NULL || h->v.p == NULL) {
            unconfigure(r);
            return sw_plugin_conf_error(pc, i, "out of memory");
        }
    }
    /* 4. a counter: registered here, counted in the hook. The same name
     * gives the same id on every reload, so the series goes on. */
    r->tagged = sw_plugin_conf_counter(
        pc, "responses_tagged_total",
        "Responses that got the example plugin's headers.");
    if (r->tagged < 0) {
        unconfigure(r);
        return sw_plugin_conf_error(pc, (size_t)-1,
                                    "cannot register a counter");
    }
    *state = r;
    return SW_OK;
}

/* 3. a hook: every request of the route, on a worker thread. The route
 * state comes through an accessor; the headers are added to whatever
 * response the client gets (the upstream's, or a 101). */
static int
on_request(struct sw_plugin_ctx *ctx)
{
    const struct example_route *r = sw_plugin_route_state(ctx);
    for (size_t i = 0; i < r->nhdr; i++) {
        int st = sw_plugin_resp_add_header(ctx, r->hdr[i].name, r->hdr[i].v);
        if (st != SW_OK) {
            /* the response's edit room is full: log, serve without it */
            sw_plugin_log(ctx, LOG_WARN, "header %s not added (status %d)",
                          r->hdr[i].name, st);
        }
    }
    if (r->nhdr > 0) {
        sw_plugin_count(ctx, r->tagged, 1);
    }
    return SW_PLUGIN_CONTINUE; /* never answers: the upstream does */
}

/* 5. the descriptor: ABI version first, then name (it must match
 * `load_plugin example`), directives and hooks. Hooks left out are NULL:
 * the gateway skips them. */
static const struct sw_plugin example_plugin = {
    .abi_major = SW_PLUGIN_ABI_MAJOR,
    .abi_minor = SW_PLUGIN_ABI_MINOR,
    .size = sizeof(struct sw_plugin),
    .name = "example",
    .version = "1.0",
    .directives = directives,
    .configure = configure,
    .unconfigure = unconfigure,
    .on_request = on_request,
};

SW_PLUGIN_DEFINE(example_plugin)
