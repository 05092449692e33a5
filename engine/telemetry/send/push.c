/* push.c - the plain HTTP transport: one POST at a time from a push
 * backend's sender thread (see push.h).
 *
 * The sender drives its easy handle through a multi handle of its own so
 * that push_stop can wake it (curl_multi_wakeup) and cut a request at the
 * deadline instead of waiting out the request timeout. Waits, retries and
 * counts are the sender framework's (sender.c).
 *
 * Threads: push_stop is the only call made off the sender thread. */
#include "telemetry/send/push.h"
#include "base/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "telemetry/metrics/metrics.h"


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
        p->retry_after = sender_retry_after(v);
    }
    return len;
}

/* sender_stop's hook: a request in flight ends at the deadline (post
 * polls it), a wait in curl_multi_poll at once. */
static void wake(void *arg, double deadline)
{
    (void)deadline;
    struct push *p = arg;
    curl_multi_wakeup(p->multi);
}

int push_init(struct push *p, const struct push_config *c, struct registry *m, char *err,
              size_t errlen)
{
    p->sc = (struct sender_config){.thread = "push-sender",
                                   .what = c->flag,
                                   .endpoint = c->url,
                                   .endpoint_key = "url",
                                   .failure = c->failure,
                                   .count = c->count,
                                   .counts = metrics_telemetry_counts(m, c->signal),
                                   .wake = wake,
                                   .wake_arg = p};
    p->s.c = p->sc;
    long timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 10000;
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
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", c->flag);
    return -1;
}

int push_start(struct push *p, const struct sender_ops *ops, void *owner, char *err,
               size_t errlen)
{
    return sender_start(&p->s, &p->sc, ops, owner, err, errlen);
}

void push_stop(struct push *p, long timeout_ms)
{
    sender_stop(&p->s, timeout_ms);
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
        double left = sender_deadline(&p->s, NULL) - clock_now();
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

enum push_outcome push_send(struct push *p, size_t n, double retry_until)
{
    sender_begin(&p->s);
    for (;;) {
        char why[400];
        long status = post(p, why, sizeof why);
        if (status >= 200 && status < 300) {
            sender_exported(&p->s, n);
            return PUSH_SENT;
        }
        int again = status == 0 || status == 429 || status >= 500;
        double wait;
        enum sender_verdict v =
            sender_retry(&p->s, again, status != 0, p->retry_after, retry_until, &wait);
        sender_warn(&p->s, status, why, n, v == SENDER_AGAIN);
        if (v == SENDER_AGAIN)
            v = sender_pause(&p->s, wait, status != 0);
        if (v != SENDER_AGAIN) {
            sender_failed(&p->s, n);
            return v == SENDER_UNANSWERED ? PUSH_UNANSWERED : PUSH_FAILED;
        }
    }
}

void push_fail(struct push *p, size_t n, const char *why)
{
    sender_failed(&p->s, n);
    sender_warn(&p->s, 0, why, n, 0);
}
