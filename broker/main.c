/*
 * enlace-broker: relays sealed envelopes between agencies' daemons,
 * storing each durably before it answers.
 *
 *   enlace-broker --config FILE [--check-config]
 */
#include <malloc.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "broker.h"
#include "enlace/cli.h"
#include "enlace/config.h"
#include "enlace/wire.h"

static const char usage[] =
	"usage: enlace-broker --config FILE [--check-config]\n"
	"       enlace-broker policy check|explain ... (see policy --help)\n\n"
	"Runs the broker described by FILE (see examples/broker.conf).\n"
	"--check-config reads and checks the file, the keys, the directory and the\n"
	"policy, then exits: 0 if all is well, 1 if not, 2 on a usage error.\n"
	"SIGHUP reloads the policy; a file with any error is refused whole and the\n"
	"policy in force stays.\n";

struct broker {
	struct broker_config cfg;
	struct enl_identity *me;
	struct enl_directory *dir;
	uint8_t *dir_bytes;
	size_t dir_len;
	struct store store;
	struct tlog *log;
	struct tlog_journal journal;
	struct logserver *logserver;
	struct writer *writer;
	struct server *server;
	struct policy *policy;	/* until the server takes it */
	uint8_t policy_hash[32];
};


static int
load_policy(struct broker *b)
{
	char err[1200];

	if (policy_load(b->cfg.policy, &b->policy, b->policy_hash, err, sizeof(err)) != ENL_OK) {
		blog("policy %s", err);
		return -1;
	}
	return 0;
}

/* The policy's POLICY_LOADED entry, written with BROKER_STARTED. */
static int
log_policy(struct broker *b, int64_t now)
{
	Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
	char reason[1300], hex[65];
	uint8_t *bytes = NULL;
	size_t len = 0;
	uint64_t index;
	int rc;

	enl_hex(b->policy_hash, 32, hex);
	snprintf(reason, sizeof(reason), "%s (%zu rules), sha256 %s", b->cfg.policy,
		 policy_rule_count(b->policy), hex);
	e.time = now;
	e.event = ENLACE__AUDIT_EVENT__POLICY_LOADED;
	e.sender = (char *)enl_identity_id(b->me);
	e.envelope_hash.data = b->policy_hash;
	e.envelope_hash.len = 32;
	e.reason = reason;
	e.directory_serial = enl_directory_serial(b->dir);
	if ((rc = enl_pb_pack(&e.base, &bytes, &len)) != ENL_OK)
		return rc;
	rc = tlog_append(b->log, bytes, len, &index);
	free(bytes);
	if (rc == ENL_OK)
		blog("policy in force: %s", reason);
	return rc;
}

/* A directory's card for this broker, at the key version it holds. */
static bool
has_my_card(const struct broker *b, const struct enl_directory *d)
{
	const struct enl_card *card = enl_directory_find(d, enl_identity_id(b->me));

	return card != NULL && card->kind == ENL_KIND_BROKER &&
	       card->current_version == enl_identity_current(b->me);
}

static int
load_keys(struct broker *b)
{
	char why[1200];
	uint8_t pk[32];
	struct enl_dir_check chk = {pk, 0, (int64_t)time(NULL)};
	int rc;

	if ((rc = enl_authority_pub_read(b->cfg.authority_pub, pk)) != ENL_OK) {
		blog("%s: %s", b->cfg.authority_pub, enl_strerror(rc));
		return -1;
	}
	if ((rc = enl_file_read(b->cfg.directory, ENL_DIRECTORY_MAX, &b->dir_bytes,
				&b->dir_len)) != ENL_OK ||
	    (rc = enl_directory_parse(b->dir_bytes, b->dir_len, &chk, &b->dir)) != ENL_OK) {
		blog("%s: %s", b->cfg.directory, enl_strerror(rc));
		return -1;
	}
	rc = enl_keydir_load(b->cfg.key_dir, b->cfg.passphrase_file,
			     "(set passphrase_file for an encrypted key)", &b->me, why, sizeof(why));
	if (rc != ENL_OK) {
		blog("%s", why);
		return -1;
	}
	if (!has_my_card(b, b->dir)) {
		blog("%s: the directory has no BROKER card for %s at key version %" PRIu32,
		     b->cfg.directory, enl_identity_id(b->me), enl_identity_current(b->me));
		return -1;
	}
	return 0;
}

/* A directory older than one this broker has put in force would bring a
 * revoked key back to life: refused at start as on SIGHUP. */
static int
check_directory_serial(struct broker *b)
{
	uint64_t held = 0;
	int rc;

	if ((rc = directory_serial_held(&b->store, &held)) != ENL_OK) {
		blog("store: the directory serial in force: %s", enl_strerror(rc));
		return -1;
	}
	if (enl_directory_serial(b->dir) < held) {
		blog("%s: serial %" PRIu64 " is older than serial %" PRIu64 " this broker has put "
		     "in force; refused (it could bring a revoked key back); give it the newest "
		     "directory", b->cfg.directory, enl_directory_serial(b->dir), held);
		return -1;
	}
	return 0;
}

/*
 * SIGHUP: the directory file again. A newer one, checked as at start (the
 * authority's signature, not expired, this broker's card), is put in
 * force; the same serial is no change; an older one or a bad one is
 * refused whole, and the one in force stays.
 */
static void
reload_directory(struct broker *b)
{
	uint8_t pk[32], *bytes = NULL;
	struct enl_dir_check chk = {pk, 0, (int64_t)time(NULL)};
	struct enl_directory *nd = NULL;
	uint64_t held = server_directory_serial(b->server);
	size_t len = 0;
	int rc;

	if ((rc = enl_authority_pub_read(b->cfg.authority_pub, pk)) != ENL_OK ||
	    (rc = enl_file_read(b->cfg.directory, ENL_DIRECTORY_MAX, &bytes, &len)) != ENL_OK ||
	    (rc = enl_directory_parse(bytes, len, &chk, &nd)) != ENL_OK) {
		blog("directory %s: %s; the directory in force (serial %" PRIu64 ") stays",
		     b->cfg.directory, enl_strerror(rc), held);
		free(bytes);
		return;
	}
	const char *why = enl_directory_serial(nd) < held ? "older than the one in force"
			  : !has_my_card(b, nd) ? "no BROKER card for this broker at its key version"
						 : NULL;
	if (why != NULL)
		blog("directory %s: %s; the directory in force (serial %" PRIu64 ") stays",
		     b->cfg.directory, why, held);
	if (why != NULL || enl_directory_serial(nd) == held) {	/* the same: no change */
		enl_directory_free(nd);
		free(bytes);
		return;
	}
	server_set_directory(b->server, nd, bytes, len);
}

/*
 * Opens the audit log (checking every entry against its tiles and the last
 * checkpoint) and records the start. A damaged log stops the broker: it
 * must never sign a checkpoint that does not extend the one before.
 */
static int
open_log(struct broker *b)
{
	Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
	char dir[1100], origin[ENL_VKEY_NAME_MAX + 1], why[600];
	uint8_t *bytes = NULL;
	size_t len = 0;
	uint64_t index;
	int rc;

	snprintf(dir, sizeof(dir), "%s/log", b->cfg.data_dir);
	snprintf(origin, sizeof(origin), "enlace/%s", enl_identity_id(b->me));
	why[0] = '\0';
	b->journal.ctx = b->store.db;
	b->journal.append = b->store.ops->audit_append;
	b->journal.load = b->store.ops->audit_load;
	b->journal.get = b->store.ops->audit_get;
	rc = tlog_open_with(dir, origin, b->me, &b->journal, &b->log, why, sizeof(why));
	if (rc != ENL_OK) {
		blog("audit log %s: %s: %s", dir, enl_strerror(rc), why);
		return -1;
	}
	e.time = (int64_t)time(NULL);
	e.event = ENLACE__AUDIT_EVENT__BROKER_STARTED;
	e.sender = (char *)enl_identity_id(b->me);
	e.directory_serial = enl_directory_serial(b->dir);
	/* the start is an entry like any other: journal and store commit together */
	if ((rc = enl_pb_pack(&e.base, &bytes, &len)) == ENL_OK &&
	    (rc = b->store.ops->begin(b->store.db)) == ENL_OK) {
		if ((rc = tlog_append(b->log, bytes, len, &index)) == ENL_OK &&
		    (rc = audit_directory(&b->store, b->log, b->me, b->dir, b->dir_bytes,
						  b->dir_len, e.time)) == ENL_OK &&
		    (rc = log_policy(b, e.time)) == ENL_OK &&
		    (rc = tlog_stage(b->log)) == ENL_OK &&
		    (rc = b->store.ops->commit(b->store.db)) == ENL_OK)
			tlog_stage_done(b->log);
		if (rc != ENL_OK && b->store.ops->rollback(b->store.db) != ENL_OK)
			blog("store: rollback failed");
		if (rc == ENL_OK)
			rc = tlog_flush(b->log);
	}
	free(bytes);
	if (rc == STORE_E_UNSURE) {
		blog("store: the start could not be made durable (a sync failed)");
		return -1;
	}
	if (rc != ENL_OK) {
		blog("audit log %s: %s", dir, enl_strerror(rc));
		return -1;
	}
	blog("audit log %s: %" PRIu64 " entries, verified%s%s", dir, tlog_size(b->log),
	     why[0] ? "; " : "", why);
	return 0;
}

/* Stops everything, every wait bounded: false if nng could not end its
 * connections in time, and then the store and the log are closed, the
 * rest left to the exit. */
static bool
broker_fini(struct broker *b)
{
	logserver_stop(b->logserver);
	if (!server_close(b->server)) {
		blog("connections still open after the stop's deadline; leaving them to the exit");
		writer_stop(b->writer);
		if (b->store.ops != NULL)
			b->store.ops->close(b->store.db);
		tlog_close(b->log);
		return false;
	}
	writer_stop(b->writer);
	server_stop(b->server);	/* its last answers may still ask the writer */
	writer_free(b->writer);
	if (b->store.ops != NULL)
		b->store.ops->close(b->store.db);
	tlog_close(b->log);
	enl_identity_free(b->me);
	enl_directory_free(b->dir);
	free(b->dir_bytes);
	policy_free(b->policy);
	return true;
}

int
main(int argc, char **argv)
{
	struct broker b;
	const char *config = NULL;
	bool check = false;
	char err[1200], path[1100];
	sigset_t sigs;
	int sig = 0, ret, rc, lock_fd = -1;
	long holder = 0;

	memset(&b, 0, sizeof(b));
	if (argc >= 2 && strcmp(argv[1], "policy") == 0) {
		if (enl_init() != ENL_OK)
			return 1;
		return policy_main(argc - 1, argv + 1);
	}
	if ((ret = enl_daemon_args(argc, argv, "enlace-broker", usage, &config, &check)) >= 0)
		return ret;
	ret = 1;
	/* a large message's buffers come from one heap and are reused, not
	 * mapped fresh for each copy; freed memory is kept up to 512 MiB */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_ARENA_MAX, 1);
	if (enl_init() != ENL_OK)
		return 1;
	if (config_load(config, &b.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "enlace-broker: %s\n", err);
		return 1;
	}
	if (load_keys(&b) != 0 || load_policy(&b) != 0)
		goto out;
	if (check) {
		printf("%s: valid; broker %s, directory serial %" PRIu64 ", policy of %zu rules\n",
		       config, enl_identity_id(b.me), enl_directory_serial(b.dir),
		       policy_rule_count(b.policy));
		ret = 0;
		goto out;
	}
	/* Signals are taken by sigwait below; no other thread sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGPIPE);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (mkdir(b.cfg.data_dir, 0700) != 0 && errno != EEXIST) {
		blog("%s: %s", b.cfg.data_dir, strerror(errno));
		goto out;
	}
	if ((rc = enl_dir_lock(b.cfg.data_dir, &lock_fd, &holder)) != ENL_OK) {
		if (rc == ENL_E_EXISTS)
			blog("%s: in use by another enlace-broker (pid %ld); one broker per data "
			     "folder", b.cfg.data_dir, holder);
		else
			blog("%s/lock: %s", b.cfg.data_dir, enl_strerror(rc));
		goto out;
	}
	/* held alone now: what a crash left half written goes (the log's
	 * checkpoint files; the store's blobs are swept when it opens) */
	for (int i = 0; i < 2; i++) {
		size_t n = 0;
		snprintf(path, sizeof(path), "%s%s", b.cfg.data_dir, i ? "/log" : "");
		if (enl_dir_sweep(path, &n) == ENL_OK && n > 0)
			blog("%s: removed %zu temporary file(s) a stop left half written", path, n);
	}
	snprintf(path, sizeof(path), "%s/store.sqlite", b.cfg.data_dir);
	if (store_sqlite_open(path, &b.store) != ENL_OK)
		goto out;
	if (check_directory_serial(&b) != 0 || open_log(&b) != 0)
		goto out;
	if (writer_start(&b.store, b.cfg.batch_max, &b.writer) != ENL_OK)
		goto out;
	{
		struct server_params p = {&b.cfg, b.me, b.dir, b.dir_bytes, b.dir_len,
					  b.writer, &b.store, b.log, b.policy};
		b.policy = NULL;	/* the server's now, even if it fails to start */
		if (server_start(&p, &b.server) != ENL_OK)
			goto out;
	}
	if (b.cfg.log_listen[0]) {
		char origin[ENL_ID_MAX + 16];
		snprintf(path, sizeof(path), "%s/log", b.cfg.data_dir);
		snprintf(origin, sizeof(origin), "enlace/%s", enl_identity_id(b.me));
		struct logserver_params lp = {b.cfg.log_listen, path, origin, server_reader_key,
					      b.server};
		if (logserver_start(&lp, &b.logserver) != ENL_OK)
			goto out;
	}
#ifdef ENL_BENCH_WITHOUT_AUDIT_LOG
	blog("BENCHMARK BUILD: this broker keeps NO audit log; never use it");
#endif
	blog("broker %s ready on %s (directory serial %" PRIu64 ", data in %s)",
	     enl_identity_id(b.me), b.cfg.listen, enl_directory_serial(b.dir), b.cfg.data_dir);
	while (sig != SIGINT && sig != SIGTERM) {
		if (sigwait(&sigs, &sig) != 0)
			break;
		if (sig == SIGHUP) {
			struct policy *np = NULL;
			reload_directory(&b);
			uint8_t hash[32];
			char perr[1200];
			if (policy_load(b.cfg.policy, &np, hash, perr, sizeof(perr)) != ENL_OK)
				blog("policy %s; refused whole, the policy in force stays", perr);
			else
				server_set_policy(b.server, np, hash, b.cfg.policy);
		}
	}
	blog("stopping (signal %d)", sig);
	ret = 0;
out:
	if (!broker_fini(&b)) {
		if (lock_fd >= 0)
			close(lock_fd);
		blog("stopped (store and log closed)");
		_exit(ret);	/* nng's threads still hold what they could not end */
	}
	if (lock_fd >= 0)
		close(lock_fd);	/* last: everything in the folder is closed */
	return ret;
}
