/* consumer_pkgconfig.c: a C program built against an installed libbsvi found
 * with pkg-config:
 *
 *   cc -std=c11 consumer_pkgconfig.c $(pkg-config --cflags --libs bsvi) -o consumer_pkgconfig
 *
 * Checks the run-time version against the headers, creates and destroys a
 * model and a proposal, round-trips proposal parameters and checks that bad
 * input is refused with the documented status. Exits 0 on success. */
#include <stdio.h>
#include <string.h>

#include <bsvi/bsvi.h>

static int failures = 0;

static void expect_status(const char *what, bsvi_status got, bsvi_status want) {
    if (got != want) {
        fprintf(stderr, "FAIL %s: got %d (%s), want %d (%s)\n", what, (int)got,
                bsvi_status_string(got), (int)want, bsvi_status_string(want));
        failures++;
    }
}

int main(void) {
    bsvi_model *model = NULL;
    bsvi_model *bad = (bsvi_model *)&failures; /* any non-NULL value: create must reset it */
    bsvi_proposal *q = NULL;
    double mean[2 * 3] = {0.0, 0.5, -1.0, 2.0, 0.25, 0.0};
    double log_std[2 * 3] = {0.0, -1.0, 0.5, 0.0, 0.0, -0.5};
    double back[2 * 3];
    char expected_version[32];
    size_t i;

    snprintf(expected_version, sizeof expected_version, "%d.%d.%d", BSVI_VERSION_MAJOR,
             BSVI_VERSION_MINOR, BSVI_VERSION_PATCH);
    printf("libbsvi headers %s, library %s\n", expected_version, bsvi_version_string());
    if (strcmp(bsvi_version_string(), expected_version) != 0 ||
        bsvi_version_number() != BSVI_VERSION_NUMBER) {
        fprintf(stderr, "FAIL version mismatch between headers and library\n");
        failures++;
    }

    expect_status("bsvi_model_create", bsvi_model_create(3, &model), BSVI_OK);
    expect_status("bsvi_proposal_create", bsvi_proposal_create(2, 3, &q), BSVI_OK);
    if (model == NULL || q == NULL) {
        fprintf(stderr, "FAIL create returned a NULL handle\n");
        bsvi_proposal_destroy(q);
        bsvi_model_destroy(model);
        return 1;
    }
    if (bsvi_model_dim(model) != 3 || bsvi_proposal_batch(q) != 2 || bsvi_proposal_dim(q) != 3) {
        fprintf(stderr, "FAIL handle sizes\n");
        failures++;
    }

    expect_status("bsvi_proposal_set_params", bsvi_proposal_set_params(q, mean, log_std), BSVI_OK);
    expect_status("bsvi_proposal_get_params", bsvi_proposal_get_params(q, back, NULL), BSVI_OK);
    for (i = 0; i < 6; i++) {
        if (back[i] != mean[i]) {
            fprintf(stderr, "FAIL mean[%zu] round trip\n", i);
            failures++;
        }
    }

    /* Bad input gets its documented status and a message, nothing crashes. */
    expect_status("bsvi_model_create(0)", bsvi_model_create(0, &bad), BSVI_ERR_ZERO_SIZE);
    if (bad != NULL) {
        fprintf(stderr, "FAIL failed create did not leave NULL\n");
        failures++;
    }
    expect_status("bsvi_proposal_set_params(NULL)", bsvi_proposal_set_params(q, NULL, log_std),
                  BSVI_ERR_NULL_ARGUMENT);
    printf("last error on the proposal: \"%s\"\n", bsvi_proposal_last_error(q));

    bsvi_proposal_destroy(q);
    bsvi_model_destroy(model);
    bsvi_model_destroy(NULL); /* destroy accepts NULL */
    bsvi_proposal_destroy(NULL);

    if (failures != 0) {
        fprintf(stderr, "consumer_pkgconfig: %d failure(s)\n", failures);
        return 1;
    }
    printf("consumer_pkgconfig: OK\n");
    return 0;
}
