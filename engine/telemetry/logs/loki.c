/* loki.c - the Loki push sink (see loki.h).
 *
 * The writer thread encodes each line straight into the open batch: one
 * buffer of entries per level, so sealing is a pointer move and the body
 * is put together (and gzipped) by the sender, off the writer's path. The
 * sender's loop, the retries and counts are the sender framework's
 * (sender.c), which runs this file's batch ops; the POST and its cut at
 * the shutdown deadline are push.c's.
 *
 * Threads: loki_add runs on the logger's writer thread; the sender thread
 * is started by loki_new and joined by loki_shutdown (main thread). They
 * share, under `push.s.lock`: the open batch, the queue of sealed ones, the
 * spare batch, `pending` and the stop request; the first line of a batch
 * and a batch sealed by size kick the sender. The
 * sender holds the lock only to move batches, never across I/O, so the
 * writer waits at most for a pointer move. Everything else (the body
 * buffer, push's handles and warned flags) belongs to the sender thread. */
#include "telemetry/logs/loki.h"
#include "base/hex.h"
#include "base/numtext.h"
#include "base/clock.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/logtext.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otlp_send.h"
#include "telemetry/send/push.h"
#include "base/strbuf.h"

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
    struct push push; /* its lock guards the batches too */
    char *url, *service, *instance;
    double wait;
    size_t batch_bytes, max_pending;
    /* under push.s.lock */
    struct loki_batch *open, *spare, *head, *tail;
    struct loki_batch *current; /* the one being sent: the sender's */
    size_t pending; /* entry bytes in open, queued and in-flight batches */
    /* sender thread only */
    struct strbuf body;
};

/* ------------------------------------------------------------ the body */

struct loki_batch *loki_batch_new(void)
{
    return calloc(1, sizeof(struct loki_batch));
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
    p += numtext_u64(p, rec->time_ns);
    *p++ = '"';
    *p++ = ',';
    size_t k = 2 * len + 2 <= LOKI_MAX_LINE ? json_ascii(p, line, len) : 0;
    p += k ? k : logtext_json(p, jcap, line, len);
    if (rec->has_ids) {
        static const char t[] = ",{\"trace_id\":\"", sp[] = "\",\"span_id\":\"";
        memcpy(p, t, sizeof t - 1);
        p += sizeof t - 1;
        hex_encode(rec->trace_id, 16, p);
        p += 32;
        memcpy(p, sp, sizeof sp - 1);
        p += sizeof sp - 1;
        hex_encode(rec->span_id, 8, p);
        p += 16;
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

int loki_batch_body(const struct loki_batch *b, const char *service, const char *instance,
                    struct strbuf *out)
{
    if (b->oom)
        return -1;
    char svc[1024], inst[1024] = "";
    logtext_json(svc, sizeof svc, service, strlen(service));
    if (instance && *instance)
        logtext_json(inst, sizeof inst, instance, strlen(instance));
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
        if (inst[0]) {
            strbuf_str(out, ",\"service_instance_id\":");
            strbuf_str(out, inst);
        }
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
    sender_kick_locked(&l->push.s);
}

void loki_add(struct loki *l, const struct log_record *rec, const char *line, size_t len)
{
    pthread_mutex_lock(&l->push.s.lock);
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
        b->since = clock_now();
        sender_kick_locked(&l->push.s); /* the sender times the batch from now */
    }
    if (b->bytes >= l->batch_bytes)
        seal(l);
    pthread_mutex_unlock(&l->push.s.lock);
    return;
drop:
    pthread_mutex_unlock(&l->push.s.lock);
    sender_dropped(&l->push.s, 1);
}

/* ------------------------------------------------------------ the sender */

/* Sends one sealed batch, retrying what may succeed later within its
 * bound, and counts its lines. */
static void deliver(struct loki *l, struct loki_batch *b)
{
    size_t n = b->lines;
    if (sender_late(&l->push.s)) {
        metric_add(l->push.s.c.counts.dropped, (double)n);
        return;
    }
    if (l->body.oom) {
        free(l->body.p);
        memset(&l->body, 0, sizeof l->body);
    }
    l->body.len = 0;
    size_t zlen = 0;
    uint8_t *z = NULL;
    if (loki_batch_body(b, l->service, l->instance, &l->body) != 0 ||
        !(z = otlp_gzip((const uint8_t *)l->body.p, l->body.len, &zlen))) {
        push_fail(&l->push, n, "out of memory");
        return;
    }
    curl_easy_setopt(l->push.easy, CURLOPT_POSTFIELDS, (const char *)z);
    curl_easy_setopt(l->push.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)zlen);
    push_send(&l->push, n, b->since + LOKI_RETRY_FOR);
    free(z);
}

/* When the next batch is due: a sealed one now, the open one wait after
 * its first line. */
static double batch_due(void *owner)
{
    struct loki *l = owner;
    pthread_mutex_lock(&l->push.s.lock);
    double due = l->head                       ? 0
                 : l->open && l->open->lines ? l->open->since + l->wait
                                             : INFINITY;
    pthread_mutex_unlock(&l->push.s.lock);
    return due;
}

static int batch_ready(void *owner)
{
    return batch_due(owner) <= clock_now();
}

/* Moves the batch that is due (at shutdown, the open one whatever its
 * age) to `current`. */
static size_t batch_take(void *owner, int stopping)
{
    struct loki *l = owner;
    pthread_mutex_lock(&l->push.s.lock);
    if (!l->head && l->open && l->open->lines &&
        (stopping || clock_now() >= l->open->since + l->wait))
        seal(l);
    struct loki_batch *b = l->head;
    if (b) {
        l->head = b->next;
        if (!l->head)
            l->tail = NULL;
    }
    l->current = b;
    pthread_mutex_unlock(&l->push.s.lock);
    return b ? b->lines + 1 : 0; /* a batch spoiled by OOM may have none */
}

static void batch_send(void *owner, size_t n, int stopping)
{
    (void)n;
    (void)stopping;
    struct loki *l = owner;
    deliver(l, l->current);
    sender_warn_drops(&l->push.s, "loki lines dropped: more than max_pending waiting",
                      "max_pending", (int64_t)l->max_pending);
}

static void batch_release(void *owner, size_t n)
{
    (void)n;
    struct loki *l = owner;
    struct loki_batch *b = l->current;
    pthread_mutex_lock(&l->push.s.lock);
    l->current = NULL;
    l->pending -= b->bytes;
    loki_batch_clear(b);
    if (!l->spare)
        l->spare = b;
    else
        loki_batch_free(b);
    pthread_mutex_unlock(&l->push.s.lock);
}

static const struct sender_ops batch_ops = {.due = batch_due,
                                            .ready = batch_ready,
                                            .take = batch_take,
                                            .send = batch_send,
                                            .release = batch_release};

/* ------------------------------------------------------------ life */

/* The push URL for --loki's value: http(s), a host, and the default path
 * when none is given. malloc'd, or NULL with err filled. */
static char *full_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *path = NULL, *full = NULL, *out = NULL;
    if (!u) {
        snprintf(err, errlen, "--loki: out of memory");
        return NULL;
    }
    if (push_url_ok(u, url) != 0) {
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
    push_free(&l->push);
    free(l->body.p);
    free(l->url);
    free(l->service);
    free(l->instance);
    free(l);
}

struct loki *loki_new(const struct loki_config *c, struct registry *m, char *err, size_t errlen)
{
    static const char *const headers[] = {"Content-Type: application/json",
                                          "Content-Encoding: gzip", NULL};
    struct loki *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "--loki: out of memory");
        return NULL;
    }
    l->url = full_url(c->url, err, errlen);
    if (!l->url)
        goto fail;
    struct push_config pc = {.flag = "--loki",
                             .url = l->url,
                             .signal = "logs_loki",
                             .failure = "loki push failed",
                             .count = "lines",
                             .headers = headers,
                             .timeout_ms = c->timeout_ms};
    if (push_init(&l->push, &pc, m, err, errlen) != 0)
        goto fail;
    /* Loki drops a label whose value is empty; a stream needs one */
    l->service = strdup(c->service && c->service[0] ? c->service : "shoal");
    l->instance = c->instance && c->instance[0] ? strdup(c->instance) : NULL;
    if (!l->service || (c->instance && c->instance[0] && !l->instance)) {
        snprintf(err, errlen, "--loki: out of memory");
        goto fail;
    }
    l->wait = (double)(c->batch_wait_ms > 0 ? c->batch_wait_ms : 1000) / 1000;
    l->batch_bytes = c->batch_bytes ? c->batch_bytes : 1u << 20;
    l->max_pending = c->max_pending ? c->max_pending : 16u << 20;
    curl_easy_setopt(l->push.easy, CURLOPT_POST, 1L);
    if (push_start(&l->push, &batch_ops, l, err, errlen) != 0)
        goto fail;
    return l;
fail:
    free_sink(l);
    return NULL;
}

void loki_shutdown(struct loki *l, long timeout_ms)
{
    if (!l)
        return;
    push_stop(&l->push, timeout_ms);
    /* the sender counted every batch it took; lines added after it stopped
     * would be here */
    size_t left = l->open ? l->open->lines : 0;
    for (struct loki_batch *b = l->head; b; b = b->next)
        left += b->lines;
    metric_add(l->push.s.c.counts.dropped, (double)left);
    free_sink(l);
}

static void sink_add(void *sink, const struct log_record *rec, const char *line, size_t len)
{
    loki_add(sink, rec, line, len);
}

static void sink_shutdown(void *sink, long timeout_ms)
{
    loki_shutdown(sink, timeout_ms);
}

const struct log_sink_ops loki_sink_ops = {sink_add, sink_shutdown};
