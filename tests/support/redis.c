/*
 * redis.c - redis-server as a child process, looked into with hiredis's
 * blocking client (see redis.h).
 *
 * Owns the server's process (proc.h, stopped by pid) and its folder; a
 * call owns its connection for the call's length only.
 */
#include "redis.h"
#include "net.h"
#include "support.h"

#include <shockwave/core.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define START_MS 10000 /* redis-server up and answering */
#define CALL_MS 5000   /* one command's answer */

/* One command (argv[i] of lens[i] bytes; lens NULL: NUL-terminated) on
 * a fresh hiredis connection with a deadline; its reply (free it with
 * freeReplyObject), NULL on a connection or protocol failure. */
/* A blocking connection to the server, with CALL_MS for every step. */
static redisContext *
connect_to(const struct sw_test_redis *r)
{
    struct timeval tv = {CALL_MS / 1000, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *
call(const struct sw_test_redis *r, int argc, const char **argv,
     const size_t *lens)
{
    redisContext *c = connect_to(r);
    if (c == NULL) {
        return NULL;
    }
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    redisFree(c);
    return rep;
}

/* PING answered PONG. */
static bool
pong(const struct sw_test_redis *r)
{
    const char *argv[] = {"PING"};
    redisReply *rep = call(r, 1, argv, NULL);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS &&
              strcmp(rep->str, "PONG") == 0;
    freeReplyObject(rep);
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
    redisReply *rep = call(r, 2, argv, NULL);
    char *v = rep != NULL && rep->type == REDIS_REPLY_STRING
                  ? strndup(rep->str, rep->len)
                  : NULL;
    freeReplyObject(rep);
    return v;
}

long long
sw_test_redis_numsub(const struct sw_test_redis *r, const char *channel)
{
    const char *argv[] = {"PUBSUB", "NUMSUB", channel};
    redisReply *rep = call(r, 3, argv, NULL);
    long long v = -1;
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        v = rep->element[1]->integer;
    }
    freeReplyObject(rep);
    return v;
}

long long
sw_test_redis_publish(const struct sw_test_redis *r, const char *channel,
                      const void *data, size_t len)
{
    const char *argv[] = {"PUBLISH", channel, data};
    size_t lens[] = {7, strlen(channel), len};
    redisReply *rep = call(r, 3, argv, lens);
    long long v =
        rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    freeReplyObject(rep);
    return v;
}

redisContext *
sw_test_redis_subscribe(const struct sw_test_redis *r, const char *channel)
{
    redisContext *c = connect_to(r);
    if (c == NULL) {
        return NULL;
    }
    /* the confirmation: ["subscribe", channel, count] */
    redisReply *rep = redisCommand(c, "SUBSCRIBE %s", channel);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
              rep->elements == 3 &&
              strcmp(rep->element[0]->str, "subscribe") == 0;
    freeReplyObject(rep);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

char *
sw_test_redis_next(redisContext *c, size_t *len, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisSetTimeout(c, tv);
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK) {
        return NULL;
    }
    redisReply *rep = r;
    char *v = NULL;
    /* a message: ["message", channel, payload] */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "message") == 0 &&
        rep->element[2]->type == REDIS_REPLY_STRING) {
        *len = rep->element[2]->len;
        v = malloc(*len + 1);
        if (v != NULL) {
            memcpy(v, rep->element[2]->str, *len);
            v[*len] = '\0';
        }
    }
    freeReplyObject(rep);
    return v;
}
