/*
 * enlace-keys: identities, cards and the signed directory. The table of
 * commands and main.
 *
 * Exit status: 0 success, 1 failure (a verification that fails, or an
 * operation that cannot be done), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "tool.h"

const char *const prog = "enlace-keys";

static const struct enl_cli_cmd authority_cmds[] = {
	{"init", cmd_authority_init, "create the directory authority's key"},
	{NULL, NULL, NULL},
};
static const struct enl_cli_cmd agency_cmds[] = {
	{"new", cmd_agency_new, "create an agency's keys and card"},
	{"rotate", cmd_agency_rotate, "make the next key version"},
	{NULL, NULL, NULL},
};
static const struct enl_cli_cmd broker_cmds[] = {
	{"new", cmd_broker_new, "create a broker's keys and card"},
	{NULL, NULL, NULL},
};
static const struct enl_cli_cmd directory_cmds[] = {
	{"build", cmd_directory_build, "sign a directory of cards"},
	{"revoke", cmd_directory_revoke, "revoke a key in a directory"},
	{"show", cmd_directory_show, "print a directory"},
	{"verify", cmd_directory_verify, "check a directory against the pinned key"},
	{NULL, NULL, NULL},
};

#define GROUP(name)                                                                  \
	static int group_##name(int argc, char **argv)                               \
	{                                                                            \
		static const struct enl_cli g = {"enlace-keys " #name, name##_cmds,  \
			"usage: enlace-keys " #name " COMMAND [OPTIONS] [ARGS]\n", NULL}; \
		return enl_cli_run(&g, argc, argv, NULL);                            \
	}
GROUP(authority)
GROUP(agency)
GROUP(broker)
GROUP(directory)

static const struct enl_cli_cmd commands[] = {
	{"authority", group_authority, "init: create the directory authority's key"},
	{"agency", group_agency, "new, rotate: an agency's keys and card"},
	{"broker", group_broker, "new: a broker's keys and card"},
	{"directory", group_directory, "build, revoke, show, verify: the signed directory"},
	{"fingerprint", cmd_fingerprint, "print a key's fingerprint"},
	{NULL, NULL, NULL},
};

static const struct enl_cli keys_cli = {
	"enlace-keys", commands, "usage: enlace-keys COMMAND [SUBCOMMAND] [OPTIONS] [ARGS]\n",
	"`enlace-keys COMMAND SUBCOMMAND --help` tells more. Exit status: 0 success,\n"
	"1 failure (a verification that fails included), 2 usage error.\n",
};

int
main(int argc, char **argv)
{
	if (enl_init() != ENL_OK) {
		fprintf(stderr, "%s: cannot initialize libsodium\n", prog);
		return ENL_EXIT_FAIL;
	}
	return enl_cli_run(&keys_cli, argc, argv, NULL);
}
