/* readme_sketch_main.c: runs the README's training-step sketch (readme_sketch.c,
 * kept identical to the README block; scripts/test.sh checks that) against an
 * installed libbsvi on the linear-Gaussian model x | z ~ N(z, I), z ~ N(0, I).
 *
 *   cc -std=c11 readme_sketch.c readme_sketch_main.c $(pkg-config --cflags --libs bsvi) -lm
 *
 * Exits 0 when every step succeeds and its outputs are well formed. */
#include <math.h>
#include <stdio.h>

#include <bsvi/bsvi.h>

bsvi_status train_step(bsvi_model *model, bsvi_proposal *q, bsvi_svi *svi,
                       bsvi_trajectory *traj, bsvi_estimator *est, bsvi_buffer_weights *pi,
                       const double *enc_mean, const double *enc_log_std,
                       size_t cap, size_t *n_targets, size_t *t_index, double *t_z,
                       double *t_coef, double *d_mean, double *d_log_std);

enum { B = 4, D = 3, K = 5, CAP = 64 };

static const double X[B][D] = {{1.0, -0.5, 2.0}, {0.0, 0.0, 0.0}, {-1.5, 1.0, 0.5}, {3.0, -2.0, 1.0}};

/* log N(x_b; z, I) and its gradient x_b - z. */
static int likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                      double *log_density, double *grad, void *user_data) {
    size_t r, j;
    (void)user_data;
    for (r = 0; r < n; r++) {
        double acc = -0.5 * (double)dim * log(2.0 * 3.14159265358979323846);
        for (j = 0; j < dim; j++) {
            double diff = X[data_index[r]][j] - z[r * dim + j];
            acc -= 0.5 * diff * diff;
            if (grad != NULL) grad[r * dim + j] = diff;
        }
        log_density[r] = acc;
    }
    return 0;
}

int main(void) {
    bsvi_model *model = NULL;
    bsvi_proposal *q = NULL;
    bsvi_svi *svi = NULL;
    bsvi_trajectory *traj = NULL;
    bsvi_estimator *est = NULL;
    bsvi_buffer_weights *pi = NULL;
    double enc_mean[B * D] = {0}, enc_log_std[B * D] = {0};
    size_t t_index[CAP], n_targets = 0, i, step;
    double t_z[CAP * D], t_coef[CAP], d_mean[B * D], d_log_std[B * D], probs[K + 1];
    bsvi_status st;
    int ok = 1;

    st = bsvi_model_create(D, &model);
    if (st == BSVI_OK) st = bsvi_model_set_likelihood(model, likelihood, NULL);
    if (st == BSVI_OK) st = bsvi_proposal_create(B, D, &q);
    if (st == BSVI_OK) st = bsvi_svi_create(D, &svi);
    if (st == BSVI_OK) st = bsvi_svi_set_steps(svi, K);
    if (st == BSVI_OK) st = bsvi_svi_set_step_size(svi, 0.1);
    if (st == BSVI_OK) st = bsvi_svi_set_seed(svi, 42);
    if (st == BSVI_OK) st = bsvi_trajectory_create(&traj);
    if (st == BSVI_OK) st = bsvi_estimator_create(D, &est);
    if (st == BSVI_OK) st = bsvi_buffer_weights_create(K + 1, &pi);
    for (step = 0; st == BSVI_OK && step < 3; step++) {
        for (i = 0; i < B * D; i++) enc_mean[i] = 0.1 * (double)step; /* "encoder output" */
        st = train_step(model, q, svi, traj, est, pi, enc_mean, enc_log_std, CAP, &n_targets,
                        t_index, t_z, t_coef, d_mean, d_log_std);
        if (st != BSVI_OK) break;
        if (n_targets != B) { fprintf(stderr, "FAIL %zu targets, want %d\n", n_targets, B); ok = 0; }
        for (i = 0; i < n_targets && i < CAP; i++) {
            if (t_index[i] >= B || fabs(t_coef[i] - 1.0) > 1e-12) {
                fprintf(stderr, "FAIL target %zu: index %zu coef %g\n", i, t_index[i], t_coef[i]);
                ok = 0;
            }
        }
        for (i = 0; i < B * D; i++) {
            if (!isfinite(d_mean[i]) || !isfinite(d_log_std[i])) {
                fprintf(stderr, "FAIL non-finite encoder gradient at %zu\n", i);
                ok = 0;
            }
        }
    }
    if (st != BSVI_OK) {
        fprintf(stderr, "FAIL %s | svi: %s | estimator: %s | pi: %s\n", bsvi_status_string(st),
                bsvi_svi_last_error(svi), bsvi_estimator_last_error(est),
                bsvi_buffer_weights_last_error(pi));
        ok = 0;
    } else if (bsvi_buffer_weights_get_probs(pi, probs, K + 1) == BSVI_OK) {
        double sum = 0.0;
        for (i = 0; i <= K; i++) sum += probs[i];
        printf("pi after 3 steps sums to %.15f\n", sum);
        if (fabs(sum - 1.0) > 1e-9) ok = 0;
    } else {
        fprintf(stderr, "FAIL get_probs: %s\n", bsvi_buffer_weights_last_error(pi));
        ok = 0;
    }
    bsvi_buffer_weights_destroy(pi);
    bsvi_estimator_destroy(est);
    bsvi_trajectory_destroy(traj);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    printf("readme_sketch: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
