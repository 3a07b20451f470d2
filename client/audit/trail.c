/*
 * enlace-audit trail: the entries of one message, in log order, checked.
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

/* ---- trail and prove: the entries of one message ---- */

static int
collect_trail(void *arg, uint64_t index, const uint8_t *e, size_t len, Enlace__AuditEntry *d)
{
	struct trail *t = arg;

	bool in = false;

	/* the message's own entries, and those of its forwards and their consent */
	if (trail_wants(t, d, &in) != ENL_OK) {
		protobuf_c_message_free_unpacked(&d->base, NULL);
		return 1;
	}
	if (in) {
		if (trail_add(t, index, e, len, d) != ENL_OK) {
			protobuf_c_message_free_unpacked(&d->base, NULL);
			return 1;
		}
		return 0;
	}
	protobuf_c_message_free_unpacked(&d->base, NULL);
	return 0;
}

void
message_log_free(struct message_log *m)
{
	trail_free(&m->t);
	enl_tlog_free(m->log);
	source_close(&m->src);
	enl_directory_free(m->dir);
	free(m->dir_bytes);
}

/* The log read and verified, and the trail of MSG-ID from it. */
int
message_log_load(const struct opts *o, struct message_log *m)
{
	struct enl_note_keys k;

	memset(m, 0, sizeof(*m));
	if (o->argc != 1 || !enl_unhex(o->argv[0], m->t.id, ENL_MSG_ID_LEN))
		return usage_error("expected one message id (32 hex digits)");
	if (o->log == NULL || o->directory == NULL || o->authority_pub == NULL)
		return usage_error("--log, --directory and --authority-pub are needed");
	if (load_directory(o, &m->dir, &m->dir_bytes, &m->dir_len) != ENL_OK ||
	    directory_broker(m->dir, &k, m->broker) != ENL_OK)
		return EXIT_BAD;
	if (source_open(&m->src, o->log, o, &k) != ENL_OK)
		return EXIT_BAD;
	m->src.on_entry = collect_trail;
	m->src.arg = &m->t;
	if (source_load(&m->src, &k, &m->log, &m->cp, o->json) != ENL_OK)
		return EXIT_BAD;
	if (m->t.n == 0) {
		fprintf(stderr, "enlace-audit: message %s is not in the log\n", o->argv[0]);
		return EXIT_BAD;
	}
	return 0;
}

int
cmd_trail(int argc, char **argv)
{
	struct message_log m;
	struct opts o;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if ((rc = message_log_load(&o, &m)) != 0) {
		message_log_free(&m);
		return rc;
	}
	rc = trail_check_acks(&m.t, m.dir);
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		enl_json_int(&j, "checkpoint_size", (int64_t)m.cp.size);
		trail_json(&m.t, &j);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		trail_print(&m.t, stdout);
		printf("log verified: %" PRIu64 " entries under the broker's checkpoint\n", m.cp.size);
		if (rc != ENL_OK)
			fprintf(stderr, "enlace-audit: an acknowledgement in the log is NOT signed by "
				"its recipient\n");
	}
	message_log_free(&m);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}
