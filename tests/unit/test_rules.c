/* The broker's sharing rules (broker/rules.h): forwards of originals of
 * every handling, and consent decisions against their requests. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "rules.h"

static struct enl_header
forward_of(const char *sender, const char *to)
{
	struct enl_header h;

	memset(&h, 0, sizeof(h));
	snprintf(h.sender, sizeof(h.sender), "%s", sender);
	snprintf(h.recipients[0], sizeof(h.recipients[0]), "%s", to);
	h.n_recipients = 1;
	h.type = ENL_MSG_FORWARD;
	h.has_forward_of = true;
	h.forward_of[0] = 1;
	h.handling = (struct enl_handling){ENL_TLP_AMBER, ENL_ONWARD_CONSENT,
					   ENL_EVID_INTELLIGENCE_ONLY};
	return h;
}

static struct original_info
original(enum enl_tlp tlp, enum enl_onward onward, enum enl_evidential evid, int state)
{
	struct original_info o;

	memset(&o, 0, sizeof(o));
	o.id[0] = 1;
	snprintf(o.sender, sizeof(o.sender), "AR-UIF");
	o.handling = (struct enl_handling){tlp, onward, evid};
	o.via = o.handling;
	o.forwarder_state = state;
	return o;
}

static void
test_forward_allowed(void)
{
	struct enl_header h = forward_of("BR-PF", "US-FINCEN");
	struct original_info o = original(ENL_TLP_AMBER, ENL_ONWARD_CONSENT,
					  ENL_EVID_INTELLIGENCE_ONLY, DS_ACKED);
	char why[300];

	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_OK);
	CHECK(why[0] == '\0');
	o.forwarder_state = DS_FETCHED;	/* fetched counts as received */
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_OK);
	/* a stricter forward is fine */
	h.handling.tlp = ENL_TLP_RED;
	h.handling.onward = ENL_ONWARD_NEVER;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_OK);
}

static void
test_forward_refused(void)
{
	static const struct {
		enum enl_tlp tlp;
		enum enl_onward onward;
		enum enl_evidential evid;
		int state;
		const char *says;
	} cases[] = {
		{ENL_TLP_AMBER, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT, 0, "never received"},
		{ENL_TLP_AMBER, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT, DS_REJECTED, "never received"},
		{ENL_TLP_AMBER, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT, DS_HELD, "never received"},
		{ENL_TLP_RED, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT, DS_ACKED, "TLP:RED"},
		{ENL_TLP_AMBER_STRICT, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT, DS_ACKED,
		 "AMBER+STRICT"},
		{ENL_TLP_GREEN, ENL_ONWARD_NEVER, ENL_EVID_CONSENT, DS_ACKED, "NEVER"},
	};
	char why[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct enl_header h = forward_of("BR-PF", "US-FINCEN");
		struct original_info o = original(cases[i].tlp, cases[i].onward, cases[i].evid,
						  cases[i].state);
		h.handling = o.handling;
		CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
		if (strstr(why, cases[i].says) == NULL) {
			harness_failed++;
			fprintf(stderr, "forward case %zu: '%s' does not say '%s'\n", i, why,
				cases[i].says);
		}
	}
}

/* A forward can never weaken the original's handling, nor the handling of
 * the message it forwards (a forward of a forward). */
static void
test_forward_never_weakens(void)
{
	struct original_info o = original(ENL_TLP_AMBER, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT,
					  DS_ACKED);
	struct enl_header h;
	char why[300];

	h = forward_of("BR-PF", "US-FINCEN");
	h.handling = o.handling;
	h.handling.tlp = ENL_TLP_GREEN;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "weaken") != NULL);
	h.handling = o.handling;
	h.handling.onward = ENL_ONWARD_FREE;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	h.handling = o.handling;
	h.handling.evidential = ENL_EVID_MAY_USE;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	/* the message forwarded was stricter than its original */
	o.via.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	h.handling = o.handling;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	h.handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_OK);
}

static void
test_forward_names_third_parties(void)
{
	struct original_info o = original(ENL_TLP_GREEN, ENL_ONWARD_FREE, ENL_EVID_MAY_USE,
					  DS_ACKED);
	struct enl_header h;
	char why[300];

	/* back to its own originator, or to the forwarder itself: no forward */
	h = forward_of("BR-PF", "AR-UIF");
	h.handling = o.handling;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	h = forward_of("BR-PF", "BR-PF");
	h.handling = o.handling;
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
}

static void
test_original_named_rightly(void)
{
	struct enl_header h = forward_of("BR-PF", "US-FINCEN");
	struct original_info o = original(ENL_TLP_GREEN, ENL_ONWARD_FREE, ENL_EVID_MAY_USE,
					  DS_ACKED);
	char why[300];

	h.has_forward_of = false;
	CHECK_RC(rules_not_forward(&h, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "must name its original") != NULL);
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	h.type = ENL_MSG_CASE_MESSAGE;
	h.has_forward_of = true;
	CHECK_RC(rules_not_forward(&h, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "only a FORWARD") != NULL);
	CHECK_RC(rules_forward(&h, &o, why, sizeof(why)), ENL_E_PERMISSION);
	h.has_forward_of = false;
	CHECK_RC(rules_not_forward(&h, why, sizeof(why)), ENL_OK);
}

static void
test_amber_stays_home(void)
{
	struct original_info amber = original(ENL_TLP_AMBER, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT,
					      DS_ACKED);
	struct original_info green = original(ENL_TLP_GREEN, ENL_ONWARD_CONSENT, ENL_EVID_CONSENT,
					      DS_ACKED);
	struct enl_card br = {.country = "BR"}, br2 = {.country = "BR"}, us = {.country = "US"};

	CHECK(rules_amber_stays_home(&amber, &br, &br2));
	CHECK(!rules_amber_stays_home(&amber, &br, &us));
	CHECK(!rules_amber_stays_home(&amber, &br, NULL));	/* not in the directory */
	CHECK(rules_amber_stays_home(&green, &br, &us));
}

static struct consent
request(void)
{
	struct consent c;

	memset(&c, 0, sizeof(c));
	c.request_id[0] = 9;
	c.forward_id[0] = 2;
	c.original_id[0] = 1;
	memset(c.original_hash, 7, sizeof(c.original_hash));
	snprintf(c.recipient, sizeof(c.recipient), "US-FINCEN");
	snprintf(c.originator, sizeof(c.originator), "AR-UIF");
	snprintf(c.forwarder, sizeof(c.forwarder), "BR-PF");
	c.expires_at = 2000;
	c.state = CONSENT_PENDING;
	return c;
}

static void
test_consent(void)
{
	struct consent c = request();
	uint8_t req[16] = {9}, fwd[16] = {2}, orig[16] = {1}, hash[32], other[16] = {3};
	Enlace__ConsentDecision d = ENLACE__CONSENT_DECISION__INIT;
	char why[300];

	memset(hash, 7, sizeof(hash));
	d.request_id = (ProtobufCBinaryData){16, req};
	d.forward_id = (ProtobufCBinaryData){16, fwd};
	d.original_id = (ProtobufCBinaryData){16, orig};
	d.original_hash = (ProtobufCBinaryData){32, hash};
	d.recipient = "US-FINCEN";
	d.grant = true;
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_OK);
	/* only the originator decides */
	CHECK_RC(rules_consent(&c, &d, "BR-PF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "only the originator AR-UIF") != NULL);
	/* bound to the request's forward, original and recipient */
	d.forward_id = (ProtobufCBinaryData){16, other};
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "does not match") != NULL);
	d.forward_id = (ProtobufCBinaryData){16, fwd};
	d.recipient = "CL-UAF";
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	d.recipient = "US-FINCEN";
	hash[31] ^= 1;
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	hash[31] ^= 1;
	d.original_hash = (ProtobufCBinaryData){31, hash};	/* short: refused, not read past */
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	d.original_hash = (ProtobufCBinaryData){32, hash};
	/* in time, once */
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 2000, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "expired") != NULL);
	c.state = CONSENT_GRANTED_S;
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "decided already") != NULL);
	c.state = CONSENT_EXPIRED_S;
	CHECK_RC(rules_consent(&c, &d, "AR-UIF", 1000, why, sizeof(why)), ENL_E_PERMISSION);
	CHECK(strstr(why, "expired") != NULL);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	RUN(test_forward_allowed);
	RUN(test_forward_refused);
	RUN(test_forward_never_weakens);
	RUN(test_forward_names_third_parties);
	RUN(test_original_named_rightly);
	RUN(test_amber_stays_home);
	RUN(test_consent);
	return harness_done();
}
