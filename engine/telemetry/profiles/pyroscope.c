/* pyroscope.c - pushing each window's pprof to Pyroscope's /ingest (see
 * pyroscope.h).
 *
 * The request is the one Pyroscope's Go client makes (grafana/pyroscope-go,
 * upstream/remote): POST {url}/ingest?name=<app>{service_name=<app>,
 * service_instance_id=<instance>}
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
 * The sender's loop, the retries and counts are the sender framework's
 * (sender.c), which runs this file's window ops; the POST and its cut at
 * the shutdown deadline are push.c's.
 *
 * Threads: pyroscope_submit runs on the profiler thread; the sender thread
 * is started by pyroscope_new and joined by pyroscope_shutdown. They share,
 * under `push.s.lock`: the queue of windows, its length, the stop request
 * and its deadline; a window queued kicks the sender. The sender holds the
 * lock only to take a window or read the stop request, never across I/O,
 * so submit waits at most for a pointer move. Everything else (the URL
 * buffer, `down`, push's handles and warned flags) belongs to the sender
 * thread. */
#include "telemetry/profiles/pyroscope.h"
#include "base/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/metrics/metrics.h"
#include "telemetry/send/push.h"

#define PYRO_QUEUE 4        /* windows waiting behind the one being sent */
#define PYRO_RETRY_FOR 30.0 /* seconds a window is retried during the run */

struct window {
    uint8_t *gz;
    size_t len;
    uint64_t from_ns, until_ns;
    double since; /* monotonic seconds it was submitted */
    struct window *next;
};

struct pyroscope {
    struct push push; /* its lock guards the queue too */
    char *ingest;     /* scheme://[user:pw@]host[:port][/path]/ingest */
    char *name;       /* the name parameter, URL-encoded */
    /* under push.s.lock */
    struct window *head, *tail;
    size_t queued;
    /* sender thread only */
    struct window *current; /* the one being sent */
    char *url;              /* the ingest URL with one window's query */
    size_t url_cap;
    int down; /* at shutdown the backend did not answer: send no more */
};

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
        *w = (struct window){gz, len, from_ns, until_ns, clock_now(), NULL};
        pthread_mutex_lock(&p->push.s.lock);
        int room = !p->push.s.stopping && p->queued < PYRO_QUEUE;
        if (room) {
            if (p->tail)
                p->tail->next = w;
            else
                p->head = w;
            p->tail = w;
            p->queued++;
            sender_kick_locked(&p->push.s);
        }
        pthread_mutex_unlock(&p->push.s.lock);
        if (room)
            return;
        free(w);
    }
    free(gz);
    sender_dropped(&p->push.s, 1);
}

/* ------------------------------------------------------------ the sender */

static void report_drops(struct pyroscope *p)
{
    sender_warn_drops(&p->push.s, "pyroscope profiles dropped: the queue was full", "queue",
                      PYRO_QUEUE);
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
    if (p->down || sender_late(&p->push.s)) {
        metric_add(p->push.s.c.counts.dropped, 1);
        return;
    }
    CURL *e = p->push.easy;
    curl_mime *mime = curl_mime_init(e);
    curl_mimepart *part = mime ? curl_mime_addpart(mime) : NULL;
    if (!part || window_url(p, w) != 0 || curl_mime_name(part, "profile") != CURLE_OK ||
        curl_mime_filename(part, "profile.pprof") != CURLE_OK ||
        curl_mime_type(part, "application/octet-stream") != CURLE_OK ||
        curl_mime_data(part, (const char *)w->gz, w->len) != CURLE_OK) {
        curl_mime_free(mime);
        push_fail(&p->push, 1, "out of memory");
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, p->url);
    curl_easy_setopt(e, CURLOPT_MIMEPOST, mime);
    p->down = push_send(&p->push, 1, w->since + PYRO_RETRY_FOR) == PUSH_UNANSWERED;
    curl_easy_setopt(e, CURLOPT_MIMEPOST, NULL);
    curl_mime_free(mime);
}

static double window_due(void *owner)
{
    struct pyroscope *p = owner;
    pthread_mutex_lock(&p->push.s.lock);
    double due = p->head ? 0 : INFINITY;
    pthread_mutex_unlock(&p->push.s.lock);
    return due;
}

static int window_ready(void *owner)
{
    return window_due(owner) == 0;
}

static size_t window_take(void *owner, int stopping)
{
    (void)stopping;
    struct pyroscope *p = owner;
    pthread_mutex_lock(&p->push.s.lock);
    struct window *w = p->head;
    if (w) {
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
    }
    p->current = w;
    pthread_mutex_unlock(&p->push.s.lock);
    return w ? 1 : 0;
}

static void window_send(void *owner, size_t n, int stopping)
{
    (void)n;
    (void)stopping;
    struct pyroscope *p = owner;
    deliver(p, p->current);
    report_drops(p);
}

static void window_release(void *owner, size_t n)
{
    (void)n;
    struct pyroscope *p = owner;
    window_free(p->current);
    p->current = NULL;
}

static const struct sender_ops window_ops = {.due = window_due,
                                             .ready = window_ready,
                                             .take = window_take,
                                             .send = window_send,
                                             .release = window_release};

/* ------------------------------------------------------------ life */

/* The ingest URL for --pyroscope's value: http(s), a host, no query; the
 * path (if any) gets /ingest appended, as the Go client does, unless it
 * ends in /ingest already. malloc'd, or NULL with err filled. */
static char *ingest_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *path = NULL, *query = NULL, *full = NULL, *out = NULL;
    char *newpath = NULL;
    if (!u) {
        snprintf(err, errlen, "--pyroscope: out of memory");
        return NULL;
    }
    if (push_url_ok(u, url) != 0) {
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
    curl_free(path);
    curl_free(query);
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

/* s with what Pyroscope does not take in a name or a label value (it has
 * no escapes) as '_': [A-Za-z0-9_./-] stay. Caller frees; NULL on OOM. */
static char *name_chars(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '/' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[n] = 0;
    return out;
}

/* name=app{service_name=app[,service_instance_id=id]}, URL-encoded: the
 * instance under the label name Pyroscope and Loki give service.instance.id. */
static char *name_param(CURL *e, const char *service, const char *instance)
{
    char *app = name_chars(service && service[0] ? service : "shoal");
    char *inst = instance && instance[0] ? name_chars(instance) : NULL;
    char *name = NULL, *out = NULL;
    if (!app || (instance && instance[0] && !inst))
        goto done;
    size_t cap = 2 * strlen(app) + (inst ? strlen(inst) : 0) + 64;
    if (!(name = malloc(cap)))
        goto done;
    if (inst)
        snprintf(name, cap, "%s{service_name=%s,service_instance_id=%s}", app, app, inst);
    else
        snprintf(name, cap, "%s{service_name=%s}", app, app);
    char *esc = curl_easy_escape(e, name, 0);
    if (esc)
        out = strdup(esc);
    curl_free(esc);
done:
    free(app);
    free(inst);
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
    push_free(&p->push);
    free(p->url);
    free(p->ingest);
    free(p->name);
    free(p);
}

struct pyroscope *pyroscope_new(const struct pyroscope_config *c, struct registry *m, char *err,
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
    struct push_config pc = {.flag = "--pyroscope",
                             .url = p->ingest,
                             .signal = "profiles",
                             .failure = "pyroscope push failed",
                             .timeout_ms = c->timeout_ms};
    if (push_init(&p->push, &pc, m, err, errlen) != 0)
        goto fail;
    p->name = name_param(p->push.easy, c->service, c->instance);
    if (!p->name) {
        snprintf(err, errlen, "--pyroscope: out of memory");
        goto fail;
    }
    if (push_start(&p->push, &window_ops, p, err, errlen) != 0)
        goto fail;
    return p;
fail:
    free_sender(p);
    return NULL;
}

void pyroscope_shutdown(struct pyroscope *p, long timeout_ms)
{
    if (!p)
        return;
    push_stop(&p->push, timeout_ms);
    report_drops(p); /* the sender's last word: its thread has ended */
    /* the sender counted every window it took; none is left, as submit
     * refuses once stopping is set */
    size_t left = 0;
    for (struct window *w = p->head; w; w = w->next)
        left++;
    metric_add(p->push.s.c.counts.dropped, (double)left);
    free_sender(p);
}

static void sink_submit(void *sink, uint8_t *gz, size_t len, uint64_t from_ns, uint64_t until_ns)
{
    pyroscope_submit(sink, gz, len, from_ns, until_ns);
}

static void sink_shutdown(void *sink, long timeout_ms)
{
    pyroscope_shutdown(sink, timeout_ms);
}

const struct profile_sink_ops pyroscope_sink_ops = {sink_submit, sink_shutdown};
