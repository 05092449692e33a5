/* fuzz_traceparent.c - fuzz target for the W3C traceparent reader.
 *
 * A traceparent header comes from whoever sent the job or the request, so
 * any bytes must either parse into a context that means what they say, or
 * be refused. The target checks, for every input: no crash and no read past
 * the input (an exact-size copy, for ASan); when accepted, the ids are not
 * all zero, and formatting the context and parsing that again gives the
 * same context; a version-00 header that is accepted is exactly what the
 * formatter writes for it (after trimming blanks). Any breach aborts. */
#include "telemetry/traces/trace.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    struct trace_ctx c;
    if (trace_parse_traceparent(in, size, &c) == 0) {
        must(c.valid == 1);
        must(!all_zero(c.trace_id, 16) && !all_zero(c.span_id, 8));
        char out[TRACEPARENT_LEN + 1];
        trace_format_traceparent(&c, out);
        must(strlen(out) == TRACEPARENT_LEN);
        struct trace_ctx again;
        must(trace_parse_traceparent(out, TRACEPARENT_LEN, &again) == 0);
        must(memcmp(&c, &again, sizeof c) == 0);
        /* version 00: the input, less surrounding blanks, is the canonical form */
        size_t a = 0, b = size;
        while (a < b && (in[a] == ' ' || in[a] == '\t'))
            a++;
        while (b > a && (in[b - 1] == ' ' || in[b - 1] == '\t'))
            b--;
        if (b - a >= 2 && in[a] == '0' && in[a + 1] == '0')
            must(b - a == TRACEPARENT_LEN && memcmp(in + a, out, TRACEPARENT_LEN) == 0);
    } else {
        must(c.valid == 0);
    }
    free(in);
    return 0;
}
