/*
 * The tests' one tiny harness: CHECK records a failure and goes on,
 * REQUIRE records it and leaves the current test function. A failure
 * names the file, the line, the expression and, for results, the error.
 */
#ifndef ENLACE_TEST_HARNESS_H
#define ENLACE_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "enlace/proto.h"

extern int harness_checks, harness_failed;

#define CHECK(c)                                                               \
	do {                                                                   \
		harness_checks++;                                              \
		if (!(c)) {                                                    \
			harness_failed++;                                      \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #c);                                 \
		}                                                              \
	} while (0)

#define CHECK_RC(expr, want)                                                   \
	do {                                                                   \
		int rc_ = (expr);                                              \
		harness_checks++;                                              \
		if (rc_ != (want)) {                                           \
			harness_failed++;                                      \
			fprintf(stderr, "%s:%d: %s = %d (%s), want %s (%s)\n", \
				__FILE__, __LINE__, #expr, rc_,                \
				enl_strerror(rc_), #want, enl_strerror(want)); \
		}                                                              \
	} while (0)

#define REQUIRE(c)                                                             \
	do {                                                                   \
		harness_checks++;                                              \
		if (!(c)) {                                                    \
			harness_failed++;                                      \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",         \
				__FILE__, __LINE__, #c);                       \
			return;                                                \
		}                                                              \
	} while (0)

#define REQUIRE_OK(expr)                                                       \
	do {                                                                   \
		int rc_ = (expr);                                              \
		harness_checks++;                                              \
		if (rc_ != ENL_OK) {                                           \
			harness_failed++;                                      \
			fprintf(stderr, "%s:%d: %s = %s\n", __FILE__,          \
				__LINE__, #expr, enl_strerror(rc_));           \
			return;                                                \
		}                                                              \
	} while (0)

#define RUN(fn)                                                                \
	do {                                                                   \
		int before_ = harness_failed;                                  \
		fn();                                                          \
		fprintf(stderr, "%s %s\n",                                     \
			harness_failed == before_ ? "ok  " : "FAIL", #fn);     \
	} while (0)

/* Prints the tally; the exit status for main. */
int harness_done(void);

#endif
