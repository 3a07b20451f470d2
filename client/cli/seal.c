/*
 * enlace seal: a message sealed into an envelope file, offline.
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

/* ---- seal ---- */

static const char usage_seal[] =
	"enlace seal --key DIR --directory FILE --authority-pub FILE --to ID...\n"
	"       [--type T] [--case REF] [--tlp L] [--onward O] [--evidential E]\n"
	"       [--reliability R] [--assessment N] [--priority P] [--expires 30d]\n"
	"       [--reply-by 7d] [--in-reply-to MSGID] [--subject S]\n"
	"       [--text T | --text-file F] [--attach FILE]... [--max-payload BYTES]\n"
	"       [--passphrase-file F] [--json] --out FILE";
static const char help_seal[] =
	"Seals a message into an envelope file: signed with "
	"your key, encrypted for\neach recipient's current key in the "
	"directory.\n\n"
	"  --type        case_message (default), fiu_report, request, reply\n"
	"  --tlp         clear, green, amber (default), amber+strict, red\n"
	"  --onward      free, consent (default), never\n"
	"  --evidential  may_use, consent, intelligence_only (default)\n"
	"  --reliability A, B, C, X        --assessment 1..4\n"
	"  --priority    routine, priority, immediate, flash\n"
	"  --max-payload payload limit in bytes (default 52428800)\n";

int
seal_header(const struct args *a, struct enl_header *h, int64_t now, const char *usage)
{
	int type = ENL_MSG_CASE_MESSAGE, tlp = ENL_TLP_AMBER, onward = ENL_ONWARD_CONSENT;
	int evid = ENL_EVID_INTELLIGENCE_ONLY, rel = 0, prio = 0;
	int ret;

	memset(h, 0, sizeof(*h));
	if ((ret = enum_opt("type", a->type, enl_msg_type_parse,
			    "case_message, fiu_report, request or reply", &type, usage)) ||
	    (ret = enum_opt("tlp", a->tlp, enl_tlp_parse,
			    "clear, green, amber, amber+strict or red", &tlp, usage)) ||
	    (ret = enum_opt("onward", a->onward, enl_onward_parse, "free, consent or never",
			    &onward, usage)) ||
	    (ret = enum_opt("evidential", a->evid, enl_evidential_parse,
			    "may_use, consent or intelligence_only", &evid, usage)) ||
	    (ret = enum_opt("reliability", a->rel, enl_reliability_parse, "A, B, C or X",
			    &rel, usage)) ||
	    (ret = enum_opt("priority", a->prio, enl_priority_parse,
			    "routine, priority, immediate or flash", &prio, usage)))
		return ret;
	if (type > ENL_MSG_REPLY)
		return enl_cli_usage_line(prog, "--type takes case_message, fiu_report, request or reply: "
				 "forwards and consent have their own commands", usage);
	h->type = type;
	h->handling.tlp = tlp;
	h->handling.onward = onward;
	h->handling.evidential = evid;
	{
		char why[160];
		if (!enl_handling_consistent(&h->handling, why, sizeof(why)))
			return enl_cli_usage_line(prog, why, usage);
	}
	h->reliability = rel;
	h->priority = prio;
	if (a->assess != NULL) {
		if (strlen(a->assess) != 1 || a->assess[0] < '1' || a->assess[0] > '4')
			return enl_cli_usage_line(prog, "--assessment is 1, 2, 3 or 4", usage);
		h->assessment = (uint32_t)(a->assess[0] - '0');
	}
	for (size_t i = 0; i < a->n_to; i++) {
		char msg[256];
		if (!enl_id_valid(a->to[i])) {
			snprintf(msg, sizeof(msg), "--to takes an agency id such as BR-PF "
				 "(2 to 8 letters, '-', a name), not '%.64s'", a->to[i]);
			return enl_cli_usage_line(prog, msg, usage);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->to[j], a->to[i]) == 0) {
				snprintf(msg, sizeof(msg), "--to %s is given twice", a->to[i]);
				return enl_cli_usage_line(prog, msg, usage);
			}
		memcpy(h->recipients[i], a->to[i], strlen(a->to[i]) + 1);
	}
	h->n_recipients = a->n_to;
	if (a->case_ref != NULL) {
		if (strlen(a->case_ref) > ENL_CASE_REF_MAX)
			return enl_cli_usage_line(prog, "--case is at most 128 bytes", usage);
		memcpy(h->case_ref, a->case_ref, strlen(a->case_ref) + 1);
	}
	if (a->expires && (h->expires_at = parse_after(a->expires, now)) == 0)
		return enl_cli_usage_line(prog, "--expires takes a duration such as 30d, 12h or 45m", usage);
	if (a->reply_by && (h->reply_by = parse_after(a->reply_by, now)) == 0)
		return enl_cli_usage_line(prog, "--reply-by takes a duration such as 7d", usage);
	if (a->in_reply != NULL) {
		if (!enl_unhex(a->in_reply, h->in_reply_to, ENL_MSG_ID_LEN))
			return enl_cli_usage_line(prog, "--in-reply-to takes a message id (32 hex digits)",
					 usage);
		h->has_in_reply_to = true;
	}
	return 0;
}

void
loaded_free(struct loaded *l, size_t n)
{
	free(l->body);
	for (size_t i = 0; i < n; i++) {
		free(l->att[i]);
		enl_file_unmap(l->mapped[i], l->mapped_len[i]);
	}
}

int
seal_payload(const struct args *a, size_t max, bool map, struct loaded *l,
	     struct enl_payload *p, const char *usage)
{
	size_t len = 0;
	int rc;

	memset(p, 0, sizeof(*p));
	p->subject = a->subject ? a->subject : "";
	p->body = a->text ? a->text : "";
	if (a->text_file != NULL) {
		if ((rc = enl_file_read(a->text_file, max, &l->body, &len)) != ENL_OK)
			return enl_cli_fail(prog, a->text_file, rc);
		if (strlen((const char *)l->body) != len) {
			fprintf(stderr, "%s: %s: the text contains a NUL byte; send it with "
				"--attach\n", prog, a->text_file);
			return ENL_EXIT_FAIL;
		}
		p->body = (const char *)l->body;
	}
	/* what every recipient's agent would refuse (docs/FORMATS.md, "Text") */
	if (!enl_text_valid(p->subject, 1000))
		return enl_cli_usage_line(prog, "--subject: one line of UTF-8 text of at most 1000 bytes, with "
				 "no control or bidirectional formatting character", usage);
	if (!enl_body_valid(p->body, SIZE_MAX)) {
		fprintf(stderr, "%s: %s: the text is not UTF-8, or holds a control character "
			"other than tab and line breaks; send such bytes with --attach\n", prog,
			a->text_file ? a->text_file : "--text");
		return ENL_EXIT_FAIL;
	}
	for (size_t i = 0; i < a->n_attach; i++) {
		const char *base = strrchr(a->attach[i], '/');
		if (!enl_text_valid(base ? base + 1 : a->attach[i], 255)) {
			char *shown = enl_term_escape(base ? base + 1 : a->attach[i], false);
			fprintf(stderr, "%s: --attach %s: a file name must be UTF-8 of at most 255 "
				"bytes, with no control or bidirectional formatting character; "
				"rename it\n", prog, shown ? shown : "?");
			free(shown);
			return ENL_EXIT_FAIL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(l->atts[j].name, base ? base + 1 : a->attach[i]) == 0) {
				char msg[300];
				snprintf(msg, sizeof(msg), "--attach: two files named %.200s (the "
					 "recipient knows attachments by name)", l->atts[j].name);
				return enl_cli_usage_line(prog, msg, usage);
			}
		struct stat st;
		/* (a small file is read: packing copies its bytes, which must
		 * then not be a mapping that a truncation could pull away) */
		if (map && stat(a->attach[i], &st) == 0 && st.st_size >= 1 << 20) {
			rc = enl_file_map(a->attach[i], max, &l->mapped[i], &len);
			if (rc == ENL_OK)
				l->mapped_len[i] = len;
		} else {
			rc = enl_file_read(a->attach[i], max, &l->att[i], &len);
		}
		if (rc == ENL_E_TOO_LARGE) {
			fprintf(stderr, "%s: %s: over the payload limit of %zu bytes\n",
				prog, a->attach[i], max);
			return ENL_EXIT_FAIL;
		}
		if (rc != ENL_OK)
			return enl_cli_fail(prog, a->attach[i], rc);
		l->atts[i].name = base ? base + 1 : a->attach[i];
		l->atts[i].media_type = media_type(l->atts[i].name);
		l->atts[i].data = l->mapped[i] != NULL ? l->mapped[i] : l->att[i];
		l->atts[i].len = len;
	}
	p->n_attachments = a->n_attach;
	p->attachments = l->atts;
	if (p->subject[0] == '\0' && p->body[0] == '\0' && p->n_attachments == 0)
		return enl_cli_usage_line(prog, "nothing to send: the text is empty, and there is no "
				 "--subject and no --attach", usage);
	return 0;
}

int
cmd_seal(int argc, char **argv)
{
	static const int allowed[] = {OPT_KEY, OPT_PASSFILE, OPT_DIRECTORY, OPT_AUTHPUB,
				      OPT_TO, OPT_CASE, OPT_TLP, OPT_ONWARD, OPT_EVID,
				      OPT_TYPE, OPT_REL, OPT_ASSESS, OPT_PRIO, OPT_EXPIRES,
				      OPT_REPLYBY, OPT_INREPLY, OPT_SUBJECT, OPT_TEXT,
				      OPT_TEXTFILE, OPT_ATTACH, OPT_OUT, OPT_MAXPAY,
				      OPT_JSON, 0};
	struct args a;
	struct enl_header *h = NULL;
	struct enl_payload p;
	struct enl_limits lim = enl_limits_default();
	struct loaded l;
	uint8_t *env = NULL;
	size_t env_len = 0;
	int64_t now = (int64_t)time(NULL);
	char hex[2 * ENL_MSG_ID_LEN + 1];
	int ret, rc;

	memset(&l, 0, sizeof(l));
	if ((ret = parse_args(argc, argv, allowed, usage_seal, help_seal, &a)) >= 0)
		return ret;
	if ((ret = need_context(&a, usage_seal)) != 0)
		return ret;
	if (a.n_to == 0 || a.out == NULL)
		return enl_cli_usage_line(prog, "at least one --to and --out are required", usage_seal);
	if (a.text != NULL && a.text_file != NULL)
		return enl_cli_usage_line(prog, "--text and --text-file exclude each other", usage_seal);
	if (a.max_payload != NULL) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(a.max_payload, &end, 10);
		if (errno || *end || v == 0 || v > ((size_t)1 << 32))
			return enl_cli_usage_line(prog, "--max-payload takes a number of bytes", usage_seal);
		lim.max_payload = (size_t)v;
	}
	if ((h = malloc(sizeof(*h))) == NULL)
		return enl_cli_fail(prog, "seal", ENL_E_NOMEM);
	ret = seal_header(&a, h, now, usage_seal);
	if (ret == 0)
		ret = context_load(&a.ctx);
	if (ret == 0)
		ret = seal_payload(&a, lim.max_payload, false, &l, &p, usage_seal);
	if (ret != 0)
		goto out;
	ret = ENL_EXIT_FAIL;
	for (size_t i = 0; i < h->n_recipients; i++) {
		uint8_t pk[32];
		uint32_t v;
		rc = a.ctx.kr.encryption_key(a.ctx.kr.ctx, h->recipients[i], &v, pk);
		if (rc != ENL_OK) {
			fprintf(stderr, "%s: %s: %s (directory serial %" PRIu64 ")\n", prog,
				h->recipients[i], enl_strerror(rc),
				enl_directory_serial(a.ctx.dir));
			goto out;
		}
	}
	rc = enl_envelope_seal(a.ctx.me, &a.ctx.kr, &lim, h, &p, now, &env, &env_len);
	if (rc == ENL_E_TOO_LARGE) {
		fprintf(stderr, "%s: the message is %zu bytes, over the payload limit of %zu bytes\n",
			prog, enl_payload_size(&p), lim.max_payload);
		goto out;
	}
	if (rc != ENL_OK) {
		enl_cli_fail(prog, "sealing", rc);
		goto out;
	}
	if ((rc = enl_file_write(a.out, env, env_len, 0644, false)) != ENL_OK) {
		if (rc == ENL_E_EXISTS)
			fprintf(stderr, "%s: %s: already exists\n", prog, a.out);
		else
			enl_cli_fail(prog, a.out, rc);
		goto out;
	}
	enl_hex(h->message_id, ENL_MSG_ID_LEN, hex);
	if (a.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "message_id", hex);
		enl_json_str(&j, "file", a.out);
		enl_json_int(&j, "bytes", (int64_t)env_len);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		printf("sealed message %s (%zu bytes) to %s\n", hex, env_len, a.out);
	}
	ret = 0;
out:
	free(env);
	free(h);
	loaded_free(&l, a.n_attach);
	context_fini(&a.ctx);
	return ret;
}
