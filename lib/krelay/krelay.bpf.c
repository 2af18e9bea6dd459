// SPDX-License-Identifier: GPL-2.0
/*
 * krelay.bpf.c - the kernel relay's BPF program: an sk_skb verdict on each
 * relayed socket that redirects data frames to the peer socket without
 * waking the gateway, or hands them to it (SK_PASS: the gateway reads them
 * as it reads any socket). The state it shares with the gateway is in
 * krelay_slot.h; the protocol is in docs/architecture.md, "The kernel
 * relay".
 *
 * Whole skbs, as TCP queued them: the verdict walks the frames in each
 * and redirects the skb only when it holds whole frames, every one a data
 * frame the limits and RFC 6455 accept; else the whole skb goes to the
 * gateway, which holds the direction until it offers it back. So the
 * kernel never sends part of a frame, and a frame larger than what TCP
 * queued at once is relayed by the gateway. No stream parser: its
 * messages start at an offset inside the skb that sk_skb programs are not
 * told, so a parser cannot read a second frame's header in one skb.
 *
 * Handed to the gateway: control frames (pings are answered, closes
 * tracked and 1002/1009 sent by the gateway as without this relay), frames
 * the limits or RFC 6455 refuse, frames that do not end in their skb,
 * anything while the direction is not SW_KR_KERNEL, and skbs whose peer's
 * send queue is full.
 *
 * GPL: the sk_skb helpers this uses are available to GPL programs only.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "krelay_slot.h"

char LICENSE[] SEC("license") = "GPL";

/* The message-size histogram's bounds, set by the gateway before loading. */
const volatile __u64 msg_le[SW_KR_HIST_BOUNDS] = {};
const volatile __u32 msg_nle = 0;

/* struct sock's two fields the congestion check reads, relocated against
 * the running kernel's BTF (CO-RE): no vmlinux.h needed. */
struct sock___kr {
    int sk_wmem_queued;
    int sk_sndbuf;
} __attribute__((preserve_access_index));

struct tcp_sock___kr {
    __u64 bytes_acked;
    __u32 write_seq;
    __u32 snd_una;
} __attribute__((preserve_access_index));

struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, SW_KR_SOCKETS);
    __type(key, __u32);
    __type(value, __u64);
} sockets SEC(".maps");

/* socket cookie -> sockmap index (2 * slot + side) */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SW_KR_SOCKETS);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u64);
    __type(value, __u32);
} cookies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SW_KR_SLOTS);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct sw_kr_slot);
} slots SEC(".maps");

/* Frames walked in one skb at most: beyond, it goes to the gateway. */
#define MAX_FRAMES_PER_SKB 8192

#define READ_ONCE32(x) (*(volatile __u32 *)&(x))
#define READ_ONCE64(x) (*(volatile __u64 *)&(x))

struct hdr {
    __u8 fin;
    __u8 rsv;
    __u8 op;
    __u8 masked;
    __u8 mask[4];
    __u32 hlen;
    __u64 plen;
};

/* Decode the frame header at `at` in skb (len bytes): 1, or 0 when the
 * skb ends inside it. */
static __always_inline int
parse_hdr_at(struct __sk_buff *skb, __u32 at, __u32 len, struct hdr *h)
{
    __u8 b[2];
    if (len < at + 2 || bpf_skb_load_bytes(skb, at, b, 2) != 0) {
        return 0;
    }
    h->fin = b[0] >> 7;
    h->rsv = (b[0] >> 4) & 7;
    h->op = b[0] & 15;
    h->masked = b[1] >> 7;
    __u8 l7 = b[1] & 0x7f;
    __u32 ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
    h->hlen = 2 + ext + (h->masked ? 4 : 0);
    if (len < at + h->hlen) {
        return 0;
    }
    if (ext == 2) {
        __u16 v;
        if (bpf_skb_load_bytes(skb, at + 2, &v, 2) != 0) {
            return 0;
        }
        h->plen = bpf_ntohs(v);
    } else if (ext == 8) {
        __u64 v;
        if (bpf_skb_load_bytes(skb, at + 2, &v, 8) != 0) {
            return 0;
        }
        h->plen = bpf_be64_to_cpu(v);
    } else {
        h->plen = l7;
    }
    if (h->masked && bpf_skb_load_bytes(skb, at + 2 + ext, h->mask, 4) != 0) {
        return 0;
    }
    return 1;
}

/* The direction whose source is skb's socket, NULL for a socket not ours. */
static __always_inline struct sw_kr_dir *
dir_of(struct __sk_buff *skb, __u32 *index, struct sw_kr_slot **slot)
{
    __u64 cookie = bpf_get_socket_cookie(skb);
    __u32 *ip = bpf_map_lookup_elem(&cookies, &cookie);
    if (ip == NULL) {
        return NULL;
    }
    __u32 i = *ip;
    __u32 n = i >> 1;
    struct sw_kr_slot *s = bpf_map_lookup_elem(&slots, &n);
    if (s == NULL) {
        return NULL;
    }
    *index = i;
    *slot = s;
    return (i & 1) ? &s->dir[1] : &s->dir[0];
}

/* RFC 6455 and the limits accept this header for the kernel path (the
 * gateway, given the frame, decides about the others). */
static __always_inline int
frame_ok_view(const struct sw_kr_slot *s, __u8 in_msg, __u64 msg_bytes,
              __u32 side, const struct hdr *h)
{
    if (h->op > 2 || h->masked != (side == 0) || (h->plen >> 63) != 0) {
        return 0; /* control or reserved opcode; mask by direction */
    }
    if ((h->rsv & ~s->rsv_allowed) != 0 || (h->op == 0 && h->rsv != 0)) {
        return 0;
    }
    if ((h->op == 0) != (in_msg != 0)) {
        return 0; /* CONT without a message, or a new one inside one */
    }
    if (s->max_frame != 0 && h->plen > s->max_frame) {
        return 0;
    }
    __u64 msg = (h->op == 0 ? msg_bytes : 0) + h->plen;
    if (s->max_message != 0 && msg > s->max_message) {
        return 0;
    }
    return 1;
}

/* The peer's send queue is full, or what was redirected toward it and is
 * not in that queue yet passed SW_KR_MAX_QUEUED, or the peer is gone: what
 * would be redirected goes to the gateway, which holds it within its own
 * buffers and stops reading. */
static __always_inline int
peer_congested(const struct sw_kr_dir *d, __u32 peer)
{
    struct bpf_sock *sk = bpf_map_lookup_elem(&sockets, &peer);
    if (sk == NULL) {
        return 1;
    }
    int full = 1;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (tp != NULL) {
        struct sock___kr *k = (struct sock___kr *)tp;
        struct tcp_sock___kr *t = (struct tcp_sock___kr *)tp;
        __u64 written = t->bytes_acked + (__u32)(t->write_seq - t->snd_una);
        __s64 queued = (__s64)(d->dst_base + READ_ONCE64(d->dst_sent) +
                               READ_ONCE64(d->redirected) - written);
        full = k->sk_wmem_queued >= k->sk_sndbuf || queued > SW_KR_MAX_QUEUED;
    }
    bpf_sk_release(sk);
    return full;
}

/* The walk over one skb's frames: its state is in the direction's
 * scratch fields. */
struct walk {
    struct __sk_buff *skb;
    const struct sw_kr_slot *s;
    struct sw_kr_dir *d;
    __u32 side;
};

static long
walk_frame(__u32 i, void *ctx)
{
    struct walk *w = ctx;
    struct sw_kr_dir *d = w->d;
    (void)i;
    __u32 pos = d->w_pos;
    __u32 len = d->w_len;
    if (pos >= len) {
        return 1;
    }
    struct hdr h = {};
    if (parse_hdr_at(w->skb, pos, len, &h) == 0 ||
        !frame_ok_view(w->s, d->w_in_msg, d->w_msg_bytes, w->side, &h)) {
        d->w_bad = 1; /* a header cut by the skb's end, or one for the
                         gateway */
        return 1;
    }
    __u32 left = len - pos - h.hlen;
    if (h.plen > left) {
        d->w_bad = 1; /* the frame goes on in the next skb: the gateway
                         relays it whole */
        return 1;
    }
    d->w_pos = pos + h.hlen + (__u32)h.plen;
    if (h.op != 0) {
        d->w_msg_opcode = h.op;
        d->w_msg_bytes = h.plen;
    } else {
        d->w_msg_bytes += h.plen;
    }
    d->w_in_msg = !h.fin;
    d->w_frames++;
    if (h.fin) {
        /* a message ends here: its size into the histogram's bucket */
        __u64 size = d->w_msg_bytes;
        __u32 b = 0;
        for (__u32 j = 0; j < SW_KR_HIST_BOUNDS; j++) {
            if (j < msg_nle && size > msg_le[j]) {
                b = j + 1;
            }
        }
        if (b <= SW_KR_HIST_BOUNDS) {
            d->w_hist[b]++;
        }
        d->w_hist_sum += size;
        d->w_messages++;
    }
    d->w_payload += h.plen;
    return 0;
}

/* Hand the skb to the gateway. */
static __always_inline int
pass(struct sw_kr_dir *d, __u32 len)
{
    __sync_fetch_and_add(&d->passed, len);
    return SK_PASS;
}

SEC("sk_skb")
int
sw_kr_verdict(struct __sk_buff *skb)
{
    __u32 index;
    struct sw_kr_slot *s;
    struct sw_kr_dir *d = dir_of(skb, &index, &s);
    if (d == NULL) {
        return SK_PASS;
    }
    __u32 len = skb->len;
    if (len == 0) {
        return SK_PASS; /* a bare FIN: the gateway sees the end of input */
    }
    __u32 mode = READ_ONCE32(d->mode);
    if (mode == SW_KR_ARMED && READ_ONCE64(d->consumed) == d->passed) {
        /* the gateway read all it was given and stopped at a frame
         * boundary: the direction is ours, from its message state */
        __sync_val_compare_and_swap(&d->mode, SW_KR_ARMED, SW_KR_KERNEL);
        mode = READ_ONCE32(d->mode);
    }
    if (mode != SW_KR_KERNEL) {
        return pass(d, len); /* the gateway took the direction */
    }

    d->w_pos = 0;
    d->w_len = len;
    d->w_bad = 0;
    d->w_msg_bytes = d->msg_bytes;
    d->w_in_msg = d->in_msg;
    d->w_msg_opcode = d->msg_opcode;
    d->w_frames = 0;
    if (d->w_messages > 0) {
        for (__u32 j = 0; j <= SW_KR_HIST_BOUNDS; j++) {
            d->w_hist[j] = 0;
        }
        d->w_hist_sum = 0;
    }
    d->w_messages = 0;
    d->w_payload = 0;
    struct walk w = {.skb = skb, .s = s, .d = d, .side = index & 1};
    bpf_loop(MAX_FRAMES_PER_SKB, walk_frame, &w, 0);
    int ok = !d->w_bad && d->w_pos >= len;
    ok = ok && !peer_congested(d, index ^ 1);
    if (ok) {
        /* counted before the mode is checked again: the gateway, which
         * swaps the mode before it reads this count, either sees these
         * bytes and waits for them to reach the peer's TCP, or made this
         * check fail (docs/architecture.md, "The kernel relay") */
        __sync_fetch_and_add(&d->redirected, len);
        if (READ_ONCE32(d->mode) != SW_KR_KERNEL) {
            __sync_fetch_and_sub(&d->redirected, len);
            ok = 0;
        }
    }
    if (ok) {
        __sync_fetch_and_add(&d->seq, 1);
        d->msg_bytes = d->w_msg_bytes;
        d->in_msg = d->w_in_msg;
        d->msg_opcode = d->w_msg_opcode;
        d->frames += d->w_frames;
        d->messages += d->w_messages;
        d->payload += d->w_payload;
        if (d->w_messages > 0) {
            for (__u32 j = 0; j <= SW_KR_HIST_BOUNDS; j++) {
                if (d->w_hist[j] != 0) {
                    __sync_fetch_and_add(&d->hist[j], d->w_hist[j]);
                }
            }
            __sync_fetch_and_add(&d->hist_sum, d->w_hist_sum);
        }
        __sync_fetch_and_add(&d->seq, 1);
        return bpf_sk_redirect_map(skb, &sockets, index ^ 1, 0);
    }

    /* the gateway takes the direction until it offers it back */
    __sync_lock_test_and_set(&d->mode, SW_KR_USER);
    return pass(d, len);
}
