/* sessions.c - named cookie jars and the proxy rotation (sessions.h). */
#include "core/sessions.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"

struct jar {
    CURLSH *share;
    pthread_mutex_t lock; /* curl's lock around the jar's data */
};

struct sessions {
    pthread_mutex_t mu; /* the table */
    struct strtab jars; /* -> struct jar */
};

static void jar_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    (void)h, (void)data, (void)access;
    pthread_mutex_lock(&((struct jar *)arg)->lock);
}

static void jar_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h, (void)data;
    pthread_mutex_unlock(&((struct jar *)arg)->lock);
}

struct sessions *sessions_new(void)
{
    struct sessions *s = calloc(1, sizeof *s);
    if (!s || strtab_init(&s->jars, sizeof(struct jar)) != 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void drop_jar(void *value)
{
    struct jar *j = value;
    if (j->share) {
        curl_share_cleanup(j->share);
        pthread_mutex_destroy(&j->lock);
    }
}

void sessions_free(struct sessions *s)
{
    if (!s)
        return;
    strtab_free(&s->jars, drop_jar);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

CURLSH *sessions_get(struct sessions *s, const char *name, size_t len)
{
    pthread_mutex_lock(&s->mu);
    struct jar *j = strtab_get(&s->jars, name, len, 1);
    if (j && !j->share && (j->share = curl_share_init())) {
        pthread_mutex_init(&j->lock, NULL);
        curl_share_setopt(j->share, CURLSHOPT_LOCKFUNC, jar_lock);
        curl_share_setopt(j->share, CURLSHOPT_UNLOCKFUNC, jar_unlock);
        curl_share_setopt(j->share, CURLSHOPT_USERDATA, j);
        curl_share_setopt(j->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    }
    CURLSH *share = j ? j->share : NULL;
    pthread_mutex_unlock(&s->mu);
    return share;
}

struct proxies {
    char **urls;
    int n;
    pthread_mutex_t mu;
    struct strtab turns; /* host -> unsigned: its next proxy */
};

struct proxies *proxies_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--proxy-list: cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct proxies *p = calloc(1, sizeof *p);
    if (!p || strtab_init(&p->turns, sizeof(unsigned)) != 0) {
        free(p);
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    char line[2048];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line + strspn(line, " \t");
        s[strcspn(s, " \t\r\n")] = 0;
        if (!*s || *s == '#')
            continue;
        if (!strstr(s, "://")) {
            snprintf(err, errlen,
                     "--proxy-list: %s line %d: '%s' is not a proxy URL (write it as "
                     "http://host:port or socks5://host:port)",
                     path, lineno, s);
            goto fail;
        }
        char **urls = realloc(p->urls, (size_t)(p->n + 1) * sizeof *urls);
        if (!urls || !(urls[p->n] = strdup(s))) {
            if (urls)
                p->urls = urls;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        p->urls = urls;
        p->n++;
    }
    fclose(f);
    if (p->n == 0) {
        snprintf(err, errlen, "--proxy-list: %s names no proxy (one URL a line)", path);
        proxies_free(p);
        return NULL;
    }
    return p;
fail:
    fclose(f);
    proxies_free(p);
    return NULL;
}

void proxies_free(struct proxies *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        free(p->urls[i]);
    free(p->urls);
    strtab_free(&p->turns, NULL);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

const char *proxies_pick(struct proxies *p, const char *host, size_t len)
{
    pthread_mutex_lock(&p->mu);
    unsigned *turn = strtab_get(&p->turns, host, len, 1);
    unsigned i = turn ? (*turn)++ : 0;
    pthread_mutex_unlock(&p->mu);
    return p->urls[i % (unsigned)p->n];
}

int proxies_count(const struct proxies *p)
{
    return p ? p->n : 0;
}
