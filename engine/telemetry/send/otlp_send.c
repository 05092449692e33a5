/* otlp_send.c - OTLP requests over HTTP/protobuf and gRPC (see otlp_send.h).
 *
 * What is retried follows the OTLP specification: HTTP 429, 502, 503 and
 * 504 (honouring Retry-After), transport failures (refused, timed out), and
 * the gRPC codes CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS. Anything else (400, a gRPC
 * INVALID_ARGUMENT) would fail again the same way: given up at once.
 *
 * Threads: a sender belongs to one exporter thread; only its abort_at is
 * written by others (an atomic). A batcher's thread (its struct sender's)
 * owns its otlp_sender and `down`; the queue belongs to the signal (its
 * own lock, in its ops). */
#include "telemetry/send/otlp_send.h"
#include "telemetry/send/sender.h"
#include "base/clock.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "telemetry/logs/logger.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otlp_common.h"

struct otlp_sender {
    struct otlp_target target;
    CURL *easy;
    struct curl_slist *headers;
    /* the answer being read */
    uint8_t *body;
    size_t len, cap;
    int grpc_status;
    char grpc_message[256];
    double retry_after;
    _Atomic int64_t abort_at_us; /* clock_now() microseconds; 0: none */
    int aborted;
};

uint8_t *otlp_gzip(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct otlp_sender *s = arg;
    size_t len = size * n;
    if (s->len + len > 4u << 20)
        return 0; /* no OTLP answer is this big */
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *b = realloc(s->body, cap);
        if (!b)
            return 0;
        s->body = b;
        s->cap = cap;
    }
    memcpy(s->body + s->len, p, len);
    s->len += len;
    return len;
}

/* Headers and, for gRPC, trailers: curl passes both here. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct otlp_sender *s = arg;
    size_t len = size * n;
    char line[512];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, k);
    line[k] = 0;
    line[strcspn(line, "\r\n")] = 0;
    char *colon = strchr(line, ':');
    if (!colon)
        return len;
    *colon = 0;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strcasecmp(line, "grpc-status") == 0)
        s->grpc_status = atoi(v);
    else if (strcasecmp(line, "grpc-message") == 0)
        snprintf(s->grpc_message, sizeof s->grpc_message, "%s", v);
    else if (strcasecmp(line, "retry-after") == 0)
        s->retry_after = sender_retry_after(v);
    return len;
}

/* curl calls this often while data moves and about once a second when
 * the collector is silent: the latter is what bounds a hung export. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct otlp_sender *s = arg;
    int64_t at = atomic_load(&s->abort_at_us);
    if (at && (int64_t)(clock_now() * 1e6) >= at) {
        s->aborted = 1;
        return 1;
    }
    return 0;
}

void otlp_sender_abort_at(struct otlp_sender *s, double when)
{
    atomic_store(&s->abort_at_us, when > 0 ? (int64_t)(when * 1e6) : 0);
}

struct otlp_sender *otlp_sender_new(const struct otlp_target *t)
{
    struct otlp_sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->target = *t;
    s->easy = curl_easy_init();
    if (!s->easy) {
        free(s);
        return NULL;
    }
    int grpc = t->protocol == OTLP_GRPC;
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, grpc ? "Content-Type: application/grpc"
                                  : "Content-Type: application/x-protobuf");
    if (grpc) {
        h = curl_slist_append(h, "TE: trailers");
        if (t->gzip)
            h = curl_slist_append(h, "grpc-encoding: gzip");
    } else if (t->gzip) {
        h = curl_slist_append(h, "Content-Encoding: gzip");
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    h = curl_slist_append(h, "User-Agent: shoal/" SHOAL_VERSION);
    for (int i = 0; i < t->nheaders; i++)
        h = curl_slist_append(h, t->headers[i]);
    s->headers = h;
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t->timeout_ms > 0 ? t->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
    if (grpc) {
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                         strncmp(t->url, "https:", 6) == 0
                             ? (long)CURL_HTTP_VERSION_2TLS
                             : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* measured against @grpc/grpc-js: the second export on a reused h2c
         * connection failed in curl 7.88 ("Error in the HTTP2 framing
         * layer"), so each export opens its own; at 512 spans a batch the
         * handshake is noise */
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    return s;
}

void otlp_sender_free(struct otlp_sender *s)
{
    if (!s)
        return;
    curl_easy_cleanup(s->easy);
    curl_slist_free_all(s->headers);
    free(s->body);
    free(s);
}

void otlp_reply_clear(struct otlp_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static int grpc_retryable(int code)
{
    return code == 1 || code == 4 || code == 8 || code == 10 || code == 11 || code == 14 ||
           code == 15;
}

void otlp_send(struct otlp_sender *s, const uint8_t *msg, size_t len, long timeout_ms,
               struct otlp_reply *r)
{
    memset(r, 0, sizeof *r);
    r->grpc_status = -1;
    const struct otlp_target *t = &s->target;
    int grpc = t->protocol == OTLP_GRPC;
    uint8_t *zipped = NULL, *framed = NULL;
    const uint8_t *body = msg;
    size_t blen = len;
    if (t->gzip) {
        zipped = otlp_gzip(msg, len, &blen);
        if (!zipped) {
            r->outcome = OTLP_GIVE_UP;
            snprintf(r->message, sizeof r->message, "cannot gzip the request");
            return;
        }
        body = zipped;
    }
    if (grpc) {
        framed = malloc(blen + 5);
        if (!framed) {
            free(zipped);
            r->outcome = OTLP_GIVE_UP;
            snprintf(r->message, sizeof r->message, "out of memory");
            return;
        }
        framed[0] = t->gzip ? 1 : 0;
        framed[1] = (uint8_t)(blen >> 24);
        framed[2] = (uint8_t)(blen >> 16);
        framed[3] = (uint8_t)(blen >> 8);
        framed[4] = (uint8_t)blen;
        memcpy(framed + 5, body, blen);
        body = framed;
        blen += 5;
    }
    s->len = 0;
    s->grpc_status = -1;
    s->grpc_message[0] = 0;
    s->retry_after = 0;
    s->aborted = 0;
    long ms = t->timeout_ms > 0 ? t->timeout_ms : 10000;
    if (timeout_ms > 0 && timeout_ms < ms)
        ms = timeout_ms;
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    free(zipped);
    free(framed);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->http_status);
    r->retry_after = s->retry_after;
    r->grpc_status = s->grpc_status;
    if (rc != CURLE_OK) {
        /* refused, reset, timed out: the collector may come back */
        r->outcome = OTLP_RETRY;
        if (s->aborted)
            snprintf(r->message, sizeof r->message, "no answer before the export timeout");
        else
            snprintf(r->message, sizeof r->message, "%s",
                     errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return;
    }
    if (grpc) {
        if (r->http_status != 200 && s->grpc_status < 0) {
            /* a proxy's answer, not gRPC's: as HTTP says */
            int again = r->http_status == 429 || r->http_status == 502 || r->http_status == 503 ||
                        r->http_status == 504;
            r->outcome = again ? OTLP_RETRY : OTLP_GIVE_UP;
            snprintf(r->message, sizeof r->message, "HTTP %ld from the gRPC endpoint",
                     r->http_status);
            return;
        }
        if (s->grpc_status != 0) {
            int code = s->grpc_status < 0 ? 2 /* UNKNOWN: no status at all */ : s->grpc_status;
            r->outcome = grpc_retryable(code) ? OTLP_RETRY : OTLP_GIVE_UP;
            snprintf(r->message, sizeof r->message, "gRPC status %d%s%s", code,
                     s->grpc_message[0] ? ": " : "", s->grpc_message);
            return;
        }
        r->outcome = OTLP_DONE;
        if (s->len >= 5 && s->body[0] == 0) {
            size_t n = (size_t)s->body[1] << 24 | (size_t)s->body[2] << 16 |
                       (size_t)s->body[3] << 8 | s->body[4];
            if (n <= s->len - 5 && (r->body = malloc(n ? n : 1))) {
                memcpy(r->body, s->body + 5, n);
                r->body_len = n;
            }
        }
        return;
    }
    if (r->http_status >= 200 && r->http_status < 300) {
        r->outcome = OTLP_DONE;
        if (s->len && (r->body = malloc(s->len))) {
            memcpy(r->body, s->body, s->len);
            r->body_len = s->len;
        }
        return;
    }
    int again = r->http_status == 429 || r->http_status == 502 || r->http_status == 503 ||
                r->http_status == 504;
    r->outcome = again ? OTLP_RETRY : OTLP_GIVE_UP;
    snprintf(r->message, sizeof r->message, "HTTP %ld", r->http_status);
}

/* ------------------------------------------------------------ the batcher */

struct otlp_batcher {
    struct sender s; /* the thread, waits, retries, counts and warning */
    struct otlp_batcher_config c;
    const struct otlp_batch_ops *ops;
    void *owner;
    struct otlp_sender *sender;
    int down; /* the batcher's thread: the last batch was given up on */
};

void otlp_batcher_kick(struct otlp_batcher *b)
{
    sender_kick(&b->s);
}

static void count_failed(struct otlp_batcher *b, size_t n, const char *why)
{
    sender_failed(&b->s, n);
    sender_warn(&b->s, 0, why, n, -1);
}

/* Reads a success's answer: what the collector took and what it refused. */
static void count_done(struct otlp_batcher *b, const struct otlp_reply *r, size_t n)
{
    int64_t rejected = 0;
    char why[256] = "";
    if (r->body_len)
        otlp_parse_export_response(b->ops->response, r->body, r->body_len, &rejected, why,
                                   sizeof why);
    if (rejected < 0 || (size_t)rejected > n)
        rejected = (int64_t)n;
    sender_exported(&b->s, n - (size_t)rejected);
    if (rejected) {
        char text[400];
        snprintf(text, sizeof text, "the collector rejected %lld %s: %s", (long long)rejected,
                 b->ops->items, why[0] ? why : "no reason given");
        count_failed(b, (size_t)rejected, text);
    }
}

/* Sends the n items of the batch, retrying while the collector may take
 * them later and the deadline allows. */
static void export_batch(struct otlp_batcher *b, size_t n, double deadline, int retry)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    if (b->ops->encode(b->owner, n, &msg, &len) != 0) {
        char text[128];
        snprintf(text, sizeof text, "cannot encode %s (out of memory?)", b->ops->items);
        count_failed(b, n, text);
        return;
    }
    sender_begin(&b->s);
    for (;;) {
        struct otlp_reply r;
        double left = deadline - clock_now();
        otlp_send(b->sender, msg, len, left > 0.001 ? (long)(left * 1000) : 1, &r);
        if (r.outcome == OTLP_DONE) {
            count_done(b, &r, n);
            otlp_reply_clear(&r);
            b->down = 0;
            break;
        }
        otlp_reply_clear(&r);
        int answered = r.http_status != 0;
        double wait;
        enum sender_verdict v = sender_retry(&b->s, r.outcome == OTLP_RETRY && retry, answered,
                                             r.retry_after, deadline, &wait);
        if (v == SENDER_AGAIN)
            v = sender_pause(&b->s, wait, answered);
        if (v != SENDER_AGAIN) {
            /* a collector that is away when the run ends gets no more tries
             * (the first one of each batch at most) */
            count_failed(b, n, r.message);
            b->down = r.outcome == OTLP_RETRY;
            break;
        }
    }
    free(msg);
}

/* ------------------------------------------------------------ as sender ops */

static int batch_ready(void *owner)
{
    struct otlp_batcher *b = owner;
    return b->ops->queued(b->owner) >= b->c.batch;
}

static size_t batch_take(void *owner, int stopping)
{
    (void)stopping;
    struct otlp_batcher *b = owner;
    return b->ops->take(b->owner, b->c.batch);
}

static void batch_send(void *owner, size_t n, int stopping)
{
    struct otlp_batcher *b = owner;
    /* at shutdown one deadline for the whole flush; out of time, what is
     * left is counted, not sent */
    double deadline =
        stopping ? sender_deadline(&b->s, NULL) : clock_now() + (double)b->c.timeout_ms / 1000;
    if (stopping && clock_now() >= deadline) {
        sender_failed(&b->s, n);
        return;
    }
    /* a collector that was away when the run ended gets one try per
     * batch, so a run without one does not wait at exit */
    export_batch(b, n, deadline, !(stopping && b->down));
}

static void batch_release(void *owner, size_t n)
{
    struct otlp_batcher *b = owner;
    if (b->ops->release)
        b->ops->release(b->owner, n);
}

static const struct sender_ops batch_ops = {
    .ready = batch_ready, .take = batch_take, .send = batch_send, .release = batch_release};

/* sender_stop's hook: a request already waiting on a silent collector is
 * cut short at the flush's deadline as well. */
static void wake(void *arg, double deadline)
{
    otlp_sender_abort_at(arg, deadline);
}

struct otlp_batcher *otlp_batcher_start(const struct otlp_batcher_config *c,
                                        const struct otlp_batch_ops *ops, void *owner, char *err,
                                        size_t errlen)
{
    struct otlp_batcher *b = calloc(1, sizeof *b);
    if (!b || !(b->sender = otlp_sender_new(c->target))) {
        snprintf(err, errlen, "out of memory starting the %s", ops->thread_name);
        free(b);
        return NULL;
    }
    b->c = *c;
    if (b->c.batch < 1)
        b->c.batch = 1;
    b->ops = ops;
    b->owner = owner;
    struct sender_config sc = {.thread = "otlp-exporter",
                               .what = ops->thread_name,
                               .endpoint = c->target->url,
                               .endpoint_key = "endpoint",
                               .failure = ops->failure,
                               .counts = c->counts,
                               .wake = wake,
                               .wake_arg = b->sender,
                               .delay = (double)c->delay_ms / 1000};
    if (sender_start(&b->s, &sc, &batch_ops, b, err, errlen) != 0) {
        otlp_sender_free(b->sender);
        free(b);
        return NULL;
    }
    return b;
}

void otlp_batcher_stop(struct otlp_batcher *b)
{
    if (!b)
        return;
    sender_stop(&b->s, b->c.timeout_ms);
    otlp_sender_free(b->sender);
    free(b);
}
