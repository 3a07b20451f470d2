/*
 * The commands of `enlace` that talk to the local agent over its control
 * socket: send, forward, consent, inbox, read, receipts, status.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

#include "enlace_cli.h"

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
static int
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
		return EXIT_USAGE;
	}
	if (control_dial(path, timeout_ms, &fd) != 0) {
		fprintf(stderr, "%s: %s: the agent is not running (%s)\n", prog, path,
			strerror(errno));
		return EXIT_FAIL;
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
		return EXIT_FAIL;
	if ((*resp)->status == ENL_E_IO && have_queued) {	/* no receipt in time */
		queued_say(a, queued, "no receipt from the broker within 60 s");
		protobuf_c_message_free_unpacked(&(*resp)->base, NULL);
		*resp = NULL;
		return EXIT_FAIL;
	}
	if ((*resp)->status != ENL_OK) {
		char *why = enl_term_escape((*resp)->reason[0] ? (*resp)->reason
							       : enl_strerror((*resp)->status), false);
		fprintf(stderr, "%s: %s\n", prog, why != NULL ? why : "?");
		free(why);
		protobuf_c_message_free_unpacked(&(*resp)->base, NULL);
		*resp = NULL;
		return EXIT_FAIL;
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

static void
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
static int
wait_verdict(const Enlace__CtlResponse *r)
{
	int ret = r->receipt_verified && r->log_verified && !r->log_alarm[0] ? 0 : EXIT_FAIL;

	for (size_t i = 0; i < r->n_recipients; i++) {
		const Enlace__RecipientState *s = r->recipients[i];
		if (s->state != ENLACE__DELIVERY_STATE__REJECTED)
			continue;
		char *why = enl_term_escape(s->reason, false);
		fprintf(stderr, "%s: not sent to %s: %s\n", prog, s->recipient, why ? why : "?");
		free(why);
		ret = EXIT_FAIL;
	}
	return ret;
}

static const char usage_send[] =
	"enlace send [--socket PATH] --to ID... [--type T] [--case REF] [--tlp L]\n"
	"       [--onward O] [--evidential E] [--reliability R] [--assessment N]\n"
	"       [--priority P] [--expires 30d] [--reply-by 7d] [--in-reply-to MSGID]\n"
	"       [--subject S] (--text T | --text-file F) [--attach FILE]... [--wait] [--json]";

int
cmd_send(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_TO, OPT_CASE, OPT_TLP, OPT_ONWARD,
				      OPT_EVID, OPT_TYPE, OPT_REL, OPT_ASSESS, OPT_PRIO,
				      OPT_EXPIRES, OPT_REPLYBY, OPT_INREPLY, OPT_SUBJECT,
				      OPT_TEXT, OPT_TEXTFILE, OPT_ATTACH, OPT_WAIT, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlSend cs = ENLACE__CTL_SEND__INIT;
	Enlace__Handling hd = ENLACE__HANDLING__INIT;
	Enlace__Attachment atts[MAX_ATTACH], *aptrs[MAX_ATTACH];
	Enlace__CtlResponse *resp = NULL;
	struct enl_header *h = NULL;
	struct enl_payload p;
	struct loaded l;
	struct args a;
	char *to[ENL_MAX_RECIPIENTS], hex[2 * ENL_MSG_ID_LEN + 1];
	int ret;

	memset(&l, 0, sizeof(l));
	if ((ret = parse_args(argc, argv, allowed, usage_send, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nHands a message to the local agent, which signs and "
		       "encrypts it and keeps\nit in its outbox until the broker has "
		       "receipted it; the message id is\nprinted once it is safely on disk. "
		       "--wait waits for the broker's receipt,\nand exits 1 if it does not "
		       "hold or if the broker refuses a recipient.\nValues as in `enlace seal "
		       "--help`; the defaults are TLP:AMBER, onward\nsharing CONSENT, "
		       "evidential use INTELLIGENCE_ONLY.\n", usage_send);
		return 0;
	}
	if (a.n_to == 0)
		return usage_err("at least one --to is required", usage_send);
	if (a.text != NULL && a.text_file != NULL)
		return usage_err("--text and --text-file exclude each other", usage_send);
	if (a.text == NULL && a.text_file == NULL)
		return usage_err("the message's text is required: --text T or --text-file F",
				 usage_send);
	if ((h = malloc(sizeof(*h))) == NULL)
		return fail("send", ENL_E_NOMEM);
	if ((ret = seal_header(&a, h, (int64_t)time(NULL), usage_send)) != 0 ||
	    (ret = seal_payload(&a, ENL_DEFAULT_MAX_PAYLOAD, true, &l, &p, usage_send)) != 0)
		goto out;
	for (size_t i = 0; i < a.n_to; i++)
		to[i] = (char *)a.to[i];
	cs.n_to = a.n_to;
	cs.to = to;
	cs.type = (Enlace__MessageType)h->type;
	hd.tlp = (Enlace__Tlp)h->handling.tlp;
	hd.onward = (Enlace__Onward)h->handling.onward;
	hd.evidential = (Enlace__Evidential)h->handling.evidential;
	cs.handling = &hd;
	cs.reliability = (Enlace__Reliability)h->reliability;
	cs.assessment = h->assessment;
	cs.priority = (Enlace__Priority)h->priority;
	cs.case_ref = h->case_ref;
	if (h->has_in_reply_to) {
		cs.in_reply_to.data = h->in_reply_to;
		cs.in_reply_to.len = ENL_MSG_ID_LEN;
	}
	cs.expires_at = h->expires_at;
	cs.reply_by = h->reply_by;
	cs.subject = (char *)p.subject;
	cs.body = (char *)p.body;
	for (size_t i = 0; i < p.n_attachments; i++) {
		enlace__attachment__init(&atts[i]);
		atts[i].name = (char *)p.attachments[i].name;
		atts[i].media_type = (char *)p.attachments[i].media_type;
		atts[i].data.data = (uint8_t *)p.attachments[i].data;
		atts[i].data.len = p.attachments[i].len;
		aptrs[i] = &atts[i];
	}
	cs.n_attachments = p.n_attachments;
	cs.attachments = aptrs;
	cs.wait = a.wait;
	req.body_case = ENLACE__CTL_REQUEST__BODY_SEND;
	req.send = &cs;
	if ((ret = agent_call(&a, &req, a.wait ? 75000 : 30000, &resp)) != 0)
		goto out;
	if (a.wait) {
		print_states(resp, a.json);
		ret = wait_verdict(resp);
	} else if (a.json) {
		struct enl_json j;
		enl_hex(resp->message_id.data, resp->message_id.len, hex);
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "message_id", hex);
		enl_json_str(&j, "state", "outbox");
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		enl_hex(resp->message_id.data, resp->message_id.len, hex);
		printf("%s\n", hex);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(h);
	loaded_free(&l, a.n_attach);
	return ret;
}

static const char usage_forward[] =
	"enlace forward MSGID --to ID [--to ID]... [--note TEXT] [--wait] [--socket PATH] [--json]";

int
cmd_forward(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_TO, OPT_NOTE, OPT_WAIT, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlSend cs = ENLACE__CTL_SEND__INIT;
	Enlace__Handling hd = ENLACE__HANDLING__INIT;
	Enlace__CtlResponse *resp = NULL;
	uint8_t id[ENL_MSG_ID_LEN];
	char *to[ENL_MAX_RECIPIENTS], hex[2 * ENL_MSG_ID_LEN + 1];
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_forward, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nForwards a message received (from the inbox) to a third "
		       "party: the original\nsigned envelope goes with it, so that the new "
		       "recipient can check the\noriginator's signature, under the original's "
		       "handling, which a forward can\nnever weaken. TLP:RED and "
		       "TLP:AMBER+STRICT are never forwarded, nor anything\nwhose onward "
		       "sharing is NEVER; TLP:AMBER stays in this agency's country. With\n"
		       "onward sharing CONSENT the broker holds the forward until the "
		       "originator\ngrants it.\n", usage_forward);
		return 0;
	}
	if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
		return usage_err("expected one message id (32 hex digits)", usage_forward);
	if (a.n_to == 0)
		return usage_err("at least one --to is required", usage_forward);
	for (size_t i = 0; i < a.n_to; i++)
		to[i] = (char *)a.to[i];
	cs.n_to = a.n_to;
	cs.to = to;
	cs.type = ENLACE__MESSAGE_TYPE__FORWARD;
	cs.handling = &hd;	/* the agent takes the original's */
	cs.body = (char *)(a.text ? a.text : "");
	cs.forward_of.data = id;
	cs.forward_of.len = sizeof(id);
	cs.wait = a.wait;
	req.body_case = ENLACE__CTL_REQUEST__BODY_SEND;
	req.send = &cs;
	if ((ret = agent_call(&a, &req, a.wait ? 75000 : 30000, &resp)) != 0)
		return ret;
	if (a.wait) {
		print_states(resp, a.json);
		ret = wait_verdict(resp);
	} else {
		enl_hex(resp->message_id.data, resp->message_id.len, hex);
		if (a.json)
			printf("{\"message_id\":\"%s\",\"state\":\"outbox\"}\n", hex);
		else
			printf("%s\n", hex);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static const char usage_consent[] =
	"enlace consent list [--json]\n"
	"       enlace consent grant REQ [--note TEXT] [--json]\n"
	"       enlace consent deny REQ --reason TEXT [--json]";

int
cmd_consent(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_NOTE, OPT_REASON, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlDecide dc = ENLACE__CTL_DECIDE__INIT;
	Enlace__CtlResponse *resp = NULL;
	const char *what = argc > 1 ? argv[1] : "";
	uint8_t id[ENL_MSG_ID_LEN];
	struct args a;
	int ret;

	if (strcmp(what, "--help") == 0 || strcmp(what, "help") == 0) {
		printf("usage: %s\n\nA third party may receive one of your messages only with "
		       "your consent when\nits onward sharing is CONSENT: the broker holds the "
		       "forward and asks you.\nlist shows the requests; grant and deny answer "
		       "one with a decision signed by\nthis agency, bound to your message, the "
		       "forward and its recipient. A request\nleft unanswered expires and the "
		       "forward is refused.\n", usage_consent);
		return 0;
	}
	if (strcmp(what, "list") != 0 && strcmp(what, "grant") != 0 && strcmp(what, "deny") != 0)
		return usage_err("consent list, grant or deny", usage_consent);
	if ((ret = parse_args(argc - 1, argv + 1, allowed, usage_consent, &a)) != 0)
		return ret;
	if (strcmp(what, "list") == 0) {
		if (a.argc != 0)
			return usage_err("list takes no argument", usage_consent);
		req.body_case = ENLACE__CTL_REQUEST__BODY_CONSENTS;
		req.consents = true;
	} else {
		if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
			return usage_err("expected one request id (32 hex digits)", usage_consent);
		if (strcmp(what, "deny") == 0 && (a.text == NULL || a.text[0] == '\0'))
			return usage_err("deny needs --reason", usage_consent);
		dc.request_id.data = id;
		dc.request_id.len = sizeof(id);
		dc.grant = strcmp(what, "grant") == 0;
		dc.note = (char *)(a.text ? a.text : "");
		req.body_case = ENLACE__CTL_REQUEST__BODY_DECIDE;
		req.decide = &dc;
	}
	if ((ret = agent_call(&a, &req, 75000, &resp)) != 0)
		return ret;
	if (strcmp(what, "list") != 0) {
		char hex[33];
		if (a.json) {
			print_states(resp, true);
		} else {
			enl_hex(id, sizeof(id), hex);
			printf("consent %s for request %s: the signed decision is receipted by the "
			       "broker%s\n", dc.grant ? "granted" : "denied", hex,
			       dc.grant ? ", which releases the forward" : ", which refuses the forward");
		}
		ret = resp->receipt_verified ? 0 : EXIT_FAIL;
	} else if (a.json) {
		struct enl_json j;
		char hex[33], t[32];
		enl_json_init(&j, stdout);
		enl_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < resp->n_consents; i++) {
			const Enlace__CtlConsent *c = resp->consents[i];
			enl_json_obj_begin(&j, NULL);
			enl_hex(c->request_id.data, c->request_id.len, hex);
			enl_json_str(&j, "request_id", hex);
			enl_hex(c->original_id.data, c->original_id.len, hex);
			enl_json_str(&j, "original_id", hex);
			enl_hex(c->forward_id.data, c->forward_id.len, hex);
			enl_json_str(&j, "forward_id", hex);
			{
				char hh[65];
				enl_hex(c->original_hash.data, c->original_hash.len, hh);
				enl_json_str(&j, "original_hash", hh);
			}
			enl_json_str(&j, "forwarder", c->forwarder);
			enl_json_str(&j, "recipient", c->recipient);
			enl_time_format(c->expires_at, t);
			enl_json_str(&j, "expires_at", t);
			enl_json_str(&j, "decided", c->decided);
			enl_json_obj_end(&j);
		}
		enl_json_arr_end(&j);
		enl_json_end(&j);
	} else {
		char hex[33], ohex[33], t[32];
		if (resp->n_consents == 0)
			printf("no consent requests\n");
		for (size_t i = 0; i < resp->n_consents; i++) {
			const Enlace__CtlConsent *c = resp->consents[i];
			enl_hex(c->request_id.data, c->request_id.len, hex);
			enl_hex(c->original_id.data, c->original_id.len, ohex);
			enl_time_format(c->expires_at, t);
			printf("%s  %s would forward your %s to %s; %s\n", hex, c->forwarder, ohex,
			       c->recipient, c->decided[0] ? c->decided : "PENDING until");
			if (!c->decided[0])
				printf("%34s%s\n", "", t);
		}
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static void
item_json(struct enl_json *j, const Enlace__CtlItem *it)
{
	char hex[65], t[32];

	enl_json_obj_begin(j, NULL);
	enl_hex(it->message_id.data, it->message_id.len, hex);
	enl_json_str(j, "message_id", hex);
	enl_json_str(j, "sender", it->sender);
	enl_json_str(j, "sender_name", it->sender_name);
	enl_json_str(j, "sender_fingerprint", it->sender_fingerprint);
	enl_json_int(j, "sender_key_version", it->sender_key_version);
	enl_json_bool(j, "signature_verified", true);
	if (it->sender_key_revoked_at != 0) {
		enl_time_format(it->sender_key_revoked_at, t);
		enl_json_str(j, "sender_key_revoked_at", t);
		enl_json_str(j, "sender_key_revocation", it->sender_key_revocation);
	}
	enl_json_str(j, "type", enl_msg_type_name(it->type) ? enl_msg_type_name(it->type) : "");
	enl_json_str(j, "case", it->case_ref);
	if (it->handling != NULL) {
		enl_json_obj_begin(j, "handling");
		enl_json_str(j, "tlp", enl_tlp_name(it->handling->tlp));
		enl_json_str(j, "onward", enl_onward_name(it->handling->onward));
		enl_json_str(j, "evidential", enl_evidential_name(it->handling->evidential));
		enl_json_obj_end(j);
	}
	enl_time_format(it->created_at, t);
	enl_json_str(j, "created_at", t);
	enl_time_format(it->received_at, t);
	enl_json_str(j, "received_at", t);
	enl_json_str(j, "subject", it->subject);
	enl_json_int(j, "attachments", it->attachments);
	if (it->n_recipients) {
		enl_json_arr_begin(j, "recipients");
		for (size_t i = 0; i < it->n_recipients; i++)
			enl_json_str(j, NULL, it->recipients[i]);
		enl_json_arr_end(j);
	}
	if (it->payload != NULL) {
		enl_json_str(j, "body", it->payload->body);
		enl_json_arr_begin(j, "files");
		for (size_t i = 0; i < it->payload->n_attachments; i++) {
			const Enlace__Attachment *at = it->payload->attachments[i];
			uint8_t hash[ENL_HASH_LEN];
			enl_json_obj_begin(j, NULL);
			enl_json_str(j, "name", at->name);
			enl_json_str(j, "media_type", at->media_type);
			enl_json_int(j, "bytes", (int64_t)at->data.len);
			enl_hash(at->data.data, at->data.len, hash);
			enl_hex(hash, ENL_HASH_LEN, hex);
			enl_json_str(j, "blake2b", hex);
			enl_json_obj_end(j);
		}
		enl_json_arr_end(j);
	}
	if (it->forward_of.len == ENL_MSG_ID_LEN) {
		enl_hex(it->forward_of.data, ENL_MSG_ID_LEN, hex);
		enl_json_str(j, "forward_of", hex);
	}
	if (it->original != NULL) {
		/* the original a forward carries, its originator's signature verified */
		const Enlace__CtlItem *o = it->original;
		enl_json_obj_begin(j, "original");
		enl_hex(o->message_id.data, o->message_id.len, hex);
		enl_json_str(j, "message_id", hex);
		enl_json_str(j, "sender", o->sender);
		enl_json_str(j, "sender_fingerprint", o->sender_fingerprint);
		enl_json_bool(j, "signature_verified", true);
		enl_time_format(o->created_at, t);
		enl_json_str(j, "created_at", t);
		enl_json_str(j, "tlp", enl_tlp_name(o->handling->tlp));
		enl_json_str(j, "onward", enl_onward_name(o->handling->onward));
		enl_json_str(j, "evidential", enl_evidential_name(o->handling->evidential));
		enl_json_str(j, "subject", o->subject);
		enl_json_str(j, "body", o->payload ? o->payload->body : "");
		enl_json_obj_end(j);
	}
	enl_json_obj_end(j);
}

static int
by_received(const void *x, const void *y)
{
	const Enlace__CtlItem *a = *(Enlace__CtlItem *const *)x, *b = *(Enlace__CtlItem *const *)y;

	return a->received_at < b->received_at ? -1 : a->received_at > b->received_at;
}

static const char usage_inbox[] = "enlace inbox [--socket PATH] [--json]";

int
cmd_inbox(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlResponse *resp = NULL;
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_inbox, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nLists the messages the agent received, verified and "
		       "acknowledged, oldest first.\n", usage_inbox);
		return 0;
	}
	req.body_case = ENLACE__CTL_REQUEST__BODY_INBOX;
	req.inbox = true;
	if ((ret = agent_call(&a, &req, 30000, &resp)) != 0)
		return ret;
	qsort(resp->items, resp->n_items, sizeof(*resp->items), by_received);
	if (a.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < resp->n_items; i++)
			item_json(&j, resp->items[i]);
		enl_json_arr_end(&j);
		enl_json_end(&j);
	} else {
		printf("%-32s  %-20s  %-12s %-26s %-16s %s\n", "MESSAGE", "RECEIVED", "FROM",
		       "HANDLING", "CASE", "SUBJECT");
		for (size_t i = 0; i < resp->n_items; i++) {
			const Enlace__CtlItem *it = resp->items[i];
			char hex[33], t[32], tlp[80], u[32], u2[32];
			enl_hex(it->message_id.data, ENL_MSG_ID_LEN, hex);
			enl_time_format(it->received_at, t);
			/* handling first: TLP and onward sharing */
			snprintf(tlp, sizeof(tlp), "TLP:%s onward:%s",
				 upper(enl_tlp_name(it->handling ? it->handling->tlp : 0)
					       ? enl_tlp_name(it->handling->tlp) : "?",
				       u, sizeof(u)),
				 upper(enl_onward_name(it->handling ? it->handling->onward : 0)
					       ? enl_onward_name(it->handling->onward) : "?",
				       u2, sizeof(u2)));
			struct tbuf tb = {0};
			printf("%-32s  %-20s  %-12s %-26s %-16s %s%s%s\n", hex, t, it->sender, tlp,
			       tline(&tb, it->case_ref), tline(&tb, it->subject),
			       it->attachments ? "  [attachments]" : "",
			       it->sender_key_revoked_at ? "  [SENDER KEY REVOKED since]" : "");
			tbuf_free(&tb);
		}
		printf("%zu message(s)\n", resp->n_items);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* Says whether the sender's key was revoked since: for a message that
 * arrived (`received`) before that, the signature held when it was
 * checked on arrival; one that arrived after must not be relied on. */
static bool
revocation_say(const Enlace__CtlItem *it, int64_t received, char *out, size_t cap)
{
	char t[32];

	if (it->sender_key_revoked_at == 0 && it->sender_key_revocation[0] == '\0')
		return false;
	enl_time_format(it->sender_key_revoked_at, t);
	char *why = enl_term_escape(it->sender_key_revocation, false);
	snprintf(out, cap, "KEY REVOKED at %s (%s), %s", t, why != NULL ? why : "?",
		 received < it->sender_key_revoked_at
			 ? "after this message arrived: its signature held when it was checked"
		 : received == it->sender_key_revoked_at
			 ? "in the second this message arrived: which came first cannot be told"
			 : "BEFORE this message arrived: do not rely on it");
	free(why);
	return true;
}

static const char usage_read[] = "enlace read [--socket PATH] [--save DIR] [--json] MSGID";

int
cmd_read(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_SAVE, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlResponse *resp = NULL;
	const Enlace__CtlItem *it;
	uint8_t id[ENL_MSG_ID_LEN];
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_read, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nShows one received message: its sender, verified "
		       "against the directory, its\nhandling, body and attachments. --save "
		       "writes the attachments into DIR.\n", usage_read);
		return 0;
	}
	if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
		return usage_err("expected one message id (32 hex digits)", usage_read);
	req.body_case = ENLACE__CTL_REQUEST__BODY_READ;
	req.read.data = id;
	req.read.len = sizeof(id);
	if ((ret = agent_call(&a, &req, 30000, &resp)) != 0)
		return ret;
	it = resp->items[0];
	if (a.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		item_json(&j, it);
		enl_json_end(&j);
	} else {
		char t[32], u1[32], u2[32], u3[32], hex[65];
		enl_hex(it->message_id.data, ENL_MSG_ID_LEN, hex);
		char rv[400];
		struct tbuf tb = {0};
		printf("message   %s\nfrom      %s  %s\n", hex, it->sender,
		       tline(&tb, it->sender_name));
		printf("          signature VERIFIED: key v%u %s\n", it->sender_key_version,
		       it->sender_fingerprint);
		if (revocation_say(it, it->received_at, rv, sizeof(rv)))
			printf("          %s\n", rv);
		printf("to       ");
		for (size_t i = 0; i < it->n_recipients; i++)
			printf(" %s", it->recipients[i]);	/* agency ids: checked */
		enl_time_format(it->created_at, t);
		printf("\nsent      %s\n", t);
		enl_time_format(it->received_at, t);
		printf("received  %s\ntype      %s", t, enl_msg_type_name(it->type));
		if (it->case_ref[0])
			printf("   case %s", tline(&tb, it->case_ref));
		printf("\nHANDLING  TLP:%s   onward sharing: %s   evidential use: %s\n",
		       upper(enl_tlp_name(it->handling->tlp), u1, sizeof(u1)),
		       upper(enl_onward_name(it->handling->onward), u2, sizeof(u2)),
		       upper(enl_evidential_name(it->handling->evidential), u3, sizeof(u3)));
		printf("subject   %s\n\n", tline(&tb, it->subject));
		tbody(stdout, it->payload ? it->payload->body : "");
		if (it->payload && it->payload->n_attachments)
			printf("\nattachments (%zu):\n", it->payload->n_attachments);
		for (size_t i = 0; it->payload && i < it->payload->n_attachments; i++) {
			printf("  %-30s %-26s %10zu bytes\n",
			       tline(&tb, it->payload->attachments[i]->name),
			       tline(&tb, it->payload->attachments[i]->media_type),
			       it->payload->attachments[i]->data.len);
			tbuf_free(&tb);	/* what it held is printed */
		}
		if (it->original != NULL) {
			const Enlace__CtlItem *o = it->original;
			char ot[32];
			enl_hex(o->message_id.data, ENL_MSG_ID_LEN, hex);
			enl_time_format(o->created_at, ot);
			enl_time_format(it->created_at, t);
			printf("\nCHAIN OF CUSTODY\n"
			       "  1. original %s\n     by %s %s, %s\n     signature VERIFIED: "
			       "key v%u %s\n", hex, o->sender, tline(&tb, o->sender_name), ot,
			       o->sender_key_version, o->sender_fingerprint);
			if (revocation_say(o, it->received_at, rv, sizeof(rv)))
				printf("     %s\n", rv);
			printf("  2. forwarded by %s %s, %s\n     signature VERIFIED: key v%u %s\n",
			       it->sender, tline(&tb, it->sender_name), t, it->sender_key_version,
			       it->sender_fingerprint);
			printf("\nORIGINAL  TLP:%s   onward sharing: %s   evidential use: %s\n",
			       upper(enl_tlp_name(o->handling->tlp), u1, sizeof(u1)),
			       upper(enl_onward_name(o->handling->onward), u2, sizeof(u2)),
			       upper(enl_evidential_name(o->handling->evidential), u3, sizeof(u3)));
			printf("subject   %s\n\n", tline(&tb, o->subject));
			tbody(stdout, o->payload ? o->payload->body : "");
		}
		tbuf_free(&tb);
	}
	if (a.save != NULL && it->payload != NULL) {
		struct enl_message m;
		struct enl_attachment atts[ENL_MAX_ATTACHMENTS];
		memset(&m, 0, sizeof(m));
		for (size_t i = 0; i < it->payload->n_attachments && i < ENL_MAX_ATTACHMENTS; i++) {
			atts[i].name = it->payload->attachments[i]->name;
			atts[i].media_type = it->payload->attachments[i]->media_type;
			atts[i].data = it->payload->attachments[i]->data.data;
			atts[i].len = it->payload->attachments[i]->data.len;
		}
		m.payload.n_attachments = it->payload->n_attachments;
		m.payload.attachments = atts;
		ret = save_attachments(&m, a.save);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static const char usage_receipts[] = "enlace receipts [--socket PATH] [--json] MSGID";

int
cmd_receipts(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlResponse *resp = NULL;
	uint8_t id[ENL_MSG_ID_LEN];
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_receipts, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nShows, per recipient, whether a message you sent is "
		       "queued, fetched or\nacknowledged, with times. The broker's signature "
		       "and each recipient's signed\nacknowledgement are checked, and the "
		       "message's entry in the broker's audit\nlog; exit 1 if any of it does "
		       "not verify, or if the agent holds an alarm\nabout the broker's log.\n",
		       usage_receipts);
		return 0;
	}
	if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
		return usage_err("expected one message id (32 hex digits)", usage_receipts);
	req.body_case = ENLACE__CTL_REQUEST__BODY_RECEIPTS;
	req.receipts.data = id;
	req.receipts.len = sizeof(id);
	if ((ret = agent_call(&a, &req, 30000, &resp)) != 0)
		return ret;
	print_states(resp, a.json);
	ret = resp->receipt_verified && resp->log_verified && !resp->log_alarm[0] ? 0 : EXIT_FAIL;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

static const char usage_status[] = "enlace status [--socket PATH] [--json]";

int
cmd_status(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlResponse *resp = NULL;
	const Enlace__CtlStatus *s;
	struct args a;
	char expires[32];
	bool expired;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_status, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nWhether the agent is connected to its broker, the "
		       "directory serial it holds\nand when it expires, the sizes of its "
		       "queues, the newest checkpoint of the\nbroker's audit log it holds and "
		       "cosigned, and any alarm about that log.\nExit status: 0 connected "
		       "and no alarm; 1 not connected, an alarm stands, or the inbox cannot keep\n"
		       "what comes in (its disk full, say).\n",
		       usage_status);
		return 0;
	}
	req.body_case = ENLACE__CTL_REQUEST__BODY_STATUS;
	req.status = true;
	if ((ret = agent_call(&a, &req, 10000, &resp)) != 0)
		return ret;
	s = resp->agent;
	if (s == NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return fail("status", ENL_E_MALFORMED);
	}
	expired = s->directory_expires_at <= (int64_t)time(NULL);
	if (a.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "agency", s->agency);
		enl_json_bool(&j, "connected", s->connected);
		enl_json_str(&j, "broker", s->broker);
		enl_json_str(&j, "broker_url", s->broker_url);
		enl_json_int(&j, "directory_serial", (int64_t)s->directory_serial);
		enl_time_format(s->directory_expires_at, expires);
		enl_json_str(&j, "directory_expires_at", expires);
		enl_json_bool(&j, "directory_expired", expired);
		enl_json_int(&j, "outbox", s->outbox);
		enl_json_int(&j, "sent", s->sent);
		enl_json_int(&j, "inbox", s->inbox);
		enl_json_int(&j, "refused", s->refused);
		enl_json_int(&j, "failed", s->failed);
		enl_json_str(&j, "last_error", s->last_error);
		enl_json_str(&j, "outbox_waiting", s->outbox_waiting);
		enl_json_int(&j, "checkpoint_size", (int64_t)s->checkpoint_size);
		enl_json_int(&j, "cosigned_size", (int64_t)s->cosigned_size);
		enl_json_str(&j, "log_alarm", s->log_alarm);
		enl_json_str(&j, "inbox_blocked", s->inbox_blocked);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		printf("agency     %s\nbroker     %s at %s: %s\n", s->agency, s->broker,
		       s->broker_url, s->connected ? "connected" : "NOT CONNECTED");
		struct tbuf tb = {0};
		if (!s->connected && s->last_error[0])
			printf("           last error: %s\n", tline(&tb, s->last_error));
		enl_time_format(s->directory_expires_at, expires);
		printf("directory  serial %" PRIu64 ", %s %s%s\n", s->directory_serial,
		       expired ? "EXPIRED at" : "expires", expires,
		       expired ? ": the directory authority's newer one is needed" : "");
		printf("outbox %u  sent %u  inbox %u  refused %u  failed %u\n", s->outbox, s->sent,
		       s->inbox, s->refused, s->failed);
		if (s->outbox > 0 && s->outbox_waiting[0])
			printf("           the outbox waits: %s\n", tline(&tb, s->outbox_waiting));
		if (s->inbox_blocked[0])
			printf("INBOX      BLOCKED: %s\n", tline(&tb, s->inbox_blocked));
		printf("audit log  checkpoint of %" PRIu64 " entries held, consistent; "
		       "cosigned up to %" PRIu64 "\n", s->checkpoint_size, s->cosigned_size);
		if (s->log_alarm[0])
			printf("ALARM      the broker's audit log failed a check: %s\n"
			       "           (kept in the agent's spool/ALARM)\n", tline(&tb, s->log_alarm));
		tbuf_free(&tb);
	}
	/* for a monitor: healthy is connected, with no alarm, taking messages in */
	ret = s->connected && s->log_alarm[0] == '\0' && s->inbox_blocked[0] == '\0' ? 0
											: EXIT_FAIL;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}
