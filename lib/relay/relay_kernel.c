/*
 * relay_kernel.c - a relay whose two sockets are on the kernel relay
 * (`ws_kernel_relay on;`, lib/krelay): the gateway's half of the protocol
 * over the session's slot. docs/architecture.md, "The kernel relay", has
 * the whole of it and the races each step closes; in short, per
 * direction (source -> destination):
 *
 *   - the kernel owns it (SW_KR_KERNEL): the verdict redirects data frames
 *     to the destination, the gateway sees nothing;
 *   - anything else the verdict hands to the gateway, and takes itself no
 *     more (SW_KR_USER); the gateway reads it as from any socket;
 *   - before the gateway writes to an end it takes the direction toward it
 *     (sw__relay_kernel_may_write): it swaps the mode to USER, learns how
 *     the kernel left the frame and message state (sync_dir), and waits
 *     until every byte the kernel redirected is in the end's TCP queue;
 *   - when the gateway has nothing buffered, owed or half done in a
 *     direction it offers it back (SW_KR_ARMED, sw__relay_kernel_offer):
 *     the verdict takes it at the next skb if the gateway read all it was
 *     handed by then.
 *
 * Contents: kdir, sync_dir, tcp_written, sw__relay_kernel_start / _ready /
 * _read / _may_write / _writable / _offer / _activity / _stop.
 */
#include "relay_int.h"

#include "../krelay/krelay_slot.h"

#include <shockwave/log.h>

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

_Static_assert(SW_KR_HIST_BOUNDS == SW_METRICS_HIST_MAX,
               "the kernel's histogram has the gateway's buckets");

/* How soon a write that waits for the kernel's bytes to leave is tried
 * again. */
#define KERNEL_RETRY_MS 1
#define KERNEL_RETRY_MAX_MS 64
/* How often what the kernel moved is folded into the counters (metrics,
 * and the input clocks the idle timeout and parking read). */
#define KERNEL_FOLD_MS 1000

static struct sw_kr_dir *
kdir(const struct sw_relay *r, const struct dir *d)
{
    return &r->kslot->dir[d == &r->up ? 0 : 1];
}

/* The gateway's bookkeeping for d, and for end e. */
static struct sw_kr_gw_dir *
gdir(const struct sw_relay *r, const struct dir *d)
{
    return &r->kslot->gw.dir[d == &r->up ? 0 : 1];
}

static int
end_index(const struct end *e)
{
    return e->is_client ? 0 : 1;
}

/* The gateway holds d: always while the session is not on the kernel. */
static bool
owned(const struct sw_relay *r, const struct dir *d)
{
    return r->kslot == NULL || gdir(r, d)->owned;
}

/* Bytes the socket's TCP was given since it was made: acknowledged, then
 * still queued. Read in that order, an acknowledgement between the two
 * reads makes the sum smaller than the truth, never larger. */
static bool
tcp_written(int fd, uint64_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int queued = 0;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + 8 ||
        ioctl(fd, SIOCOUTQ, &queued) != 0) {
        return false;
    }
    *out = ti.tcpi_bytes_acked + (uint64_t)queued;
    return true;
}

/* The same, exactly: taken when nothing is being written to fd. */
static bool
tcp_written_exact(int fd, uint64_t *out)
{
    for (int i = 0; i < 8; i++) {
        uint64_t a, b;
        if (!tcp_written(fd, &a) || !tcp_written(fd, &b)) {
            return false;
        }
        if (a == b) {
            *out = a;
            return true;
        }
    }
    return false;
}

/* Try again soon: after 1 ms, then twice as long each time up to
 * KERNEL_RETRY_MAX_MS (a frame the kernel began may take long to end). */
static void
retry_soon(struct sw_relay *r)
{
    struct sw_kr_gw *g = &r->kslot->gw;
    if (g->retry_ms == 0) {
        g->retry_wait = g->retry_wait == 0
                            ? KERNEL_RETRY_MS
                            : SW_MIN(2 * g->retry_wait, KERNEL_RETRY_MAX_MS);
        g->retry_ms = sw_now_ms() + g->retry_wait;
        sw__relay_arm_timer(r);
    }
}

/*
 * Take over the message state the kernel left in d's slot (a fragmented
 * message it began, its size so far), once per change (seq). False while
 * the verdict is changing it.
 */
static bool
sync_dir(struct sw_relay *r, struct dir *d)
{
    struct sw_kr_dir *k = kdir(r, d);
    struct sw_kr_gw_dir *g = gdir(r, d);
    uint32_t seq = __atomic_load_n(&k->seq, __ATOMIC_ACQUIRE);
    if (seq == g->seen) {
        return true;
    }
    if (seq & 1) {
        return false;
    }
    uint8_t in_msg = k->in_msg;
    uint8_t opcode = k->msg_opcode;
    uint64_t size = k->msg_bytes;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&k->seq, __ATOMIC_RELAXED) != seq) {
        return false;
    }
    d->msg.in_message = in_msg != 0;
    d->msg.opcode = opcode;
    d->msg.size = size;
    g->seen = seq;
    return true;
}

bool
sw__relay_kernel_start(struct sw_relay *r, uint8_t rsv_allowed)
{
    struct sw_conn *c = r->c.conn;
    struct sw_conn *u = r->u.conn;
    if (!r->rt->ws_kernel_relay || r->env.krelay == NULL ||
        r->env.ring != NULL || r->plug_frames || r->rt->ws_validate_utf8 ||
        !c->io.ops->can_splice || !u->io.ops->can_splice ||
        sw_krelay_get(r->env.krelay) == NULL) {
        return false; /* TLS, io_uring, plugins that read frames, UTF-8
                         checks: the user-space relay */
    }
    /* joined at the first quiet moment (join_when_quiet) */
    r->k_wanted = true;
    r->k_rsv = rsv_allowed;
    return true;
}

/* Bytes waiting in fd's receive queue (SIOCINQ). */
static int
queued_in(int fd)
{
    int n = 0;
    return ioctl(fd, SIOCINQ, &n) == 0 ? n : -1;
}

/* Put the two sockets in the map, now that nothing is buffered or owed
 * either way and neither socket holds unread bytes: what arrives from
 * here on goes through the verdict. */
static void
join_when_quiet(struct sw_relay *r)
{
    struct sw_conn *c = r->c.conn;
    struct sw_conn *u = r->u.conn;
    uint64_t cbase, ubase;
    if (queued_in(c->io.fd) != 0 || queued_in(u->io.fd) != 0 ||
        !tcp_written_exact(c->io.fd, &cbase) ||
        !tcp_written_exact(u->io.fd, &ubase)) {
        return; /* tried again at the next quiet moment */
    }
    struct sw_krelay_limits lim = {
        .max_frame = r->rt->ws_max_frame,
        .max_message = r->rt->ws_max_message,
        .rsv_allowed = r->k_rsv,
    };
    struct sw_krelay *kr = r->env.krelay->k;
    int slot = sw_krelay_join(kr, c->io.fd, u->io.fd, &lim);
    r->k_wanted = false;
    if (slot < 0) {
        sw_log_debug("ws %s -> %s: kernel relay: %s", r->caddr, r->uaddr,
                     strerror(errno));
        return;
    }
    struct sw_kr_slot *s = sw_krelay_slot(kr, slot);
    r->kslot = s; /* zeroed by the join but for the limits */
    s->gw.index = (uint32_t)slot;
    s->gw.base[0] = cbase;
    s->gw.base[1] = ubase;
    s->gw.dir[0].owned = s->gw.dir[1].owned = 1;
    s->dir[0].dst_base = ubase;
    s->dir[1].dst_base = cbase;
    s->gw.fold_ms = sw_now_ms() + KERNEL_FOLD_MS;
    sw__relay_arm_timer(r);
    sw_metrics_inc(r->env.metrics, SW_METRIC_WS_KERNEL_SESSIONS);
}

bool
sw__relay_kernel_ready(struct sw_relay *r, struct dir *d)
{
    if (r->kslot == NULL || sync_dir(r, d)) {
        return true;
    }
    retry_soon(r);
    return false;
}

void
sw__relay_kernel_sent(struct sw_relay *r, struct end *e, size_t n)
{
    if (r->kslot != NULL) {
        uint64_t *sent = &r->kslot->gw.sent[end_index(e)];
        *sent += n;
        __atomic_store_n(&kdir(r, e->out_dir)->dst_sent, *sent,
                         __ATOMIC_RELAXED);
    }
}

void
sw__relay_kernel_read(struct sw_relay *r, struct end *e, size_t n)
{
    if (r->kslot != NULL) {
        gdir(r, e->in_dir)->consumed += n;
    }
}

/* Every byte the kernel redirected toward e (`redirected` of the direction
 * writing to it) is in e's TCP queue: at once when that count was seen
 * there before, else by asking the socket (docs/architecture.md, "The
 * kernel relay", 4). */
static bool
redirects_landed(const struct sw_relay *r, const struct end *e,
                 uint64_t redirected)
{
    const struct sw_kr_gw *gw = &r->kslot->gw;
    int i = end_index(e);
    uint64_t written;
    return redirected == gdir(r, e->out_dir)->drained ||
           (tcp_written(e->conn->io.fd, &written) &&
            written - gw->base[i] == gw->sent[i] + redirected);
}

bool
sw__relay_kernel_may_write(struct sw_relay *r, struct end *e)
{
    struct dir *d = e->out_dir;
    if (owned(r, d)) {
        return true;
    }
    struct sw_kr_dir *k = kdir(r, d);
    struct sw_kr_gw_dir *g = gdir(r, d);
    /* swapped before `redirected` is read: see the verdict */
    __atomic_exchange_n(&k->mode, SW_KR_USER, __ATOMIC_SEQ_CST);
    if (!sync_dir(r, d)) {
        retry_soon(r); /* the verdict is at work on it */
        return false;
    }
    uint64_t redirected = __atomic_load_n(&k->redirected, __ATOMIC_SEQ_CST);
    if (!redirects_landed(r, e, redirected) ||
        __atomic_load_n(&k->seq, __ATOMIC_ACQUIRE) != g->seen) {
        retry_soon(r);
        return false;
    }
    g->drained = redirected;
    g->owned = 1;
    r->kslot->gw.retry_wait = 0;
    sw_metrics_inc(r->env.metrics, SW_METRIC_WS_KERNEL_HANDOVERS);
    return true;
}

bool
sw__relay_kernel_writable(const struct sw_relay *r, const struct end *e)
{
    return owned(r, e->out_dir);
}

/* d may go back to the kernel: nothing of it is buffered, half done or
 * owed toward its destination, and it will carry data frames again. */
static bool
dir_offerable(const struct sw_relay *r, const struct dir *d)
{
    const struct end *src = d->src;
    const struct end *dst = d->dst;
    const unsigned gone =
        SW_CONN_F_EOF | SW_CONN_F_DEAD | SW_CONN_F_RESET | SW_CONN_F_WRITING;
    return owned(r, d) && !r->finishing && d->state == DIR_HDR &&
           d->dec.state == SW_WS_DEC_START && d->hdr_len == 0 &&
           d->run_len == 0 && !d->close_seen && !d->plug_dropping &&
           sw_conn_buffered(src->conn->in) == 0 &&
           sw_conn_buffered(dst->conn->out) == 0 && dst->npongs == 0 &&
           !dst->ping_pending && dst->close_len == 0 && !dst->close_sent &&
           !dst->cut && src->close_deferred == 0 &&
           !sw_conn_has(src->conn, gone) && !sw_conn_has(dst->conn, gone);
}

void
sw__relay_kernel_offer(struct sw_relay *r)
{
    if (r->kslot == NULL && r->k_wanted && dir_offerable(r, &r->up) &&
        dir_offerable(r, &r->down)) {
        join_when_quiet(r);
    }
    if (r->kslot == NULL) {
        return;
    }
    struct dir *dirs[2] = {&r->up, &r->down};
    for (int i = 0; i < 2; i++) {
        struct dir *d = dirs[i];
        if (!dir_offerable(r, d)) {
            continue;
        }
        struct sw_kr_dir *k = kdir(r, d);
        k->in_msg = d->msg.in_message;
        k->msg_opcode = d->msg.opcode;
        k->msg_bytes = d->msg.size;
        k->consumed = gdir(r, d)->consumed;
        __atomic_store_n(&k->mode, SW_KR_ARMED, __ATOMIC_SEQ_CST);
        gdir(r, d)->owned = 0;
    }
}

/* Fold what the kernel moved since the last call into d's counters and
 * the metrics; true when it moved anything. */
static bool
fold_counts(struct sw_relay *r, struct dir *d)
{
    struct sw_kr_dir *k = kdir(r, d);
    struct sw_kr_gw_dir *g = gdir(r, d);
    uint64_t frames = __atomic_load_n(&k->frames, __ATOMIC_RELAXED);
    uint64_t messages = __atomic_load_n(&k->messages, __ATOMIC_RELAXED);
    uint64_t payload = __atomic_load_n(&k->payload, __ATOMIC_RELAXED);
    uint64_t df = frames - g->frames;
    uint64_t dm = messages - g->messages;
    uint64_t db = payload - g->payload;
    if (df == 0 && db == 0 && dm == 0) {
        return false;
    }
    /* message sizes: taken, so nothing needs remembering */
    struct sw_metrics_hist *h = dir_msg_hist(r, d);
    for (int i = 0; i <= SW_KR_HIST_BOUNDS; i++) {
        uint64_t n = __atomic_exchange_n(&k->hist[i], 0, __ATOMIC_RELAXED);
        if (n != 0) {
            sw_metrics_store_add(&h->bucket[i], (int64_t)n);
        }
    }
    sw_metrics_store_add(&h->sum, (int64_t)__atomic_exchange_n(
                                      &k->hist_sum, 0, __ATOMIC_RELAXED));
    g->frames = frames;
    g->messages = messages;
    g->payload = payload;
    d->frames += df;
    d->messages += dm;
    d->bytes += db;
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_FRAMES_TOTAL, (int64_t)df);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_MESSAGES_TOTAL, (int64_t)dm);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_KERNEL_FRAMES, (int64_t)df);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_KERNEL_BYTES, (int64_t)db);
    if (d->src->is_client) {
        sw_metrics_add(r->env.metrics, SW_METRIC_BYTES_FROM_CLIENTS,
                       (int64_t)db);
    } else {
        sw_metrics_add(r->env.metrics, SW_METRIC_BYTES_TO_CLIENTS, (int64_t)db);
    }
    return true;
}

uint64_t
sw__relay_kernel_deadline(const struct sw_relay *r)
{
    if (r->kslot == NULL) {
        return UINT64_MAX;
    }
    const struct sw_kr_gw *g = &r->kslot->gw;
    return g->retry_ms != 0 ? SW_MIN(g->retry_ms, g->fold_ms) : g->fold_ms;
}

void
sw__relay_kernel_activity(struct sw_relay *r, uint64_t now_ms)
{
    if (r->kslot == NULL) {
        return;
    }
    struct sw_kr_gw *g = &r->kslot->gw;
    if (g->retry_ms != 0 && now_ms >= g->retry_ms) {
        g->retry_ms = 0;
    }
    if (now_ms >= g->fold_ms) {
        g->fold_ms = now_ms + KERNEL_FOLD_MS;
    }
    /* frames the kernel moved are input the idle timeout and the
     * keepalive pings count, as the gateway's own reads are */
    if (fold_counts(r, &r->up)) {
        r->c.last_rx_ms = now_ms;
    }
    if (fold_counts(r, &r->down)) {
        r->u.last_rx_ms = now_ms;
    }
}

/* No frame in flight either way, nothing handed over unread, nothing
 * moved since the last fold: the session may leave the kernel for parking
 * (sw__relay_kernel_stop) without losing a byte. Takes both directions
 * back; a session that then does not park offers them again at its next
 * run. */
bool
sw__relay_kernel_parkable(const struct sw_relay *r)
{
    if (r->kslot == NULL) {
        return true; /* not joined (yet): nothing in the kernel */
    }
    const struct end *dsts[2] = {&r->u, &r->c};
    const struct sw_kr_gw *gw = &r->kslot->gw;
    for (int i = 0; i < 2; i++) {
        struct sw_kr_dir *k = &r->kslot->dir[i];
        __atomic_exchange_n(&k->mode, SW_KR_USER, __ATOMIC_SEQ_CST);
        uint64_t redirected = __atomic_load_n(&k->redirected, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&k->seq, __ATOMIC_ACQUIRE) & 1 ||
            __atomic_load_n(&k->passed, __ATOMIC_RELAXED) !=
                gw->dir[i].consumed ||
            __atomic_load_n(&k->frames, __ATOMIC_RELAXED) !=
                gw->dir[i].frames ||
            !redirects_landed(r, dsts[i], redirected)) {
            return false;
        }
    }
    return true;
}

void
sw__relay_kernel_stop(struct sw_relay *r)
{
    r->k_wanted = false;
    if (r->kslot == NULL) {
        return;
    }
    fold_counts(r, &r->up);
    fold_counts(r, &r->down);
    sw_krelay_leave(r->env.krelay->k, (int)r->kslot->gw.index, r->c.conn->io.fd,
                    r->u.conn->io.fd);
    sw_metrics_add(r->env.metrics, SW_METRIC_WS_KERNEL_SESSIONS, -1);
    r->kslot = NULL;
}
