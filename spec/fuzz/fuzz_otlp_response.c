/* fuzz_otlp_response.c - fuzz target for otlp_parse_export_response
 * (reading an ExportTraceServiceResponse).
 *
 * The bytes come from whatever answers on the collector's port: a proxy's
 * HTML page, a truncated body, a hostile server. Whatever they are, the
 * parser must return 0 or -1; report a count that is never negative, and 0
 * on -1; write msg NUL-terminated inside msglen and never past it (guard
 * bytes), and nothing at all when msglen is 0; and give the same answer for
 * every buffer size, the message only cut shorter. Any breach aborts, which
 * libFuzzer and the CTest replay both report. */
#include "telemetry/traces/otlp.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[] = {1, 2, 7, 64, 4096};
    /* an exact copy, so a read past size is a heap overflow under ASan */
    uint8_t *in = malloc(size ? size : 1);
    char *full = malloc(sizes[4]), *msg = malloc(sizes[4] + GUARD);
    if (!in || !full || !msg)
        goto done;
    memcpy(in, data, size);

    int64_t rej_full = -1;
    int rc = otlp_parse_export_response("ExportTraceServiceResponse", in, size, &rej_full, full,
                                        sizes[4]);
    must(rc == 0 || rc == -1);
    must(rej_full >= 0);
    must(rc == 0 || rej_full == 0);
    must(memchr(full, '\0', sizes[4]) != NULL);
    size_t full_len = strlen(full);
    must(rc == 0 || full_len > 0); /* a failure says what went wrong */

    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int64_t rej = -1;
        memset(msg, 'G', n + GUARD);
        must(otlp_parse_export_response("ExportTraceServiceResponse", in, size, &rej, msg, n) ==
             rc);
        must(rej == rej_full);
        for (size_t i = 0; i < GUARD; i++)
            must(msg[n + i] == 'G');
        char *nul = memchr(msg, '\0', n);
        must(nul != NULL);
        size_t len = (size_t)(nul - msg);
        must(len == (full_len < n ? full_len : n - 1));
        must(memcmp(msg, full, len) == 0);
    }

    /* no room: nothing written, the answer unchanged */
    int64_t rej = -1;
    memset(msg, 'G', GUARD);
    must(otlp_parse_export_response("ExportTraceServiceResponse", in, size, &rej, msg, 0) == rc);
    must(rej == rej_full);
    for (size_t i = 0; i < GUARD; i++)
        must(msg[i] == 'G');
done:
    free(in);
    free(full);
    free(msg);
    return 0;
}
