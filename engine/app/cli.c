/* cli.c - the command line: verbs, options, SHOAL_* variables, --help.
 *
 * One table describes every option: its flag, its variable, the script
 * option it shadows, its default and its help line, so --help, the
 * environment and the script's `options` can never disagree. Precedence,
 * later wins: built-in default < script `options` < SHOAL_* variable < flag.
 * Main thread only. */
#include "core/config.h"
#include "core/scope.h"
#include "base/fsutil.h"
#include "net/httpd.h"
#include "telemetry/logs/logger.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind { K_INT, K_NUM, K_STR, K_FLAG, K_DUR /* seconds, or with a unit: 500ms 3s 2m 1h */ };

struct opt {
    const char *flag;   /* long option name */
    const char *env;    /* SHOAL_* variable */
    const char *script; /* name in the script's options table, or NULL */
    enum kind kind;
    size_t off; /* field in struct config */
    double min, max;
    const char *arg; /* metavariable for --help */
    const char *help;
};

#define F(field) offsetof(struct config, field)

static const struct opt opts[] = {
    {"workers", "SHOAL_WORKERS", "workers", K_INT, F(workers), 1, 1024, "N",
     "worker threads, each with its own Lua state (default: CPU count)"},
    {"concurrency", "SHOAL_CONCURRENCY", "concurrency", K_INT, F(concurrency), 1, 1000000, "N",
     "jobs in flight per worker (default 64)"},
    {"retries", "SHOAL_RETRIES", "retries", K_INT, F(retries), 0, 1000, "N",
     "extra attempts for a failed job, with exponential backoff (default 2)"},
    {"timeout", "SHOAL_TIMEOUT", "timeout", K_NUM, F(timeout), 0.001, 86400, "SECONDS",
     "wall-clock budget of one attempt, I/O and CPU (default 10)"},
    {"hook-timeout", "SHOAL_HOOK_TIMEOUT", NULL, K_NUM, F(hook_timeout), 0.001, 86400, "SECONDS",
     "budget of the script's top level, init() and done() each, and of `shoal check` "
     "(default 10)"},
    {"retry-delay", "SHOAL_RETRY_DELAY", "retry_delay", K_NUM, F(retry_delay), 0, 3600, "SECONDS",
     "backoff before the first retry; doubles each time, with jitter (default 0.5)"},
    {"rate", "SHOAL_RATE", "rate", K_NUM, F(rate), 0, 1e9, "N",
     "at most N job starts per second across all workers (default 0: no limit)"},
    {"queue-size", "SHOAL_QUEUE_SIZE", "queue_size", K_INT, F(queue_size), 1, 1e9, "N",
     "produce() waits while this many jobs are queued (default 100000)"},
    {"duration", "SHOAL_DURATION", "duration", K_NUM, F(duration), 0, 1e9, "SECONDS",
     "stop starting jobs after this long, then drain (default 0: until the queue drains)"},
    {"max-jobs", "SHOAL_MAX_JOBS", "max_jobs", K_INT, F(max_jobs), 0, 1e15, "N",
     "start at most N jobs (retries aside), finish them, stop (default 0: no limit)"},
    {"memory", "SHOAL_MEMORY", "memory", K_INT, F(memory_mb), 1, 1 << 20, "MIB",
     "Lua memory cap per worker state; a job over it fails (default 512)"},
    {"max-body", "SHOAL_MAX_BODY", "max_body", K_INT, F(max_body_mb), 1, 4096, "MIB",
     "largest response body a request takes; a larger one fails that request (default 64)"},
    {"per-host", "SHOAL_PER_HOST", "per_host", K_INT, F(per_host), 0, 1000000, "N",
     "jobs of one host (a job's group: its url's host and port) in flight at once, across "
     "all workers; 0 for no limit (default 8)"},
    {"delay", "SHOAL_DELAY", "delay", K_NUM, F(delay), 0, 86400, "SECONDS",
     "least time between two job starts on one host; robots.txt's Crawl-delay raises it for "
     "its host (default 0)"},
    {"delay-jitter", "SHOAL_DELAY_JITTER", "delay_jitter", K_NUM, F(delay_jitter), 0, 1, "F",
     "each --delay gap is the delay times a random factor in [1-F, 1+F] (default 0)"},
    {"autothrottle", "SHOAL_AUTOTHROTTLE", "autothrottle", K_FLAG, F(autothrottle), 0, 1, NULL,
     "adapt each host's delay to its latency, aiming at --autothrottle-target requests in "
     "flight on it; errors never shorten the delay; --delay is the least, 60 s the most"},
    {"autothrottle-target", "SHOAL_AUTOTHROTTLE_TARGET", "autothrottle_target", K_NUM,
     F(autothrottle_target), 0.01, 1000, "N",
     "requests in flight per host that --autothrottle aims at (default 1)"},
    {"robots", "SHOAL_ROBOTS", "robots", K_STR, F(robots), 0, 0, "MODE",
     "obey: fetch each host's robots.txt before its first request and never request what it "
     "disallows (counted as disallowed); ignore (default obey)"},
    {"user-agent", "SHOAL_USER_AGENT", "user_agent", K_STR, F(user_agent), 0, 0, "TEXT",
     "the User-Agent header of every request; its first word is the group robots.txt is read "
     "for (default shoal/" SHOAL_VERSION ")"},
    {"max-depth", "SHOAL_MAX_DEPTH", "max_depth", K_INT, F(max_depth), 0, 1000000, "N",
     "drop pushed url jobs more than N pushes away from one produce() pushed (default: no "
     "limit)"},
    {"max-pages", "SHOAL_MAX_PAGES", "max_pages", K_INT, F(max_pages), 0, 1e15, "N",
     "accept at most N url jobs in the run, then drop further pushes (default 0: no limit)"},
    {"allowed-domains", "SHOAL_ALLOWED_DOMAINS", "allowed_domains", K_STR, F(allowed_domains),
     0, 0, "LIST",
     "drop pushed url jobs whose host is not one of these comma-separated domains or a "
     "subdomain of one (default: any)"},
    {"include", "SHOAL_INCLUDE", "include", K_STR, F(include), 0, 0, "REGEX",
     "drop pushed url jobs whose url does not match this POSIX extended regex"},
    {"exclude", "SHOAL_EXCLUDE", "exclude", K_STR, F(exclude), 0, 0, "REGEX",
     "drop pushed url jobs whose url matches this POSIX extended regex"},
    {"state-dir", "SHOAL_STATE_DIR", NULL, K_STR, F(state_dir), 0, 0, "DIR",
     "keep the queue, the dedup keys, the hosts' state and the items' position in DIR "
     "(SQLite); the same command with the same DIR resumes after Ctrl-C, a crash or kill -9"},
    {"sync", "SHOAL_SYNC", NULL, K_STR, F(sync), 0, 0, "LEVEL",
     "how --state-dir writes reach the disk: normal (default; survives a crash of shoal), "
     "full (survives a crash of the machine too), off (the OS decides)"},
    {"state-hold", "SHOAL_STATE_HOLD", NULL, K_INT, F(state_hold_mb), 1, 1 << 20, "MIB",
     "while --state-dir cannot be saved (a full disk), changes wait in memory; past this "
     "much, workers take no new jobs until they are saved (default 64)"},
    {"queue", "SHOAL_QUEUE", NULL, K_STR, F(queue), 0, 0, "URL",
     "share one run among many processes: redis://[USER:PASS@]HOST:PORT/DB?prefix=NAME "
     "(default: this process's own queue, in memory or in --state-dir)"},
    {"instance", "SHOAL_INSTANCE", NULL, K_STR, F(instance), 0, 0, "ID",
     "this process's name in a shared run, its telemetry and its logs (default: "
     "service.instance.id from OTEL_RESOURCE_ATTRIBUTES, else HOST-PID)"},
    {"follow", "SHOAL_FOLLOW", NULL, K_FLAG, F(follow), 0, 1, NULL,
     "shoal items: keep writing items as they come until the shared run has drained"},
    {"lease-ttl", "SHOAL_LEASE_TTL", NULL, K_NUM, F(lease_ttl), 1, 86400, "SECONDS",
     "with --queue: a job taken by a process that stops answering goes back after this "
     "long (default 30)"},
    {"max-wedged", "SHOAL_MAX_WEDGED", NULL, K_INT, F(max_wedged), 0, 1000, "N",
     "workers stuck in unstoppable Lua that may be replaced before the run stops (default 2)"},
    {"listen", "SHOAL_LISTEN", NULL, K_STR, F(listen), 0, 0, "ADDR",
     "serve /metrics, /healthz, /readyz and /demo/ on HOST:PORT; HOST:0 picks a port; "
     "off (default 127.0.0.1:8080, or a free port if that is taken)"},
    {"max-series", "SHOAL_MAX_SERIES", "max_series", K_INT, F(max_series), 1, 1000000, "N",
     "series per metric; past it new label sets fold into one __overflow__ series "
     "(default 2000)"},
    {"no-metrics", "SHOAL_NO_METRICS", NULL, K_FLAG, F(no_metrics), 0, 1, NULL,
     "skip the engine's per-job metric updates (script metrics and /metrics stay)"},
    {"otlp-endpoint", "SHOAL_OTLP_ENDPOINT", NULL, K_STR, F(otlp_endpoint), 0, 0, "URL",
     "send traces over OTLP to this collector (base URL, e.g. http://localhost:4318), and "
     "logs and metrics with --otlp-logs, --otlp-metrics; OTEL_EXPORTER_OTLP_* work too "
     "(default: no traces unless one is set)"},
    {"service", "SHOAL_SERVICE", NULL, K_STR, F(service), 0, 0, "NAME",
     "service.name of the run's telemetry (default: OTEL_SERVICE_NAME, else the script's name)"},
    {"no-propagate", "SHOAL_NO_PROPAGATE", NULL, K_FLAG, F(no_propagate), 0, 1, NULL,
     "do not send a W3C traceparent header with the script's requests"},
    {"log-level", "SHOAL_LOG_LEVEL", NULL, K_STR, F(log_level), 0, 0, "LEVEL",
     "debug, info, warn, error or off: the lowest level logged (default info: a line per "
     "job attempt)"},
    {"log-format", "SHOAL_LOG_FORMAT", NULL, K_STR, F(log_format), 0, 0, "FORMAT",
     "logfmt (key=value, like Go's slog) or json, one object per line (default logfmt)"},
    {"log-file", "SHOAL_LOG_FILE", NULL, K_STR, F(log_file), 0, 0, "FILE",
     "append log lines to FILE, directories created; reopened on SIGHUP; off for none "
     "(default logs/app.log)"},
    {"log-stderr", "SHOAL_LOG_STDERR", NULL, K_STR, F(log_stderr), 0, 0, "LEVEL",
     "lines at LEVEL and above also go to stderr, in short form (default warn)"},
    {"loki", "SHOAL_LOKI", NULL, K_STR, F(loki), 0, 0, "URL",
     "also push log lines to Loki at URL (e.g. http://localhost:3100), gzip'd batches"},
    {"otlp-logs", "SHOAL_OTLP_LOGS", NULL, K_FLAG, F(otlp_logs), 0, 1, NULL,
     "also send log records over OTLP, to the traces' endpoint or "
     "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"},
    {"otlp-metrics", "SHOAL_OTLP_METRICS", NULL, K_FLAG, F(otlp_metrics), 0, 1, NULL,
     "also send every metric over OTLP, each OTEL_METRIC_EXPORT_INTERVAL (default 60 s) and at "
     "exit, to the traces' endpoint or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
    {"linger", "SHOAL_LINGER", NULL, K_DUR, F(linger), 0, 86400, "DURATION",
     "after the run, keep serving /metrics (its final figures), /healthz and /readyz this "
     "long, e.g. 30s or 2m, so a scrape catches them; Ctrl-C ends it (default 0)"},
    {"pyroscope", "SHOAL_PYROSCOPE", NULL, K_STR, F(pyroscope), 0, 0, "URL",
     "push CPU profiles (C and Lua stacks) to Pyroscope at URL, e.g. http://localhost:4040"},
    {"profile-dir", "SHOAL_PROFILE_DIR", NULL, K_STR, F(profile_dir), 0, 0, "DIR",
     "write CPU profiles to DIR/cpu-<time>.pb.gz, for go tool pprof"},
    {"profile-interval", "SHOAL_PROFILE_INTERVAL", NULL, K_NUM, F(profile_interval), 0.1, 3600,
     "SECONDS", "one CPU profile per this long (default 10)"},
    {"profile-hz", "SHOAL_PROFILE_HZ", NULL, K_INT, F(profile_hz), 1, 1000, "N",
     "CPU samples per second of each thread's CPU time (default 100)"},
    {"lua-path", "SHOAL_LUA_PATH", NULL, K_STR, F(lua_path), 0, 0, "DIR",
     "load shoal's Lua modules from DIR instead of the built-in copies (development)"},
    {"summary-json", "SHOAL_SUMMARY_JSON", NULL, K_STR, F(summary_json), 0, 0, "FILE",
     "also write the end-of-run summary as JSON to FILE"},
    {"proxy-list", "SHOAL_PROXY_LIST", "proxy_list", K_STR, F(proxy_list), 0, 0, "FILE",
     "send requests through the proxies FILE lists, one URL a line (http://host:port, "
     "socks5://...), each host's requests taking them in turn; a request's proxy= wins"},
    {"http-cache", "SHOAL_HTTP_CACHE", "http_cache", K_STR, F(http_cache), 0, 0, "DIR",
     "keep every GET answer (but 5xx and 429) in DIR and replay it instead of asking again, "
     "whatever the cache headers say: for trying a script over and over, offline too; delete "
     "DIR to forget"},
    {"output", "SHOAL_OUTPUT", NULL, K_STR, F(output), 0, 0, "FILE",
     "write the items of shoal.emit(item) to FILE: one JSON object per line, or CSV if FILE "
     "ends in .csv (header: the first item's keys, sorted); - is stdout (the summary then goes "
     "to stderr); truncated at the start (default: items are counted, not saved)"},
    {"output-append", "SHOAL_OUTPUT_APPEND", NULL, K_FLAG, F(output_append), 0, 1, NULL,
     "append to --output instead of truncating it (CSV: the header only into an empty file)"},
    {"quiet", "SHOAL_QUIET", NULL, K_FLAG, F(quiet), 0, 1, NULL,
     "no progress line (live on a terminal, else one every 10 s)"},
    {"watch", "SHOAL_WATCH", NULL, K_FLAG, F(watch), 0, 1, NULL,
     "reload the script in every worker when the file changes (the queue is kept)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n > 0 ? (int)n : 1;
    c->concurrency = 64;
    c->retries = 2;
    c->timeout = 10;
    c->hook_timeout = 10;
    c->retry_delay = 0.5;
    c->queue_size = 100000;
    c->memory_mb = 512;
    c->max_body_mb = 64;
    c->max_wedged = 2;
    c->per_host = 8;
    c->autothrottle_target = 1;
    c->robots = "obey";
    c->sync = "normal";
    c->lease_ttl = 30;
    c->state_hold_mb = 64;
    c->user_agent = "shoal/" SHOAL_VERSION;
    c->max_depth = -1;
    c->max_series = 2000;
    c->log_level = "info";
    c->log_format = "logfmt";
    c->log_file = "logs/app.log";
    c->log_stderr = "warn";
    c->profile_interval = 10;
    c->profile_hz = 100;
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
}

/* Stores text as option o's value. Returns 0, or -1 with a message. */
static int set_value(struct config *c, const struct opt *o, const char *text, const char *from,
                     char *err, size_t errlen)
{
    char *p = (char *)c + o->off;
    if (o->kind == K_STR) {
        if (o->off == F(listen)) {
            if (strlen(text) >= sizeof c->listen) {
                snprintf(err, errlen, "%s: address too long", from);
                return -1;
            }
            /* a value that is no address is a usage error (2); one the
             * machine refuses is found when binding (4) */
            char host[256], why[400];
            int port;
            if (httpd_parse_listen(text, host, sizeof host, &port, why, sizeof why) != 0) {
                int var = from[0] != '-'; /* SHOAL_LISTEN: name it too */
                snprintf(err, errlen, "%s%s%s", var ? from : "", var ? ": " : "", why);
                return -1;
            }
            snprintf(c->listen, sizeof c->listen, "%s", text);
        } else {
            enum log_level lv;
            if ((o->off == F(log_level) || o->off == F(log_stderr)) &&
                log_level_parse(text, &lv) != 0) {
                snprintf(err, errlen,
                         "%s: '%s' is not a level; use debug, info, warn, error or off", from,
                         text);
                return -1;
            }
            if (o->off == F(log_format) && strcmp(text, "logfmt") && strcmp(text, "json")) {
                snprintf(err, errlen, "%s: '%s' is not a format; use logfmt or json", from, text);
                return -1;
            }
            if (o->off == F(pyroscope) && strncasecmp(text, "http://", 7) &&
                strncasecmp(text, "https://", 8)) {
                snprintf(err, errlen,
                         "%s: '%s' is not a URL; give Pyroscope's, such as http://localhost:4040",
                         from, text);
                return -1;
            }
            if (o->off == F(loki) && strncasecmp(text, "http://", 7) &&
                strncasecmp(text, "https://", 8)) {
                snprintf(err, errlen,
                         "%s: '%s' is not a URL; give Loki's, such as http://localhost:3100", from,
                         text);
                return -1;
            }
            if (o->off == F(sync) && strcmp(text, "normal") && strcmp(text, "full") &&
                strcmp(text, "off")) {
                snprintf(err, errlen, "%s: '%s' is not a sync level; use normal, full or off",
                         from, text);
                return -1;
            }
            if (o->off == F(queue) && strncmp(text, "rediss://", 9) == 0) {
                snprintf(err, errlen,
                         "%s: TLS to Redis (rediss://) is not built in; reach Redis through a "
                         "TLS tunnel (stunnel, spiped) and give the tunnel's "
                         "redis://HOST:PORT/DB?prefix=NAME",
                         from);
                return -1;
            }
            if (o->off == F(queue) && strncmp(text, "redis://", 8) && strcmp(text, "memory")) {
                snprintf(err, errlen,
                         "%s: '%s' is not a queue; give redis://HOST:PORT/DB?prefix=NAME "
                         "(or --state-dir DIR for a durable queue of this process)",
                         from, text);
                return -1;
            }
            if (o->off == F(robots) && strcmp(text, "obey") && strcmp(text, "ignore")) {
                snprintf(err, errlen, "%s: '%s' is not a mode; use obey or ignore", from, text);
                return -1;
            }
            if ((o->off == F(include) || o->off == F(exclude)) &&
                scope_regex_check(text, from, err, errlen) != 0)
                return -1;
            *(const char **)p = text;
        }
        return 0;
    }
    if (o->kind == K_FLAG) {
        if (!text || !*text || !strcmp(text, "1") || !strcmp(text, "true") ||
            !strcmp(text, "yes")) {
            *(int *)p = 1;
        } else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no")) {
            *(int *)p = 0;
        } else {
            snprintf(err, errlen, "%s: expected 1/0, true/false or yes/no, got '%s'", from, text);
            return -1;
        }
        return 0;
    }
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (o->kind == K_DUR && end != text && *end) {
        static const struct {
            const char *unit;
            double seconds;
        } units[] = {{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}};
        size_t u = 0;
        while (u < sizeof units / sizeof units[0] && strcmp(end, units[u].unit) != 0)
            u++;
        if (u == sizeof units / sizeof units[0]) {
            snprintf(err, errlen,
                     "%s: '%s' is not a duration; give seconds or a number with ms, s, m or h "
                     "(e.g. 30s)",
                     from, text);
            return -1;
        }
        v *= units[u].seconds;
        end += strlen(end);
    }
    if (errno || end == text || *end || !isfinite(v)) {
        snprintf(err, errlen, "%s: expected a number, got '%s'", from, text);
        return -1;
    }
    if (o->kind == K_INT && v != floor(v)) {
        snprintf(err, errlen, "%s: expected a whole number, got '%s'", from, text);
        return -1;
    }
    if (v < o->min || v > o->max) {
        /* %.15g: "1 to 1000000", not "1 to 1e+06" */
        snprintf(err, errlen, "%s: %s is out of range (%.15g to %.15g%s)", from, text, o->min,
                 o->max, o->kind == K_DUR ? " seconds" : "");
        return -1;
    }
    if (o->kind == K_NUM || o->kind == K_DUR)
        *(double *)p = v;
    else if (o->off == F(queue_size) || o->off == F(max_jobs) || o->off == F(memory_mb))
        *(long *)p = (long)v;
    else
        *(int *)p = (int)v;
    return 0;
}

int config_apply_script_option(struct config *c, const char *name, double value,
                               const char *text, char *err, size_t errlen)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        if (!o->script || strcmp(o->script, name) != 0)
            continue;
        if (c->set_mask & (1ull << i))
            return 0; /* a flag or variable wins */
        char num[64], from[96];
        snprintf(from, sizeof from, "options.%s in the script", name);
        if (o->kind == K_STR) {
            if (!text) {
                snprintf(err, errlen, "%s: expected a string", from);
                return -1;
            }
            /* the script's string lives as long as its state: keep a copy
             * for the run (never freed: the config lives as long) */
            char *copy = strdup(text);
            if (!copy) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            return set_value(c, o, copy, from, err, errlen);
        }
        if (text) {
            snprintf(err, errlen, "%s: expected a number", from);
            return -1;
        }
        snprintf(num, sizeof num, "%.17g", value);
        return set_value(c, o, num, from, err, errlen);
    }
    return 0; /* metric_labels and other non-numeric options are read elsewhere */
}

void config_script_name(const char *script, char *out, size_t cap)
{
    fs_script_name(script, out, cap);
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    if (c->command == CMD_RUN || c->command == CMD_CHECK || c->command == CMD_DASHBOARD ||
        c->command == CMD_TRY) {
        if (!c->script) {
            snprintf(err, errlen, "which script? usage: shoal %s SCRIPT%s",
                     c->command == CMD_RUN     ? "run"
                     : c->command == CMD_CHECK ? "check"
                     : c->command == CMD_TRY   ? "try"
                                               : "dashboard",
                     c->command == CMD_TRY ? " URL|JOB_JSON" : "");
            return -1;
        }
    }
    if (c->state_dir && c->queue && strcmp(c->queue, "memory")) {
        snprintf(err, errlen,
                 "--state-dir and --queue both say where the queue lives; give one (a shared "
                 "queue in Redis is already kept by Redis)");
        return -1;
    }
    if (c->command == CMD_ITEMS && (!c->queue || !c->output)) {
        snprintf(err, errlen, "usage: shoal items redis://HOST:PORT/DB?prefix=NAME --output FILE "
                              "[--follow]");
        return -1;
    }
    if ((c->command == CMD_RUN || c->command == CMD_DEMO) && c->queue &&
        strcmp(c->queue, "memory") && c->output) {
        snprintf(err, errlen,
                 "--output with --queue: a shared run keeps its items in the queue, each once "
                 "whichever process made it; write them to a file with `shoal items %s "
                 "--output %s` (beside the run with --follow, or after it)",
                 c->queue, c->output);
        return -1;
    }
    if (c->command == CMD_STATE && !c->state_dir) {
        snprintf(err, errlen, "which state? usage: shoal state DIR (a run's --state-dir)");
        return -1;
    }
    if (c->command == CMD_TRY && !c->try_target) {
        snprintf(err, errlen,
                 "which job? usage: shoal try SCRIPT URL, or shoal try SCRIPT '{\"url\": ...}'");
        return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    enum command cmd;
} verbs[] = {
    {"run", CMD_RUN},         {"check", CMD_CHECK}, {"demo", CMD_DEMO},
    {"version", CMD_VERSION}, {"help", CMD_HELP},   {"dashboard", CMD_DASHBOARD},
    {"try", CMD_TRY},         {"shell", CMD_SHELL},     {"state", CMD_STATE},
    {"items", CMD_ITEMS},
};

static void print_usage(FILE *out)
{
    fputs("Usage:\n"
          "  shoal run SCRIPT [options] [-- ARGS]  run until the queue drains (or --duration);\n"
          "                                        ARGS reach the script as shoal.args\n"
          "  shoal check SCRIPT                    load as a worker would; errors with file:line\n"
          "  shoal shell [URL] [options]          a Lua prompt with res (URL's response), doc\n"
          "                                        and fetch(url), to try selectors\n"
          "  shoal try SCRIPT URL|JOB_JSON [options]\n"
          "                                        run one job through handle() and print what it\n"
          "                                        did: requests, pushes, items, errors\n"
          "  shoal demo [options]                  crawl the built-in demo site\n"
          "  shoal state DIR                       what a --state-dir holds: jobs queued,\n"
          "                                        delayed, in flight, done; keys; hosts\n"
          "  shoal items URL --output FILE [--follow]\n"
          "                                        write a shared run's items (--queue URL) to\n"
          "                                        FILE, each once; --follow: until it drains\n"
          "  shoal dashboard SCRIPT                print a Grafana dashboard (JSON) for the\n"
          "                                        script's metrics\n"
          "  shoal version\n",
          out);
}

void config_print_help(const char *command)
{
    (void)command;
    printf("shoal " SHOAL_VERSION " - scripted jobs on a pool of worker threads, observable\n"
           "\n");
    print_usage(stdout);
    printf("\n"
           "Options (each also read from the variable shown; a flag wins over a variable,\n"
           "which wins over the script's `options` table):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].flag, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        printf("  %-26s %s\n  %-26s [%s]\n", left, opts[i].help, "", opts[i].env);
    }
    printf("  %-26s this help\n", "-h, --help");
    printf("\n"
           "Exit codes:\n"
           "  0    every job succeeded\n"
           "  1    the run finished, but some jobs failed after all their retries\n"
           "  2    usage error: no command, or a bad command, option, value or variable\n"
           "  3    script error: it does not load, lacks handle(), or init/produce/done "
           "raised;\n"
           "       or its top level or init() ran past --hook-timeout\n"
           "  4    environment error: address in use, file not writable, out of memory,\n"
           "       items lost (--output could not take them all)\n"
           "  5    more workers wedged in unstoppable Lua than --max-wedged allows, or\n"
           "       produce()/done() wedged (a compiled loop that ignores the watchdog)\n"
           "  130  interrupted (Ctrl-C / SIGTERM): in-flight jobs were finished first;\n"
           "       a second Ctrl-C aborts at once, whatever the script is doing\n"
           "\n"
           "Time budgets: handle() and labels() --timeout; the top level, init() and\n"
           "done() --hook-timeout each (done()'s waits included). produce() has none: it\n"
           "is stopped when the run ends (--duration, --max-jobs, Ctrl-C), and abandoned\n"
           "2 s later if it cannot be. Ctrl-C while the script loads or runs init()\n"
           "exits at once.\n"
           "\n"
           "Examples:\n"
           "  shoal demo\n"
           "  shoal run examples/crawl.lua --workers 2 --concurrency 256 -- http://host/\n"
           "  shoal check my_script.lua\n");
}

static void usage_error(const char *msg)
{
    fprintf(stderr, "shoal: %s\n(shoal --help lists every option)\n", msg);
}

int config_parse(struct config *c, int argc, char **argv)
{
    char err[512];
    int i = 1;
    if (argc < 2) {
        /* a usage error like any other (exit 2, usage on stderr), so a
         * wrapper that lost its arguments does not pass for a success */
        fprintf(stderr, "shoal: no command given\n\n");
        print_usage(stderr);
        fprintf(stderr, "\n(shoal --help lists every option)\n");
        return -1;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
        c->command = CMD_HELP;
        return 0;
    }
    if (!strcmp(verb, "--version") || !strcmp(verb, "-V")) {
        c->command = CMD_VERSION;
        return 0;
    }
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
        if (!strcmp(verb, verbs[v].name))
            c->command = verbs[v].cmd;
    if (c->command == CMD_NONE) {
        snprintf(err, sizeof err,
                 "unknown command '%s' (commands: run, check, demo, dashboard, version, help)",
                 verb);
        usage_error(err);
        return -1;
    }
    i = 2;

    /* variables first, so flags override them */
    for (size_t k = 0; k < NOPTS; k++) {
        const char *v = getenv(opts[k].env);
        if (!v)
            continue;
        if (set_value(c, &opts[k], v, opts[k].env, err, sizeof err) != 0) {
            usage_error(err);
            return -1;
        }
        c->set_mask |= 1ull << k;
    }

    struct option lo[NOPTS + 2];
    for (size_t k = 0; k < NOPTS; k++) {
        lo[k].name = opts[k].flag;
        lo[k].has_arg = opts[k].kind == K_FLAG ? no_argument : required_argument;
        lo[k].flag = NULL;
        lo[k].val = 1000 + (int)k;
    }
    lo[NOPTS] = (struct option){"help", no_argument, NULL, 'h'};
    lo[NOPTS + 1] = (struct option){0, 0, 0, 0};

    /* Everything after the first "--" belongs to the script; getopt only sees
     * what comes before, and permutes it so options may follow the script. */
    int dd = argc;
    for (int a = 2; a < argc; a++)
        if (!strcmp(argv[a], "--")) {
            dd = a;
            break;
        }
    /* getopt sees argv from the verb on, the verb standing in for argv[0];
     * optind = 0 makes glibc forget any earlier parse (it keeps hidden state) */
    char **av = argv + i - 1;
    optind = 0;
    opterr = 0;
    int ch, idx;
    while ((ch = getopt_long(dd - (i - 1), av, ":h", lo, &idx)) != -1) {
        if (ch == 'h') {
            c->command = CMD_HELP;
            return 0;
        }
        if (ch == '?' || ch == ':') {
            /* a short option in a cluster (-xh) is named by optopt; optind
             * may still point at the cluster or past it */
            char name[80];
            int oc = optopt < 0 ? optopt & 0xff : optopt; /* glibc sign-extends bytes >= 0x80 */
            if (oc >= 1000 && oc < 1000 + (int)NOPTS)
                snprintf(name, sizeof name, "--%s", opts[oc - 1000].flag);
            else if (oc > 0 && oc < 256)
                snprintf(name, sizeof name, "-%c", oc);
            else
                snprintf(name, sizeof name, "%s", av[optind - 1]);
            const char *bad = name;
            if (ch == ':')
                snprintf(err, sizeof err, "%s needs a value", bad);
            else
                snprintf(err, sizeof err, "unknown option '%s'", bad);
            usage_error(err);
            return -1;
        }
        size_t k = (size_t)(ch - 1000);
        char from[64];
        snprintf(from, sizeof from, "--%s", opts[k].flag);
        if (set_value(c, &opts[k], optarg, from, err, sizeof err) != 0) {
            usage_error(err);
            return -1;
        }
        c->set_mask |= 1ull << k;
    }
    int rest = optind + i - 1;
    if ((c->command == CMD_RUN || c->command == CMD_CHECK || c->command == CMD_DASHBOARD ||
         c->command == CMD_TRY) &&
        rest < dd)
        c->script = argv[rest++];
    if (c->command == CMD_TRY && rest < dd)
        c->try_target = argv[rest++];
    if (c->command == CMD_SHELL && rest < dd)
        c->try_target = argv[rest++]; /* the page to load first */
    if (c->command == CMD_STATE && rest < dd)
        c->state_dir = argv[rest++];
    if (c->command == CMD_ITEMS && rest < dd)
        c->queue = argv[rest++];
    if (rest < dd) {
        snprintf(err, sizeof err,
                 "unexpected argument '%s' (arguments for the script go after --, e.g. "
                 "shoal run s.lua -- %s)",
                 argv[rest], argv[rest]);
        usage_error(err);
        return -1;
    }
    c->args = dd < argc ? argv + dd + 1 : argv + argc;
    c->nargs = dd < argc ? argc - dd - 1 : 0;
    if (config_validate(c, err, sizeof err) != 0) {
        usage_error(err);
        return -1;
    }
    return 0;
}
