/* test_otel.c - the OTEL_* settings as a user sets them: which endpoint
 * wins, protocols, headers, timeouts, compression, batching, the resource,
 * and the errors that name the variable; for traces, and for logs
 * (--otlp-logs: the same rules with LOGS in the names, OTEL_BLRP_*). */
#include "check.h"
#include "fake_env.h"
#include "telemetry/send/otel.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *attr(const struct otel_config *c, const char *key)
{
    for (int i = 0; i < c->resource.attrs.n; i++)
        if (strcmp(c->resource.attrs.a[i].key, key) == 0)
            return c->resource.attrs.a[i].type == ATTR_STRING ? c->resource.attrs.a[i].v.s : "?";
    return NULL;
}

static int load(struct otel_config *c, const char *flag, char *err)
{
    return otel_config_load(c, fake_env, flag, NULL, 0, "scripts/my_crawl.lua", err, 256);
}

static int load_logs(struct otel_config *c, const char *flag, char *err)
{
    err[0] = 0;
    if (load(c, flag, err) != 0)
        return -2;
    return otel_logs_config_load(c, fake_env, 1, err, 256);
}

static void test_logs(void)
{
    struct otel_config c;
    char err[256];

    /* without --otlp-logs: off, whatever the variables say, defaults set */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    set("OTEL_BLRP_SCHEDULE_DELAY", "soon"); /* not read: logs are not asked for */
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(otel_logs_config_load(&c, fake_env, 0, err, sizeof err), 0);
    CHECK_EQ_INT(c.logs_on, 0);
    CHECK_EQ_INT(c.blrp_delay_ms, 1000);
    CHECK_EQ_INT(c.blrp_queue, 2048);
    CHECK_EQ_INT(c.blrp_batch, 512);
    CHECK_EQ_INT(c.blrp_timeout_ms, 30000);
    otel_config_free(&c);

    /* the general endpoint is a base; HTTP adds /v1/logs */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/");
    CHECK_EQ_INT(load_logs(&c, NULL, err), 0);
    CHECK_EQ_INT(c.logs_on, 1);
    CHECK_STR(c.logs.url, "http://collector:4318/v1/logs");
    CHECK_STR(c.traces.url, "http://collector:4318/v1/traces");
    CHECK_EQ_INT(c.logs.protocol, OTLP_HTTP_PROTOBUF);
    CHECK_EQ_INT(c.logs.timeout_ms, 10000);
    CHECK_EQ_INT(c.blrp_delay_ms, 1000);
    CHECK_EQ_INT(c.blrp_batch, 512);
    otel_config_free(&c);

    /* the logs' own endpoint is used as is and wins; the flag wins over it */
    set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:9999/ingest");
    CHECK_EQ_INT(load_logs(&c, NULL, err), 0);
    CHECK_STR(c.logs.url, "http://logs:9999/ingest");
    CHECK_STR(c.traces.url, "http://collector:4318/v1/traces");
    otel_config_free(&c);
    CHECK_EQ_INT(load_logs(&c, "http://flag:4318", err), 0);
    CHECK_STR(c.logs.url, "http://flag:4318/v1/logs");
    otel_config_free(&c);

    /* gRPC for logs only: LogsService's path, traces stay HTTP */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
    set("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc");
    CHECK_EQ_INT(load_logs(&c, NULL, err), 0);
    CHECK_EQ_INT(c.logs.protocol, OTLP_GRPC);
    CHECK_STR(c.logs.url,
              "http://collector:4317/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    CHECK_EQ_INT(c.traces.protocol, OTLP_HTTP_PROTOBUF);
    otel_config_free(&c);
    /* a gRPC logs endpoint without a service path gets LogsService's */
    set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4317/");
    CHECK_EQ_INT(load_logs(&c, NULL, err), 0);
    CHECK_STR(c.logs.url,
              "http://logs:4317/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    otel_config_free(&c);

    /* headers (general, then the logs'), timeout, compression, batching */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    set("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc");
    set("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "X-Only-Logs=1");
    set("OTEL_EXPORTER_OTLP_TIMEOUT", "2500");
    set("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "700");
    set("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip");
    set("OTEL_BLRP_SCHEDULE_DELAY", "250");
    set("OTEL_BLRP_MAX_QUEUE_SIZE", "100");
    set("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "500");
    set("OTEL_BLRP_EXPORT_TIMEOUT", "4000");
    CHECK_EQ_INT(load_logs(&c, NULL, err), 0);
    CHECK_EQ_INT(c.logs.nheaders, 2);
    CHECK_STR(c.logs.headers[0], "Authorization: Bearer abc");
    CHECK_STR(c.logs.headers[1], "X-Only-Logs: 1");
    CHECK_EQ_INT(c.traces.nheaders, 1);
    CHECK_EQ_INT(c.logs.timeout_ms, 700);
    CHECK_EQ_INT(c.traces.timeout_ms, 2500);
    CHECK_EQ_INT(c.logs.gzip, 1);
    CHECK_EQ_INT(c.traces.gzip, 0);
    CHECK_EQ_INT(c.blrp_delay_ms, 250);
    CHECK_EQ_INT(c.blrp_queue, 100);
    CHECK_EQ_INT(c.blrp_batch, 100); /* never more than the queue holds */
    CHECK_EQ_INT(c.blrp_timeout_ms, 4000);
    CHECK_EQ_INT(c.bsp_delay_ms, 5000); /* the spans' batching is apart */
    otel_config_free(&c);               /* frees the logs' headers too (ASan's leak check) */

    /* OTEL_LOGS_EXPORTER=none turns them off; traces go on */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    set("OTEL_LOGS_EXPORTER", "none");
    CHECK_EQ_INT(load_logs(&c, NULL, err), 0);
    CHECK_EQ_INT(c.logs_on, 0);
    CHECK_EQ_INT(c.traces_on, 1);
    otel_config_free(&c);

    /* no endpoint at all: a clear error, even when traces have the local
     * default from OTEL_TRACES_EXPORTER=otlp */
    nvars = 0;
    CHECK_EQ_INT(load_logs(&c, NULL, err), -1);
    CHECK(strstr(err, "--otlp-logs needs an OTLP endpoint: set --otlp-endpoint or "
                      "OTEL_EXPORTER_OTLP_ENDPOINT") != NULL);
    CHECK_EQ_INT(c.logs_on, 0);
    otel_config_free(&c);
    set("OTEL_TRACES_EXPORTER", "otlp");
    CHECK_EQ_INT(load_logs(&c, NULL, err), -1);
    CHECK(strstr(err, "--otlp-logs needs an OTLP endpoint") != NULL);
    otel_config_free(&c);

    /* errors name the variable */
    struct {
        const char *var, *value;
    } bad[] = {
        {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json"},
        {"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"},
        {"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "soon"},
        {"OTEL_EXPORTER_OTLP_LOGS_HEADERS", "no-equals-sign"},
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "ftp://c"},
        {"OTEL_LOGS_EXPORTER", "console"},
        {"OTEL_BLRP_SCHEDULE_DELAY", "-5"},
        {"OTEL_BLRP_MAX_QUEUE_SIZE", "0"},
        {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "many"},
        {"OTEL_BLRP_EXPORT_TIMEOUT", "1s"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nvars = 0;
        set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        set(bad[i].var, bad[i].value);
        CHECK_EQ_INT(load_logs(&c, NULL, err), -1);
        if (!strstr(err, bad[i].var))
            fprintf(stderr, "message for %s: %s\n", bad[i].var, err);
        CHECK(strstr(err, bad[i].var) != NULL);
        CHECK_EQ_INT(c.logs_on, 0);
        otel_config_free(&c);
    }
}

/* One id for the process: --instance, else OTEL_RESOURCE_ATTRIBUTES',
 * else HOST-PID; the resource carries the one chosen. */
static void test_instance(void)
{
    struct otel_config c;
    char err[256], want[300], host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(want, sizeof want, "%s-%ld", host, (long)getpid());

    nvars = 0;
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK(attr(&c, "service.instance.id") == NULL);
    CHECK_STR(otel_config_instance(&c, NULL), want);
    CHECK_STR(attr(&c, "service.instance.id"), want);
    otel_config_free(&c);

    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_STR(otel_config_instance(&c, "crawler-2"), "crawler-2");
    CHECK_STR(attr(&c, "service.instance.id"), "crawler-2");
    otel_config_free(&c);

    set("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=pod%2D7,team=a");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_STR(otel_config_instance(&c, NULL), "pod-7");
    CHECK_STR(attr(&c, "service.instance.id"), "pod-7");
    otel_config_free(&c);
    /* the flag is this process's own: it wins, and there is one value */
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_STR(otel_config_instance(&c, "crawler-2"), "crawler-2");
    int n = 0;
    for (int i = 0; i < c.resource.attrs.n; i++)
        n += !strcmp(c.resource.attrs.a[i].key, "service.instance.id");
    CHECK_EQ_INT(n, 1);
    CHECK_STR(attr(&c, "team"), "a");
    otel_config_free(&c);
    nvars = 0;
}

int main(void)
{
    struct otel_config c;
    char err[256];

    /* nothing set: no traces, defaults in place */
    nvars = 0;
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(c.traces_on, 0);
    CHECK_EQ_INT(c.bsp_delay_ms, 5000);
    CHECK_EQ_INT(c.bsp_queue, 2048);
    CHECK_EQ_INT(c.bsp_batch, 512);
    CHECK_EQ_INT(c.bsp_timeout_ms, 30000);
    CHECK_EQ_INT(c.traces.timeout_ms, 10000);
    CHECK_EQ_INT(c.propagate, 1);
    CHECK_STR(attr(&c, "service.name"), "my_crawl");
    CHECK(attr(&c, "host.name") && attr(&c, "telemetry.sdk.name"));
    otel_config_free(&c);
    test_instance();

    /* the general endpoint is a base; HTTP adds /v1/traces */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(c.traces_on, 1);
    CHECK_STR(c.traces.url, "http://collector:4318/v1/traces");
    otel_config_free(&c);

    /* the signal's own endpoint is used as is, and wins */
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:9999/custom");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_STR(c.traces.url, "http://other:9999/custom");
    otel_config_free(&c);
    /* and the flag wins over both */
    CHECK_EQ_INT(load(&c, "http://flag:4318", err), 0);
    CHECK_STR(c.traces.url, "http://flag:4318/v1/traces");
    otel_config_free(&c);

    /* gRPC: the service path; the signal protocol wins */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
    set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(c.traces.protocol, OTLP_GRPC);
    CHECK_STR(c.traces.url,
              "http://collector:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    otel_config_free(&c);

    /* OTEL_TRACES_EXPORTER=none turns it off; otlp alone means localhost */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    set("OTEL_TRACES_EXPORTER", "none");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(c.traces_on, 0);
    otel_config_free(&c);
    nvars = 0;
    set("OTEL_TRACES_EXPORTER", "otlp");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(c.traces_on, 1);
    CHECK_STR(c.traces.url, "http://localhost:4318/v1/traces");
    otel_config_free(&c);

    /* headers (general, then the signal's), timeout, gzip, batching */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    set("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc, X-Tenant = t1");
    set("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Only-Traces=1");
    set("OTEL_EXPORTER_OTLP_TIMEOUT", "2500");
    set("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip");
    set("OTEL_BSP_MAX_QUEUE_SIZE", "100");
    set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500");
    set("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=prod");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_EQ_INT(c.traces.nheaders, 3);
    CHECK_STR(c.traces.headers[0], "Authorization: Bearer abc");
    CHECK_STR(c.traces.headers[1], "X-Tenant: t1");
    CHECK_STR(c.traces.headers[2], "X-Only-Traces: 1");
    CHECK_EQ_INT(c.traces.timeout_ms, 2500);
    CHECK_EQ_INT(c.traces.gzip, 1);
    CHECK_EQ_INT(c.bsp_queue, 100);
    CHECK_EQ_INT(c.bsp_batch, 100); /* never more than the queue holds */
    CHECK_STR(attr(&c, "service.name"), "from-attrs");
    CHECK_STR(attr(&c, "deployment.environment"), "prod");
    otel_config_free(&c);
    /* OTEL_SERVICE_NAME wins over the attribute, --service over both */
    set("OTEL_SERVICE_NAME", "from-env");
    CHECK_EQ_INT(load(&c, NULL, err), 0);
    CHECK_STR(attr(&c, "service.name"), "from-env");
    otel_config_free(&c);
    CHECK_EQ_INT(otel_config_load(&c, fake_env, NULL, "from-flag", 1, "x.lua", err, sizeof err), 0);
    CHECK_STR(attr(&c, "service.name"), "from-flag");
    CHECK_EQ_INT(c.propagate, 0);
    otel_config_free(&c);

    /* errors name the variable */
    struct {
        const char *var, *value;
    } bad[] = {
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
        {"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"},
        {"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"},
        {"OTEL_BSP_SCHEDULE_DELAY", "-5"},
        {"OTEL_TRACES_SAMPLER", "often"},
        {"OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"},
        {"OTEL_RESOURCE_ATTRIBUTES", "=x"},
        {"OTEL_TRACES_EXPORTER", "zipkin"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nvars = 0;
        set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        set(bad[i].var, bad[i].value);
        err[0] = 0;
        CHECK_EQ_INT(load(&c, NULL, err), -1);
        if (!strstr(err, bad[i].var))
            fprintf(stderr, "message for %s: %s\n", bad[i].var, err);
        CHECK(strstr(err, bad[i].var) != NULL);
    }
    nvars = 0;
    CHECK_EQ_INT(load(&c, "ftp://c", err), -1);
    CHECK(strstr(err, "http://") != NULL);
    test_logs();
    return check_done();
}
