/* statusdoc.c: see statusdoc.h. */
#include "statusdoc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SD_MAX_FUNCS 256
#define SD_NSTATUS 13 /* BSVI_OK .. BSVI_ERR_REENTRANT */

static const char *const names[SD_NSTATUS] = {
    "BSVI_OK",          "BSVI_ERR_NULL_ARGUMENT",   "BSVI_ERR_ZERO_SIZE",
    "BSVI_ERR_OUT_OF_RANGE", "BSVI_ERR_BAD_VALUE",  "BSVI_ERR_SIZE_MISMATCH",
    "BSVI_ERR_CALLBACK_FAILED", "BSVI_ERR_CALLBACK_NAN", "BSVI_ERR_NO_MEMORY",
    "BSVI_ERR_BAD_STATE", "BSVI_ERR_NUMERIC",       "BSVI_ERR_CANCELLED",
    "BSVI_ERR_REENTRANT"};

static struct {
    int loaded;
    size_t n;
    char name[SD_MAX_FUNCS][64];
    unsigned mask[SD_MAX_FUNCS];
    char ref[SD_MAX_FUNCS][64]; /* "@return As bsvi_other(), plus ...": bsvi_other, else "" */
} db;

const char *sd_status_name(bsvi_status st)
{
    const int i = -(int)st;
    return (i >= 0 && i < SD_NSTATUS) ? names[i] : NULL;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf != NULL && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, 2 * cap);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
    }
    return buf;
}

/* Statuses named in text[from, to): tokens BSVI_OK and BSVI_ERR_XXX. */
static unsigned statuses_in(const char *from, const char *to)
{
    unsigned mask = 0;
    for (const char *p = from; p < to; ++p) {
        if (strncmp(p, "BSVI_", 5) != 0 || (p > from && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            continue;
        }
        size_t len = 0;
        while (p + len < to && (isupper((unsigned char)p[len]) || p[len] == '_')) {
            ++len;
        }
        for (int s = 0; s < SD_NSTATUS; ++s) {
            if (strlen(names[s]) == len && strncmp(p, names[s], len) == 0) {
                mask |= 1u << s;
            }
        }
        p += len ? len - 1 : 0;
    }
    return mask;
}

static void parse(const char *text)
{
    static const char decl[] = "BSVI_API bsvi_status ";
    for (const char *p = strstr(text, decl); p != NULL; p = strstr(p + 1, decl)) {
        const char *nm = p + sizeof decl - 1;
        size_t len = 0;
        while (isalnum((unsigned char)nm[len]) || nm[len] == '_') {
            ++len;
        }
        /* the doc comment just before the declaration */
        const char *end = NULL, *start = NULL;
        for (const char *q = p; q > text + 1; --q) {
            if (end == NULL && q[-2] == '*' && q[-1] == '/') {
                end = q - 2;
            }
            if (end != NULL && q[-1] == '*' && q > text + 2 && q[-2] == '*' && q[-3] == '/') {
                start = q;
                break;
            }
        }
        if (start == NULL || end == NULL || db.n >= SD_MAX_FUNCS || len >= 64) {
            continue;
        }
        const char *ret = strstr(start, "@return");
        if (ret == NULL || ret > end) {
            continue;
        }
        const char *stop = strstr(ret, "@since");
        if (stop == NULL || stop > end) {
            stop = end;
        }
        memcpy(db.name[db.n], nm, len);
        db.name[db.n][len] = '\0';
        db.mask[db.n] = statuses_in(ret, stop);
        /* "@return As bsvi_other(), plus X and Y": the list of bsvi_other and X, Y */
        db.ref[db.n][0] = '\0';
        const char *as = ret + strlen("@return");
        while (as < stop && isspace((unsigned char)*as)) {
            ++as;
        }
        if (strncmp(as, "As bsvi_", 8) == 0) {
            as += 3;
            size_t rl = 0;
            while (rl < 63 && (isalnum((unsigned char)as[rl]) || as[rl] == '_')) {
                ++rl;
            }
            if (as[rl] == '(') {
                memcpy(db.ref[db.n], as, rl);
                db.ref[db.n][rl] = '\0';
            }
        }
        db.n++;
    }
}

static void load(void)
{
    if (db.loaded) {
        return;
    }
    db.loaded = 1;
    /* The repository root from this file's path: .../tests/support/statusdoc.c */
    char root[4096];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *cut = strstr(root, "tests/support/statusdoc.c");
    if (cut == NULL) {
        return;
    }
    *cut = '\0';
    static const char *const headers[] = {"model",    "proposal", "svi",    "trajectory",
                                          "weights",  "stats",    "estimator", "evaluate",
                                          "rng",      "status",   "version", "diagnostics"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; ++i) {
        char path[4200];
        snprintf(path, sizeof path, "%sinclude/bsvi/%s.h", root, headers[i]);
        char *text = read_file(path);
        if (text != NULL) {
            parse(text);
            free(text);
        }
    }
    /* Resolve "As bsvi_other()" references (chains too: repeat until nothing changes). */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t f = 0; f < db.n; ++f) {
            if (db.ref[f][0] == '\0') {
                continue;
            }
            for (size_t g = 0; g < db.n; ++g) {
                if (strcmp(db.name[g], db.ref[f]) == 0 && (db.mask[f] | db.mask[g]) != db.mask[f]) {
                    db.mask[f] |= db.mask[g];
                    changed = 1;
                }
            }
        }
    }
}

const char *sd_reference(const char *fn)
{
    load();
    for (size_t f = 0; f < db.n; ++f) {
        if (strcmp(db.name[f], fn) == 0) {
            return db.ref[f][0] ? db.ref[f] : NULL;
        }
    }
    return NULL;
}

int sd_documented(const char *fn, bsvi_status st)
{
    load();
    const int i = -(int)st;
    for (size_t f = 0; f < db.n; ++f) {
        if (strcmp(db.name[f], fn) == 0) {
            return (i >= 0 && i < SD_NSTATUS && (db.mask[f] >> i & 1u)) ? 1 : 0;
        }
    }
    return -1;
}

size_t sd_num_functions(void)
{
    load();
    return db.n;
}

const char *sd_function(size_t i, unsigned *mask)
{
    load();
    if (i >= db.n) {
        return NULL;
    }
    if (mask != NULL) {
        *mask = db.mask[i];
    }
    return db.name[i];
}

const char *sd_call_name(const char *call, char *buf, size_t n)
{
    size_t len = 0;
    while (call[len] == ' ') {
        ++call;
    }
    while (len + 1 < n && (isalnum((unsigned char)call[len]) || call[len] == '_')) {
        buf[len] = call[len];
        ++len;
    }
    buf[len] = '\0';
    return buf;
}
