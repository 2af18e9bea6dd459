/*
 * conn_grow_test.c - Check suite for reads sized to the traffic in lib/conn
 * (sw_conn_grow_upto, sw_conn_out_reserve) over a real socketpair and a
 * chain of three buffer pools (1 KiB, 4 KiB, 16 KiB):
 *
 *   reads that fill their buffer step the next one up a size class, to
 *   the bound the owner set and no further; small reads step it back down;
 *   unread bytes move into the larger buffer in order; without a bound
 *   nothing grows; the output buffer grows to fit what is appended, up to
 *   the same bound; every buffer returns to the pool of its size.
 */
#include <shockwave/conn.h>

#include "support.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BASE 1024

static struct event_base *base;
static struct sw_buf_pool pool, pool_x4, pool_x16;
static struct sw_conn c;
static int peer = -1;

static const struct sw_conn_handlers handlers = {0};

static void
setup(void)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    sw_buf_pool_init(&pool, BASE, 8);
    sw_buf_pool_init(&pool_x4, 4 * BASE, 8);
    sw_buf_pool_init(&pool_x16, 16 * BASE, 8);
    pool.larger = &pool_x4;
    pool_x4.larger = &pool_x16;
    int sv[2];
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    sw_conn_init(&c, "client", base, &pool, &handlers, NULL);
    sw_conn_attach(&c, &(struct sw_io){.fd = sv[0], .ops = &sw_io_plain});
    peer = sv[1];
}

static void
teardown(void)
{
    sw_conn_close(&c);
    close(peer);
    ck_assert_uint_eq(pool.nused + pool_x4.nused + pool_x16.nused, 0);
    sw_buf_pool_fini(&pool);
    sw_buf_pool_fini(&pool_x4);
    sw_buf_pool_fini(&pool_x16);
    event_base_free(base);
}

/* The peer sends n bytes of a counting pattern starting at *off. */
static void
peer_send(size_t n, size_t *off)
{
    uint8_t b[4096];
    while (n > 0) {
        size_t k = SW_MIN(n, sizeof(b));
        for (size_t i = 0; i < k; i++) {
            b[i] = (uint8_t)((*off + i) % 251);
        }
        ssize_t w = send(peer, b, k, MSG_NOSIGNAL);
        ck_assert_int_eq(w, (ssize_t)k);
        n -= k;
        *off += k;
    }
}

/* Read once; the bytes read must continue the pattern from *seen. All
 * unread bytes are consumed afterwards when `consume`. */
static ssize_t
read_check(size_t *seen, bool consume)
{
    size_t before = c.in != NULL ? sw_buf_len(c.in) : 0;
    ssize_t n = sw_conn_read(&c);
    if (n > 0) {
        sw__buf_validate(c.in);
        ck_assert_uint_eq(sw_buf_len(c.in), before + (size_t)n);
        const uint8_t *p = c.in->pos;
        size_t from = *seen - before;
        for (size_t i = 0; i < sw_buf_len(c.in); i++) {
            ck_assert_uint_eq(p[i], (uint8_t)((from + i) % 251));
        }
        *seen += (size_t)n;
        if (consume) {
            c.in->pos = c.in->last;
        }
    }
    return n;
}

START_TEST(reads_grow_to_the_bound_and_back)
{
    size_t sent = 0, seen = 0;
    sw_conn_grow_upto(&c, 16 * BASE);
    ck_assert_uint_eq(c.grow_class, 2);
    peer_send(64 * BASE, &sent);
    ck_assert_int_eq(read_check(&seen, true), BASE);
    ck_assert_int_eq(read_check(&seen, true), 4 * BASE);
    ck_assert_int_eq(read_check(&seen, true), 16 * BASE);
    ck_assert_int_eq(read_check(&seen, true), 16 * BASE);
    ck_assert_uint_eq(sw_buf_cap(c.in), 16 * BASE);
    while (seen < sent) {
        ck_assert_int_gt(read_check(&seen, true), 0);
    }
    sw_conn_release_idle(&c);
    /* a trickle: back down one class per small read */
    for (int step = 0; step < 3; step++) {
        peer_send(100, &sent);
        ck_assert_int_eq(read_check(&seen, true), 100);
        sw_conn_release_idle(&c);
    }
    ck_assert_uint_eq(c.in_class, 0);
    peer_send(100, &sent);
    ck_assert_int_eq(read_check(&seen, false), 100);
    ck_assert_uint_eq(sw_buf_cap(c.in), BASE);
    ck_assert_uint_eq(pool_x16.nused, 0);
}
END_TEST

START_TEST(unread_bytes_move_up_in_order)
{
    size_t sent = 0, seen = 0;
    sw_conn_grow_upto(&c, 16 * BASE);
    peer_send(8 * BASE, &sent);
    ck_assert_int_eq(read_check(&seen, false), BASE);
    c.in->pos += BASE - 24; /* 24 bytes left unread */
    ck_assert_int_eq(read_check(&seen, false), 4 * BASE - 24);
    ck_assert_uint_eq(sw_buf_cap(c.in), 4 * BASE);
    ck_assert_uint_eq(sw_buf_len(c.in), 4 * BASE);
    ck_assert_uint_eq(pool.nused, 0); /* the small one went back */
}
END_TEST

START_TEST(bounds_hold)
{
    size_t sent = 0, seen = 0;
    sw_conn_grow_upto(&c, 0);
    peer_send(16 * BASE, &sent);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(read_check(&seen, true), BASE);
    }
    /* 5000 bytes allow the 4 KiB class, not the 16 KiB one */
    sw_conn_grow_upto(&c, 5000);
    ck_assert_uint_eq(c.grow_class, 1);
    ck_assert_int_eq(read_check(&seen, true), BASE);
    ck_assert_int_eq(read_check(&seen, true), 4 * BASE);
    ck_assert_int_eq(read_check(&seen, true), 4 * BASE);
    ck_assert_uint_eq(pool_x16.nalloc, 0);
}
END_TEST

START_TEST(output_grows_to_fit)
{
    static uint8_t data[32 * BASE];
    memset(data, 'x', sizeof(data));
    /* no bound: the room of the pool's own size, never more */
    ck_assert_uint_eq(sw_conn_out_reserve(&c, 3000), BASE);
    ck_assert(sw_buf_append(c.out, data, 1000));
    ck_assert_uint_eq(sw_conn_out_reserve(&c, 3000), BASE - 1000);
    sw_conn_grow_upto(&c, 16 * BASE);
    ck_assert_uint_ge(sw_conn_out_reserve(&c, 3000), 3000);
    ck_assert_uint_eq(sw_buf_cap(c.out), 4 * BASE);
    ck_assert_uint_eq(sw_buf_len(c.out), 1000); /* carried over */
    ck_assert_uint_eq(pool.nused, 0);
    /* more than the bound: as much as the largest class holds */
    size_t room = sw_conn_out_reserve(&c, 20 * BASE);
    ck_assert_uint_eq(sw_buf_cap(c.out), 16 * BASE);
    ck_assert_uint_eq(room, 16 * BASE - 1000);
    ck_assert_uint_eq(sw_conn_flush(&c), 1000);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.out);
}
END_TEST

static Suite *
grow_suite(void)
{
    Suite *s = suite_create("conn_grow");
    TCase *tc = tcase_create("grow");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reads_grow_to_the_bound_and_back);
    tcase_add_test(tc, unread_bytes_move_up_in_order);
    tcase_add_test(tc, bounds_hold);
    tcase_add_test(tc, output_grows_to_fit);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(grow_suite());
}
