/*
 * enlace status: the agent's connection, queues and audit-log watch.
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

static const char usage_status[] = "enlace status [--socket PATH] [--json]";
static const char help_status[] =
	"Whether the agent is connected to its broker, the "
	"directory serial it holds\nand when it expires, the sizes of its "
	"queues, the newest checkpoint of the\nbroker's audit log it holds and "
	"cosigned, and any alarm about that log.\nExit status: 0 connected "
	"and no alarm; 1 not connected, an alarm stands, or the inbox cannot keep\n"
	"what comes in (its disk full, say).\n";

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

	if ((ret = parse_args(argc, argv, allowed, usage_status, help_status, &a)) >= 0)
		return ret;
	req.body_case = ENLACE__CTL_REQUEST__BODY_STATUS;
	req.status = true;
	if ((ret = agent_call(&a, &req, 10000, &resp)) != 0)
		return ret;
	s = resp->agent;
	if (s == NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return enl_cli_fail(prog, "status", ENL_E_MALFORMED);
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
											: ENL_EXIT_FAIL;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}
