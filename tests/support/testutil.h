/*
 * testutil.h: small helpers shared by the libbsvi CMocka test programs.
 *
 * Include after <cmocka.h> (which needs <stdarg.h>, <stddef.h>, <setjmp.h>
 * before it); every test program includes "testutil.h" which does that.
 */
#ifndef BSVI_TESTUTIL_H
#define BSVI_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "bsvi/bsvi.h"

/* Sentinel written into caller buffers before a call that must fail. */
#define TU_SENTINEL (-7777.25)

/* Fail unless expr returns the expected bsvi_status (names both in the log). */
#define TU_STATUS(expr, expected)                                                          \
    do {                                                                                   \
        bsvi_status tu_st_ = (expr);                                                       \
        bsvi_status tu_ex_ = (expected);                                                   \
        if (tu_st_ != tu_ex_) {                                                            \
            print_error("%s:%d: %s\n  returned %d (%s), expected %d (%s)\n", __FILE__,      \
                        __LINE__, #expr, (int)tu_st_, bsvi_status_string(tu_st_),         \
                        (int)tu_ex_, bsvi_status_string(tu_ex_));                          \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

#define TU_OK(expr) TU_STATUS(expr, BSVI_OK)

/* Fail unless |a - b| <= tol (NaN fails). */
#define TU_NEAR(a, b, tol)                                                                 \
    do {                                                                                   \
        double tu_a_ = (double)(a), tu_b_ = (double)(b), tu_t_ = (double)(tol);            \
        if (!(fabs(tu_a_ - tu_b_) <= tu_t_)) {                                             \
            print_error("%s:%d: |%s - %s| = |%.17g - %.17g| = %.3g > tol %.3g\n", __FILE__, \
                        __LINE__, #a, #b, tu_a_, tu_b_, fabs(tu_a_ - tu_b_), tu_t_);       \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* Fail unless a <= b + tol (NaN fails). */
#define TU_LE(a, b, tol)                                                                   \
    do {                                                                                   \
        double tu_a_ = (double)(a), tu_b_ = (double)(b), tu_t_ = (double)(tol);            \
        if (!(tu_a_ <= tu_b_ + tu_t_)) {                                                   \
            print_error("%s:%d: expected %s <= %s + %.3g, got %.17g vs %.17g\n", __FILE__,  \
                        __LINE__, #a, #b, tu_t_, tu_a_, tu_b_);                            \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* Fail unless the two double arrays are bitwise identical. */
#define TU_BITWISE(a, b, n)                                                                \
    do {                                                                                   \
        size_t tu_i_ = tu_first_bit_difference((a), (b), (n));                             \
        if (tu_i_ != (size_t)-1) {                                                         \
            print_error("%s:%d: %s and %s differ at [%zu]: %.17g vs %.17g\n", __FILE__,     \
                        __LINE__, #a, #b, tu_i_, (a)[tu_i_], (b)[tu_i_]);                  \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* Fail unless every entry of the double array still holds TU_SENTINEL. */
#define TU_UNTOUCHED(a, n)                                                                 \
    do {                                                                                   \
        size_t tu_i_ = tu_first_not_sentinel((a), (n));                                   \
        if (tu_i_ != (size_t)-1) {                                                         \
            print_error("%s:%d: buffer %s was written at [%zu] (%.17g) on error\n",          \
                        __FILE__, __LINE__, #a, tu_i_, (a)[tu_i_]);                        \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* Fail unless msg is a non-empty string. */
#define TU_MESSAGE(msg)                                                                    \
    do {                                                                                   \
        const char *tu_m_ = (msg);                                                         \
        if (tu_m_ == NULL || tu_m_[0] == '\0') {                                           \
            print_error("%s:%d: %s is empty\n", __FILE__, __LINE__, #msg);                 \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* Fail unless msg contains (case-insensitively) at least one of the words "a|b|c". */
#define TU_MESSAGE_MENTIONS(msg, words)                                                    \
    do {                                                                                   \
        const char *tu_mm_ = (msg);                                                        \
        TU_MESSAGE(tu_mm_);                                                                \
        if (!tu_mentions(tu_mm_, (words))) {                                               \
            print_error("%s:%d: message \"%s\" mentions none of \"%s\"\n", __FILE__,        \
                        __LINE__, tu_mm_, (words));                                        \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

void tu_fill(double *a, size_t n, double value);
/* The tests' smooth likelihood: log_density[r] = -|0.5 - z_r|^2 / 2 for n rows of dim, and,
 * if grad is not NULL, grad = grad_scale * (0.5 - z_r) (1 for its true gradient). */
void tu_half_gauss(size_t n, size_t dim, const double *z, double *log_density, double *grad,
                   double grad_scale);
size_t tu_first_not_sentinel(const double *a, size_t n);
size_t tu_first_bit_difference(const double *a, const double *b, size_t n);
int tu_mentions(const char *msg, const char *words);

/* Mean and standard error of the mean of n >= 2 values. */
void tu_mean_se(const double *x, size_t n, double *mean, double *se);
/* Same for the paired difference a - b. */
void tu_diff_mean_se(const double *a, const double *b, size_t n, double *mean, double *se);

/* Deterministic test-data generator (splitmix64 + Box-Muller), independent of the library. */
typedef struct tu_rng {
    uint64_t state;
    int have_spare;
    double spare;
} tu_rng;
void tu_rng_init(tu_rng *r, uint64_t seed);
uint64_t tu_rng_u64(tu_rng *r);
double tu_rng_uniform(tu_rng *r); /* in (0, 1) */
double tu_rng_normal(tu_rng *r);

/* Upper quantile of the chi-square distribution with dof degrees of freedom at
 * standard-normal quantile zq (Wilson-Hilferty approximation). */
double tu_chi2_upper(double dof, double zq);

/* Allocate n doubles (test aborts on failure). */
double *tu_alloc(size_t n);
size_t *tu_alloc_size(size_t n);

/* Snapshot of a trajectory's full contents (for "unchanged on error" and bitwise checks). */
typedef struct tu_traj {
    size_t B, k, d;
    int ds;
    double *lw, *lp, *lq; /* B*(k+1) */
    double *z, *mean, *ls; /* B*(k+1)*d */
    double *gm, *gs;       /* B*d */
} tu_traj;
/* Read everything (the trajectory must be non-empty); the test fails on error. */
void tu_traj_read(const bsvi_trajectory *t, tu_traj *s);
void tu_traj_free(tu_traj *s);
/* Fail unless the two snapshots are bitwise identical. */
void tu_traj_assert_equal(const tu_traj *a, const tu_traj *b);
/* Fail unless rows [0, b.B) of b equal rows [first, first + b.B) of a bitwise. */
void tu_traj_assert_rows_equal(const tu_traj *a, size_t first, const tu_traj *b);

#endif /* BSVI_TESTUTIL_H */
