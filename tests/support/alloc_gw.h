/*
 * alloc_gw.h - starting the daemon under the allocation counter
 * (tests/support/alloccount.c) for the zero-allocation suites.
 */
#ifndef SW_TEST_ALLOC_GW_H
#define SW_TEST_ALLOC_GW_H

#include "proc.h"

#include <stdbool.h>

/* shockwave_process_allocations_total now, -1 when absent. */
long long sw_test_allocs(int admin_port);

/* What one read of /metrics allocates by itself (checked to be the same
 * twice), and the count after those reads into *now: a later count minus
 * *now, minus the baseline, is what the traffic in between allocated. */
long long sw_test_alloc_baseline(int admin_port, long long *now);

/*
 * sw_test_gw_start with LD_PRELOAD=$SW_ALLOCCOUNT. Returns false, after a
 * "SUITE: SKIP: why" line on stderr and with no daemon left running, when
 * counting is not possible here: the counter was not built, or the daemon
 * is an AddressSanitizer build (its runtime intercepts malloc). Fails the
 * test when the daemon should count and does not.
 */
bool sw_test_gw_start_counted(struct sw_test_gw *g, const char *conf_name,
                              const char *const *kv, const char *suite);

#endif
