/* main.c - shoal's entry point: parse the command line, then run, check or
 * demo. The only place that decides the process's exit code.
 *
 * Before any thread exists, the signals the run handles itself (SIGINT,
 * SIGTERM, SIGUSR1, SIGUSR2, SIGHUP) are blocked, so every thread inherits
 * the mask: the main thread takes SIGINT/SIGTERM/SIGUSR1/SIGHUP with
 * sigtimedwait (SIGHUP: reopen the log file), and worker
 * threads unblock only SIGUSR2, the watchdog's. While the main thread runs
 * script code itself (loading it, init()), a guard thread (watchdog.h) takes
 * SIGINT/SIGTERM and bounds that code, and the main thread unblocks SIGUSR2. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/tryout.h"
#include "core/config.h"
#include "app/demo_site.h"
#include "net/httpd.h"
#include "lua/lua_job.h"
#include "telemetry/metrics/otlp_metrics.h"
#include "core/run.h"
#include "core/queue_redis.h"
#include "core/queue_sqlite.h"
#include "core/runmetrics.h"
#include "telemetry/send/otel.h"
#include "core/watchdog.h"
#include "core/worker.h"

#define DEMO_SCRIPT "embedded:examples/crawl.lua"
#define SHELL_SCRIPT "embedded:lua/shoal/shell.lua"

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

struct option_sink {
    struct config *cfg;
    char err[256]; /* the first bad option */
};

static void apply_option(const char *name, double value, const char *text, void *arg)
{
    struct option_sink *o = arg;
    if (text && strcmp(name, "metric_labels") == 0) {
        /* checked by the runtime: at most 8 valid names, joined by commas */
        struct config *c = o->cfg;
        c->nmetric_labels = 0;
        for (const char *p = text; *p && c->nmetric_labels < 8;) {
            size_t n = strcspn(p, ",");
            snprintf(c->metric_labels[c->nmetric_labels++], sizeof c->metric_labels[0], "%.*s",
                     (int)n, p);
            p += n + (p[n] == ',');
        }
        return;
    }
    if (!o->err[0])
        config_apply_script_option(o->cfg, name, value, text, o->err, sizeof o->err);
}

/* Loads the script into a state of its own, as a worker would, with a
 * registry of its own that holds the engine's metric names (so a script
 * metric colliding with one fails here, at check time), under a watchdog
 * guard with --hook-timeout that the caller ends (wd_guard_end) once done
 * with the state's script code. Returns EXIT_OK, or an exit code after
 * saying why (the guard then ended). */
static int load_scratch(struct config *cfg, struct runmetrics **scratch, lj **state,
                        struct wd_guard **guard)
{
    char err[8192];
    *state = NULL;
    *guard = wd_guard_begin(WD_LOAD, cfg->hook_timeout, cfg->script, EXIT_SCRIPT, EXIT_INTERRUPT);
    *scratch = runmetrics_new(1, cfg->max_series, 0, NULL, 0, err, sizeof err);
    if (!*scratch) {
        fprintf(stderr, "shoal: %s\n", err);
        wd_guard_end(*guard);
        return EXIT_ENV;
    }
    struct lj_config lc = {.worker_id = 1,
                           .script = cfg->script,
                           .lua_path = cfg->lua_path,
                           .mem_cap = (size_t)cfg->memory_mb * 1024 * 1024,
                           .slots = 1,
                           .timeout = cfg->timeout,
                           .args = cfg->args,
                           .nargs = cfg->nargs,
                           .listen = cfg->listen, /* before a busy port is replaced */
                           .host_ops = &worker_lua_host, /* its watchdog, no I/O */
                           .registry = (*scratch)->reg};
    *state = lj_new(&lc, err, sizeof err);
    if (!*state) {
        fprintf(stderr, "shoal: %s: %s\n", cfg->script, err);
        runmetrics_free(*scratch);
        wd_guard_end(*guard);
        return EXIT_SCRIPT;
    }
    return EXIT_OK;
}

/* Loads the script once as a worker would. With cfg, also takes its options.
 * All of it runs within --hook-timeout. */
static int load_and_check(struct config *cfg, int quiet_ok)
{
    char err[8192];
    struct runmetrics *scratch;
    lj *s;
    struct wd_guard *g;
    int code = load_scratch(cfg, &scratch, &s, &g);
    if (code != EXIT_OK)
        return code;
    int rc = lj_check(s, err, sizeof err);
    struct option_sink sink = {.cfg = cfg};
    if (rc == 0)
        lj_options(s, apply_option, &sink);
    wd_guard_end(g);
    if (rc != 0) {
        fprintf(stderr, "shoal: %s: %s\n", cfg->script, err);
        lj_free(s);
        runmetrics_free(scratch);
        return EXIT_SCRIPT;
    }
    if (err[0])
        fprintf(stderr, "shoal: %s: warning: %s\n", cfg->script, err);
    lj_free(s);
    runmetrics_free(scratch);
    if (sink.err[0]) {
        fprintf(stderr, "shoal: %s: %s\n", cfg->script, sink.err);
        return EXIT_SCRIPT;
    }
    if (!quiet_ok)
        printf("%s: ok (loads, defines handle(), options are valid)\n", cfg->script);
    return EXIT_OK;
}

/* `shoal dashboard SCRIPT`: loads the script as `check` does and prints a
 * Grafana dashboard for the metrics its top level declares. */
static int dashboard(struct config *cfg)
{
    char err[8192];
    struct runmetrics *scratch;
    lj *s;
    struct wd_guard *g;
    int code = load_scratch(cfg, &scratch, &s, &g);
    if (code != EXIT_OK)
        return code;
    code = EXIT_SCRIPT;
    char title[256];
    config_script_name(cfg->script, title, sizeof title);
    char *json = lj_dashboard(s, title, err, sizeof err);
    wd_guard_end(g);
    if (!json) {
        fprintf(stderr, "shoal: %s: %s\n", cfg->script, err);
        goto out;
    }
    printf("%s\n", json);
    free(json);
    code = EXIT_OK;
out:
    lj_free(s);
    runmetrics_free(scratch);
    return code;
}

static int start_server(struct config *cfg, httpd **server, int fallback)
{
    char err[512];
    if (httpd_start(cfg->listen, server, err, sizeof err) != 0) {
        if (!fallback) {
            fprintf(stderr, "shoal: %s\n", err);
            return -1;
        }
        /* the default must just work: take any free port rather than fail */
        char host[sizeof cfg->listen - 8];
        snprintf(host, sizeof host, "%.*s", (int)sizeof host - 1, cfg->listen);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = 0;
        snprintf(cfg->listen, sizeof cfg->listen, "%s:0", host);
        if (httpd_start(cfg->listen, server, err, sizeof err) != 0) {
            fprintf(stderr, "shoal: %s\n", err);
            return -1;
        }
        fprintf(stderr, "shoal: the default address was taken; using a free port instead "
                        "(--listen sets one)\n");
    }
    if (*server) {
        /* what scripts see as shoal.listen_url: the port really taken */
        snprintf(cfg->listen, sizeof cfg->listen, "%s:%d", httpd_host(*server),
                 httpd_port(*server));
        demo_site_register(*server);
        fprintf(stderr, "shoal: serving http://%s:%d/metrics (also /healthz, /readyz, /demo/)\n",
                httpd_host(*server), httpd_port(*server));
    }
    return 0;
}

/* --linger: after the run, /metrics (its final figures), /healthz and
 * /readyz stay up this long, or until Ctrl-C / SIGTERM, so a scrape that
 * comes after a short run still finds them. The exit code stays the run's:
 * the run did finish. */
static void linger(const struct config *cfg, httpd *server)
{
    if (cfg->linger <= 0 || !server)
        return;
    fprintf(stderr,
            "shoal: the run is over; serving its final metrics at http://%s:%d/metrics for "
            "%gs more (--linger; Ctrl-C ends it)\n",
            httpd_host(server), httpd_port(server), cfg->linger);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double end = (double)t.tv_sec + (double)t.tv_nsec / 1e9 + cfg->linger;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double left = end - ((double)t.tv_sec + (double)t.tv_nsec / 1e9);
        if (left <= 0)
            return;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM)
            return;
    }
}

/* SIGUSR2: the watchdog asks the thread it lands on to stop its script code */
static void on_watchdog_signal(int sig)
{
    (void)sig;
    lj_watchdog_on_signal();
}

int main(int argc, char **argv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* SA_RESTART: a poke that lands outside Lua must not fail a read */
    struct sigaction sa = {.sa_handler = on_watchdog_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);

    static struct config cfg;
    config_defaults(&cfg);
    if (config_parse(&cfg, argc, argv) != 0)
        return EXIT_USAGE;

    switch (cfg.command) {
    case CMD_HELP:
        config_print_help(NULL);
        return EXIT_OK;
    case CMD_VERSION:
        printf("shoal %s (%s, LuaJIT)\n", SHOAL_VERSION, curl_version());
        return EXIT_OK;
    case CMD_DASHBOARD:
        return dashboard(&cfg);
    case CMD_ITEMS: {
        char err[4600];
        long long n = queue_redis_drain(cfg.queue, cfg.output, cfg.follow, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "shoal: %s\n", err);
            return EXIT_ENV;
        }
        fprintf(stderr, "shoal: %lld bytes of items written to %s\n", n, cfg.output);
        return EXIT_OK;
    }
    case CMD_STATE: {
        char err[4600];
        if (queue_sqlite_report(cfg.state_dir, stdout, err, sizeof err) != 0) {
            fprintf(stderr, "shoal: %s\n", err);
            return EXIT_ENV;
        }
        return EXIT_OK;
    }
    default:
        break;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "shoal: cannot initialise libcurl\n");
        return EXIT_ENV;
    }
    raise_fd_limit();
    int code;
    if (cfg.command == CMD_CHECK) {
        code = load_and_check(&cfg, 0);
        curl_global_cleanup();
        return code;
    }

    static char start_url[400];
    static char *demo_args[2];
    static char *shell_args[2];
    if (cfg.command == CMD_SHELL) {
        /* a prompt in one worker state, with nothing else running: the
         * job is the prompt, and it may wait on the user for hours */
        cfg.script = SHELL_SCRIPT;
        shell_args[0] = (char *)cfg.try_target;
        cfg.args = shell_args;
        cfg.nargs = cfg.try_target ? 1 : 0;
    }
    int demo = cfg.command == CMD_DEMO;
    if (demo) {
        cfg.script = DEMO_SCRIPT;
        if (!strcmp(cfg.listen, "off")) {
            fprintf(stderr, "shoal: demo crawls the built-in site, so it needs --listen "
                            "(e.g. --listen 127.0.0.1:0)\n");
            return EXIT_USAGE;
        }
    }
    code = load_and_check(&cfg, 1);
    if (code != EXIT_OK) {
        curl_global_cleanup();
        return code;
    }
    if (cfg.command == CMD_SHELL) {
        cfg.workers = 1;
        cfg.concurrency = 1;
        cfg.retries = 0;
        cfg.timeout = 7 * 86400;
        cfg.quiet = 1;
        if (!strcmp(cfg.log_file, "logs/app.log"))
            cfg.log_file = "off";
        if (!strcmp(cfg.listen, "127.0.0.1:8080"))
            snprintf(cfg.listen, sizeof cfg.listen, "off");
    }
    if (cfg.command == CMD_TRY) {
        /* one job, once, in one worker; what it pushes is queued, not run */
        cfg.workers = 1;
        cfg.retries = 0;
        cfg.max_jobs = 1;
        cfg.quiet = 1;
        if (!strcmp(cfg.log_file, "logs/app.log"))
            cfg.log_file = "off"; /* a try is no part of the run's history */
        if (!strcmp(cfg.log_stderr, "warn"))
            cfg.log_stderr = "info"; /* the script's own log lines, as it writes them */
        if (!(cfg.try_job = tryout_job(cfg.try_target))) {
            fprintf(stderr, "shoal: out of memory\n");
            curl_global_cleanup();
            return EXIT_ENV;
        }
    }
    char err[512];
    static struct otel_config otel;
    if (otel_config_load(&otel, NULL, cfg.otlp_endpoint, cfg.service, cfg.no_propagate, cfg.script,
                         err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        curl_global_cleanup();
        return EXIT_USAGE;
    }
    /* one id for this process everywhere: the queue's leases, the logs, every backend */
    if (!(cfg.instance = otel_config_instance(&otel, cfg.instance))) {
        fprintf(stderr, "shoal: out of memory\n");
        otel_config_free(&otel);
        curl_global_cleanup();
        return EXIT_ENV;
    }
    if (otel_logs_config_load(&otel, NULL, cfg.otlp_logs, err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        otel_config_free(&otel);
        curl_global_cleanup();
        return EXIT_USAGE;
    }
    if (otel_metrics_config_load(&otel, NULL, cfg.otlp_metrics, err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        otel_config_free(&otel);
        curl_global_cleanup();
        return EXIT_USAGE;
    }
    if (otel.traces_on)
        fprintf(stderr, "shoal: traces go to %s (%s)\n", otel.traces.url,
                otel.traces.protocol == OTLP_GRPC ? "OTLP/gRPC" : "OTLP/HTTP protobuf");
    if (otel.logs_on)
        fprintf(stderr, "shoal: log records go to %s (%s)\n", otel.logs.url,
                otel.logs.protocol == OTLP_GRPC ? "OTLP/gRPC" : "OTLP/HTTP protobuf");
    if (otel.metrics_on)
        fprintf(stderr, "shoal: metrics go to %s (%s) every %gs and at exit\n", otel.metrics.url,
                otel.metrics.protocol == OTLP_GRPC ? "OTLP/gRPC" : "OTLP/HTTP protobuf",
                (double)otel.metric_interval_ms / 1000);
    const char *const *custom = NULL;
    const char *names[8];
    for (int i = 0; i < cfg.nmetric_labels; i++)
        names[i] = cfg.metric_labels[i];
    if (cfg.nmetric_labels)
        custom = names;
    /* one shard per worker thread, the producer's included */
    struct runmetrics *rm = runmetrics_new(cfg.workers + 1, cfg.max_series, !cfg.no_metrics, custom,
                                           cfg.nmetric_labels, err, sizeof err);
    if (!rm) {
        fprintf(stderr, "shoal: %s\n", err);
        curl_global_cleanup();
        return EXIT_ENV;
    }
    httpd *server = NULL;
    int listen_set = getenv("SHOAL_LISTEN") != NULL;
    for (int i = 1; i < argc && !listen_set; i++)
        listen_set = !strncmp(argv[i], "--listen", 8);
    if (start_server(&cfg, &server, !listen_set) != 0 || runmetrics_serve(rm, server) != 0) {
        httpd_stop(server);
        runmetrics_free(rm);
        curl_global_cleanup();
        return EXIT_ENV;
    }
    if (demo) {
        snprintf(start_url, sizeof start_url, "http://%s:%d/demo/", httpd_host(server),
                 httpd_port(server));
        if (cfg.nargs == 0) {
            demo_args[0] = start_url;
            cfg.args = demo_args;
            cfg.nargs = 1;
        }
    }
    if (cfg.linger > 0 && !server)
        fprintf(stderr, "shoal: --linger has nothing to serve with --listen off; ignored\n");
    struct otlp_metrics *om = NULL;
    if (otel.metrics_on && !(om = otlp_metrics_new(&otel, rm->reg, err, sizeof err))) {
        fprintf(stderr, "shoal: %s\n", err);
        otel_config_free(&otel);
        httpd_stop(server);
        runmetrics_free(rm);
        curl_global_cleanup();
        return EXIT_ENV;
    }
    code = run_script(&cfg, server, rm, &otel);
    atomic_store(&rm->finished, 1);
    otlp_metrics_shutdown(om); /* the final export: the figures are final now */
    linger(&cfg, server);
    otel_config_free(&otel);
    httpd_stop(server);
    runmetrics_free(rm);
    curl_global_cleanup();
    return code;
}
