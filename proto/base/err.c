#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "enlace/base.h"

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

void
enl_deadline(struct timespec *until, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, until);
	until->tv_sec += (time_t)(ms / 1000);
	until->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until->tv_nsec >= 1000000000L) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000L;
	}
}
