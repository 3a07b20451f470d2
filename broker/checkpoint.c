/*
 * DIRECTORY and CHECKPOINT: the newest signed directory for an agent, and
 * the log's consistency proofs and the agencies' cosignatures.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "server_int.h"

/* ---- DIRECTORY ---- */

int
handle_directory(struct work *w)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;

	if (w->req->directory->have_serial < enl_directory_serial(w->dir->dir)) {
		r.directory.data = (uint8_t *)w->dir->bytes;
		r.directory.len = w->dir->len;
	}
	reply_send(w, &r);
	return 0;
}

/* ---- CHECKPOINT: consistency proofs and cosignatures ---- */

/* Every agency's cosignature line (at most 512 bytes each). */
#define COSIGS_MAX (1u << 20)

static void
add_cosig(void *arg, const char *line)
{
	struct enl_buf *all = arg;

	if (enl_buf_puts(all, line) != ENL_OK)
		all->len = all->max + 1;	/* marks it incomplete */
}

/* Checks an agency's cosignature line of the checkpoint of `size`. */
static int
cosig_check(struct work *w, uint64_t size, const char *line)
{
	struct enl_checkpoint cp;
	struct enl_note_verifier v = {0};
	char *body = NULL, *note = NULL, prefix[ENL_ID_MAX + 8];
	struct enl_buf nb = ENL_BUF_INIT(ENL_NOTE_MAX);
	size_t len = strlen(line), tl = 0;
	bool ok = false;
	int rc;

	/* exactly one line, this agency's */
	snprintf(prefix, sizeof(prefix), "\xe2\x80\x94 %s ", w->agency);
	if (len < strlen(prefix) + 2 || len > 512 || strncmp(line, prefix, strlen(prefix)) != 0 ||
	    strchr(line, '\n') != line + len - 1)
		return ENL_E_MALFORMED;
	if (size == 0 || size > tlog_committed(w->srv->p.log))
		return ENL_E_INVAL;
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "enlace/%s", enl_identity_id(w->srv->p.me));
	cp.size = size;
	snprintf(v.name, sizeof(v.name), "%s", w->agency);
	v.cosigner = true;
	if ((rc = enl_tlog_root(tlog_tree(w->srv->p.log), size, cp.root)) != ENL_OK ||
	    (rc = w->dir->kr.signing_key(w->dir->kr.ctx, w->agency,
					 enl_session_peer_version(w->sess->s), v.pk)) != ENL_OK ||
	    (rc = enl_checkpoint_format(&cp, &body)) != ENL_OK)
		goto out;
	if ((rc = enl_buf_printf(&nb, "%s\n%s", body, line)) != ENL_OK)
		goto out;
	note = enl_buf_take(&nb);
	rc = note == NULL ? ENL_E_NOMEM : enl_note_open(note, strlen(note), &v, 1, &tl, &ok);
	if (rc == ENL_OK && !ok)
		rc = ENL_E_BAD_SIGNATURE;
out:
	enl_buf_free(&nb);
	free(body);
	free(note);
	return rc == ENL_E_UNKNOWN_SENDER ? ENL_E_BAD_SIGNATURE : rc;
}

static void
checkpoint_drop(struct work *w)
{
	free(w->ckpt.cosigs);
	w->ckpt.cosigs = NULL;
}

static int
checkpoint_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	const Enlace__CheckpointReq *c = w->req->checkpoint;
	struct enl_buf all = ENL_BUF_INIT(COSIGS_MAX);
	int rc;

	(void)now;
	if (c->cosignature == NULL || c->cosignature[0] == '\0')
		return ENL_OK;
	if ((rc = cosig_check(w, c->cosigned_size, c->cosignature)) != ENL_OK)
		return rc;
	if ((rc = st->ops->cosig_put(st->db, w->agency, c->cosigned_size, c->cosignature)) != ENL_OK)
		return rc;
	if ((rc = st->ops->cosigs(st->db, c->cosigned_size, add_cosig, &all)) != ENL_OK)
		goto out;
	if (all.len > all.max) {
		rc = ENL_E_TOO_LARGE;
		goto out;
	}
	w->ckpt.drop = checkpoint_drop;
	w->ckpt.cosigs = enl_buf_take(&all);
	rc = w->ckpt.cosigs != NULL ? ENL_OK : ENL_E_NOMEM;
out:
	enl_buf_free(&all);
	return rc;
}

static void
checkpoint_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;
	struct server *srv = w->srv;
	const Enlace__CheckpointReq *c = w->req->checkpoint;
	Enlace__Response r = ENLACE__RESPONSE__INIT;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	ProtobufCBinaryData pb[ENL_MERKLE_MAX_PROOF];
	uint64_t second = c->second ? c->second : srv->checkpoint_size;
	char *note = NULL;
	size_t n = 0;

	if (rc != ENL_OK) {
		reply_status(w, rc, rc == ENL_E_BAD_SIGNATURE ? "the cosignature does not verify"
				      : rc == ENL_E_MALFORMED ? "not a cosignature line of this agency"
				      : NULL);
		return;
	}
	if (w->ckpt.cosigs != NULL && c->cosigned_size >= srv->cosig_size) {
		if (tlog_set_cosignatures(srv->p.log, c->cosigned_size, w->ckpt.cosigs) != ENL_OK)
			blog("audit log: cannot publish the cosignatures");
		free(srv->cosigs);
		srv->cosigs = w->ckpt.cosigs;
		srv->cosig_size = c->cosigned_size;
		w->ckpt.cosigs = NULL;
		blog("checkpoint %" PRIu64 " cosigned by %s", srv->cosig_size, w->agency);
	}
	if (srv->checkpoint == NULL || c->first > second || second > srv->checkpoint_size ||
	    enl_tlog_consistency(tlog_tree(srv->p.log), c->first, second, proof, &n) != ENL_OK) {
		reply_status(w, ENL_E_INVAL, "no such tree size in this log");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		pb[i].data = proof[i];
		pb[i].len = ENL_MERKLE_HASH_LEN;
	}
	r.checkpoint = srv->checkpoint;
	if (srv->cosigs != NULL && srv->cosig_size == srv->checkpoint_size) {
		struct enl_buf nb = ENL_BUF_INIT(COSIGS_MAX + ENL_NOTE_MAX);
		if (enl_buf_puts(&nb, srv->checkpoint) == ENL_OK &&
		    enl_buf_puts(&nb, srv->cosigs) == ENL_OK && (note = enl_buf_take(&nb)) != NULL)
			r.checkpoint = note;
		enl_buf_free(&nb);
	}
	r.n_consistency = n;
	r.consistency = pb;
	reply_send(w, &r);
	free(note);
}

int
handle_checkpoint(struct work *w)
{
	const Enlace__CheckpointReq *c = w->req->checkpoint;

	if (c->cosignature != NULL && strlen(c->cosignature) > 512)
		return ENL_E_MALFORMED;	/* the line itself is checked on the writer */
	w->job.write = checkpoint_write;
	w->job.done = checkpoint_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}
