/* Versioned binary checkpoints (see checkpoint.h). */
#include "checkpoint.h"

#include <float.h>
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
/* Network arrays stored with `bits` (32 or 64) from this build's vae_real. */
static void put_reals(writer *w, const vae_real *v, size_t n, unsigned bits) {
    for (size_t i = 0; i < n; ++i) {
        if (bits == 32) {
            const float f = (float)v[i];
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            put_u32(w, u);
        } else {
            put_f64(w, (double)v[i]);
        }
    }
}

/* The buffer weights as a checkpoint stores them: versions 1-3 the probabilities pi
 * (in a), version 4 the logits a and their Adam moments m, v and step count. */
typedef struct pi_state {
    size_t n;
    double a[VAE_MAX_K + 1], m[VAE_MAX_K + 1], v[VAE_MAX_K + 1];
    uint64_t steps;
} pi_state;

/* Serialises everything before the hash; with w->buf NULL it only measures. */
static void serialise(writer *w, const vae_trainer *t, const vae_progress *p, size_t total,
                      const pi_state *pi, unsigned version, unsigned bits) {
    const vae_config *c = &t->cfg;
    put_bytes(w, MAGIC, sizeof MAGIC);
    put_u32(w, version);
    put_u32(w, version == 1u ? 0u : bits);
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
    if (version >= 3u) put_u64(w, p->max_train);
    put_u64(w, p->epoch);
    put_u64(w, t->step);
    put_u64(w, t->net.adam_t);
    put_u64(w, p->best_epoch);
    put_u64(w, p->bad_epochs);
    put_f64(w, p->best_valid);
    put_f64(w, p->seconds);
    put_u64(w, pi->n);
    put_f64s(w, pi->a, pi->n);
    if (version >= 4u) {
        put_f64s(w, pi->m, pi->n);
        put_f64s(w, pi->v, pi->n);
        put_u64(w, pi->steps);
    }
    put_u64(w, t->net.nparams);
    put_reals(w, t->net.params, t->net.nparams, bits);
    put_reals(w, t->net.adam_m, t->net.nparams, bits);
    put_reals(w, t->net.adam_v, t->net.nparams, bits);
    put_reals(w, t->net.adam_vmax, t->net.nparams, bits);
}

int vae_checkpoint_encode(const vae_trainer *t, const vae_progress *p, unsigned version,
                          unsigned bits, unsigned char **out, size_t *out_len, char *err,
                          size_t errlen) {
    *out = NULL;
    *out_len = 0;
    if (version < 1u || version > VAE_CHECKPOINT_VERSION || (bits != 32u && bits != 64u) ||
        (version == 1u && bits != 64u))
        return error(err, errlen, "cannot write format version %u with float%u arrays", version,
                     bits);
    pi_state *pi = (pi_state *)calloc(1, sizeof *pi);
    if (!pi) return error(err, errlen, "out of memory (%zu bytes)", sizeof *pi);
    pi->n = bsvi_buffer_weights_size(t->pi); /* 0 without pi */
    if (pi->n > VAE_MAX_K + 1) {
        error(err, errlen, "too many buffer weights (%zu)", pi->n);
        free(pi);
        return 1;
    }
    if (pi->n > 0 &&
        (version >= 4u
             ? bsvi_buffer_weights_get_logits(t->pi, pi->a, pi->n) != BSVI_OK ||
                   bsvi_buffer_weights_get_adam_state(t->pi, pi->m, pi->v, &pi->steps,
                                                      pi->n) != BSVI_OK
             : bsvi_buffer_weights_get_probs(t->pi, pi->a, pi->n) != BSVI_OK)) {
        error(err, errlen, "cannot read the buffer weights: %s",
              bsvi_buffer_weights_last_error(t->pi));
        free(pi);
        return 1;
    }
    writer w = {NULL, 0, 0};
    serialise(&w, t, p, 0, pi, version, bits);
    const size_t total = w.len + 8;
    w.buf = (unsigned char *)malloc(total);
    if (!w.buf) {
        free(pi);
        return error(err, errlen, "out of memory (%zu bytes)", total);
    }
    w.len = 0;
    serialise(&w, t, p, total, pi, version, bits);
    free(pi);
    put_u64(&w, vae_fnv1a64(w.buf, total - 8));
    *out = w.buf;
    *out_len = total;
    return 0;
}

int vae_checkpoint_save(const char *path, const vae_trainer *t, const vae_progress *p,
                        char *err, size_t errlen) {
    unsigned char *buf;
    size_t total;
    if (vae_checkpoint_encode(t, p, VAE_CHECKPOINT_VERSION, VAE_REAL_BITS, &buf, &total, err,
                              errlen))
        return 1;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        free(buf);
        return error(err, errlen, "checkpoint path too long");
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(buf);
        return error(err, errlen, "cannot create %s", tmp);
    }
    const int bad = fwrite(buf, 1, total, f) != total;
    free(buf);
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

/* ---- configuration ranges and memory ------------------------------------------ */

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

uint64_t vae_config_memory(const vae_config *c) {
    /* in doubles: no overflow for any field values; the result saturates */
    const double B = (double)c->batch, X = (double)c->x_dim, H = (double)c->h_dim,
                 Z = (double)c->z_dim, K1 = (double)c->k + 1.0, R = (double)sizeof(vae_real);
    double per = K1 + 1.0;
    if ((double)c->sir_m > per) per = (double)c->sir_m;
    const double targets = B * per;
    const double rows = targets > 2000.0 ? targets : 2000.0; /* train.c: EVAL_CHUNK_ROWS */
    const double nparams = H * X + H + H * H + H + 2 * Z * H + 2 * Z + H * Z + H + H * H + H +
                           X * H + X + 1;
    double bytes = 5 * nparams * R;                                          /* networks */
    bytes += rows * (2 * (2 * H + 2 * Z) + 2 * (2 * H + X) + 1 + 3 * Z) * R; /* workspace */
    bytes += (K1 + 1) * B * (Z + 2 * H + X) * R;                             /* forward cache */
    bytes += (4 * B * Z + B + targets * (Z + 1) + K1) * 8 + 2 * B * X * R + targets * 8;
    /* libbsvi: proposals, trajectory of k+2 steps, SVI and estimator scratch (generous) */
    bytes += 8 * (8 * B * Z + 2 * (K1 + 1) * B * (3 * Z + 6) + 32 * B * Z + 2 * targets * (Z + 2));
    /* the program's batch of doubles, and slack */
    bytes += 8 * B * (X + 8) + (double)(1u << 20);
    return bytes >= 1.8e19 ? UINT64_MAX : (uint64_t)bytes;
}

int vae_config_check(const vae_config *c, uint64_t max_bytes, char *err, size_t errlen) {
    if ((unsigned)c->method >= VAE_NUM_METHODS)
        return error(err, errlen, "method %u is not one of the %d methods", (unsigned)c->method,
                     VAE_NUM_METHODS);
    if (c->lik != VAE_LIK_BERNOULLI && c->lik != VAE_LIK_LOGISTIC)
        return error(err, errlen, "likelihood %u is unknown", (unsigned)c->lik);
    const size_t dims[3] = {c->x_dim, c->h_dim, c->z_dim};
    const char *const dim_names[3] = {"x_dim", "h_dim", "z_dim"};
    for (int i = 0; i < 3; ++i)
        if (dims[i] == 0 || dims[i] > VAE_MAX_DIM)
            return error(err, errlen, "%s %zu is outside 1..%u", dim_names[i], dims[i],
                         VAE_MAX_DIM);
    if (c->batch == 0 || c->batch > VAE_MAX_BATCH)
        return error(err, errlen, "batch %zu is outside 1..%u", c->batch, VAE_MAX_BATCH);
    if (c->k == 0 || c->k > VAE_MAX_K)
        return error(err, errlen, "k %zu is outside 1..%u", c->k, VAE_MAX_K);
    if (c->sir_m == 0 || c->sir_m > VAE_MAX_K)
        return error(err, errlen, "sir_m (M) %zu is outside 1..%u", c->sir_m, VAE_MAX_K);
    if (c->iwae_dreg != 0 && c->iwae_dreg != 1)
        return error(err, errlen, "DReG flag %d is not 0 or 1", c->iwae_dreg);
    if (c->svi_rule != BSVI_STEP_GRADIENT && c->svi_rule != BSVI_STEP_MOMENTUM &&
        c->svi_rule != BSVI_STEP_ADAM)
        return error(err, errlen, "SVI step rule %u is unknown", (unsigned)c->svi_rule);
    if (!finite_in(c->svi_eta, 0.0, DBL_MAX) || c->svi_eta == 0.0)
        return error(err, errlen, "SVI step size %g is not a positive finite number", c->svi_eta);
    if (!finite_in(c->svi_clip, 0.0, DBL_MAX))
        return error(err, errlen, "SVI clip %g is not a finite number >= 0", c->svi_clip);
    if (!finite_in(c->lr, 0.0, DBL_MAX) || c->lr == 0.0)
        return error(err, errlen, "learning rate %g is not a positive finite number", c->lr);
    if (!finite_in(c->beta1, 0.0, 1.0) || c->beta1 == 1.0)
        return error(err, errlen, "AMSGrad beta1 %g is outside [0, 1)", c->beta1);
    if (!finite_in(c->beta2, 0.0, 1.0) || c->beta2 == 1.0)
        return error(err, errlen, "AMSGrad beta2 %g is outside [0, 1)", c->beta2);
    if (!finite_in(c->adam_eps, 0.0, DBL_MAX) || c->adam_eps == 0.0)
        return error(err, errlen, "AMSGrad epsilon %g is not a positive finite number",
                     c->adam_eps);
    if (!finite_in(c->pi_lr, 0.0, DBL_MAX) || c->pi_lr == 0.0)
        return error(err, errlen, "pi learning rate %g is not a positive finite number",
                     c->pi_lr);
    const uint64_t need = vae_config_memory(c);
    if (need > max_bytes)
        return error(err, errlen,
                     "the trainer would take about %.2f GiB (x_dim %zu, h_dim %zu, z_dim %zu, "
                     "batch %zu, k %zu, M %zu), more than the limit of %.2f GiB",
                     (double)need / 1073741824.0, c->x_dim, c->h_dim, c->z_dim, c->batch, c->k,
                     c->sir_m, (double)max_bytes / 1073741824.0);
    return 0;
}

static size_t architecture_params(const vae_config *c) {
    const size_t X = c->x_dim, H = c->h_dim, Z = c->z_dim; /* each <= VAE_MAX_DIM: no overflow */
    return H * X + H + H * H + H + 2 * Z * H + 2 * Z + H * Z + H + H * H + H + X * H + X + 1;
}

static int method_has_pi(vae_method m) {
    return m == VAE_METHOD_BSVI || m == VAE_METHOD_BSVI_DS || m == VAE_METHOD_BSVI_SIR ||
           m == VAE_METHOD_BSVI_SIR_PI;
}

/* ---- loader ----------------------------------------------------------------------- */

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
    if ((uint64_t)flen > VAE_MAX_TRAINER_BYTES) {
        fclose(f);
        return error(err, errlen, "%s: %ld bytes, more than any checkpoint this program reads",
                     path, flen);
    }
    const size_t len = (size_t)flen;
    unsigned char *buf = (unsigned char *)malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return error(err, errlen, "%s: out of memory (%zu bytes)", path, len);
    }
    const size_t got = fread(buf, 1, len, f);
    fclose(f);
    int rc;
    if (got != len)
        rc = error(err, errlen, "%s: read %zu of %zu bytes", path, got, len);
    else
        rc = vae_checkpoint_parse(buf, len, path, VAE_MAX_TRAINER_BYTES, t, p, err, errlen);
    free(buf);
    return rc;
}

int vae_checkpoint_parse(const unsigned char *buf, size_t len, const char *path,
                         uint64_t max_bytes, vae_trainer *t, vae_progress *p, char *err,
                         size_t errlen) {
    memset(t, 0, sizeof *t);
    memset(p, 0, sizeof *p);
    if (len < sizeof MAGIC || memcmp(buf, MAGIC, sizeof MAGIC) != 0)
        return error(err, errlen, "%s: not a libbsvi VAE checkpoint (bad magic)", path);
    reader r = {buf, len, sizeof MAGIC, 0};
    const uint32_t version = get_u32(&r);
    const uint32_t prec_field = get_u32(&r);
    const uint64_t total = get_u64(&r);
    if (r.overrun)
        return error(err, errlen,
                     "%s: truncated checkpoint (%zu bytes, shorter than the header)", path, len);
    if (version < 1u || version > VAE_CHECKPOINT_VERSION)
        return error(err, errlen,
                     "%s: checkpoint format version %u, this program reads versions 1 to %u", path,
                     (unsigned)version, VAE_CHECKPOINT_VERSION);
    const unsigned bits = version == 1u ? 64u : (unsigned)prec_field;
    if ((version == 1u && prec_field != 0) || (bits != 32u && bits != 64u))
        return error(err, errlen, "%s: unknown network precision field %u", path,
                     (unsigned)prec_field);
    if (total != len)
        return error(err, errlen, "%s: %s checkpoint: %zu bytes, the header says %llu", path,
                     len < total ? "truncated" : "oversized", len, (unsigned long long)total);
    if ((uint64_t)len > max_bytes)
        return error(err, errlen, "%s: %zu bytes, more than the limit of %llu", path, len,
                     (unsigned long long)max_bytes);
    if (len < HEADER_BYTES + 8)
        return error(err, errlen, "%s: truncated checkpoint (%zu bytes)", path, len);
    uint64_t stored = 0;
    for (int i = 7; i >= 0; --i) stored = (stored << 8) | buf[len - 8 + (size_t)i];
    if (vae_fnv1a64(buf, len - 8) != stored)
        return error(err, errlen, "%s: corrupted checkpoint (checksum mismatch)", path);
    r.len = len - 8; /* the hash is not content */

    vae_config c;
    vae_config_default(&c);
    const uint32_t method = get_u32(&r), lik = get_u32(&r);
    c.method = (vae_method)(method < VAE_NUM_METHODS ? method : VAE_NUM_METHODS);
    c.lik = lik <= 1u ? (vae_likelihood)lik : (vae_likelihood)2;
    uint64_t dims[6]; /* read in order: an initializer list's evaluation order is unspecified */
    for (int i = 0; i < 6; ++i) dims[i] = get_u64(&r);
    const char *const dim_names[6] = {"x_dim", "h_dim", "z_dim", "batch", "k", "sir_m (M)"};
    const uint64_t dim_max[6] = {VAE_MAX_DIM, VAE_MAX_DIM, VAE_MAX_DIM,
                                 VAE_MAX_BATCH, VAE_MAX_K, VAE_MAX_K};
    const uint32_t dreg = get_u32(&r), rule = get_u32(&r);
    c.iwae_dreg = dreg <= 1u ? (int)dreg : 2;
    c.svi_rule = (bsvi_step_rule)(rule <= 2u ? rule : 3u);
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
    p->max_train = version >= 3u ? get_u64(&r) : 0;
    p->epoch = get_u64(&r);
    const uint64_t step = get_u64(&r);
    const uint64_t adam_t = get_u64(&r);
    p->best_epoch = get_u64(&r);
    p->bad_epochs = get_u64(&r);
    p->best_valid = get_f64(&r);
    p->seconds = get_f64(&r);
    const uint64_t npi = get_u64(&r);
    if (r.overrun)
        return error(err, errlen, "%s: inconsistent checkpoint header (%zu bytes, too short for it)",
                     path, len);
    if (method >= VAE_NUM_METHODS)
        return error(err, errlen, "%s: field method: %u is not one of the %d methods", path,
                     (unsigned)method, VAE_NUM_METHODS);
    if (lik > 1u) return error(err, errlen, "%s: field likelihood: %u is unknown", path, (unsigned)lik);
    for (int i = 0; i < 6; ++i)
        if (dims[i] == 0 || dims[i] > dim_max[i])
            return error(err, errlen, "%s: field %s: %llu is outside 1..%llu", path, dim_names[i],
                         (unsigned long long)dims[i], (unsigned long long)dim_max[i]);
    c.x_dim = (size_t)dims[0];
    c.h_dim = (size_t)dims[1];
    c.z_dim = (size_t)dims[2];
    c.batch = (size_t)dims[3];
    c.k = (size_t)dims[4];
    c.sir_m = (size_t)dims[5];
    size_t name_len = 0;
    while (name_len < DATA_NAME_BYTES && name[name_len]) ++name_len;
    if (name_len == DATA_NAME_BYTES || name_len == 0)
        return error(err, errlen, "%s: field data name: not a NUL-terminated name of 1..%d bytes",
                     path, DATA_NAME_BYTES - 1);
    for (size_t i = 0; i < name_len; ++i)
        if (name[i] < 0x21 || name[i] > 0x7e)
            return error(err, errlen, "%s: field data name: byte %zu is 0x%02x, not printable",
                         path, i, (unsigned)name[i]);
    memcpy(c.data, name, name_len + 1);
    if (p->best_epoch > p->epoch || p->bad_epochs > p->epoch)
        return error(err, errlen, "%s: field best epoch / bad epochs: %llu / %llu after %llu epochs",
                     path, (unsigned long long)p->best_epoch, (unsigned long long)p->bad_epochs,
                     (unsigned long long)p->epoch);
    if (isnan(p->best_valid) || p->best_valid == INFINITY)
        return error(err, errlen, "%s: field best validation bound: %g", path, p->best_valid);
    if (!finite_in(p->seconds, 0.0, DBL_MAX))
        return error(err, errlen, "%s: field training seconds: %g", path, p->seconds);
    const uint64_t want_pi = method_has_pi(c.method) ? c.k + 1 : 0;
    if (npi != want_pi)
        return error(err, errlen, "%s: field pi: %llu buffer weights stored, k = %zu and method %s "
                     "need %llu", path, (unsigned long long)npi, c.k, vae_method_name(c.method),
                     (unsigned long long)want_pi);
    /* versions 1-3: the probabilities; version 4: the logits and their Adam state */
    double pi[VAE_MAX_K + 1], pi_m[VAE_MAX_K + 1], pi_v[VAE_MAX_K + 1];
    uint64_t pi_steps = 0;
    if (version <= 3u) {
        for (size_t i = 0; i < npi; ++i) {
            pi[i] = get_f64(&r);
            if (!finite_in(pi[i], 0.0, 1.0))
                return error(err, errlen, "%s: field pi: weight %zu is %g, not in [0, 1]", path,
                             i, pi[i]);
        }
    } else {
        int finite = 0;
        for (size_t i = 0; i < npi; ++i) {
            pi[i] = get_f64(&r);
            if (isnan(pi[i]) || pi[i] == INFINITY)
                return error(err, errlen, "%s: field pi: logit %zu is %g (NaN and +inf are refused)",
                             path, i, pi[i]);
            finite |= isfinite(pi[i]) != 0;
        }
        if (npi > 0 && !finite)
            return error(err, errlen, "%s: field pi: every logit is -inf (not a distribution)",
                         path);
        for (size_t i = 0; i < npi; ++i) {
            pi_m[i] = get_f64(&r);
            if (!isfinite(pi_m[i]))
                return error(err, errlen, "%s: field pi Adam m: entry %zu is %g (not finite)",
                             path, i, pi_m[i]);
        }
        for (size_t i = 0; i < npi; ++i) {
            pi_v[i] = get_f64(&r);
            if (!finite_in(pi_v[i], 0.0, DBL_MAX))
                return error(err, errlen,
                             "%s: field pi Adam v: entry %zu is %g (v must be finite and >= 0)",
                             path, i, pi_v[i]);
        }
        pi_steps = get_u64(&r);
        if (r.overrun)
            return error(err, errlen, "%s: field pi: truncated (%zu bytes)", path, len);
        if (npi == 0 && pi_steps != 0)
            return error(err, errlen, "%s: field pi Adam steps: %llu without pi (must be 0)",
                         path, (unsigned long long)pi_steps);
        if (pi_steps > step)
            return error(err, errlen,
                         "%s: field pi Adam steps: %llu, more than the %llu training steps", path,
                         (unsigned long long)pi_steps, (unsigned long long)step);
    }
    const uint64_t nparams = get_u64(&r);
    const size_t want = architecture_params(&c);
    const uint64_t rest = (uint64_t)(r.len - r.pos);
    if (r.overrun || nparams != want || rest / 4 / (bits / 8) < nparams ||
        rest != 4 * nparams * (bits / 8))
        return error(err, errlen,
                     "%s: field parameters: %llu stored in %llu bytes, the architecture "
                     "%zu-%zu-%zu has %zu (%llu bytes)", path, (unsigned long long)nparams,
                     (unsigned long long)rest, c.x_dim, c.h_dim, c.z_dim, want,
                     (unsigned long long)(4 * (uint64_t)want * (bits / 8)));
    if (vae_config_check(&c, max_bytes, err, errlen)) {
        char why[400];
        snprintf(why, sizeof why, "%s", err);
        return error(err, errlen, "%s: field %s", path, why);
    }
    /* every stored real, before anything is allocated */
    const char *const arr_names[4] = {"parameters", "AMSGrad m", "AMSGrad v", "AMSGrad vmax"};
    const size_t arr_pos = r.pos;
    for (size_t i = 0; i < want; ++i) {
        vae_real v[4];
        for (int a = 0; a < 4; ++a) {
            reader ra = {buf, r.len, arr_pos + ((size_t)a * want + i) * (bits / 8), 0};
            v[a] = get_real(&ra, bits);
        }
        int bad = -1;
        for (int a = 0; a < 4 && bad < 0; ++a)
            if (!isfinite(v[a])) bad = a;
        if (bad < 0 && v[2] < 0) bad = 2;
        if (bad < 0 && (v[3] < 0 || v[3] < v[2])) bad = 3;
        if (bad >= 0)
            return error(err, errlen,
                         "%s: field %s: entry %zu is %g%s", path, arr_names[bad], i,
                         (double)v[bad],
                         bad == 3 ? " (vmax must be finite, >= 0 and >= v)"
                         : bad == 2 ? " (v must be finite and >= 0)" : " (not finite)");
    }
    if (vae_trainer_init(t, &c, NULL)) {
        error(err, errlen, "%s: cannot build the model: %s", path, t->err);
        vae_trainer_free(t);
        return 1;
    }
    if (t->net.nparams != want) {
        error(err, errlen, "%s: the architecture has %zu parameters, expected %zu", path,
              t->net.nparams, want);
        vae_trainer_free(t);
        return 1;
    }
    vae_real *dst[4] = {t->net.params, t->net.adam_m, t->net.adam_v, t->net.adam_vmax};
    for (int a = 0; a < 4; ++a)
        for (size_t i = 0; i < want; ++i) dst[a][i] = get_real(&r, bits);
    p->precision_bits = bits;
    p->version = version;
    t->net.adam_t = adam_t;
    t->step = step;
    if (npi > 0) {
        bsvi_status st =
            version <= 3u
                ? bsvi_buffer_weights_set_probs(t->pi, pi, (size_t)npi)
                : bsvi_buffer_weights_set_logits(t->pi, pi, (size_t)npi);
        if (st == BSVI_OK && version >= 4u)
            st = bsvi_buffer_weights_set_adam_state(t->pi, pi_m, pi_v, pi_steps, (size_t)npi);
        if (st != BSVI_OK) {
            error(err, errlen, "%s: field pi: stored buffer weights refused: %s", path,
                  bsvi_buffer_weights_last_error(t->pi));
            vae_trainer_free(t);
            return 1;
        }
    }
    return 0;
}

/* ---- the run log ------------------------------------------------------------------ */

int vae_log_reconcile(const char *path, uint64_t epoch, size_t *dropped, char *err,
                      size_t errlen) {
    if (dropped) *dropped = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return error(err, errlen, "%s: cannot open", path);
    size_t len = 0, cap = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *nb = (unsigned char *)realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return error(err, errlen, "%s: out of memory", path);
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    const int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return error(err, errlen, "%s: read error", path);
    }
    /* spans of the kept rows: kept[e - 1] is the row of epoch e */
    size_t hlen = strlen(VAE_LOG_HEADER);
    const size_t xlen = strlen(VAE_LOG_DIAG_COLUMNS);
    if (len >= hlen + xlen + 1 && memcmp(buf + hlen, VAE_LOG_DIAG_COLUMNS, xlen) == 0 &&
        buf[hlen + xlen] == '\n')
        hlen += xlen; /* a log begun with the diagnostics column: its header is kept */
    if (len < hlen + 1 || memcmp(buf, VAE_LOG_HEADER, strlen(VAE_LOG_HEADER)) != 0 ||
        buf[hlen] != '\n') {
        free(buf);
        return error(err, errlen, "%s: the first line is not the log header (%s)", path,
                     VAE_LOG_HEADER);
    }
    size_t nkept = 0, capk = 0, ndrop = 0;
    size_t(*kept)[2] = NULL;
    int rc = 0;
    size_t pos = hlen + 1;
    while (pos < len) {
        const unsigned char *nl = (const unsigned char *)memchr(buf + pos, '\n', len - pos);
        if (!nl) { /* an unfinished last line: written when the run was stopped */
            ndrop++;
            break;
        }
        const size_t end = (size_t)(nl - buf) + 1;
        uint64_t e = 0;
        size_t i = pos, digits = 0;
        while (i < end && buf[i] >= '0' && buf[i] <= '9' && digits < 19) {
            e = e * 10 + (uint64_t)(buf[i] - '0');
            ++i, ++digits;
        }
        if (digits == 0 || buf[i] != ',' || e == 0 || e > (uint64_t)nkept + 1) {
            rc = error(err, errlen, "%s: line %zu is not the row of epoch %zu (or an earlier one)",
                       path, nkept + ndrop + 2, nkept + 1);
            break;
        }
        if (e <= (uint64_t)nkept) { /* a rerun of epochs e.. after an interruption */
            ndrop += nkept - (size_t)(e - 1);
            nkept = (size_t)(e - 1);
        }
        if (nkept == capk) {
            capk = capk ? 2 * capk : 256;
            size_t(*nk)[2] = (size_t(*)[2])realloc(kept, capk * sizeof *kept);
            if (!nk) {
                rc = error(err, errlen, "%s: out of memory", path);
                break;
            }
            kept = nk;
        }
        kept[nkept][0] = pos;
        kept[nkept][1] = end;
        nkept++;
        pos = end;
    }
    if (rc == 0 && nkept > epoch) {
        ndrop += nkept - (size_t)epoch;
        nkept = (size_t)epoch;
    }
    if (rc == 0 && nkept < epoch)
        rc = error(err, errlen,
                   "%s has rows for epochs 1..%zu, the checkpoint is at epoch %llu: they disagree",
                   path, nkept, (unsigned long long)epoch);
    if (rc == 0 && ndrop > 0) {
        char tmp[4096];
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
            rc = error(err, errlen, "log path too long");
        } else {
            FILE *o = fopen(tmp, "wb");
            int bad = !o;
            if (o) {
                bad |= fwrite(buf, 1, hlen + 1, o) != hlen + 1;
                for (size_t k = 0; k < nkept && !bad; ++k)
                    bad |= fwrite(buf + kept[k][0], 1, kept[k][1] - kept[k][0], o) !=
                           kept[k][1] - kept[k][0];
                bad |= fclose(o) != 0;
            }
            if (bad) {
                if (o) remove(tmp);
                rc = error(err, errlen, "cannot write %s (disk full?)", tmp);
            } else if (rename(tmp, path) != 0) {
                remove(tmp);
                rc = error(err, errlen, "cannot rename %s to %s", tmp, path);
            }
        }
    }
    if (rc == 0 && dropped) *dropped = ndrop;
    free(kept);
    free(buf);
    return rc;
}
