/* The load generator's parts (loadgen.c, loadgen_ceiling.c): the parties
 * and messages of a run, and the ceiling measured beside it. */
#ifndef ENLACE_BENCH_LOADGEN_H
#define ENLACE_BENCH_LOADGEN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

#define MAX_PARTIES 256

struct msg {
	uint8_t *env;
	size_t len;
	uint8_t id[ENL_MSG_ID_LEN], hash[ENL_HASH_LEN];
	uint8_t ack_sig[64];	/* its recipient's, made before the clock */
	int64_t ack_time;
	size_t recipient;	/* index of its recipient session */
	int64_t submit_ns, receipt_ns, ack_ns;
};

struct shared {
	const char *url;
	struct enl_directory *dir;
	struct enl_keyring kr;
	struct msg *msgs;
	size_t count;
	double rate;		/* per second, all senders together; 0: as fast as possible */
	int64_t start_ns;
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* a sender is done */
	size_t senders_done;
	size_t paced;		/* messages [0, paced) are due */
	size_t acked;
	int errors;
	bool open;	/* recipients verify, decrypt and sign on the clock */
};

struct party {
	struct shared *sh;
	struct enl_identity *me;
	size_t index, n_parties;
};

/* loadgen.c */
int64_t now_ns(void);

/* loadgen_ceiling.c */
void percentiles(const char *what, int64_t *v, size_t n);
double proc_cpu_s(long pid);
double proc_value(long pid, const char *file, const char *key);
double median3(const double v[3]);
double measure_ceiling(const char *dir, size_t total, double *fsync_ms, double *verify_ms);

#endif
