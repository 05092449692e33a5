/* trace.c - ids, traceparent and the sampler (see trace.h). */
#include "telemetry/traces/trace.h"
#include "base/hex.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static __thread uint64_t rng[4];
static __thread int rng_ready;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64, to spread a seed over the generator's state */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t next(void)
{
    if (!rng_ready) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&ts;
        }
        for (int i = 0; i < 4; i++)
            rng[i] = splitmix(&seed);
        rng_ready = 1;
    }
    uint64_t result = rotl(rng[1] * 5, 7) * 9;
    uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

void trace_new_trace_id(uint8_t out[16])
{
    uint64_t a, b;
    do {
        a = next();
        b = next();
    } while (a == 0 && b == 0);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

void trace_new_span_id(uint8_t out[8])
{
    uint64_t a;
    do
        a = next();
    while (a == 0);
    memcpy(out, &a, 8);
}

void trace_hex(const uint8_t *b, size_t n, char *out)
{
    hex_encode(b, n, out);
}

static int hexval(char c)
{
    return c >= 'A' && c <= 'F' ? -1 : hex_digit(c); /* upper case is not allowed */
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        any |= out[i];
    }
    return any ? 0 : -1; /* all zero is invalid */
}

int trace_parse_traceparent(const char *s, size_t len, struct trace_ctx *out)
{
    memset(out, 0, sizeof *out);
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len < TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -1;
    if (hexval(s[0]) < 0 || hexval(s[1]) < 0)
        return -1;
    int version = hexval(s[0]) << 4 | hexval(s[1]);
    if (version == 0xff)
        return -1;
    /* version 00 has exactly these fields; a later version may add more
     * after a dash, which this reader skips */
    if (version == 0 && len != TRACEPARENT_LEN)
        return -1;
    if (version > 0 && len > TRACEPARENT_LEN && s[TRACEPARENT_LEN] != '-')
        return -1;
    struct trace_ctx c = {0};
    if (unhex(s + 3, c.trace_id, 16) != 0 || unhex(s + 36, c.span_id, 8) != 0)
        return -1;
    int hi = hexval(s[53]), lo = hexval(s[54]);
    if (hi < 0 || lo < 0)
        return -1;
    c.flags = (uint8_t)(hi << 4 | lo);
    c.valid = 1;
    *out = c;
    return 0;
}

void trace_format_traceparent(const struct trace_ctx *c, char *out)
{
    memcpy(out, "00-", 3);
    trace_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    trace_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    trace_hex(&c->flags, 1, out + 53);
}

void trace_pack(uint8_t out[TRACE_CTX_LEN], char kind, const struct trace_ctx *c)
{
    out[0] = (uint8_t)kind;
    memcpy(out + 1, c->trace_id, 16);
    memcpy(out + 17, c->span_id, 8);
    out[25] = c->flags;
}

int trace_state_ok(const char *s, size_t len)
{
    if (len == 0 || len > TRACESTATE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static int by_ratio(const struct trace_sampler *s, const uint8_t trace_id[16])
{
    if (s->bound == UINT64_MAX)
        return 1;
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | trace_id[i];
    return (x & 0x7fffffffffffffffull) < s->bound;
}

int trace_sampler_decide(const struct trace_sampler *s, const uint8_t trace_id[16],
                   const struct trace_ctx *parent)
{
    int has_parent = parent && parent->valid;
    switch (s->kind) {
    case TRACE_SAMPLER_ALWAYS_ON:
        return 1;
    case TRACE_SAMPLER_ALWAYS_OFF:
        return 0;
    case TRACE_SAMPLER_RATIO:
        return by_ratio(s, trace_id);
    case TRACE_SAMPLER_PARENT_ON:
        return has_parent ? (parent->flags & TRACE_FLAG_SAMPLED) != 0 : 1;
    case TRACE_SAMPLER_PARENT_OFF:
        return has_parent ? (parent->flags & TRACE_FLAG_SAMPLED) != 0 : 0;
    case TRACE_SAMPLER_PARENT_RATIO:
        return has_parent ? (parent->flags & TRACE_FLAG_SAMPLED) != 0 : by_ratio(s, trace_id);
    }
    return 0;
}
