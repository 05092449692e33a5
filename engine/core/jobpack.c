/* jobpack.c - a job as one string (see jobpack.h). Packed by the process,
 * not by Redis's Lua: there, turning each number into text costs more
 * than the command the job goes to. */
#include "core/jobpack.h"

#include "base/numtext.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jobpack_make(struct jobpack *j, const struct jobpack_fields *f)
{
    char head[5 * NUMTEXT_MAX];
    size_t h = numtext_i64(head, f->attempt);
    head[h++] = ',';
    h += numtext_i64(head + h, f->priority);
    head[h++] = ',';
    h += numtext_i64(head + h, f->depth);
    head[h++] = ',';
    h += numtext_u64(head + h, f->group_len);
    head[h++] = ',';
    h += numtext_u64(head + h, f->len);
    head[h++] = ';';
    size_t n = h + f->group_len + f->len + f->ctx_len;
    j->len = n;
    j->p = n <= sizeof j->buf ? j->buf : malloc(n);
    if (!j->p)
        return -1;
    char *w = j->p;
    memcpy(w, head, h);
    w += h;
    if (f->group_len)
        memcpy(w, f->group, f->group_len);
    w += f->group_len;
    if (f->len)
        memcpy(w, f->data, f->len);
    w += f->len;
    if (f->ctx_len)
        memcpy(w, f->ctx, f->ctx_len);
    return 0;
}

void jobpack_free(struct jobpack *j)
{
    if (j->p != j->buf)
        free(j->p);
    j->p = NULL;
}

/* A decimal number at *p ('-' first allowed if neg) ended by the byte
 * stop, which is passed; -1 if there is none or it leaves lo..hi. */
static int number(const char **p, const char *end, char stop, long long lo, long long hi,
                  long long *out)
{
    const char *s = *p;
    int minus = lo < 0 && s < end && *s == '-';
    s += minus;
    const char *digits = s;
    long long v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (hi + 1LL) / 10) /* past any bound below: stop before overflow */
            return -1;
        v = v * 10 + (*s++ - '0');
    }
    if (s == digits || s >= end || *s != stop)
        return -1;
    v = minus ? -v : v;
    if (v < lo || v > hi)
        return -1;
    *out = v;
    *p = s + 1;
    return 0;
}

int jobpack_read(const char *s, size_t n, struct jobpack_fields *f)
{
    memset(f, 0, sizeof *f);
    f->attempt = 1;
    f->group = f->data = f->ctx = "";
    if (n == 0)
        return 0;
    const char *p = s, *end = s + n;
    long long a, prio, depth, gl, dl;
    if (number(&p, end, ',', 1, INT_MAX, &a) < 0 ||
        number(&p, end, ',', INT_MIN, INT_MAX, &prio) < 0 ||
        number(&p, end, ',', INT_MIN, INT_MAX, &depth) < 0 ||
        number(&p, end, ',', 0, LLONG_MAX / 4, &gl) < 0 ||
        number(&p, end, ';', 0, LLONG_MAX / 4, &dl) < 0 || gl > end - p || dl > end - p - gl)
        return -1;
    f->attempt = (int)a;
    f->priority = (int)prio;
    f->depth = (int)depth;
    f->group = p;
    f->group_len = (size_t)gl;
    f->data = p + gl;
    f->len = (size_t)dl;
    f->ctx = p + gl + dl;
    f->ctx_len = (size_t)(end - p - gl - dl);
    return 0;
}
