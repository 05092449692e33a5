/* test_tracer.c - the batch span processor's bounds: a worker never waits
 * and memory stays bounded when the collector does not answer, and every
 * span handed over is accounted for (exported, dropped or failed). */
#include "check.h"
#include "fake_env.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otel.h"
#include "tel_registry.h"
#include "telemetry/traces/tracer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static double value(struct tel_registry *m, struct metric_family *f)
{
    const char *sig[1] = {"traces"};
    return metric_value(metrics_series(f, sig, NULL, 1));
}

static struct span *make_span(void)
{
    struct span *s = span_new("process_job", SPAN_KIND_INTERNAL);
    memset(s->trace_id, 1, 16);
    memset(s->span_id, 2, 8);
    s->start_ns = 1;
    s->end_ns = 2;
    attrs_int(&s->attrs, "job.id", 7);
    return s;
}

int main(void)
{
    /* a collector that accepts connections and never answers: a socket
     * that listens and is never accept()ed */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(lfd, (struct sockaddr *)&a, sizeof a);
    listen(lfd, 16);
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));

    set("OTEL_BSP_MAX_QUEUE_SIZE", "50");
    set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20");
    set("OTEL_EXPORTER_OTLP_TIMEOUT", "300");
    set("OTEL_BSP_EXPORT_TIMEOUT", "1000");
    struct otel_config cfg;
    char err[256];
    CHECK_EQ_INT(otel_config_load(&cfg, fake_env, url, NULL, 0, "t.lua", err, sizeof err), 0);
    struct tel_registry *m = tel_registry_new(2, 100);
    struct tracer *t = tracer_new(&cfg, 2, m->reg, err, sizeof err);
    CHECK(t != NULL);

    /* 10,000 spans from two queues while the exporter is stuck on its
     * first batch: submitting never blocks, and at most the two queues plus
     * the batch in flight are held */
    int n = 10000;

    /* first, into an empty queue: a span larger than the queue's buffer is
     * dropped and counted like any other, not cut or sent in pieces */
    struct span *huge = make_span();
    static char big[16384];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 100; i++)
        attrs_str(&huge->attrs, "big", big, sizeof big);
    tracer_submit_many(t, 0, &huge, 1);
    CHECK_EQ_INT((long long)value(m, m->tel_dropped), 1);

    for (int i = 0; i < n; i++) {
        struct span *s = make_span();
        tracer_submit_many(t, i % 2, &s, 1);
    }
    /* had submit waited for the exporter, nothing would have been dropped */
    double dropped = value(m, m->tel_dropped);
    CHECK(dropped >= n - 2 * 50 - 20);

    tracer_shutdown(t);
    double total = value(m, m->tel_exported) + value(m, m->tel_dropped) + value(m, m->tel_failed);
    CHECK_EQ_INT((long long)total, n + 1);
    CHECK_EQ_INT((long long)value(m, m->tel_exported), 0);

    tel_registry_free(m);
    otel_config_free(&cfg);
    close(lfd);
    return check_done();
}
