/*
 * RECEIPTS: a message's delivery state, every signature checked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "agent.h"
#include "conn.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"
#include "enlace/wire.h"

/* Checks a receipt's broker signature and each ack signature, and answers
 * with the recipients' states. */
static void
reply_receipt(struct ctl *c, const Enlace__SignedReceipt *sg, const char *note)
{
	char why[200] = "";
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	Enlace__ReceiptBody *b = NULL;
	struct enl_keyring kr = keyring(a);
	const struct enl_card *bc;
	char alarm[512];
	uint8_t pk[32];
	bool ok;

	if (enl_pb_unpack(&enlace__receipt_body__descriptor, sg->body.data, sg->body.len,
			  1 << 20, (ProtobufCMessage **)&b) != ENL_OK) {
		ctl_error(c, ENL_E_MALFORMED, "the broker's receipt does not parse");
		return;
	}
	pthread_mutex_lock(&a->mu);
	/* signed by a version of the broker's key: a receipt kept from before
	 * the broker rotated its key is signed by the older one */
	ok = false;
	if (strcmp(b->broker, a->cfg.broker_id) == 0 &&
	    (bc = enl_directory_find(a->dir, b->broker)) != NULL)
		for (size_t k = 0; k < bc->n_keys && !ok; k++)
			ok = kr.signing_key(kr.ctx, b->broker, bc->keys[k].version, pk) == ENL_OK &&
			     enl_receipt_check_signature(sg, pk) == ENL_OK;
	for (size_t i = 0; ok && i < b->n_recipients; i++) {
		const Enlace__RecipientState *rs = b->recipients[i];
		int64_t revoked_at = 0;
		int rc;
		/* a message to the broker itself (a consent decision): the
		 * broker's signature on the receipt says it took it in */
		if (rs->state != ENLACE__DELIVERY_STATE__ACKED || strcmp(rs->recipient, b->broker) == 0)
			continue;
		ok = rs->ack_signature.len == 64 && b->message_id.len == ENL_MSG_ID_LEN &&
		     b->envelope_hash.len == ENL_HASH_LEN;
		if (!ok)
			break;
		/* not revoked when the broker took it */
		rc = enl_directory_ack_check(a->dir, rs->recipient, b->message_id.data,
					     b->envelope_hash.data, rs->ack_time,
					     rs->ack_signature.data, rs->acked_at, &revoked_at);
		if (rc == ENL_E_REVOKED_KEY) {
			char t[32];
			enl_time_format(revoked_at, t);
			snprintf(why, sizeof(why), "the acknowledgement of %s is signed by a key "
				 "revoked at %s, before it", rs->recipient, t);
		}
		ok = rc == ENL_OK;
	}
	if (why[0] != '\0' && (note == NULL || note[0] == '\0'))
		note = why;
	r.log_verified = ok && receipt_in_log(a, b, &r.checkpoint_size);
	pthread_mutex_unlock(&a->mu);
	if (r.log_verified) {
		pthread_mutex_lock(&a->log_mu);
		if (checkpoint_check(a, b->checkpoint) == ENL_E_BAD_SIGNATURE)
			r.log_verified = false;
		pthread_mutex_unlock(&a->log_mu);
	}
	pthread_mutex_lock(&a->mu);
	snprintf(alarm, sizeof(alarm), "%s", a->alarm);
	pthread_mutex_unlock(&a->mu);
	r.log_alarm = alarm;
	if (!ok)
		alog("ALARM: a receipt from the broker does not verify");
	else if (!r.log_verified)
		alog("ALARM: the broker's receipt is not backed by its audit log");
	r.receipt_verified = ok;
	r.log_index = b->log_index;
	r.n_recipients = b->n_recipients;
	r.recipients = b->recipients;
	r.message_id = b->message_id;
	r.envelope_hash = b->envelope_hash;
	r.received_at = b->received_at;
	r.note = (char *)note;
	ctl_reply(c, &r);
	protobuf_c_message_free_unpacked(&b->base, NULL);
}

void
ctl_receipts_of(struct ctl *c, const uint8_t *id, bool local_only)
{
	struct agent *a = c->a;
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__ReceiptsReq rr = ENLACE__RECEIPTS_REQ__INIT;
	Enlace__Response *resp = NULL;
	Enlace__SignedReceipt *sg = NULL;
	struct enl_keyring kr = keyring(a);
	char hex[2 * ENL_MSG_ID_LEN + 1], kept[2048], where[2048], note[300] = "";
	bool receipted;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	enl_hex(id, ENL_MSG_ID_LEN, hex);
	snprintf(kept, sizeof(kept), "%s/sent/%s.receipt", a->cfg.spool, hex);
	snprintf(where, sizeof(where), "%s/outbox/%s.env", a->cfg.spool, hex);
	receipted = access(kept, F_OK) == 0;
	if (!receipted && access(where, F_OK) == 0) {
		ctl_error(c, ENL_E_NOT_FOUND, "still in the outbox: the broker has not "
			  "receipted it yet");
		return;
	}
	snprintf(where, sizeof(where), "%s/failed/%s.env", a->cfg.spool, hex);
	if (!receipted && access(where, F_OK) == 0) {
		refused_reason(a, hex, note, sizeof(note));	/* the broker's answer, kept */
		ctl_error(c, ENL_E_PERMISSION, note);
		return;
	}
	if (!local_only && broker_away(a)) {
		pthread_mutex_lock(&a->mu);
		if (a->last_error[0] != '\0')
			snprintf(note, sizeof(note), "the broker is not connected (%s)",
				 a->last_error);
		else
			snprintf(note, sizeof(note), "the broker is not connected yet");
		pthread_mutex_unlock(&a->mu);
	} else if (!local_only) {
		rr.message_id.data = (uint8_t *)id;
		rr.message_id.len = ENL_MSG_ID_LEN;
		req.body_case = ENLACE__REQUEST__BODY_RECEIPTS;
		req.receipts = &rr;
		if (out_take(a, 5000)) {
			rc = conn_request(&a->out, &kr, &req, 10000, &resp);
			pthread_mutex_unlock(&a->out_mu);
		} else {
			rc = ENL_E_IO;
			snprintf(note, sizeof(note), "the connection to the broker is busy "
				 "(a large message, or a broker that does not answer)");
		}
		if (rc == ENL_OK && resp->status != ENL_OK) {
			ctl_error(c, resp->status, resp->reason);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return;
		}
		if (rc == ENL_OK && resp->receipt != NULL) {
			reply_receipt(c, resp->receipt, "");
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return;
		}
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (note[0] == '\0' && rc == ENL_E_IO)
			snprintf(note, sizeof(note), "the broker did not answer");
		else if (note[0] == '\0')
			snprintf(note, sizeof(note), "the broker did not answer (%s)",
				 enl_strerror(rc));
	}
	/* the receipt kept at sending time */
	if (enl_file_read(kept, 1 << 20, &buf, &len) == ENL_OK &&
	    enl_pb_unpack(&enlace__signed_receipt__descriptor, buf, len, 1 << 20,
			  (ProtobufCMessage **)&sg) == ENL_OK) {
		if (note[0] != '\0')
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 ": this is the receipt kept when the message was sent");
		reply_receipt(c, sg, note);
		protobuf_c_message_free_unpacked(&sg->base, NULL);
	} else if (note[0] != '\0') {
		ctl_error(c, ENL_E_IO, note);
	} else {
		ctl_error(c, ENL_E_NOT_FOUND, "no such message sent by this agency");
	}
	free(buf);
}
