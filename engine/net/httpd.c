/* httpd.c - the engine's own HTTP server on libmicrohttpd.
 *
 * httpd_start binds the --listen socket itself (so a bind failure is reported
 * with its real errno and a hint naming the flag) and hands it to one
 * libmicrohttpd epoll thread. Requests are dispatched to the route with the
 * longest matching prefix; /healthz is built in. A response with delay_ms is
 * parked: the connection is suspended and a single timer thread, holding a
 * min-heap of due times, resumes it, so ten thousand slow answers cost ten
 * thousand heap slots and no threads.
 *
 * Threads: httpd_start, httpd_route and httpd_stop belong to the main thread.
 * Handlers run on libmicrohttpd's thread. The route table is append-only: a
 * writer fills a slot under route_lock, then publishes it by a release store
 * of nroutes, so request dispatch reads it without a lock. The timer heap and
 * the stopping flag are shared by handlers and the timer thread under
 * timer_lock. httpd_parse_listen is pure and may be called from anywhere. */
#include "net/httpd.h"
#include "base/thread.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    HTTPD_MAX_ROUTES = 32,
    /* Benchmarks hold thousands of keep-alive connections at once; the
     * process raises RLIMIT_NOFILE to match. */
    HTTPD_CONN_LIMIT = 20000,
    /* Long enough for any benchmark's keep-alive reuse, short enough that
     * abandoned sockets do not pile up. Suspended connections do not age. */
    HTTPD_IDLE_TIMEOUT_S = 60,
    HTTPD_HOST_MAX = 256,
    /* Delayed responses resumed per lock round trip of the timer thread. */
    HTTPD_RESUME_BATCH = 64,
};

static const char default_type[] = "text/plain; charset=utf-8";

struct route {
    char *prefix;
    size_t len;
    httpd_handler fn;
    void *arg;
};

struct delayed {
    uint64_t due_ns; /* CLOCK_MONOTONIC */
    struct MHD_Connection *conn;
};

/* Per request, in libmicrohttpd's con_cls: created when the request has a
 * query string (which libmicrohttpd does not keep raw) or must wait, freed
 * when the request completes. */
struct req_state {
    struct MHD_Response *resp; /* parked while the connection is suspended */
    unsigned status;
    int started; /* the access handler's first call has been seen */
    char query[];
};

struct httpd {
    struct MHD_Daemon *daemon;
    int fd;
    int port;
    char host[HTTPD_HOST_MAX];      /* for bind: brackets removed */
    char shown[HTTPD_HOST_MAX + 2]; /* for httpd_host: as given */

    pthread_mutex_t route_lock;
    struct route routes[HTTPD_MAX_ROUTES];
    atomic_int nroutes;

    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    pthread_t timer_thread;
    int timer_started;
    int stopping;
    struct delayed *heap;
    size_t heap_len, heap_cap;
};

/* --listen parsing */

/* Copies s into out for quoting in an error: printable ASCII only, bounded,
 * so a hostile or binary value cannot mangle the message or the terminal. */
static void shown_value(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *s && n + 4 < outlen && n < 64; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s && n + 4 <= outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static int listen_fail(char *err, size_t errlen, const char *value, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return -1;
    char shown[80];
    shown_value(value ? value : "", shown, sizeof shown);
    int n = snprintf(err, errlen, "--listen %s: ", shown);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int is_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

static int parse_port(const char *p, int *port)
{
    long v = 0;
    size_t n = 0;
    for (; p[n]; n++) {
        if (p[n] < '0' || p[n] > '9' || n >= 5)
            return -1;
        v = v * 10 + (p[n] - '0');
    }
    if (n == 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* An IPv6 literal with an optional zone ("fe80::1%eth0"). */
static int valid_ipv6(const char *s, size_t len)
{
    char addr[INET6_ADDRSTRLEN];
    const char *pct = memchr(s, '%', len);
    size_t alen = pct ? (size_t)(pct - s) : len;
    if (alen == 0 || alen >= sizeof addr)
        return 0;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    struct in6_addr a;
    if (inet_pton(AF_INET6, addr, &a) != 1)
        return 0;
    if (pct) {
        size_t zlen = len - alen - 1;
        if (zlen == 0 || zlen > 32)
            return 0;
        for (size_t i = 0; i < zlen; i++)
            if (!is_host_char(pct[1 + i]))
                return 0;
    }
    return 1;
}

int httpd_parse_listen(const char *s, char *host, size_t hostlen, int *port, char *err,
                       size_t errlen)
{
    const char *h, *portstr;
    size_t hlen;

    if (err && errlen)
        err[0] = '\0';
    if (host && hostlen)
        host[0] = '\0';
    if (port)
        *port = -1;
    if (!host || hostlen == 0 || !port)
        return listen_fail(err, errlen, s, "internal error: no room for the result");
    if (!s || !*s)
        return listen_fail(err, errlen, "",
                           "empty value; use HOST:PORT such as 127.0.0.1:8080, or off");
    if (strcasecmp(s, "off") == 0)
        return 0;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return listen_fail(err, errlen, s,
                               "missing ']'; write an IPv6 address as [::1]:8080");
        h = s + 1;
        hlen = (size_t)(close - h);
        if (close[1] != ':')
            return listen_fail(err, errlen, s,
                               "missing :PORT after ']'; e.g. [::1]:8080 (or [::1]:0 for a "
                               "free port)");
        if (!valid_ipv6(h, hlen))
            return listen_fail(err, errlen, s,
                               "not an IPv6 address inside [...]; e.g. [::1]:8080 or "
                               "[::]:8080 for all interfaces");
        portstr = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            int dummy;
            if (parse_port(s, &dummy) == 0)
                return listen_fail(err, errlen, s,
                                   "missing host; e.g. 127.0.0.1:%s (this machine only) or "
                                   "0.0.0.0:%s (all interfaces)",
                                   s, s);
            return listen_fail(err, errlen, s,
                               "missing :PORT; e.g. 127.0.0.1:8080 (or 127.0.0.1:0 for a "
                               "free port), or off");
        }
        h = s;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return listen_fail(err, errlen, s,
                               "an IPv6 address needs brackets, e.g. [::1]:8080");
        if (hlen == 0)
            return listen_fail(err, errlen, s,
                               "missing host before ':'; use 127.0.0.1:PORT (this machine "
                               "only) or 0.0.0.0:PORT (all interfaces)");
        if (hlen > 253)
            return listen_fail(err, errlen, s, "host name longer than 253 characters");
        for (size_t i = 0; i < hlen; i++)
            if (!is_host_char(h[i]))
                return listen_fail(err, errlen, s,
                                   "the host has a character no address or host name has; "
                                   "e.g. 127.0.0.1:8080 or localhost:8080");
        portstr = colon + 1;
    }

    if (parse_port(portstr, port) != 0) {
        *port = -1;
        return listen_fail(err, errlen, s,
                           "the port must be a number from 0 to 65535 (0 picks a free "
                           "port)");
    }
    if (hlen >= hostlen) {
        *port = -1;
        return listen_fail(err, errlen, s, "host too long");
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

static int bind_listen(httpd *h, const char *value, char *err, size_t errlen)
{
    char portstr[8];
    struct addrinfo hints = {0}, *res = NULL;
    int fd = -1, last = 0;

    snprintf(portstr, sizeof portstr, "%d", h->port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(h->host, portstr, &hints, &res);
    if (rc != 0)
        return listen_fail(err, errlen, value,
                           "cannot resolve host \"%s\" (%s); use an address such as "
                           "127.0.0.1 or [::1]",
                           h->host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));

    /* "localhost" may name both ::1 and 127.0.0.1: the first that binds wins. */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        /* A restarted shoal must not wait out TIME_WAIT on its own port. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);

    if (fd < 0) {
        switch (last) {
        case EADDRINUSE:
            return listen_fail(err, errlen, value,
                               "address already in use; pick another port (--listen %s:0 "
                               "picks a free one) or --listen off",
                               h->shown);
        case EADDRNOTAVAIL:
            return listen_fail(err, errlen, value,
                               "address not available on this machine; use 127.0.0.1 "
                               "(this machine only) or 0.0.0.0 (all interfaces)");
        case EACCES:
            return listen_fail(err, errlen, value,
                               "permission denied; ports below 1024 need privileges, pick "
                               "1024 or above (or %s:0 for a free one)",
                               h->shown);
        default:
            return listen_fail(err, errlen, value, "cannot bind: %s", strerror(last));
        }
    }
    if (listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return listen_fail(err, errlen, value, "cannot listen: %s", strerror(e));
    }

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        int e = errno;
        close(fd);
        return listen_fail(err, errlen, value, "cannot read the bound port: %s", strerror(e));
    }
    h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    h->fd = fd;
    return 0;
}

/* The timer: a binary min-heap of due times, guarded by timer_lock. */

/* Nanoseconds, not milliseconds: rounding must never let a response go out
 * before its full delay. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void heap_swap(struct delayed *a, struct delayed *b)
{
    struct delayed t = *a;
    *a = *b;
    *b = t;
}

static int heap_push(httpd *h, uint64_t due, struct MHD_Connection *conn)
{
    if (h->heap_len == h->heap_cap) {
        size_t cap = h->heap_cap ? h->heap_cap * 2 : 256;
        struct delayed *n = realloc(h->heap, cap * sizeof *n);
        if (!n)
            return -1;
        h->heap = n;
        h->heap_cap = cap;
    }
    size_t i = h->heap_len++;
    h->heap[i] = (struct delayed){due, conn};
    while (i > 0 && h->heap[(i - 1) / 2].due_ns > h->heap[i].due_ns) {
        heap_swap(&h->heap[(i - 1) / 2], &h->heap[i]);
        i = (i - 1) / 2;
    }
    return 0;
}

static struct MHD_Connection *heap_pop(httpd *h)
{
    struct MHD_Connection *top = h->heap[0].conn;
    h->heap[0] = h->heap[--h->heap_len];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->heap_len && h->heap[l].due_ns < h->heap[m].due_ns)
            m = l;
        if (r < h->heap_len && h->heap[r].due_ns < h->heap[m].due_ns)
            m = r;
        if (m == i)
            break;
        heap_swap(&h->heap[i], &h->heap[m]);
        i = m;
    }
    return top;
}

static void *timer_main(void *arg)
{
    httpd *h = arg;
    struct MHD_Connection *batch[HTTPD_RESUME_BATCH];

    pthread_mutex_lock(&h->timer_lock);
    while (!h->stopping) {
        if (h->heap_len == 0) {
            pthread_cond_wait(&h->timer_cond, &h->timer_lock);
            continue;
        }
        uint64_t now = now_ns(), due = h->heap[0].due_ns;
        if (due > now) {
            struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
            pthread_cond_timedwait(&h->timer_cond, &h->timer_lock, &ts);
            continue;
        }
        size_t n = 0;
        while (n < HTTPD_RESUME_BATCH && h->heap_len > 0 && h->heap[0].due_ns <= now)
            batch[n++] = heap_pop(h);
        /* Resuming takes libmicrohttpd's own lock; do it without ours so
         * handlers parking new responses are never held up by it. */
        pthread_mutex_unlock(&h->timer_lock);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(batch[i]);
        pthread_mutex_lock(&h->timer_lock);
    }
    pthread_mutex_unlock(&h->timer_lock);
    return NULL;
}

/* Parks conn until delay_ms from now. Called from the access handler, the
 * only place libmicrohttpd allows a suspend. Returns -1 when the server is
 * stopping or memory is short: the caller then answers at once. */
static int park(httpd *h, struct MHD_Connection *conn, unsigned delay_ms)
{
    int rc = -1;
    pthread_mutex_lock(&h->timer_lock);
    if (h->stopping)
        goto out;
    uint64_t due = now_ns() + (uint64_t)delay_ms * 1000000u;
    if (heap_push(h, due, conn) != 0)
        goto out;
    /* Suspend while still holding the lock, so the timer thread cannot
     * resume a connection that is not suspended yet. */
    MHD_suspend_connection(conn);
    if (h->heap[0].conn == conn)
        pthread_cond_signal(&h->timer_cond);
    rc = 0;
out:
    pthread_mutex_unlock(&h->timer_lock);
    return rc;
}

/* Request handling (libmicrohttpd's thread) */

static const struct route *find_route(httpd *h, const char *path)
{
    const struct route *best = NULL;
    int n = atomic_load_explicit(&h->nroutes, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        const struct route *r = &h->routes[i];
        /* "/x" is a path segment: it takes "/x" and "/x/...", not "/xyz" */
        if ((!best || r->len > best->len) && strncmp(path, r->prefix, r->len) == 0 &&
            (r->prefix[r->len - 1] == '/' || path[r->len] == 0 || path[r->len] == '/'))
            best = r;
    }
    return best;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
                              const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free((void *)body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* con_cls of a request without its own state once its first call is seen. */
static struct req_state first_call;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    httpd *h = cls;
    struct req_state *st = *con_cls;

    if (!st) {
        /* First call, headers only. Answering now would make libmicrohttpd
         * close the connection (it cannot know no body follows), so only
         * note that the request has started. */
        *con_cls = &first_call;
        return MHD_YES;
    }
    if (st == &first_call) {
        st = NULL;
    } else if (!st->started) {
        st->started = 1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* bodies are not for us; answered at the end */
        return MHD_YES;
    }
    if (st && st->resp) {
        /* Called again after the timer resumed us: send what was parked. */
        struct MHD_Response *r = st->resp;
        st->resp = NULL;
        enum MHD_Result ret = MHD_queue_response(conn, st->status, r);
        MHD_destroy_response(r);
        return ret;
    }

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "method not allowed; use GET or HEAD\n";
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, default_type, msg, sizeof msg - 1,
                      MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/healthz") == 0)
        return answer(conn, MHD_HTTP_OK, default_type, "ok\n", 3, MHD_RESPMEM_PERSISTENT);

    const struct route *route = find_route(h, url);
    if (!route) {
        static const char msg[] = "not found\n";
        return answer(conn, MHD_HTTP_NOT_FOUND, default_type, msg, sizeof msg - 1,
                      MHD_RESPMEM_PERSISTENT);
    }

    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_ACCEPT);
    struct httpd_request req = {
        .method = method,
        .path = url,
        .query = st ? st->query : "",
        .accept = accept ? accept : "",
    };
    struct httpd_response resp = {.status = 200, .content_type = default_type};
    if (route->fn(route->arg, &req, &resp) != 0 || resp.status < 100 || resp.status > 999 ||
        (!resp.body && resp.len)) {
        static const char msg[] = "internal error\n";
        free(resp.body);
        return answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, default_type, msg, sizeof msg - 1,
                      MHD_RESPMEM_PERSISTENT);
    }
    const char *type = resp.content_type ? resp.content_type : default_type;
    if (!resp.body)
        return answer(conn, (unsigned)resp.status, type, "", 0, MHD_RESPMEM_PERSISTENT);
    if (resp.delay_ms == 0)
        return answer(conn, (unsigned)resp.status, type, resp.body, resp.len,
                      MHD_RESPMEM_MUST_FREE);

    struct MHD_Response *r =
        MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(resp.body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (!st) {
        st = calloc(1, sizeof *st + 1);
        if (st) {
            st->started = 1;
            *con_cls = st;
        }
    }
    if (st) {
        st->resp = r;
        st->status = (unsigned)resp.status;
        if (park(h, conn, resp.delay_ms) == 0)
            return MHD_YES;
        st->resp = NULL;
    }
    /* Could not park it: late is better than never, answer now. */
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Keeps the raw query string: libmicrohttpd only offers it decoded and split. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const char *q = strchr(uri, '?');
    if (!q)
        return NULL;
    size_t n = strlen(q + 1);
    struct req_state *st = malloc(sizeof *st + n + 1);
    if (!st)
        return NULL; /* the handler then sees an empty query */
    st->resp = NULL;
    st->status = 0;
    st->started = 0;
    memcpy(st->query, q + 1, n + 1);
    return st;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_state *st = *con_cls;
    if (!st || st == &first_call)
        return;
    if (st->resp)
        MHD_destroy_response(st->resp);
    free(st);
    *con_cls = NULL;
}

/* Public API */

int httpd_start(const char *listen, httpd **out, char *err, size_t errlen)
{
    char host[HTTPD_HOST_MAX];
    int port;
    httpd *h = NULL;

    *out = NULL;
    if (httpd_parse_listen(listen, host, sizeof host, &port, err, errlen) != 0)
        return -1;
    if (port < 0)
        return 0;

    h = calloc(1, sizeof *h);
    if (!h) {
        listen_fail(err, errlen, listen, "out of memory");
        return -1;
    }
    h->fd = -1;
    h->port = port;
    snprintf(h->host, sizeof h->host, "%s", host);
    snprintf(h->shown, sizeof h->shown, strchr(host, ':') ? "[%s]" : "%s", host);
    pthread_mutex_init(&h->route_lock, NULL);
    pthread_mutex_init(&h->timer_lock, NULL);
    thread_cond_init(&h->timer_cond); /* due_ns is on CLOCK_MONOTONIC */

    if (bind_listen(h, listen, err, errlen) != 0)
        goto fail;
    if (thread_start(&h->timer_thread, "httpd-timer", 0, timer_main, h) != 0) {
        listen_fail(err, errlen, listen, "cannot start the timer thread");
        goto fail;
    }
    h->timer_started = 1;

    h->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, h,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTPD_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)HTTPD_IDLE_TIMEOUT_S, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->daemon) {
        listen_fail(err, errlen, listen,
                    "the HTTP server did not start (libmicrohttpd refused the socket); "
                    "try --listen off");
        goto fail;
    }
    *out = h;
    return 0;

fail:
    httpd_stop(h);
    return -1;
}

int httpd_route(httpd *h, const char *prefix, httpd_handler fn, void *arg)
{
    int rc = -1;
    if (!h || !prefix || prefix[0] != '/' || !fn)
        return -1;
    pthread_mutex_lock(&h->route_lock);
    int n = atomic_load_explicit(&h->nroutes, memory_order_relaxed);
    if (n >= HTTPD_MAX_ROUTES)
        goto out;
    struct route *r = &h->routes[n];
    r->prefix = strdup(prefix);
    if (!r->prefix)
        goto out;
    r->len = strlen(prefix);
    r->fn = fn;
    r->arg = arg;
    atomic_store_explicit(&h->nroutes, n + 1, memory_order_release);
    rc = 0;
out:
    pthread_mutex_unlock(&h->route_lock);
    return rc;
}

int httpd_port(const httpd *h)
{
    return h ? h->port : -1;
}

const char *httpd_host(const httpd *h)
{
    return h ? h->shown : "";
}

void httpd_stop(httpd *h)
{
    if (!h)
        return;

    /* libmicrohttpd must not be stopped with connections suspended, so take
     * the parked ones away from the timer (no new ones park once stopping is
     * set) and release them; they answer at once. */
    pthread_mutex_lock(&h->timer_lock);
    h->stopping = 1;
    pthread_cond_signal(&h->timer_cond);
    pthread_mutex_unlock(&h->timer_lock);
    if (h->timer_started)
        pthread_join(h->timer_thread, NULL);
    for (size_t i = 0; i < h->heap_len; i++)
        MHD_resume_connection(h->heap[i].conn);
    h->heap_len = 0;

    if (h->daemon)
        MHD_stop_daemon(h->daemon); /* closes the listen socket too */
    else if (h->fd >= 0)
        close(h->fd);

    int n = atomic_load(&h->nroutes);
    for (int i = 0; i < n; i++)
        free(h->routes[i].prefix);
    free(h->heap);
    pthread_cond_destroy(&h->timer_cond);
    pthread_mutex_destroy(&h->timer_lock);
    pthread_mutex_destroy(&h->route_lock);
    free(h);
}
