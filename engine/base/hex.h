/* hex.h - lower-case hex of bytes: trace and span ids in log lines, Loki's
 * metadata, pprof labels and traceparent headers. A leaf; pure, any
 * thread. */
#ifndef SHOAL_HEX_H
#define SHOAL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of n bytes into out (2n chars and a NUL). */
void hex_encode(const uint8_t *b, size_t n, char *out);
/* The value of a hex digit of either case, or -1. */
int hex_digit(int c);

#endif
