/*
 * enlace-agent: one agency's daemon. main reads the config, opens the
 * key, the directory and the spool, and starts the sender, the fetcher,
 * the log watch and the control socket's workers.
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
#include "enlace/cli.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"
#include "enlace/wire.h"

#define S(name, field, req) \
	{"agent", name, ENL_CFG_STRING, offsetof(struct agent_config, field), \
	 sizeof(((struct agent_config *)0)->field), req, 0, 0, NULL}

static const struct enl_cfg_key config_keys[] = {
	{"agent", "broker", ENL_CFG_ADDR, offsetof(struct agent_config, broker),
	 sizeof(((struct agent_config *)0)->broker), 1, 0, 0, "tcp tcp4 tcp6 tls+tcp"},
	S("broker_id", broker_id, 1),
	S("key", key_dir, 1),
	S("passphrase_file", passphrase_file, 0),
	S("directory", directory, 1),
	S("authority_pub", authority_pub, 1),
	S("spool", spool, 1),
	S("control", control, 1),
	{"agent", "max_payload", ENL_CFG_BYTES, offsetof(struct agent_config, max_payload), 0,
	 0, 1, (uint64_t)1 << 31, NULL},
	{"agent", "fetch_wait", ENL_CFG_MS, offsetof(struct agent_config, fetch_wait_ms), 0, 0,
	 100, 600000, NULL},
	{"agent", "log_poll", ENL_CFG_MS, offsetof(struct agent_config, log_poll_ms), 0, 0,
	 100, 3600000, NULL},
	{NULL, NULL, 0, 0, 0, 0, 0, 0, NULL},
};

/* The spool's folders. */
static const char *const spool_subs[] = {"", "/outbox", "/sent", "/inbox", "/refused",
					 "/failed", "/consent"};

/* ---- start and stop ---- */

/* True if a process listens on the control socket `path`: taking it over
 * would send one agency's analysts to another agency's agent. */
static bool
control_in_use(const char *path)
{
	int fd;

	if (control_dial(path, 1000, &fd) != 0)
		return false;	/* nothing there, or a file a stopped agent left */
	close(fd);
	return true;
}

static struct agent *the_agent;	/* for the signal handler only */

static void
on_signal(int sig)
{
	(void)sig;
	if (the_agent != NULL)
		the_agent->stopping = 1;
}

static int
agent_load(struct agent *a, const char *config)
{
	char err[1200], path[1100];
	struct enl_dir_check chk = {a->authority_pk, 0, (int64_t)time(NULL)};
	const struct enl_card *broker;
	struct stat st;
	int rc;

	a->cfg.max_payload = ENL_DEFAULT_MAX_PAYLOAD;
	a->cfg.fetch_wait_ms = 25000;
	a->cfg.log_poll_ms = 10000;
	if (enl_config_parse(config, config_keys, &a->cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "enlace-agent: %s\n", err);
		return -1;
	}
	a->lim.max_payload = a->cfg.max_payload;
	if ((rc = enl_authority_pub_read(a->cfg.authority_pub, a->authority_pk)) != ENL_OK) {
		alog("%s: %s", a->cfg.authority_pub, enl_strerror(rc));
		return -1;
	}
	if ((rc = enl_directory_load(a->cfg.directory, &chk, &a->dir)) != ENL_OK) {
		alog("%s: %s", a->cfg.directory, enl_strerror(rc));
		return -1;
	}
	rc = enl_keydir_load(a->cfg.key_dir, a->cfg.passphrase_file,
			     "(set passphrase_file for an encrypted key)", &a->me, err, sizeof(err));
	if (rc != ENL_OK) {
		alog("%s", err);
		return -1;
	}
	if (enl_directory_find(a->dir, enl_identity_id(a->me)) == NULL) {
		alog("%s is not in the directory %s", enl_identity_id(a->me), a->cfg.directory);
		return -1;
	}
	if ((broker = enl_directory_find(a->dir, a->cfg.broker_id)) == NULL ||
	    broker->kind != ENL_KIND_BROKER) {
		alog("broker_id %s: the directory %s has no BROKER card of that id",
		     a->cfg.broker_id, a->cfg.directory);
		return -1;
	}
	snprintf(path, sizeof(path), "%s", a->cfg.control);
	if (stat(dirname(path), &st) != 0 || !S_ISDIR(st.st_mode)) {
		alog("control %s: its folder %s does not exist", a->cfg.control, path);
		return -1;
	}
	for (size_t i = 0; i < sizeof(spool_subs) / sizeof(spool_subs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", a->cfg.spool, spool_subs[i]);
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			alog("%s: %s", path, strerror(errno));
			return -1;
		}
	}
	/* the outbox's order goes on after its newest file */
	{
		char **names = NULL;
		size_t n = outbox_list(a, &names);
		if (n > 0) {
			snprintf(path, sizeof(path), "%s/outbox/%s", a->cfg.spool, names[n - 1]);
			if (stat(path, &st) == 0)
				a->last_queued = st.st_mtim;
		}
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return 0;
}

static void
agent_fini(struct agent *a)
{
	conn_close(&a->out);
	conn_close(&a->in);
	enl_identity_free(a->me);
	enl_directory_free(a->dir);
	for (size_t i = 0; i < a->old_dirs.n; i++)
		enl_directory_free(a->old_dirs.v[i]);
	enl_vec_free(&a->old_dirs);
	inbox_cache_free(a->inbox_cache);
	inbox_cache_free(a->inbox_fresh);
	free(a->handed.env);
}

int
main(int argc, char **argv)
{
	static const char usage[] =
		"usage: enlace-agent --config FILE [--check-config]\n\n"
		"Runs one agency's daemon (see examples/agent.conf).\n";
	static struct agent a;
	const char *config = NULL;
	bool check = false;
	pthread_t sender, fetcher;
	struct sigaction sa;
	int rc, ret, lock_fd = -1;
	long holder = 0;

	/* the heap of a program that carries whole messages, as the broker's */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_ARENA_MAX, 1);
	if ((ret = enl_daemon_args(argc, argv, "enlace-agent", usage, &config, &check)) >= 0)
		return ret;
	if (enl_init() != ENL_OK)
		return 1;
	ret = 1;
	a.old_dirs.max = 1u << 20;
	pthread_mutex_init(&a.mu, NULL);
	pthread_mutex_init(&a.out_mu, NULL);
	pthread_mutex_init(&a.ctl_mu, NULL);
	a.ctl_fd = -1;
	pthread_mutex_init(&a.dir_mu, NULL);
	pthread_mutex_init(&a.log_mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	if (agent_load(&a, config) != 0)
		goto out;
	if (check) {
		printf("%s: valid; agency %s, directory serial %" PRIu64 "\n", config,
		       enl_identity_id(a.me), enl_directory_serial(a.dir));
		ret = 0;
		goto out;
	}
	if ((rc = enl_dir_lock(a.cfg.spool, &lock_fd, &holder)) != ENL_OK) {
		if (rc == ENL_E_EXISTS)
			alog("%s: in use by another enlace-agent (pid %ld); one agent per spool",
			     a.cfg.spool, holder);
		else
			alog("%s/lock: %s", a.cfg.spool, enl_strerror(rc));
		goto out;
	}
	/* held alone now: what a crash left half written goes */
	for (size_t i = 0; i < sizeof(spool_subs) / sizeof(spool_subs[0]); i++) {
		char sub[1100];
		size_t n = 0;
		snprintf(sub, sizeof(sub), "%s%s", a.cfg.spool, spool_subs[i]);
		if (enl_dir_sweep(sub, &n) == ENL_OK && n > 0)
			alog("%s: removed %zu temporary file(s) a stop left half written", sub, n);
	}
	log_state_load(&a);
	a.shown_held = a.held.size;
	conn_init(&a.out, a.cfg.broker, a.cfg.broker_id, a.me, a.cfg.max_payload);
	conn_init(&a.in, a.cfg.broker, a.cfg.broker_id, a.me, a.cfg.max_payload);
	conn_set_directory(&a.out, held_serial, welcome_directory, &a);
	conn_set_directory(&a.in, held_serial, welcome_directory, &a);
	the_agent = &a;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (control_in_use(a.cfg.control)) {
		alog("control %s: another agent answers on it; give each agent its own",
		     a.cfg.control);
		goto out;
	}
	if (control_listen(a.cfg.control, &a.ctl_fd) != 0) {
		alog("control socket %s: %s", a.cfg.control, strerror(errno));
		goto out;
	}
	if (pthread_create(&sender, NULL, sender_main, &a) != 0 ||
	    pthread_create(&fetcher, NULL, fetcher_main, &a) != 0) {
		alog("cannot start threads");
		goto out;
	}
	pthread_setname_np(sender, "enl:sender");
	pthread_setname_np(fetcher, "enl:fetcher");
	alog("agent %s ready; broker %s at %s; control %s", enl_identity_id(a.me),
	     a.cfg.broker_id, a.cfg.broker, a.cfg.control);
	control_run(&a);
	a.stopping = 1;
	pthread_mutex_lock(&a.mu);
	pthread_cond_broadcast(&a.cv);
	pthread_mutex_unlock(&a.mu);
	close(a.ctl_fd);
	unlink(a.cfg.control);	/* `enlace` then says the agent is not running */
	a.ctl_fd = -1;
	/* A long poll may be waiting: closing its socket ends it. */
	if (a.in.open)
		nng_close(a.in.sock);
	pthread_join(sender, NULL);
	pthread_join(fetcher, NULL);
	alog("stopped");
	ret = 0;
out:
	if (a.ctl_fd >= 0)
		close(a.ctl_fd);
	agent_fini(&a);
	if (lock_fd >= 0)
		close(lock_fd);
	return ret;
}
