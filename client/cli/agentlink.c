/*
 * The commands' link to the local agent: one control request per
 * connection (control.h), and what an answer says.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

/* ---- commands that talk to the local agent ---- */

static const char *
agent_socket(const struct args *a)
{
	const char *s = a->socket ? a->socket : getenv("ENLACE_SOCKET");

	return s && *s ? s : NULL;
}

/* A message the agent holds durably, whose wait for a receipt was cut
 * short: its id on stdout (as a scripting caller expects it), and on
 * stderr what happens to it. */
static void
queued_say(const struct args *a, const uint8_t id[ENL_MSG_ID_LEN], const char *why)
{
	char hex[2 * ENL_MSG_ID_LEN + 1];

	enl_hex(id, ENL_MSG_ID_LEN, hex);
	if (a->json)
		printf("{\"message_id\":\"%s\",\"state\":\"outbox\"}\n", hex);
	else
		printf("%s\n", hex);
	fflush(stdout);
	fprintf(stderr, "%s: the wait for the receipt was cut short (%s): message %s is queued "
		"in the agent's outbox, and goes to the broker when the agent can send it; "
		"`enlace receipts %s` shows what became of it\n", prog, why, hex, hex);
}

/* One request to the agent; *resp on success (exit code 0). A first
 * answer `queued` (send --wait: the message is durable in the outbox)
 * is followed by the final one on the same connection. */
int
agent_call(const struct args *a, const Enlace__CtlRequest *req, int timeout_ms,
	   Enlace__CtlResponse **resp)
{
	const char *path = agent_socket(a);
	uint8_t *rbuf = NULL, queued[ENL_MSG_ID_LEN];
	bool have_queued = false;
	size_t rlen = 0;
	int fd, rc;

	if (path == NULL) {
		fprintf(stderr, "%s: no agent socket: use --socket PATH or set ENLACE_SOCKET\n",
			prog);
		return ENL_EXIT_USAGE;
	}
	if (control_dial(path, timeout_ms, &fd) != 0) {
		fprintf(stderr, "%s: %s: the agent is not running (%s)\n", prog, path,
			strerror(errno));
		return ENL_EXIT_FAIL;
	}
	rc = control_write_message(fd, &req->base);
	while (rc == ENL_OK && (rc = control_read(fd, (size_t)UINT32_MAX, &rbuf, &rlen)) == ENL_OK) {
		rc = enl_pb_unpack(&enlace__ctl_response__descriptor, rbuf, rlen, rlen,
				   (ProtobufCMessage **)resp);
		free(rbuf);
		rbuf = NULL;
		if (rc != ENL_OK) {
			fprintf(stderr, "%s: malformed answer from the agent\n", prog);
			rc = ENL_E_INVAL;	/* said */
			break;
		}
		if (!(*resp)->queued || (*resp)->message_id.len != ENL_MSG_ID_LEN)
			break;
		memcpy(queued, (*resp)->message_id.data, ENL_MSG_ID_LEN);
		have_queued = true;
		protobuf_c_message_free_unpacked(&(*resp)->base, NULL);
		*resp = NULL;
	}
	if (rc == ENL_E_IO || rc == ENL_E_MALFORMED) {
		const char *why = rc == ENL_E_IO ? (errno == EAGAIN ? "timed out" : strerror(errno))
						 : "it closed the connection";
		if (have_queued)
			queued_say(a, queued, why);
		else
			fprintf(stderr, "%s: %s: no answer from the agent (%s)\n", prog, path, why);
	} else if (rc != ENL_OK && rc != ENL_E_INVAL) {
		fprintf(stderr, "%s: %s: no answer from the agent (%s)\n", prog, path,
			enl_strerror(rc));
	}
	free(rbuf);
	close(fd);
	if (rc != ENL_OK)
		return ENL_EXIT_FAIL;
	if ((*resp)->status == ENL_E_IO && have_queued) {	/* no receipt in time */
		queued_say(a, queued, "no receipt from the broker within 60 s");
		protobuf_c_message_free_unpacked(&(*resp)->base, NULL);
		*resp = NULL;
		return ENL_EXIT_FAIL;
	}
	if ((*resp)->status != ENL_OK) {
		char *why = enl_term_escape((*resp)->reason[0] ? (*resp)->reason
							       : enl_strerror((*resp)->status), false);
		fprintf(stderr, "%s: %s\n", prog, why != NULL ? why : "?");
		free(why);
		protobuf_c_message_free_unpacked(&(*resp)->base, NULL);
		*resp = NULL;
		return ENL_EXIT_FAIL;
	}
	return 0;
}

static const char *
state_name(int st)
{
	static const char *const names[] = {"unknown", "queued", "fetched", "acknowledged",
					    "rejected", "refused by recipient",
					    "held for consent", "expired"};
	return st >= 0 && st <= 7 ? names[st] : "unknown";
}

void
print_states(const Enlace__CtlResponse *r, bool json)
{
	char t[32], hex[65];

	if (json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_hex(r->message_id.data, r->message_id.len, hex);
		enl_json_str(&j, "message_id", hex);
		enl_hex(r->envelope_hash.data, r->envelope_hash.len, hex);
		enl_json_str(&j, "envelope_hash", hex);
		enl_json_bool(&j, "receipt_verified", r->receipt_verified);
		enl_json_bool(&j, "log_verified", r->log_verified);
		enl_json_int(&j, "log_index", (int64_t)r->log_index);
		enl_json_int(&j, "checkpoint_size", (int64_t)r->checkpoint_size);
		enl_json_str(&j, "log_alarm", r->log_alarm);
		if (r->note[0])
			enl_json_str(&j, "note", r->note);
		enl_time_format(r->received_at, t);
		enl_json_str(&j, "received_at", t);
		enl_json_arr_begin(&j, "recipients");
		for (size_t i = 0; i < r->n_recipients; i++) {
			const Enlace__RecipientState *s = r->recipients[i];
			enl_json_obj_begin(&j, NULL);
			enl_json_str(&j, "recipient", s->recipient);
			enl_json_str(&j, "state", state_name(s->state));
			if (s->queued_at) {
				enl_time_format(s->queued_at, t);
				enl_json_str(&j, "queued_at", t);
			}
			if (s->fetched_at) {
				enl_time_format(s->fetched_at, t);
				enl_json_str(&j, "fetched_at", t);
			}
			if (s->acked_at) {
				enl_time_format(s->acked_at, t);
				enl_json_str(&j, "acked_at", t);
			}
			if (s->reason[0])
				enl_json_str(&j, "reason", s->reason);
			enl_json_obj_end(&j);
		}
		enl_json_arr_end(&j);
		enl_json_obj_end(&j);
		enl_json_end(&j);
		return;
	}
	struct tbuf tb = {0};
	enl_hex(r->message_id.data, r->message_id.len, hex);
	enl_time_format(r->received_at, t);
	printf("message %s, receipted by the broker %s\n", hex, t);
	if (r->note[0])
		printf("note: %s\n", tline(&tb, r->note));
	printf("receipt signature: %s\n", r->receipt_verified
		       ? "VERIFIED (broker, and every acknowledgement by its recipient)"
		       : "DOES NOT VERIFY - do not rely on this receipt");
	if (r->log_verified)
		printf("audit log: entry %" PRIu64 ", included in the signed checkpoint of size "
		       "%" PRIu64 " (proof VERIFIED)\n", r->log_index, r->checkpoint_size);
	else
		printf("audit log: NOT PROVEN - the receipt is not backed by the broker's log\n");
	if (r->log_alarm[0])
		printf("ALARM: the broker's audit log failed a check: %s\n", tline(&tb, r->log_alarm));
	for (size_t i = 0; i < r->n_recipients; i++) {
		const Enlace__RecipientState *s = r->recipients[i];
		char q[32] = "-", f[32] = "-", k[32] = "-";
		if (s->state == ENLACE__DELIVERY_STATE__HELD && strncmp(s->reason, "held for ", 9) == 0) {
			printf("  %-14s %s\n", s->recipient, tline(&tb, s->reason));	/* says it already */
			continue;
		}
		if (s->state == ENLACE__DELIVERY_STATE__REJECTED ||
		    s->state == ENLACE__DELIVERY_STATE__HELD) {
			printf("  %-14s %-13s %s\n", s->recipient, state_name(s->state),
			       tline(&tb, s->reason));
			continue;
		}
		if (s->queued_at)
			enl_time_format(s->queued_at, q);
		if (s->fetched_at)
			enl_time_format(s->fetched_at, f);
		if (s->acked_at)
			enl_time_format(s->acked_at, k);
		printf("  %-14s %-13s queued %s  fetched %s  acknowledged %s%s%s\n",
		       s->recipient, state_name(s->state), q, f, k, s->reason[0] ? "  " : "",
		       tline(&tb, s->reason));
	}
	tbuf_free(&tb);
}

/*
 * The exit status of a --wait: 0 if the receipt holds and the broker took
 * the message for every recipient (held for consent counts: it may still
 * go); 1 otherwise, naming on stderr each recipient it will not reach.
 */
int
wait_verdict(const Enlace__CtlResponse *r)
{
	int ret = r->receipt_verified && r->log_verified && !r->log_alarm[0] ? 0 : ENL_EXIT_FAIL;

	for (size_t i = 0; i < r->n_recipients; i++) {
		const Enlace__RecipientState *s = r->recipients[i];
		if (s->state != ENLACE__DELIVERY_STATE__REJECTED)
			continue;
		char *why = enl_term_escape(s->reason, false);
		fprintf(stderr, "%s: not sent to %s: %s\n", prog, s->recipient, why ? why : "?");
		free(why);
		ret = ENL_EXIT_FAIL;
	}
	return ret;
}
