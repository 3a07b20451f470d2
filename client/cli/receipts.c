/*
 * enlace receipts: the delivery state of a message sent.
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

static const char usage_receipts[] = "enlace receipts [--socket PATH] [--json] MSGID";
static const char help_receipts[] =
	"Shows, per recipient, whether a message you sent is "
	"queued, fetched or\nacknowledged, with times. The broker's signature "
	"and each recipient's signed\nacknowledgement are checked, and the "
	"message's entry in the broker's audit\nlog; exit 1 if any of it does "
	"not verify, or if the agent holds an alarm\nabout the broker's log.\n";

int
cmd_receipts(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlResponse *resp = NULL;
	uint8_t id[ENL_MSG_ID_LEN];
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_receipts, help_receipts, &a)) >= 0)
		return ret;
	if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
		return enl_cli_usage_line(prog, "expected one message id (32 hex digits)", usage_receipts);
	req.body_case = ENLACE__CTL_REQUEST__BODY_RECEIPTS;
	req.receipts.data = id;
	req.receipts.len = sizeof(id);
	if ((ret = agent_call(&a, &req, 30000, &resp)) != 0)
		return ret;
	print_states(resp, a.json);
	ret = resp->receipt_verified && resp->log_verified && !resp->log_alarm[0] ? 0 : ENL_EXIT_FAIL;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}
