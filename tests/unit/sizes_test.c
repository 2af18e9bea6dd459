/*
 * sizes_test.c - the per-connection structures cannot grow unnoticed.
 *
 * What one connection costs in user space is, besides the kernel's socket
 * buffers, a session (both connection ends inside it) and, after an
 * upgrade, a relay; a WebSocket idle for ws_park_after is parked: both are
 * freed and only a struct sw_parked stays; a fan-out client is a struct
 * fo_client. These bounds are today's sizes on x86-64 (LP64); a
 * change that grows a structure must raise its bound here on purpose, and
 * say so in docs/architecture.md ("Memory"). sizeof is stable whatever the
 * machine's load, so unlike timings it belongs in a test.
 */
#include "../../lib/proxy/proxy_int.h"
#include "support.h"
#include "../../lib/relay/relay_int.h"
#include "../../lib/fanout/fanout_int.h"
#include "../../lib/conn/ring_ep.h"

#include <check.h>

#define SESSION_MAX 1896 /* struct sw_session, two sw_conn included */
#define CONN_MAX 504     /* struct sw_conn: io, events, buffers, connect */
#define RELAY_MAX 1656   /* struct sw_relay: two ends, two directions,
                            the kernel relay's slot and handle */
#define PARKED_MAX 616   /* struct sw_parked: an idle WebSocket, whole */
#define FANOUT_CLIENT_MAX 1328 /* struct fo_client: a fan-out client */
#define FANOUT_ENTRY 32        /* struct fo_entry: one ring slot */
#define RING_EP_MAX 128        /* struct sw_ring_ep: an end on io_uring */
#define FANOUT_SLICE 16        /* struct fo_slice: one queued message */

START_TEST(per_connection_sizes)
{
    if (sizeof(void *) != 8) {
        return; /* the bounds are for LP64 */
    }
    ck_assert_uint_le(sizeof(struct sw_conn), CONN_MAX);
    ck_assert_uint_le(sizeof(struct sw_session), SESSION_MAX);
    ck_assert_uint_le(sizeof(struct sw_relay), RELAY_MAX);
    ck_assert_uint_le(sizeof(struct sw_parked), PARKED_MAX);
    ck_assert_uint_le(sizeof(struct fo_client), FANOUT_CLIENT_MAX);
    ck_assert_uint_le(sizeof(struct sw_ring_ep), RING_EP_MAX);
    /* a delivery costs one queue slot per client; a ring slot per worker */
    ck_assert_uint_eq(sizeof(struct fo_slice), FANOUT_SLICE);
    ck_assert_uint_eq(sizeof(struct fo_entry), FANOUT_ENTRY);
}
END_TEST

static Suite *
sizes_suite(void)
{
    Suite *s = suite_create("sizes");
    TCase *tc = tcase_create("structs");
    tcase_add_test(tc, per_connection_sizes);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sw_test_run_suite(sizes_suite());
}
