/*
 * relay_int.h - private structures of the WebSocket relay: its two ends,
 * its two directions, and the functions relay.c (lifecycle, I/O, closing,
 * timers) and relay_frames.c (the per-direction frame walk) share.
 *
 * Direction states:
 *
 *   HDR --data frame--> DATA --payload done--> HDR
 *    |                   |  \--rest >= splice threshold, buffers empty-->
 *    |                   |                        SPLICE --payload done--> HDR
 *    +--ping/pong/close--> CTRL --payload collected, handled--> HDR
 *    +--violation or end of input--> DONE
 *
 * Threading: the worker's thread only.
 */
#ifndef SW_RELAY_INT_H
#define SW_RELAY_INT_H

#include <shockwave/relay.h>

/* Turns of relay_run, and of one direction's frame walk, per event: with
 * work left the relay yields to other connections and resumes at once. */
#define SW_RELAY_RUN_TURNS 256
#define SW_RELAY_WALK_STEPS 4096
/* Splice pairs (in, out) per splice_step call. */
#define SW_RELAY_SPLICE_STEPS 64
/* While a payload is spliced, its source wakes the relay only once this
 * much of it (or all that is left, or what the pipe holds) has arrived
 * (SO_RCVLOWAT): each splice then moves a large piece, not what one TCP
 * segment brought. */
#define SW_RELAY_SPLICE_LOWAT (512u * 1024u)
/* ... but a sender slower than that is not held back longer than this: the
 * mark drops to 1 byte, what came is spliced, and the mark is set again. */
#define SW_RELAY_LOWAT_WAIT_MS 5
/* Close handshake bound without ws_close_timeout, and the longest wait for
 * the peer's close before a violator gets its own code. */
#define SW_RELAY_CLOSE_WAIT_MS 5000
#define SW_RELAY_DEFER_WAIT_MS 1000

/* How often an end that is not being read is asked whether its peer
 * reset (probe_unread). */
#define SW_RELAY_PROBE_MS 1000

/* Pongs that may wait toward one end (see queue_pong). */
#define SW_RELAY_MAX_PONGS 8

enum dir_state {
    DIR_HDR = 0, /* between frames: decoding a header */
    DIR_DATA,    /* copying a frame's payload to the destination */
    DIR_SPLICE,  /* splicing a frame's payload to the destination */
    DIR_CTRL,    /* collecting a control frame's payload (<= 125 bytes) */
    DIR_DROP,    /* skipping a data frame's payload: its end was closed */
    DIR_DONE,    /* no more frames will be read in this direction */
};

struct dir;

struct end {
    struct sw_conn *conn; /* borrowed (from the session, valid until
                             on_done): socket, transport, events; its
                             `in` feeds in_dir, its `out` goes to it */
    bool is_client;       /* the client side (frames unmasked to it) */
    struct sw_buf *pongs; /* owned (pool) while pongs wait: encoded pong
                             frames toward this end, oldest first */
    unsigned npongs;      /* frames in pongs (<= SW_RELAY_MAX_PONGS) */
    bool ping_pending;    /* a keepalive ping waits for a boundary */
    uint8_t close[SW_WS_MAX_HEADER + SW_WS_MAX_CONTROL]; /* pending close */
    size_t close_len;                                    /* 0 = none pending */
    bool close_sent;         /* a close frame was queued to this end */
    bool rcvbuf_fixed;       /* SO_RCVBUF set for splicing from it */
    bool cut;                /* a frame toward it cannot be finished: only
                                the TCP close, no close frame */
    uint16_t close_deferred; /* close code owed to this end (it broke the
                                protocol), sent after its peer\'s close */
    uint64_t last_rx_ms;     /* last bytes from this end */
    uint64_t last_ping_ms;   /* last keepalive ping queued to it */
    struct dir *in_dir;      /* borrowed: direction reading this end */
    struct dir *out_dir;     /* borrowed: direction writing to it */
    const char *name;        /* "client" or "upstream" */
};

struct dir {
    struct end *src;                /* borrowed */
    struct end *dst;                /* borrowed */
    enum dir_state state;           /* see the diagram above */
    struct sw_ws_decoder dec;       /* frame header decoder */
    struct sw_ws_msg_state msg;     /* fragmentation and message size */
    struct sw_ws_frame f;           /* the frame in progress */
    uint64_t remaining;             /* payload bytes of f still to move */
    uint64_t offset;                /* payload bytes of f moved (unmasking) */
    uint8_t hdr[SW_WS_MAX_HEADER];  /* re-encoded header awaiting room */
    size_t hdr_len;                 /* bytes in hdr; 0 = sent */
    uint8_t ctl[SW_WS_MAX_CONTROL]; /* control payload being collected */
    size_t ctl_len;                 /* bytes in ctl */
    bool validate;                  /* checking this text message's UTF-8 */
    uint64_t validated;             /* payload bytes of f already checked */
    struct sw_ws_utf8 utf8;         /* its validator */
    struct sw_pipe pipe;            /* owned (pool) while splicing */
    size_t in_pipe;                 /* bytes sitting in the pipe */
    bool have_pipe;                 /* pipe is valid */
    unsigned lowat;                 /* SO_RCVLOWAT set on src (0: never) */
    bool close_seen;                /* src sent a close frame */
    bool plug_dropping;             /* a plugin dropped the message in
                                       progress: its frames are skipped */
    uint16_t close_code;            /* the code it carried */
    uint64_t frames;                /* frames read */
    uint64_t messages;              /* data messages completed */
    uint64_t bytes;                 /* payload bytes forwarded */
    const uint8_t *run;             /* borrowed (src's conn->in): whole frames
                                       passed on as they are, not yet
                                       copied out (see pass_whole_frame) */
    size_t run_len;                 /* bytes at run */
    uint64_t run_frames;            /* frames in the run */
    uint64_t run_messages;          /* of which ended a message */
    uint64_t run_payload;           /* payload bytes in the run */
};

struct sw_relay {
    struct sw_relay_env env;        /* borrowed pieces of the worker */
    const struct sw_conf_route *rt; /* borrowed: ws_* settings */
    struct sw_metrics_route *m;     /* borrowed: the route's series */
    struct end c;                   /* the client */
    struct end u;                   /* the upstream */
    struct dir up;                  /* client -> upstream */
    struct dir down;                /* upstream -> client */
    uint64_t defer_deadline_ms;     /* send owed closes by then; 0 none */
    uint64_t close_deadline_ms;     /* 0 = none */
    uint64_t probe_at_ms;           /* ask unread ends then; 0 = none */
    uint64_t lowat_until_ms;        /* drop splice low-water marks then */
    uint64_t drain_at_ms;           /* drain: start closing then; 0 none */
    bool finishing;                 /* close both once flushed */
    bool done;                      /* sockets closed, on_done ran */
    bool plug_frames;               /* a plugin sees the data frames */
    uint64_t started_us;            /* monotonic start: the duration
                                       histogram and the access log */
    const char *closed_by;          /* "client", "upstream", "gateway" */
    uint16_t close_code;            /* code of the first close */
    bool k_wanted;                  /* to join the kernel relay (kslot)
                                       at a quiet moment */
    uint8_t k_rsv;                  /* RSV bits negotiated, for the join */
    char caddr[64];                 /* client address, logs */
    char uaddr[64];                 /* upstream address, logs */
    sw_relay_done_cb on_done;       /* owner's callback */
    void *arg;                      /* its argument */
    struct sw_plugin_sess *plug;    /* borrowed (the owner's): plugins */
    struct sw_kr_slot *kslot;       /* borrowed: the session's slot on the
                                       kernel relay (relay_kernel.c), its
                                       bookkeeping in kslot->gw; NULL off
                                       it */
};

/* A frame toward d->dst has begun (its header went out) and not ended:
 * nothing may be injected toward d->dst until it does. */
static inline bool
dir_mid_frame(const struct dir *d)
{
    return (d->state == DIR_DATA || d->state == DIR_SPLICE) &&
           d->hdr_len == 0 && (d->remaining > 0 || d->in_pipe > 0);
}

/* relay.c */
size_t sw__relay_control_frame(struct sw_relay *r, const struct end *e,
                               uint8_t opcode, const uint8_t *payload,
                               size_t len, uint8_t *out);
void sw__relay_queue_pong(struct sw_relay *r, struct end *e,
                          const uint8_t *payload, size_t len);
void sw__relay_inject(struct sw_relay *r, struct end *e);
void sw__relay_release_deferred(struct sw_relay *r, struct end *e);
void sw__relay_protocol_error(struct sw_relay *r, struct dir *d, uint16_t code,
                              const char *why);
/* As a protocol error, for a policy (a plugin's close): not counted as
 * one; the other end gets 1001. */
void sw__relay_policy_close(struct sw_relay *r, struct dir *d, uint16_t code,
                            const char *why);
void sw__relay_start_finishing(struct sw_relay *r, const char *by,
                               uint16_t code);

void sw__relay_update_interest(struct sw_relay *r);
/* The earliest of the relay's deadlines (UINT64_MAX: none), and the client
 * end's timer armed for it. */
uint64_t sw__relay_next_deadline(const struct sw_relay *r);
void sw__relay_arm_timer(struct sw_relay *r);
/* A relay over s's two ends with nothing started: no counters, no timer. */
struct sw_relay *sw__relay_create(const struct sw_relay_env *env,
                                  struct sw_relay_start *s);

/* The message-size histogram of direction d. */
static inline struct sw_metrics_hist *
dir_msg_hist(struct sw_relay *r, const struct dir *d)
{
    return &r->m->ws_msg[d == &r->up ? 0 : 1];
}

/* relay_kernel.c: the kernel relay's protocol (see there). */
bool sw__relay_kernel_start(struct sw_relay *r, uint8_t rsv_allowed);
/* d's state is the gateway's to walk (false: try again soon). */
bool sw__relay_kernel_ready(struct sw_relay *r, struct dir *d);
void sw__relay_kernel_read(struct sw_relay *r, struct end *e, size_t n);
void sw__relay_kernel_sent(struct sw_relay *r, struct end *e, size_t n);
/* The gateway may send to e now; else it asked for the direction toward e
 * and tries again soon. */
bool sw__relay_kernel_may_write(struct sw_relay *r, struct end *e);
bool sw__relay_kernel_writable(const struct sw_relay *r, const struct end *e);
void sw__relay_kernel_offer(struct sw_relay *r);
/* On the relay's timer: fold the kernel's counters, clear a due retry. */
void sw__relay_kernel_activity(struct sw_relay *r, uint64_t now_ms);
/* The earliest of its deadlines (UINT64_MAX: none). */
uint64_t sw__relay_kernel_deadline(const struct sw_relay *r);
void sw__relay_kernel_stop(struct sw_relay *r);
bool sw__relay_kernel_parkable(const struct sw_relay *r);

/* relay_frames.c */
bool sw__relay_dir_process(struct sw_relay *r, struct dir *d);
/* Set d's source low-water mark to min(want, SW_RELAY_SPLICE_LOWAT, the
 * pipe's capacity), at least 1 (the default), when it differs from what is
 * set; a mark above 1 arms r's lowat deadline (SW_RELAY_LOWAT_WAIT_MS). */
void sw__relay_lowat(struct sw_relay *r, struct dir *d, uint64_t want);

#endif
