/* otel.c - reading the OpenTelemetry settings (see otel.h). */
#include "telemetry/send/otel.h"

#include "base/fsutil.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
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

/* A whole number from var (or, if general is set and var is not, from
 * general), def when neither is set. unit names what it counts, for the
 * message: "milliseconds" or "records". */
static int parse_count(otel_getenv_fn env, const char *var, const char *general, long def,
                       const char *unit, long *out, char *err, size_t errlen)
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
        snprintf(err, errlen, "%s=%.40s: expected a whole number of %s", which, v, unit);
        return -1;
    }
    *out = n;
    return 0;
}

/* The batch processor settings OTEL_<p>_SCHEDULE_DELAY, _EXPORT_TIMEOUT,
 * _MAX_QUEUE_SIZE and _MAX_EXPORT_BATCH_SIZE (p: BSP for spans, BLRP for
 * log records); a batch is never bigger than the queue. */
static int load_batching(otel_getenv_fn env, const char *p, long def_delay, long *delay,
                         long *timeout, long *queue, long *batch, char *err, size_t errlen)
{
    char v_delay[48], v_timeout[48], v_queue[48], v_batch[48];
    snprintf(v_delay, sizeof v_delay, "OTEL_%s_SCHEDULE_DELAY", p);
    snprintf(v_timeout, sizeof v_timeout, "OTEL_%s_EXPORT_TIMEOUT", p);
    snprintf(v_queue, sizeof v_queue, "OTEL_%s_MAX_QUEUE_SIZE", p);
    snprintf(v_batch, sizeof v_batch, "OTEL_%s_MAX_EXPORT_BATCH_SIZE", p);
    if (parse_count(env, v_delay, NULL, def_delay, "milliseconds", delay, err, errlen) ||
        parse_count(env, v_timeout, NULL, 30000, "milliseconds", timeout, err, errlen) ||
        parse_count(env, v_queue, NULL, 2048, "records", queue, err, errlen) ||
        parse_count(env, v_batch, NULL, 512, "records", batch, err, errlen))
        return -1;
    if (*queue < 1 || *batch < 1) {
        snprintf(err, errlen, "%s and %s must be at least 1", v_queue, v_batch);
        return -1;
    }
    if (*batch > *queue)
        *batch = *queue;
    return 0;
}

/* What differs between the signals' exporters: the variable names' middle
 * part and the paths under the collector's address. */
struct signal_names {
    const char *var;       /* "TRACES": OTEL_EXPORTER_OTLP_TRACES_ENDPOINT... */
    const char *http_path; /* "/v1/traces" */
    const char *grpc_path; /* "/opentelemetry.proto.collector.trace.v1.TraceService/Export" */
};

static const struct signal_names traces_names = {
    "TRACES", "/v1/traces", "/opentelemetry.proto.collector.trace.v1.TraceService/Export"};
static const struct signal_names logs_names = {
    "LOGS", "/v1/logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export"};
static const struct signal_names metrics_names = {
    "METRICS", "/v1/metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"};

/* Writes base (trailing slashes dropped) + path into t->url. */
static void join_url(struct otlp_target *t, const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    snprintf(t->url, sizeof t->url, "%.*s%s", (int)n, base, path);
}

/* Fills t for one signal: protocol, URL, headers, timeout, compression,
 * the signal's own variable over the general one for each. The signal's
 * endpoint is used as is (for gRPC the service path is added when it has
 * none); the general one and the flag are a base to which the signal's path
 * is added; the flag wins over both. With none of them, local_default
 * picks the standard local collector, else t->url stays "". 0, or -1 with
 * a message naming the variable (t's headers are then freed by the
 * caller's otel_config_free). */
static int load_target(struct otlp_target *t, const struct signal_names *sig, otel_getenv_fn env,
                       const char *endpoint_flag, int local_default, char *err, size_t errlen)
{
    char v_proto[64], v_endpoint[64], v_headers[64], v_timeout[64], v_comp[64];
    snprintf(v_proto, sizeof v_proto, "OTEL_EXPORTER_OTLP_%s_PROTOCOL", sig->var);
    snprintf(v_endpoint, sizeof v_endpoint, "OTEL_EXPORTER_OTLP_%s_ENDPOINT", sig->var);
    snprintf(v_headers, sizeof v_headers, "OTEL_EXPORTER_OTLP_%s_HEADERS", sig->var);
    snprintf(v_timeout, sizeof v_timeout, "OTEL_EXPORTER_OTLP_%s_TIMEOUT", sig->var);
    snprintf(v_comp, sizeof v_comp, "OTEL_EXPORTER_OTLP_%s_COMPRESSION", sig->var);
    const char *which;

    const char *proto = env_or(env, v_proto, "OTEL_EXPORTER_OTLP_PROTOCOL", &which);
    t->protocol = OTLP_HTTP_PROTOBUF;
    if (proto) {
        if (strcmp(proto, "grpc") == 0) {
            t->protocol = OTLP_GRPC;
        } else if (strcmp(proto, "http/protobuf") != 0) {
            snprintf(err, errlen, "%s=%.40s: expected grpc or http/protobuf (http/json is not "
                                  "supported)", which, proto);
            return -1;
        }
    }
    int grpc = t->protocol == OTLP_GRPC;

    const char *own = env(v_endpoint);
    const char *base = endpoint_flag ? endpoint_flag : env("OTEL_EXPORTER_OTLP_ENDPOINT");
    const char *url = endpoint_flag ? NULL : (own && *own ? own : NULL);
    t->url[0] = 0;
    if (url && grpc && !strstr(url, "/opentelemetry.proto."))
        join_url(t, url, sig->grpc_path);
    else if (url)
        snprintf(t->url, sizeof t->url, "%s", url);
    else if (base && *base)
        join_url(t, base, grpc ? sig->grpc_path : sig->http_path);
    else if (local_default)
        join_url(t, grpc ? "http://localhost:4317" : "http://localhost:4318",
                 grpc ? sig->grpc_path : sig->http_path);
    if (t->url[0] && strncmp(t->url, "http://", 7) != 0 && strncmp(t->url, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "%s=%.200s: an OTLP endpoint is a URL starting with http:// or https://, "
                 "e.g. http://localhost:4318",
                 endpoint_flag ? "--otlp-endpoint (or SHOAL_OTLP_ENDPOINT)"
                 : url         ? v_endpoint
                               : "OTEL_EXPORTER_OTLP_ENDPOINT",
                 endpoint_flag ? endpoint_flag
                 : url         ? url
                               : base);
        return -1;
    }

    const char *h = env("OTEL_EXPORTER_OTLP_HEADERS");
    if (h && otel_parse_pairs(h, "OTEL_EXPORTER_OTLP_HEADERS", add_header, t, err, errlen) != 0)
        return -1;
    h = env(v_headers);
    if (h && otel_parse_pairs(h, v_headers, add_header, t, err, errlen) != 0)
        return -1;
    if (parse_count(env, v_timeout, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000, "milliseconds",
                    &t->timeout_ms, err, errlen) != 0)
        return -1;
    const char *comp = env_or(env, v_comp, "OTEL_EXPORTER_OTLP_COMPRESSION", &which);
    t->gzip = 0;
    if (comp) {
        if (strcmp(comp, "gzip") == 0) {
            t->gzip = 1;
        } else if (strcmp(comp, "none") != 0) {
            snprintf(err, errlen, "%s=%.40s: expected gzip or none", which, comp);
            return -1;
        }
    }
    return 0;
}

/* OTEL_<SIGNAL>_EXPORTER: 0 and *none, or -1 for anything but otlp/none. */
static int exporter_var(otel_getenv_fn env, const char *var, int *set, int *none, char *err,
                        size_t errlen)
{
    const char *exporter = env(var);
    *set = exporter && *exporter;
    *none = *set && strcasecmp(exporter, "none") == 0;
    if (*set && !*none && strcasecmp(exporter, "otlp") != 0) {
        snprintf(err, errlen, "%s=%.40s: shoal exports otlp or none", var, exporter);
        return -1;
    }
    return 0;
}

int trace_sampler_parse(struct trace_sampler *s, const char *name, const char *arg, char *err,
                  size_t errlen)
{
    static const struct {
        const char *name;
        enum trace_sampler_kind kind;
    } names[] = {
        {"always_on", TRACE_SAMPLER_ALWAYS_ON},
        {"always_off", TRACE_SAMPLER_ALWAYS_OFF},
        {"traceidratio", TRACE_SAMPLER_RATIO},
        {"parentbased_always_on", TRACE_SAMPLER_PARENT_ON},
        {"parentbased_always_off", TRACE_SAMPLER_PARENT_OFF},
        {"parentbased_traceidratio", TRACE_SAMPLER_PARENT_RATIO},
    };
    memset(s, 0, sizeof *s);
    s->kind = TRACE_SAMPLER_PARENT_ON;
    s->ratio = 1.0;
    if (name && *name) {
        size_t i;
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcasecmp(name, names[i].name) == 0)
                break;
        if (i == sizeof names / sizeof names[0]) {
            snprintf(err, errlen,
                     "OTEL_TRACES_SAMPLER=%.60s: expected always_on, always_off, traceidratio, "
                     "parentbased_always_on, parentbased_always_off or "
                     "parentbased_traceidratio",
                     name);
            return -1;
        }
        s->kind = names[i].kind;
    }
    if ((s->kind == TRACE_SAMPLER_RATIO || s->kind == TRACE_SAMPLER_PARENT_RATIO) && arg && *arg) {
        char *end;
        double r = strtod(arg, &end);
        if (end == arg || *end || !(r >= 0 && r <= 1)) {
            snprintf(err, errlen,
                     "OTEL_TRACES_SAMPLER_ARG=%.60s: expected a ratio from 0 to 1, e.g. 0.1", arg);
            return -1;
        }
        s->ratio = r;
    }
    /* the low 63 bits of the trace id against ratio * 2^63 */
    s->bound = s->ratio >= 1 ? UINT64_MAX : (uint64_t)ldexp(s->ratio, 63);
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
    c->endpoint_flag = endpoint_flag;
    c->resource.scope_name = "shoal";
    c->resource.scope_version = SHOAL_VERSION;

    int exporter_set, none;
    if (exporter_var(env, "OTEL_TRACES_EXPORTER", &exporter_set, &none, err, errlen) != 0)
        return -1;
    /* OTEL_TRACES_EXPORTER=otlp without an address: the local collector */
    if (load_target(&c->traces, &traces_names, env, endpoint_flag, exporter_set && !none, err,
                    errlen) != 0)
        goto fail;
    c->traces_on = c->traces.url[0] && !none;

    if (load_batching(env, "BSP", 5000, &c->bsp_delay_ms, &c->bsp_timeout_ms, &c->bsp_queue,
                      &c->bsp_batch, err, errlen) != 0)
        goto fail;
    /* the logs' defaults; OTEL_BLRP_* is read by otel_logs_config_load,
     * only when logs are asked for */
    c->blrp_delay_ms = 1000;
    c->blrp_timeout_ms = 30000;
    c->blrp_queue = 2048;
    c->blrp_batch = 512;

    if (trace_sampler_parse(&c->sampler, env("OTEL_TRACES_SAMPLER"), env("OTEL_TRACES_SAMPLER_ARG"),
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
            fs_script_name(script, def, sizeof def);
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

/* HOST-PID: unique among the processes of one machine at one time, and
 * says where to look. */
static void default_instance(char *out, size_t n)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    snprintf(out, n, "%s-%ld", host, (long)getpid());
}

static const char *string_attr(const struct attrs *a, const char *key)
{
    for (int i = 0; i < a->n; i++)
        if (a->a[i].type == ATTR_STRING && !strcmp(a->a[i].key, key))
            return a->a[i].v.s;
    return NULL;
}

const char *otel_config_instance(struct otel_config *c, const char *flag)
{
    struct attrs *a = &c->resource.attrs;
    const char *given = string_attr(a, "service.instance.id"); /* OTEL_RESOURCE_ATTRIBUTES */
    char def[300];
    if (!flag || !*flag) {
        if (given && *given)
            return given;
        default_instance(def, sizeof def);
        flag = def;
    }
    if (add_resource("service.instance.id", flag, a) != 0)
        return NULL;
    return string_attr(a, "service.instance.id");
}

static void target_free(struct otlp_target *t)
{
    for (int i = 0; i < t->nheaders; i++)
        free(t->headers[i]);
    t->nheaders = 0;
}

void otel_config_free(struct otel_config *c)
{
    target_free(&c->traces);
    target_free(&c->logs);
    target_free(&c->metrics);
    attrs_clear(&c->resource.attrs);
}

int otel_logs_config_load(struct otel_config *c, otel_getenv_fn env, int flag_on, char *err,
                          size_t errlen)
{
    if (!env)
        env = std_getenv;
    target_free(&c->logs);
    memset(&c->logs, 0, sizeof c->logs);
    c->logs_on = 0;
    if (!flag_on)
        return 0;
    int exporter_set, none;
    if (exporter_var(env, "OTEL_LOGS_EXPORTER", &exporter_set, &none, err, errlen) != 0)
        return -1;
    if (none)
        return 0;
    if (load_batching(env, "BLRP", 1000, &c->blrp_delay_ms, &c->blrp_timeout_ms, &c->blrp_queue,
                      &c->blrp_batch, err, errlen) != 0)
        return -1;
    if (load_target(&c->logs, &logs_names, env, c->endpoint_flag, 0, err, errlen) != 0) {
        target_free(&c->logs);
        return -1;
    }
    if (!c->logs.url[0]) {
        snprintf(err, errlen,
                 "--otlp-logs needs an OTLP endpoint: set --otlp-endpoint or "
                 "OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)");
        target_free(&c->logs);
        return -1;
    }
    c->logs_on = 1;
    return 0;
}

int otel_metrics_config_load(struct otel_config *c, otel_getenv_fn env, int flag_on, char *err,
                             size_t errlen)
{
    if (!env)
        env = std_getenv;
    target_free(&c->metrics);
    memset(&c->metrics, 0, sizeof c->metrics);
    c->metrics_on = 0;
    c->metric_interval_ms = 60000;
    c->metric_timeout_ms = 30000;
    int exporter_set, none;
    if (exporter_var(env, "OTEL_METRICS_EXPORTER", &exporter_set, &none, err, errlen) != 0)
        return -1;
    if (none || (!flag_on && !exporter_set))
        return 0;
    const char *pref = env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
    if (pref && *pref && strcasecmp(pref, "cumulative") != 0) {
        int known = !strcasecmp(pref, "delta") || !strcasecmp(pref, "lowmemory");
        snprintf(err, errlen,
                 "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=%.40s: %s; shoal sends "
                 "cumulative temporality only (unset the variable or set it to cumulative)",
                 pref, known ? "not supported" : "expected cumulative, delta or lowmemory");
        return -1;
    }
    if (parse_count(env, "OTEL_METRIC_EXPORT_INTERVAL", NULL, 60000, "milliseconds",
                    &c->metric_interval_ms, err, errlen) != 0 ||
        parse_count(env, "OTEL_METRIC_EXPORT_TIMEOUT", NULL, 30000, "milliseconds",
                    &c->metric_timeout_ms, err, errlen) != 0)
        return -1;
    if (c->metric_interval_ms < 1) {
        snprintf(err, errlen, "OTEL_METRIC_EXPORT_INTERVAL must be at least 1 (milliseconds)");
        return -1;
    }
    if (load_target(&c->metrics, &metrics_names, env, c->endpoint_flag, exporter_set, err,
                    errlen) != 0) {
        target_free(&c->metrics);
        return -1;
    }
    if (!c->metrics.url[0]) {
        snprintf(err, errlen,
                 "--otlp-metrics needs an OTLP endpoint: set --otlp-endpoint or "
                 "OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)");
        target_free(&c->metrics);
        return -1;
    }
    c->metrics_on = 1;
    return 0;
}
