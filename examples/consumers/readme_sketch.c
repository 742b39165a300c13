#include <bsvi/bsvi.h>

/* Set up once: bsvi_estimator_create(D, &est) and bsvi_buffer_weights_create(k + 1, &pi)
 * (uniform pi over the k+1 buffer slots, optimised below).
 *
 * One training step for a batch of B data points in latent dimension D, with BSVI-SIR
 * (M = 1 resampled decoder target) and one Adam step on pi.
 * In:  the encoder's output lambda_0 = f(x) as enc_mean, enc_log_std (B*D each).
 * Out: decoder targets (t_index[j], t_z[j*D..], t_coef[j]), j < *n_targets <= cap:
 *      grad_theta = sum_j t_coef[j] * d/dtheta log p(x_{t_index[j]}, z_j);
 *      d_mean, d_log_std (B*D): d bound / d lambda_0, to backpropagate through f. */
bsvi_status train_step(bsvi_model *model, bsvi_proposal *q, bsvi_svi *svi,
                       bsvi_trajectory *traj, bsvi_estimator *est, bsvi_buffer_weights *pi,
                       const double *enc_mean, const double *enc_log_std,
                       size_t cap, size_t *n_targets, size_t *t_index, double *t_z,
                       double *t_coef, double *d_mean, double *d_log_std) {
    bsvi_status st = bsvi_proposal_set_params(q, enc_mean, enc_log_std);
    if (st == BSVI_OK) st = bsvi_svi_run(svi, model, q, traj);         /* k SVI steps: the buffer */
    if (st == BSVI_OK) st = bsvi_estimator_bsvi_sir(est, traj, pi, 1); /* BSVI bound, r, targets */
    if (st == BSVI_OK) st = bsvi_buffer_weights_accumulate(pi, traj);  /* d bound / d logits */
    if (st != BSVI_OK) return st;
    *n_targets = bsvi_estimator_num_targets(est);                       /* B*M */
    if (*n_targets > cap) return BSVI_ERR_SIZE_MISMATCH;
    st = bsvi_estimator_get_targets(est, *n_targets, t_index, NULL, t_z, t_coef);
    if (st == BSVI_OK)
        st = bsvi_estimator_get_encoder_grad(est, bsvi_proposal_batch(q), d_mean, d_log_std);
    if (st == BSVI_OK) st = bsvi_buffer_weights_step(pi);               /* Adam step on pi */
    return st;
}
