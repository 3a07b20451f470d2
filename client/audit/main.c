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
