/* logtext.h - text helpers for the structured logger: JSON string escaping
 * and redaction of secrets carried in URLs and key=value parameters.
 *
 * logtext_json makes any bytes one valid JSON string (so no value can end a
 * line or forge a field); logtext_redact hides credentials before a value is
 * logged. Pure functions on caller buffers; any thread. */
#ifndef SHOAL_LOGTEXT_H
#define SHOAL_LOGTEXT_H

#include <stddef.h>

/* Writes in (len bytes, may contain NUL) into out as one JSON string with
 * its quotes, always NUL-terminated. " and \ are escaped, \n \r \t as such,
 * other control bytes and 0x7f as \u00XX; each byte that is not part of
 * valid UTF-8 becomes \ufffd. A value that does not fit is cut between
 * characters/escapes and ends with ..." so it stays valid JSON. Returns the
 * length written. outlen >= 8; a smaller out gets "" or nothing, returns 0. */
size_t logtext_json(char *out, size_t outlen, const char *in, size_t len);

/* Copies in (len bytes) into out with secrets replaced by REDACTED: the
 * password of URL userinfo (scheme://user:pw@host, or the whole userinfo
 * when it has no ':') and the value of any name=value parameter whose name
 * is password, passwd, pwd, token, access_token, api_key, apikey, secret,
 * client_secret, auth or key (any case), wherever it appears in the text.
 * The output is NUL-terminated, cut between characters if it would exceed
 * outlen-1 bytes. Returns the length written (0 when outlen is 0). */
size_t logtext_redact(char *out, size_t outlen, const char *in, size_t len);

/* 1 if name (len bytes) is one of the secret names above, any case: a log
 * field of that name has its whole value redacted. */
int logtext_secret_name(const char *name, size_t len);

/* Room logtext_redact may need for len bytes of input: each secret it
 * hides becomes REDACTED, longer than the shortest secret. */
#define LOGTEXT_REDACT_ROOM(len) ((len)*3 + 16)

#endif
