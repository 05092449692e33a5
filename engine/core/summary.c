/* summary.c - formats the run's figures.
 *
 * The text mirrors what wrk users read (latency percentiles, rate, status
 * breakdown) with what a job engine adds (failures, retries, top errors).
 * The JSON holds the same figures with stable names; latencies in seconds.
 * Each error entry is a kind of failure: its pattern (stats_error_pattern),
 * how many attempts failed so, and one example (message and job url). */
#include "core/scope.h"
#include "core/summary.h"
#include "base/logtext.h"
#include "base/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void fmt_duration(char *out, size_t n, double us)
{
    if (us < 1000)
        snprintf(out, n, "%.0fus", us);
    else if (us < 1e6)
        snprintf(out, n, "%.2fms", us / 1e3);
    else
        snprintf(out, n, "%.2fs", us / 1e6);
}

static void fmt_bytes(char *out, size_t n, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}

static int by_count(const void *a, const void *b)
{
    const struct stats_error *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void print_items(FILE *out, const struct summary *s)
{
    if (!s->items_output) {
        if (s->items_discarded)
            fprintf(out, "  items     %llu emitted, not saved (no --output)\n", s->items_discarded);
        return;
    }
    fprintf(out, "  items     %llu written to %s", s->items_written, s->items_output);
    if (s->items_dropped)
        fprintf(out, ", %llu dropped (the output did not keep up)", s->items_dropped);
    if (s->items_failed)
        fprintf(out, ", %llu failed (write errors)", s->items_failed);
    if (s->items_extra_keys)
        fprintf(out, ", %llu with keys outside the CSV header (dropped)", s->items_extra_keys);
    fprintf(out, "\n");
}

/* Pushes the crawl's scope dropped, by reason (robots.txt has its line). */
static void print_scope(FILE *out, struct stats *t)
{
    const char *sep = "  scope     dropped ";
    for (int k = 1; k < STATS_SCOPE_REASONS; k++) {
        uint64_t n = counter_get(&t->out_of_scope[k]);
        if (!n || k == SCOPE_ROBOTS)
            continue;
        fprintf(out, "%s%llu by %s", sep, (unsigned long long)n,
                scope_reason_name((enum scope_reason)k));
        sep = ", ";
    }
    if (sep[0] == ',')
        fprintf(out, "\n");
}

/* The busiest hosts: jobs started, and a delay or pause they ended with. */
static void print_hosts(FILE *out, const struct summary *s)
{
    if (s->ngroups == 0)
        return;
    for (int i = 0; i < s->nhosts; i++) {
        const struct host_row *h = &s->hosts[i];
        fprintf(out, "  %-9s %-28s %8llu jobs", i == 0 ? "hosts" : "", h->name,
                (unsigned long long)h->started);
        if (h->delay > 0)
            fprintf(out, ", %.3g s between starts", h->delay);
        if (h->waiting)
            fprintf(out, ", %zu left", h->waiting);
        fprintf(out, "\n");
    }
    size_t rest = s->ngroups - (size_t)s->nhosts;
    if (rest)
        fprintf(out, "  %-9s %zu other host%s %12llu jobs\n", "", rest, rest == 1 ? "" : "s",
                (unsigned long long)s->hosts_other.started);
}

void summary_print(FILE *out, const struct summary *s)
{
    struct stats *t = s->totals;
    uint64_t ok = counter_get(&t->jobs_ok), failed = counter_get(&t->jobs_failed);
    double rate = s->elapsed > 0 ? (double)(ok + failed) / s->elapsed : 0;
    fprintf(out, "shoal %s: %d worker%s x %d concurrency, %.2fs%s\n", s->script, s->workers,
            s->workers == 1 ? "" : "s", s->concurrency, s->elapsed,
            s->interrupted ? " (interrupted)" : "");
    fprintf(out, "  jobs      %llu ok, %llu failed, %llu retried, %llu timed out; %.1f jobs/s\n",
            (unsigned long long)ok, (unsigned long long)failed,
            (unsigned long long)counter_get(&t->retries),
            (unsigned long long)counter_get(&t->timeouts), rate);
    uint64_t no = counter_get(&t->jobs_disallowed) + counter_get(&t->out_of_scope[SCOPE_ROBOTS]);
    if (no)
        fprintf(out, "  robots    %llu disallowed by robots.txt (jobs and pushes; none fetched)\n",
                (unsigned long long)no);
    print_scope(out, t);
    if (s->queued_left || s->dup_dropped)
        fprintf(out, "  queue     %llu pushed, %llu duplicates dropped, %llu left unrun\n",
                s->pushed, s->dup_dropped, s->queued_left);
    if (s->ngroups > 1 || (s->nhosts && (s->hosts[0].delay > 0 || s->hosts[0].waiting)))
        print_hosts(out, s);
    if (t->latency.count) {
        char p50[32], p90[32], p99[32], mx[32];
        fmt_duration(p50, sizeof p50, (double)hist_quantile(&t->latency, 0.50));
        fmt_duration(p90, sizeof p90, (double)hist_quantile(&t->latency, 0.90));
        fmt_duration(p99, sizeof p99, (double)hist_quantile(&t->latency, 0.99));
        fmt_duration(mx, sizeof mx, (double)t->latency.max_us);
        fprintf(out, "  latency   p50 %s  p90 %s  p99 %s  max %s\n", p50, p90, p99, mx);
    }
    for (int i = 0; i < s->nsignals; i++) {
        const struct summary_signal *g = &s->signals[i];
        const char *what = !strcmp(g->name, "traces")     ? "spans exported"
                           : !strcmp(g->name, "logs")     ? "lines written"
                           : !strcmp(g->name, "profiles") ? "profiles exported"
                                                          : "lines sent";
        fprintf(out, "  %-9s %llu %s, %llu dropped, %llu failed\n", g->name, g->exported, what,
                g->dropped, g->failed);
    }
    print_items(out, s);
    uint64_t reqs = counter_get(&t->http_requests);
    if (reqs) {
        char bytes[32];
        fmt_bytes(bytes, sizeof bytes, (double)counter_get(&t->bytes_in));
        fprintf(out, "  http      %llu requests, %s received, %llu transport errors\n",
                (unsigned long long)reqs, bytes, (unsigned long long)counter_get(&t->http_errors));
        const char *head = "  status   "; /* none when no response came at all */
        for (int c = 0; c < 600; c++) {
            uint64_t n = counter_get(&t->status_code[c]);
            if (n) {
                fprintf(out, "%s %d: %llu", head, c, (unsigned long long)n);
                head = "";
            }
        }
        if (!*head)
            fprintf(out, "\n");
    }
    struct stats_error errs[STATS_ERRORS];
    int n = 0;
    for (; n < STATS_ERRORS && t->errors[n].count; n++)
        errs[n] = t->errors[n];
    if (n) {
        qsort(errs, (size_t)n, sizeof errs[0], by_count);
        fprintf(out,
                "  errors    (failed attempts by kind, most frequent first; one example each)\n");
        for (int i = 0; i < n && i < 5; i++) {
            fprintf(out, "    %6llux  %s\n", (unsigned long long)errs[i].count, errs[i].text);
            if (errs[i].url[0]) /* curl's own messages never say which input it was */
                fprintf(out, "             url=%s\n", errs[i].url);
        }
        if (n > 5 || t->errors_other)
            fprintf(out, "    (and more: see the log)\n");
    }
    if (s->wedged)
        fprintf(out,
                "  wedged    %d worker(s) stuck in uninterruptible Lua code were left behind\n",
                s->wedged);
}

/* A JSON string: escaped, with U+FFFD for each byte that is not part of
 * valid UTF-8 (error messages quote whatever a server or script produced). */
static void json_string(struct strbuf *b, const char *s)
{
    size_t n = strlen(s), cap = n * 6 + 8; /* the worst case, \u00XX per byte */
    if (strbuf_reserve(b, cap) != 0)
        return;
    b->len += logtext_json(b->p + b->len, cap, s, n);
}

char *summary_json(const struct summary *s)
{
    struct stats *t = s->totals;
    struct strbuf b = {0};
    uint64_t ok = counter_get(&t->jobs_ok), failed = counter_get(&t->jobs_failed);
    strbuf_printf(&b, "{\"script\":");
    json_string(&b, s->script ? s->script : "");
    if (s->instance) {
        strbuf_str(&b, ",\"instance\":");
        json_string(&b, s->instance);
    }
    strbuf_printf(&b,
                  ",\"workers\":%d,\"concurrency\":%d,\"elapsed\":%.6f,\"ok\":%llu,\"failed\":%llu,"
                  "\"retried\":%llu,\"timeouts\":%llu,\"started\":%llu,\"jobs_per_sec\":%.3f,"
                  "\"disallowed\":%llu,"
                  "\"pushed\":%llu,\"duplicates\":%llu,\"queued_left\":%llu,\"wedged\":%d,"
                  "\"interrupted\":%s,\"stop_reason\":",
                  s->workers, s->concurrency, s->elapsed, (unsigned long long)ok,
                  (unsigned long long)failed, (unsigned long long)counter_get(&t->retries),
                  (unsigned long long)counter_get(&t->timeouts),
                  (unsigned long long)counter_get(&t->started),
                  s->elapsed > 0 ? (double)(ok + failed) / s->elapsed : 0.0,
                  (unsigned long long)(counter_get(&t->jobs_disallowed) +
                                       counter_get(&t->out_of_scope[SCOPE_ROBOTS])),
                  s->pushed,
                  s->dup_dropped, s->queued_left, s->wedged, s->interrupted ? "true" : "false");
    json_string(&b, s->stop_reason ? s->stop_reason : "");
    strbuf_printf(&b,
                  ",\"latency\":{\"count\":%llu,\"mean\":%.6f,\"p50\":%.6f,\"p90\":%.6f,"
                  "\"p99\":%.6f,\"max\":%.6f}",
                  (unsigned long long)t->latency.count,
                  t->latency.count ? t->latency.sum_us / (double)t->latency.count / 1e6 : 0.0,
                  (double)hist_quantile(&t->latency, 0.5) / 1e6,
                  (double)hist_quantile(&t->latency, 0.9) / 1e6,
                  (double)hist_quantile(&t->latency, 0.99) / 1e6, (double)t->latency.max_us / 1e6);
    /* hosts: the busiest, then the rest as one entry */
    strbuf_printf(&b, ",\"hosts_total\":%zu,\"hosts\":[", s->ngroups);
    for (int i = 0; i <= s->nhosts; i++) {
        const struct host_row *h = i < s->nhosts ? &s->hosts[i] : &s->hosts_other;
        if (i == s->nhosts && s->ngroups <= (size_t)s->nhosts)
            break;
        strbuf_str(&b, i ? ",{\"host\":" : "{\"host\":");
        json_string(&b, h->name);
        strbuf_printf(&b, ",\"started\":%llu,\"waiting\":%zu,\"delay\":%.6g}",
                      (unsigned long long)h->started, h->waiting, h->delay);
    }
    strbuf_str(&b, "]");
    if (s->nsignals) {
        strbuf_str(&b, ",\"telemetry\":{");
        for (int i = 0; i < s->nsignals; i++) {
            const struct summary_signal *g = &s->signals[i];
            strbuf_printf(&b, "%s\"%s\":{\"exported\":%llu,\"dropped\":%llu,\"failed\":%llu}",
                          i ? "," : "", g->name, g->exported, g->dropped, g->failed);
        }
        strbuf_str(&b, "}");
    }
    for (int i = 0; i < s->nsignals; i++) /* the name the traces tests first read */
        if (!strcmp(s->signals[i].name, "traces"))
            strbuf_printf(&b, ",\"traces\":{\"exported\":%llu,\"dropped\":%llu,\"failed\":%llu}",
                          s->signals[i].exported, s->signals[i].dropped, s->signals[i].failed);
    strbuf_str(&b, ",\"items\":{\"output\":");
    if (s->items_output)
        json_string(&b, s->items_output);
    else
        strbuf_str(&b, "null");
    strbuf_printf(&b,
                  ",\"written\":%llu,\"dropped\":%llu,\"failed\":%llu,\"discarded\":%llu,"
                  "\"csv_extra_keys\":%llu}",
                  s->items_written, s->items_dropped, s->items_failed, s->items_discarded,
                  s->items_extra_keys);
    strbuf_printf(&b, ",\"http\":{\"requests\":%llu,\"errors\":%llu,\"bytes\":%llu,\"status\":{",
                  (unsigned long long)counter_get(&t->http_requests),
                  (unsigned long long)counter_get(&t->http_errors),
                  (unsigned long long)counter_get(&t->bytes_in));
    const char *sep = "";
    for (int c = 0; c < 600; c++) {
        uint64_t n = counter_get(&t->status_code[c]);
        if (n) {
            strbuf_printf(&b, "%s\"%d\":%llu", sep, c, (unsigned long long)n);
            sep = ",";
        }
    }
    strbuf_printf(&b, "}},\"errors\":[");
    sep = "";
    for (int i = 0; i < STATS_ERRORS && t->errors[i].count; i++) {
        strbuf_printf(&b, "%s{\"pattern\":", sep);
        json_string(&b, t->errors[i].pattern);
        strbuf_str(&b, ",\"message\":");
        json_string(&b, t->errors[i].text);
        if (t->errors[i].url[0]) {
            strbuf_str(&b, ",\"url\":");
            json_string(&b, t->errors[i].url);
        }
        strbuf_printf(&b, ",\"count\":%llu}", (unsigned long long)t->errors[i].count);
        sep = ",";
    }
    strbuf_printf(&b, "]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The temp file the JSON is written to before it is renamed into place
 * (its name in tmp); NULL with the reason in err. */
static FILE *open_temp(const char *path, char tmp[4096], char *err, size_t errlen)
{
    snprintf(tmp, 4096, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        snprintf(err, errlen,
                 "cannot write --summary-json %s: %s (its directory must exist and be writable)",
                 path, strerror(errno));
    return f;
}

int summary_check_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--summary-json %s is a directory: give a file name", path);
        return -1;
    }
    char tmp[4096];
    FILE *f = open_temp(path, tmp, err, errlen);
    if (!f)
        return -1;
    fclose(f);
    remove(tmp);
    return 0;
}

int summary_write_json(const char *path, const struct summary *s, char *err, size_t errlen)
{
    char *json = summary_json(s);
    if (!json) {
        snprintf(err, errlen, "cannot write --summary-json %s: out of memory", path);
        return -1;
    }
    char tmp[4096];
    FILE *f = open_temp(path, tmp, err, errlen);
    if (!f) {
        free(json);
        return -1;
    }
    int bad = fputs(json, f) < 0 || fputc('\n', f) < 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    free(json);
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        snprintf(err, errlen, "cannot write --summary-json %s: %s", path, strerror(e));
        remove(tmp);
        return -1;
    }
    return 0;
}
