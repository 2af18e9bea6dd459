/*
 * fanout_test.c - the memory paths of fan-out, without a daemon: frame
 * queues (order, the backlog trim, control frames only between slices,
 * writev into a real socket), block references across two workers (a
 * block comes home to its owner's pool) and the ring between two workers
 * (order kept past its capacity, every reference given back).
 */
#include "../../lib/fanout/fanout_int.h"
#include "support.h"

#include <check.h>
#include <sys/socket.h>
#include <unistd.h>

struct rig {
    struct sw_fanout_hub *hub;
    struct event_base *base[2];
    struct sw_buf_pool bufs[2];
    struct sw_ws_rng rng[2];
    struct sw_metrics metrics[2];
    struct sw_fanout *f[2];
};

static void
rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    r->hub = sw_fanout_hub_new(2);
    ck_assert_ptr_nonnull(r->hub);
    for (unsigned i = 0; i < 2; i++) {
        r->base[i] = event_base_new();
        sw_buf_pool_init(&r->bufs[i], 16384, 8);
        ck_assert_int_eq(sw_ws_rng_init(&r->rng[i]), SW_OK);
        ck_assert_int_eq(sw_metrics_init(&r->metrics[i]), SW_OK);
        struct sw_fanout_env env = {.id = i,
                                    .base = r->base[i],
                                    .bufs = &r->bufs[i],
                                    .rng = &r->rng[i],
                                    .metrics = &r->metrics[i]};
        r->f[i] = sw_fanout_new(r->hub, &env);
        ck_assert_ptr_nonnull(r->f[i]);
    }
}

static void
rig_fini(struct rig *r)
{
    for (unsigned i = 0; i < 2; i++) {
        sw_fanout_free(r->f[i]);
    }
    sw_fanout_hub_free(r->hub);
    for (unsigned i = 0; i < 2; i++) {
        sw_buf_pool_fini(&r->bufs[i]);
        sw_ws_rng_fini(&r->rng[i]);
        sw_metrics_fini(&r->metrics[i]);
        event_base_free(r->base[i]);
    }
}

/* A block holding n one-byte-payload frames "0", "1", ...; slice i is
 * frame i (3 bytes: header and payload). */
static struct fo_block *
frames_block(struct sw_fanout *f, unsigned n)
{
    struct fo_block *b = fo_block_get(f, 3 * n);
    for (unsigned i = 0; i < n; i++) {
        b->data[3 * i] = 0x81;
        b->data[3 * i + 1] = 1;
        b->data[3 * i + 2] = (uint8_t)('0' + i % 10);
    }
    return b;
}

START_TEST(queue_trim_keeps_order_and_partial_head)
{
    struct rig r;
    rig_init(&r);
    struct sw_fanout *f = r.f[0];
    struct fo_block *b = frames_block(f, 10);
    struct fo_outq q = {0};
    for (uint32_t i = 0; i < 10; i++) {
        ck_assert(fo_outq_push(f, &q, (struct fo_slice){b, 3 * i, 3}));
    }
    ck_assert_uint_eq(atomic_load(&b->refs), 11);
    ck_assert_uint_eq(q.bytes, 30);
    q.sent = 1; /* the first slice is partly on the wire */
    q.bytes -= 1;
    size_t dropped = fo_outq_trim(f, &q, 8);
    /* kept: the partial head (2 bytes left) and the newest two (6) */
    ck_assert_uint_eq(dropped, 7);
    ck_assert_uint_eq(q.count, 3);
    ck_assert_uint_eq(q.bytes, 8);
    ck_assert_uint_eq(q.ring[q.head].off, 0);
    ck_assert_uint_eq(q.ring[(q.head + 1) & (q.cap - 1)].off, 24);
    ck_assert_uint_eq(q.ring[(q.head + 2) & (q.cap - 1)].off, 27);
    ck_assert_uint_eq(atomic_load(&b->refs), 4);
    fo_outq_fini(f, &q);
    ck_assert_uint_eq(atomic_load(&b->refs), 1);
    fo_block_unref(f, b);
    rig_fini(&r);
}
END_TEST

START_TEST(queue_flush_writes_slices_then_control_between)
{
    struct rig r;
    rig_init(&r);
    struct sw_fanout *f = r.f[0];
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct sw_conn c;
    static const struct sw_conn_handlers none = {0};
    sw_conn_init(&c, "client", r.base[0], &r.bufs[0], &none, NULL);
    struct sw_io io = {.fd = sv[0], .ops = &sw_io_plain};
    sw_conn_attach(&c, &io);
    struct fo_block *b = frames_block(f, 3);
    struct fo_outq q = {0};
    ck_assert(fo_outq_push(f, &q, (struct fo_slice){b, 0, 3}));
    ck_assert(fo_outq_push(f, &q, (struct fo_slice){b, 3, 3}));
    q.sent = 2; /* mid-frame: the pong must wait for the boundary */
    q.bytes -= 2;
    const uint8_t pong[2] = {0x8a, 0};
    ck_assert(fo_outq_ctl(&q, pong, 2));
    ssize_t n = fo_outq_flush(f, &c, &q);
    ck_assert_int_eq(n, 1 + 2 + 3); /* rest of slice 0, pong, slice 1 */
    uint8_t got[16];
    ck_assert_int_eq(read(sv[1], got, sizeof(got)), 6);
    const uint8_t want[6] = {'0', 0x8a, 0, 0x81, 1, '1'};
    ck_assert_mem_eq(got, want, 6);
    ck_assert(fo_outq_empty(&q));
    ck_assert_uint_eq(atomic_load(&b->refs), 1);
    fo_outq_fini(f, &q);
    fo_block_unref(f, b);
    sw_conn_close(&c);
    close(sv[1]);
    rig_fini(&r);
}
END_TEST

START_TEST(block_freed_elsewhere_comes_home)
{
    struct rig r;
    rig_init(&r);
    struct fo_block *b = fo_block_get(r.f[0], 100);
    ck_assert_uint_eq(b->owner, 0);
    fo_block_ref(b, 1);
    fo_block_unref(r.f[1], b); /* a holder on worker 1 lets go */
    ck_assert_ptr_null(atomic_load(&r.hub->pools[0].returned));
    fo_block_unref(r.f[1], b); /* the last one, also on worker 1 */
    ck_assert_ptr_eq(atomic_load(&r.hub->pools[0].returned), b);
    ck_assert_uint_eq(r.hub->pools[1].nfree[0], 0);
    /* worker 0 takes it back on its next get: no malloc */
    uint64_t bytes = atomic_load(&r.hub->pools[0].bytes);
    struct fo_block *again = fo_block_get(r.f[0], 100);
    ck_assert_ptr_eq(again, b);
    ck_assert_uint_eq(atomic_load(&r.hub->pools[0].bytes), bytes);
    fo_block_unref(r.f[0], again);
    ck_assert_uint_eq(r.hub->pools[0].nfree[0], 1);
    rig_fini(&r);
}
END_TEST

static uint32_t seen;
static bool in_order;

static void
take(struct sw_fanout *f, struct fo_entry *e)
{
    in_order = in_order && e->s.off == seen;
    seen++;
    fo_block_unref(f, e->s.b);
    fo_chan_unref(f, e->ch);
}

START_TEST(ring_keeps_order_past_its_size)
{
    struct rig r;
    rig_init(&r);
    /* a bare channel, only as the entries' reference holder */
    struct fo_chan *ch = calloc(1, sizeof(*ch) + 2 * sizeof(ch->local[0]));
    ch->key = strdup("k");
    atomic_init(&ch->refs, 1);
    struct fo_block *b = fo_block_get(r.f[0], 64);
    unsigned n = FO_RING_SIZE * 2 + 17;
    for (unsigned i = 0; i < n; i++) {
        fo_block_ref(b, 1);
        fo_chan_ref(ch);
        struct fo_entry e = {.type = FO_E_MSG, .ch = ch, .s = {b, i, 1}};
        fo_post(r.f[0], 1, &e);
    }
    ck_assert_uint_eq(r.f[0]->later[1].n, n - FO_RING_SIZE);
    seen = 0;
    in_order = true;
    size_t got = fo_drain_rings(r.f[1], take);
    ck_assert_uint_eq(got, FO_RING_SIZE);
    while (seen < n) {
        fo_post_retry(r.f[0]);
        got = fo_drain_rings(r.f[1], take);
        ck_assert_uint_gt(got, 0);
    }
    ck_assert(in_order);
    ck_assert_uint_eq(r.f[0]->later[1].n, 0);
    ck_assert_uint_eq(atomic_load(&b->refs), 1);
    ck_assert_uint_eq(atomic_load(&ch->refs), 1);
    fo_block_unref(r.f[0], b);
    fo_chan_unref(r.f[0], ch); /* the last: frees it */
    rig_fini(&r);
}
END_TEST

static Suite *
fanout_suite(void)
{
    Suite *s = suite_create("fanout");
    TCase *tc = tcase_create("memory");
    tcase_add_test(tc, queue_trim_keeps_order_and_partial_head);
    tcase_add_test(tc, queue_flush_writes_slices_then_control_between);
    tcase_add_test(tc, block_freed_elsewhere_comes_home);
    tcase_add_test(tc, ring_keeps_order_past_its_size);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(fanout_suite());
}
