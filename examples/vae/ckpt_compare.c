/* ckpt_compare: how far apart are the networks of two checkpoints (the MPI tests: a run over
 * N processes against the one-process run).
 *
 *   vae_ckpt_compare A.ckpt B.ckpt [TOL]
 *
 * Prints the steps, the largest absolute parameter difference, that difference relative to
 * the largest |parameter| of B, the relative L2 distance ||A - B|| / ||B|| and the largest
 * element-wise relative difference |a - b| / max(|b|, 1e-3). With TOL, exits 1 when the
 * relative L2 distance or the scaled largest difference exceeds it (and 2 when the
 * checkpoints do not hold the same configuration). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: vae_ckpt_compare A.ckpt B.ckpt [TOL]\n");
        return 2;
    }
    vae_trainer a, b;
    vae_progress pa, pb;
    char err[512];
    if (vae_checkpoint_load(argv[1], &a, &pa, err, sizeof err)) {
        fprintf(stderr, "ckpt_compare: %s\n", err);
        return 2;
    }
    if (vae_checkpoint_load(argv[2], &b, &pb, err, sizeof err)) {
        fprintf(stderr, "ckpt_compare: %s\n", err);
        return 2;
    }
    if (a.net.nparams != b.net.nparams || a.cfg.method != b.cfg.method ||
        a.cfg.batch != b.cfg.batch || a.step != b.step) {
        fprintf(stderr, "ckpt_compare: different configurations or steps (%zu/%zu parameters, "
                "steps %llu/%llu)\n", a.net.nparams, b.net.nparams,
                (unsigned long long)a.step, (unsigned long long)b.step);
        return 2;
    }
    double max_abs = 0.0, max_b = 0.0, d2 = 0.0, b2 = 0.0, max_rel = 0.0;
    size_t same = 0;
    for (size_t i = 0; i < a.net.nparams; ++i) {
        const double x = (double)a.net.params[i], y = (double)b.net.params[i];
        const double d = fabs(x - y);
        if (x == y) ++same;
        if (d > max_abs) max_abs = d;
        if (fabs(y) > max_b) max_b = fabs(y);
        const double r = d / (fabs(y) > 1e-3 ? fabs(y) : 1e-3);
        if (r > max_rel) max_rel = r;
        d2 += d * d;
        b2 += y * y;
    }
    const double scaled = max_b > 0.0 ? max_abs / max_b : max_abs;
    const double rel_l2 = b2 > 0.0 ? sqrt(d2 / b2) : sqrt(d2);
    printf("steps %llu, %zu parameters (%zu equal): max|a-b| %.3e, max|a-b|/max|b| %.3e, "
           "||a-b||/||b|| %.3e, max |a-b|/max(|b|,1e-3) %.3e\n",
           (unsigned long long)a.step, a.net.nparams, same, max_abs, scaled, rel_l2, max_rel);
    int rc = 0;
    if (argc == 4) {
        const double tol = strtod(argv[3], NULL);
        if (!(rel_l2 <= tol) || !(scaled <= tol)) {
            fprintf(stderr, "ckpt_compare: beyond the tolerance %g\n", tol);
            rc = 1;
        }
    }
    vae_trainer_free(&a);
    vae_trainer_free(&b);
    return rc;
}
