/*
 * krelay_slot.h - the memory the kernel relay's BPF programs
 * (krelay.bpf.c) and the gateway (krelay.c, lib/relay/relay_kernel.c)
 * share: one slot per relayed session in an mmap'ed array map, and the
 * sockmap index of each end. Included by both sides, so fixed-width types
 * only. The protocol over these fields is in docs/architecture.md, "The
 * kernel relay".
 */
#ifndef SW_KRELAY_SLOT_H
#define SW_KRELAY_SLOT_H

#ifdef __bpf__
#include <linux/types.h>
typedef __u8 sw_kr_u8;
typedef __u32 sw_kr_u32;
typedef __u64 sw_kr_u64;
#else
#include <stdint.h>
typedef uint8_t sw_kr_u8;
typedef uint32_t sw_kr_u32;
typedef uint64_t sw_kr_u64;
#endif

/* Sessions per worker (slots), and sockmap entries (two per slot: the
 * client end at 2 * slot, the upstream end at 2 * slot + 1). */
#define SW_KR_SLOTS 16384
#define SW_KR_SOCKETS (2 * SW_KR_SLOTS)

/* Bytes redirected toward an end and not yet in its TCP queue (the
 * kernel's own queue per socket, which no socket buffer bounds) beyond
 * which the verdict hands frames to the gateway instead. */
#define SW_KR_MAX_QUEUED (1024 * 1024)

/* Buckets of the message-size histogram (the gateway's, from
 * sw_metrics_buckets: bounds set before the program loads). */
#define SW_KR_HIST_BOUNDS 16

/* dir.mode */
#define SW_KR_USER 0 /* everything goes to the gateway */
#define SW_KR_ARMED                                                            \
    1                  /* the gateway offers the direction back: the           \
                          verdict takes it at the next frame header once       \
                          it has read all it was passed (consumed == passed) */
#define SW_KR_KERNEL 2 /* data frames are redirected to the peer */

/* One direction: the end at `side` is the source. */
struct sw_kr_dir {
    sw_kr_u32 mode; /* SW_KR_*: the gateway swaps it to USER, the verdict
                       swaps ARMED to KERNEL and KERNEL to USER */
    sw_kr_u32 seq;  /* odd while the verdict changes the message state
                       below; bumped by each redirect */
    /* Written by the gateway before it stores ARMED. */
    sw_kr_u64 consumed; /* bytes of the source the gateway has read */
    /* The destination's TCP bytes before the session joined, and those the
     * gateway sent it since (stored after each send): with `redirected`,
     * what its TCP queue must have been given once the kernel's own queue
     * toward it is empty. */
    sw_kr_u64 dst_base;
    sw_kr_u64 dst_sent;
    /* The message state: the gateway's before ARMED, the verdict's while
     * it redirects. */
    sw_kr_u64 msg_bytes; /* payload of the fragmented message so far */
    sw_kr_u8 in_msg;     /* a message is open: CONT frames continue it */
    sw_kr_u8 msg_opcode; /* its opcode (TEXT or BINARY) */
    /* Counters of the verdict. */
    sw_kr_u64 passed;     /* bytes handed to the gateway */
    sw_kr_u64 redirected; /* bytes redirected into the peer (the gateway's
                             drain check compares it with what the peer's
                             TCP was given) */
    sw_kr_u64 frames;     /* frames redirected (headers) */
    sw_kr_u64 messages;   /* of which ended a message */
    sw_kr_u64 payload;    /* payload bytes redirected */
    /* Sizes of the messages the kernel relayed: counts per bucket and
     * their sum; the gateway takes them (swapping in 0) into its
     * histogram. */
    sw_kr_u64 hist[SW_KR_HIST_BOUNDS + 1];
    sw_kr_u64 hist_sum;
    /* The verdict's scratch while it walks one skb's frames (here, not on
     * its stack, so the verifier need not follow each value through the
     * loop; the socket's lock serialises the verdict per socket). */
    sw_kr_u32 w_pos; /* next byte to look at */
    sw_kr_u32 w_len;
    sw_kr_u32 w_bad; /* a frame the kernel path does not take */
    sw_kr_u8 w_in_msg;
    sw_kr_u8 w_msg_opcode;
    sw_kr_u8 pad2[6];
    sw_kr_u64 w_msg_bytes;
    sw_kr_u64 w_frames;
    sw_kr_u64 w_messages;
    sw_kr_u64 w_payload;
    sw_kr_u64 w_hist[SW_KR_HIST_BOUNDS + 1];
    sw_kr_u64 w_hist_sum;
};

/* The gateway's own bookkeeping of a session on the kernel relay (the
 * program never reads it): here rather than in the relay, so a session
 * off the kernel relay pays nothing for it. lib/relay/relay_kernel.c. */
struct sw_kr_gw_dir {
    sw_kr_u64 consumed; /* bytes read from the source since the join */
    sw_kr_u64 drained;  /* `redirected` known to be in the dst's TCP */
    sw_kr_u64 frames;   /* the kernel's counters already folded in */
    sw_kr_u64 messages;
    sw_kr_u64 payload;
    sw_kr_u32 seen; /* the seq last taken over (sync_dir) */
    sw_kr_u8 owned; /* the gateway holds the direction: it may write to
                       the destination (every redirected byte is there) */
    sw_kr_u8 pad[3];
};

struct sw_kr_gw {
    struct sw_kr_gw_dir dir[2];
    sw_kr_u64 base[2];    /* per end ([0] client): bytes its TCP was given
                             before the join */
    sw_kr_u64 sent[2];    /* ... and bytes the gateway sent it since */
    sw_kr_u64 retry_ms;   /* retry a write that waits for the kernel's
                             bytes then; 0 none */
    sw_kr_u64 retry_wait; /* the last wait (it grows) */
    sw_kr_u64 fold_ms;    /* fold the kernel's counters then */
    sw_kr_u32 index;      /* this slot's index */
    sw_kr_u32 pad;
};

struct sw_kr_slot {
    struct sw_kr_dir dir[2]; /* [0] client -> upstream, [1] the other way */
    /* Limits, written when the session joins (0 = none). */
    sw_kr_u64 max_frame;
    sw_kr_u64 max_message;
    sw_kr_u8 rsv_allowed; /* RSV bits an extension negotiated */
    sw_kr_u8 pad1[7];
    struct sw_kr_gw gw; /* the gateway's only */
};

#endif
