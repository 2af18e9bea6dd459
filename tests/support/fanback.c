/*
 * fanback.c - the WebSocket backend of the fan-out suites: a program of its
 * own (tests/meson.build builds it, SW_FANBACK names it), started by a test
 * through proc.h and stopped by its pid.
 *
 *   fanback [--protocol NAME]
 *
 * It binds two loopback ports the kernel picks and prints
 *   "listening on 127.0.0.1:P"   WebSocket upgrades (the gateway's upstream)
 *   "control on 127.0.0.1:Q"     one command per line, one answer line each
 *
 *   test --commands--> control port --> fanback --frames--> gateway --> clients
 *   test <--answers--- control port <-- fanback <--frames-- gateway <-- clients
 *
 * Every upgrade is answered with a 101 (the NAME subprotocol when the
 * request offered it) unless "hold on" is in force. Data frames from the
 * gateway are joined into messages and recorded (frames per message, size,
 * whether every byte equals the first, the first 100 bytes); pings are
 * answered, a close is answered and the connection ends. A data frame that
 * starts a message while another is unfinished (two messages interleaved),
 * or a continuation without a message, counts as an error.
 *
 * Commands (answers in quotes):
 *   stats                "accepted A upgraded U live L held H msgs M
 *                         pings P pongs Q closes C lastclose K errors E
 *                         seq S"
 *   send N SIZE [frag]   N rounds; each round sends every open connection
 *                        the text message "SEQ TARGET xxx..." (SIZE bytes
 *                        at least; SEQ counts rounds from 1 over the whole
 *                        run; TARGET is that connection's request target),
 *                        in three frames with `frag`: "sent FIRST LAST"
 *   ping TEXT            a ping to every open connection: "ok N"
 *   close CODE           a close frame to every open connection: "ok N"
 *   fin | reset          end every connection with a FIN or a reset: "ok N"
 *   down | up            reset everything and stop listening / listen again
 *                        on the same port: "ok"
 *   hold on | hold off   leave new upgrades unanswered / answer them: "ok"
 *   targets              "targets T1 T2 ..." (every upgrade, in order)
 *   head I               the request head of upgrade I (1-based), CRLFs
 *                        shown as " | "
 *   msg I                record I (1-based): "conn C op O len L frames F
 *                        uniform U text FIRST-100-BYTES"
 *
 * Single-threaded: one poll() loop over the listeners, the control
 * connections and the WebSocket connections. Writes wait (poll, 10 s at
 * most) until the kernel took every byte, so a command's answer comes once
 * its frames were handed to the sockets.
 */
#include <shockwave/core.h>
#include <shockwave/ws.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 128     /* WebSocket connections at once */
#define MAX_CTL 4         /* control connections at once */
#define MAX_UPGRADES 256  /* request heads kept */
#define MAX_RECS 4096     /* client messages recorded */
#define WRITE_MS 10000    /* a write's deadline */
#define TEXT_KEEP 100     /* bytes of a message kept in its record */
#define READ_PIECE 65536  /* bytes per read */
#define LINE_MAX_LEN 1024 /* a control line */

enum bstate {
    B_FREE = 0, /* slot unused */
    B_HEAD,     /* reading the upgrade request */
    B_HELD,     /* request read, answer held back ("hold on") */
    B_OPEN,     /* 101 sent: frames both ways */
};

/* One WebSocket connection from the gateway. */
struct bconn {
    enum bstate state; /* see enum bstate */
    int fd;            /* accepted socket */
    int upgrade;       /* its number among upgrades (1-based), 0 before */
    uint8_t *in;       /* owned: bytes read, not yet handled */
    size_t len;        /* bytes in in */
    size_t cap;        /* capacity of in */
    char target[512];  /* request target */
    char accept[SW_WS_ACCEPT_LEN + 1]; /* for the 101 */
    bool proto;                        /* the request offered --protocol */
    bool in_msg;                       /* a data message is unfinished */
    uint8_t msg_op;                    /* its opcode */
    unsigned msg_frames;               /* its frames so far */
    uint8_t *msg;                      /* owned: its payload so far */
    size_t msg_len;                    /* bytes in msg */
    size_t msg_cap;                    /* capacity of msg */
    bool close_sent;                   /* we sent a close frame */
};

/* One client message as the backend received it. */
struct rec {
    int upgrade;              /* connection it came on */
    uint8_t op;               /* TEXT or BINARY */
    size_t len;               /* bytes */
    unsigned frames;          /* frames it came in */
    bool uniform;             /* every byte equals the first */
    char text[TEXT_KEEP + 1]; /* first bytes, non-printables as '.' */
};

/* What a poll slot watches. */
enum wkind { W_CTL_LISTEN, W_LISTEN, W_CTL, W_CONN };
struct who {
    enum wkind kind; /* which table */
    size_t idx;      /* slot in ctls or conns */
};

/* One control connection. */
struct ctl {
    int fd;                  /* -1 when unused */
    char line[LINE_MAX_LEN]; /* bytes of the line being read */
    size_t len;              /* bytes in line */
};

static struct bconn conns[MAX_CONNS];
static struct ctl ctls[MAX_CTL];
static struct rec recs[MAX_RECS];
static char *heads[MAX_UPGRADES];   /* owned: request heads, by upgrade */
static char *targets[MAX_UPGRADES]; /* owned: request targets */
static int lfd = -1;                /* WebSocket listener, -1 when down */
static int port;                    /* its port */
static const char *protocol;        /* borrowed (argv): --protocol */
static bool hold;                   /* "hold on" in force */
static int accepted, upgraded, nrecs, pings, pongs, closes, errors;
static int lastclose;
static unsigned long long seq;

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "fanback: out of memory\n");
        exit(2);
    }
    return q;
}

static int
listen_on(int prt)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)prt),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.sin_port);
}

/* Write everything or give up after WRITE_MS without progress. */
static bool
wall(int fd, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return false;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, WRITE_MS) == 0) {
            fprintf(stderr, "fanback: write stalled for %d ms\n", WRITE_MS);
            return false;
        }
    }
    return true;
}

static void
conn_end(struct bconn *c, bool reset)
{
    if (c->state == B_FREE) {
        return;
    }
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    free(c->in);
    free(c->msg);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* One unmasked frame (server to client). */
static bool
frame(struct bconn *c, bool fin, uint8_t op, const void *p, size_t n)
{
    uint8_t hdr[SW_WS_MAX_HEADER];
    size_t hl = sw_ws_frame_encode(hdr, fin, op, NULL, n);
    if (!wall(c->fd, hdr, hl) || (n > 0 && !wall(c->fd, p, n))) {
        conn_end(c, true);
        return false;
    }
    return true;
}

static void
answer(struct bconn *c)
{
    char resp[512];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     c->accept, c->proto ? "Sec-WebSocket-Protocol: " : "",
                     c->proto ? protocol : "", c->proto ? "\r\n" : "");
    if (!wall(c->fd, resp, (size_t)n)) {
        conn_end(c, true);
        return;
    }
    c->state = B_OPEN;
}

/* The value of header `name` in head (CRLF lines), or NULL. */
static const char *
header(const char *head, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l != NULL;
         l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':') {
            const char *v = l + 3 + nl;
            v += strspn(v, " \t");
            *len = strcspn(v, "\r");
            while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t')) {
                (*len)--;
            }
            return v;
        }
    }
    return NULL;
}

/* The request head is complete in c->in[0..hl). */
static void
on_head(struct bconn *c, size_t hl)
{
    char *h = strndup((const char *)c->in, hl);
    if (h == NULL || upgraded >= MAX_UPGRADES) {
        free(h);
        conn_end(c, true);
        return;
    }
    const char *sp = strchr(h, ' ');
    size_t tl = sp != NULL ? strcspn(sp + 1, " \r") : 0;
    if (sp != NULL && tl < sizeof(c->target)) {
        memcpy(c->target, sp + 1, tl);
        c->target[tl] = '\0';
    }
    size_t kl = 0, pl = 0;
    const char *key = header(h, "Sec-WebSocket-Key", &kl);
    if (key != NULL) {
        sw_ws_accept_compute((struct sw_str){key, kl}, c->accept);
    }
    const char *offer = header(h, "Sec-WebSocket-Protocol", &pl);
    if (protocol != NULL && offer != NULL) {
        char *o = strndup(offer, pl);
        for (char *t = strtok(o, ", \t"); t != NULL; t = strtok(NULL, ", \t")) {
            c->proto = c->proto || strcmp(t, protocol) == 0;
        }
        free(o);
    }
    heads[upgraded] = h;
    targets[upgraded] = strdup(c->target);
    c->upgrade = ++upgraded;
    memmove(c->in, c->in + hl, c->len - hl);
    c->len -= hl;
    c->state = B_HELD;
    if (!hold) {
        answer(c);
    }
}

static void
record(struct bconn *c)
{
    if (nrecs >= MAX_RECS) {
        return;
    }
    struct rec *r = &recs[nrecs++];
    r->upgrade = c->upgrade;
    r->op = c->msg_op;
    r->len = c->msg_len;
    r->frames = c->msg_frames;
    r->uniform = true;
    for (size_t i = 1; i < c->msg_len && r->uniform; i++) {
        r->uniform = c->msg[i] == c->msg[0];
    }
    size_t k = SW_MIN(c->msg_len, (size_t)TEXT_KEEP);
    for (size_t i = 0; i < k; i++) {
        uint8_t ch = c->msg[i];
        r->text[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
    }
    r->text[k] = '\0';
}

/* A data frame's payload (unmasked). */
static void
on_data(struct bconn *c, const struct sw_ws_frame *fr, const uint8_t *p)
{
    if (fr->opcode != SW_WS_OP_CONT) {
        if (c->in_msg) {
            fprintf(stderr,
                    "fanback: upgrade %d: a message started inside "
                    "another (interleaved)\n",
                    c->upgrade);
            errors++;
        }
        c->in_msg = true;
        c->msg_op = fr->opcode;
        c->msg_frames = 0;
        c->msg_len = 0;
    } else if (!c->in_msg) {
        fprintf(stderr,
                "fanback: upgrade %d: continuation outside a "
                "message\n",
                c->upgrade);
        errors++;
        return;
    }
    size_t n = (size_t)fr->payload_len;
    if (c->msg_len + n > c->msg_cap) {
        c->msg_cap = (c->msg_len + n) * 2;
        c->msg = xrealloc(c->msg, c->msg_cap);
    }
    memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
    c->msg_frames++;
    if (fr->fin) {
        c->in_msg = false;
        record(c);
    }
}

/* Handle the whole frames in c->in. */
static void
on_frames(struct bconn *c)
{
    while (c->state == B_OPEN && c->len >= 2) {
        struct sw_ws_decoder dec;
        struct sw_ws_frame fr;
        sw_ws_decoder_init(&dec, SW_WS_PEER_CLIENT, 0, 0);
        ssize_t hl = sw_ws_frame_decode(&dec, c->in, c->len, &fr);
        if (hl == SW_AGAIN) {
            return;
        }
        if (hl < 0) {
            fprintf(stderr,
                    "fanback: upgrade %d: bad frame from the "
                    "gateway: %s\n",
                    c->upgrade, dec.why);
            errors++;
            conn_end(c, true);
            return;
        }
        if (c->len - (size_t)hl < fr.payload_len) {
            return;
        }
        uint8_t *pl = c->in + hl;
        size_t n = (size_t)fr.payload_len;
        sw_ws_mask(pl, n, fr.mask, 0);
        if (fr.opcode == SW_WS_OP_PING) {
            pings++;
            if (!frame(c, true, SW_WS_OP_PONG, pl, n)) {
                return;
            }
        } else if (fr.opcode == SW_WS_OP_PONG) {
            pongs++;
        } else if (fr.opcode == SW_WS_OP_CLOSE) {
            closes++;
            lastclose = n >= 2 ? (pl[0] << 8) | pl[1] : 1005;
            if (!c->close_sent) {
                frame(c, true, SW_WS_OP_CLOSE, pl, n >= 2 ? 2 : 0);
            }
            conn_end(c, false);
            return;
        } else {
            on_data(c, &fr, pl);
        }
        size_t used = (size_t)hl + n;
        memmove(c->in, c->in + used, c->len - used);
        c->len -= used;
    }
}

static void
on_readable(struct bconn *c)
{
    if (c->cap - c->len < READ_PIECE) {
        c->cap = c->len + 2 * READ_PIECE;
        c->in = xrealloc(c->in, c->cap);
    }
    ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        conn_end(c, false);
        return;
    }
    c->len += (size_t)n;
    if (c->state == B_HEAD) {
        uint8_t *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (end != NULL) {
            on_head(c, (size_t)(end - c->in) + 4);
        } else if (c->len > 65536) {
            conn_end(c, true);
        }
    }
    if (c->state == B_OPEN) {
        on_frames(c);
    }
}

static void
on_accept(void)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        return;
    }
    for (size_t i = 0; i < MAX_CONNS; i++) {
        if (conns[i].state == B_FREE) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            conns[i].state = B_HEAD;
            conns[i].fd = fd;
            accepted++;
            return;
        }
    }
    close(fd);
}

static int
count(enum bstate st)
{
    int n = 0;
    for (size_t i = 0; i < MAX_CONNS; i++) {
        n += conns[i].state == st;
    }
    return n;
}

/* Every connection in state st ends (reset or FIN). */
static int
end_all(bool reset, bool any_state)
{
    int n = 0;
    for (size_t i = 0; i < MAX_CONNS; i++) {
        if (conns[i].state == B_OPEN ||
            (any_state && conns[i].state != B_FREE)) {
            conn_end(&conns[i], reset);
            n++;
        }
    }
    return n;
}

/* One round of "send": every open connection gets message `s`. */
static void
send_round(unsigned long long s, size_t size, bool frag)
{
    static uint8_t *buf;
    static size_t cap;
    for (size_t i = 0; i < MAX_CONNS; i++) {
        struct bconn *c = &conns[i];
        if (c->state != B_OPEN) {
            continue;
        }
        size_t need = SW_MAX(size, strlen(c->target) + 32);
        if (need > cap) {
            cap = need * 2;
            buf = xrealloc(buf, cap);
        }
        int h = snprintf((char *)buf, cap, "%llu %s ", s, c->target);
        size_t n = SW_MAX(size, (size_t)h);
        memset(buf + h, 'x', n - (size_t)h);
        if (!frag) {
            frame(c, true, SW_WS_OP_TEXT, buf, n);
            continue;
        }
        size_t a = n / 3, b = n / 3;
        if (frame(c, false, SW_WS_OP_TEXT, buf, a) &&
            frame(c, false, SW_WS_OP_CONT, buf + a, b)) {
            frame(c, true, SW_WS_OP_CONT, buf + a + b, n - a - b);
        }
    }
}

/* Send every open connection a frame with a fixed payload. */
static int
send_all(uint8_t op, const void *p, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < MAX_CONNS; i++) {
        if (conns[i].state == B_OPEN) {
            k += frame(&conns[i], true, op, p, n);
            if (op == SW_WS_OP_CLOSE) {
                conns[i].close_sent = true;
            }
        }
    }
    return k;
}

static void
reply(struct ctl *t, const char *fmt, ...)
{
    char out[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof(out) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    n = SW_MIN(n, (int)sizeof(out) - 2);
    out[n++] = '\n';
    if (!wall(t->fd, out, (size_t)n)) {
        close(t->fd);
        t->fd = -1;
    }
}

static void
cmd_head(struct ctl *t, int i)
{
    if (i < 1 || i > upgraded) {
        reply(t, "error no upgrade %d", i);
        return;
    }
    char out[4096];
    size_t o = 0;
    for (const char *h = heads[i - 1]; *h != '\0' && o + 4 < sizeof(out); h++) {
        if (h[0] == '\r' && h[1] == '\n') {
            memcpy(out + o, " | ", 3);
            o += 3;
            h++;
        } else {
            out[o++] = *h;
        }
    }
    out[o] = '\0';
    reply(t, "%s", out);
}

static void
cmd_targets(struct ctl *t)
{
    char out[8000];
    size_t o = (size_t)snprintf(out, sizeof(out), "targets");
    for (int i = 0; i < upgraded && o < sizeof(out); i++) {
        o += (size_t)snprintf(out + o, sizeof(out) - o, " %s",
                              targets[i] != NULL ? targets[i] : "?");
    }
    reply(t, "%s", out);
}

static void
command(struct ctl *t, char *line)
{
    unsigned long long n = 0, size = 0;
    char word[32] = "";
    int i = 0;
    if (strcmp(line, "stats") == 0) {
        reply(t,
              "accepted %d upgraded %d live %d held %d msgs %d pings %d "
              "pongs %d closes %d lastclose %d errors %d seq %llu",
              accepted, upgraded, count(B_OPEN), count(B_HELD), nrecs, pings,
              pongs, closes, lastclose, errors, seq);
    } else if (sscanf(line, "send %llu %llu %31s", &n, &size, word) >= 2) {
        unsigned long long first = seq + 1;
        for (unsigned long long k = 0; k < n; k++) {
            send_round(++seq, (size_t)size, strcmp(word, "frag") == 0);
        }
        reply(t, "sent %llu %llu", first, seq);
    } else if (strncmp(line, "ping ", 5) == 0) {
        size_t pl = SW_MIN(strlen(line + 5), (size_t)SW_WS_MAX_CONTROL);
        reply(t, "ok %d", send_all(SW_WS_OP_PING, line + 5, pl));
    } else if (sscanf(line, "close %d", &i) == 1) {
        uint8_t p[2] = {(uint8_t)(i >> 8), (uint8_t)i};
        reply(t, "ok %d", send_all(SW_WS_OP_CLOSE, p, 2));
    } else if (strcmp(line, "fin") == 0 || strcmp(line, "reset") == 0) {
        reply(t, "ok %d", end_all(line[0] == 'r', false));
    } else if (strcmp(line, "down") == 0) {
        end_all(true, true);
        if (lfd >= 0) {
            close(lfd);
            lfd = -1;
        }
        reply(t, "ok");
    } else if (strcmp(line, "up") == 0) {
        if (lfd < 0) {
            lfd = listen_on(port);
        }
        reply(t, lfd >= 0 ? "ok" : "error cannot listen again");
    } else if (strcmp(line, "hold on") == 0 || strcmp(line, "hold off") == 0) {
        hold = line[6] == 'n';
        for (size_t k = 0; k < MAX_CONNS && !hold; k++) {
            if (conns[k].state == B_HELD) {
                answer(&conns[k]);
            }
        }
        reply(t, "ok");
    } else if (strcmp(line, "targets") == 0) {
        cmd_targets(t);
    } else if (sscanf(line, "head %d", &i) == 1) {
        cmd_head(t, i);
    } else if (sscanf(line, "msg %d", &i) == 1 && i >= 1 && i <= nrecs) {
        const struct rec *r = &recs[i - 1];
        reply(t, "conn %d op %u len %zu frames %u uniform %d text %s",
              r->upgrade, r->op, r->len, r->frames, r->uniform, r->text);
    } else {
        reply(t, "error unknown command: %s", line);
    }
}

static void
on_ctl(struct ctl *t)
{
    ssize_t n = recv(t->fd, t->line + t->len, sizeof(t->line) - 1 - t->len, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        close(t->fd);
        t->fd = -1;
        return;
    }
    t->len += (size_t)n;
    char *nl;
    while (t->fd >= 0 && (nl = memchr(t->line, '\n', t->len)) != NULL) {
        *nl = '\0';
        if (nl > t->line && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        command(t, t->line);
        size_t used = (size_t)(nl - t->line) + 1;
        memmove(t->line, nl + 1, t->len - used);
        t->len -= used;
    }
    if (t->fd >= 0 && t->len == sizeof(t->line) - 1) {
        t->len = 0; /* an overlong line is dropped */
    }
}

static void
on_ctl_accept(int cfd)
{
    int fd = accept4(cfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        return;
    }
    for (size_t i = 0; i < MAX_CTL; i++) {
        if (ctls[i].fd < 0) {
            ctls[i].fd = fd;
            ctls[i].len = 0;
            return;
        }
    }
    close(fd);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--protocol") == 0 && i + 1 < argc) {
            protocol = argv[++i];
        } else {
            fprintf(stderr, "usage: fanback [--protocol NAME]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < MAX_CTL; i++) {
        ctls[i].fd = -1;
    }
    for (size_t i = 0; i < MAX_CONNS; i++) {
        conns[i].fd = -1;
    }
    lfd = listen_on(0);
    int cfd = listen_on(0);
    if (lfd < 0 || cfd < 0) {
        fprintf(stderr, "fanback: cannot listen: %s\n", strerror(errno));
        return 1;
    }
    port = port_of(lfd);
    printf("listening on 127.0.0.1:%d\n", port);
    printf("control on 127.0.0.1:%d\n", port_of(cfd));
    for (;;) {
        struct pollfd pfd[2 + MAX_CTL + MAX_CONNS];
        struct who who[2 + MAX_CTL + MAX_CONNS];
        nfds_t n = 0;
        pfd[n] = (struct pollfd){cfd, POLLIN, 0};
        who[n++] = (struct who){W_CTL_LISTEN, 0};
        if (lfd >= 0) {
            pfd[n] = (struct pollfd){lfd, POLLIN, 0};
            who[n++] = (struct who){W_LISTEN, 0};
        }
        for (size_t i = 0; i < MAX_CTL; i++) {
            if (ctls[i].fd >= 0) {
                pfd[n] = (struct pollfd){ctls[i].fd, POLLIN, 0};
                who[n++] = (struct who){W_CTL, i};
            }
        }
        for (size_t i = 0; i < MAX_CONNS; i++) {
            if (conns[i].state != B_FREE) {
                pfd[n] = (struct pollfd){conns[i].fd, POLLIN, 0};
                who[n++] = (struct who){W_CONN, i};
            }
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }
        /* commands may end connections and listeners while this loop
         * runs: a ready fd is handled only if its slot still holds it */
        for (nfds_t i = 0; i < n; i++) {
            if (pfd[i].revents == 0) {
                continue;
            }
            size_t k = who[i].idx;
            switch (who[i].kind) {
            case W_CTL_LISTEN:
                on_ctl_accept(cfd);
                break;
            case W_LISTEN:
                if (lfd == pfd[i].fd) {
                    on_accept();
                }
                break;
            case W_CTL:
                if (ctls[k].fd == pfd[i].fd) {
                    on_ctl(&ctls[k]);
                }
                break;
            case W_CONN:
                if (conns[k].state != B_FREE && conns[k].fd == pfd[i].fd) {
                    on_readable(&conns[k]);
                }
                break;
            }
        }
    }
}
