/*
 * bucket.c - token buckets in integers.
 *
 * A rate is `count` tokens per `period_ms`; a bucket saves at most `burst`
 * of them. The level is kept in units of 1/scale token (milli-tokens for
 * connections, requests and messages; bytes for the bytes bucket), and
 * the refill keeps the remainder of its division (carry), so no time is
 * lost however often it runs:
 *
 *   units added over e ms = (e * count * scale + carry) / period_ms
 *
 * Overflow: e is split into whole periods (each adds count * scale, and
 * only as many as fit the room left) and a rest below period_ms, so the
 * largest product is period_ms * count * scale < 2^32 * 2^31 (bounds in
 * ratelimit.h, checked by conf.c).
 *
 * Owns nothing; pure functions of their arguments.
 */
#include "ratelimit.h"

static void
refill(struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms)
{
    uint64_t cap = r->burst * r->scale;
    if (!b->started) {
        b->started = true;
        b->level = cap;
        b->carry = 0;
        b->last_ms = now_ms;
        return;
    }
    if (now_ms > b->last_ms && b->level < cap) {
        uint64_t e = now_ms - b->last_ms;
        uint64_t per = r->count * r->scale; /* units per whole period */
        uint64_t room = cap - b->level;
        uint64_t whole = e / r->period_ms;
        if (whole > room / per) {
            b->level = cap;
        } else {
            b->level += whole * per;
            uint64_t num = (e % r->period_ms) * per + b->carry;
            b->level += num / r->period_ms;
            b->carry = num % r->period_ms;
        }
    }
    if (now_ms > b->last_ms) {
        b->last_ms = now_ms;
    }
    /* full (or fuller than a reload's smaller burst allows): nothing is
     * owed to the next refill */
    if (b->level >= cap) {
        b->level = cap;
        b->carry = 0;
    }
}

bool
rl_bucket_take(struct rl_bucket *b, const struct rl_rate *r, uint64_t now_ms,
               uint64_t tokens, uint64_t *wait_ms)
{
    if (tokens > r->burst) {
        if (wait_ms != NULL) {
            *wait_ms = UINT64_MAX;
        }
        return false;
    }
    refill(b, r, now_ms);
    uint64_t need = tokens * r->scale;
    if (b->level >= need) {
        b->level -= need;
        return true;
    }
    if (wait_ms != NULL) {
        /* the ms after which (need - level) * period_ms numerators will
         * have accumulated, counting the carry already there */
        uint64_t per = r->count * r->scale;
        uint64_t num = (need - b->level) * r->period_ms - b->carry;
        *wait_ms = (num + per - 1) / per;
    }
    return false;
}

int
rl_rate_parse(const char *s, bool bytes, uint64_t *count, uint64_t *period_ms,
              const char **why)
{
    const char *slash = strchr(s, '/');
    char num[32];
    if (slash == NULL || slash == s || (size_t)(slash - s) >= sizeof(num)) {
        *why = bytes ? "expected SIZE/s, SIZE/m or SIZE/h"
                     : "expected N/s, N/m or N/h";
        return SW_EINVAL;
    }
    memcpy(num, s, (size_t)(slash - s));
    num[slash - s] = '\0';
    const char *unit = slash + 1;
    if (strcmp(unit, "s") == 0) {
        *period_ms = 1000;
    } else if (strcmp(unit, "m") == 0) {
        *period_ms = 60000;
    } else if (strcmp(unit, "h") == 0) {
        *period_ms = RL_PERIOD_MAX;
    } else {
        *why = "the period must be s, m or h";
        return SW_EINVAL;
    }
    uint64_t n = 0;
    if (bytes) {
        if (sw_plugin_parse_size(num, &n) != SW_OK) {
            *why = "invalid size";
            return SW_EINVAL;
        }
        if (n < 1 || n > RL_BYTES_MAX) {
            *why = "the size must be 1 to 2g";
            return SW_EINVAL;
        }
    } else {
        for (const char *p = num; *p != '\0'; p++) {
            if (*p < '0' || *p > '9' || n > RL_COUNT_MAX) {
                *why = "the count must be a number from 1 to 1000000";
                return SW_EINVAL;
            }
            n = n * 10 + (uint64_t)(*p - '0');
        }
        if (n < 1 || n > RL_COUNT_MAX) {
            *why = "the count must be a number from 1 to 1000000";
            return SW_EINVAL;
        }
    }
    *count = n;
    return SW_OK;
}

void
rl_rate_divide(struct rl_rate *r, unsigned workers)
{
    if (workers <= 1) {
        return;
    }
    r->period_ms *= workers;
    r->burst = (r->burst + workers - 1) / workers;
}
