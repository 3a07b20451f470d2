/*
 * The usage and options every command of enlace-audit takes, and the keys
 * they name.
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

const char usage[] =
	"usage: enlace-audit verify (DIR | URL) --broker-pub FILE [--since-checkpoint FILE]\n"
	"       enlace-audit trail MSG-ID --log (DIR | URL) --directory FILE --authority-pub FILE\n"
	"       enlace-audit prove MSG-ID --log (DIR | URL) --directory FILE --authority-pub FILE\n"
	"                          --out FILE\n"
	"       enlace-audit check-bundle FILE --authority-pub FILE\n"
	"       enlace-audit report --log (DIR | URL) --broker-pub FILE --since T --until T\n"
	"                          [--format csv|json]\n"
	"       enlace-audit merkle root|inclusion|consistency ... (see merkle --help)\n\n"
	"The log is a folder (the broker's data/log, or a copy) or the broker's log_listen\n"
	"address (http://HOST:PORT). --broker-pub is the broker's card from the signed\n"
	"directory, or its verifier key line; trail and prove take the broker from the\n"
	"directory. Over HTTP the log is read only by directory members: --key DIR (an\n"
	"auditor's, an agency's or the broker's key folder; --passphrase-file F if its\n"
	"key is encrypted and no terminal asks) signs each request.\n"
	"--json on every command. Exit 0: it holds; 1: it does not (NOT VALID,\n"
	"the first bad index or file named) or it cannot be checked (cannot check: no\n"
	"such folder, or the log does not answer; \"checked\": false in JSON); 2: usage.\n";

int
usage_error(const char *msg)
{
	fprintf(stderr, "enlace-audit: %s\n%s", msg, usage);
	return ENL_EXIT_USAGE;
}

static const struct option all_opts[] = {
	{"broker-pub", required_argument, NULL, O_BROKER},
	{"since-checkpoint", required_argument, NULL, O_SINCE_CP},
	{"log", required_argument, NULL, O_LOG},
	{"directory", required_argument, NULL, O_DIR},
	{"authority-pub", required_argument, NULL, O_AUTH},
	{"out", required_argument, NULL, O_OUT},
	{"since", required_argument, NULL, O_SINCE},
	{"until", required_argument, NULL, O_UNTIL},
	{"format", required_argument, NULL, O_FORMAT},
	{"key", required_argument, NULL, O_KEY},
	{"passphrase-file", required_argument, NULL, O_PASS},
	{"json", no_argument, NULL, O_JSON},
	{"quiet", no_argument, NULL, O_QUIET},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

/* Takes one option into the struct opts (enl_cli_parse's `set`). */
static const char *
opt_set(void *ctx, int val, const char *arg)
{
	struct opts *o = ctx;

	switch (val) {
	case O_BROKER: o->broker_pub = arg; break;
	case O_SINCE_CP: o->since_checkpoint = arg; break;
	case O_LOG: o->log = arg; break;
	case O_DIR: o->directory = arg; break;
	case O_AUTH: o->authority_pub = arg; break;
	case O_OUT: o->out = arg; break;
	case O_SINCE: o->since = arg; break;
	case O_UNTIL: o->until = arg; break;
	case O_FORMAT: o->format = arg; break;
	case O_KEY: o->key = arg; break;
	case O_PASS: o->pass_file = arg; break;
	case O_JSON: o->json = true; break;
	case O_QUIET: o->quiet = true; break;
	}
	return NULL;
}

int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct enl_cli_opts opts = {"enlace-audit", all_opts, O_HELP, opt_set};
	int first, ret;

	memset(o, 0, sizeof(*o));
	if ((ret = enl_cli_parse(&opts, argc, argv, NULL, usage, NULL, o, &first)) >= 0)
		return ret;
	o->argc = argc - first;
	o->argv = argv + first;
	return -1;
}

/* The broker's note keys from its card (every version) or a vkey line;
 * ENL_E_INVAL, said on stderr, for the card of an agency. */
int
broker_key(const char *path, struct enl_note_keys *k)
{
	struct enl_note_verifier *v = &k->v[0];
	char name[ENL_VKEY_NAME_MAX + 1];
	struct enl_card card;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, ENL_CARD_MAX, &buf, &len);

	memset(k, 0, sizeof(*k));
	if (rc != ENL_OK)
		return rc;
	if (enl_card_parse(buf, len, &card) == ENL_OK) {
		if (card.kind != ENL_KIND_BROKER) {
			/* an auditor who names the wrong card must not read that
			 * the broker's log is NOT VALID */
			fprintf(stderr, "enlace-audit: %s: the card of %s, which is not a broker: "
				"--broker-pub takes the broker's card\n", path, card.id);
			free(buf);
			return ENL_E_INVAL;
		}
		snprintf(name, sizeof(name), "enlace/%s", card.id);
		enl_card_note_keys(NULL, &card, name, false, k);
	} else {
		char *text = NULL;
		if ((rc = enl_text_take(buf, len, &text)) == ENL_E_NOMEM)
			return rc;
		buf = (uint8_t *)text;
		if (rc == ENL_OK)
			rc = enl_vkey_parse(text, v->name, v->pk);
		k->n = rc == ENL_OK;
	}
	free(buf);
	return rc;
}

/* The directory, checked against the authority's key (expiry is not held
 * against an auditor: the log's own times say what was valid when). */
int
load_directory(const struct opts *o, struct enl_directory **dir, uint8_t **bytes, size_t *len)
{
	uint8_t apk[32];
	struct enl_dir_check chk = {apk, 0, 0};
	int rc;

	if ((rc = enl_authority_pub_read(o->authority_pub, apk)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o->authority_pub, enl_strerror(rc));
		return rc;
	}
	if ((rc = enl_file_read(o->directory, ENL_DIRECTORY_MAX, bytes, len)) != ENL_OK ||
	    (rc = enl_directory_parse(*bytes, *len, &chk, dir)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o->directory, enl_strerror(rc));
		free(*bytes);
		*bytes = NULL;
		return rc;
	}
	return ENL_OK;
}

/* The broker of a directory: its only BROKER card. */
int
directory_broker(const struct enl_directory *dir, struct enl_note_keys *k, char *id)
{
	const struct enl_card *found = NULL;
	char name[ENL_VKEY_NAME_MAX + 1];

	for (size_t i = 0; i < enl_directory_card_count(dir); i++) {
		const struct enl_card *c = enl_directory_card_at(dir, i);
		if (c->kind != ENL_KIND_BROKER)
			continue;
		if (found != NULL) {
			fprintf(stderr, "enlace-audit: the directory has several brokers; "
				"name one with --broker-pub\n");
			return ENL_E_INVAL;
		}
		found = c;
	}
	if (found == NULL) {
		fprintf(stderr, "enlace-audit: the directory has no broker\n");
		return ENL_E_NOT_FOUND;
	}
	snprintf(name, sizeof(name), "enlace/%s", found->id);
	enl_card_note_keys(dir, found, name, false, k);
	if (k->n == 0) {
		fprintf(stderr, "enlace-audit: every key of the broker %s is revoked\n", found->id);
		return ENL_E_REVOKED_KEY;
	}
	snprintf(id, ENL_ID_MAX + 1, "%s", found->id);
	return ENL_OK;
}
