/* The base library's capped growable arrays and text buffers, and the
 * text a file's bytes become. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/base.h"
#include "harness.h"

struct pair {
	uint64_t a, b;
};

static void
test_vec_grows_to_its_cap(void)
{
	ENL_VEC(struct pair) v = ENL_VEC_INIT(100);
	struct pair *p;

	for (uint64_t i = 0; i < 100; i++) {
		REQUIRE((p = enl_vec_push(&v)) != NULL);
		CHECK(p->a == 0 && p->b == 0);	/* a new element is zeroed */
		p->a = i;
		p->b = 2 * i;
	}
	CHECK(v.n == 100 && v.cap == 100);
	CHECK(enl_vec_push(&v) == NULL);	/* the cap, not memory */
	CHECK(v.n == 100);
	for (size_t i = 0; i < v.n; i++)
		CHECK(v.v[i].a == i && v.v[i].b == 2 * i);	/* moved whole as it grew */
	enl_vec_free(&v);
	CHECK(v.v == NULL && v.n == 0 && v.cap == 0 && v.max == 100);
}

static void
test_vec_reserve(void)
{
	ENL_VEC(uint8_t) v = ENL_VEC_INIT(1000);

	CHECK_RC(enl_vec_reserve(&v, 1001), ENL_E_TOO_LARGE);
	CHECK(v.v == NULL);
	CHECK_RC(enl_vec_reserve(&v, 600), ENL_OK);
	CHECK(v.cap >= 600 && v.n == 0);
	v.n = 600;
	CHECK_RC(enl_vec_reserve(&v, 400), ENL_OK);
	CHECK_RC(enl_vec_reserve(&v, 401), ENL_E_TOO_LARGE);
	CHECK_RC(enl_vec_reserve(&v, SIZE_MAX), ENL_E_TOO_LARGE);	/* no overflow */
	enl_vec_free(&v);
}

static void
test_buf(void)
{
	struct enl_buf b = ENL_BUF_INIT(10);
	char *t;

	CHECK_RC(enl_buf_puts(&b, "abc"), ENL_OK);
	CHECK_RC(enl_buf_printf(&b, "%d-%s", 42, "x"), ENL_OK);
	CHECK(b.len == 7 && strcmp(b.p, "abc42-x") == 0);
	CHECK_RC(enl_buf_puts(&b, "long"), ENL_E_TOO_LARGE);	/* nothing added */
	CHECK(b.len == 7 && strcmp(b.p, "abc42-x") == 0);
	CHECK_RC(enl_buf_printf(&b, "%s", "this is far longer than 256 bytes ... "
				"........................................................."
				"........................................................."
				"........................................................."
				"........................................................."),
		 ENL_E_TOO_LARGE);
	CHECK_RC(enl_buf_add(&b, "\0z\0", 3), ENL_OK);	/* bytes, not only text */
	CHECK(b.len == 10 && memcmp(b.p + 7, "\0z\0", 3) == 0 && b.p[10] == '\0');
	REQUIRE((t = enl_buf_take(&b)) != NULL);
	CHECK(b.p == NULL && b.len == 0);
	CHECK(memcmp(t, "abc42-x\0z\0", 11) == 0);
	free(t);
	REQUIRE((t = enl_buf_take(&b)) != NULL);	/* nothing added: "" */
	CHECK(t[0] == '\0');
	free(t);
	enl_buf_free(&b);
}

static void
test_text_take(void)
{
	uint8_t *buf = malloc(3);
	char *t = NULL;

	REQUIRE(buf != NULL);
	memcpy(buf, "abc", 3);
	CHECK_RC(enl_text_take(buf, 3, &t), ENL_OK);
	CHECK(t != NULL && strcmp(t, "abc") == 0);
	free(t);
	t = NULL;
	REQUIRE((buf = malloc(3)) != NULL);
	memcpy(buf, "a\0c", 3);
	CHECK_RC(enl_text_take(buf, 3, &t), ENL_E_MALFORMED);	/* and buf is freed */
	CHECK(t == NULL);
}

static void
test_reader(void)
{
	static const uint8_t bytes[] = {1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 3};
	struct enl_reader r = {bytes, sizeof(bytes)};
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;

	CHECK(enl_rd_u8(&r, &u8) && u8 == 1);
	CHECK(enl_rd_u32(&r, &u32) && u32 == 2);
	CHECK(!enl_rd_u64(&r, &u64) && r.len == 7);	/* a failed read takes nothing */
	CHECK(enl_rd_bytes(&r, 8) == NULL && r.len == 7);
	CHECK(enl_rd_u32(&r, &u32) && u32 == 0);
	CHECK(!enl_rd_u32(&r, &u32) && r.len == 3);
	CHECK(enl_rd_bytes(&r, 3) != NULL && r.len == 0 && !enl_rd_u8(&r, &u8));
}

int
main(void)
{
	RUN(test_vec_grows_to_its_cap);
	RUN(test_vec_reserve);
	RUN(test_buf);
	RUN(test_text_take);
	RUN(test_reader);
	return harness_done();
}
