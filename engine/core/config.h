/* config.h - everything a run is configured with, and where it came from.
 *
 * Filled once on the main thread (cli.c: built-in defaults, then the script's
 * `options`, then SHOAL_* variables, then flags; later wins) and read-only
 * after the threads start. */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stddef.h>

enum command {
    CMD_NONE,
    CMD_RUN,
    CMD_CHECK,
    CMD_DEMO,
    CMD_VERSION,
    CMD_HELP,
    CMD_DASHBOARD,
    CMD_TRY,
    CMD_SHELL,
    CMD_STATE,
    CMD_ITEMS
};

/* Exit codes, documented in --help and the README. */
enum exit_code {
    EXIT_OK = 0,          /* every job succeeded */
    EXIT_FAILURES = 1,    /* the run finished; some jobs failed after all retries */
    EXIT_USAGE = 2,       /* bad command line, option or variable */
    EXIT_SCRIPT = 3,      /* the script does not load, or init/produce/done raised */
    EXIT_ENV = 4,         /* the machine said no: address in use, file unwritable */
    EXIT_WEDGED = 5,      /* workers stuck in runaway code beyond --max-wedged, or the producer */
    EXIT_INTERRUPT = 130, /* stopped by Ctrl-C / SIGTERM before the queue drained */
};

struct config {
    enum command command;
    const char *script;
    int workers;
    int concurrency;
    int retries;
    double timeout;     /* seconds per attempt */
    double hook_timeout; /* seconds for the top level, init(), done() each; and `shoal check` */
    double retry_delay; /* backoff base, seconds */
    double rate;        /* job starts per second across workers; 0 = unlimited */
    long queue_size;
    double duration;    /* 0 = until drained */
    long max_jobs;      /* 0 = unlimited */
    long memory_mb;     /* per Lua state */
    int max_body_mb;    /* response body cap per request */
    int max_wedged;
    /* politeness: every job's group (its URL's host by default) */
    int per_host;        /* jobs of one group in flight at once, across workers; 0: no limit */
    double delay;        /* seconds between two starts in one group */
    double delay_jitter; /* 0..1: each gap is delay x a factor in [1-j, 1+j] */
    int autothrottle;    /* adapt each group's delay to its latency */
    double autothrottle_target; /* requests in flight per host autothrottle aims at */
    const char *robots;     /* "obey" or "ignore" */
    const char *user_agent; /* the User-Agent header; its first word is the robots.txt group */
    /* scope of jobs with a url: pushes outside it are dropped and counted */
    int max_depth;               /* links away from a produced job; -1: no limit */
    long max_pages;              /* url jobs accepted in the run; 0: no limit */
    const char *allowed_domains; /* comma-separated; subdomains included; NULL: any */
    const char *include;         /* POSIX extended regex a url must match, or NULL */
    const char *exclude;         /* ... must not match, or NULL */
    char listen[256];
    const char *lua_path;
    const char *summary_json;
    const char *proxy_list; /* --proxy-list: proxy URLs, taken in turn per host, or NULL */
    const char *http_cache; /* --http-cache: GET answers kept and replayed from there, or NULL */
    const char *output; /* --output: shoal.emit's items go there ("-": stdout), or NULL */
    const char *state_dir; /* --state-dir: the durable queue's directory, or NULL */
    const char *sync;      /* --sync: normal|full|off */
    int state_hold_mb;     /* --state-hold: MiB of unsaved changes before takes wait */
    const char *queue;     /* --queue: a shared queue's URL (redis://...), or NULL */
    const char *instance;  /* --instance: this process's id; main settles it before a run
                              (otel_config_instance): never NULL there */
    double lease_ttl;      /* --lease-ttl: seconds */
    int follow;            /* shoal items --follow */
    int output_append;  /* append to it instead of truncating */
    int quiet;
    int watch;
    const char *otlp_endpoint; /* --otlp-endpoint: OTLP base URL, or NULL */
    const char *service;       /* --service: service.name, or NULL */
    int no_propagate;          /* no traceparent on outgoing requests */
    int max_series;  /* per metric family */
    int no_metrics;  /* the engine's own hot-path metric updates off */
    const char *log_level;  /* debug|info|warn|error|off */
    const char *log_format; /* logfmt|json */
    const char *log_file;   /* path, or "off" */
    const char *log_stderr; /* the level from which lines also go to stderr */
    const char *loki;       /* Loki base or push URL, or NULL */
    int otlp_logs;          /* send logs over OTLP too */
    int otlp_metrics;       /* send metrics over OTLP too */
    double linger;          /* seconds /metrics stays up after the run; 0: none */
    const char *pyroscope;   /* Pyroscope URL: CPU profiles pushed there */
    const char *profile_dir; /* CPU profiles written there as pprof */
    double profile_interval; /* seconds per profile */
    int profile_hz;          /* samples per second of each thread's CPU */
    char metric_labels[8][64]; /* options.metric_labels */
    int nmetric_labels;
    const char *try_target; /* shoal try: the URL or job JSON given; shoal shell: its URL */
    char *try_job;          /* shoal try: the job it runs (tryout_job), or NULL: a plain run */
    char **args; /* after -- */
    int nargs;
    /* which fields a flag or variable set, so the script's options do not
     * override them: one bit per option in cli.c's table */
    unsigned long long set_mask;
};

/* Fills defaults. */
void config_defaults(struct config *c);

/* Parses argv (and SHOAL_* from the environment). Returns 0, or -1 after
 * printing a usage error to stderr. */
int config_parse(struct config *c, int argc, char **argv);

/* Applies one script option unless a flag or variable set it: a number, or
 * text for a string option. Returns 0, or -1 with a message (bad value). */
int config_apply_script_option(struct config *c, const char *name, double value,
                               const char *text, char *err, size_t errlen);

/* Checks cross-field sanity after the script's options. -1 + message. */
int config_validate(const struct config *c, char *err, size_t errlen);

void config_print_help(const char *command);

/* A script's short name, "crawl" for examples/crawl.lua (or the built-in
 * embedded:examples/crawl.lua): the default service name and dashboard
 * title. "shoal" when script is NULL. */
void config_script_name(const char *script, char *out, size_t cap);

#endif
