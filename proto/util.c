#include <ctype.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "proto_int.h"

static const char *const errors[] = {
	[0] = "success",
	[-ENL_E_NOMEM] = "out of memory",
	[-ENL_E_INVAL] = "invalid argument",
	[-ENL_E_MALFORMED] = "malformed data",
	[-ENL_E_TOO_LARGE] = "larger than the limit",
	[-ENL_E_BAD_SIGNATURE] = "signature does not verify",
	[-ENL_E_UNKNOWN_SENDER] = "sender is not in the directory",
	[-ENL_E_REVOKED_KEY] = "key has been revoked",
	[-ENL_E_NOT_RECIPIENT] = "not a recipient of this message",
	[-ENL_E_TAMPERED] = "decryption failed: content was altered",
	[-ENL_E_EXPIRED] = "message has expired",
	[-ENL_E_UNKNOWN_RECIPIENT] = "recipient is not in the directory",
	[-ENL_E_UNKNOWN_KEY_VERSION] = "no such key version",
	[-ENL_E_IO] = "input/output error",
	[-ENL_E_NOT_FOUND] = "no such file",
	[-ENL_E_EXISTS] = "already exists",
	[-ENL_E_NO_SPACE] = "no space left on device",
	[-ENL_E_PERMISSION] = "permission denied",
	[-ENL_E_BAD_PASSPHRASE] = "wrong passphrase (or the key file is damaged)",
	[-ENL_E_DIR_EXPIRED] = "directory has expired",
	[-ENL_E_DIR_OLD_SERIAL] = "directory serial is not newer than the one held",
	[-ENL_E_DIR_AUTHORITY] = "directory is not signed by the pinned authority",
	[-ENL_E_BAD_CARD] = "card signature does not verify",
	[-ENL_E_UNSUPPORTED] = "unsupported format version",
	[-ENL_E_CRYPTO] = "cryptographic operation failed",
	[-ENL_E_INSECURE_FILE] = "secret file is readable by others",
	[-ENL_E_NOT_REGULAR] = "not a regular file (a folder?)",
};

const char *
enl_strerror(int err)
{
	if (err > 0 || -err >= (int)(sizeof(errors) / sizeof(errors[0])) ||
	    errors[-err] == NULL)
		return "unknown error";
	return errors[-err];
}

bool
enl_err_transient(int err)
{
	return err == ENL_E_IO || err == ENL_E_NO_SPACE || err == ENL_E_NOMEM;
}

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
void
enl_tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_ARENA_MAX, 1);
}

void
enl_trim_malloc(void)
{
	malloc_trim(0);
}

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

void
enl_hex(const uint8_t *buf, size_t len, char *out)
{
	sodium_bin2hex(out, 2 * len + 1, buf, len);
}

bool
enl_unhex(const char *s, uint8_t *out, size_t len)
{
	size_t got = 0;
	const char *end = NULL;

	if (strlen(s) != 2 * len)
		return false;
	if (sodium_hex2bin(out, len, s, 2 * len, NULL, &got, &end) != 0)
		return false;
	return got == len && *end == '\0';
}

void
enl_time_format(int64_t t, char out[static 32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "@%lld", (long long)t);
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
