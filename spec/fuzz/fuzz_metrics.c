/* fuzz_metrics.c - fuzz target for the metric registry's escaper, name
 * rules, value formatting and exposition.
 *
 * A scrape is only as trustworthy as what it quotes: a label value from a
 * crawled page must stay inside its quotes on its own line. The input is
 * used four ways. As a label value: metrics_escape_label, at several buffer
 * sizes with guard bytes, must terminate inside the buffer, write nothing
 * past it, return the whole length, leave a prefix of the whole escaping
 * that is valid UTF-8 and does not end inside an escape, and the whole must
 * unescape to the input with each byte that is not UTF-8 (or is NUL) read
 * as U+FFFD. As a name: metrics_check_name and metrics_check_label must
 * agree with the Prometheus grammar, written out again here. Rendered: a
 * gauge whose help and label value are the input must give exactly the
 * expected lines in both formats, each valid UTF-8. As doubles: every 8
 * bytes, formatted, must read back with strtod. Any breach aborts, which
 * libFuzzer and the CTest replay both report. */
#include "telemetry/metrics/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define GUARD 16
#define MAX_VALUE 1024 /* label values are cut to this many bytes */

/* The input as the exposition must carry it: each NUL and each byte that
 * starts no well-formed sequence becomes U+FFFD. Caller frees; *outlen set. */
static char *sanitize(const char *in, size_t n, size_t *outlen)
{
    char *out = malloc(n * 3 + 1);
    size_t o = 0;
    must(out != NULL);
    for (size_t i = 0; i < n;) {
        size_t k = in[i] ? utf8_seq((const unsigned char *)in + i, n - i) : 0;
        if (k == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, in + i, k);
            o += k;
            i += k;
        }
    }
    *outlen = o;
    return out;
}

/* Undoes \\, \n and \" in s[0..n) into out (room for n bytes). -1 if s holds
 * something no escaper should write: a raw newline, any other escape, a
 * lone backslash, or (quoted) a bare double quote. */
static long unescape(const char *s, size_t n, char *out, int quoted)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n' || (quoted && c == '"')) return -1;
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i == n) return -1;
        if (s[i] == '\\')
            out[o++] = '\\';
        else if (s[i] == 'n')
            out[o++] = '\n';
        else if (s[i] == '"' && quoted)
            out[o++] = '"';
        else
            return -1;
    }
    return (long)o;
}

/* Whether s[0..n) unescapes to want[0..wn). */
static int unescapes_to(const char *s, size_t n, const char *want, size_t wn, int quoted)
{
    char *plain = malloc(n + 1);
    must(plain != NULL);
    long u = unescape(s, n, plain, quoted);
    int ok = u >= 0 && (size_t)u == wn && memcmp(plain, want, wn) == 0;
    free(plain);
    return ok;
}

/* The whole escaping of in, from a buffer big enough. Caller frees. */
static char *escape_whole(const char *in, size_t n, size_t *len)
{
    *len = metrics_escape_label(NULL, 0, in, n);
    char *out = malloc(*len + 1);
    must(out != NULL);
    must(metrics_escape_label(out, *len + 1, in, n) == *len);
    must(out[*len] == 0 && strlen(out) == *len);
    return out;
}

static void check_escape(const char *in, size_t n)
{
    size_t full_len;
    char *full = escape_whole(in, n, &full_len);
    must(is_utf8(full, full_len));
    size_t want_len;
    char *want = sanitize(in, n, &want_len);
    must(unescapes_to(full, full_len, want, want_len, 1));
    if (is_utf8(in, n) && !memchr(in, 0, n)) must(want_len == n && memcmp(want, in, n) == 0);
    free(want);

    size_t caps[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 31, 64, full_len, full_len + 1};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t cap = caps[k];
        /* a quote everywhere: a byte left over from before would show as
         * one the escaper never wrote */
        char *out = malloc(cap + GUARD);
        must(out != NULL);
        memset(out, '"', cap + GUARD);
        must(metrics_escape_label(out, cap, in, n) == full_len);
        for (size_t i = cap; i < cap + GUARD; i++)
            must(out[i] == '"');
        if (cap > 0) {
            char *nul = memchr(out, 0, cap);
            must(nul != NULL);
            size_t got = (size_t)(nul - out);
            if (full_len < cap) must(got == full_len);
            /* cut: whole pieces only, never more than one character short */
            must(got + 3 >= (cap - 1 < full_len ? cap - 1 : full_len));
            must(memcmp(out, full, got) == 0);
            must(is_utf8(out, got));
            size_t slashes = 0;
            while (slashes < got && out[got - 1 - slashes] == '\\')
                slashes++;
            must(slashes % 2 == 0);
        }
        free(out);
    }
    free(full);
}

static int name_ok(const char *s, int label)
{
    size_t n = strlen(s);
    if (n == 0 || n > (label ? 100u : 200u)) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        int digit = c >= '0' && c <= '9';
        if (!(letter || (i > 0 && digit) || (!label && c == ':'))) return 0;
    }
    if (label && (strncmp(s, "__", 2) == 0 || strcmp(s, "le") == 0 || strcmp(s, "quantile") == 0))
        return 0;
    return 1;
}

static void check_names(const char *s)
{
    char err[256];
    for (int label = 0; label <= 1; label++) {
        err[0] = 0;
        int rc = label ? metrics_check_label(s, err, sizeof err)
                       : metrics_check_name(s, err, sizeof err);
        must(rc == 0 || rc == -1);
        must((rc == 0) == name_ok(s, label));
        if (rc != 0) must(err[0] != 0); /* a refusal says why */
        char tiny[4] = "xyz";
        rc = label ? metrics_check_label(s, tiny, 1) : metrics_check_name(s, tiny, 1);
        must((rc == 0) == name_ok(s, label));
        must(rc == 0 ? tiny[0] == 'x' : tiny[0] == 0);
        must(tiny[1] == 'y');
    }
}

/* The lines of text[0..len): each must end in '\n' and be valid UTF-8. */
static size_t split_lines(const char *text, size_t len, const char **line, size_t *line_len,
                          size_t max)
{
    must(len > 0 && text[len - 1] == '\n');
    must(!memchr(text, 0, len));
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        must(n < max);
        line[n] = text + i;
        line_len[n] = (size_t)(nl - (text + i));
        must(is_utf8(line[n], line_len[n]));
        i += line_len[n] + 1;
        n++;
    }
    return n;
}

static int line_is(const char *line, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(line, want, n) == 0;
}

static void check_render(const char *in, size_t n, const char *help)
{
    struct registry *r = registry_new(1, 0);
    must(r != NULL);
    char err[256];
    const char *labels[] = {"v"};
    struct metric_family *f = metrics_declare(r, METRIC_SCRIPT, METRIC_GAUGE, "fuzz_value", help,
                                              labels, 1, NULL, 0, err, sizeof err);
    must(f != NULL);
    const char *values[] = {in};
    size_t lens[] = {n};
    struct metric_series *s = metrics_series(f, values, lens, 1);
    must(s != NULL && metrics_series(f, values, lens, 1) == s);
    metric_set(s, 1);

    size_t vlen, hlen;
    char *value = sanitize(in, n < MAX_VALUE ? n : MAX_VALUE, &vlen);
    char *help_text = sanitize(help, strlen(help), &hlen);
    for (int om = 0; om <= 1; om++) {
        size_t len;
        char *text = metrics_render(r, om ? METRICS_OPENMETRICS : METRICS_TEXT, &len);
        must(text != NULL);
        const char *line[8];
        size_t ll[8];
        must(split_lines(text, len, line, ll, 8) == (om ? 4u : 3u));
        /* HELP quotes the help; text format leaves its double quotes bare */
        const char *hp = "# HELP fuzz_value ";
        must(ll[0] >= strlen(hp) && memcmp(line[0], hp, strlen(hp)) == 0);
        must(unescapes_to(line[0] + strlen(hp), ll[0] - strlen(hp), help_text, hlen, om));
        must(line_is(line[1], ll[1], "# TYPE fuzz_value gauge"));
        const char *pre = "fuzz_value{v=\"", *post = "\"} 1";
        size_t np = strlen(pre), nq = strlen(post);
        must(ll[2] >= np + nq && memcmp(line[2], pre, np) == 0 &&
             memcmp(line[2] + ll[2] - nq, post, nq) == 0);
        must(unescapes_to(line[2] + np, ll[2] - np - nq, value, vlen, 1));
        if (om) must(line_is(line[3], ll[3], "# EOF"));
        free(text);
    }
    free(value);
    free(help_text);
    registry_free(r);
}

static void check_value(double v)
{
    char out[64], cut[64 + GUARD];
    size_t n = metrics_format_value(out, sizeof out, v);
    must(n > 0 && n < 32 && strlen(out) == n);
    if (isnan(v)) {
        must(strcmp(out, "NaN") == 0);
    } else if (isinf(v)) {
        must(strcmp(out, v > 0 ? "+Inf" : "-Inf") == 0);
    } else {
        char *end;
        must(strspn(out, "0123456789+-.e") == n);
        must(strtod(out, &end) == v && end == out + n);
        if (v == floor(v) && fabs(v) < 9007199254740992.0)
            must(strspn(out, "-0123456789") == n && (out[0] != '-' || v < 0));
    }
    for (size_t cap = 0; cap <= n + 1; cap++) {
        memset(cut, 'G', sizeof cut);
        must(metrics_format_value(cut, cap, v) == n);
        for (size_t i = cap; i < sizeof cut; i++)
            must(cut[i] == 'G');
        if (cap > 0) {
            size_t k = cap - 1 < n ? cap - 1 : n;
            must(memcmp(cut, out, k) == 0 && cut[k] == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact copies, so a read past the end is a heap overflow under ASan */
    char *in = malloc(size ? size : 1);
    char *str = malloc(size + 1);
    must(in && str);
    memcpy(in, data, size);
    memcpy(str, data, size);
    str[size] = 0; /* as a C string: up to the first NUL */

    check_escape(in, size);
    check_names(str);
    check_render(in, size, str);
    for (size_t i = 0; i + 8 <= size && i < 8 * 32; i += 8) {
        double v;
        memcpy(&v, data + i, 8);
        check_value(v);
    }
    free(in);
    free(str);
    return 0;
}
