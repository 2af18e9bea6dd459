/*
 * wsfake.h - a scripted WebSocket upstream for the integration suites.
 *
 * It accepts any opening handshake (its 101 carries the Sec-WebSocket-Accept
 * for the key that came), then reads frames and obeys the text messages it
 * receives, so a test drives the upstream's faults through the gateway at
 * exactly the moment it wants:
 *
 *   "reset"        reset the TCP connection (SO_LINGER 0: RST), no close
 *   "fin"          close the TCP connection (FIN) without a close frame
 *   "head N M"     send the header of an N-byte binary frame and its first M
 *                  payload bytes (the net.h test pattern from offset 0)
 *   "tail"         send the rest of that frame
 *   "later MS"     wait MS milliseconds (at most 5000), then send the text
 *                  message "later": traffic that starts at the upstream
 *
 * Any other message is only recorded; pings and pongs are ignored (the
 * gateway answers pings itself with ws_ping local); a close frame is answered
 * with a close carrying the same code, then FIN. Messages are joined from
 * their fragments before they are recorded or obeyed.
 *
 *   client --frames--> gateway --frames--> wsfake: record, obey commands
 *   client <--frames-- gateway <--frames-- wsfake: 101, "head"/"tail" bytes
 *
 * One thread serves one connection at a time (the next is accepted once the
 * gateway closed the last); every wait is a poll() with a deadline, and the
 * thread checks its stop flag every 50 ms.
 *
 * Threading: start and stop from the test's main thread; the counters are
 * atomic and the record is guarded by the mutex.
 */
#ifndef SW_TEST_WSFAKE_H
#define SW_TEST_WSFAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct sw_test_wsfake {
    int lfd;             /* listening socket */
    int port;            /* its port */
    pthread_t thread;    /* the serving thread */
    atomic_bool stop;    /* asks the thread to end */
    bool running;        /* thread started */
    atomic_int accepts;  /* connections accepted */
    atomic_int upgrades; /* 101 answers sent */
    atomic_int commands; /* commands carried out */
    pthread_mutex_t mu;  /* guards msgs */
    char *msgs;          /* owned: text messages received, one per line */
    size_t msgs_len;     /* bytes in msgs */
    size_t msgs_cap;     /* capacity of msgs */
};

/* Bind a free port on 127.0.0.1 and start serving. */
bool sw_test_wsfake_start(struct sw_test_wsfake *f);

/* Stop the thread and close the sockets; the record stays until _free. */
void sw_test_wsfake_stop(struct sw_test_wsfake *f);
void sw_test_wsfake_free(struct sw_test_wsfake *f);

/* The text messages received so far, each followed by '\n' (malloc'd,
 * NUL-terminated). */
char *sw_test_wsfake_msgs(struct sw_test_wsfake *f);

#endif
