/*
 * metrics.c - counter names, summing and the text exposition.
 *
 * No state of its own; see metrics.h for the threading rules.
 */
#include <shockwave/metrics.h>

static const char *names[] = {
#define SW_METRIC_NAME(id, name) name,
    SW_METRICS(SW_METRIC_NAME)
#undef SW_METRIC_NAME
};

const char *
sw_metrics_name(enum sw_metric id)
{
    return (unsigned)id < SW_METRIC_COUNT ? names[id] : "unknown";
}

void
sw_metrics_sum(struct sw_metrics *dst, const struct sw_metrics *src)
{
    for (size_t i = 0; i < SW_METRIC_COUNT; i++) {
        dst->counters[i] +=
            __atomic_load_n(&src->counters[i], __ATOMIC_RELAXED);
    }
    for (size_t i = 0; i < SW_METRICS_STATUS_MAX; i++) {
        dst->status[i] += __atomic_load_n(&src->status[i], __ATOMIC_RELAXED);
    }
}

static void
put(char *out, size_t cap, size_t *n, const char *name, uint64_t v)
{
    if (*n + 1 >= cap) {
        return;
    }
    int w =
        snprintf(out + *n, cap - *n, "%s %llu\n", name, (unsigned long long)v);
    if (w > 0) {
        *n = SW_MIN(*n + (size_t)w, cap - 1);
    }
}

size_t
sw_metrics_format(const struct sw_metrics *m, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0) {
        return 0;
    }
    out[0] = '\0';
    for (size_t i = 0; i < SW_METRIC_COUNT; i++) {
        put(out, cap, &n, names[i], m->counters[i]);
    }
    for (unsigned s = 100; s < SW_METRICS_STATUS_MAX; s++) {
        if (m->status[s] != 0) {
            char name[40];
            snprintf(name, sizeof(name), "http_status_%u_total", s);
            put(out, cap, &n, name, m->status[s]);
        }
    }
    return n;
}
