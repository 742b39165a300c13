/* Private access to an SVI handle for the library's own functions built on it (the
 * step-size search, stepsearch.c). Not installed. */
#ifndef BSVI_SVI_PRIVATE_H
#define BSVI_SVI_PRIVATE_H

#include "bsvi/svi.h"

/* The handle's message buffer (BSVI__ERRLEN bytes). */
char *bsvi__svi_errbuf(bsvi_svi *svi);
/* The handle's dimension. */
size_t bsvi__svi_dim(const bsvi_svi *svi);
/* Hold the handle for a running call (0), or refuse when it is already held: sets its
 * message naming fn and returns BSVI_ERR_REENTRANT. */
bsvi_status bsvi__svi_hold(bsvi_svi *svi, const char *fn);
/* Release a hold taken by bsvi__svi_hold (frees a handle destroyed while held). */
void bsvi__svi_release(bsvi_svi *svi);

#endif
