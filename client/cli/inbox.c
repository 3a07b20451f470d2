/*
 * enlace inbox and enlace read: the messages received.
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
static const char help_inbox[] =
	"Lists the messages the agent received, verified and "
	"acknowledged, oldest first.\n";

int
cmd_inbox(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlResponse *resp = NULL;
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_inbox, help_inbox, &a)) >= 0)
		return ret;
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
static const char help_read[] =
	"Shows one received message: its sender, verified "
	"against the directory, its\nhandling, body and attachments. --save "
	"writes the attachments into DIR.\n";

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

	if ((ret = parse_args(argc, argv, allowed, usage_read, help_read, &a)) >= 0)
		return ret;
	if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
		return enl_cli_usage_line(prog, "expected one message id (32 hex digits)", usage_read);
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
