/*
 * krelay.c - loading the kernel relay's BPF programs (a bpftool skeleton
 * of krelay.bpf.c, built with the library), attaching them to the
 * worker's socket map, and handing out the slots they share with the
 * gateway (see shockwave/krelay.h).
 *
 * Owns: the BPF object and its maps, the mmap of the slot array, the free
 * list of slots.
 */
#include "krelay_skel.h"
#include "krelay_slot.h"

#include <shockwave/krelay.h>
#include <shockwave/log.h>
#include <shockwave/metrics.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct sw_krelay {
    struct sw_krelay_bpf *skel;
    int sockets_fd;             /* the sockmap */
    int cookies_fd;             /* cookie -> index */
    struct sw_kr_slot *slots;   /* the mmap'ed array map */
    size_t slots_len;           /* its length */
    uint32_t free[SW_KR_SLOTS]; /* a stack of free slots */
    unsigned nfree;
};

static int
quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    /* libbpf's own chatter is not ours to log: the failure is reported
     * once, with the reason, by the caller */
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

struct sw_krelay *
sw_krelay_open(char *why, size_t cap)
{
    libbpf_set_print(quiet_print);
    struct sw_krelay *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    k->skel = sw_krelay_bpf__open();
    if (k->skel == NULL) {
        snprintf(why, cap, "opening the BPF object: %s", strerror(errno));
        free(k);
        return NULL;
    }
    const struct sw_metrics_buckets *b =
        &sw_metrics_buckets[SW_METRICS_H_WS_MESSAGE];
    for (unsigned i = 0; i < b->n && i < SW_KR_HIST_BOUNDS; i++) {
        k->skel->rodata->msg_le[i] = b->le[i];
    }
    k->skel->rodata->msg_nle = SW_MIN(b->n, (unsigned)SW_KR_HIST_BOUNDS);
    if (sw_krelay_bpf__load(k->skel) != 0) {
        snprintf(why, cap, "loading the BPF programs: %s", strerror(errno));
        sw_krelay_bpf__destroy(k->skel);
        free(k);
        return NULL;
    }
    k->sockets_fd = bpf_map__fd(k->skel->maps.sockets);
    k->cookies_fd = bpf_map__fd(k->skel->maps.cookies);
    int verdict = bpf_program__fd(k->skel->progs.sw_kr_verdict);
    if (bpf_prog_attach(verdict, k->sockets_fd, BPF_SK_SKB_VERDICT, 0) != 0) {
        snprintf(why, cap, "attaching to the socket map: %s", strerror(errno));
        sw_krelay_bpf__destroy(k->skel);
        free(k);
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    k->slots_len =
        (sizeof(struct sw_kr_slot) * SW_KR_SLOTS + page - 1) & ~(page - 1);
    void *m = mmap(NULL, k->slots_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                   bpf_map__fd(k->skel->maps.slots), 0);
    if (m == MAP_FAILED) {
        snprintf(why, cap, "mapping the slots: %s", strerror(errno));
        sw_krelay_bpf__destroy(k->skel);
        free(k);
        return NULL;
    }
    k->slots = m;
    for (unsigned i = 0; i < SW_KR_SLOTS; i++) {
        k->free[i] = SW_KR_SLOTS - 1 - i; /* slot 0 on top */
    }
    k->nfree = SW_KR_SLOTS;
    return k;
}

void
sw_krelay_close(struct sw_krelay *k)
{
    if (k == NULL) {
        return;
    }
    munmap(k->slots, k->slots_len);
    sw_krelay_bpf__destroy(k->skel); /* the map goes, and its sockets */
    free(k);
}

/* The socket's cookie: the key the program finds its slot by. */
static bool
cookie_of(int fd, uint64_t *cookie)
{
    socklen_t len = sizeof(*cookie);
    return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) == 0;
}

static int
add_socket(struct sw_krelay *k, int fd, uint32_t index)
{
    uint64_t cookie;
    if (!cookie_of(fd, &cookie)) {
        return -1;
    }
    /* the cookie first: the programs find the slot from it as soon as
     * the socket is in the map */
    if (bpf_map_update_elem(k->cookies_fd, &cookie, &index, BPF_ANY) != 0) {
        return -1;
    }
    uint64_t v = (uint64_t)fd;
    if (bpf_map_update_elem(k->sockets_fd, &index, &v, BPF_ANY) != 0) {
        int e = errno;
        bpf_map_delete_elem(k->cookies_fd, &cookie);
        errno = e;
        return -1;
    }
    return 0;
}

static void
remove_socket(struct sw_krelay *k, int fd, uint32_t index)
{
    bpf_map_delete_elem(k->sockets_fd, &index);
    uint64_t cookie;
    if (cookie_of(fd, &cookie)) {
        bpf_map_delete_elem(k->cookies_fd, &cookie);
    }
}

int
sw_krelay_join(struct sw_krelay *k, int client_fd, int upstream_fd,
               const struct sw_krelay_limits *lim)
{
    if (k->nfree == 0) {
        errno = ENOSPC;
        return -1;
    }
    uint32_t slot = k->free[--k->nfree];
    struct sw_kr_slot *s = &k->slots[slot];
    memset(s, 0, sizeof(*s)); /* both directions SW_KR_USER */
    s->max_frame = lim->max_frame;
    s->max_message = lim->max_message;
    s->rsv_allowed = lim->rsv_allowed;
    if (add_socket(k, client_fd, 2 * slot) != 0) {
        k->nfree++;
        return -1;
    }
    if (add_socket(k, upstream_fd, 2 * slot + 1) != 0) {
        int e = errno;
        remove_socket(k, client_fd, 2 * slot);
        k->nfree++;
        errno = e;
        return -1;
    }
    /* Bytes that reached a socket between the caller's last look and its
     * insertion would sit in its receive queue until the next segment,
     * and a read could take part of one there, outside the verdict, which
     * would then see the whole skb again (tcp_read_skb reads whole skbs).
     * Setting SO_RCVLOWAT (to its default) makes TCP call data_ready,
     * now the verdict's, at once. */
    int one = 1;
    setsockopt(client_fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    setsockopt(upstream_fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    return (int)slot;
}

struct sw_kr_slot *
sw_krelay_slot(struct sw_krelay *k, int slot)
{
    return &k->slots[slot];
}

void
sw_krelay_leave(struct sw_krelay *k, int slot, int client_fd, int upstream_fd)
{
    remove_socket(k, client_fd, 2 * (uint32_t)slot);
    remove_socket(k, upstream_fd, 2 * (uint32_t)slot + 1);
    k->free[k->nfree++] = (uint32_t)slot;
}

struct sw_krelay *
sw_krelay_get(struct sw_krelay_lazy *l)
{
    if (!l->tried) {
        l->tried = true;
        char why[160];
        l->k = sw_krelay_open(why, sizeof(why));
        if (l->k == NULL) {
            sw_log_warn("worker %u: kernel relay unavailable (%s): "
                        "WebSockets use the user-space relay",
                        l->worker, why);
        } else {
            sw_log_warn("worker %u: kernel relay loaded; it is experimental, "
                        "with known defects (docs/websocket.md, \"The "
                        "kernel relay\")",
                        l->worker);
        }
    }
    return l->k;
}
