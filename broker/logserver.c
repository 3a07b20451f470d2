/*
 * Serves the audit log's folder read-only over HTTP with nng's HTTP
 * server, exactly the C2SP tlog-tiles paths the log holds (checkpoint,
 * tile/...), so that any tlog-tiles client can mirror and check it.
 */
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "broker.h"

int
logserver_start(const char *url, const char *dir, nng_http_server **out)
{
	nng_http_server *srv = NULL;
	nng_http_handler *h = NULL;
	nng_url *u = NULL;
	int rc;

	if ((rc = nng_url_parse(&u, url)) != 0 || (rc = nng_http_server_hold(&srv, u)) != 0) {
		blog("audit log server %s: %s", url, nng_strerror(rc));
		nng_url_free(u);
		return ENL_E_IO;
	}
	nng_url_free(u);
	if ((rc = nng_http_handler_alloc_directory(&h, "/", dir)) != 0 ||
	    (rc = nng_http_server_add_handler(srv, h)) != 0) {
		if (h != NULL)
			nng_http_handler_free(h);
		nng_http_server_release(srv);
		blog("audit log server %s: %s", url, nng_strerror(rc));
		return ENL_E_IO;
	}
	if ((rc = nng_http_server_start(srv)) != 0) {
		nng_http_server_release(srv);
		blog("audit log server %s: %s", url, nng_strerror(rc));
		return ENL_E_IO;
	}
	blog("audit log served read-only at %s", url);
	*out = srv;
	return ENL_OK;
}

void
logserver_stop(nng_http_server *srv)
{
	if (srv == NULL)
		return;
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
}
