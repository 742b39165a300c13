/**
 * @file version.h
 * @brief Compile-time and run-time version of libbsvi.
 *
 * The version lives here once; the build system parses it from this file.
 * The shared library's SONAME is the major version from 1.0 on (a program linked against
 * libbsvi.so.N keeps working with every N.x.y release); while the major version is 0 it is
 * major.minor (libbsvi.so.0.2), because a 0.x minor release may break the API and ABI.
 */
#ifndef BSVI_VERSION_H
#define BSVI_VERSION_H

#include "bsvi/export.h"

/** Major version: incremented on an incompatible ABI or API change. */
#define BSVI_VERSION_MAJOR 0
/** Minor version: incremented when functionality is added (compatibly from 1.0 on; while
 * the major version is 0, a minor release may break compatibility). */
#define BSVI_VERSION_MINOR 2
/** Patch version: incremented for compatible bug fixes. */
#define BSVI_VERSION_PATCH 0

/** Version as a single number: major*10000 + minor*100 + patch. */
#define BSVI_VERSION_NUMBER \
    (BSVI_VERSION_MAJOR * 10000 + BSVI_VERSION_MINOR * 100 + BSVI_VERSION_PATCH)

BSVI_BEGIN_DECLS

/**
 * @brief Version number of the library actually loaded at run time.
 * @return major*10000 + minor*100 + patch. Infallible.
 * @since 0.1.0
 */
BSVI_API int bsvi_version_number(void);

/**
 * @brief Version string of the library loaded at run time, e.g. "0.1.0".
 * @return A static, NUL-terminated string owned by the library. Infallible.
 * @since 0.1.0
 */
BSVI_API const char *bsvi_version_string(void);

BSVI_END_DECLS

#endif /* BSVI_VERSION_H */
