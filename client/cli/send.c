/*
 * enlace send and enlace forward: a message, or a forward of one
 * received, handed to the agent.
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

static const char usage_send[] =
	"enlace send [--socket PATH] --to ID... [--type T] [--case REF] [--tlp L]\n"
	"       [--onward O] [--evidential E] [--reliability R] [--assessment N]\n"
	"       [--priority P] [--expires 30d] [--reply-by 7d] [--in-reply-to MSGID]\n"
	"       [--subject S] (--text T | --text-file F) [--attach FILE]... [--wait [--timeout 60s]]\n"
	"       [--json]";
static const char help_send[] =
	"Hands a message to the local agent, which signs and "
	"encrypts it and keeps\nit in its outbox until the broker has "
	"receipted it; the message id is\nprinted once it is safely on disk. "
	"--wait waits for the broker's receipt,\nand exits 1 if it does not "
	"hold or if the broker refuses a recipient; with\n--timeout (60s by default) "
	"it gives up in time, printing the id and saying\nthe message is queued in the "
	"agent's outbox: it is sent when the broker answers,\nso do not send it again.\nValues as in `enlace seal "
	"--help`; the defaults are TLP:AMBER, onward\nsharing CONSENT, "
	"evidential use INTELLIGENCE_ONLY.\n";

int
cmd_send(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_TO, OPT_CASE, OPT_TLP, OPT_ONWARD,
				      OPT_EVID, OPT_TYPE, OPT_REL, OPT_ASSESS, OPT_PRIO,
				      OPT_EXPIRES, OPT_REPLYBY, OPT_INREPLY, OPT_SUBJECT,
				      OPT_TEXT, OPT_TEXTFILE, OPT_ATTACH, OPT_WAIT, OPT_TIMEOUT,
				      OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlSend cs = ENLACE__CTL_SEND__INIT;
	Enlace__Header wh;
	Enlace__Handling hd;
	Enlace__Attachment atts[MAX_ATTACH], *aptrs[MAX_ATTACH];
	Enlace__CtlResponse *resp = NULL;
	struct enl_header *h = NULL;
	struct enl_payload p;
	struct loaded l;
	struct args a;
	char *to[ENL_MAX_RECIPIENTS], hex[2 * ENL_MSG_ID_LEN + 1];
	uint32_t wait_ms = 0;
	int ret;

	memset(&l, 0, sizeof(l));
	if ((ret = parse_args(argc, argv, allowed, usage_send, help_send, &a)) >= 0)
		return ret;
	if (a.n_to == 0)
		return enl_cli_usage_line(prog, "at least one --to is required", usage_send);
	if ((ret = wait_timeout(&a, usage_send, &wait_ms)) != 0)
		return ret;
	if (a.text != NULL && a.text_file != NULL)
		return enl_cli_usage_line(prog, "--text and --text-file exclude each other", usage_send);
	if (a.text == NULL && a.text_file == NULL)
		return enl_cli_usage_line(prog, "the message's text is required: --text T or --text-file F",
				 usage_send);
	if ((h = malloc(sizeof(*h))) == NULL)
		return enl_cli_fail(prog, "send", ENL_E_NOMEM);
	if ((ret = seal_header(&a, h, (int64_t)time(NULL), usage_send)) != 0 ||
	    (ret = seal_payload(&a, ENL_DEFAULT_MAX_PAYLOAD, true, &l, &p, usage_send)) != 0)
		goto out;
	enl_header_to_pb(h, &wh, &hd, to);
	cs.header = &wh;
	cs.subject = (char *)p.subject;
	cs.body = (char *)p.body;
	for (size_t i = 0; i < p.n_attachments; i++) {
		enlace__attachment__init(&atts[i]);
		atts[i].name = (char *)p.attachments[i].name;
		atts[i].media_type = (char *)p.attachments[i].media_type;
		atts[i].data.data = (uint8_t *)p.attachments[i].data;
		atts[i].data.len = p.attachments[i].len;
		aptrs[i] = &atts[i];
	}
	cs.n_attachments = p.n_attachments;
	cs.attachments = aptrs;
	cs.wait = a.wait;
	cs.wait_ms = wait_ms;
	req.body_case = ENLACE__CTL_REQUEST__BODY_SEND;
	req.send = &cs;
	if ((ret = agent_call(&a, &req, a.wait ? (int)wait_ms + 15000 : 30000, &resp)) != 0)
		goto out;
	if (a.wait) {
		print_states(resp, a.json);
		ret = wait_verdict(resp);
	} else if (a.json) {
		struct enl_json j;
		enl_hex(resp->message_id.data, resp->message_id.len, hex);
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "message_id", hex);
		enl_json_str(&j, "state", "outbox");
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		enl_hex(resp->message_id.data, resp->message_id.len, hex);
		printf("%s\n", hex);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(h);
	loaded_free(&l, a.n_attach);
	return ret;
}

static const char usage_forward[] =
	"enlace forward MSGID --to ID [--to ID]... [--note TEXT] [--wait [--timeout 60s]]\n"
	"       [--socket PATH] [--json]";
static const char help_forward[] =
	"Forwards a message received (from the inbox) to a third "
	"party: the original\nsigned envelope goes with it, so that the new "
	"recipient can check the\noriginator's signature, under the original's "
	"handling, which a forward can\nnever weaken. TLP:RED and "
	"TLP:AMBER+STRICT are never forwarded, nor anything\nwhose onward "
	"sharing is NEVER; TLP:AMBER stays in this agency's country. With\n"
	"onward sharing CONSENT the broker holds the forward until the "
	"originator\ngrants it.\n";

int
cmd_forward(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_TO, OPT_NOTE, OPT_WAIT, OPT_TIMEOUT, OPT_JSON,
				      0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlSend cs = ENLACE__CTL_SEND__INIT;
	Enlace__Header wh;
	Enlace__Handling hd;
	struct enl_header h;
	Enlace__CtlResponse *resp = NULL;
	uint8_t id[ENL_MSG_ID_LEN];
	char *to[ENL_MAX_RECIPIENTS], hex[2 * ENL_MSG_ID_LEN + 1];
	uint32_t wait_ms = 0;
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_forward, help_forward, &a)) >= 0)
		return ret;
	if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
		return enl_cli_usage_line(prog, "expected one message id (32 hex digits)", usage_forward);
	if (a.n_to == 0)
		return enl_cli_usage_line(prog, "at least one --to is required", usage_forward);
	if ((ret = wait_timeout(&a, usage_forward, &wait_ms)) != 0)
		return ret;
	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < a.n_to; i++)
		snprintf(h.recipients[i], sizeof(h.recipients[i]), "%s", a.to[i]);
	h.n_recipients = a.n_to;
	h.type = ENL_MSG_FORWARD;	/* the agent takes the original's handling */
	h.has_forward_of = true;
	memcpy(h.forward_of, id, sizeof(id));
	enl_header_to_pb(&h, &wh, &hd, to);
	cs.header = &wh;
	cs.body = (char *)(a.text ? a.text : "");
	cs.wait = a.wait;
	cs.wait_ms = wait_ms;
	req.body_case = ENLACE__CTL_REQUEST__BODY_SEND;
	req.send = &cs;
	if ((ret = agent_call(&a, &req, a.wait ? (int)wait_ms + 15000 : 30000, &resp)) != 0)
		return ret;
	if (a.wait) {
		print_states(resp, a.json);
		ret = wait_verdict(resp);
	} else {
		enl_hex(resp->message_id.data, resp->message_id.len, hex);
		if (a.json)
			printf("{\"message_id\":\"%s\",\"state\":\"outbox\"}\n", hex);
		else
			printf("%s\n", hex);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}
