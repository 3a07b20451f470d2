/*
 * enlace consent: requests to forward this agency's messages, and the
 * originator's answer.
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

static const char usage_consent[] =
	"enlace consent list [--json]\n"
	"       enlace consent grant REQ [--note TEXT] [--json]\n"
	"       enlace consent deny REQ --reason TEXT [--json]";
static const char help_consent[] =
	"A third party may receive one of your messages only with "
	"your consent when\nits onward sharing is CONSENT: the broker holds the "
	"forward and asks you.\nlist shows the requests; grant and deny answer "
	"one with a decision signed by\nthis agency, bound to your message, the "
	"forward and its recipient. A request\nleft unanswered expires and the "
	"forward is refused.\n";

int
cmd_consent(int argc, char **argv)
{
	static const int allowed[] = {OPT_SOCKET, OPT_NOTE, OPT_REASON, OPT_JSON, 0};
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT;
	Enlace__CtlDecide dc = ENLACE__CTL_DECIDE__INIT;
	Enlace__CtlResponse *resp = NULL;
	const char *what = argc > 1 ? argv[1] : "";
	uint8_t id[ENL_MSG_ID_LEN];
	struct args a;
	int ret;

	if (strcmp(what, "--help") == 0 || strcmp(what, "help") == 0) {
		printf("usage: %s\n\n%s", usage_consent, help_consent);
		return 0;
	}
	if (strcmp(what, "list") != 0 && strcmp(what, "grant") != 0 && strcmp(what, "deny") != 0)
		return enl_cli_usage_line(prog, "consent list, grant or deny", usage_consent);
	if ((ret = parse_args(argc - 1, argv + 1, allowed, usage_consent, help_consent, &a)) >= 0)
		return ret;
	if (strcmp(what, "list") == 0) {
		if (a.argc != 0)
			return enl_cli_usage_line(prog, "list takes no argument", usage_consent);
		req.body_case = ENLACE__CTL_REQUEST__BODY_CONSENTS;
		req.consents = true;
	} else {
		if (a.argc != 1 || !enl_unhex(a.argv[0], id, sizeof(id)))
			return enl_cli_usage_line(prog, "expected one request id (32 hex digits)", usage_consent);
		if (strcmp(what, "deny") == 0 && (a.text == NULL || a.text[0] == '\0'))
			return enl_cli_usage_line(prog, "deny needs --reason", usage_consent);
		dc.request_id.data = id;
		dc.request_id.len = sizeof(id);
		dc.grant = strcmp(what, "grant") == 0;
		dc.note = (char *)(a.text ? a.text : "");
		req.body_case = ENLACE__CTL_REQUEST__BODY_DECIDE;
		req.decide = &dc;
	}
	if ((ret = agent_call(&a, &req, 75000, &resp)) != 0)
		return ret;
	if (strcmp(what, "list") != 0) {
		char hex[33];
		if (a.json) {
			print_states(resp, true);
		} else {
			enl_hex(id, sizeof(id), hex);
			printf("consent %s for request %s: the signed decision is receipted by the "
			       "broker%s\n", dc.grant ? "granted" : "denied", hex,
			       dc.grant ? ", which releases the forward" : ", which refuses the forward");
		}
		ret = resp->receipt_verified ? 0 : ENL_EXIT_FAIL;
	} else if (a.json) {
		struct enl_json j;
		char hex[33], t[32];
		enl_json_init(&j, stdout);
		enl_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < resp->n_consents; i++) {
			const Enlace__CtlConsent *c = resp->consents[i];
			enl_json_obj_begin(&j, NULL);
			enl_hex(c->request_id.data, c->request_id.len, hex);
			enl_json_str(&j, "request_id", hex);
			enl_hex(c->original_id.data, c->original_id.len, hex);
			enl_json_str(&j, "original_id", hex);
			enl_hex(c->forward_id.data, c->forward_id.len, hex);
			enl_json_str(&j, "forward_id", hex);
			{
				char hh[65];
				enl_hex(c->original_hash.data, c->original_hash.len, hh);
				enl_json_str(&j, "original_hash", hh);
			}
			enl_json_str(&j, "forwarder", c->forwarder);
			enl_json_str(&j, "recipient", c->recipient);
			enl_time_format(c->expires_at, t);
			enl_json_str(&j, "expires_at", t);
			enl_json_str(&j, "decided", c->decided);
			enl_json_obj_end(&j);
		}
		enl_json_arr_end(&j);
		enl_json_end(&j);
	} else {
		char hex[33], ohex[33], t[32];
		if (resp->n_consents == 0)
			printf("no consent requests\n");
		for (size_t i = 0; i < resp->n_consents; i++) {
			const Enlace__CtlConsent *c = resp->consents[i];
			enl_hex(c->request_id.data, c->request_id.len, hex);
			enl_hex(c->original_id.data, c->original_id.len, ohex);
			enl_time_format(c->expires_at, t);
			printf("%s  %s would forward your %s to %s; %s\n", hex, c->forwarder, ohex,
			       c->recipient, c->decided[0] ? c->decided : "PENDING until");
			if (!c->decided[0])
				printf("%34s%s\n", "", t);
		}
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}
