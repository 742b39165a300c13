/* test_threads.c: the thread rules, and no global state.
 * - Separate handles used concurrently from 4 threads give bitwise the results of using
 *   them one after another on one thread (every handle kind, every bound family).
 * - One model (a read-only handle with a thread-safe callback) shared by 4 threads.
 * - Cancelling a long evaluation from another thread through a flag the progress callback reads.
 * - Thousands of handles created, used and destroyed: nothing leaks (the ASan build runs
 *   LeakSanitizer on this program) and the resident set does not grow.
 * The CI script also builds and runs this program under ThreadSanitizer
 * (-DBSVI_SANITIZE_THREAD=ON), which reports any data race inside the library. */
#include "testutil.h"
#include "lingauss.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>

#define NTHREADS 4
#define REPEATS 3
#define B 3
#define D 2
#define K 4
#define NRES 256

typedef struct job {
    const lg_model *lg; /* shared read-only data (W, bias, x) */
    uint64_t seed;
    int shared_model;
    const bsvi_model *model; /* when shared_model */
    double res[NRES];
    size_t n;
    int failed;
} job;

#define J_OK(expr)                                                                                 \
    do {                                                                                           \
        if ((expr) != BSVI_OK) {                                                                   \
            j->failed = __LINE__;                                                                  \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static void put(job *j, const double *v, size_t n)
{
    for (size_t i = 0; i < n && j->n < NRES; ++i) {
        j->res[j->n++] = v[i];
    }
}

/* A pure (thread-safe) likelihood: N(x | z, 1) with x = 0.5 in every coordinate. */
static int pure_likelihood(size_t n, size_t dim, const double *z, const size_t *data_index,
                           double *log_density, double *grad, void *user_data)
{
    (void)data_index;
    (void)user_data;
    tu_half_gauss(n, dim, z, log_density, grad, 1.0);
    return 0;
}

/* Everything a training step and an evaluation do, on handles this job owns. */
static void *pipeline(void *arg)
{
    job *j = arg;
    lg_model view = lg_view(j->lg, 0); /* own counters: lg_likelihood writes them */
    bsvi_model *own = NULL;
    bsvi_proposal *q = NULL, *fq = NULL;
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    bsvi_estimator *est[4] = {NULL, NULL, NULL, NULL};
    bsvi_buffer_weights *pw[4] = {NULL, NULL, NULL, NULL};
    bsvi_evaluator *ev = NULL;
    const bsvi_model *m = j->model;
    if (!j->shared_model) {
        J_OK(bsvi_model_create(D, &own));
        J_OK(bsvi_model_set_likelihood(own, lg_likelihood, &view));
        m = own;
    }
    double mean[B * D], ls[B * D];
    for (size_t i = 0; i < B * D; ++i) {
        mean[i] = 0.1 * (double)(i % 5) - 0.2 + 0.01 * (double)j->seed;
        ls[i] = -0.1 * (double)(i % 3);
    }
    J_OK(lg_make_proposal(B, D, mean, ls, &q));
    J_OK(bsvi_proposal_create(B, D, &fq));
    J_OK(bsvi_proposal_set_seed(q, j->seed));
    J_OK(bsvi_svi_create(D, &svi));
    J_OK(bsvi_svi_set_steps(svi, K));
    J_OK(bsvi_svi_set_step_size(svi, 0.05));
    J_OK(bsvi_svi_set_step_rule(svi, BSVI_STEP_ADAM));
    J_OK(bsvi_svi_set_double_sampling(svi, 1));
    J_OK(bsvi_svi_set_seed(svi, j->seed));
    J_OK(bsvi_trajectory_create(&t));
    /* est[0]: IWAE; est[1], est[2]: BSVI over the double-sampled trajectory (BSVI-DS), each
     * with its own pi; est[3]: BSVI-SIR. Each trajectory bound optimises its own pi. */
    for (size_t e = 0; e < 4; ++e) {
        J_OK(bsvi_estimator_create(D, &est[e]));
        J_OK(bsvi_estimator_set_seed(est[e], j->seed + 100));
        if (e > 0) {
            J_OK(bsvi_buffer_weights_create(K + 1, &pw[e]));
        }
    }
    J_OK(bsvi_evaluator_create(D, &ev));
    J_OK(bsvi_evaluator_set_seed(ev, j->seed));
    J_OK(bsvi_evaluator_set_chunk_rows(ev, 5));
    bsvi_svi_options opts;
    J_OK(bsvi_svi_get_options(svi, &opts));
    J_OK(bsvi_evaluator_set_svi_options(ev, &opts));
    double buf[64];
    for (int rep = 0; rep < REPEATS; ++rep) {
        J_OK(bsvi_svi_run(svi, m, q, t));
        J_OK(bsvi_trajectory_get_log_weights(t, buf));
        put(j, buf, B * (K + 1));
        J_OK(bsvi_estimator_iwae(est[0], m, q, 10, BSVI_GRAD_PATHWISE));
        for (size_t e = 1; e < 4; ++e) {
            if (e < 3) {
                J_OK(bsvi_estimator_bsvi(est[e], t, pw[e]));
            } else {
                J_OK(bsvi_estimator_bsvi_sir(est[e], t, pw[e], 3));
            }
            J_OK(bsvi_buffer_weights_accumulate(pw[e], t));
            J_OK(bsvi_buffer_weights_step(pw[e]));
        }
        bsvi_bound kind = BSVI_BOUND_ELBO;
        J_OK(bsvi_estimator_result_kind(est[2], &kind));
        if (kind != BSVI_BOUND_BSVI_DS) {
            j->failed = __LINE__;
            goto done;
        }
        for (size_t e = 0; e < 4; ++e) {
            J_OK(bsvi_estimator_get_bounds(est[e], buf, B));
            put(j, buf, B);
        }
        J_OK(bsvi_buffer_weights_get_probs(pw[1], buf, K + 1));
        put(j, buf, K + 1);
        J_OK(bsvi_buffer_weights_get_probs(pw[3], buf, K + 1));
        put(j, buf, K + 1);
        J_OK(bsvi_evaluator_iwae(ev, m, q, 7, buf));
        put(j, buf, B);
        J_OK(bsvi_evaluator_bsvi(ev, m, q, 3, buf, fq));
        put(j, buf, B);
        J_OK(bsvi_evaluator_elbo_star(ev, m, fq, 6, buf, buf + B, buf + 2 * B));
        put(j, buf, 3 * B);
        J_OK(bsvi_proposal_sample(q, 2, buf, NULL));
        put(j, buf, 2 * B * D);
    }
done:
    bsvi_evaluator_destroy(ev);
    for (size_t e = 0; e < 4; ++e) {
        bsvi_estimator_destroy(est[e]);
        bsvi_buffer_weights_destroy(pw[e]);
    }
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_proposal_destroy(fq);
    bsvi_model_destroy(own);
    return NULL;
}

static void run_jobs(job *jobs, int threaded)
{
    if (threaded) {
        pthread_t th[NTHREADS];
        for (int i = 0; i < NTHREADS; ++i) {
            assert_int_equal(pthread_create(&th[i], NULL, pipeline, &jobs[i]), 0);
        }
        for (int i = 0; i < NTHREADS; ++i) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
        }
    } else {
        for (int i = 0; i < NTHREADS; ++i) {
            pipeline(&jobs[i]);
        }
    }
    for (int i = 0; i < NTHREADS; ++i) {
        if (jobs[i].failed) {
            fail_msg("job %d failed at line %d", i, jobs[i].failed);
        }
    }
}

static void compare(const job *seq, const job *par)
{
    for (int i = 0; i < NTHREADS; ++i) {
        assert_int_equal(seq[i].n, par[i].n);
        assert_true(seq[i].n > 100);
        TU_BITWISE(seq[i].res, par[i].res, seq[i].n);
    }
    /* different seeds really give different results */
    assert_true(tu_first_bit_difference(seq[0].res, seq[1].res, seq[0].n) != (size_t)-1);
}

static void test_threads_match_sequential(void **state)
{
    (void)state;
    lg_model lg;
    assert_int_equal(lg_init(&lg, D, 4, B, 0.9, 0, 17), 0);
    static job seq[NTHREADS], par[NTHREADS];
    for (int i = 0; i < NTHREADS; ++i) {
        memset(&seq[i], 0, sizeof seq[i]);
        seq[i].lg = &lg;
        seq[i].seed = (uint64_t)i;
        par[i] = seq[i];
    }
    run_jobs(seq, 0);
    run_jobs(par, 1);
    compare(seq, par);
    lg_free(&lg);
}

static void test_shared_model(void **state)
{
    (void)state;
    lg_model lg;
    assert_int_equal(lg_init(&lg, D, 4, B, 0.9, 0, 17), 0);
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, pure_likelihood, NULL));
    static job seq[NTHREADS], par[NTHREADS];
    for (int i = 0; i < NTHREADS; ++i) {
        memset(&seq[i], 0, sizeof seq[i]);
        seq[i].lg = &lg;
        seq[i].seed = (uint64_t)(10 + i);
        seq[i].shared_model = 1;
        seq[i].model = m;
        par[i] = seq[i];
    }
    run_jobs(seq, 0);
    run_jobs(par, 1);
    compare(seq, par);
    bsvi_model_destroy(m);
    lg_free(&lg);
}

/* ---- cancellation from another thread ------------------------------------------------------ */

typedef struct cancel_ctx {
    atomic_int stop;     /* set by the main thread */
    atomic_long started; /* progress calls seen by the worker */
    bsvi_evaluator *ev;
    const bsvi_model *m;
    const bsvi_proposal *q;
    bsvi_status st;
    double out[B];
} cancel_ctx;

static int cancel_progress(size_t done, size_t total, void *user_data)
{
    cancel_ctx *c = user_data;
    (void)done;
    (void)total;
    atomic_fetch_add(&c->started, 1);
    return atomic_load(&c->stop) ? 1 : 0;
}

static void *cancel_worker(void *arg)
{
    cancel_ctx *c = arg;
    /* 2^31 samples per data point: hours of work unless cancelled */
    c->st = bsvi_evaluator_iwae(c->ev, c->m, c->q, (size_t)1 << 31, c->out);
    return NULL;
}

/* The documented way to cancel from another thread: the progress callback reads a flag that
 * thread sets. The call returns BSVI_ERR_CANCELLED, writes nothing, and the handle still
 * works exactly like a fresh one (its generator counter did not advance). */
/* Issue 12, item 6: const functions of a shared proposal and bsvi_model_log_joint on a
 * shared model fail concurrently on 4 threads (and succeed between the failures). Their
 * error paths used to write the handle's message unsynchronised: ThreadSanitizer reported a
 * race. Each call's status is its own; the message left on the handle is a whole message
 * of one of the failures. */
typedef struct shared_job {
    const bsvi_proposal *q;
    bsvi_model *model;
    int failed;
} shared_job;

#define SHARED_ROUNDS 400

static void *shared_errors(void *arg)
{
    shared_job *j = arg;
    const double z[B * D] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    const double znan[B * D] = {0.1, 0.2, NAN, 0.4, 0.5, 0.6};
    const size_t idx[B] = {0, 1, 2};
    double out[B + B * D];
    for (int r = 0; r < SHARED_ROUNDS && !j->failed; ++r) {
        if (bsvi_proposal_log_density(j->q, 0, z, out) != BSVI_ERR_ZERO_SIZE ||
            bsvi_proposal_log_density(j->q, 1, znan, out) != BSVI_ERR_BAD_VALUE ||
            bsvi_proposal_entropy(j->q, NULL) != BSVI_ERR_NULL_ARGUMENT ||
            bsvi_proposal_kl_standard_normal(j->q, NULL) != BSVI_ERR_NULL_ARGUMENT ||
            bsvi_proposal_log_density(j->q, 1, z, out) != BSVI_OK ||
            bsvi_model_log_joint(j->model, 0, z, idx, out, NULL) != BSVI_ERR_ZERO_SIZE ||
            bsvi_model_log_joint(j->model, B, znan, idx, out, NULL) != BSVI_ERR_BAD_VALUE ||
            bsvi_model_log_joint(j->model, B, z, NULL, out, NULL) != BSVI_ERR_NULL_ARGUMENT ||
            bsvi_model_log_joint(j->model, B, z, idx, out, out + B) != BSVI_OK) {
            j->failed = r + 1;
        }
    }
    return NULL;
}

static void test_shared_error_paths(void **state)
{
    (void)state;
    bsvi_model *model = NULL;
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_model_create(D, &model));
    TU_OK(bsvi_model_set_likelihood(model, pure_likelihood, NULL));
    TU_OK(bsvi_proposal_create(B, D, &q));
    pthread_t th[NTHREADS];
    shared_job jobs[NTHREADS];
    for (int i = 0; i < NTHREADS; ++i) {
        jobs[i].q = q;
        jobs[i].model = model;
        jobs[i].failed = 0;
        assert_int_equal(pthread_create(&th[i], NULL, shared_errors, &jobs[i]), 0);
    }
    for (int i = 0; i < NTHREADS; ++i) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (jobs[i].failed) {
            fail_msg("thread %d: a status was wrong in round %d", i, jobs[i].failed - 1);
        }
    }
    const char *qm = bsvi_proposal_last_error(q), *mm = bsvi_model_last_error(model);
    assert_true(strstr(qm, "bsvi_proposal_") == qm); /* a whole message, from its start */
    assert_true(strstr(mm, "bsvi_model_log_joint") == mm);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
}

static void test_cancel_from_other_thread(void **state)
{
    (void)state;
    static cancel_ctx c;
    memset(&c, 0, sizeof c);
    atomic_init(&c.stop, 0);
    atomic_init(&c.started, 0);
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, pure_likelihood, NULL));
    bsvi_proposal *q = NULL;
    TU_OK(bsvi_proposal_create(B, D, &q));
    TU_OK(bsvi_evaluator_create(D, &c.ev));
    TU_OK(bsvi_evaluator_set_chunk_rows(c.ev, 64));
    TU_OK(bsvi_evaluator_set_progress(c.ev, cancel_progress, &c));
    c.m = m;
    c.q = q;
    tu_fill(c.out, B, TU_SENTINEL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_worker, &c), 0);
    while (atomic_load(&c.started) < 3) {
        sched_yield();
    }
    atomic_store(&c.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    TU_STATUS(c.st, BSVI_ERR_CANCELLED);
    TU_MESSAGE_MENTIONS(bsvi_evaluator_last_error(c.ev), "cancel");
    TU_UNTOUCHED(c.out, B);
    /* usable, and as fresh */
    TU_OK(bsvi_evaluator_set_progress(c.ev, NULL, NULL));
    bsvi_evaluator *fresh = NULL;
    TU_OK(bsvi_evaluator_create(D, &fresh));
    double a[B], b[B];
    TU_OK(bsvi_evaluator_iwae(c.ev, m, q, 16, a));
    TU_OK(bsvi_evaluator_iwae(fresh, m, q, 16, b));
    TU_BITWISE(a, b, B);
    bsvi_evaluator_destroy(fresh);
    bsvi_evaluator_destroy(c.ev);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m);
}

/* ---- no global state: create and destroy thousands of handles -------------------------- */

static long rss_kib(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp == NULL) {
        return -1;
    }
    long pages = 0, resident = 0;
    const int got = fscanf(fp, "%ld %ld", &pages, &resident);
    fclose(fp);
    return got == 2 ? resident * 4 : -1;
}

static int under_instrumentation(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 1;
#else
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return 1;
#endif
#endif
    const char *pre = getenv("LD_PRELOAD");
    return pre != NULL && strstr(pre, "vgpreload") != NULL; /* valgrind */
#endif
}

static void lifecycle_round(const bsvi_model *m, size_t round)
{
    bsvi_proposal *q = NULL;
    bsvi_svi *svi = NULL;
    bsvi_trajectory *t = NULL;
    bsvi_estimator *e = NULL, *g = NULL;
    bsvi_buffer_weights *w = NULL;
    bsvi_evaluator *ev = NULL;
    bsvi_model *m2 = NULL;
    const size_t b = 1 + round % 3; /* varying shapes: workspaces grow and are freed */
    TU_OK(bsvi_model_create(D, &m2));
    TU_OK(bsvi_proposal_create(b, D, &q));
    TU_OK(bsvi_svi_create(D, &svi));
    TU_OK(bsvi_svi_set_steps(svi, 1 + round % 2));
    TU_OK(bsvi_trajectory_create(&t));
    TU_OK(bsvi_svi_run(svi, m, q, t));
    TU_OK(bsvi_estimator_create(D, &e));
    TU_OK(bsvi_estimator_bsvi_sir(e, t, NULL, 1));
    TU_OK(bsvi_estimator_create(D, &g));
    TU_OK(bsvi_buffer_weights_create(2, &w));
    const double lj[2] = {-1.0, -2.0}, lq[2] = {-0.5, -0.5};
    TU_OK(bsvi_estimator_giwae(g, 1, 2, lj, lq, w));
    TU_OK(bsvi_buffer_weights_accumulate_terms(w, 1, 2, lj, lq));
    TU_OK(bsvi_buffer_weights_step(w));
    TU_OK(bsvi_evaluator_create(D, &ev));
    double out[3];
    TU_OK(bsvi_evaluator_iwae(ev, m, q, 3, out));
    /* failing calls allocate nothing that outlives them either */
    TU_STATUS(bsvi_svi_run(svi, m2, q, t), BSVI_ERR_BAD_STATE);
    bsvi_evaluator_destroy(ev);
    bsvi_buffer_weights_destroy(w);
    bsvi_estimator_destroy(g);
    bsvi_estimator_destroy(e);
    bsvi_trajectory_destroy(t);
    bsvi_svi_destroy(svi);
    bsvi_proposal_destroy(q);
    bsvi_model_destroy(m2);
}

static void test_create_destroy_no_growth(void **state)
{
    (void)state;
    bsvi_model *m = NULL;
    TU_OK(bsvi_model_create(D, &m));
    TU_OK(bsvi_model_set_likelihood(m, pure_likelihood, NULL));
    const size_t warm = 500, rounds = 3000; /* 8 handles per round: 28000 handles */
    for (size_t r = 0; r < warm; ++r) {
        lifecycle_round(m, r);
    }
    const long before = rss_kib();
    for (size_t r = 0; r < rounds; ++r) {
        lifecycle_round(m, r);
    }
    const long after = rss_kib();
    print_message("lifecycle: %zu rounds x 8 handles; RSS %ld KiB -> %ld KiB\n", warm + rounds,
                  before, after);
    if (before > 0 && after > 0 && !under_instrumentation()) {
        /* A leak of even one small allocation per round would add > 100 KiB. */
        assert_true(after - before < 256);
    }
    bsvi_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_match_sequential),
        cmocka_unit_test(test_shared_model),
        cmocka_unit_test(test_shared_error_paths),
        cmocka_unit_test(test_cancel_from_other_thread),
        cmocka_unit_test(test_create_destroy_no_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
