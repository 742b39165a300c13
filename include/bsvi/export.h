/**
 * @file export.h
 * @brief Symbol visibility macro for libbsvi.
 *
 * The library is compiled with hidden visibility; only declarations marked
 * ::BSVI_API are exported. Define BSVI_API yourself before including any
 * libbsvi header to override (for example to an empty macro). ::BSVI_DEPRECATED
 * marks declarations on their way out (one minor release at least).
 */
#ifndef BSVI_EXPORT_H
#define BSVI_EXPORT_H

#ifndef BSVI_API
#if defined(_WIN32) && defined(BSVI_BUILDING_SHARED)
#define BSVI_API __declspec(dllexport)
#elif defined(_WIN32) && defined(BSVI_USING_SHARED)
#define BSVI_API __declspec(dllimport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define BSVI_API __attribute__((visibility("default")))
#else
/** Marks a declaration as part of the exported ABI. */
#define BSVI_API
#endif
#endif

#ifndef BSVI_DEPRECATED
#if defined(__GNUC__) || defined(__clang__)
/** Marks a declaration as deprecated (compilers warn at each use, with @p msg). A deprecated
 *  function keeps working and stays exported for at least one minor release; it is removed
 *  only with a new major version (see README, "Stability promise"). */
#define BSVI_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(_MSC_VER)
/** Marks a declaration as deprecated (compilers warn at each use, with @p msg). */
#define BSVI_DEPRECATED(msg) __declspec(deprecated(msg))
#else
/** Marks a declaration as deprecated (no effect with this compiler). */
#define BSVI_DEPRECATED(msg)
#endif
#endif

#ifdef __cplusplus
/** Opens an extern "C" block in C++. */
#define BSVI_BEGIN_DECLS extern "C" {
/** Closes an extern "C" block in C++. */
#define BSVI_END_DECLS }
#else
/** Opens an extern "C" block in C++ (empty in C). */
#define BSVI_BEGIN_DECLS
/** Closes an extern "C" block in C++ (empty in C). */
#define BSVI_END_DECLS
#endif

#endif /* BSVI_EXPORT_H */
