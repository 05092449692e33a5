/* pyroscope.c - pushing each window's pprof to Pyroscope's /ingest (see
 * pyroscope.h).
 *
 * The request is the one Pyroscope's Go client makes (grafana/pyroscope-go,
 * upstream/remote): POST {url}/ingest?name=<app>{service_name=<app>}
 * &from=<s>&until=<s>&spyName=shoal with a multipart/form-data body whose
 * part "profile" is the gzip'd pprof. There is no format parameter on
 * purpose: Pyroscope's handler checks format=pprof before it looks for a
 * form, and with it would read the whole form as the pprof. from and until
 * are Unix seconds (Pyroscope tells seconds from ns by the number of
 * digits); until is rounded up so a window is never empty. Success is a
 * 2xx; 429, 5xx and no answer are retried with backoff (honouring
 * Retry-After) for PYRO_RETRY_FOR seconds after the window was submitted;
 * any other status fails the window.
 *
 * Threads: pyroscope_submit runs on the profiler thread; the sender thread
 * is started by pyroscope_new and joined by pyroscope_shutdown. They share,
 * under `lock`: the queue of windows, its length, the stop request and its
 * deadline; `cond` wakes the sender (a window queued, shutdown). The
 * sender holds the lock only to take a window or read the stop request,
 * never across I/O, so submit waits at most for a pointer move.
 * `dropped_any` is an atomic the sender reads to warn. Everything else (the
 * curl handles, the warned flags) belongs to the sender thread. The
 * sender drives its easy handle through a multi handle of its own so that
 * shutdown can wake it (curl_multi_wakeup) and cut a request at the
 * deadline. */
#include "pyroscope.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "logger.h"
#include "logtext.h"
#include "metrics.h"
#include "runmetrics.h"

#define PYRO_QUEUE 4         /* windows waiting behind the one being sent */
#define PYRO_RETRY_FOR 30.0  /* seconds a window is retried during the run */
#define PYRO_BACKOFF_MAX 8.0 /* seconds between two tries at most */

struct window {
    uint8_t *gz;
    size_t len;
    uint64_t from_ns, until_ns;
    double since; /* monotonic seconds it was submitted */
    struct window *next;
};

struct pyroscope {
    char *ingest;    /* scheme://[user:pw@]host[:port][/path]/ingest */
    char *name;      /* the name parameter, URL-encoded */
    char shown[512]; /* the URL for messages, credentials redacted */
    long timeout_ms;
    struct metric_series *exported, *dropped, *failed;

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    struct window *head, *tail;
    size_t queued;
    int stopping;
    double deadline; /* once stopping */
    _Atomic int dropped_any;

    /* sender thread only */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char *url; /* the ingest URL with one window's query */
    size_t url_cap;
    char reply[256];
    size_t reply_len;
    double retry_after;
    int warned, warned_drop;
    int down; /* at shutdown the backend did not answer: send no more */
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void window_free(struct window *w)
{
    if (w) {
        free(w->gz);
        free(w);
    }
}

/* ------------------------------------------------------------ the profiler side */

void pyroscope_submit(struct pyroscope *p, uint8_t *gz, size_t len, uint64_t from_ns,
                      uint64_t until_ns)
{
    if (!p) {
        free(gz);
        return;
    }
    struct window *w = malloc(sizeof *w);
    if (w) {
        *w = (struct window){gz, len, from_ns, until_ns, mono(), NULL};
        pthread_mutex_lock(&p->lock);
        int room = !p->stopping && p->queued < PYRO_QUEUE;
        if (room) {
            if (p->tail)
                p->tail->next = w;
            else
                p->head = w;
            p->tail = w;
            p->queued++;
            pthread_cond_signal(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        if (room)
            return;
        free(w);
    }
    free(gz);
    metric_add(p->dropped, 1);
    atomic_store_explicit(&p->dropped_any, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ the sender */

static size_t on_reply(char *d, size_t size, size_t n, void *arg)
{
    struct pyroscope *p = arg;
    size_t len = size * n, room = sizeof p->reply - 1 - p->reply_len;
    size_t k = len < room ? len : room;
    memcpy(p->reply + p->reply_len, d, k);
    p->reply_len += k;
    p->reply[p->reply_len] = 0;
    return len;
}

static size_t on_header(char *d, size_t size, size_t n, void *arg)
{
    struct pyroscope *p = arg;
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
            p->retry_after = secs < 30 ? secs : 30;
    }
    return len;
}

/* When the request in flight must end: the shutdown deadline, or never. */
static double cut_at(struct pyroscope *p, int *stopping)
{
    pthread_mutex_lock(&p->lock);
    int s = p->stopping;
    double at = s ? p->deadline : INFINITY;
    pthread_mutex_unlock(&p->lock);
    if (stopping)
        *stopping = s;
    return at;
}

/* One POST of the prepared request. The HTTP status, or 0 with why filled
 * when there was no answer (refused, timed out, cut at the deadline). */
static long post(struct pyroscope *p, char *why, size_t whylen)
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
        double left = cut_at(p, NULL) - mono();
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
    p->reply[strcspn(p->reply, "\r\n")] = 0;
    snprintf(why, whylen, "HTTP %ld%s%s", status, p->reply[0] ? ": " : "", p->reply);
    return status;
}

static void report_failure(const char *url, long status, const char *why, int retrying)
{
    struct log_record r;
    log_begin(&r, LOG_WARN, "pyroscope push failed");
    log_cstr(&r, "url", url);
    if (status)
        log_int(&r, "status", status);
    log_cstr(&r, "error", why);
    log_bool(&r, "retrying", retrying);
    log_emit_global(&r);
}

static void report_drops(struct pyroscope *p)
{
    if (p->warned_drop || !atomic_load_explicit(&p->dropped_any, memory_order_relaxed))
        return;
    p->warned_drop = 1;
    struct log_record r;
    log_begin(&r, LOG_WARN, "pyroscope profiles dropped: the queue was full");
    log_cstr(&r, "url", p->shown);
    log_int(&r, "queue", PYRO_QUEUE);
    log_emit_global(&r);
}

/* Waits until `until` or until shutdown begins (when it had not). */
static void nap(struct pyroscope *p, double until)
{
    pthread_mutex_lock(&p->lock);
    int was = p->stopping;
    if (was && p->deadline < until)
        until = p->deadline;
    while (p->stopping == was && mono() < until) {
        struct timespec ts;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
}

/* The ingest URL for w in p->url. -1 on OOM. */
static int window_url(struct pyroscope *p, const struct window *w)
{
    unsigned long long from = w->from_ns / 1000000000u;
    unsigned long long until = (w->until_ns + 999999999u) / 1000000000u;
    if (until < from)
        until = from;
    size_t need = strlen(p->ingest) + strlen(p->name) + 96;
    if (need > p->url_cap) {
        char *u = realloc(p->url, need);
        if (!u)
            return -1;
        p->url = u;
        p->url_cap = need;
    }
    snprintf(p->url, p->url_cap, "%s?name=%s&from=%llu&until=%llu&spyName=shoal", p->ingest,
             p->name, from, until);
    return 0;
}

/* Sends one window, retrying what may succeed later within its bound, and
 * counts it. */
static void deliver(struct pyroscope *p, struct window *w)
{
    int stopping;
    double deadline = cut_at(p, &stopping);
    if (stopping && (p->down || mono() >= deadline)) {
        metric_add(p->dropped, 1);
        return;
    }
    curl_mime *mime = curl_mime_init(p->easy);
    curl_mimepart *part = mime ? curl_mime_addpart(mime) : NULL;
    if (!part || window_url(p, w) != 0 || curl_mime_name(part, "profile") != CURLE_OK ||
        curl_mime_filename(part, "profile.pprof") != CURLE_OK ||
        curl_mime_type(part, "application/octet-stream") != CURLE_OK ||
        curl_mime_data(part, (const char *)w->gz, w->len) != CURLE_OK) {
        curl_mime_free(mime);
        metric_add(p->failed, 1);
        if (!p->warned) {
            p->warned = 1;
            report_failure(p->shown, 0, "out of memory", 0);
        }
        return;
    }
    curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
    curl_easy_setopt(p->easy, CURLOPT_MIMEPOST, mime);
    double backoff = 0.5;
    for (;;) {
        char why[400];
        long status = post(p, why, sizeof why);
        if (status >= 200 && status < 300) {
            metric_add(p->exported, 1);
            break;
        }
        int again = status == 0 || status == 429 || status >= 500;
        double wait = p->retry_after > 0 ? p->retry_after : backoff;
        backoff = backoff * 2 < PYRO_BACKOFF_MAX ? backoff * 2 : PYRO_BACKOFF_MAX;
        double limit = cut_at(p, &stopping);
        if (!stopping)
            limit = w->since + PYRO_RETRY_FOR;
        /* a backend that does not answer at shutdown is not waited for */
        int give_up = !again || mono() + wait > limit || (stopping && status == 0);
        if (!p->warned) {
            p->warned = 1;
            report_failure(p->shown, status, why, !give_up);
        }
        if (give_up) {
            metric_add(p->failed, 1);
            p->down = stopping && status == 0;
            break;
        }
        nap(p, mono() + wait);
        if (status == 0 && cut_at(p, &stopping) < INFINITY) {
            metric_add(p->failed, 1);
            p->down = 1;
            break;
        }
    }
    curl_easy_setopt(p->easy, CURLOPT_MIMEPOST, NULL);
    curl_mime_free(mime);
}

static void *sender_main(void *arg)
{
    struct pyroscope *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct window *w = p->head;
        if (w) {
            p->head = w->next;
            if (!p->head)
                p->tail = NULL;
            p->queued--;
            pthread_mutex_unlock(&p->lock);
            deliver(p, w);
            window_free(w);
            report_drops(p);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (p->stopping)
            break;
        pthread_cond_wait(&p->cond, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    report_drops(p);
    return NULL;
}

/* ------------------------------------------------------------ life */

/* The ingest URL for --pyroscope's value: http(s), a host, no query; the
 * path (if any) gets /ingest appended, as the Go client does, unless it
 * ends in /ingest already. malloc'd, or NULL with err filled. */
static char *ingest_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *full = NULL, *out = NULL;
    char *newpath = NULL;
    if (!u) {
        snprintf(err, errlen, "--pyroscope: out of memory");
        return NULL;
    }
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(err, errlen,
                 "--pyroscope: want an http:// or https:// URL with a host, such as "
                 "http://localhost:4040 (profiles go to its /ingest)");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query && query[0]) {
        snprintf(err, errlen,
                 "--pyroscope: the URL may not have a query (?%s): shoal sets the parameters of "
                 "/ingest itself",
                 query);
        goto done;
    }
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        path = NULL;
    size_t n = path ? strlen(path) : 0;
    while (n && path[n - 1] == '/')
        n--;
    newpath = malloc(n + sizeof "/ingest");
    if (!newpath) {
        snprintf(err, errlen, "--pyroscope: out of memory");
        goto done;
    }
    memcpy(newpath, path ? path : "", n);
    newpath[n] = 0;
    if (!(n >= 7 && strcmp(newpath + n - 7, "/ingest") == 0))
        strcat(newpath, "/ingest");
    if (curl_url_set(u, CURLUPART_PATH, newpath, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK || !(out = strdup(full)))
        snprintf(err, errlen, "--pyroscope: out of memory");
done:
    free(newpath);
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

/* name=app{service_name=app}, URL-encoded. Pyroscope takes [A-Za-z0-9_./-]
 * in an application name and has no escapes in the label set: anything
 * else becomes '_'. */
static char *name_param(CURL *e, const char *service)
{
    const char *s = service && service[0] ? service : "shoal";
    size_t n = strlen(s);
    char *app = malloc(n + 1), *name = malloc(2 * n + 32), *out = NULL;
    if (!app || !name)
        goto done;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '/' || c == '-';
        app[i] = ok ? c : '_';
    }
    app[n] = 0;
    snprintf(name, 2 * n + 32, "%s{service_name=%s}", app, app);
    char *esc = curl_easy_escape(e, name, 0);
    if (esc)
        out = strdup(esc);
    curl_free(esc);
done:
    free(app);
    free(name);
    return out;
}

static void free_sender(struct pyroscope *p)
{
    struct window *w = p->head;
    while (w) {
        struct window *next = w->next;
        window_free(w);
        w = next;
    }
    if (p->multi)
        curl_multi_cleanup(p->multi);
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->headers);
    free(p->url);
    free(p->ingest);
    free(p->name);
    free(p);
}

struct pyroscope *pyroscope_new(const struct pyroscope_config *c, struct runmetrics *m, char *err,
                                size_t errlen)
{
    struct pyroscope *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "--pyroscope: out of memory");
        return NULL;
    }
    p->ingest = ingest_url(c->url, err, errlen);
    if (!p->ingest)
        goto fail;
    logtext_redact(p->shown, sizeof p->shown, p->ingest, strlen(p->ingest));
    p->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 10000;
    if (m) {
        const char *sig[1] = {"profiles"};
        p->exported = metrics_series(m->tel_exported, sig, NULL, 1);
        p->dropped = metrics_series(m->tel_dropped, sig, NULL, 1);
        p->failed = metrics_series(m->tel_failed, sig, NULL, 1);
    }
    p->easy = curl_easy_init();
    p->multi = curl_multi_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (h)
        h = curl_slist_append(h, "User-Agent: shoal/" SHOAL_VERSION);
    p->headers = h;
    p->name = p->easy ? name_param(p->easy, c->service) : NULL;
    if (!p->easy || !p->multi || !h || !p->name) {
        snprintf(err, errlen, "--pyroscope: out of memory");
        goto fail;
    }
    CURL *e = p->easy;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);

    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, sender_main, p) != 0) {
        snprintf(err, errlen, "--pyroscope: cannot start the sender thread");
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    return p;
fail:
    free_sender(p);
    return NULL;
}

void pyroscope_shutdown(struct pyroscope *p, long timeout_ms)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    p->deadline = mono() + (double)(timeout_ms > 0 ? timeout_ms : 0) / 1000;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    pthread_join(p->thread, NULL);
    /* the sender counted every window it took; none is left, as submit
     * refuses once stopping is set */
    size_t left = 0;
    for (struct window *w = p->head; w; w = w->next)
        left++;
    metric_add(p->dropped, (double)left);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free_sender(p);
}
