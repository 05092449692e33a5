/* symbols.c - names for code addresses of this process (see sampler.h).
 *
 * libdw's Dwfl is told the process's modules as the dynamic loader lists
 * them (dl_iterate_phdr; the vDSO read from memory) and reads each
 * module's symbol table (static functions too, when the object keeps its
 * .symtab, as the shoal binary does) and DWARF. A function's file and
 * line are its declaration's, from the DIE of the subprogram holding its
 * entry address, so every address inside one function gives the same
 * answer; without a subprogram DIE, the line-table row of the entry is
 * used instead. Separate debug files are looked for only on this machine
 * (/usr/lib/debug/.build-id): a profiler never downloads debuginfo.
 *
 * Two caches, both living until symbols_free: address -> function, and
 * function entry -> function; strings are interned in an arena we own,
 * since a refresh of the module list may free Dwfl's (the profiler interns
 * its Lua frames there too, so one text is one pointer). An address in no
 * known module makes the module list be read again when the loader says
 * an object came or went since (its dlpi_adds/dlpi_subs counts), so a
 * library loaded later is found and JIT code costs one check.
 *
 * Threads: a struct symbols belongs to the thread using it (the
 * profiler's); nothing here is shared. */
#define _GNU_SOURCE
#include "base/hash.h"
#include "telemetry/profiles/sampler.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>
#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef SHOAL_SOURCE_DIR
#define SHOAL_SOURCE_DIR ""
#endif

#define ARENA_BLOCK 65536

struct func {
    const char *name, *file;
    int64_t line;
};

/* open addressing; key 0 is empty (address 0 is never code) */
struct addr_map {
    uintptr_t *keys;
    struct func **vals;
    size_t cap, n;
};

struct str_map {
    const char **keys;
    size_t cap, n;
};

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(16) char data[];
};

struct symbols {
    Dwfl *dwfl;
    unsigned long long adds, subs; /* the loader's counts at the last refresh */
    struct addr_map by_pc, by_entry;
    struct str_map strings;
    struct arena_block *arena;
    struct func unknown;
};

static void *arena_alloc(struct symbols *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_block *b = s->arena;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->next = s->arena;
        b->used = 0;
        b->size = size;
        s->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static uint64_t hash_addr(uintptr_t a)
{
    uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_str(const char *p, size_t n)
{
    return fnv1a(p, n);
}

static struct func *addr_get(const struct addr_map *m, uintptr_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash_addr(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static int addr_put(struct addr_map *m, uintptr_t key, struct func *f)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        uintptr_t *keys = calloc(cap, sizeof *keys);
        struct func **vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return -1;
        }
        for (size_t j = 0; j < m->cap; j++) {
            if (!m->keys[j])
                continue;
            size_t i = hash_addr(m->keys[j]) & (cap - 1);
            while (keys[i])
                i = (i + 1) & (cap - 1);
            keys[i] = m->keys[j];
            vals[i] = m->vals[j];
        }
        free(m->keys);
        free(m->vals);
        m->keys = keys;
        m->vals = vals;
        m->cap = cap;
    }
    size_t i = hash_addr(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = f;
    return 0;
}

const char *symbols_intern(struct symbols *s, const char *p, size_t n)
{
    struct str_map *m = &s->strings;
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        const char **keys = calloc(cap, sizeof *keys);
        if (!keys)
            return NULL;
        for (size_t j = 0; j < m->cap; j++) {
            if (!m->keys[j])
                continue;
            size_t i = hash_str(m->keys[j], strlen(m->keys[j])) & (cap - 1);
            while (keys[i])
                i = (i + 1) & (cap - 1);
            keys[i] = m->keys[j];
        }
        free(m->keys);
        m->keys = keys;
        m->cap = cap;
    }
    size_t i = hash_str(p, n) & (m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (strncmp(m->keys[i], p, n) == 0 && m->keys[i][n] == 0)
            return m->keys[i];
    char *copy = arena_alloc(s, n + 1);
    if (!copy)
        return NULL;
    memcpy(copy, p, n);
    copy[n] = 0;
    m->keys[i] = copy;
    m->n++;
    return copy;
}

static const char *intern_str(struct symbols *s, const char *p)
{
    return symbols_intern(s, p, strlen(p));
}

#define VDSO_NAME "[vdso]"

/* An object's ELF: its file, or for the vDSO the image in our memory. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                    char **file_name, Elf **elfp)
{
    if (strcmp(modname, VDSO_NAME) != 0)
        return dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
    *elfp = NULL;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
    if (!eh)
        return -1;
    /* the image is mapped whole: headers, sections and section headers */
    size_t size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > size)
            size = ph[i].p_offset + ph[i].p_filesz;
    elf_version(EV_CURRENT);
    *elfp = elf_memory((char *)eh, size);
    return -1;
}

static const Dwfl_Callbacks callbacks = {
    .find_elf = find_elf,
    /* debug files from this machine only: dwfl_standard_find_debuginfo
     * would also ask the debuginfod servers in DEBUGINFOD_URLS */
    .find_debuginfo = dwfl_build_id_find_debuginfo,
};

struct report {
    Dwfl *dwfl;
    const char *exe;
};

/* Each object the dynamic loader has loaded, from its own list: reading
 * /proc/self/maps would also find the copies of ELF files libelf maps
 * for reading, at other addresses. An object reported again with the
 * same name and range keeps what Dwfl has read of it. */
static int report_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct report *r = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = ph->p_vaddr & ~(uintptr_t)(ph->p_align ? ph->p_align - 1 : 0);
        if (start < lo)
            lo = start;
        if (ph->p_vaddr + ph->p_memsz > hi)
            hi = ph->p_vaddr + ph->p_memsz;
    }
    if (hi <= lo)
        return 0;
    int vdso = info->dlpi_addr + lo == getauxval(AT_SYSINFO_EHDR);
    const char *name = info->dlpi_name;
    if (vdso)
        name = VDSO_NAME;
    else if (!name || !name[0])
        name = r->exe; /* the main program */
    if (vdso || name[0] == '/')
        dwfl_report_module(r->dwfl, name, info->dlpi_addr + lo, info->dlpi_addr + hi);
    return 0;
}

static int loader_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
    unsigned long long *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c[0] = info->dlpi_adds;
        c[1] = info->dlpi_subs;
    }
    return 1; /* the first object says it */
}

/* Whether an object was loaded or unloaded since the last refresh. */
static int loader_changed(struct symbols *s)
{
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(loader_counts, c);
    return c[0] != s->adds || c[1] != s->subs;
}

static int refresh(struct symbols *s)
{
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(loader_counts, c);
    s->adds = c[0];
    s->subs = c[1];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    struct report r = {s->dwfl, exe};
    dwfl_report_begin(s->dwfl);
    dl_iterate_phdr(report_object, &r);
    return dwfl_report_end(s->dwfl, NULL, NULL) == 0 ? 0 : -1;
}

struct symbols *symbols_new(void)
{
    struct symbols *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->unknown.name = intern_str(s, "??");
    s->unknown.file = intern_str(s, "");
    s->dwfl = dwfl_begin(&callbacks);
    if (!s->unknown.name || !s->unknown.file || !s->dwfl || refresh(s) != 0) {
        symbols_free(s);
        return NULL;
    }
    return s;
}

void symbols_free(struct symbols *s)
{
    if (!s)
        return;
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s->by_pc.keys);
    free(s->by_pc.vals);
    free(s->by_entry.keys);
    free(s->by_entry.vals);
    free(s->strings.keys);
    while (s->arena) {
        struct arena_block *next = s->arena->next;
        free(s->arena);
        s->arena = next;
    }
    free(s);
}

/* Drops "." and resolves "dir/.." in place, as text: glibc's debug
 * information says "./posix/../sysdeps/unix/sysv/linux/nanosleep.c". */
static void tidy_path(char *path)
{
    int absolute = path[0] == '/';
    char *out = path, *p = path;
    size_t kept = 0; /* components in out that ".." may take back */
    while (*p) {
        while (*p == '/')
            p++;
        char *end = p + strcspn(p, "/");
        size_t len = (size_t)(end - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            p = end;
            continue;
        }
        if (len == 2 && p[0] == '.' && p[1] == '.' && kept > 0) {
            while (out > path && out[-1] != '/')
                out--;
            if (out > path + absolute)
                out--;
            kept--;
            p = end;
            continue;
        }
        if (out > path || absolute)
            *out++ = '/';
        memmove(out, p, len);
        out += len;
        if (!(len == 2 && p[0] == '.' && p[1] == '.'))
            kept++;
        p = end;
    }
    if (out == path && absolute)
        *out++ = '/';
    *out = 0;
}

/* "engine/core/worker.c" for a file under the source tree; other paths (system
 * headers, libraries) stay whole. A relative name is relative to the
 * compilation directory, except that libdw has already put that
 * directory in front of the names of its own files: glibc's
 * "./nptl/pthread_create.c" in "./nptl" but "../sysdeps/..." in
 * "./posix". */
static const char *source_path(struct symbols *s, const char *dir, const char *file)
{
    char path[4096];
    size_t dlen = dir ? strlen(dir) : 0;
    if (file[0] != '/' && dlen && !(strncmp(file, dir, dlen) == 0 && file[dlen] == '/'))
        snprintf(path, sizeof path, "%s/%s", dir, file);
    else
        snprintf(path, sizeof path, "%s", file);
    tidy_path(path);
    const char *out = path;
    size_t root = strlen(SHOAL_SOURCE_DIR);
    if (root && strncmp(out, SHOAL_SOURCE_DIR, root) == 0 && out[root] == '/')
        out += root + 1;
    return intern_str(s, out);
}

static const char *comp_dir(Dwarf_Die *cu)
{
    Dwarf_Attribute attr;
    return dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
}

/* The declaration of the function whose entry is entry: file and line of
 * its subprogram DIE, else of the line-table row at the entry. */
static void source_of(struct symbols *s, Dwfl_Module *mod, Dwarf_Addr entry, struct func *f)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, entry, &bias);
    if (cu) {
        Dwarf_Die *scopes = NULL;
        int n = dwarf_getscopes(cu, entry - bias, &scopes);
        for (int i = 0; i < n; i++) {
            if (dwarf_tag(&scopes[i]) != DW_TAG_subprogram)
                continue;
            const char *file = dwarf_decl_file(&scopes[i]);
            int line = 0;
            if (file && dwarf_decl_line(&scopes[i], &line) == 0) {
                f->file = source_path(s, comp_dir(cu), file);
                f->line = line;
            }
            break;
        }
        free(scopes);
        if (f->file)
            return;
    }
    Dwfl_Line *row = dwfl_module_getsrc(mod, entry);
    int line = 0;
    const char *file = row ? dwfl_lineinfo(row, NULL, &line, NULL, NULL, NULL) : NULL;
    if (file) {
        f->file = source_path(s, dwfl_line_comp_dir(row), file);
        f->line = line;
    }
}

/* gcc's clones and split parts ("worker_main.cold", "parse.constprop.0")
 * are the function a person wrote. */
static size_t plain_name_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot && dot != name ? (size_t)(dot - name) : strlen(name);
}

/* "[libc.so.6]": a known object, an unknown function in it. */
static struct func *object_func(struct symbols *s, Dwfl_Module *mod)
{
    void **userdata;
    const char *path = dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
    if (*userdata)
        return *userdata;
    if (!path)
        path = "";
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[256];
    snprintf(name, sizeof name, base[0] == '[' ? "%s" : "[%s]", base);
    struct func *f = arena_alloc(s, sizeof *f);
    if (!f || !(f->name = intern_str(s, name)) || !(f->file = intern_str(s, path)))
        return NULL;
    f->line = 0;
    *userdata = f;
    return f;
}

/* The function at addr. */
static struct func *resolve(struct symbols *s, uintptr_t addr)
{
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, addr);
    if (!mod) {
        if (!loader_changed(s) || refresh(s) != 0)
            return &s->unknown;
        if (!(mod = dwfl_addrmodule(s->dwfl, addr)))
            return &s->unknown;
    }
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
    if (!name || !name[0])
        return object_func(s, mod);
    uintptr_t entry = addr - off;
    struct func *f = addr_get(&s->by_entry, entry);
    if (f)
        return f;
    if (!(f = arena_alloc(s, sizeof *f)) ||
        !(f->name = symbols_intern(s, name, plain_name_len(name))))
        return NULL;
    f->file = NULL;
    f->line = 0;
    source_of(s, mod, entry, f);
    if (!f->file) {
        /* no debug information: the object's path, as pprof tools show */
        const char *path = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        if (!(f->file = intern_str(s, path ? path : "")))
            return NULL;
    }
    if (addr_put(&s->by_entry, entry, f) != 0)
        return NULL;
    return f;
}

int symbols_lookup(struct symbols *s, uintptr_t pc, const char **name, const char **file,
                   int64_t *line)
{
    struct func *f = pc > 1 ? addr_get(&s->by_pc, pc) : &s->unknown;
    if (!f) {
        f = resolve(s, pc - 1);
        if (!f)
            f = &s->unknown; /* out of memory: asked again next time */
        else
            addr_put(&s->by_pc, pc, f);
    }
    *name = f->name;
    *file = f->file;
    *line = f->line;
    return 0;
}
