/* fuzz_otlp_logs_response.c - fuzz target for otlp_parse_export_response
 * reading an ExportLogsServiceResponse.
 *
 * The logs answer is read by the same code as the traces' one, on the
 * claim that ExportLogsServiceResponse and ExportTraceServiceResponse are
 * the same bytes. This target holds that claim against protobuf-c's own
 * decoder of the logs message, generated from proto/logs_service.proto,
 * for whatever a collector (or a proxy in front of it) sends back: both
 * accept or both refuse; the count is rejected_log_records, or 0 when that
 * is negative or the input is refused; the message is error_message, cut
 * to fit, or on refusal one that names the logs message. And msg is
 * always NUL-terminated within msglen, never written past it (guard
 * bytes). Any breach aborts, which libFuzzer and the CTest replay report. */
#include "telemetry/traces/otlp.h"

#include "logs_service.pb-c.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 8
#define ROOM 300

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_response;
#define PB_RESPONSE(fn)                                                                            \
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__##fn

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    char *msg = malloc(ROOM + GUARD);
    if (!in || !msg)
        goto done;
    memcpy(in, data, size); /* exact size: a read past it is caught by ASan */

    /* what the logs message says, by the generated decoder */
    int want_rc = 0;
    int64_t want_rej = 0;
    char want_msg[ROOM] = "";
    if (size) {
        pb_response *r = PB_RESPONSE(unpack)(NULL, size, in);
        if (!r) {
            want_rc = -1;
        } else {
            if (r->partial_success) {
                int64_t n = r->partial_success->rejected_log_records;
                want_rej = n > 0 ? n : 0;
                if (r->partial_success->error_message) {
                    strncpy(want_msg, r->partial_success->error_message, ROOM - 1);
                    want_msg[ROOM - 1] = 0;
                }
            }
            PB_RESPONSE(free_unpacked)(r, NULL);
        }
    }

    static const size_t rooms[] = {1, 5, ROOM};
    for (size_t k = 0; k < sizeof rooms / sizeof rooms[0]; k++) {
        size_t room = rooms[k];
        int64_t rej = -1;
        memset(msg, 'G', room + GUARD);
        int rc = otlp_parse_export_response("ExportLogsServiceResponse", in, size, &rej, msg, room);
        must(rc == want_rc);
        must(rej == want_rej);
        for (size_t i = 0; i < GUARD; i++)
            must(msg[room + i] == 'G');
        char *nul = memchr(msg, '\0', room);
        must(nul != NULL);
        size_t len = (size_t)(nul - msg);
        if (rc == 0) {
            size_t full = strlen(want_msg);
            must(len == (full < room ? full : room - 1));
            must(memcmp(msg, want_msg, len) == 0);
        } else if (room == ROOM) {
            must(strstr(msg, "ExportLogsServiceResponse") != NULL);
        }
    }
done:
    free(in);
    free(msg);
    return 0;
}
