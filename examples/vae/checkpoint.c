/* Versioned binary checkpoints (see checkpoint.h). */
#include "checkpoint.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char MAGIC[8] = {'B', 'S', 'V', 'I', 'V', 'A', 'E', 0};
#define HEADER_BYTES 24 /* magic, version, reserved, size */
#define DATA_NAME_BYTES 32

uint64_t vae_fnv1a64(const unsigned char *data, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; ++i) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int error(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return 1;
}

/* ---- writer --------------------------------------------------------------- */

typedef struct writer {
    unsigned char *buf;
    size_t len, cap;
} writer;

static void put_bytes(writer *w, const void *p, size_t n) {
    if (w->buf) memcpy(w->buf + w->len, p, n);
    w->len += n;
}
static void put_u64(writer *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(w, b, 8);
}
static void put_u32(writer *w, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(w, b, 4);
}
static void put_f64(writer *w, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_u64(w, u);
}
static void put_f64s(writer *w, const double *v, size_t n) {
    for (size_t i = 0; i < n; ++i) put_f64(w, v[i]);
}
/* Network arrays in this build's precision. */
static void put_reals(writer *w, const vae_real *v, size_t n) {
    for (size_t i = 0; i < n; ++i) {
#if VAE_REAL_BITS == 32
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        put_u32(w, u);
#else
        put_f64(w, v[i]);
#endif
    }
}

/* Serialises everything before the hash; with w->buf NULL it only measures. */
static void serialise(writer *w, const vae_trainer *t, const vae_progress *p, size_t total,
                      const double *pi, size_t npi) {
    const vae_config *c = &t->cfg;
    put_bytes(w, MAGIC, sizeof MAGIC);
    put_u32(w, VAE_CHECKPOINT_VERSION);
    put_u32(w, VAE_REAL_BITS);
    put_u64(w, (uint64_t)total);
    put_u32(w, (uint32_t)c->method);
    put_u32(w, (uint32_t)c->lik);
    put_u64(w, c->x_dim);
    put_u64(w, c->h_dim);
    put_u64(w, c->z_dim);
    put_u64(w, c->batch);
    put_u64(w, c->k);
    put_u64(w, c->sir_m);
    put_u32(w, (uint32_t)c->iwae_dreg);
    put_u32(w, (uint32_t)c->svi_rule);
    put_f64(w, c->svi_eta);
    put_f64(w, c->svi_clip);
    put_f64(w, c->lr);
    put_f64(w, c->beta1);
    put_f64(w, c->beta2);
    put_f64(w, c->adam_eps);
    put_u64(w, c->kl_anneal);
    put_f64(w, c->pi_lr);
    put_u64(w, c->seed);
    char name[DATA_NAME_BYTES];
    memset(name, 0, sizeof name);
    for (size_t i = 0; i + 1 < sizeof name && c->data[i]; ++i) name[i] = c->data[i];
    put_bytes(w, name, sizeof name);
    put_u64(w, p->epoch);
    put_u64(w, t->step);
    put_u64(w, t->net.adam_t);
    put_u64(w, p->best_epoch);
    put_u64(w, p->bad_epochs);
    put_f64(w, p->best_valid);
    put_f64(w, p->seconds);
    put_u64(w, npi);
    put_f64s(w, pi, npi);
    put_u64(w, t->net.nparams);
    put_reals(w, t->net.params, t->net.nparams);
    put_reals(w, t->net.adam_m, t->net.nparams);
    put_reals(w, t->net.adam_v, t->net.nparams);
    put_reals(w, t->net.adam_vmax, t->net.nparams);
}

int vae_checkpoint_save(const char *path, const vae_trainer *t, const vae_progress *p,
                        char *err, size_t errlen) {
    double pi[64];
    size_t npi = bsvi_estimator_num_buffer_weights(t->est);
    if (npi > sizeof pi / sizeof *pi) return error(err, errlen, "too many buffer weights (%zu)", npi);
    if (npi > 0 && bsvi_estimator_get_buffer_weights(t->est, pi, npi) != BSVI_OK)
        return error(err, errlen, "cannot read the buffer weights: %s",
                     bsvi_estimator_last_error(t->est));
    writer w = {NULL, 0, 0};
    serialise(&w, t, p, 0, pi, npi);
    const size_t total = w.len + 8;
    w.buf = (unsigned char *)malloc(total);
    if (!w.buf) return error(err, errlen, "out of memory writing %s", path);
    w.len = 0;
    serialise(&w, t, p, total, pi, npi);
    put_u64(&w, vae_fnv1a64(w.buf, total - 8));

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        free(w.buf);
        return error(err, errlen, "checkpoint path too long");
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(w.buf);
        return error(err, errlen, "cannot create %s", tmp);
    }
    const int bad = fwrite(w.buf, 1, total, f) != total;
    free(w.buf);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return error(err, errlen, "cannot write %s (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return error(err, errlen, "cannot rename %s to %s", tmp, path);
    }
    return 0;
}

/* ---- reader --------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *buf;
    size_t len, pos;
    int overrun;
} reader;

static const unsigned char *take(reader *r, size_t n) {
    if (r->overrun || n > r->len - r->pos) {
        r->overrun = 1;
        return NULL;
    }
    const unsigned char *p = r->buf + r->pos;
    r->pos += n;
    return p;
}
static uint64_t get_u64(reader *r) {
    const unsigned char *b = take(r, 8);
    uint64_t v = 0;
    if (b)
        for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
    return v;
}
static uint32_t get_u32(reader *r) {
    const unsigned char *b = take(r, 4);
    uint32_t v = 0;
    if (b)
        for (int i = 3; i >= 0; --i) v = (v << 8) | b[i];
    return v;
}
static double get_f64(reader *r) {
    uint64_t u = get_u64(r);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}
/* A network real stored with `bits` (32 or 64), converted to this build's vae_real. */
static vae_real get_real(reader *r, unsigned bits) {
    if (bits == 32) {
        const uint32_t u = get_u32(r);
        float v;
        memcpy(&v, &u, sizeof v);
        return (vae_real)v;
    }
    return (vae_real)get_f64(r);
}

int vae_checkpoint_load(const char *path, vae_trainer *t, vae_progress *p, char *err,
                        size_t errlen) {
    memset(t, 0, sizeof *t);
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "rb");
    if (!f) return error(err, errlen, "%s: cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return error(err, errlen, "%s: cannot seek", path);
    }
    const long flen = ftell(f);
    rewind(f);
    if (flen < 0) {
        fclose(f);
        return error(err, errlen, "%s: cannot tell its size", path);
    }
    const size_t len = (size_t)flen;
    unsigned char *buf = (unsigned char *)malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return error(err, errlen, "%s: out of memory (%zu bytes)", path, len);
    }
    const size_t got = fread(buf, 1, len, f);
    fclose(f);
    int rc = 1;
    if (got != len) {
        error(err, errlen, "%s: read %zu of %zu bytes", path, got, len);
        goto out;
    }
    if (len < sizeof MAGIC || memcmp(buf, MAGIC, sizeof MAGIC) != 0) {
        error(err, errlen, "%s: not a libbsvi VAE checkpoint (bad magic)", path);
        goto out;
    }
    reader r = {buf, len, sizeof MAGIC, 0};
    const uint32_t version = get_u32(&r);
    const uint32_t prec_field = get_u32(&r);
    const uint64_t total = get_u64(&r);
    if (r.overrun) {
        error(err, errlen, "%s: truncated checkpoint (%zu bytes, shorter than the header)", path,
              len);
        goto out;
    }
    if (version != 1u && version != VAE_CHECKPOINT_VERSION) {
        error(err, errlen, "%s: checkpoint format version %u, this program reads versions 1 to %u",
              path, (unsigned)version, VAE_CHECKPOINT_VERSION);
        goto out;
    }
    const unsigned bits = version == 1u ? 64u : (unsigned)prec_field;
    if ((version == 1u && prec_field != 0) || (bits != 32u && bits != 64u)) {
        error(err, errlen, "%s: unknown network precision field %u", path, (unsigned)prec_field);
        goto out;
    }
    if (total != len) {
        error(err, errlen, "%s: %s checkpoint: %zu bytes, the header says %llu", path,
              len < total ? "truncated" : "oversized", len, (unsigned long long)total);
        goto out;
    }
    uint64_t stored = 0;
    for (int i = 7; i >= 0; --i) stored = (stored << 8) | buf[len - 8 + (size_t)i];
    if (vae_fnv1a64(buf, len - 8) != stored) {
        error(err, errlen, "%s: corrupted checkpoint (checksum mismatch)", path);
        goto out;
    }

    vae_config c;
    vae_config_default(&c);
    c.method = (vae_method)get_u32(&r);
    c.lik = (vae_likelihood)get_u32(&r);
    c.x_dim = (size_t)get_u64(&r);
    c.h_dim = (size_t)get_u64(&r);
    c.z_dim = (size_t)get_u64(&r);
    c.batch = (size_t)get_u64(&r);
    c.k = (size_t)get_u64(&r);
    c.sir_m = (size_t)get_u64(&r);
    c.iwae_dreg = (int)get_u32(&r);
    c.svi_rule = (bsvi_step_rule)get_u32(&r);
    c.svi_eta = get_f64(&r);
    c.svi_clip = get_f64(&r);
    c.lr = get_f64(&r);
    c.beta1 = get_f64(&r);
    c.beta2 = get_f64(&r);
    c.adam_eps = get_f64(&r);
    c.kl_anneal = get_u64(&r);
    c.pi_lr = get_f64(&r);
    c.seed = get_u64(&r);
    const unsigned char *name = take(&r, DATA_NAME_BYTES);
    if (name) {
        memcpy(c.data, name, DATA_NAME_BYTES);
        c.data[sizeof c.data - 1] = '\0';
    }
    p->epoch = get_u64(&r);
    const uint64_t step = get_u64(&r);
    const uint64_t adam_t = get_u64(&r);
    p->best_epoch = get_u64(&r);
    p->bad_epochs = get_u64(&r);
    p->best_valid = get_f64(&r);
    p->seconds = get_f64(&r);
    const uint64_t npi = get_u64(&r);
    if (r.overrun || (unsigned)c.method >= VAE_NUM_METHODS ||
        (c.lik != VAE_LIK_BERNOULLI && c.lik != VAE_LIK_LOGISTIC) || c.x_dim == 0 ||
        c.h_dim == 0 || c.z_dim == 0 || c.x_dim > 100000 || c.h_dim > 100000 ||
        c.z_dim > 100000 || c.batch == 0 || c.batch > 1000000 || c.k == 0 || c.k > 1000 ||
        c.sir_m == 0 || c.sir_m > 1000 || npi > 64 || !(c.svi_eta > 0.0)) {
        error(err, errlen, "%s: inconsistent checkpoint header", path);
        goto out;
    }
    double pi[64];
    for (size_t i = 0; i < npi; ++i) pi[i] = get_f64(&r);
    const uint64_t nparams = get_u64(&r);
    if (r.overrun) {
        error(err, errlen, "%s: inconsistent checkpoint header", path);
        goto out;
    }
    if (vae_trainer_init(t, &c, NULL)) {
        error(err, errlen, "%s: cannot build the model: %s", path, t->err);
        vae_trainer_free(t);
        goto out;
    }
    if (nparams != t->net.nparams || r.len - r.pos != 4 * nparams * (bits / 8) + 8) {
        error(err, errlen, "%s: %llu parameters stored, the architecture has %zu", path,
              (unsigned long long)nparams, t->net.nparams);
        vae_trainer_free(t);
        goto out;
    }
    vae_real *dst[4] = {t->net.params, t->net.adam_m, t->net.adam_v, t->net.adam_vmax};
    for (int a = 0; a < 4; ++a)
        for (size_t i = 0; i < nparams; ++i) dst[a][i] = get_real(&r, bits);
    p->precision_bits = bits;
    t->net.adam_t = adam_t;
    t->step = step;
    if (npi > 0) {
        bsvi_status st = bsvi_estimator_set_buffer_weights(t->est, pi, (size_t)npi);
        if (st != BSVI_OK) {
            error(err, errlen, "%s: stored buffer weights refused: %s", path,
                  bsvi_estimator_last_error(t->est));
            vae_trainer_free(t);
            goto out;
        }
    }
    rc = 0;
out:
    free(buf);
    return rc;
}
