/*
 * fanout_int.h - private structures of the fan-out module and the
 * functions its files share:
 *
 *   fanout_mem.c       blocks (shared, reference counted, pooled per
 *                      worker), frame queues toward a socket, the rings
 *   fanout_hub.c       the hub, its directory, a worker's side, joining,
 *                      leaving, posting between workers, the sweep
 *   fanout_upstream.c  a channel's upstream WebSocket: connect, handshake,
 *                      frames in, messages out, reconnect, linger
 *   fanout_client.c    a client of a channel: its 101, its frames, its
 *                      queue, pings, close
 *   fanout_bus.c       a worker's two Redis connections (commands and
 *                      subscriptions), the bus envelope, publishing
 *   fanout_hold.c      a channel across gateways: the holder's lease,
 *                      following the bus, take-over, stepping down
 *
 * Channel states (written under the hub's mutex by the owner):
 *
 *   CONNECTING --101--> OPEN --upstream lost, reconnect on--> RETRY
 *       |                 ^                                     |
 *       |                 '----------------101------------------'
 *       '--no server / lost with reconnect off / linger over--> GONE
 *
 * A GONE channel is out of the directory; it is freed when its last
 * reference (members, ring entries, the owner) goes.
 */
#ifndef SW_FANOUT_INT_H
#define SW_FANOUT_INT_H

#include <shockwave/fanout.h>
#include <shockwave/slab.h>

#include <event2/event_struct.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

/* Block size classes: 1 KiB, then x4 each (4 KiB ... 16 MiB); a frame
 * larger than the last gets a block of its own size, freed after use.
 * The upstream is read into blocks of FO_READ_BLOCK (class 3) or larger;
 * a joined message or a client's message takes the class it fits. */
#define FO_CLASS_MIN 1024u
#define FO_CLASSES 8
#define FO_READ_BLOCK (64u * 1024u)
#define FO_READ_CLASS 3
#define FO_CLASS_HUGE FO_CLASSES
/* Each class holds a little more than its power of four, so a frame of
 * ws_max_frame (16m by default) and its header fit the 16 MiB class. */
#define FO_CLASS_SLACK 64u
/* A read block is replaced when less than this is left at its end. */
#define FO_BLOCK_SLACK 4096u
/* Room kept before a message that the gateway frames itself (joined
 * fragments, client messages): the largest header goes there. */
#define FO_HEAD_ROOM SW_WS_MAX_HEADER

/* Entries of one ring (a power of two). */
#define FO_RING_SIZE 4096u
/* Entries kept for one destination whose ring is full, at most: past
 * it, messages toward that worker are dropped (counted). */
#define FO_LATER_MAX (1u << 16)
/* Slices one sendmsg takes. */
#define FO_IOV 64
/* Queue entries per client at most (the byte bound usually comes first). */
#define FO_QUEUE_MAX (1u << 16)
/* Control frames waiting toward one end (pongs, a ping, a close). */
#define FO_CTL_BYTES 256

/* Upstream reconnect backoff. */
#define FO_BACKOFF_MIN_MS 100
#define FO_BACKOFF_MAX_MS 5000
/* The sweep: channels every tick, clients every FO_CLIENT_SWEEP_MS. */
#define FO_SWEEP_MS 100
#define FO_CLIENT_SWEEP_MS 1000

struct fo_block {
    atomic_uint refs;      /* holders: queues, ring entries, a reader */
    uint8_t cls;           /* size class; FO_CLASS_HUGE: malloc'd alone */
    uint16_t owner;        /* the worker whose pool takes it back */
    uint32_t cap;          /* data bytes */
    struct fo_block *next; /* free list, or the owner's return stack */
    uint8_t data[];
};

/* A worker's pool of blocks: lives in the hub, so a block freed by
 * another worker after this one stopped still has a home. */
struct fo_pool {
    struct fo_block *free[FO_CLASSES]; /* owned: idle blocks */
    size_t nfree[FO_CLASSES];
    _Atomic(struct fo_block *) returned; /* owned: freed by other workers,
                                            pushed lock-free */
    atomic_uint_fast64_t bytes;          /* allocated bytes (metrics) */
    atomic_uint_fast64_t pooled;         /* idle blocks (metrics) */
};

/* A frame in a block. */
struct fo_slice {
    struct fo_block *b; /* ref */
    uint32_t off;
    uint32_t len;
};

/* Frames toward one socket: shared slices in order, and control frames
 * of the gateway's own, which go only between two slices. */
struct fo_outq {
    struct fo_slice *ring; /* owned: cap entries (a power of two) */
    uint32_t cap;
    uint32_t head;     /* first entry */
    uint32_t count;    /* entries queued */
    uint32_t sent;     /* bytes of the first entry already sent */
    uint64_t bytes;    /* bytes queued and not sent */
    uint16_t ctl_len;  /* bytes in ctl */
    uint16_t ctl_sent; /* of which sent */
    uint8_t ctl[FO_CTL_BYTES];
};

enum fo_entry_type {
    FO_E_MSG = 0, /* owner -> worker: deliver slice to the channel's clients */
    FO_E_OPEN,    /* owner -> worker: the channel opened, answer 101 */
    FO_E_FAIL,    /* owner -> worker: the channel is gone (code) */
    FO_E_UP,      /* worker -> owner: a client message for the upstream */
};

struct fo_entry {
    uint8_t type;       /* enum fo_entry_type */
    uint8_t opcode;     /* FO_E_UP: TEXT or BINARY */
    uint16_t code;      /* FO_E_FAIL: 502 (never opened) or a close code */
    struct fo_chan *ch; /* ref */
    struct fo_slice s;  /* FO_E_MSG, FO_E_UP: ref on s.b */
};

/* One producer, one consumer: head written by the producer, tail by the
 * consumer, each on its own cache line. */
struct fo_ring {
    _Alignas(64) atomic_uint head;
    _Alignas(64) atomic_uint tail;
    _Alignas(64) struct fo_entry e[FO_RING_SIZE];
};

/* Entries a full ring could not take, in order (the producer's). */
struct fo_backlog {
    struct fo_entry *v; /* owned */
    size_t head, n, cap;
};

enum fo_chan_state { FO_CONNECTING = 0, FO_OPEN, FO_RETRY, FO_GONE };

struct fo_client;
struct fo_bus;

/* A channel's clients on one worker (that worker's alone, but `active`,
 * which the owner reads to know where to post). */
struct fo_local {
    struct fo_client *first; /* borrowed: list */
    size_t n;
    atomic_bool active; /* n > 0 */
};

enum fo_up_phase {
    FO_UP_IDLE = 0,  /* no connection (waiting for a retry) */
    FO_UP_CONNECT,   /* TCP (and TLS) connect in flight */
    FO_UP_HANDSHAKE, /* head sent or sending, waiting for the 101 */
    FO_UP_OPEN,      /* frames flow */
    FO_UP_CLOSING,   /* our close sent: waiting to flush, then closed */
};

/* The owner's side of a channel: its upstream WebSocket. */
struct fo_upstream {
    struct sw_conn conn;
    enum fo_up_phase phase;
    struct sw_upstream *ups; /* borrowed until release */
    struct sw_tls_ctx *tls;  /* borrowed until release */
    void (*release)(void *arg);
    void *release_arg;
    struct sw_upstream_peer *peer; /* borrowed: server in use */
    uint64_t tried;                /* peers tried this round */
    char *head;                    /* owned: the request head */
    size_t head_len;
    size_t head_sent;
    char ws_key[SW_WS_KEY_LEN + 8]; /* the key in head */
    size_t ws_key_len;
    /* frames in */
    struct fo_block *blk; /* ref: the block being read into */
    uint32_t blk_len;     /* bytes in it */
    uint32_t blk_pos;     /* start of the first frame not handled */
    struct sw_ws_msg_state msg;
    struct fo_block *join; /* owned: a fragmented message being joined */
    uint32_t join_len;     /* payload bytes in it (after FO_HEAD_ROOM) */
    struct fo_outq out;    /* frames to the upstream */
    uint64_t backoff_ms;
    uint64_t retry_at_ms; /* next connect (RETRY); 0 none */
    uint64_t deadline_ms; /* connect or handshake or close bound */
    uint64_t last_rx_ms;
    uint64_t last_ping_ms;
    bool ever_open;
};

/* Where a channel's messages come from (docs/scaling.md). Without a bus
 * every channel is FO_ROLE_LOCAL. With one, the owner runs the election:
 *
 *   ASKING --lease won--> HOLDER --lease lost--> FOLLOWER --lease free--+
 *     |                     ^                                           |
 *     +--lease held by another gateway--> FOLLOWER          HOLDER <----+
 *   any role --bus down--> ALONE --bus back, election--> HOLDER | FOLLOWER
 *
 * HOLDER and ALONE (and LOCAL) read their own upstream; FOLLOWER delivers
 * what the holder publishes; ASKING has no source yet. */
enum fo_role {
    FO_ROLE_LOCAL = 0,
    FO_ROLE_ASKING,
    FO_ROLE_HOLDER,
    FO_ROLE_FOLLOWER,
    FO_ROLE_ALONE,
};

struct fo_hold {
    enum fo_role role;
    char *names; /* owned: "PREFIXd:UP:KEY" (then "u", "h" in place of
                    the d): one string, the letter changed per use */
    size_t names_len;
    size_t kind_at;           /* index of the d/u/h letter in names */
    uint8_t subs;             /* SUBSCRIBE sent on the current connection:
                                 fo_sub_bit of d, u, p */
    bool looking;             /* a look (the lease script) in flight */
    bool relook;              /* our value changed during that look */
    bool ended;               /* the channel ended: replies only unref */
    uint64_t next_look_ms;    /* the next look; 0 at once */
    uint64_t open_by_ms;      /* FOLLOWER while CONNECTING: 502 after */
    uint64_t remote;          /* other gateways subscribed (last look) */
    struct fo_chan *map_next; /* borrowed: the worker's bus-name map */
};

struct fo_chan {
    /* fixed at creation */
    char *key; /* owned: "UPSTREAM\x1fKEY", its identity */
    size_t key_len;
    const char *name; /* borrowed (key): KEY, for logs */
    size_t name_len;
    uint64_t hash;
    unsigned owner;
    struct fo_chan *dir_next; /* borrowed: directory bucket (hub mutex) */
    atomic_uint refs;
    atomic_size_t nclients; /* clients on every worker (changed under the
                               hub mutex) */
    /* settings copied from the route that made it */
    uint64_t linger_ms;
    uint64_t backlog;
    bool drop_client;
    bool slow_close;
    bool reconnect;
    uint64_t max_message;
    uint64_t max_frame;
    uint64_t ping_interval_ms;
    uint64_t idle_timeout_ms;
    uint64_t close_timeout_ms;
    uint64_t connect_timeout_ms;
    uint64_t read_timeout_ms;
    /* under the hub mutex */
    enum fo_chan_state state;
    bool listed;        /* in the directory */
    char protocol[128]; /* the subprotocol the upstream chose, "" none */
    /* the owner's only */
    struct fo_upstream up;
    uint64_t linger_at_ms; /* close the upstream then (no client); 0 none */
    struct sw_fanout *f;   /* borrowed: the owner */
    struct fo_chan *own_prev, *own_next; /* the owner's list */
    struct fo_hold hold;                 /* the owner's: across gateways */
    struct fo_local local[];             /* one per worker */
};

enum fo_client_state {
    FO_C_PENDING = 0, /* waiting for the channel's first 101 */
    FO_C_OPEN,        /* receiving the channel's messages */
    FO_C_CLOSING,     /* a close was sent or is queued: flush, then end */
};

enum fo_read_state {
    FO_R_HDR = 0, /* between frames */
    FO_R_DATA,    /* a data frame's payload */
    FO_R_CTRL,    /* a control frame's payload */
};

struct fo_client {
    struct sw_conn conn;
    struct fo_chan *ch;  /* ref */
    struct sw_fanout *f; /* borrowed: its worker */
    enum fo_client_state state;
    struct fo_client *prev, *next;         /* ch->local[w] */
    struct fo_client *all_prev, *all_next; /* the worker's clients */
    struct fo_client *dirty_next;          /* to flush this turn */
    bool dirty;
    bool linked; /* in ch->local[w] */
    struct fo_outq q;
    char *pending; /* owned while PENDING: accept key, then the
                      offered subprotocols (NUL separated) */
    /* frames from the client */
    enum fo_read_state rd;
    struct sw_ws_decoder dec;
    struct sw_ws_msg_state msg;
    struct sw_ws_frame fr;
    uint64_t remaining; /* payload bytes of fr still to read */
    uint64_t offset;    /* payload bytes of fr read (unmasking) */
    uint8_t ctl[SW_WS_MAX_CONTROL];
    size_t ctl_len;
    struct fo_block *mblk; /* owned: the client message being collected */
    uint32_t mlen;
    /* times and counts */
    uint64_t started_ms;
    uint64_t last_rx_ms;
    uint64_t last_ping_ms;
    uint64_t close_at_ms; /* CLOSING: end by then */
    uint64_t delivered;   /* messages queued to it */
    uint64_t dropped;     /* messages it missed (slow) */
    uint64_t bytes_out;   /* payload bytes of those */
    uint64_t sent_msgs;   /* client messages it sent on */
    uint64_t sent_bytes;  /* their payload bytes */
    const char *closed_by;
    uint16_t close_code;
    bool close_received;
    char addr[64];
};

struct sw_fanout_hub {
    unsigned nworkers;
    pthread_mutex_t lock;     /* the directory, channel state */
    struct fo_chan **buckets; /* owned array, borrowed entries */
    size_t nbuckets;
    size_t nchannels;
    struct fo_pool *pools;   /* owned: one per worker */
    struct fo_ring **rings;  /* owned: [from * nworkers + to] */
    int *efd;                /* owned: each worker's eventfd */
    struct fo_bus_conf *bus; /* owned: the Redis bus, NULL: none */
    struct fo_inbox *inbox;  /* owned: one per worker, publishes from
                                other threads (the admin listener) */
};

/* The bus settings every worker's connections use (copied from the
 * snapshot the daemon started with). */
struct fo_bus_conf {
    char *host, *user, *password, *prefix; /* owned */
    size_t prefix_len;
    uint16_t port;
    unsigned db;
    uint64_t lease_ms;
    char id_hex[17]; /* this gateway's id (random), in the lease value */
};

/* A message published from another thread, waiting for its worker. */
struct fo_pub {
    struct fo_pub *next;
    struct fo_chan *ch; /* ref, or NULL: no channel here when published */
    uint8_t opcode;
    size_t key_len; /* data: the key ("UP\x1fKEY"), then the payload */
    size_t len;
    uint8_t data[];
};

struct fo_inbox {
    pthread_mutex_t lock;
    struct fo_pub *first, *last; /* owned */
};

struct sw_fanout {
    struct sw_fanout_hub *hub; /* borrowed */
    unsigned id;
    struct event_base *base;
    struct sw_buf_pool *bufs;
    struct sw_ws_rng *rng;
    struct sw_metrics *metrics;
    struct fo_pool *pool;      /* borrowed: hub->pools[id] */
    struct event wake_ev;      /* our eventfd: rings to drain */
    struct fo_backlog *later;  /* owned: per destination, what its ring
                                  could not take */
    bool *wake;                /* owned: per destination, write its
                                  eventfd at the end of this turn */
    struct fo_client *clients; /* borrowed: list */
    size_t nclients;
    struct fo_chan *owned; /* refs: channels whose upstream we hold */
    size_t nowned;
    struct fo_client *dirty; /* borrowed: to flush at the end */
    struct event sweep;
    bool sweep_on;
    uint64_t client_sweep_ms;
    bool draining;
    bool prefilled;     /* fo_pool_prefill ran */
    struct fo_bus *bus; /* owned: this worker's Redis connections, or NULL */
    void (*on_empty)(void *arg);
    void *empty_arg;
    struct sw_slab client_slab;
};

/* fanout_mem.c */
struct fo_block *fo_block_get(struct sw_fanout *f, size_t need);
void fo_block_unref(struct sw_fanout *f, struct fo_block *b);
static inline void
fo_block_ref(struct fo_block *b, unsigned n)
{
    atomic_fetch_add_explicit(&b->refs, n, memory_order_relaxed);
}
void fo_pool_fini(struct fo_pool *p);
/* Fill the pool ahead of a worker's first channel. */
void fo_pool_prefill(struct sw_fanout *f);
/* Write a final frame's header (masked with key, NULL: unmasked) right
 * before the `len` payload bytes at b->data + at, which must have
 * FO_HEAD_ROOM bytes before it; the frame's slice (no reference taken). */
struct fo_slice fo_frame_head(struct fo_block *b, uint32_t at, uint8_t opcode,
                              const uint8_t *key, uint32_t len);
/* Queue a slice (taking a reference of its own). False when the queue
 * is at FO_QUEUE_MAX or memory ran out. */
bool fo_outq_push(struct sw_fanout *f, struct fo_outq *q, struct fo_slice s);
/* Drop the oldest whole entries (not one partly sent) until `limit`
 * bytes or fewer are queued. Returns the entries dropped. */
size_t fo_outq_trim(struct sw_fanout *f, struct fo_outq *q, uint64_t limit);
/* Queue a control frame; false when it does not fit. */
bool fo_outq_ctl(struct fo_outq *q, const uint8_t *frame, size_t len);
/* Build the control frame (masked with a key from `mask` toward an
 * upstream; NULL: unmasked, toward a client) and queue it. payload may be
 * NULL when len is 0. False when it does not fit. */
bool fo_outq_control(struct fo_outq *q, uint8_t opcode, const uint8_t *payload,
                     size_t len, struct sw_ws_rng *mask);
/* True when `proto` is one of the comma separated subprotocols offered
 * (compared exactly, as a client compares the one it gets back). */
bool fo_offered_has(struct sw_str offered, const char *proto);
static inline bool
fo_outq_empty(const struct fo_outq *q)
{
    return q->count == 0 && q->ctl_sent == q->ctl_len;
}
/* Send what the socket takes. Returns bytes sent, or < 0 after a send
 * failed (c is DEAD). */
ssize_t fo_outq_flush(struct sw_fanout *f, struct sw_conn *c,
                      struct fo_outq *q);
void fo_outq_clear(struct sw_fanout *f, struct fo_outq *q);
void fo_outq_fini(struct sw_fanout *f, struct fo_outq *q);
/* Post entry e to worker `to` (or keep it until its ring has room). */
void fo_post(struct sw_fanout *f, unsigned to, const struct fo_entry *e);
/* Write the eventfds the posts of this turn need. */
void fo_post_flush(struct sw_fanout *f);
/* Take every entry posted to this worker, in order, for each calling
 * fn; returns how many. */
size_t fo_drain_rings(struct sw_fanout *f,
                      void (*fn)(struct sw_fanout *, struct fo_entry *));
/* The kept entries toward each destination, into their rings. */
void fo_post_retry(struct sw_fanout *f);

/* fanout_hub.c */
void fo_chan_unref(struct sw_fanout *f, struct fo_chan *ch);
static inline void
fo_chan_ref(struct fo_chan *ch)
{
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
}
/* Set the channel's state (and protocol when not NULL) under the mutex;
 * GONE also takes it out of the directory. */
void fo_chan_set_state(struct sw_fanout *f, struct fo_chan *ch,
                       enum fo_chan_state st, const char *protocol);
/* GONE and out of the directory if no client is in it, in one hold of
 * the mutex (a client joining meanwhile keeps the channel). */
bool fo_chan_retire_if_empty(struct sw_fanout *f, struct fo_chan *ch);
/* A client leaves its channel (counted, its reference dropped). */
void fo_client_unlink(struct fo_client *c);
/* Deliver slice s of ch to this worker's clients of it. */
void fo_deliver_local(struct sw_fanout *f, struct fo_chan *ch,
                      struct fo_slice s);
/* Deliver s everywhere: here and through the rings. */
void fo_fanout_message(struct sw_fanout *f, struct fo_chan *ch,
                       struct fo_slice s);
/* Tell every worker with clients of ch (this one included) that ch
 * opened (code 0) or is gone (code: 502 or a close code). */
void fo_chan_announce(struct sw_fanout *f, struct fo_chan *ch, uint16_t code);
void fo_mark_dirty(struct fo_client *c);
/* Flush every client marked dirty this turn, and the posts. */
void fo_end_turn(struct sw_fanout *f);
void fo_sweep_arm(struct sw_fanout *f);
/* While draining: tell the worker when nothing is left. */
void fo_check_empty(struct sw_fanout *f);

/* fanout_upstream.c */
/* Start the channel's upstream (a new channel). */
void fo_upstream_start(struct sw_fanout *f, struct fo_chan *ch);
/* A client message for the upstream (slice: FO_HEAD_ROOM then payload). */
void fo_upstream_send(struct sw_fanout *f, struct fo_chan *ch,
                      struct fo_slice s, uint8_t opcode);
/* The sweep's look at one owned channel. */
void fo_upstream_tick(struct sw_fanout *f, struct fo_chan *ch, uint64_t now);
/* Close the upstream for good (linger over, drain); releases what the
 * channel borrowed. */
void fo_upstream_end(struct sw_fanout *f, struct fo_chan *ch, uint16_t code);

/* The channel ends for its clients: out of the directory, every
 * worker's clients told `code` (502, or a close code), the upstream
 * ended. */
void fo_chan_fail(struct sw_fanout *f, struct fo_chan *ch, uint16_t code);
/* fanout_upstream.c, for the election */
/* Connect the upstream now (a holder or a gateway alone). */
void fo_upstream_connect(struct fo_chan *ch);
/* Close the upstream connection, the channel kept (a follower now). */
void fo_upstream_stop(struct sw_fanout *f, struct fo_chan *ch);

/* fanout_bus.c */
void fo_bus_conf_free(struct fo_bus_conf *c);
struct fo_bus *fo_bus_new(struct sw_fanout *f);
void fo_bus_free(struct fo_bus *b);
/* Both connections up and ready. */
bool fo_bus_up(const struct fo_bus *b);
/* A message on the bus is its WebSocket opcode (1 byte), then its
 * payload: text, binary, or close (the channel ended, with its code).
 * The names: d: the holder to the followers, u: client messages to the
 * holder, p: messages published by anyone, which the holder delivers and
 * sends on d:, so every gateway has the holder's order. */
static inline uint8_t
fo_sub_bit(char kind)
{
    return kind == 'd' ? 1 : kind == 'u' ? 2 : kind == 'p' ? 4 : 0;
}
/* Publish on the channel's name of that kind. False when it was not sent
 * (the bus is down or behind): counted. */
bool fo_bus_publish(struct fo_bus *b, struct fo_chan *ch, char kind,
                    uint8_t type, const uint8_t *payload, size_t len);
/* The same for a channel name written out ("PREFIXd:UP:KEY"). */
bool fo_bus_publish_name(struct fo_bus *b, const char *name, size_t name_len,
                         uint8_t type, const uint8_t *payload, size_t len);
/* (Un)subscribe the channel's d: or u: name; entering the map too. */
void fo_bus_subscribe(struct fo_bus *b, struct fo_chan *ch, char kind);
void fo_bus_unsubscribe(struct fo_bus *b, struct fo_chan *ch, char kind);
/* Run the lease script for ch (and PUBSUB NUMSUB of its d: name); the
 * reply goes to fo_hold_looked. */
bool fo_bus_look(struct fo_bus *b, struct fo_chan *ch);
/* Delete ch's lease if it is still this gateway's. */
void fo_bus_release(struct fo_bus *b, struct fo_chan *ch);
/* Out of the bus-name map (the channel ends). */
void fo_bus_forget(struct fo_bus *b, struct fo_chan *ch);

/* fanout_hold.c */
/* A new channel: its names, and its first source (ASKING with the bus
 * up, ALONE with it down, LOCAL without a bus). */
bool fo_hold_start(struct sw_fanout *f, struct fo_chan *ch);
/* The sweep's look at ch: the lease, the follower's wait. False when ch
 * ended (a follower whose holder never opened). */
bool fo_hold_tick(struct sw_fanout *f, struct fo_chan *ch, uint64_t now);
/* Remote interest keeps a holder's channel (no local client needed). */
bool fo_hold_busy(const struct fo_chan *ch);
/* A look's answer: held = we hold the lease, else value is the holder's
 * ("ID|STATE|PROTO"); numsub: subscribers of d: (-1 unknown). */
void fo_hold_looked(struct sw_fanout *f, struct fo_chan *ch, bool held,
                    const char *value, size_t value_len, long long numsub);
/* A message on one of ch's names: from the bus. */
void fo_hold_message(struct sw_fanout *f, struct fo_chan *ch, char kind,
                     const uint8_t *msg, size_t len);
/* The upstream opened (the first time or again). */
void fo_hold_upstream_open(struct sw_fanout *f, struct fo_chan *ch);
/* A message from our upstream (s: the frame as clients get it). */
void fo_hold_from_upstream(struct sw_fanout *f, struct fo_chan *ch,
                           struct fo_slice s);
/* A client message toward the upstream: true when the bus took it (a
 * follower sends it to the holder). */
bool fo_hold_to_upstream(struct sw_fanout *f, struct fo_chan *ch,
                         struct fo_slice s, uint8_t opcode);
/* The channel ends: out of the bus, its lease given back. */
void fo_hold_end(struct sw_fanout *f, struct fo_chan *ch);
/* The channel failed its clients with code (502 or a close code): a
 * holder tells the followers. */
void fo_hold_announce(struct sw_fanout *f, struct fo_chan *ch, uint16_t code);
/* The bus went down or came back: every owned channel's source. */
void fo_hold_bus_down(struct sw_fanout *f);
void fo_hold_bus_up(struct sw_fanout *f);
/* Publishes waiting in this worker's inbox (from other threads). */
void fo_hold_drain_inbox(struct sw_fanout *f);

/* fanout_client.c */
struct fo_client *fo_client_new(struct sw_fanout *f, struct fo_chan *ch,
                                struct sw_conn *from, const char *addr);
/* PENDING until the channel's first 101: keep what the answer needs. */
void fo_client_wait(struct fo_client *c, struct sw_str client_key,
                    struct sw_str offered);
/* PENDING -> OPEN: the 101, or a 400 when the channel's subprotocol is
 * not one the client offered. */
void fo_client_open(struct fo_client *c, const char *protocol);
/* PENDING: the channel never opened (502); OPEN: close with code. */
void fo_client_fail(struct fo_client *c, uint16_t code);
/* The 101 of a client that joined an open channel. */
void fo_client_accept_now(struct fo_client *c, struct sw_str client_key,
                          const char *protocol);
/* Queue slice s (`payload` of its bytes are payload, for the counts);
 * applies the backlog bound. */
void fo_client_queue(struct fo_client *c, struct fo_slice s, uint32_t payload);
void fo_client_flush(struct fo_client *c);
/* The sweep's look at a client: pings, idle and close timeouts. */
void fo_client_tick(struct fo_client *c, uint64_t now);
/* Begin a close with `code` (queued after the frame in flight). */
void fo_client_close(struct fo_client *c, uint16_t code, const char *by);
/* End now: socket closed, out of every list, freed. */
void fo_client_end(struct fo_client *c);

#endif
