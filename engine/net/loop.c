/* loop.c - epoll, curl's sockets and timer, and a timer heap (loop.h). */
#include "net/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"

/* ------------------------------------------------------------ timer heap */

static int heap_less(const struct loop *l, int a, int b)
{
    return l->when[l->heap[a]] < l->when[l->heap[b]];
}

static void heap_swap(struct loop *l, int a, int b)
{
    int t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->pos[l->heap[a]] = a;
    l->pos[l->heap[b]] = b;
}

static void heap_fix(struct loop *l, int i)
{
    while (i > 0 && heap_less(l, i, (i - 1) / 2)) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        int a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && heap_less(l, a, m))
            m = a;
        if (b < l->nheap && heap_less(l, b, m))
            m = b;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
}

void loop_timer_set(struct loop *l, int id, double t)
{
    l->when[id] = t;
    if (t == 0) {
        if (l->pos[id] >= 0) {
            int i = l->pos[id], last = l->nheap - 1;
            if (i != last)
                heap_swap(l, i, last);
            l->nheap--;
            l->pos[id] = -1;
            if (i < l->nheap)
                heap_fix(l, i);
        }
        return;
    }
    if (l->pos[id] < 0) {
        l->pos[id] = l->nheap;
        l->heap[l->nheap++] = id;
    }
    heap_fix(l, l->pos[id]);
}

/* ------------------------------------------------------------ curl glue */

/* The epoll set follows what curl wants with as few epoll_ctl calls as
 * possible. A keep-alive connection goes idle after every response (curl
 * says REMOVE) and is wanted again by the next request (curl says IN): for
 * sockets the loop's transfers opened themselves (fetch.c's open/close
 * callbacks report them), the registration is kept across the idle time and
 * only marked unwanted, which saves two system calls per request. An event
 * on an unwanted socket (the server closed an idle connection) removes it
 * then. Other descriptors (the resolver's) are added and removed eagerly,
 * since curl may close them without telling us. */
#define FD_OURS 0x1u     /* opened through loop_socket_opened */
#define FD_IN_EPOLL 0x2u /* registered, with the events below */
#define FD_WANTED 0x4u   /* curl wants events on it now */
#define FD_EVENTS_SHIFT 8

static uint32_t *fd_state(struct loop *l, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= l->fdcap) {
        size_t cap = l->fdcap ? l->fdcap : 1024;
        while (cap <= (size_t)fd)
            cap *= 2;
        uint32_t *t = realloc(l->fds, cap * sizeof *t);
        if (!t)
            return NULL;
        memset(t + l->fdcap, 0, (cap - l->fdcap) * sizeof *t);
        l->fds = t;
        l->fdcap = cap;
    }
    return &l->fds[fd];
}

void loop_socket_opened(struct loop *l, int fd)
{
    uint32_t *st = fd_state(l, fd);
    if (st)
        *st = FD_OURS; /* a new socket: nothing registered under this number */
}

void loop_socket_closed(struct loop *l, int fd)
{
    if (fd >= 0 && (size_t)fd < l->fdcap)
        l->fds[fd] = 0; /* closing removed it from epoll */
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
    struct loop *l = userp;
    uint32_t *st = fd_state(l, fd);
    (void)easy;
    (void)sockp;
    if (!st)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        if ((*st & FD_IN_EPOLL) && !(*st & FD_OURS)) {
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            *st = 0;
        }
        *st &= ~FD_WANTED;
        return 0;
    }
    uint32_t want = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if ((*st & FD_IN_EPOLL) && (*st >> FD_EVENTS_SHIFT) == want) {
        *st |= FD_WANTED; /* unchanged: no syscall */
        return 0;
    }
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int op = (*st & FD_IN_EPOLL) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev) != 0) {
        /* our view was stale: try the other operation */
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(l->epfd, op, fd, &ev) != 0)
            return -1;
    }
    *st = (*st & FD_OURS) | FD_IN_EPOLL | FD_WANTED | (want << FD_EVENTS_SHIFT);
    return 0;
}

/* An event on a socket curl no longer watches: drop it from the set. */
static int unwanted(struct loop *l, int fd)
{
    uint32_t *st = (size_t)fd < l->fdcap ? &l->fds[fd] : NULL;
    if (st && (*st & FD_WANTED))
        return 0;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (st)
        *st &= FD_OURS;
    return 1;
}

static int on_timer(CURLM *multi, long ms, void *userp)
{
    struct loop *l = userp;
    (void)multi;
    l->curl_due = ms < 0 ? 0 : clock_now() + (double)ms / 1000.0;
    return 0;
}

void loop_kick(struct loop *l)
{
    int running;
    if (l->curl_due && l->curl_due <= clock_now()) {
        l->curl_due = 0;
        curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

int loop_add(struct loop *l, CURL *easy, char *err, size_t errlen)
{
    CURLMcode mc = curl_multi_add_handle(l->multi, easy);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "cannot start the request: %s", curl_multi_strerror(mc));
        return -1;
    }
    return 0;
}

void loop_remove(struct loop *l, CURL *easy)
{
    curl_multi_remove_handle(l->multi, easy);
}

CURL *loop_next_done(struct loop *l, CURLcode *result)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        *result = msg->data.result;
        curl_multi_remove_handle(l->multi, easy);
        return easy;
    }
    return NULL;
}

int loop_poll(struct loop *l, int timeout_ms)
{
    return epoll_wait(l->epfd, l->evs, 256, timeout_ms);
}

void loop_dispatch(struct loop *l, int n)
{
    for (int i = 0; i < n; i++) {
        const struct epoll_event *ev = &l->evs[i];
        int fd = ev->data.fd;
        if (fd == l->evfd) {
            uint64_t v;
            ssize_t rd = read(l->evfd, &v, sizeof v);
            (void)rd;
            atomic_store(&l->wake_pending, 0);
            continue;
        }
        if (unwanted(l, fd))
            continue;
        int flags = 0, running;
        if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            flags |= CURL_CSELECT_IN;
        if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            flags |= CURL_CSELECT_OUT;
        if (ev->events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(l->multi, fd, flags, &running);
    }
}

void loop_wake(struct loop *l)
{
    if (atomic_exchange(&l->wake_pending, 1))
        return;
    uint64_t one = 1;
    ssize_t wr = write(l->evfd, &one, sizeof one);
    (void)wr;
}

/* ------------------------------------------------------------ lifecycle */

int loop_init(struct loop *l, int ntimers, long maxconnects, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->epfd = l->evfd = -1;
    l->ntimers = ntimers;
    l->heap = calloc((size_t)ntimers, sizeof *l->heap);
    l->pos = calloc((size_t)ntimers, sizeof *l->pos);
    l->when = calloc((size_t)ntimers, sizeof *l->when);
    if (!l->heap || !l->pos || !l->when)
        goto oom;
    for (int i = 0; i < ntimers; i++)
        l->pos[i] = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->evfd < 0) {
        snprintf(err, errlen, "cannot create the worker's event loop: %s", strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->evfd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev);
    l->multi = curl_multi_init();
    if (!l->multi)
        goto oom;
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, maxconnects);
    return 0;
oom:
    snprintf(err, errlen, "out of memory creating an event loop");
    return -1;
}

void loop_free(struct loop *l)
{
    if (l->multi)
        curl_multi_cleanup(l->multi);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->evfd >= 0)
        close(l->evfd);
    free(l->heap);
    free(l->pos);
    free(l->when);
    free(l->fds);
    l->multi = NULL;
    l->epfd = l->evfd = -1;
}
