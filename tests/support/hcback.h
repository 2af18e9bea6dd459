/*
 * hcback.h - a backend for the health check tests whose health answer the
 * test switches at run time (a SCRIPT-mode fake of net.h, in-process).
 *
 *   GET /healthz (any path starting so)    OK: 200 "ok"; FAIL: 500;
 *                                          STALL: read, never answer;
 *                                          GARBAGE: "SSH-2.0-x"; BIGHEAD:
 *                                          200 with 12 KiB of fields
 *   a WebSocket upgrade (Upgrade header)   OK: 101 with the right
 *                                          Sec-WebSocket-Accept, then held
 *                                          until the client closes; FAIL:
 *                                          503; STALL: no answer
 *   anything else                          200 with the backend's name as
 *                                          body (counted apart, so a test
 *                                          sees whether clients reached it),
 *                                          or a reset with reset_clients
 * Every answer but the 101 closes the connection.
 */
#ifndef SW_TEST_HCBACK_H
#define SW_TEST_HCBACK_H

#include "net.h"

enum sw_test_hc_mode {
    SW_TEST_HC_OK = 0,  /* healthy */
    SW_TEST_HC_FAIL,    /* 500 / 503 */
    SW_TEST_HC_STALL,   /* accept, read, never answer */
    SW_TEST_HC_GARBAGE, /* health path: a line that is not HTTP */
    SW_TEST_HC_BIGHEAD, /* health path: 200 with a 12 KiB head */
};

struct sw_test_hcback {
    struct sw_test_fake fake;  /* the listener and its thread */
    char name[32];             /* body of ordinary answers */
    atomic_int mode;           /* enum sw_test_hc_mode */
    atomic_int health_hits;    /* /healthz requests */
    atomic_int ws_hits;        /* upgrade requests */
    atomic_int other_hits;     /* any other request (clients) */
    atomic_bool reset_clients; /* other requests: reset, no answer */
};

/* Start on a free loopback port (b->fake.port). */
bool sw_test_hcback_start(struct sw_test_hcback *b, const char *name);
void sw_test_hcback_set(struct sw_test_hcback *b, enum sw_test_hc_mode m);
void sw_test_hcback_stop(struct sw_test_hcback *b);

#endif
