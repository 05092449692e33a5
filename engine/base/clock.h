/* clock.h - the engine's two clocks: a leaf every module may use.
 *
 * clock_now: monotonic seconds, for deadlines, timers and durations.
 * clock_unix_ns: wall-clock nanoseconds since 1970, for timestamps that
 * leave the process (log lines, spans, exports). Any thread. */
#ifndef SHOAL_CLOCK_H
#define SHOAL_CLOCK_H

#include <stdint.h>

double clock_now(void);
uint64_t clock_unix_ns(void);

#endif
