/* csv.h - CSV records as RFC 4180 writes them, for --output FILE.csv, and
 * the one record shoal reads back: an existing file's header.
 *
 * A field is written bare unless it holds a comma, a double quote, CR or
 * LF; then it is wrapped in double quotes with each quote doubled. A
 * record is its fields joined by commas and ended by "\n" (LF alone, which
 * every CSV reader takes and Unix tools prefer to CRLF). A record of one
 * empty field is written as "" so it does not read back as a blank line.
 * Bytes are copied as they are (UTF-8 or not). Pure functions; any thread. */
#ifndef SHOAL_CSV_H
#define SHOAL_CSV_H

#include <stddef.h>

struct strbuf;

/* The most csv_field can write for a field of n bytes. */
static inline size_t csv_field_room(size_t n)
{
    return 2 * n + 2;
}

/* Writes s (n bytes, any bytes) as one field into out, which has room for
 * csv_field_room(n) bytes. No NUL is added. Returns the length written. */
size_t csv_field(char *out, const char *s, size_t n);

/* Appends the record of n fields (and its "\n") to b. */
void csv_record(struct strbuf *b, int n, const char *const *fields, const size_t *lens);

/* Reads the record at the start of s (n bytes): fields split by commas, a
 * quoted field holding commas, CR, LF and "" for a quote; the record ends
 * at LF or CRLF. Up to max fields go to fields[] as malloc'd NUL-ended
 * copies (their bytes may hold NUL: lens[] says how many) and *used gets
 * the bytes the record took, its line end included. Returns the number of
 * fields; 0 if s holds no whole record (nothing, or no line end yet); -1
 * if it is not CSV (text after a closing quote, a quote or CR inside a
 * bare field), has more than max fields, or memory ran out. On 0 and -1
 * nothing is left allocated. */
int csv_read_record(const char *s, size_t n, int max, char **fields, size_t *lens, size_t *used);

#endif
