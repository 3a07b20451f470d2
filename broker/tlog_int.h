/* The audit log's writer: what tlog.c and tlog_publish.c share. */
#ifndef ENLACE_BROKER_TLOG_INT_H
#define ENLACE_BROKER_TLOG_INT_H

#include <pthread.h>

#include "enlace/keys.h"
#include "tlog.h"

struct pub_job;

struct tlog {
	struct enl_tlog *t;	/* the tree, and pend */
	char dir[1024];
	char origin[ENL_VKEY_NAME_MAX + 1];
	const struct enl_identity *signer;
	/* staged in an external journal's open transaction, not yet known
	 * committed (tlog_stage) */
	bool staged;
	struct enl_tlog_mark staged_mark;
	/* the journal: every entry, appended and synced at each commit */
	int jfd;
	ENL_VEC(uint64_t) joff;	/* offset of each entry's record */
	uint64_t jend;
	const struct tlog_journal *jops;	/* or NULL: the journal file */
	uint64_t published;	/* size of the last checkpoint written to tiles */
	/* the sizes of the checkpoints signed since the last publication was
	 * handed over (receipts carry them): their partial tiles are written
	 * with it (C2SP tlog-tiles) */
	ENL_VEC(uint64_t) handed;
	int64_t published_at;
	char *cosigs;		/* cosignature lines for the checkpoint of cosig_size */
	uint64_t cosig_size;	/* ... both set under file_mu, read under it by
				 * the publisher (write_checkpoint) */
	/* With an external journal the tiles are written by a thread of
	 * their own, from a copy of what they need (tlog_publish_due), so
	 * that the appender never waits for them. One job at a time. */
	struct pub_job *job;	/* handed over; done or not */
	pthread_t pub_thread;
	pthread_mutex_t pub_mu;
	pthread_cond_t pub_cv;
	bool pub_running, pub_stop;
	/* the checkpoint file, which both threads write */
	pthread_mutex_t file_mu;
	uint64_t on_disk;	/* the size of the checkpoint in it */
};

/* Sizes kept between two publications at most (a publication that keeps
 * failing must not make the list grow for ever): past it, the partials of
 * the sizes after go unwritten until the tiles are published again. */
#define HANDED_MAX 65536

/* tlog_publish.c */

/* *note (malloc'd): the checkpoint of `size` and `root`, signed now. */
int tlog_sign(const struct tlog *log, uint64_t size, const enl_mhash root, char **note) ENL_WUR;
/* Writes the bundles, tiles and checkpoint of everything committed, now,
 * on the appender's thread. */
int tlog_publish(struct tlog *log) ENL_WUR;
/* Stops the publisher thread and takes in its last job. */
void tlog_publish_stop(struct tlog *log);

#endif
