/*
 * swload_hist.c - latency histogram with logarithmic buckets.
 *
 * Bucket of a value v (nanoseconds): values below 16 get their own bucket;
 * above, the bucket is (exponent, top 4 bits of the mantissa), 16 buckets
 * per power of two, so a bucket spans at most 1/16 of its value. Fixed
 * memory (SWLOAD_HIST_BUCKETS counters), no allocation, O(1) add. One
 * histogram per thread; merge them at the end.
 */
#include "swload.h"

static unsigned
bucket_of(uint64_t v)
{
    if (v < 16) {
        return (unsigned)v;
    }
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 4 */
    unsigned sub = (unsigned)(v >> (e - 4)) & 15;
    unsigned b = (e - 3) * 16 + sub;
    return b < SWLOAD_HIST_BUCKETS ? b : SWLOAD_HIST_BUCKETS - 1;
}

/* Upper bound of a bucket's values (what a percentile reports). */
static uint64_t
bucket_top(unsigned b)
{
    if (b < 16) {
        return b;
    }
    unsigned e = b / 16 + 3;
    uint64_t sub = b % 16;
    return ((16 + sub + 1) << (e - 4)) - 1;
}

void
swload_hist_init(struct swload_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void
swload_hist_add(struct swload_hist *h, uint64_t ns)
{
    h->counts[bucket_of(ns)]++;
    h->n++;
    h->sum += (double)ns;
    h->min = SW_MIN(h->min, ns);
    h->max = SW_MAX(h->max, ns);
}

void
swload_hist_merge(struct swload_hist *dst, const struct swload_hist *src)
{
    for (unsigned i = 0; i < SWLOAD_HIST_BUCKETS; i++) {
        dst->counts[i] += src->counts[i];
    }
    dst->n += src->n;
    dst->sum += src->sum;
    dst->min = SW_MIN(dst->min, src->min);
    dst->max = SW_MAX(dst->max, src->max);
}

uint64_t
swload_hist_quantile(const struct swload_hist *h, double q)
{
    uint64_t seen = 0;
    uint64_t rank;

    if (h->n == 0) {
        return 0;
    }
    rank = (uint64_t)(q * (double)h->n + 0.5);
    rank = SW_MAX(rank, 1);
    rank = SW_MIN(rank, h->n);
    for (unsigned i = 0; i < SWLOAD_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            return SW_MIN(SW_MAX(bucket_top(i), h->min), h->max);
        }
    }
    return h->max;
}
