#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "proto_int.h"

int
enl_init(void)
{
	return sodium_init() < 0 ? ENL_E_CRYPTO : ENL_OK;
}

/*
 * glibc maps every buffer over 32 MiB afresh and returns it on free, so
 * each copy of a 50 MiB envelope was paid again in page faults and the
 * kernel's zeroing: that was most of such a message's time through each
 * process (bench_broker.sh measures it). One arena,
 * because a thread's own arena cannot grow past 64 MiB and would map a
 * large buffer afresh again; the broker's small-message throughput did
 * not change measurably.
 */
bool
enl_id_prefix(const char *id, char out[static 9])
{
	size_t n = 0;

	if (!enl_id_valid(id))
		return false;
	while (id[n] != '-')
		n++;
	memcpy(out, id, n);
	out[n] = '\0';
	return true;
}

bool
enl_id_valid(const char *id)
{
	size_t i = 0, p, name;

	if (id == NULL)
		return false;
	while (id[i] >= 'A' && id[i] <= 'Z')
		i++;
	p = i;
	if (p < 2 || p > 8 || id[i] != '-')
		return false;
	i++;
	if (!isupper((unsigned char)id[i]) && !isdigit((unsigned char)id[i]))
		return false;
	for (name = 0; id[i] != '\0'; i++, name++) {
		unsigned char c = (unsigned char)id[i];
		if (!(c >= 'A' && c <= 'Z') && !isdigit(c) && c != '_' && c != '-')
			return false;
	}
	return name >= 1 && name <= 23;
}

int
enl_verify_labeled(const uint8_t pk[static 32], const char *label,
		   const uint8_t *msg, size_t len, const uint8_t sig[static 64])
{
	size_t ll = strlen(label) + 1;
	uint8_t *buf = malloc(ll + len);
	int ok;

	if (buf == NULL)
		return ENL_E_NOMEM;
	memcpy(buf, label, ll);
	if (len)
		memcpy(buf + ll, msg, len);
	ok = crypto_sign_verify_detached(sig, buf, ll + len, pk) == 0;
	free(buf);
	return ok ? ENL_OK : ENL_E_BAD_SIGNATURE;
}

void
enl_hash(const uint8_t *buf, size_t len, uint8_t out[ENL_HASH_LEN])
{
	crypto_generichash(out, ENL_HASH_LEN, buf, len, NULL, 0);
}

/* ---- enum names ---- */

static const char *
name_of(const char *const *names, size_t n, int v)
{
	return v > 0 && (size_t)v < n ? names[v] : NULL;
}

static int
parse_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 1; i < n; i++)
		if (names[i] != NULL && strcasecmp(names[i], s) == 0)
			return (int)i;
	return 0;
}

#define NAMES(fn_name, fn_parse, ...)                                        \
	static const char *const fn_name##_tab[] = {NULL, __VA_ARGS__};      \
	const char *fn_name(int v)                                           \
	{                                                                    \
		return name_of(fn_name##_tab,                                \
			       sizeof(fn_name##_tab) / sizeof(char *), v);   \
	}                                                                    \
	int fn_parse(const char *s)                                          \
	{                                                                    \
		return parse_name(fn_name##_tab,                             \
				  sizeof(fn_name##_tab) / sizeof(char *), s); \
	}

NAMES(enl_msg_type_name, enl_msg_type_parse, "case_message", "fiu_report",
      "request", "reply", "forward", "consent_request", "consent_decision")
NAMES(enl_tlp_name, enl_tlp_parse, "clear", "green", "amber", "amber+strict",
      "red")
NAMES(enl_onward_name, enl_onward_parse, "free", "consent", "never")
NAMES(enl_evidential_name, enl_evidential_parse, "may_use", "consent",
      "intelligence_only")
NAMES(enl_reliability_name, enl_reliability_parse, "A", "B", "C", "X")
NAMES(enl_priority_name, enl_priority_parse, "routine", "priority",
      "immediate", "flash")
