/* numtext.h - numbers as text, written by hand where snprintf's cost is
 * paid per job: the Redis queue's script arguments and packed jobs, log
 * lines' numbers, Loki's timestamps, a URL's port. A leaf; pure, any
 * thread.
 *
 * Each writes into out, adds no NUL, and returns the length: 20 bytes at
 * most for the integers, NUMTEXT_MAX for numtext_real. numtext_real's
 * text is read back to the same double by strtod (and so by Lua's
 * tonumber): a whole number below 2^53 in decimal, anything else as C's
 * "%a" hexadecimal, exact, at a fraction of "%.17g"'s cost. */
#ifndef SHOAL_NUMTEXT_H
#define SHOAL_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

#define NUMTEXT_MAX 32

size_t numtext_u64(char *out, uint64_t v);
size_t numtext_i64(char *out, int64_t v);
size_t numtext_real(char *out, double x);

#endif
