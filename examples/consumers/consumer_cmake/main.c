/* consumer_cmake: a C program linked to libbsvi through find_package(bsvi).
 * Evaluates log p(x, z) of a one-dimensional model through the library and
 * compares it with the closed form. Exits 0 on success. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <bsvi/bsvi.h>

/* log N(x_b; z, 1) with x = (1, -2); gradient x_b - z. */
static int likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                      double *log_density, double *grad, void *user_data) {
    const double *x = (const double *)user_data;
    size_t r;
    (void)dim;
    for (r = 0; r < n; r++) {
        double diff = x[data_index[r]] - z[r];
        log_density[r] = -0.5 * log(2.0 * 3.14159265358979323846) - 0.5 * diff * diff;
        if (grad != NULL) grad[r] = diff;
    }
    return 0;
}

int main(void) {
    static double x[2] = {1.0, -2.0};
    const double z[2] = {0.5, 0.0};
    const size_t idx[2] = {0, 1};
    double logj[2], grad[2];
    bsvi_model *model = NULL;
    bsvi_status st;
    int ok = 1;
    size_t r;

    printf("libbsvi %s\n", bsvi_version_string());
    st = bsvi_model_create(1, &model);
    if (st == BSVI_OK) st = bsvi_model_set_likelihood(model, likelihood, x);
    if (st == BSVI_OK) st = bsvi_model_log_joint(model, 2, z, idx, logj, grad);
    if (st != BSVI_OK) {
        fprintf(stderr, "FAIL: %s: %s\n", bsvi_status_string(st), bsvi_model_last_error(model));
        bsvi_model_destroy(model);
        return 1;
    }
    for (r = 0; r < 2; r++) {
        /* log N(z; 0, 1) + log N(x; z, 1) and its z-gradient -z + (x - z). */
        double d = x[r] - z[r];
        double want = -log(2.0 * 3.14159265358979323846) - 0.5 * z[r] * z[r] - 0.5 * d * d;
        double want_g = -z[r] + d;
        if (fabs(logj[r] - want) > 1e-12 || fabs(grad[r] - want_g) > 1e-12) {
            fprintf(stderr, "FAIL row %zu: log_joint %.17g (want %.17g), grad %.17g (want %.17g)\n",
                    r, logj[r], want, grad[r], want_g);
            ok = 0;
        }
    }
    bsvi_model_destroy(model);
    if (!ok) return 1;
    printf("consumer_cmake: OK\n");
    return 0;
}
