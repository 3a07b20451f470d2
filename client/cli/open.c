/*
 * enlace open: an envelope file verified and opened, offline.
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

/* ---- open ---- */

static const char usage_open[] =
	"enlace open --key DIR --directory FILE --authority-pub FILE\n"
	"       [--passphrase-file F] [--save DIR] [--json] FILE";
static const char help_open[] =
	"Verifies an envelope file against the directory and "
	"opens it with your key:\nsender, handling, body and attachments. "
	"--save writes the attachments into\nDIR (never replacing a "
	"file). Nothing is shown unless the signature verifies.\n";

/* An attachment name made safe as a file name in one folder. */
static void
safe_name(const char *name, size_t i, char *out, size_t cap)
{
	size_t o = 0;

	while (*name == '.')
		name++;
	for (; *name && o + 1 < cap; name++)
		out[o++] = (*name == '/' || *name == '\\') ? '_' : *name;
	out[o] = '\0';
	if (o == 0)
		snprintf(out, cap, "attachment-%zu", i + 1);
}

int
save_attachments(const struct enl_message *m, const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return ENL_EXIT_FAIL;
	}
	for (size_t i = 0; i < m->payload.n_attachments; i++) {
		const struct enl_attachment *at = &m->payload.attachments[i];
		char name[256], path[4096];
		int rc;
		safe_name(at->name, i, name, sizeof(name));
		for (size_t j = 0; j < i; j++) {
			char other[256];
			safe_name(m->payload.attachments[j].name, j, other, sizeof(other));
			if (strcmp(other, name) == 0) {	/* a second of that name: NAME-N.EXT */
				const char *dot = strrchr(name, '.');
				size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
				snprintf(other, sizeof(other), "%.*s-%zu%s", (int)stem, name, i + 1,
					 name + stem);
				memcpy(name, other, sizeof(name));
				break;
			}
		}
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		rc = enl_file_write(path, at->data, at->len, 0600, false);
		if (rc == ENL_E_EXISTS) {
			fprintf(stderr, "%s: %s: already exists; not replaced\n", prog, path);
			return ENL_EXIT_FAIL;
		}
		if (rc != ENL_OK)
			return enl_cli_fail(prog, path, rc);
	}
	return 0;
}

static void
show_json(const struct enl_message *m, const struct enl_card *from)
{
	const struct enl_header *h = &m->header;
	struct enl_json j;
	char hex[65], t[32], fp[ENL_FINGERPRINT_LEN];

	enl_json_init(&j, stdout);
	enl_json_obj_begin(&j, NULL);
	enl_hex(h->message_id, ENL_MSG_ID_LEN, hex);
	enl_json_str(&j, "message_id", hex);
	enl_hex(m->hash, ENL_HASH_LEN, hex);
	enl_json_str(&j, "envelope_hash", hex);
	enl_json_str(&j, "sender", h->sender);
	enl_json_int(&j, "sender_key_version", h->sender_key_version);
	enl_fingerprint(enl_card_key(from, h->sender_key_version)->sign_pk, fp);
	enl_json_str(&j, "sender_fingerprint", fp);
	enl_json_bool(&j, "signature_verified", true);
	enl_json_arr_begin(&j, "recipients");
	for (size_t i = 0; i < h->n_recipients; i++)
		enl_json_str(&j, NULL, h->recipients[i]);
	enl_json_arr_end(&j);
	enl_time_format(h->created_at, t);
	enl_json_str(&j, "created_at", t);
	enl_json_str(&j, "type", enl_msg_type_name(h->type));
	enl_json_str(&j, "case", h->case_ref);
	enl_json_obj_begin(&j, "handling");
	enl_json_str(&j, "tlp", enl_tlp_name(h->handling.tlp));
	enl_json_str(&j, "onward", enl_onward_name(h->handling.onward));
	enl_json_str(&j, "evidential", enl_evidential_name(h->handling.evidential));
	enl_json_obj_end(&j);
	if (h->reliability)
		enl_json_str(&j, "reliability", enl_reliability_name(h->reliability));
	if (h->assessment)
		enl_json_int(&j, "assessment", h->assessment);
	if (h->priority)
		enl_json_str(&j, "priority", enl_priority_name(h->priority));
	if (h->expires_at) {
		enl_time_format(h->expires_at, t);
		enl_json_str(&j, "expires_at", t);
	}
	if (h->reply_by) {
		enl_time_format(h->reply_by, t);
		enl_json_str(&j, "reply_by", t);
	}
	if (h->has_in_reply_to) {
		enl_hex(h->in_reply_to, ENL_MSG_ID_LEN, hex);
		enl_json_str(&j, "in_reply_to", hex);
	}
	if (h->has_forward_of) {
		enl_hex(h->forward_of, ENL_MSG_ID_LEN, hex);
		enl_json_str(&j, "forward_of", hex);
	}
	enl_json_str(&j, "subject", m->payload.subject);
	enl_json_str(&j, "body", m->payload.body);
	enl_json_arr_begin(&j, "attachments");
	for (size_t i = 0; i < m->payload.n_attachments; i++) {
		const struct enl_attachment *at = &m->payload.attachments[i];
		uint8_t hash[ENL_HASH_LEN];
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "name", at->name);
		enl_json_str(&j, "media_type", at->media_type);
		enl_json_int(&j, "bytes", (int64_t)at->len);
		enl_hash(at->data, at->len, hash);
		enl_hex(hash, ENL_HASH_LEN, hex);
		enl_json_str(&j, "blake2b", hex);
		enl_json_obj_end(&j);
	}
	enl_json_arr_end(&j);
	enl_json_obj_end(&j);
	enl_json_end(&j);
}

const char *
upper(const char *s, char *buf, size_t cap)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < cap; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	buf[i] = '\0';
	return buf;
}

static void
show_human(const struct enl_message *m, const struct enl_card *from, uint64_t serial)
{
	const struct enl_header *h = &m->header;
	char hex[65], t[32], fp[ENL_FINGERPRINT_LEN], u1[32], u2[32], u3[32];
	struct tbuf tb = {0};

	enl_hex(h->message_id, ENL_MSG_ID_LEN, hex);
	printf("message   %s\n", hex);
	enl_fingerprint(enl_card_key(from, h->sender_key_version)->sign_pk, fp);
	printf("from      %s  %s (%s, %s)\n", h->sender, tline(&tb, from->name),
	       enl_kind_name(from->kind), from->country);
	printf("          signature VERIFIED: key v%" PRIu32 " %s, directory serial %" PRIu64
	       "\n", h->sender_key_version, fp, serial);
	printf("to       ");
	for (size_t i = 0; i < h->n_recipients; i++)
		printf(" %s", h->recipients[i]);
	enl_time_format(h->created_at, t);
	printf("\nsent      %s\ntype      %s", t, enl_msg_type_name(h->type));
	if (h->case_ref[0])
		printf("   case %s", tline(&tb, h->case_ref));
	printf("\nHANDLING  TLP:%s   onward sharing: %s   evidential use: %s\n",
	       upper(enl_tlp_name(h->handling.tlp), u1, sizeof(u1)),
	       upper(enl_onward_name(h->handling.onward), u2, sizeof(u2)),
	       upper(enl_evidential_name(h->handling.evidential), u3, sizeof(u3)));
	if (h->reliability || h->assessment)
		printf("grading   source reliability %s, information assessment %" PRIu32 "\n",
		       h->reliability ? enl_reliability_name(h->reliability) : "-",
		       h->assessment);
	if (h->priority)
		printf("priority  %s\n", enl_priority_name(h->priority));
	if (h->reply_by) {
		enl_time_format(h->reply_by, t);
		printf("reply by  %s\n", t);
	}
	if (h->expires_at) {
		enl_time_format(h->expires_at, t);
		printf("expires   %s\n", t);
	}
	if (h->has_in_reply_to) {
		enl_hex(h->in_reply_to, ENL_MSG_ID_LEN, hex);
		printf("reply to  %s\n", hex);
	}
	if (h->has_forward_of) {
		enl_hex(h->forward_of, ENL_MSG_ID_LEN, hex);
		printf("forward of %s\n", hex);
	}
	printf("subject   %s\n\n", tline(&tb, m->payload.subject));
	tbody(stdout, m->payload.body);
	if (m->payload.n_attachments)
		printf("\nattachments (%zu):\n", m->payload.n_attachments);
	for (size_t i = 0; i < m->payload.n_attachments; i++) {
		const struct enl_attachment *at = &m->payload.attachments[i];
		uint8_t hash[ENL_HASH_LEN];
		enl_hash(at->data, at->len, hash);
		enl_hex(hash, 8, hex);
		printf("  %-30s %-26s %10zu bytes  blake2b %s…\n", tline(&tb, at->name),
		       tline(&tb, at->media_type), at->len, hex);
		tbuf_free(&tb);	/* what it held is printed */
	}
	tbuf_free(&tb);
}

int
cmd_open(int argc, char **argv)
{
	static const int allowed[] = {OPT_KEY, OPT_PASSFILE, OPT_DIRECTORY, OPT_AUTHPUB,
				      OPT_SAVE, OPT_JSON, OPT_MAXPAY, 0};
	struct args a;
	struct enl_limits lim = enl_limits_default();
	struct enl_message *m = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_open, help_open, &a)) >= 0)
		return ret;
	if ((ret = need_context(&a, usage_open)) != 0)
		return ret;
	if (a.argc != 1)
		return enl_cli_usage_line(prog, "expected one envelope file", usage_open);
	if ((ret = context_load(&a.ctx)) != 0)
		goto out;
	ret = ENL_EXIT_FAIL;
	if ((rc = enl_file_read(a.argv[0], enl_envelope_max_size(&lim), &buf, &len)) != ENL_OK) {
		enl_cli_fail(prog, a.argv[0], rc);
		goto out;
	}
	rc = enl_envelope_open(buf, len, a.ctx.me, &a.ctx.kr, &lim, (int64_t)time(NULL), &m);
	if (rc != ENL_OK) {
		fprintf(stderr, "%s: %s: REFUSED: %s\n", prog, a.argv[0], enl_strerror(rc));
		goto out;
	}
	if (a.json)
		show_json(m, enl_directory_find(a.ctx.dir, m->header.sender));
	else
		show_human(m, enl_directory_find(a.ctx.dir, m->header.sender),
			   enl_directory_serial(a.ctx.dir));
	if (a.save != NULL && save_attachments(m, a.save) != 0)
		goto out;
	ret = 0;
out:
	enl_message_free(m);
	free(buf);
	context_fini(&a.ctx);
	return ret;
}
