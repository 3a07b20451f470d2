/*
 * Where the log comes from: a folder, or the broker's log server over
 * HTTP (each request signed with --key).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "audit.h"
#include "enlace/httpauth.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"

static int
http_read(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	struct source *src = ctx;
	char url[1200];
	nng_url *u = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	void *body;
	size_t n;
	int rc = ENL_E_IO;

	snprintf(url, sizeof(url), "%s/%s", src->base, rel);
	if (nng_url_parse(&u, url) != 0 || nng_http_req_alloc(&req, u) != 0 ||
	    nng_http_res_alloc(&res) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0)
		goto out;
	const char *target = nng_http_req_get_uri(req);
	char auth[ENL_HTTP_AUTH_MAX + 1];
	if (enl_http_auth_make(src->reader, src->origin, "GET", target, strlen(target),
			       (int64_t)time(NULL), auth) != ENL_OK ||
	    nng_http_req_set_header(req, "Authorization", auth) != 0)
		goto out;
	nng_aio_set_timeout(aio, 60000);
	nng_http_client_transact(src->client, req, res, aio);
	nng_aio_wait(aio);
	if ((src->unreachable = nng_aio_result(aio)) != 0)
		goto out;
	if (nng_http_res_get_status(res) == NNG_HTTP_STATUS_NOT_FOUND) {
		rc = ENL_E_NOT_FOUND;
		goto out;
	}
	if (nng_http_res_get_status(res) == NNG_HTTP_STATUS_UNAUTHORIZED) {
		rc = src->refused = ENL_E_PERMISSION;
		goto out;
	}
	if (nng_http_res_get_status(res) != NNG_HTTP_STATUS_OK)
		goto out;
	nng_http_res_get_data(res, &body, &n);
	rc = ENL_E_TOO_LARGE;
	if (n > max)
		goto out;
	rc = ENL_E_NOMEM;
	if ((*out = malloc(n ? n : 1)) == NULL)
		goto out;
	memcpy(*out, body, n);
	*len = n;
	rc = ENL_OK;
out:
	nng_aio_free(aio);
	if (res != NULL)
		nng_http_res_free(res);
	if (req != NULL)
		nng_http_req_free(req);
	nng_url_free(u);
	return rc;
}

static int
source_entry(void *ctx, uint64_t index, const uint8_t *entry, size_t len)
{
	struct source *src = ctx;
	Enlace__AuditEntry *e = NULL;

	if (audit_entry_decode(entry, len, &e) != ENL_OK)
		return 1;
	if (src->on_entry != NULL)
		return src->on_entry(src->arg, index, entry, len, e);	/* takes e */
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return 0;
}

static void
source_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct source *src = ctx;
	time_t now = time(NULL);

	if (src->quiet || total < 65536 || (now == src->shown && done < total))
		return;
	src->shown = now;
	fprintf(stderr, "enlace-audit: %" PRIu64 " of %" PRIu64 " entries read and hashed (%d%%)\n",
		done, total, (int)(done * 100 / total));
}

static int
dir_read(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	const struct source *src = ctx;

	return enl_tlog_read_dir((void *)src->where, rel, max, out, len);
}

/* Opens the log at `where` (a folder, or a URL read with o->key) whose
 * checkpoints are signed by k. */
int
source_open(struct source *src, const char *where, const struct opts *o,
	    const struct enl_note_keys *k)
{
	char why[600];

	memset(src, 0, sizeof(*src));
	src->where = where;
	src->quiet = o->quiet || o->json;
	snprintf(src->origin, sizeof(src->origin), "%s", k->v[0].name);
	src->s.ctx = src;
	src->s.entry = source_entry;
	src->s.progress = source_progress;
	if (strncmp(where, "http://", 7) == 0 || strncmp(where, "https://", 8) == 0) {
		size_t n = strlen(where);
		while (n > 0 && where[n - 1] == '/')
			n--;
		snprintf(src->base, sizeof(src->base), "%.*s", (int)n, where);
		if (o->key == NULL) {
			fprintf(stderr, "enlace-audit: %s: reading the log over HTTP needs --key DIR "
				"(the key folder of a directory member: an auditor, an agency or "
				"the broker)\n", where);
			return ENL_E_INVAL;
		}
		if (enl_keydir_load(o->key, o->pass_file, "give --passphrase-file F", &src->reader,
				    why, sizeof(why)) != ENL_OK) {
			fprintf(stderr, "enlace-audit: --key %s: %s\n", o->key, why);
			return ENL_E_INVAL;
		}
		if (nng_url_parse(&src->url, src->base) != 0 ||
		    nng_http_client_alloc(&src->client, src->url) != 0) {
			fprintf(stderr, "enlace-audit: %s: not a usable address\n", where);
			return ENL_E_INVAL;
		}
		src->s.read = http_read;
	} else {
		src->s.read = dir_read;
	}
	return ENL_OK;
}

void
source_close(struct source *src)
{
	if (src->client != NULL)
		nng_http_client_free(src->client);
	nng_url_free(src->url);
	enl_identity_free(src->reader);
}

/* Reads and verifies the whole log; on failure says why on stderr. */
int
source_load(struct source *src, const struct enl_note_keys *k, struct enl_tlog **log,
	    struct enl_checkpoint *cp, bool json)
{
	/* what cannot be read is not called NOT VALID: an auditor must tell a
	 * wrong path, or a broker away, from a log that fails a check */
	bool checked = false;
	char why[700] = "";
	struct stat st;
	int rc;

	if (src->client == NULL && (stat(src->where, &st) != 0 || !S_ISDIR(st.st_mode))) {
		snprintf(why, sizeof(why), "no such folder");
		rc = ENL_E_NOT_FOUND;
	} else if ((rc = enl_tlog_load(&src->s, k->v, k->n, log, cp, why, sizeof(why))) != ENL_OK &&
		   src->refused != 0) {
		snprintf(why, sizeof(why), "the log refused the signature of --key (not a current "
			 "key of the broker's directory, or this machine's clock is off)");
	} else if (rc != ENL_OK && src->unreachable != 0) {
		snprintf(why, sizeof(why), "the log cannot be reached (%s)",
			 nng_strerror(src->unreachable));
	} else if (rc != ENL_OK) {
		checked = true;
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s", enl_strerror(rc));
	}
	if (rc != ENL_OK && !json)
		fprintf(stderr, "enlace-audit: %s: %s: %s\n", src->where,
			checked ? "NOT VALID" : "cannot check", why);
	if (rc != ENL_OK && json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", false);
		enl_json_bool(&j, "checked", checked);
		enl_json_str(&j, "log", src->where);
		enl_json_str(&j, "error", why);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	}
	return rc;
}
