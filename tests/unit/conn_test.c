/*
 * conn_test.c - Check suite for lib/conn's lifecycle and events over real
 * sockets and a real event_base: init, attach, close, detach, rebind and
 * what they do to the fd, the events and the pool's buffers; sw_conn_watch
 * and the callbacks it arms; the owner's timer; releasing idle buffers; the
 * flags printer. Reads, flushes, the gentle close and the TLS transport's
 * pending bytes are in conn_io_test.c; the rig both use is conn_rig.c.
 *
 *   test end                              peer end
 *   struct sw_conn (fd a) <-- socket --> plain fd b, driven by the test
 *
 * Callbacks are counted per owner; the only waits on the clock (the timer
 * tests) are bounded by a guard timer, and every wait on a socket by poll()
 * with a deadline. Assertions are on bytes, flags and callback counts,
 * never on timings.
 */
#include <shockwave/conn.h>

#include "conn_rig.h"
#include "support.h"

#include <check.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- lifecycle ---------------------------------------------------------- */

START_TEST(test_init_attach_close)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    memset(&c, 0xa5, sizeof(c)); /* init must not rely on zeroed storage */
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert_ptr_eq(c.io.ops, &sw_io_plain);
    ck_assert_ptr_null(c.io.tls);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_str_eq(c.role, "client");
    ck_assert_ptr_eq(c.base, base);
    ck_assert_ptr_eq(c.bufs, &pool);
    ck_assert_ptr_eq(c.arg, &o);
    ck_assert(!sw_conn_is_open(&c));
    ck_assert(!sw_conn_timer_armed(&c));
    ck_assert_uint_eq(sw_conn_buffered(c.in), 0);
    check_events(&c);

    /* Watching an end with no socket does nothing; closing it is fine. */
    sw_conn_watch(&c, true, true);
    ck_assert_uint_eq(c.flags, 0);
    sw_conn_close(&c);
    ck_assert_int_eq(c.io.fd, -1);

    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    ck_assert(sw_conn_is_open(&c));
    ck_assert_int_eq(c.io.fd, sv[0]);
    ck_assert_uint_eq(c.flags, 0);

    /* Take both buffers and arm both events, then close. */
    peer_send(sv[1], "ping", 4);
    ck_assert_int_eq(sw_conn_read(&c), 4);
    put_bytes(&c, "unsent", 6);
    ck_assert_uint_eq(pool.nused, 2);
    sw_conn_watch(&c, true, true);
    sw_conn_timer(&c, 60000);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING | SW_CONN_F_WRITING);
    check_events(&c);

    sw_conn_close(&c);
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert_ptr_eq(c.io.ops, &sw_io_plain);
    ck_assert(!sw_conn_is_open(&c));
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert(!sw_conn_timer_armed(&c));
    check_events(&c);
    ck_assert_uint_eq(pool.nused, 0);
    ck_assert_uint_eq(pool.nfree, 2);
    /* The fd really is closed: the peer reads EOF (nothing was flushed). */
    char buf[16];
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 0);
    pump();
    ck_assert_int_eq(o.reads + o.writes + o.timers, 0);

    /* A closed end can be closed again and attached again. */
    sw_conn_close(&c);
    ck_assert_uint_eq(pool.nused, 0);
    close(sv[1]);
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    peer_send(sv[1], "x", 1);
    ck_assert_int_eq(sw_conn_read(&c), 1);
    sw_conn_close(&c);
    ck_assert_uint_eq(pool.nused, 0);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- sw_conn_watch and the callbacks ------------------------------------ */

START_TEST(test_watch_callbacks)
{
    rig_init(4096);
    struct owner o = {0};
    struct owner bystander = {0};
    struct sw_conn c;
    struct sw_conn d; /* a second end on the same loop, never watched */
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);
    sw_conn_init(&d, "client", base, &pool, &handlers, &bystander);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    int sv2[2];
    unix_pair(sv2);
    attach_fd(&d, sv2[0]);
    peer_send(sv2[1], "zzz", 3); /* d is readable but not watched */

    /* Reading, nothing to read: no callback. */
    sw_conn_watch(&c, true, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING);
    check_events(&c);
    pump();
    ck_assert_int_eq(o.reads, 0);
    ck_assert_int_eq(o.writes, 0);

    /* Bytes arrive: on_read with this end and the owner's arg; level
     * triggered, so again on the next turn while they stay unread. */
    peer_send(sv[1], "data", 4);
    pump();
    ck_assert_int_eq(o.reads, 1);
    ck_assert_ptr_eq(o.seen, &c);
    pump();
    ck_assert_int_eq(o.reads, 2);
    ck_assert_int_eq(o.writes, 0);
    /* Watching again what is watched changes nothing. */
    sw_conn_watch(&c, true, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING);
    check_events(&c);
    /* Read the bytes: quiet again. */
    ck_assert_int_eq(sw_conn_read(&c), 4);
    pump();
    ck_assert_int_eq(o.reads, 2);

    /* Writing only: on_write, and on_read no more though bytes wait. */
    peer_send(sv[1], "more", 4);
    sw_conn_watch(&c, false, true);
    ck_assert_uint_eq(c.flags, SW_CONN_F_WRITING);
    check_events(&c);
    pump();
    ck_assert_int_eq(o.writes, 1);
    ck_assert_int_eq(o.reads, 2);

    /* Both. */
    sw_conn_watch(&c, true, true);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING | SW_CONN_F_WRITING);
    check_events(&c);
    pump();
    ck_assert_int_eq(o.reads, 3);
    ck_assert_int_eq(o.writes, 2);

    /* None: no callback at all, flags clear, events deleted. */
    sw_conn_watch(&c, false, false);
    ck_assert_uint_eq(c.flags, 0);
    check_events(&c);
    pump();
    pump();
    ck_assert_int_eq(o.reads, 3);
    ck_assert_int_eq(o.writes, 2);

    /* Flags other than the interest bits are kept by watch. */
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(sw_conn_read(&c), 4);
    ck_assert_int_eq(sw_conn_read(&c), 0);
    sw_conn_watch(&c, true, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_READING | SW_CONN_F_EOF);
    sw_conn_watch(&c, false, false);
    ck_assert_uint_eq(c.flags, SW_CONN_F_EOF);

    ck_assert_int_eq(bystander.reads + bystander.writes, 0);
    sw_conn_close(&c);
    sw_conn_close(&d);
    close(sv[1]);
    close(sv2[1]);
    rig_fini();
}
END_TEST

START_TEST(test_rebind)
{
    rig_init(4096);
    struct owner a = {0};
    struct owner b = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &a);
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);

    peer_send(sv[1], "first", 5);
    sw_conn_watch(&c, true, true);
    pump();
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(a.writes, 1);
    ck_assert_int_eq(sw_conn_read(&c), 5);
    put_bytes(&c, "pending", 7);
    sw_conn_timer(&c, 60000);
    struct sw_buf *in = c.in;
    struct sw_buf *out = c.out;

    /* Events and timer stopped; socket, transport, buffers stay. */
    sw_conn_rebind(&c, &other_handlers, &b);
    ck_assert_ptr_eq(c.on, &other_handlers);
    ck_assert_ptr_eq(c.arg, &b);
    ck_assert_uint_eq(c.flags & (SW_CONN_F_READING | SW_CONN_F_WRITING), 0);
    check_events(&c);
    ck_assert(!sw_conn_timer_armed(&c));
    ck_assert_int_eq(c.io.fd, sv[0]);
    ck_assert_ptr_eq(c.io.ops, &sw_io_plain);
    ck_assert_ptr_eq(c.in, in);
    ck_assert_ptr_eq(c.out, out);
    check_in(&c, "first");
    ck_assert_uint_eq(sw_buf_len(c.out), 7);
    peer_send(sv[1], "second", 6);
    pump();
    ck_assert_int_eq(a.reads + a.writes + b.reads + b.writes, 2);

    /* The new owner watches: only it is called, with its arg. */
    sw_conn_watch(&c, true, true);
    pump();
    ck_assert_int_eq(b.reads, 1);
    ck_assert_int_eq(b.writes, 1);
    ck_assert_ptr_eq(b.seen, &c);
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(a.writes, 1);
    ck_assert_int_eq(sw_conn_read(&c), 6);
    check_in(&c, "firstsecond");
    ck_assert_int_eq(sw_conn_flush(&c), 7);
    char got[16];
    ck_assert_int_eq(peer_recv(sv[1], got, sizeof(got)), 7);
    ck_assert_mem_eq(got, "pending", 7);

    /* The timer goes to the new owner too. */
    sw_conn_watch(&c, false, false);
    sw_conn_timer(&c, 1);
    ck_assert(sw_conn_timer_armed(&c));
    loop_until(&b.timers, 1);
    ck_assert_int_eq(b.timers, 1);
    ck_assert_int_eq(a.timers, 0);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

START_TEST(test_detach)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    int sv[2];
    conn_on_pair(&c, "upstream", &o, sv, false);
    peer_send(sv[1], "kept", 4);
    ck_assert_int_eq(sw_conn_read(&c), 4);
    sw_conn_watch(&c, true, true);
    sw_conn_timer(&c, 60000);

    struct sw_io io;
    memset(&io, 0, sizeof(io));
    sw_conn_detach(&c, &io);
    ck_assert_int_eq(io.fd, sv[0]);
    ck_assert_ptr_eq(io.ops, &sw_io_plain);
    ck_assert_int_eq(c.io.fd, -1);
    ck_assert(!sw_conn_is_open(&c));
    ck_assert_uint_eq(c.flags, 0);
    check_events(&c);
    ck_assert(!sw_conn_timer_armed(&c));
    /* Buffers stay with the connection. */
    check_in(&c, "kept");
    ck_assert_uint_eq(pool.nused, 1);

    /* The fd is still open and usable both ways, and nobody is called. */
    peer_send(sv[1], "still", 5);
    pump();
    ck_assert_int_eq(o.reads + o.writes + o.timers, 0);
    char buf[16];
    ck_assert_int_eq(recv(io.fd, buf, sizeof(buf), 0), 5);
    ck_assert_mem_eq(buf, "still", 5);
    ck_assert_int_eq(send(io.fd, "back", 4, MSG_NOSIGNAL), 4);
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 4);
    ck_assert_mem_eq(buf, "back", 4);

    /* Closing the detached end returns its buffers and leaves the fd. */
    sw_conn_close(&c);
    ck_assert_uint_eq(pool.nused, 0);
    ck_assert_int_eq(send(io.fd, "alive", 5, MSG_NOSIGNAL), 5);
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 5);

    /* Another end takes the socket over (a keep-alive reuse). */
    struct owner o2 = {0};
    struct sw_conn c2;
    sw_conn_init(&c2, "upstream", base, &pool, &handlers, &o2);
    sw_conn_attach(&c2, &io);
    ck_assert_int_eq(c2.io.fd, sv[0]);
    peer_send(sv[1], "reuse", 5);
    sw_conn_watch(&c2, true, false);
    pump();
    ck_assert_int_eq(o2.reads, 1);
    ck_assert_int_eq(o.reads, 0);
    ck_assert_int_eq(sw_conn_read(&c2), 5);
    check_in(&c2, "reuse");
    sw_conn_close(&c2);
    ck_assert_int_eq(peer_recv(sv[1], buf, sizeof(buf)), 0);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- the timer ---------------------------------------------------------- */

START_TEST(test_timer)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    sw_conn_init(&c, "client", base, &pool, &handlers, &o);

    /* An end with no socket has a timer too (a connect deadline). */
    ck_assert(!sw_conn_timer_armed(&c));
    sw_conn_timer(&c, 1);
    ck_assert(sw_conn_timer_armed(&c));
    loop_until(&o.timers, 1);
    ck_assert_int_eq(o.timers, 1);
    ck_assert_ptr_eq(o.seen, &c);
    ck_assert(!sw_conn_timer_armed(&c)); /* one shot */

    /* Re-arming moves the deadline; 0 disarms. */
    sw_conn_timer(&c, 60000);
    ck_assert(sw_conn_timer_armed(&c));
    sw_conn_timer(&c, 1);
    ck_assert(sw_conn_timer_armed(&c));
    loop_until(&o.timers, 2);
    ck_assert_int_eq(o.timers, 2);
    sw_conn_timer(&c, 60000);
    sw_conn_timer(&c, 0);
    ck_assert(!sw_conn_timer_armed(&c));
    sw_conn_timer(&c, 0); /* disarming a disarmed timer */
    ck_assert(!sw_conn_timer_armed(&c));

    /* Attached, the timer fires alongside socket events. */
    int sv[2];
    unix_pair(sv);
    attach_fd(&c, sv[0]);
    sw_conn_timer(&c, 1);
    loop_until(&o.timers, 3);
    ck_assert_int_eq(o.timers, 3);
    ck_assert_int_eq(o.reads + o.writes, 0);

    /* Close disarms. */
    sw_conn_timer(&c, 60000);
    sw_conn_close(&c);
    ck_assert(!sw_conn_timer_armed(&c));
    close(sv[1]);

    /* A table without on_timer: the deadline passes, nothing is called. */
    struct owner q = {0};
    struct sw_conn n;
    sw_conn_init(&n, "client", base, &pool, &no_timer_handlers, &q);
    sw_conn_timer(&n, 1);
    /* c's later deadline ends the wait: by the time it fires, n's has
     * expired too (libevent runs timers in deadline order). */
    sw_conn_timer(&c, 20);
    loop_until(&o.timers, 4);
    ck_assert_int_eq(o.timers, 4);
    ck_assert(!sw_conn_timer_armed(&n));
    ck_assert_int_eq(q.reads + q.writes + q.timers, 0);
    rig_fini();
}
END_TEST

/* ---- buffers ------------------------------------------------------------ */

START_TEST(test_release_idle)
{
    rig_init(4096);
    struct owner o = {0};
    struct sw_conn c;
    int sv[2];
    conn_on_pair(&c, "client", &o, sv, false);

    /* Nothing held: nothing to do. */
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_null(c.out);

    /* Input held, output empty: only the output goes back. */
    peer_send(sv[1], "abc", 3);
    ck_assert_int_eq(sw_conn_read(&c), 3);
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    ck_assert_uint_eq(pool.nused, 2);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.out);
    check_in(&c, "abc");
    ck_assert_uint_eq(pool.nused, 1);

    /* Output held, input consumed: only the input goes back. */
    put_bytes(&c, "xyz", 3);
    c.in->pos = c.in->last;
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.in);
    ck_assert_ptr_nonnull(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), 3);
    ck_assert_uint_eq(pool.nused, 1);

    /* A partly sent output is not empty: kept. */
    c.out->pos++;
    sw_conn_release_idle(&c);
    ck_assert_ptr_nonnull(c.out);
    ck_assert_uint_eq(sw_buf_len(c.out), 2);
    ck_assert_int_eq(sw_conn_flush(&c), 2);
    sw_conn_release_idle(&c);
    ck_assert_ptr_null(c.out);
    ck_assert_uint_eq(pool.nused, 0);

    /* The single-buffer helpers. */
    ck_assert_uint_eq(sw_conn_out_room(&c), 4096);
    put_bytes(&c, "q", 1);
    sw_conn_buf_release_if_empty(&c, &c.out);
    ck_assert_ptr_nonnull(c.out);
    sw_conn_buf_release(&c, &c.out);
    ck_assert_ptr_null(c.out);
    sw_conn_buf_release_if_empty(&c, &c.out); /* NULL is fine */
    ck_assert_uint_eq(pool.nused, 0);

    /* buf_ready: fresh from the pool, then rewound once emptied. */
    struct sw_buf *b = NULL;
    ck_assert(sw_conn_buf_ready(&c, &b));
    ck_assert_ptr_nonnull(b);
    ck_assert(sw_buf_append(b, "12345", 5));
    b->pos = b->last;
    ck_assert(sw_conn_buf_ready(&c, &b));
    ck_assert_ptr_eq(b->pos, b->start);
    ck_assert_uint_eq(sw_buf_room(b), 4096);
    sw_conn_buf_release(&c, &b);
    ck_assert_ptr_null(b);

    sw_conn_close(&c);
    close(sv[1]);
    rig_fini();
}
END_TEST

/* ---- sw_conn_show_flags ------------------------------------------------- */

#define ALL_FLAGS                                                              \
    (SW_CONN_F_READING | SW_CONN_F_WRITING | SW_CONN_F_EOF | SW_CONN_F_RESET | \
     SW_CONN_F_DEAD | SW_CONN_F_READ_WANTS_WRITE | SW_CONN_F_WRITE_WANTS_READ)

static const struct {
    unsigned flags;
    const char *text;
} flag_vectors[] = {
    {0, "-"},
    {SW_CONN_F_READING, "READING"},
    {SW_CONN_F_WRITING, "WRITING"},
    {SW_CONN_F_EOF, "EOF"},
    {SW_CONN_F_RESET, "RESET"},
    {SW_CONN_F_DEAD, "DEAD"},
    {SW_CONN_F_READ_WANTS_WRITE, "READ_WANTS_WRITE"},
    {SW_CONN_F_WRITE_WANTS_READ, "WRITE_WANTS_READ"},
    {SW_CONN_F_READING | SW_CONN_F_EOF, "READING|EOF"},
    {SW_CONN_F_EOF | SW_CONN_F_RESET, "EOF|RESET"},
    {SW_CONN_F_WRITING | SW_CONN_F_DEAD | SW_CONN_F_WRITE_WANTS_READ,
     "WRITING|DEAD|WRITE_WANTS_READ"},
    {ALL_FLAGS, "READING|WRITING|EOF|RESET|DEAD|READ_WANTS_WRITE|"
                "WRITE_WANTS_READ"},
};

START_TEST(test_show_flags)
{
    char out[SW_CONN_FLAGS_TEXT];
    for (size_t i = 0; i < SW_NELEMS(flag_vectors); i++) {
        ck_assert_ptr_eq(
            sw_conn_show_flags(flag_vectors[i].flags, out, sizeof(out)), out);
        ck_assert_str_eq(out, flag_vectors[i].text);
    }
    /* SW_CONN_FLAGS_TEXT is enough for every name. */
    ck_assert_uint_lt(strlen(flag_vectors[SW_NELEMS(flag_vectors) - 1].text),
                      SW_CONN_FLAGS_TEXT);

    /* Every small size, the buffer flush against a guard page so that a
     * byte written past it crashes: the text is NUL-terminated inside it
     * and is a prefix of the full text (the whole text once it fits). */
    for (size_t i = 0; i < SW_NELEMS(flag_vectors); i++) {
        const char *full = flag_vectors[i].text;
        for (size_t n = 1; n <= SW_CONN_FLAGS_TEXT; n++) {
            char init[SW_CONN_FLAGS_TEXT];
            memset(init, '#', sizeof(init));
            char *p = sw_test_guard_copy(init, n);
            ck_assert_ptr_eq(sw_conn_show_flags(flag_vectors[i].flags, p, n),
                             p);
            size_t len = strnlen(p, n);
            ck_assert_msg(len < n, "flags %#x, n %zu: not terminated",
                          flag_vectors[i].flags, n);
            ck_assert_msg(strncmp(p, full, len) == 0,
                          "flags %#x, n %zu: \"%s\" is not a prefix of %s",
                          flag_vectors[i].flags, n, p, full);
            if (n > strlen(full)) {
                ck_assert_str_eq(p, full);
            }
            sw_test_guard_free(p, n);
        }
    }
}
END_TEST

/*
 * BUG (lib/conn): sw_conn_show_flags() writes out[0] before looking at n, so
 * a zero-size buffer gets one byte written past its end. The buffer here is
 * the empty range right before a PROT_NONE page: the stray write crashes
 * (SIGSEGV) until the function checks n == 0 first, as snprintf does.
 */
START_TEST(test_show_flags_zero_size)
{
    char *p = sw_test_guard_copy(NULL, 0);
    ck_assert_ptr_eq(sw_conn_show_flags(0, p, 0), p);
    ck_assert_ptr_eq(sw_conn_show_flags(ALL_FLAGS, p, 0), p);
    sw_test_guard_free(p, 0);
}
END_TEST

static Suite *
conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *lc = tcase_create("lifecycle");
    tcase_add_checked_fixture(lc, rig_setup, NULL);
    tcase_add_test(lc, test_init_attach_close);
    tcase_add_test(lc, test_rebind);
    tcase_add_test(lc, test_detach);
    suite_add_tcase(s, lc);

    TCase *ev = tcase_create("events");
    tcase_add_checked_fixture(ev, rig_setup, NULL);
    tcase_add_test(ev, test_watch_callbacks);
    tcase_add_test(ev, test_timer);
    suite_add_tcase(s, ev);

    TCase *bf = tcase_create("buffers");
    tcase_add_checked_fixture(bf, rig_setup, NULL);
    tcase_add_test(bf, test_release_idle);
    suite_add_tcase(s, bf);

    TCase *fl = tcase_create("flags");
    tcase_add_checked_fixture(fl, rig_setup, NULL);
    tcase_add_test(fl, test_show_flags);
    tcase_add_test(fl, test_show_flags_zero_size);
    suite_add_tcase(s, fl);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(conn_suite());
}
