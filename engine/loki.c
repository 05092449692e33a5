/* loki.c - the Loki push sink (see loki.h).
 *
 * The writer thread encodes each line straight into the open batch: one
 * buffer of entries per level, so sealing is a pointer move and the body
 * is put together (and gzipped) by the sender, off the writer's path. The
 * sender drives its easy handle through a multi handle of its own so that
 * shutdown can wake it (curl_multi_wakeup) and cut a request at the
 * deadline instead of waiting out the request timeout.
 *
 * Threads: loki_add runs on the logger's writer thread; the sender thread
 * is started by loki_new and joined by loki_shutdown (main thread). They
 * share, under `lock`: the open batch, the queue of sealed ones, the spare
 * batch, `pending` and the stop request; `cond` wakes the sender (first
 * line of a batch, a batch sealed by size, shutdown). The sender holds the
 * lock only to move batches, never across I/O, so the writer waits at most
 * for a pointer move. `dropped_any` is an atomic the sender reads to warn.
 * Everything else (the curl handles, the body buffer, the warned flags)
 * belongs to the sender thread. */
#include "loki.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "logtext.h"
#include "metrics.h"
#include "otlp_send.h"
#include "runmetrics.h"
#include "strbuf.h"

#define NLEVELS 4 /* debug, info, warn, error: LOG_DEBUG..LOG_ERROR */
#define DEFAULT_PATH "/loki/api/v1/push"
/* room for an entry's fixed parts: a separating comma, ["<20 digits>",
 * the line, ,{"trace_id":"<32>","span_id":"<16>"}] (102 bytes) */
#define ENTRY_OVERHEAD 128

static const char *const level_label[NLEVELS] = {"debug", "info", "warn", "error"};

struct loki_batch {
    struct strbuf v[NLEVELS]; /* entries joined by ',' */
    size_t lines, bytes;
    int oom;
    /* the sink's bookkeeping */
    double since; /* monotonic seconds of the first line */
    struct loki_batch *next;
};

struct loki {
    char *url, *service;
    char shown[512]; /* the URL for messages, credentials redacted */
    double wait;
    size_t batch_bytes, max_pending;
    long timeout_ms;
    struct metric_series *exported, *dropped, *failed;

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    struct loki_batch *open, *spare, *head, *tail;
    size_t pending; /* entry bytes in open, queued and in-flight batches */
    int stopping;
    double deadline; /* once stopping */
    _Atomic int dropped_any;

    /* sender thread only */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    struct strbuf body;
    char reply[256];
    size_t reply_len;
    double retry_after;
    int warned, warned_drop;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ the body */

struct loki_batch *loki_batch_new(void)
{
    return calloc(1, sizeof(struct loki_batch));
}

static size_t put_u64(char *p, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = t[n - 1 - i];
    return n;
}

static size_t put_hex(char *p, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        p[2 * i] = hex[b[i] >> 4];
        p[2 * i + 1] = hex[b[i] & 15];
    }
    return 2 * n;
}

/* Log lines are nearly always printable ASCII: those are escaped here in
 * one tight pass, to the same bytes logtext_json writes (measured: a
 * 230-byte line in ~1/4 of the time). 0 when the line needs more. */
static size_t json_ascii(char *out, const char *in, size_t len)
{
    char *p = out;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c >= 0x7f)
            return 0;
        if (c == '"' || c == '\\')
            *p++ = '\\';
        *p++ = (char)c;
    }
    *p++ = '"';
    return (size_t)(p - out);
}

size_t loki_batch_add(struct loki_batch *b, const struct log_record *rec, const char *line,
                      size_t len)
{
    if (b->oom)
        return 0;
    int lv = rec->level < LOG_ERROR ? (int)rec->level : LOG_ERROR;
    struct strbuf *s = &b->v[lv];
    /* logtext_json writes at most 6 bytes per input byte, the quotes and a
     * NUL; past LOKI_MAX_LINE it cuts */
    size_t jcap = len < (LOKI_MAX_LINE - 3) / 6 ? len * 6 + 3 : LOKI_MAX_LINE + 1;
    if (jcap < 8)
        jcap = 8;
    if (strbuf_reserve(s, jcap + ENTRY_OVERHEAD) != 0) {
        b->oom = 1;
        return 0;
    }
    char *start = s->p + s->len, *p = start;
    if (s->len)
        *p++ = ',';
    *p++ = '[';
    *p++ = '"';
    p += put_u64(p, rec->time_ns);
    *p++ = '"';
    *p++ = ',';
    size_t k = 2 * len + 2 <= LOKI_MAX_LINE ? json_ascii(p, line, len) : 0;
    p += k ? k : logtext_json(p, jcap, line, len);
    if (rec->has_ids) {
        static const char t[] = ",{\"trace_id\":\"", sp[] = "\",\"span_id\":\"";
        memcpy(p, t, sizeof t - 1);
        p += sizeof t - 1;
        p += put_hex(p, rec->trace_id, 16);
        memcpy(p, sp, sizeof sp - 1);
        p += sizeof sp - 1;
        p += put_hex(p, rec->span_id, 8);
        *p++ = '"';
        *p++ = '}';
    }
    *p++ = ']';
    *p = 0;
    size_t n = (size_t)(p - start);
    s->len += n;
    b->lines++;
    b->bytes += n;
    return n;
}

size_t loki_batch_lines(const struct loki_batch *b)
{
    return b->lines;
}

size_t loki_batch_bytes(const struct loki_batch *b)
{
    return b->bytes;
}

int loki_batch_body(const struct loki_batch *b, const char *service, struct strbuf *out)
{
    if (b->oom)
        return -1;
    char svc[1024];
    logtext_json(svc, sizeof svc, service, strlen(service));
    strbuf_str(out, "{\"streams\":[");
    int first = 1;
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct strbuf *s = &b->v[lv];
        if (!s->len)
            continue;
        if (!first)
            strbuf_add(out, ",", 1);
        first = 0;
        strbuf_str(out, "{\"stream\":{\"service_name\":");
        strbuf_str(out, svc);
        strbuf_str(out, ",\"level\":\"");
        strbuf_str(out, level_label[lv]);
        strbuf_str(out, "\"},\"values\":[");
        strbuf_add(out, s->p, s->len);
        strbuf_str(out, "]}");
    }
    strbuf_str(out, "]}");
    return out->oom ? -1 : 0;
}

void loki_batch_clear(struct loki_batch *b)
{
    for (int lv = 0; lv < NLEVELS; lv++) {
        if (b->v[lv].oom) {
            free(b->v[lv].p);
            memset(&b->v[lv], 0, sizeof b->v[lv]);
        }
        b->v[lv].len = 0;
    }
    b->lines = b->bytes = 0;
    b->oom = 0;
    b->since = 0;
    b->next = NULL;
}

void loki_batch_free(struct loki_batch *b)
{
    if (!b)
        return;
    for (int lv = 0; lv < NLEVELS; lv++)
        free(b->v[lv].p);
    free(b);
}

/* ------------------------------------------------------------ the writer side */

/* Moves the open batch to the queue; lock held. */
static void seal(struct loki *l)
{
    struct loki_batch *b = l->open;
    l->open = l->spare;
    l->spare = NULL;
    if (l->tail)
        l->tail->next = b;
    else
        l->head = b;
    l->tail = b;
    pthread_cond_signal(&l->cond);
}

void loki_add(struct loki *l, const struct log_record *rec, const char *line, size_t len)
{
    pthread_mutex_lock(&l->lock);
    if (l->pending + len + ENTRY_OVERHEAD > l->max_pending)
        goto drop;
    if (!l->open) {
        l->open = l->spare ? l->spare : loki_batch_new();
        l->spare = NULL;
        if (!l->open)
            goto drop;
    }
    struct loki_batch *b = l->open;
    size_t n = loki_batch_add(b, rec, line, len);
    if (!n) { /* out of memory: the batch is spoiled (its lines fail), let it go */
        seal(l);
        goto drop;
    }
    l->pending += n;
    if (b->lines == 1) {
        b->since = mono();
        pthread_cond_signal(&l->cond); /* the sender times the batch from now */
    }
    if (b->bytes >= l->batch_bytes)
        seal(l);
    pthread_mutex_unlock(&l->lock);
    return;
drop:
    pthread_mutex_unlock(&l->lock);
    metric_add(l->dropped, 1);
    atomic_store_explicit(&l->dropped_any, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ the sender */

static size_t on_reply(char *p, size_t size, size_t n, void *arg)
{
    struct loki *l = arg;
    size_t len = size * n, room = sizeof l->reply - 1 - l->reply_len;
    size_t k = len < room ? len : room;
    memcpy(l->reply + l->reply_len, p, k);
    l->reply_len += k;
    l->reply[l->reply_len] = 0;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct loki *l = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
        char v[32];
        size_t k = len - (sizeof name - 1) < sizeof v - 1 ? len - (sizeof name - 1) : sizeof v - 1;
        memcpy(v, p + sizeof name - 1, k);
        v[k] = 0;
        double secs = atof(v); /* an HTTP-date reads as 0: the backoff is used */
        if (secs > 0)
            l->retry_after = secs < 30 ? secs : 30;
    }
    return len;
}

/* When the request in flight must end: the shutdown deadline, or never. */
static double cut_at(struct loki *l, int *stopping)
{
    pthread_mutex_lock(&l->lock);
    int s = l->stopping;
    double at = s ? l->deadline : INFINITY;
    pthread_mutex_unlock(&l->lock);
    if (stopping)
        *stopping = s;
    return at;
}

/* One POST. Returns the HTTP status, or 0 with why filled when there was
 * no answer (refused, timed out, cut at the deadline). */
static long post(struct loki *l, const uint8_t *body, size_t len, char *why, size_t whylen)
{
    CURL *e = l->easy;
    char errbuf[CURL_ERROR_SIZE] = "";
    l->reply_len = 0;
    l->reply[0] = 0;
    l->retry_after = 0;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_multi_add_handle(l->multi, e);
    int running = 1, cut = 0;
    CURLcode rc = CURLE_OK;
    for (;;) {
        curl_multi_perform(l->multi, &running);
        if (!running)
            break;
        double left = cut_at(l, NULL) - mono();
        if (left <= 0) {
            cut = 1;
            break;
        }
        int ms = left < 1 ? (int)(left * 1000) + 1 : 1000;
        curl_multi_poll(l->multi, NULL, 0, ms, NULL);
    }
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read(l->multi, &q)))
        if (m->msg == CURLMSG_DONE)
            rc = m->data.result;
    curl_multi_remove_handle(l->multi, e);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    long status = 0;
    if (cut) {
        snprintf(why, whylen, "cut off at the shutdown deadline");
        return 0;
    }
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    /* Loki says why in a line of text */
    l->reply[strcspn(l->reply, "\r\n")] = 0;
    snprintf(why, whylen, "HTTP %ld%s%s", status, l->reply[0] ? ": " : "", l->reply);
    return status;
}

static void report_failure(const char *url, long status, const char *why, size_t lines,
                           int retrying)
{
    struct log_record r;
    log_begin(&r, LOG_WARN, "loki push failed");
    log_cstr(&r, "url", url);
    if (status)
        log_int(&r, "status", status);
    log_cstr(&r, "error", why);
    log_int(&r, "lines", (int64_t)lines);
    log_bool(&r, "retrying", retrying);
    log_emit_global(&r);
}

/* Waits until `until` or until shutdown begins (when it had not). */
static void nap(struct loki *l, double until)
{
    pthread_mutex_lock(&l->lock);
    int was = l->stopping;
    if (was && l->deadline < until)
        until = l->deadline;
    while (l->stopping == was && mono() < until) {
        struct timespec ts;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&l->cond, &l->lock, &ts);
    }
    pthread_mutex_unlock(&l->lock);
}

/* Sends one sealed batch, retrying what may succeed later within its
 * bound, and counts its lines. */
static void deliver(struct loki *l, struct loki_batch *b)
{
    size_t n = b->lines;
    int stopping;
    double deadline = cut_at(l, &stopping);
    if (stopping && mono() >= deadline) {
        metric_add(l->dropped, (double)n);
        return;
    }
    if (l->body.oom) {
        free(l->body.p);
        memset(&l->body, 0, sizeof l->body);
    }
    l->body.len = 0;
    size_t zlen = 0;
    uint8_t *z = NULL;
    if (loki_batch_body(b, l->service, &l->body) != 0 ||
        !(z = otlp_gzip((const uint8_t *)l->body.p, l->body.len, &zlen))) {
        metric_add(l->failed, (double)n);
        if (!l->warned) {
            l->warned = 1;
            report_failure(l->shown, 0, "out of memory", n, 0);
        }
        return;
    }
    double backoff = 0.5;
    for (;;) {
        char why[400];
        long status = post(l, z, zlen, why, sizeof why);
        if (status >= 200 && status < 300) {
            metric_add(l->exported, (double)n);
            break;
        }
        int again = status == 0 || status == 429 || status >= 500;
        double wait = l->retry_after > 0 ? l->retry_after : backoff;
        backoff = backoff * 2 < 8 ? backoff * 2 : 8;
        double limit = cut_at(l, &stopping);
        if (!stopping)
            limit = b->since + LOKI_RETRY_FOR;
        /* a Loki that does not answer at shutdown is not waited for */
        int give_up = !again || mono() + wait > limit || (stopping && status == 0);
        if (!l->warned) {
            l->warned = 1;
            report_failure(l->shown, status, why, n, !give_up);
        }
        if (give_up) {
            metric_add(l->failed, (double)n);
            break;
        }
        nap(l, mono() + wait);
        if (status == 0 && cut_at(l, &stopping) < INFINITY) {
            metric_add(l->failed, (double)n);
            break;
        }
    }
    free(z);
}

static void *sender_main(void *arg)
{
    struct loki *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        struct loki_batch *b = l->head;
        if (b) {
            l->head = b->next;
            if (!l->head)
                l->tail = NULL;
            pthread_mutex_unlock(&l->lock);
            deliver(l, b);
            if (atomic_load_explicit(&l->dropped_any, memory_order_relaxed) && !l->warned_drop) {
                l->warned_drop = 1;
                struct log_record r;
                log_begin(&r, LOG_WARN, "loki lines dropped: more than max_pending waiting");
                log_cstr(&r, "url", l->shown);
                log_int(&r, "max_pending", (int64_t)l->max_pending);
                log_emit_global(&r);
            }
            pthread_mutex_lock(&l->lock);
            l->pending -= b->bytes;
            loki_batch_clear(b);
            if (!l->spare)
                l->spare = b;
            else
                loki_batch_free(b);
            continue;
        }
        if (l->open && l->open->lines) {
            double due = l->open->since + l->wait;
            if (l->stopping || mono() >= due) {
                seal(l);
                continue;
            }
            struct timespec ts;
            ts.tv_sec = (time_t)due;
            ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&l->cond, &l->lock, &ts);
            continue;
        }
        if (l->stopping)
            break;
        pthread_cond_wait(&l->cond, &l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* ------------------------------------------------------------ life */

/* The push URL for --loki's value: http(s), a host, and the default path
 * when none is given. malloc'd, or NULL with err filled. */
static char *push_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL, *full = NULL, *out = NULL;
    if (!u) {
        snprintf(err, errlen, "--loki: out of memory");
        return NULL;
    }
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(err, errlen,
                 "--loki: want an http:// or https:// URL with a host, such as "
                 "http://localhost:3100 (the path defaults to " DEFAULT_PATH ")");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || !strcmp(path, "/"))
        curl_url_set(u, CURLUPART_PATH, DEFAULT_PATH, 0);
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK || !(out = strdup(full)))
        snprintf(err, errlen, "--loki: out of memory");
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

static void free_sink(struct loki *l)
{
    struct loki_batch *b = l->head;
    while (b) {
        struct loki_batch *next = b->next;
        loki_batch_free(b);
        b = next;
    }
    loki_batch_free(l->open);
    loki_batch_free(l->spare);
    if (l->multi)
        curl_multi_cleanup(l->multi);
    if (l->easy)
        curl_easy_cleanup(l->easy);
    curl_slist_free_all(l->headers);
    free(l->body.p);
    free(l->url);
    free(l->service);
    free(l);
}

struct loki *loki_new(const struct loki_config *c, struct runmetrics *m, char *err, size_t errlen)
{
    struct loki *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "--loki: out of memory");
        return NULL;
    }
    l->url = push_url(c->url, err, errlen);
    if (!l->url)
        goto fail;
    /* the logger redacts too, but not what it writes once it has stopped */
    logtext_redact(l->shown, sizeof l->shown, l->url, strlen(l->url));
    /* Loki drops a label whose value is empty; a stream needs one */
    l->service = strdup(c->service && c->service[0] ? c->service : "shoal");
    l->wait = (double)(c->batch_wait_ms > 0 ? c->batch_wait_ms : 1000) / 1000;
    l->batch_bytes = c->batch_bytes ? c->batch_bytes : 1u << 20;
    l->max_pending = c->max_pending ? c->max_pending : 16u << 20;
    l->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 10000;
    if (m) {
        const char *sig[1] = {"logs_loki"};
        l->exported = metrics_series(m->tel_exported, sig, NULL, 1);
        l->dropped = metrics_series(m->tel_dropped, sig, NULL, 1);
        l->failed = metrics_series(m->tel_failed, sig, NULL, 1);
    }
    l->easy = curl_easy_init();
    l->multi = curl_multi_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Content-Encoding: gzip");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    h = curl_slist_append(h, "User-Agent: shoal/" SHOAL_VERSION);
    l->headers = h;
    if (!l->service || !l->easy || !l->multi || !h) {
        snprintf(err, errlen, "--loki: out of memory");
        goto fail;
    }
    CURL *e = l->easy;
    curl_easy_setopt(e, CURLOPT_URL, l->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, l);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, l->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, l->timeout_ms);

    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&l->thread, NULL, sender_main, l) != 0) {
        snprintf(err, errlen, "--loki: cannot start the sender thread");
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
        goto fail;
    }
    return l;
fail:
    free_sink(l);
    return NULL;
}

void loki_shutdown(struct loki *l, long timeout_ms)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    l->deadline = mono() + (double)(timeout_ms > 0 ? timeout_ms : 0) / 1000;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    curl_multi_wakeup(l->multi);
    pthread_join(l->thread, NULL);
    /* the sender counted every batch it took; lines added after it stopped
     * would be here */
    size_t left = l->open ? l->open->lines : 0;
    for (struct loki_batch *b = l->head; b; b = b->next)
        left += b->lines;
    metric_add(l->dropped, (double)left);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free_sink(l);
}
