/*
 * enlace-audit: the auditor's tool. It needs nothing from the broker's
 * operator but the log (its files, a copy of them, or its read-only HTTP
 * address) and public keys: the broker's, or the directory and the
 * directory authority's.
 *
 * Exit status: 0 what was asked holds, 1 it does not (the first bad index
 * or file is named), 2 usage error.
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

static const struct enl_cli_cmd commands[] = {
	{"verify", cmd_verify, "every tile and the checkpoint of a log"},
	{"trail", cmd_trail, "the entries of one message, checked"},
	{"prove", cmd_prove, "write one message's evidence bundle"},
	{"check-bundle", cmd_check_bundle, "check an evidence bundle with the authority's key"},
	{"report", cmd_report, "counts per agency and day"},
	{"merkle", cmd_merkle, "RFC 6962 over files (root, inclusion, consistency)"},
	{NULL, NULL, NULL},
};

int
main(int argc, char **argv)
{
	static const struct enl_cli audit = {"enlace-audit", commands, usage, NULL};

	if (enl_init() != ENL_OK)
		return 1;
	return enl_cli_run(&audit, argc, argv, NULL);
}
