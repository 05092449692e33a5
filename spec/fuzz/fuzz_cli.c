/* fuzz_cli.c - fuzz target for the command line (config_defaults +
 * config_parse).
 *
 * The input split on NUL bytes is the arguments after argv[0] = "shoal" (at
 * most 64 in all, each in its own exact-size allocation so a read past one
 * is caught under ASan). Whatever they are, config_parse must answer 0 or -1;
 * on 0 the config must be one a run can start from: a known command, every
 * number inside the range --help states, a script for run/check/dashboard
 * taken from the arguments, a terminated --listen, and the script's
 * arguments exactly what followed the first "--". Any breach aborts, which
 * libFuzzer and the CTest replay both report.
 *
 * On -1 it must have printed one usage error ("shoal: ..."), and an
 * "unknown option 'X'" must name an option, not the verb or the script; on 0
 * it must have printed nothing.
 *
 * config_parse reads SHOAL_* variables, so they are all unset once at start
 * for runs that do not depend on who runs them. Its stderr is caught in a
 * temporary file only while it runs, which keeps the logs quiet and
 * libFuzzer's own output where it was; sanitizer reports are sent to a copy
 * of the original stderr so that a crash inside config_parse is still
 * shown.
 *
 * config_parse uses glibc's getopt_long, whose hidden state survives a call
 * that stops mid-argument (e.g. "-hq" returns at -h with "q" pending): the
 * next call would resume inside the previous, freed argv. The real binary
 * parses once per process; here the state is reset before each input with
 * optind = 0 and one empty getopt() call. */
#include "core/config.h"

#include "fuzz_util.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS 64

extern char **environ;
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static int caught = -1, real_stderr = -1;

static void init(void)
{
    for (;;) {
        char **e = environ;
        while (*e && strncmp(*e, "SHOAL_", 6) != 0)
            e++;
        if (!*e)
            break;
        char name[256];
        size_t n = strcspn(*e, "=");
        must(n < sizeof name);
        memcpy(name, *e, n);
        name[n] = '\0';
        must(unsetenv(name) == 0);
    }
    FILE *f = tmpfile();
    must(f != NULL);
    caught = fileno(f);
    real_stderr = dup(2);
    must(real_stderr >= 0);
    if (__sanitizer_set_report_fd)
        __sanitizer_set_report_fd((void *)(intptr_t)real_stderr);
}

static void reset_getopt(void)
{
    char arg0[] = "shoal";
    char *argv[] = {arg0, NULL};
    optind = 0;
    opterr = 0;
    while (getopt(1, argv, "") != -1)
        ;
}

/* Runs config_parse with its stderr caught in msg (NUL-terminated, cut to
 * msglen). */
static int parse_quietly(struct config *c, int argc, char **argv, char *msg, size_t msglen)
{
    fflush(stderr);
    must(ftruncate(caught, 0) == 0 && lseek(caught, 0, SEEK_SET) == 0);
    dup2(caught, 2);
    int rc = config_parse(c, argc, argv);
    fflush(stderr);
    dup2(real_stderr, 2);
    ssize_t n = pread(caught, msg, msglen - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    return rc;
}

static void check_message(int rc, const char *msg)
{
    if (rc == 0) {
        must(msg[0] == '\0');
        return;
    }
    must(strncmp(msg, "shoal: ", 7) == 0);
    static const char unknown[] = "shoal: unknown option '";
    if (strncmp(msg, unknown, sizeof unknown - 1) == 0)
        must(msg[sizeof unknown - 1] == '-');
}

static int in_range(double v, double lo, double hi)
{
    return v >= lo && v <= hi;
}

static void check_config(const struct config *c, int argc, char **orig, char **argv)
{
    must(c->command > CMD_NONE && c->command <= CMD_DASHBOARD);
    if (c->command == CMD_HELP || c->command == CMD_VERSION)
        return; /* answered before any option is read */

    must(in_range(c->workers, 1, 1024));
    must(in_range(c->concurrency, 1, 1000000));
    must(in_range(c->retries, 0, 1000));
    must(in_range(c->timeout, 0.001, 86400) && c->timeout > 0);
    must(in_range(c->retry_delay, 0, 3600));
    must(in_range(c->rate, 0, 1e9));
    must(in_range((double)c->queue_size, 1, 1e9));
    must(in_range(c->duration, 0, 1e9));
    must(in_range((double)c->max_jobs, 0, 1e15));
    must(in_range((double)c->memory_mb, 1, 1 << 20));
    must(in_range(c->max_wedged, 0, 1000));
    must(in_range(c->linger, 0, 86400));
    must(c->quiet == 0 || c->quiet == 1);
    must(c->watch == 0 || c->watch == 1);
    must(memchr(c->listen, '\0', sizeof c->listen) != NULL);

    /* the script is one of the arguments before "--" */
    int dd = argc;
    for (int a = 2; a < argc; a++)
        if (!strcmp(orig[a], "--")) {
            dd = a;
            break;
        }
    if (c->command == CMD_RUN || c->command == CMD_CHECK || c->command == CMD_DASHBOARD) {
        must(c->script != NULL);
        int found = 0;
        for (int a = 2; a < dd && !found; a++)
            found = c->script == orig[a];
        must(found);
    }

    /* the script's arguments: everything after the first "--", in order */
    must(c->nargs == (dd < argc ? argc - dd - 1 : 0));
    must(c->args >= argv && c->args + c->nargs <= argv + argc);
    for (int i = 0; i < c->nargs; i++)
        must(c->args[i] == orig[dd + 1 + i]);
    must(c->args[c->nargs] == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }

    char *orig[MAX_ARGS + 1], *argv[MAX_ARGS + 1];
    int argc = 0;
    orig[argc++] = strdup("shoal");
    /* a NUL ends an argument; one at the very end starts no other */
    for (size_t i = 0, start = 0; start < size && argc < MAX_ARGS; i++) {
        if (i < size && data[i] != '\0')
            continue;
        char *a = malloc(i - start + 1);
        must(a != NULL);
        memcpy(a, data + start, i - start);
        a[i - start] = '\0';
        orig[argc++] = a;
        start = i + 1;
    }
    orig[argc] = NULL;
    memcpy(argv, orig, sizeof argv[0] * (size_t)(argc + 1));

    struct config c;
    config_defaults(&c);
    reset_getopt();
    char msg[4096];
    int rc = parse_quietly(&c, argc, argv, msg, sizeof msg);
    must(rc == 0 || rc == -1);
    check_message(rc, msg);
    if (rc == 0)
        check_config(&c, argc, orig, argv);

    for (int i = 0; i < argc; i++)
        free(orig[i]);
    return 0;
}
