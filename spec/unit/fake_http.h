/* fake_http.h - a fake backend for the push sinks' unit tests (Loki,
 * Pyroscope), and a capture of what the sinks log.
 *
 * The fake is one thread serving one request per connection (it answers
 * Connection: close). The i-th request gets status[i], or `ok` past the
 * script, with Retry-After when retry_after[i] is set; a refusal's body is
 * "no thanks". Each request's target, Content-Type, Content-Encoding,
 * body (as sent, NUL-terminated) and arrival time are kept, under `lock`
 * while the fake runs. Header-only: each test gets its own copy. */
#ifndef SHOAL_FAKE_HTTP_H
#define SHOAL_FAKE_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FAKE_MAXREQ 256
#define FAKE_MAXSCRIPT 16

struct fake_req {
    char target[512];
    char ctype[160], cenc[32];
    uint8_t *body;
    size_t len;
    double at;
};

struct fake {
    int fd, port;
    pthread_t thread;
    int ok, status[FAKE_MAXSCRIPT], retry_after[FAKE_MAXSCRIPT], nscript;
    pthread_mutex_t lock;
    int n; /* requests seen; n and r under lock */
    struct fake_req r[FAKE_MAXREQ];
};

static inline double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline void fake_header(const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = 0;
    size_t n = strlen(name);
    for (const char *p = head; (p = strstr(p, "\r\n")); p += 2) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)strcspn(v, "\r\n"), v);
            return;
        }
    }
}

static inline void fake_serve(struct fake *f, int c)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap), *end = NULL;
    while (!end) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(c, buf + len, cap - len - 1);
        if (r <= 0)
            goto out;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end - buf) + 4;
    char cl[32];
    end[2] = 0; /* the headers end with their last CRLF, for fake_header */
    fake_header(buf, "Content-Length", cl, sizeof cl);
    size_t want = head + (size_t)atol(cl);
    while (len < want) {
        if (want + 1 > cap)
            buf = realloc(buf, cap = want + 1);
        ssize_t r = read(c, buf + len, want - len);
        if (r <= 0)
            goto out;
        len += (size_t)r;
    }
    pthread_mutex_lock(&f->lock);
    int i = f->n < FAKE_MAXREQ ? f->n : FAKE_MAXREQ - 1;
    f->n++;
    struct fake_req *q = &f->r[i];
    sscanf(buf, "POST %511s", q->target);
    fake_header(buf, "Content-Type", q->ctype, sizeof q->ctype);
    fake_header(buf, "Content-Encoding", q->cenc, sizeof q->cenc);
    free(q->body);
    q->len = want - head;
    q->body = malloc(q->len + 1);
    memcpy(q->body, buf + head, q->len);
    q->body[q->len] = 0;
    q->at = mono();
    int status = i < f->nscript ? f->status[i] : f->ok;
    int ra = i < f->nscript ? f->retry_after[i] : 0;
    pthread_mutex_unlock(&f->lock);
    char reply[256];
    const char *text = status / 100 == 2 ? "" : "no thanks\n";
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n", status,
                     strlen(text));
    if (ra)
        n += snprintf(reply + n, sizeof reply - (size_t)n, "Retry-After: %d\r\n", ra);
    n += snprintf(reply + n, sizeof reply - (size_t)n, "\r\n%s", text);
    ssize_t w = write(c, reply, (size_t)n);
    (void)w;
out:
    free(buf);
    close(c);
}

static inline void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            break; /* shut down */
        fake_serve(f, c);
    }
    return NULL;
}

/* A socket listening on a free loopback port. Nothing accepts on it by
 * itself: the kernel completes connections and holds them, the way a
 * backend that hangs would. */
static inline int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 64);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Answers ok (such as 204) but for the first n requests, which get
 * status[i] (and Retry-After: retry_after[i] when that is not NULL and
 * nonzero). n is at most FAKE_MAXSCRIPT. */
static inline struct fake *fake_start(int ok, const int *status, const int *retry_after, int n)
{
    struct fake *f = calloc(1, sizeof *f);
    f->fd = listen_any(&f->port);
    f->ok = ok;
    for (int i = 0; i < n; i++) {
        f->status[i] = status[i];
        f->retry_after[i] = retry_after ? retry_after[i] : 0;
    }
    f->nscript = n;
    pthread_mutex_init(&f->lock, NULL);
    pthread_create(&f->thread, NULL, fake_main, f);
    return f;
}

static inline int fake_count(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->n;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* Whether n requests came within secs. */
static inline int wait_requests(struct fake *f, int n, double secs)
{
    double until = mono() + secs;
    while (fake_count(f) < n && mono() < until)
        sleep_ms(5);
    return fake_count(f) >= n;
}

static inline void fake_stop(struct fake *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->fd);
    for (int i = 0; i < FAKE_MAXREQ; i++)
        free(f->r[i].body);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ------------------------------------------------------------ what was logged
 *
 * With no logger, the sinks' records go to stderr: capture_end gives back
 * (malloc'd) what was written since capture_begin, and echoes it, so a
 * failed CHECK meanwhile is still seen. */

static FILE *cap_file;
static int cap_saved = -1;

static inline void capture_begin(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    cap_saved = dup(2);
    dup2(fileno(cap_file), 2);
}

static inline char *capture_end(void)
{
    fflush(stderr);
    dup2(cap_saved, 2);
    close(cap_saved);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    ssize_t r;
    while (len < cap - 1 &&
           (r = pread(fileno(cap_file), text + len, cap - 1 - len, (off_t)len)) > 0)
        len += (size_t)r;
    text[len] = 0;
    fclose(cap_file);
    ssize_t w = write(2, text, len);
    (void)w;
    return text;
}

/* Occurrences of needle in hay (NULL: none). */
static inline int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; hay && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#endif
