/* fetch.c - curl easy handles set up for shoal's requests, and their results.
 *
 * Every option that is the same for all requests is set once in fetch_init;
 * fetch_prepare touches only what differs. A handle that was used for
 * anything beyond a plain GET is reset first, since curl keeps options
 * between transfers. Bodies and headers land in per-transfer buffers that
 * survive between requests (up to KEEP_BYTES), so a steady crawl does not
 * allocate for I/O. One worker thread owns each transfer. */
#include "net/fetch.h"

#include "net/loop.h"

#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEEP_BYTES (256 * 1024)

/* Appends; past max bytes of capacity the buffer does not double. */
static int buf_append(struct buf *b, const char *p, size_t n, size_t max)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > max + 1 && b->len + n + 1 <= max + 1)
            cap = max + 1; /* the last growth need not double past the cap */
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static void buf_trim(struct buf *b)
{
    b->len = 0;
    if (b->cap > KEEP_BYTES) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (t->body.len + len > t->max_body) {
        t->too_big = 1;
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    return buf_append(&t->body, p, len, t->max_body) ? 0 : len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    /* A new status line starts a new response (redirect, 100-continue): keep
     * only the final response's headers. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        t->headers.len = 0;
    return buf_append(&t->headers, p, len, t->max_body) ? 0 : len;
}

/* With no proxy variable set, tell curl so: it otherwise reads the
 * environment on every request. */
static _Atomic int no_proxy_env = -1;

static int proxy_env_unset(void)
{
    if (no_proxy_env < 0) {
        static const char *vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                     "all_proxy",  "ALL_PROXY"};
        int unset = 1;
        for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
            if (getenv(vars[i]))
                unset = 0;
        no_proxy_env = unset; /* every thread would compute the same */
    }
    return no_proxy_env;
}

static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct transfer *t = arg;
    (void)purpose;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd >= 0 && t->loop)
        loop_socket_opened(t->loop, fd);
    return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int on_close(void *arg, curl_socket_t fd)
{
    struct transfer *t = arg;
    if (t->loop)
        loop_socket_closed(t->loop, fd);
    return close(fd);
}

static void set_common(struct transfer *t)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t->owner);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_USERAGENT,
                     t->user_agent ? t->user_agent : "shoal/" SHOAL_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (proxy_env_unset())
        curl_easy_setopt(e, CURLOPT_PROXY, "");
}

int fetch_init(struct transfer *t, void *owner, struct loop *loop, size_t max_body,
               const char *user_agent)
{
    memset(t, 0, sizeof *t);
    t->user_agent = user_agent;
    t->max_body = max_body ? max_body : FETCH_MAX_BODY;
    t->owner = owner;
    t->loop = loop;
    t->easy = curl_easy_init();
    if (!t->easy)
        return -1;
    set_common(t);
    return 0;
}

void fetch_cleanup(struct transfer *t)
{
    if (!t->easy)
        return;
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->req_headers);
    curl_slist_free_all(t->tp);
    free(t->body.data);
    free(t->headers.data);
    memset(t, 0, sizeof *t);
}

int fetch_prepare(struct transfer *t, const struct http_request *req, char *err, size_t errlen)
{
    CURL *e = t->easy;
    int plain = strcmp(req->method, "GET") == 0 && req->nheaders == 0 && !req->body &&
                req->follow && !req->insecure && !req->max_redirects && !req->proxy &&
                !req->share;
    if (t->dirty) {
        /* curl_easy_reset keeps the list of cookie files (a leak per
         * reset): NULL empties it first */
        if (t->cookies)
            curl_easy_setopt(e, CURLOPT_COOKIEFILE, NULL);
        t->cookies = 0;
        curl_easy_reset(e);
        set_common(t);
        t->timeout_set = 0;
        t->pipewait = 0;
        t->uncompressed = 0;
        t->tp_set = 0;
        t->dirty = 0;
    }
    buf_trim(&t->body); /* a huge last body is not kept for the next request */
    buf_trim(&t->headers);
    t->too_big = 0;
    t->error[0] = 0;
    t->max_redirects = req->max_redirects ? req->max_redirects : FETCH_MAX_REDIRECTS;
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK) {
        snprintf(err, errlen, "cannot use URL '%s'", req->url);
        return -1;
    }
    /* A timeout makes curl keep a timer per transfer; jobs' requests usually
     * need none, since the worker cancels them at the attempt's deadline. */
    long ms = req->timeout > 0 ? (long)(req->timeout * 1000 + 0.5) : 0;
    if (ms > 0 || t->timeout_set)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 0L);
    t->timeout_set = ms > 0;
    /* HTTPS may turn out to be HTTP/2: wait for a connection that may
     * multiplex rather than open one per request during the first
     * handshake. Plain http is HTTP/1.1, where waiting would only delay. */
    int https = strncasecmp(req->url, "https:", 6) == 0;
    if (https != t->pipewait) {
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, (long)https);
        t->pipewait = https;
    }
    if ((req->compressed ? 0 : 1) != t->uncompressed) {
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, req->compressed ? "" : NULL);
        t->uncompressed = !req->compressed;
    }
    /* traceparent has a fixed length: one list node, its text rewritten
     * for each request, keeps a traced GET on the plain path */
    if (req->traceparent) {
        if (!t->tp) {
            char line[96];
            snprintf(line, sizeof line, "traceparent: %s", req->traceparent);
            t->tp = curl_slist_append(NULL, line);
        } else if (strlen(t->tp->data) == 13 + strlen(req->traceparent)) {
            memcpy(t->tp->data + 13, req->traceparent, strlen(req->traceparent));
        }
    }
    if (plain) {
        int want = req->traceparent && t->tp;
        if (want != t->tp_set) {
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, want ? t->tp : NULL);
            t->tp_set = want;
        }
        return 0;
    }

    t->dirty = 1;
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    curl_slist_free_all(t->req_headers);
    t->req_headers = NULL;
    for (int i = 0; i < req->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(t->req_headers, req->headers[i]);
        if (!l) {
            snprintf(err, errlen, "out of memory building request headers");
            return -1;
        }
        t->req_headers = l;
    }
    if (req->traceparent && t->tp) {
        struct curl_slist *l = curl_slist_append(t->req_headers, t->tp->data);
        if (l)
            t->req_headers = l;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->req_headers); /* NULL clears a traceparent */
    t->tp_set = 0;
    if (!req->follow)
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (req->max_redirects)
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)req->max_redirects);
    if (req->proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, req->proxy);
    if (req->share) { /* its cookie jar: the share's */
        curl_easy_setopt(e, CURLOPT_SHARE, (CURLSH *)req->share);
        curl_easy_setopt(e, CURLOPT_COOKIEFILE, ""); /* the cookie engine on, no file */
        t->cookies = 1;
    }
    if (req->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return 0;
}

void fetch_result(struct transfer *t, CURLcode code, struct http_result *res)
{
    memset(res, 0, sizeof *res);
    curl_off_t us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us);
    res->elapsed = (double)us / 1e6;
    if (code != CURLE_OK) {
        if (t->too_big || code == CURLE_FILESIZE_EXCEEDED)
            snprintf(t->error, sizeof t->error,
                     "response body larger than %zu MiB (--max-body; raise it to accept "
                     "bigger ones; not retried)",
                     t->max_body >> 20);
        else if (code == CURLE_TOO_MANY_REDIRECTS)
            snprintf(t->error, sizeof t->error,
                     "redirected more than %ld times: a redirect loop? (not retried)",
                     t->max_redirects);
        else if (!t->error[0])
            snprintf(t->error, sizeof t->error, "%s", curl_easy_strerror(code));
        res->error = t->error;
        return;
    }
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res->status);
    char *url = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    res->url = url ? url : "";
    res->body = t->body.data ? t->body.data : "";
    res->body_len = t->body.len;
    res->headers = t->headers.data ? t->headers.data : "";
    res->headers_len = t->headers.len;
}

void fetch_release(struct transfer *t)
{
    buf_trim(&t->body);
    buf_trim(&t->headers);
    if (t->req_headers) {
        curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(t->req_headers);
        t->req_headers = NULL;
    }
}
