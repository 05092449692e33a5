/* push.c - one HTTP POST at a time from a push exporter's sender thread
 * (see push.h).
 *
 * The sender drives its easy handle through a multi handle of its own so
 * that push_stop can wake it (curl_multi_wakeup) and cut a request at the
 * deadline instead of waiting out the request timeout. Between tries the
 * delay doubles from 0.5 s to PUSH_BACKOFF_MAX, or is what Retry-After
 * says; a backend that does not answer once shutdown has begun is not
 * waited for.
 *
 * Threads: push_stop and push_dropped are the only calls made off the
 * sender thread; they touch `stopping` and `deadline` under `lock`, and
 * the `dropped_any` atomic. */
#include "telemetry/send/push.h"
#include "base/clock.h"
#include "base/thread.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "telemetry/logs/logger.h"
#include "base/logtext.h"
#include "telemetry/metrics/metrics.h"

#define PUSH_BACKOFF_MAX 8.0  /* seconds between two tries at most */
#define PUSH_RETRY_AFTER 30.0 /* the longest Retry-After taken as given */

/* ------------------------------------------------------------ life */

static size_t on_reply(char *d, size_t size, size_t n, void *arg)
{
    struct push *p = arg;
    size_t len = size * n, room = sizeof p->reply - 1 - p->reply_len;
    size_t k = len < room ? len : room;
    memcpy(p->reply + p->reply_len, d, k);
    p->reply_len += k;
    p->reply[p->reply_len] = 0;
    return len;
}

static size_t on_header(char *d, size_t size, size_t n, void *arg)
{
    struct push *p = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp(d, name, sizeof name - 1) == 0) {
        char v[32];
        size_t k = len - (sizeof name - 1);
        k = k < sizeof v - 1 ? k : sizeof v - 1;
        memcpy(v, d + sizeof name - 1, k);
        v[k] = 0;
        double secs = atof(v); /* an HTTP-date reads as 0: the backoff is used */
        if (secs > 0)
            p->retry_after = secs < PUSH_RETRY_AFTER ? secs : PUSH_RETRY_AFTER;
    }
    return len;
}

int push_init(struct push *p, const struct push_config *c, struct registry *m, char *err,
              size_t errlen)
{
    p->c = *c;
    if (p->c.timeout_ms <= 0)
        p->c.timeout_ms = 10000;
    /* the logger redacts too, but not what it writes once it has stopped */
    logtext_redact(p->shown, sizeof p->shown, c->url, strlen(c->url));
    struct telemetry_counts tc = metrics_telemetry_counts(m, c->signal);
    p->exported = tc.exported;
    p->dropped = tc.dropped;
    p->failed = tc.failed;
    static const char *const ours[] = {"Expect:", /* no 100-continue round trip */
                                       "User-Agent: shoal/" SHOAL_VERSION, NULL};
    const char *const *lists[2] = {c->headers, ours};
    for (int i = 0; i < 2; i++) {
        for (const char *const *h = lists[i]; h && *h; h++) {
            struct curl_slist *more = curl_slist_append(p->headers, *h);
            if (!more)
                goto oom;
            p->headers = more;
        }
    }
    p->easy = curl_easy_init();
    p->multi = curl_multi_init();
    if (!p->easy || !p->multi)
        goto oom;
    CURL *e = p->easy;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->c.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->c.timeout_ms);
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", c->flag);
    return -1;
}

/* The sender thread: sampled like every thread of the engine when
 * profiling is on. */
static void *sender_thread(void *arg)
{
    struct push *p = arg;
    thread_enter("push-sender", -1);
    thread_background();
    void *r = p->fn(p->fn_arg);
    thread_exit();
    return r;
}

int push_start(struct push *p, void *(*fn)(void *), void *arg, char *err, size_t errlen)
{
    p->fn = fn;
    p->fn_arg = arg;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, sender_thread, p) != 0) {
        snprintf(err, errlen, "%s: cannot start the sender thread", p->c.flag);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    return 0;
}

void push_stop(struct push *p, long timeout_ms)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    p->deadline = clock_now() + (double)(timeout_ms > 0 ? timeout_ms : 0) / 1000;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

void push_free(struct push *p)
{
    if (p->multi)
        curl_multi_cleanup(p->multi);
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->headers);
    p->multi = NULL;
    p->easy = NULL;
    p->headers = NULL;
}

int push_url_ok(CURLU *u, const char *url)
{
    char *scheme = NULL, *host = NULL;
    int ok = url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0];
    curl_free(scheme);
    curl_free(host);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------ the deadline */

double push_deadline(struct push *p, int *stopping)
{
    pthread_mutex_lock(&p->lock);
    int s = p->stopping;
    double at = s ? p->deadline : INFINITY;
    pthread_mutex_unlock(&p->lock);
    if (stopping)
        *stopping = s;
    return at;
}

int push_late(struct push *p)
{
    return clock_now() >= push_deadline(p, NULL);
}

void push_nap(struct push *p, double until)
{
    pthread_mutex_lock(&p->lock);
    int was = p->stopping;
    if (was && p->deadline < until)
        until = p->deadline;
    while (p->stopping == was && clock_now() < until) {
        struct timespec ts;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------ sending */

/* One POST of the prepared request. The HTTP status, or 0 with why filled
 * when there was no answer (refused, timed out, cut at the deadline). */
static long post(struct push *p, char *why, size_t whylen)
{
    CURL *e = p->easy;
    char errbuf[CURL_ERROR_SIZE] = "";
    p->reply_len = 0;
    p->reply[0] = 0;
    p->retry_after = 0;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_multi_add_handle(p->multi, e);
    int running = 1, cut = 0;
    CURLcode rc = CURLE_OK;
    for (;;) {
        curl_multi_perform(p->multi, &running);
        if (!running)
            break;
        double left = push_deadline(p, NULL) - clock_now();
        if (left <= 0) {
            cut = 1;
            break;
        }
        int ms = left < 1 ? (int)(left * 1000) + 1 : 1000;
        curl_multi_poll(p->multi, NULL, 0, ms, NULL);
    }
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read(p->multi, &q)))
        if (m->msg == CURLMSG_DONE)
            rc = m->data.result;
    curl_multi_remove_handle(p->multi, e);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (cut) {
        snprintf(why, whylen, "cut off at the shutdown deadline");
        return 0;
    }
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    /* the backends say why in a line of text */
    p->reply[strcspn(p->reply, "\r\n")] = 0;
    snprintf(why, whylen, "HTTP %ld%s%s", status, p->reply[0] ? ": " : "", p->reply);
    return status;
}

/* Through the process's logger, once per sink: a backend that is down
 * would otherwise say so for every batch. */
static void warn_once(struct push *p, long status, const char *why, size_t n, int retrying)
{
    if (p->warned)
        return;
    p->warned = 1;
    struct log_record r;
    log_begin(&r, LOG_WARN, p->c.failure);
    log_cstr(&r, "url", p->shown);
    if (status)
        log_int(&r, "status", status);
    log_cstr(&r, "error", why);
    if (p->c.count)
        log_int(&r, p->c.count, (int64_t)n);
    log_bool(&r, "retrying", retrying);
    log_emit_global(&r);
}

enum push_outcome push_send(struct push *p, size_t n, double retry_until)
{
    double backoff = 0.5;
    for (;;) {
        char why[400];
        long status = post(p, why, sizeof why);
        if (status >= 200 && status < 300) {
            metric_add(p->exported, (double)n);
            return PUSH_SENT;
        }
        int again = status == 0 || status == 429 || status >= 500;
        double wait = p->retry_after > 0 ? p->retry_after : backoff;
        backoff = backoff * 2 < PUSH_BACKOFF_MAX ? backoff * 2 : PUSH_BACKOFF_MAX;
        int stopping;
        double limit = push_deadline(p, &stopping);
        if (!stopping)
            limit = retry_until;
        /* a backend that does not answer at shutdown is not waited for */
        int unanswered = stopping && status == 0;
        int give_up = !again || clock_now() + wait > limit || unanswered;
        warn_once(p, status, why, n, !give_up);
        if (give_up) {
            metric_add(p->failed, (double)n);
            return unanswered ? PUSH_UNANSWERED : PUSH_FAILED;
        }
        push_nap(p, clock_now() + wait);
        if (status == 0 && push_deadline(p, NULL) < INFINITY) {
            metric_add(p->failed, (double)n);
            return PUSH_UNANSWERED;
        }
    }
}

void push_fail(struct push *p, size_t n, const char *why)
{
    metric_add(p->failed, (double)n);
    warn_once(p, 0, why, n, 0);
}

void push_dropped(struct push *p, size_t n)
{
    metric_add(p->dropped, (double)n);
    atomic_store_explicit(&p->dropped_any, 1, memory_order_relaxed);
}

void push_warn_drops(struct push *p, const char *msg, const char *key, int64_t value)
{
    if (p->warned_drop || !atomic_load_explicit(&p->dropped_any, memory_order_relaxed))
        return;
    p->warned_drop = 1;
    struct log_record r;
    log_begin(&r, LOG_WARN, msg);
    log_cstr(&r, "url", p->shown);
    log_int(&r, key, value);
    log_emit_global(&r);
}
