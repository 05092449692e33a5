/* otel.c - reading the OpenTelemetry settings (see otel.h). */
#include "otel.h"

#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *std_getenv(const char *name)
{
    return getenv(name);
}

static const char *env_or(otel_getenv_fn env, const char *specific, const char *general,
                          const char **which)
{
    const char *v = env(specific);
    *which = specific;
    if (!v || !*v) {
        v = env(general);
        *which = general;
    }
    return v && *v ? v : NULL;
}

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Copies s[0..n) trimmed and percent-decoded into out (cap bytes). -1 if
 * it does not fit. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            c = hexv(s[i + 1]) << 4 | hexv(s[i + 2]);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

int otel_parse_pairs(const char *list, const char *var,
                     int (*fn)(const char *key, const char *value, void *arg), void *arg,
                     char *err, size_t errlen)
{
    const char *p = list;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        char key[256], value[4096];
        if (n == 0 || strspn(p, " \t") == n) { /* an empty item: skipped */
            p += n + (p[n] == ',');
            continue;
        }
        if (!eq || decode(p, (size_t)(eq - p), key, sizeof key) != 0 || !key[0] ||
            decode(eq + 1, n - (size_t)(eq - p) - 1, value, sizeof value) != 0) {
            snprintf(err, errlen,
                     "%s: '%.*s' is not key=value (the list is key=value pairs separated by "
                     "commas; percent-encode commas inside values)",
                     var, (int)(n > 80 ? 80 : n), p);
            return -1;
        }
        if (fn(key, value, arg) != 0) {
            snprintf(err, errlen, "%s: out of memory", var);
            return -1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static int add_header(const char *key, const char *value, void *arg)
{
    struct otlp_target *t = arg;
    if (t->nheaders == OTEL_MAX_HEADERS)
        return 0;
    size_t n = strlen(key) + strlen(value) + 3;
    char *h = malloc(n);
    if (!h)
        return -1;
    snprintf(h, n, "%s: %s", key, value);
    /* a header value cannot hold a line break */
    for (char *c = h; *c; c++)
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    t->headers[t->nheaders++] = h;
    return 0;
}

static int add_resource(const char *key, const char *value, void *arg)
{
    struct attrs *a = arg;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->a[i].key, key) == 0) {
            /* a later value for the same key wins */
            char *v = strdup(value);
            if (!v)
                return -1;
            if (a->a[i].value_owned)
                free(a->a[i].v.s);
            a->a[i].v.s = v;
            a->a[i].value_owned = 1;
            return 0;
        }
    return attrs_str(a, key, value, strlen(value));
}

static int has_attr(const struct attrs *a, const char *key)
{
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->a[i].key, key) == 0)
            return 1;
    return 0;
}

static int parse_ms(otel_getenv_fn env, const char *var, const char *general, long def, long *out,
                    char *err, size_t errlen)
{
    const char *which;
    const char *v = general ? env_or(env, var, general, &which) : env(var);
    if (!general)
        which = var;
    *out = def;
    if (!v || !*v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 0 || n > 3600L * 1000 * 24) {
        snprintf(err, errlen, "%s=%.40s: expected a whole number of milliseconds", which, v);
        return -1;
    }
    *out = n;
    return 0;
}

int otel_config_load(struct otel_config *c, otel_getenv_fn env, const char *endpoint_flag,
                     const char *service_flag, int no_propagate, const char *script, char *err,
                     size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!env)
        env = std_getenv;
    c->propagate = !no_propagate;
    c->resource.scope_name = "shoal";
    c->resource.scope_version = SHOAL_VERSION;
    const char *which;

    /* protocol */
    const char *proto = env_or(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                               "OTEL_EXPORTER_OTLP_PROTOCOL", &which);
    c->traces.protocol = OTLP_HTTP_PROTOBUF;
    if (proto) {
        if (strcmp(proto, "grpc") == 0) {
            c->traces.protocol = OTLP_GRPC;
        } else if (strcmp(proto, "http/protobuf") != 0) {
            snprintf(err, errlen, "%s=%.40s: expected grpc or http/protobuf (http/json is not "
                                  "supported)", which, proto);
            return -1;
        }
    }
    /* endpoint: the signal's own is used as is; the general one (and the
     * flag) is a base to which HTTP adds /v1/traces */
    const char *own = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = endpoint_flag ? endpoint_flag : env("OTEL_EXPORTER_OTLP_ENDPOINT");
    const char *exporter = env("OTEL_TRACES_EXPORTER");
    int none = exporter && strcasecmp(exporter, "none") == 0;
    if (exporter && !none && strcasecmp(exporter, "otlp") != 0) {
        snprintf(err, errlen, "OTEL_TRACES_EXPORTER=%.40s: shoal exports otlp or none", exporter);
        return -1;
    }
    const char *url = endpoint_flag ? NULL : (own && *own ? own : NULL);
    if (url) {
        snprintf(c->traces.url, sizeof c->traces.url, "%s", url);
    } else if (base && *base) {
        size_t n = strlen(base);
        while (n && base[n - 1] == '/')
            n--;
        if (c->traces.protocol == OTLP_GRPC)
            snprintf(c->traces.url, sizeof c->traces.url,
                     "%.*s/opentelemetry.proto.collector.trace.v1.TraceService/Export", (int)n,
                     base);
        else
            snprintf(c->traces.url, sizeof c->traces.url, "%.*s/v1/traces", (int)n, base);
    } else if (exporter && !none) {
        /* asked for otlp without an address: the standard local collector */
        snprintf(c->traces.url, sizeof c->traces.url, "%s",
                 c->traces.protocol == OTLP_GRPC
                     ? "http://localhost:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                     : "http://localhost:4318/v1/traces");
    }
    if (url && c->traces.protocol == OTLP_GRPC && !strstr(url, "/opentelemetry.proto.")) {
        size_t n = strlen(url);
        while (n && url[n - 1] == '/')
            n--;
        snprintf(c->traces.url, sizeof c->traces.url,
                 "%.*s/opentelemetry.proto.collector.trace.v1.TraceService/Export", (int)n, url);
    }
    if (c->traces.url[0] && strncmp(c->traces.url, "http://", 7) != 0 &&
        strncmp(c->traces.url, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "%s=%.200s: an OTLP endpoint is a URL starting with http:// or https://, "
                 "e.g. http://localhost:4318",
                 endpoint_flag ? "--otlp-endpoint (or SHOAL_OTLP_ENDPOINT)"
                 : url         ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
                               : "OTEL_EXPORTER_OTLP_ENDPOINT",
                 endpoint_flag ? endpoint_flag : url ? url : base);
        return -1;
    }
    c->traces_on = c->traces.url[0] && !none;

    /* headers, timeout, compression */
    const char *h = env("OTEL_EXPORTER_OTLP_HEADERS");
    if (h && otel_parse_pairs(h, "OTEL_EXPORTER_OTLP_HEADERS", add_header, &c->traces, err,
                              errlen) != 0)
        goto fail;
    h = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    if (h && otel_parse_pairs(h, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", add_header, &c->traces,
                              err, errlen) != 0)
        goto fail;
    if (parse_ms(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", 10000,
                 &c->traces.timeout_ms, err, errlen) != 0)
        goto fail;
    const char *comp = env_or(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                              "OTEL_EXPORTER_OTLP_COMPRESSION", &which);
    if (comp) {
        if (strcmp(comp, "gzip") == 0) {
            c->traces.gzip = 1;
        } else if (strcmp(comp, "none") != 0) {
            snprintf(err, errlen, "%s=%.40s: expected gzip or none", which, comp);
            goto fail;
        }
    }

    /* batching */
    if (parse_ms(env, "OTEL_BSP_SCHEDULE_DELAY", NULL, 5000, &c->bsp_delay_ms, err, errlen) ||
        parse_ms(env, "OTEL_BSP_EXPORT_TIMEOUT", NULL, 30000, &c->bsp_timeout_ms, err, errlen) ||
        parse_ms(env, "OTEL_BSP_MAX_QUEUE_SIZE", NULL, 2048, &c->bsp_queue, err, errlen) ||
        parse_ms(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", NULL, 512, &c->bsp_batch, err, errlen))
        goto fail;
    if (c->bsp_queue < 1 || c->bsp_batch < 1) {
        snprintf(err, errlen, "OTEL_BSP_MAX_QUEUE_SIZE and OTEL_BSP_MAX_EXPORT_BATCH_SIZE must "
                              "be at least 1");
        goto fail;
    }
    if (c->bsp_batch > c->bsp_queue)
        c->bsp_batch = c->bsp_queue;

    if (sampler_parse(&c->sampler, env("OTEL_TRACES_SAMPLER"), env("OTEL_TRACES_SAMPLER_ARG"),
                      err, errlen) != 0)
        goto fail;

    /* resource: OTEL_RESOURCE_ATTRIBUTES, then service.name from
     * OTEL_SERVICE_NAME or --service, then what shoal knows */
    const char *ra = env("OTEL_RESOURCE_ATTRIBUTES");
    if (ra && otel_parse_pairs(ra, "OTEL_RESOURCE_ATTRIBUTES", add_resource, &c->resource.attrs,
                               err, errlen) != 0)
        goto fail;
    const char *svc = service_flag ? service_flag : env("OTEL_SERVICE_NAME");
    char def[256];
    if (!svc || !*svc) {
        if (!has_attr(&c->resource.attrs, "service.name")) {
            config_script_name(script, def, sizeof def);
            svc = def;
        }
    }
    if (svc && add_resource("service.name", svc, &c->resource.attrs) != 0)
        goto oom;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    if ((!has_attr(&c->resource.attrs, "service.version") &&
         attrs_str(&c->resource.attrs, "service.version", SHOAL_VERSION,
                   strlen(SHOAL_VERSION))) ||
        (!has_attr(&c->resource.attrs, "host.name") &&
         attrs_str(&c->resource.attrs, "host.name", host, strlen(host))) ||
        attrs_int(&c->resource.attrs, "process.pid", (int64_t)getpid()) ||
        attrs_str(&c->resource.attrs, "telemetry.sdk.name", "shoal", 5) ||
        attrs_str(&c->resource.attrs, "telemetry.sdk.language", "c", 1) ||
        attrs_str(&c->resource.attrs, "telemetry.sdk.version", SHOAL_VERSION,
                  strlen(SHOAL_VERSION)))
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory reading the OpenTelemetry settings");
fail:
    otel_config_free(c);
    return -1;
}

void otel_config_free(struct otel_config *c)
{
    for (int i = 0; i < c->traces.nheaders; i++)
        free(c->traces.headers[i]);
    c->traces.nheaders = 0;
    attrs_clear(&c->resource.attrs);
}
