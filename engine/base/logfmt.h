/* logfmt.h - escaping values for logfmt lines (key=value ...).
 *
 * A value is written bare when it is safe, otherwise quoted with \" \\ \n \r
 * \t and \u00NN escapes (the JSON ones, which go-logfmt and so Loki and
 * Alloy read back), so a value can never end a line or start a forged one;
 * a byte that is not valid UTF-8 becomes U+FFFD, so the line is valid UTF-8
 * whatever the input. Pure functions; any thread. */
#ifndef SHOAL_LOGFMT_H
#define SHOAL_LOGFMT_H

#include <stddef.h>

/* Writes in (len bytes, may contain NUL) as one logfmt value into out,
 * always NUL-terminated; a value that does not fit is cut at a character
 * boundary and ends with "...". Returns the length written. outlen >= 8. */
size_t logfmt_value(char *out, size_t outlen, const char *in, size_t len);

#endif
