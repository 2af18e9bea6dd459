/*
 * swload_report.c - what `swload client` and `swload subscribe` print: a
 * human table, then one JSON line (the only line that starts with '{')
 * with the same numbers. Latencies are reported in microseconds from the
 * merged histogram (swload_hist.c). Owns nothing.
 */
#include "swload.h"

#include <inttypes.h>

static void
report_subscribe(uint64_t clients, const struct swload_result *r,
                 bool json_only)
{
    const struct swload_sub_stats *st = &r->sub;
    double dps = r->secs > 0 ? (double)st->deliveries / r->secs : 0;
    double p50 = (double)swload_hist_quantile(&r->hist, 0.50) / 1e3;
    double p99 = (double)swload_hist_quantile(&r->hist, 0.99) / 1e3;
    double maxv = r->hist.n > 0 ? (double)r->hist.max / 1e3 : 0;

    if (!json_only) {
        printf("%-8s %-8s %-10s %-11s %-12s %-9s %-9s %-10s %-8s %-9s\n",
               "clients", "opened", "connect s", "deliveries", "per s",
               "p50 us", "p99 us", "max us", "missed", "reordered");
        printf("%-8" PRIu64 " %-8" PRIu64 " %-10.3f %-11" PRIu64
               " %-12.0f %-9.1f %-9.1f %-10.1f %-8" PRIu64 " %-9" PRIu64 "\n",
               clients, r->opened, r->connect_s, st->deliveries, dps, p50, p99,
               maxv, st->missed, st->reordered);
        if (r->errors > 0 || r->dropped > 0 || st->bad > 0) {
            printf("errors %" PRIu64 ", dropped %" PRIu64
                   ", bad messages %" PRIu64 "\n",
                   r->errors, r->dropped, st->bad);
        }
    }
    printf("{\"scenario\":\"subscribe\",\"clients\":%" PRIu64
           ",\"opened\":%" PRIu64 ",\"connect_s\":%.3f,\"duration_s\":%.3f"
           ",\"deliveries\":%" PRIu64 ",\"deliveries_per_s\":%.1f"
           ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f"
           ",\"missed\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"reordered\":%" PRIu64
           ",\"bad\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"dropped\":%" PRIu64
           "}\n",
           clients, r->opened, r->connect_s, r->secs, st->deliveries, dps, p50,
           p99, maxv, st->missed, st->gaps, st->reordered, st->bad, r->errors,
           r->dropped);
    fflush(stdout);
}

void
swload_report(const char *scenario, uint64_t conns,
              const struct swload_result *r, bool json_only)
{
    double mps = r->secs > 0 ? (double)r->msgs / r->secs : 0;
    double mbps = r->secs > 0 ? (double)r->bytes / r->secs / 1e6 : 0;
    double p50 = (double)swload_hist_quantile(&r->hist, 0.50) / 1e3;
    double p99 = (double)swload_hist_quantile(&r->hist, 0.99) / 1e3;
    double p999 = (double)swload_hist_quantile(&r->hist, 0.999) / 1e3;
    double maxv = r->hist.n > 0 ? (double)r->hist.max / 1e3 : 0;

    if (strcmp(scenario, "subscribe") == 0) {
        report_subscribe(conns, r, json_only);
        return;
    }
    if (!json_only) {
        printf("%-12s %-6s %-8s %-10s %-12s %-10s %-9s %-9s %-9s %-9s\n",
               "scenario", "conns", "size", "messages", "msgs/s", "MB/s",
               "p50 us", "p99 us", "p99.9 us", "max us");
        printf("%-12s %-6" PRIu64 " %-8" PRIu64 " %-10" PRIu64
               " %-12.0f %-10.2f %-9.1f %-9.1f %-9.1f %-9.1f\n",
               scenario, r->opened, r->size, r->msgs, mps, mbps, p50, p99, p999,
               maxv);
        if (strcmp(scenario, "throughput") == 0) {
            printf("sink confirmed %" PRIu64 " of %" PRIu64 " frames\n",
                   r->acked, r->msgs);
        }
        if (r->errors > 0 || r->dropped > 0) {
            printf("errors %" PRIu64 ", dropped %" PRIu64 "\n", r->errors,
                   r->dropped);
        }
    }
    printf("{\"scenario\":\"%s\",\"connections\":%" PRIu64
           ",\"opened\":%" PRIu64 ",\"size\":%" PRIu64
           ",\"duration_s\":%.3f,\"messages\":%" PRIu64
           ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.1f"
           ",\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f"
           ",\"acked\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"dropped\":%" PRIu64
           "}\n",
           scenario, conns, r->opened, r->size, r->secs, r->msgs, mps, mbps,
           p50, p99, p999, maxv, r->acked, r->errors, r->dropped);
    fflush(stdout);
}
