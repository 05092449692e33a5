/* fuzz_csv.c - fuzz target for the CSV writer (csv_field, csv_record).
 *
 * The input is split on 0xff bytes into the fields of one record (any bytes
 * otherwise: commas, quotes, CR, LF, NUL). The record written must read
 * back, with the RFC 4180 reader below (written apart from the engine's
 * writer), into exactly those fields, consuming the whole record up to its
 * final "\n"; a bare field holds no comma, quote, CR or LF; and each field
 * stays within csv_field_room. A second record appended after the first
 * must read back too, so a record can never swallow or end its successor.
 * Any breach aborts, which libFuzzer and the CTest replay both report. */
#include "base/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "base/strbuf.h"

#define SEP 0xff
#define MAX_FIELDS 64

struct field {
    const char *p;
    size_t n;
};

/* Reads one record at s (n bytes) into out (room for n bytes) as fields
 * separated by NUL-free offsets: starts[i], lens[i]. Returns the bytes the
 * record took (its "\n" included), or 0 if it is not valid RFC 4180. */
static size_t read_record(const char *s, size_t n, char *out, size_t *starts, size_t *lens,
                          int *nfields)
{
    size_t i = 0, o = 0;
    int nf = 0;
    if (n && s[0] == '\n') { /* a record of no fields */
        *nfields = 0;
        return 1;
    }
    for (;;) {
        if (nf == MAX_FIELDS + 1)
            return 0;
        starts[nf] = o;
        if (i < n && s[i] == '"') {
            i++;
            for (;;) {
                if (i == n)
                    return 0;
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = s[i++];
            }
        } else {
            while (i < n && s[i] != ',' && s[i] != '\n') {
                if (s[i] == '"' || s[i] == '\r')
                    return 0; /* would have needed quotes */
                out[o++] = s[i++];
            }
        }
        lens[nf] = o - starts[nf];
        nf++;
        if (i == n)
            return 0; /* no "\n" */
        if (s[i] == '\n') {
            *nfields = nf;
            return i + 1;
        }
        if (s[i] != ',')
            return 0; /* text after a closing quote */
        i++;
    }
}

static void check_record(const char *rec, size_t len, const struct field *f, int nf, size_t *used)
{
    char *out = malloc(len + 1);
    size_t starts[MAX_FIELDS + 1], lens[MAX_FIELDS + 1];
    int got = -1;
    must(out != NULL);
    *used = read_record(rec, len, out, starts, lens, &got);
    must(*used > 0);
    must(got == nf);
    for (int i = 0; i < nf; i++)
        must(lens[i] == f[i].n && memcmp(out + starts[i], f[i].p, f[i].n) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct field f[MAX_FIELDS];
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && nf < MAX_FIELDS; i++)
        if (i == size || data[i] == SEP) {
            f[nf++] = (struct field){(const char *)data + start, i - start};
            start = i + 1;
        }
    const char *ptrs[MAX_FIELDS] = {0};
    size_t lens[MAX_FIELDS] = {0};
    for (int i = 0; i < nf; i++) {
        ptrs[i] = f[i].p;
        lens[i] = f[i].n;
        /* one field alone: within its room, bare only when nothing needs quotes */
        char *one = malloc(csv_field_room(f[i].n) + 1);
        must(one != NULL);
        size_t k = csv_field(one, f[i].p, f[i].n);
        must(k <= csv_field_room(f[i].n));
        if (k == 0 || one[0] != '"') {
            must(k == f[i].n && memcmp(one, f[i].p, k) == 0);
            for (size_t j = 0; j < k; j++)
                must(one[j] != ',' && one[j] != '"' && one[j] != '\r' && one[j] != '\n');
        }
        free(one);
    }
    struct strbuf b = {0};
    csv_record(&b, nf, ptrs, lens);
    size_t first = b.len;
    /* a second record after it: the first fields reversed */
    const char *rp[MAX_FIELDS] = {0};
    size_t rl[MAX_FIELDS] = {0};
    struct field rf[MAX_FIELDS];
    for (int i = 0; i < nf; i++) {
        rp[i] = ptrs[nf - 1 - i];
        rl[i] = lens[nf - 1 - i];
        rf[i] = f[nf - 1 - i];
    }
    csv_record(&b, nf, rp, rl);
    must(!b.oom);
    must(first > 0 && b.p[first - 1] == '\n' && b.p[b.len - 1] == '\n');
    size_t used;
    check_record(b.p, first, f, nf, &used);
    must(used == first);
    check_record(b.p + first, b.len - first, rf, nf, &used);
    must(used == b.len - first);
    free(b.p);
    return 0;
}
