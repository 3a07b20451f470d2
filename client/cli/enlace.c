/*
 * enlace, the analyst's command line: the table of commands and main.
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
#include "enlace/cli.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

const char *const prog = "enlace";

static const struct enl_cli_cmd commands[] = {
	{"seal", cmd_seal, "seal a message into an envelope file (offline)"},
	{"open", cmd_open, "verify and open an envelope file (offline)"},
	{"send", cmd_send, "send a message through the local agent"},
	{"forward", cmd_forward, "forward a message received to a third party"},
	{"consent", cmd_consent, "answer requests to forward your messages"},
	{"inbox", cmd_inbox, "list the messages received"},
	{"read", cmd_read, "show one received message"},
	{"receipts", cmd_receipts, "delivery state of a message sent"},
	{"status", cmd_status, "the agent's connection and queues"},
	{NULL, NULL, NULL},
};

static const struct enl_cli enlace = {
	"enlace", commands, "usage: enlace COMMAND [OPTIONS] [ARGS]\n",
	"`enlace COMMAND --help` tells more. Exit status: 0 success, 1 failure\n"
	"(a verification that fails included), 2 usage error.\n",
};

int
main(int argc, char **argv)
{
	/* a large message's buffers come from one heap and are reused, not
	 * mapped fresh for each copy; freed memory is kept up to 512 MiB */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_ARENA_MAX, 1);
	if (enl_init() != ENL_OK) {
		fprintf(stderr, "%s: cannot initialize libsodium\n", prog);
		return ENL_EXIT_FAIL;
	}
	/* options before the command (enlace --socket S status) go after it */
	return enl_cli_run(&enlace, argc, argv, "--socket");
}
