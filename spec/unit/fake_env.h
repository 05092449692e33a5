/* fake_env.h - an environment for tests of settings read through an
 * otel_getenv_fn: set() adds a variable, nvars = 0 empties it, fake_env is
 * the lookup to pass in place of getenv. One per test binary (static). */
#ifndef SHOAL_FAKE_ENV_H
#define SHOAL_FAKE_ENV_H

#include <string.h>

static const char *vars[64][2];
static int nvars;

static inline const char *fake_env(const char *name)
{
    for (int i = 0; i < nvars; i++)
        if (strcmp(vars[i][0], name) == 0)
            return vars[i][1];
    return NULL;
}

static inline void set(const char *k, const char *v)
{
    vars[nvars][0] = k;
    vars[nvars][1] = v;
    nvars++;
}

#endif
