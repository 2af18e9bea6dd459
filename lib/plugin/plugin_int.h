/*
 * plugin_int.h - private parts of the plugin layer.
 *
 *   plugin_load.c    the process's plugins (dlopen, ABI check), binding a
 *                    snapshot's route blocks to them, counters' names
 *   plugin_conf.c    the configure-time accessors (sw_plugin_conf_*)
 *   plugin_run.c     worker start/stop, the hook runners the session and
 *                    the relay call, the edit room
 *   plugin_access.c  the run-time accessors (sw_plugin_*)
 *
 * The edit room: a buffer (the worker's rooms pool) a connection holds from
 * its request's first
 * edit until the head went out, with one record per edit, variable,
 * response header or answer part, back to back:
 *
 *   [struct room_rec][name bytes][value bytes] [struct room_rec]...
 *
 * Threading: see plugin_host.h.
 */
#ifndef SW_PLUGIN_INT_H
#define SW_PLUGIN_INT_H

#include <shockwave/plugin_host.h>

#include <stdalign.h>

/* Bytes of edits, variables and response headers per request, and of
 * an answer's headers; a room's buffer holds those and an answer's body
 * (what is left: at least 3 KiB). */
#define SW__PLUGIN_ROOM 4096
#define SW__PLUGIN_ANSWER_HEADERS 1024
#define SW__PLUGIN_ROOM_BUF 8192
#define SW__PLUGIN_ROOMS_IDLE 8

/* One plugin of the process (never unloaded). */
struct sw__plugin_loaded {
    struct sw_plugin desc; /* copied from the plugin's: fields past the
                              size it was built with are zero */
    void *handle;          /* owned: dlopen handle, kept to the end */
    unsigned index;        /* in the process table: worker state slot */
    char name[65];         /* desc.name, copied */
    char path[4096];       /* what was opened */
};

/* One `plugin NAME { }` of a route, configured. */
struct sw__plugin_use {
    const struct sw__plugin_loaded *pl; /* borrowed (process table) */
    void *route_state;                  /* owned by the plugin: from
                                           configure, to unconfigure */
    bool configured;                    /* configure returned SW_OK */
    bool frames;                        /* its on_ws_message runs here */
    size_t conn_off;                    /* its conn state in the sess */
};

struct sw_plugin_chain {
    struct sw__plugin_use *uses; /* owned: in the route's order */
    size_t n;                    /* entries in uses */
    unsigned hooks;              /* enum sw_plugin_hook bits */
    size_t conn_size;            /* bytes of conn states, all plugins */
    struct sw_str route;         /* borrowed (snapshot): the route's name */
};

/* cf->plugins: every chain of one snapshot. */
struct sw__plugin_set {
    struct sw_plugin_chain *chains; /* owned: one per route with plugins */
    size_t n;                       /* entries in chains */
};

enum room_kind {
    ROOM_REQ_SET = 1, /* request header: replace */
    ROOM_REQ_ADD,     /* request header: append */
    ROOM_REQ_REMOVE,  /* request header: drop */
    ROOM_RESP_ADD,    /* response header */
    ROOM_VAR,         /* request variable */
    ROOM_ANS_HEADER,  /* a header of the plugin's answer */
    ROOM_ANS_BODY,    /* the plugin's answer body */
};

struct room_rec {
    uint8_t kind;  /* enum room_kind */
    uint16_t nlen; /* name bytes after the record */
    uint32_t vlen; /* value bytes after the name */
};

struct sw_plugin_sess {
    struct sw_plugin_worker *pw;      /* borrowed: the worker's side */
    const struct sw_plugin_chain *ch; /* borrowed (the session's snapshot) */
    struct sw_buf *room;              /* owned (pw->rooms): the edit room */
    size_t edits;                     /* bytes of edits, vars, headers */
    size_t answer_headers;            /* bytes of the answer's headers */
    unsigned answer_status;           /* 0 = no answer */
    const char *answered_by;          /* borrowed: that plugin's name */
    bool seen_request;                /* a request ran the chain before */
    bool first;                       /* the request running is the first */
    uint16_t ws_code;                 /* on_ws_close: the ending code */
    uint64_t conn_id;                 /* the connection's number */
    struct sw_str route;              /* borrowed (snapshot) */
    char raddr[48];                   /* the client's address */
    alignas(max_align_t) unsigned char conn[]; /* conn states */
};

/* One hook call. */
struct sw_plugin_ctx {
    struct sw_plugin_sess *s;           /* borrowed */
    const struct sw__plugin_use *use;   /* borrowed: whose hook runs */
    const struct sw_plugin_request *rq; /* borrowed: request hooks, else
                                           NULL */
    const struct sw_plugin_frame *f;    /* borrowed: on_ws_message */
    uint16_t close_code;                /* sw_plugin_ws_close */
    struct sw_plugin_log_fields *log;   /* borrowed: on_log */
    uint64_t now_ms;                    /* read once per call */
};

/* Errors of one bind, one per line into the caller's buffer. */
struct sw__plugin_errors {
    char *buf;  /* borrowed: the caller's, may be NULL */
    size_t cap; /* bytes at buf */
    size_t len; /* bytes written */
    unsigned n; /* errors recorded */
};

/* A `plugin NAME { }` block being configured. */
struct sw_plugin_conf {
    const struct sw_conf_plugin_block *pb; /* borrowed (snapshot) */
    const struct sw__plugin_loaded *pl;    /* borrowed */
    const struct sw_conf_route *rt;        /* borrowed (snapshot) */
    unsigned nworkers;                     /* the gateway's */
    struct sw__plugin_errors *e;           /* borrowed */
    bool skip_frames;                      /* sw_plugin_conf_skip_frames */
};

/* plugin_load.c: "FILE:LINE:COL: message" into e. */
void sw__plugin_error(struct sw__plugin_errors *e, struct sw_str file,
                      unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A counter's id (the same name, the same id), SW_EINVAL, SW_ENOMEM. */
int sw__plugin_counter_register(const char *plugin, const char *name,
                                const char *help);

/* plugin_load.c: the process table's entry `index` (NULL past it). */
const struct sw__plugin_loaded *sw__plugin_loaded_at(unsigned index);

/* plugin_load.c: the counters' table (names read by the admin thread). */
const char *sw__plugin_counter_name(int id);

/* plugin_run.c: append a record to s's room. SW_OK, SW_ENOMEM (no pool
 * buffer) or SW_ETOOBIG (past limit bytes of that kind). */
int sw__plugin_room_put(struct sw_plugin_sess *s, enum room_kind kind,
                        struct sw_str name, struct sw_str value);
/* The answer's header lines (one record each) become one run at the end
 * of the room, for sw_plugin_sess_answer; called when the answer is set,
 * before its body. SW_OK or SW_ETOOBIG. */
int sw__plugin_join_answer_headers(struct sw_plugin_sess *s);

/* A record of the room as read back: its kind, name and value. */
struct room_entry {
    enum room_kind kind;
    struct sw_str name;
    struct sw_str value;
};

/* The next record of s's room after *pos (0 to start); false at the end. */
bool sw__plugin_room_next(const struct sw_plugin_sess *s, size_t *pos,
                          struct room_entry *e);

/* A field value without CR, LF or NUL. */
bool sw__plugin_is_field_value(struct sw_str v);

#endif
