/*
 * redis.c - redis-server as a child process and a RESP2 client of a few
 * dozen lines (see redis.h).
 *
 * Owns the server's process (proc.h, stopped by pid) and its folder; a
 * call owns its connection for the call's length only. The reply parser
 * is resumable in the simplest way: it parses from the start of the
 * connection's buffer and says "need more" until a whole reply is there.
 */
#include "redis.h"
#include "support.h"

#include <shockwave/core.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define START_MS 10000 /* redis-server up and answering */
#define CALL_MS 5000   /* one command's answer */
#define MAX_ARGS 16    /* arguments of one command */

/* Parse one reply at p[0..n): 1 with *used its bytes, 0 when more bytes
 * are needed, -1 when it is not RESP2. */
static int
parse(const char *p, size_t n, size_t *used, struct sw_test_redis_reply *out)
{
    memset(out, 0, sizeof(*out));
    const char *nl = memchr(p, '\n', n);
    if (nl == NULL) {
        return 0;
    }
    if (nl == p || nl[-1] != '\r') {
        return -1;
    }
    size_t head = (size_t)(nl - p) + 1;
    char type = p[0];
    if (type == '+' || type == '-') {
        out->type = type;
        out->str = strndup(p + 1, head - 3);
        out->len = head - 3;
        *used = head;
        return 1;
    }
    char *end = NULL;
    long long v = strtoll(p + 1, &end, 10);
    if (end != nl - 1) {
        return -1;
    }
    if (type == ':') {
        out->type = type;
        out->num = v;
        *used = head;
        return 1;
    }
    if (type == '$') {
        if (v < 0) {
            out->type = type;
            out->num = -1;
            *used = head;
            return 1;
        }
        if (n < head + (size_t)v + 2) {
            return 0;
        }
        out->type = type;
        out->num = v;
        out->str = malloc((size_t)v + 1);
        memcpy(out->str, p + head, (size_t)v);
        out->str[v] = '\0';
        out->len = (size_t)v;
        *used = head + (size_t)v + 2;
        return 1;
    }
    if (type != '*') {
        return -1;
    }
    out->type = type;
    out->num = v;
    size_t at = head;
    if (v > 0) {
        out->elem = calloc((size_t)v, sizeof(*out->elem));
        for (long long i = 0; i < v; i++) {
            size_t k = 0;
            int rc = parse(p + at, n - at, &k, &out->elem[i]);
            out->nelem = (size_t)i + (rc == 1 ? 1 : 0);
            if (rc != 1) {
                sw_test_redis_reply_free(out);
                return rc;
            }
            at += k;
        }
    }
    *used = at;
    return 1;
}

void
sw_test_redis_reply_free(struct sw_test_redis_reply *rep)
{
    if (rep == NULL) {
        return;
    }
    for (size_t i = 0; i < rep->nelem; i++) {
        sw_test_redis_reply_free(&rep->elem[i]);
    }
    free(rep->elem);
    free(rep->str);
    memset(rep, 0, sizeof(*rep));
}

/* Read one whole reply from c into *out; consumes its bytes. */
static bool
read_reply(struct sw_test_conn *c, struct sw_test_redis_reply *out,
           int timeout_ms)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        size_t used = 0;
        int rc = c->len > 0 ? parse(c->buf, c->len, &used, out) : 0;
        if (rc == 1) {
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return true;
        }
        if (rc < 0) {
            return false;
        }
        uint64_t now = sw_now_ms();
        if (now >= deadline ||
            sw_test_conn_fill(c, (int)(deadline - now)) <= 0) {
            return false;
        }
    }
}

/* Send a command as a RESP array of bulk strings. */
static bool
send_cmd(struct sw_test_conn *c, int argc, const char *const *argv,
         const size_t *lens)
{
    if (!sw_test_conn_sendf(c, "*%d\r\n", argc)) {
        return false;
    }
    for (int i = 0; i < argc; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(argv[i]);
        if (!sw_test_conn_sendf(c, "$%zu\r\n", n) ||
            !sw_test_conn_send(c, argv[i], n) ||
            !sw_test_conn_send(c, "\r\n", 2)) {
            return false;
        }
    }
    return true;
}

bool
sw_test_redis_call(const struct sw_test_redis *r,
                   struct sw_test_redis_reply *out, int argc,
                   const char *const *argv, const size_t *lens)
{
    memset(out, 0, sizeof(*out));
    struct sw_test_conn c;
    if (argc < 1 || argc > MAX_ARGS || !sw_test_conn_open(&c, r->port)) {
        return false;
    }
    c.timeout_ms = CALL_MS;
    bool ok = send_cmd(&c, argc, argv, lens) && read_reply(&c, out, CALL_MS);
    sw_test_conn_close(&c);
    return ok;
}

/* PING answered PONG. */
static bool
pong(const struct sw_test_redis *r)
{
    const char *argv[] = {"PING"};
    struct sw_test_redis_reply rep;
    bool ok = sw_test_redis_call(r, &rep, 1, argv, NULL) && rep.type == '+' &&
              strcmp(rep.str, "PONG") == 0;
    sw_test_redis_reply_free(&rep);
    return ok;
}

/* Spawn redis-server on r->port and wait for PONG. */
static bool
spawn(struct sw_test_redis *r)
{
    char path[512];
    if (!sw_test_which("redis-server", path, sizeof(path))) {
        fprintf(stderr, "redis: redis-server is not installed "
                        "(scripts/deps.sh)\n");
        return false;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    char *argv[] = {path,        "--port",     port,     "--bind",
                    "127.0.0.1", "--save",     "",       "--appendonly",
                    "no",        "--dir",      r->dir,   "--protected-mode",
                    "no",        "--loglevel", "notice", NULL};
    if (!sw_test_proc_spawn(&r->proc, "redis", argv)) {
        return false;
    }
    uint64_t deadline = sw_now_ms() + START_MS;
    while (sw_now_ms() < deadline) {
        if (pong(r)) {
            return true;
        }
        if (!sw_test_proc_alive(&r->proc)) {
            break;
        }
        sw_test_sleep_ms(20);
    }
    sw_test_proc_dump(&r->proc);
    sw_test_proc_stop(&r->proc, 2000);
    return false;
}

bool
sw_test_redis_start(struct sw_test_redis *r)
{
    memset(r, 0, sizeof(*r));
    for (int attempt = 0; attempt < 3; attempt++) {
        r->port = sw_test_free_port();
        snprintf(r->dir, sizeof(r->dir), "%s/redis.%d", sw_test_tmpdir(),
                 r->port);
        mkdir(r->dir, 0700);
        if (spawn(r)) {
            return true;
        }
    }
    return false;
}

bool
sw_test_redis_restart(struct sw_test_redis *r)
{
    /* The listening socket of the old process is gone with it, but give a
     * slow exit a few tries. */
    for (int attempt = 0; attempt < 5; attempt++) {
        if (spawn(r)) {
            return true;
        }
        sw_test_sleep_ms(200);
    }
    return false;
}

void
sw_test_redis_stop(struct sw_test_redis *r)
{
    if (r->proc.pid > 0) {
        sw_test_proc_stop(&r->proc, 2000);
    }
}

char *
sw_test_redis_get(const struct sw_test_redis *r, const char *key)
{
    const char *argv[] = {"GET", key};
    struct sw_test_redis_reply rep;
    char *v = NULL;
    if (sw_test_redis_call(r, &rep, 2, argv, NULL) && rep.type == '$' &&
        rep.str != NULL) {
        v = rep.str;
        rep.str = NULL;
    }
    sw_test_redis_reply_free(&rep);
    return v;
}

long long
sw_test_redis_numsub(const struct sw_test_redis *r, const char *channel)
{
    const char *argv[] = {"PUBSUB", "NUMSUB", channel};
    struct sw_test_redis_reply rep;
    long long v = -1;
    if (sw_test_redis_call(r, &rep, 3, argv, NULL) && rep.type == '*' &&
        rep.nelem == 2 && rep.elem[1].type == ':') {
        v = rep.elem[1].num;
    }
    sw_test_redis_reply_free(&rep);
    return v;
}

long long
sw_test_redis_publish(const struct sw_test_redis *r, const char *channel,
                      const void *data, size_t len)
{
    const char *argv[] = {"PUBLISH", channel, data};
    size_t lens[] = {7, strlen(channel), len};
    struct sw_test_redis_reply rep;
    long long v = -1;
    if (sw_test_redis_call(r, &rep, 3, argv, lens) && rep.type == ':') {
        v = rep.num;
    }
    sw_test_redis_reply_free(&rep);
    return v;
}

bool
sw_test_redis_subscribe(const struct sw_test_redis *r, struct sw_test_conn *c,
                        const char *channel)
{
    if (!sw_test_conn_open(c, r->port)) {
        return false;
    }
    c->timeout_ms = CALL_MS;
    const char *argv[] = {"SUBSCRIBE", channel};
    struct sw_test_redis_reply rep;
    /* the confirmation: ["subscribe", channel, count] */
    bool ok = send_cmd(c, 2, argv, NULL) && read_reply(c, &rep, CALL_MS) &&
              rep.type == '*' && rep.nelem == 3 && rep.elem[0].type == '$' &&
              strcmp(rep.elem[0].str, "subscribe") == 0;
    sw_test_redis_reply_free(&rep);
    if (!ok) {
        sw_test_conn_close(c);
    }
    return ok;
}

char *
sw_test_redis_next(struct sw_test_conn *c, size_t *len, int timeout_ms)
{
    struct sw_test_redis_reply rep;
    char *v = NULL;
    /* a message: ["message", channel, payload] */
    if (read_reply(c, &rep, timeout_ms) && rep.type == '*' && rep.nelem == 3 &&
        rep.elem[0].type == '$' && strcmp(rep.elem[0].str, "message") == 0 &&
        rep.elem[2].type == '$') {
        v = rep.elem[2].str;
        *len = rep.elem[2].len;
        rep.elem[2].str = NULL;
    }
    sw_test_redis_reply_free(&rep);
    return v;
}
