/*
 * krelay.h - the kernel relay (`ws_kernel_relay on;`): a worker's BPF
 * socket map with a stream parser and a verdict program attached, which
 * moves small WebSocket data frames between a session's two sockets
 * inside the kernel. This module loads the programs and manages the map
 * and the slots it shares with them; lib/relay/relay_kernel.c runs the
 * per-session protocol over a slot (docs/architecture.md, "The kernel
 * relay").
 *
 * Threading: one per worker, used by that worker's thread only.
 */
#ifndef SW_KRELAY_H
#define SW_KRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sw_krelay;
struct sw_kr_slot;

/* Load and attach the programs. NULL when this kernel or process cannot
 * (no BPF, no privilege, no sockmap): `why` then says why. */
struct sw_krelay *sw_krelay_open(char *why, size_t cap);
void sw_krelay_close(struct sw_krelay *k);

struct sw_krelay_limits {
    uint64_t max_frame;   /* 0 = none */
    uint64_t max_message; /* 0 = none */
    uint8_t rsv_allowed;  /* RSV bits an extension negotiated */
};

/* Put a session's two sockets in the map over a fresh slot, both
 * directions SW_KR_USER. Returns the slot, or -1 (slots used up, or the
 * kernel refused a socket: errno). */
int sw_krelay_join(struct sw_krelay *k, int client_fd, int upstream_fd,
                   const struct sw_krelay_limits *lim);
/* The slot's shared memory (valid until sw_krelay_leave). */
struct sw_kr_slot *sw_krelay_slot(struct sw_krelay *k, int slot);
/* Take both sockets out of the map and free the slot. What the kernel
 * still holds for them (bytes handed to the gateway and not read, or
 * redirected and not yet sent) is dropped with them. */
void sw_krelay_leave(struct sw_krelay *k, int slot, int client_fd,
                     int upstream_fd);
/* A worker's kernel relay, loaded when a session first asks for it: a
 * worker whose routes never turn it on loads nothing. */
struct sw_krelay_lazy {
    struct sw_krelay *k; /* owned; NULL until loaded, or unavailable */
    bool tried;          /* loading was tried (and logged if it failed) */
    unsigned worker;     /* for the log line */
};

/* The kernel relay, loading it on the first call; NULL when it cannot be
 * loaded (logged once per worker, with why). */
struct sw_krelay *sw_krelay_get(struct sw_krelay_lazy *l);

#endif
