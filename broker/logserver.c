/*
 * Serves the audit log over HTTP to directory members: exactly the C2SP
 * tlog-tiles paths (checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/<N>
 * [.p/<W>]), each opened below the log's folder one component at a time,
 * no symlink followed. Every request is authenticated first
 * (enlace/httpauth.h); a refused one learns nothing of the log, not even
 * whether its path exists. Nothing else in the folder (the journal, a
 * temporary file) and nothing outside it is ever served.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "broker.h"
#include "enlace/httpauth.h"
#include "enlace/tlog.h"

#define STOP_DEADLINE_MS 5000
/* the largest file the log holds: an entry bundle of 256 entries */
#define SERVED_MAX ((size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX))

struct logserver {
	struct logserver_params p;
	char origin[300];
	int dir_fd;
	nng_http_server *srv;
	pthread_mutex_t mu;	/* over closed and every call of reader_key */
	bool closed;
};

/* Opens rel below dir_fd, component by component, refusing symlinks;
 * the file must be a regular one. A descriptor, or -1. */
static int
open_below(int dir_fd, const char *rel)
{
	char part[ENL_TILE_PATH_MAX];
	const char *p = rel, *slash;
	int fd = dir_fd, next;
	struct stat st;

	while ((slash = strchr(p, '/')) != NULL) {
		memcpy(part, p, (size_t)(slash - p));
		part[slash - p] = '\0';
		next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != dir_fd)
			close(fd);
		if (next < 0)
			return -1;
		fd = next;
		p = slash + 1;
	}
	next = openat(fd, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd != dir_fd)
		close(fd);
	/* one link: the log's own file, not one linked in from elsewhere */
	if (next >= 0 && (fstat(next, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
			  (size_t)st.st_size > SERVED_MAX)) {
		close(next);
		next = -1;
	}
	return next;
}

/* The whole file into the answer's body. */
static int
body_from(nng_http_res *res, int fd)
{
	struct stat st;
	uint8_t *buf = NULL;
	int rc = -1;

	if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL &&
	    enl_file_read_into(fd, buf, (size_t)st.st_size) == ENL_OK &&
	    nng_http_res_copy_data(res, buf, (size_t)st.st_size) == 0)
		rc = 0;
	free(buf);
	return rc;
}

/* Whether the request is signed by a directory member's key. */
static bool
authenticated(struct logserver *ls, nng_http_req *req)
{
	static const uint8_t nobody[32] = {1};
	const char *h = nng_http_req_get_header(req, "Authorization");
	const char *target = nng_http_req_get_uri(req);
	struct enl_http_auth a;
	uint8_t pk[32];
	bool known = false;
	int rc;

	if (h == NULL || enl_http_auth_parse(h, &a) != ENL_OK)
		return false;
	pthread_mutex_lock(&ls->mu);
	known = !ls->closed && ls->p.reader_key(ls->p.ctx, a.id, a.version, pk) == ENL_OK;
	pthread_mutex_unlock(&ls->mu);
	/* an unknown reader costs the same verification as a known one */
	rc = enl_http_auth_check(&a, known ? pk : nobody, ls->origin,
				 nng_http_req_get_method(req), target, strlen(target),
				 (int64_t)time(NULL));
	sodium_memzero(pk, sizeof(pk));
	return known && rc == ENL_OK;
}

/* A path of the allow-list: its file, content type and caching. */
static int
allowed(struct logserver *ls, const char *target, const char **type, const char **cache)
{
	uint64_t index;
	unsigned width;
	int level;

	if (target[0] != '/')
		return -1;
	target++;
	*type = "application/octet-stream";
	if (strcmp(target, "checkpoint") == 0) {
		*type = "text/plain; charset=utf-8";
		*cache = "no-cache";
	} else if (enl_tile_path_parse(target, &level, &index, &width)) {
		*cache = width == 0 ? "public, max-age=31536000, immutable" : "public, max-age=60";
	} else {
		return -1;
	}
	return open_below(ls->dir_fd, target);
}

static void
serve(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct logserver *ls = nng_http_handler_get_data(h);
	const char *method = nng_http_req_get_method(req), *type = NULL, *cache = NULL;
	nng_http_res *res = NULL;
	uint16_t status = NNG_HTTP_STATUS_NOT_FOUND;
	int fd = -1;

	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	if (!authenticated(ls, req)) {
		status = NNG_HTTP_STATUS_UNAUTHORIZED;
		(void)nng_http_res_set_header(res, "WWW-Authenticate", ENL_HTTP_AUTH_SCHEME);
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = NNG_HTTP_STATUS_METHOD_NOT_ALLOWED;
		(void)nng_http_res_set_header(res, "Allow", "GET, HEAD");
	} else if ((fd = allowed(ls, nng_http_req_get_uri(req), &type, &cache)) >= 0) {
		status = body_from(res, fd) == 0 ? NNG_HTTP_STATUS_OK
						 : NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
		close(fd);
	}
	(void)nng_http_res_set_status(res, status);
	if (status == NNG_HTTP_STATUS_OK) {
		(void)nng_http_res_set_header(res, "Content-Type", type);
		(void)nng_http_res_set_header(res, "Cache-Control", cache);
	} else {
		(void)nng_http_res_set_header(res, "Cache-Control", "no-store");
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

int
logserver_start(const struct logserver_params *p, struct logserver **out)
{
	struct logserver *ls;
	nng_http_handler *h = NULL;
	nng_url *u = NULL;
	int rc;

	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return ENL_E_NOMEM;
	ls->p = *p;
	snprintf(ls->origin, sizeof(ls->origin), "%s", p->origin);
	pthread_mutex_init(&ls->mu, NULL);
	if ((ls->dir_fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		blog("audit log server: %s: %s", p->dir, strerror(errno));
		rc = ENL_E_IO;
		goto fail;
	}
	if ((rc = nng_url_parse(&u, p->url)) != 0 || (rc = nng_http_server_hold(&ls->srv, u)) != 0 ||
	    (rc = nng_http_handler_alloc(&h, "/", serve)) != 0 ||
	    (rc = nng_http_handler_set_tree(h)) != 0 ||
	    (rc = nng_http_handler_set_method(h, NULL)) != 0 ||
	    (rc = nng_http_handler_set_data(h, ls, NULL)) != 0 ||
	    (rc = nng_http_server_add_handler(ls->srv, h)) != 0) {
		if (h != NULL)
			nng_http_handler_free(h);
		goto nng_fail;
	}
	h = NULL;
	if ((rc = nng_http_server_start(ls->srv)) != 0)
		goto nng_fail;
	nng_url_free(u);
	blog("audit log served to directory members at %s", p->url);
	*out = ls;
	return ENL_OK;
nng_fail:
	blog("audit log server %s: %s", p->url, nng_strerror(rc));
	rc = ENL_E_IO;
fail:
	nng_url_free(u);
	if (ls->srv != NULL)
		nng_http_server_release(ls->srv);
	if (ls->dir_fd >= 0)
		close(ls->dir_fd);
	pthread_mutex_destroy(&ls->mu);
	free(ls);
	return rc;
}

static void
stop_nng(void *arg)
{
	nng_http_server_stop(arg);
}

void
logserver_stop(struct logserver *ls)
{
	if (ls == NULL)
		return;
	pthread_mutex_lock(&ls->mu);
	ls->closed = true;	/* from here no request reaches reader_key */
	pthread_mutex_unlock(&ls->mu);
	if (!bounded_run(stop_nng, ls->srv, STOP_DEADLINE_MS)) {
		/* nng waits for every connection; one that does not close
		 * must not hold the broker: the exit ends them */
		blog("audit log server: connections still open after %d s; leaving them to the exit",
		     STOP_DEADLINE_MS / 1000);
		return;
	}
	nng_http_server_release(ls->srv);
	close(ls->dir_fd);
	pthread_mutex_destroy(&ls->mu);
	free(ls);
}
