/*
 * enlace-audit report: counts per agency and day.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "audit.h"
#include "enlace/httpauth.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"

/* ---- report: counts per agency and day ---- */

/* "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ" into *t. */
static bool
parse_time(const char *s, int64_t *t)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL || *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
			return false;
	}
	*t = (int64_t)timegm(&tm);
	return true;
}

struct reason_count {
	char reason[128];
	uint64_t n;
};

struct row {
	char day[11];
	char agency[ENL_ID_MAX + 1];
	uint64_t sent, delivered, acked, rejected, pending;
	ENL_VEC(struct reason_count) reasons;	/* at most REASONS_MAX kinds */
};

#define REASONS_MAX 1000
#define ROWS_MAX ((size_t)1 << 24)

/* A delivery queued in the period, until it is acknowledged or refused. */
struct open_delivery {
	uint8_t key[16];	/* BLAKE2b(message id || recipient) */
	size_t row;
	bool used, closed;
};

struct report {
	int64_t since, until;
	ENL_VEC(struct row) rows;	/* one per day and agency */
	struct open_delivery *open;
	size_t open_cap, open_n;
	bool failed;
};

static struct row *
row_of(struct report *r, int64_t t, const char *agency)
{
	struct row *w;
	char day[32];

	enl_time_format(t, day);
	day[10] = '\0';
	for (size_t i = 0; i < r->rows.n; i++)
		if (strcmp(r->rows.v[i].day, day) == 0 && strcmp(r->rows.v[i].agency, agency) == 0)
			return &r->rows.v[i];
	if ((w = enl_vec_push(&r->rows)) == NULL)
		return NULL;
	memcpy(w->day, day, sizeof(w->day));
	snprintf(w->agency, sizeof(w->agency), "%s", agency);
	w->reasons.max = REASONS_MAX;
	return w;
}

static void
delivery_key(const Enlace__AuditEntry *e, uint8_t key[16])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 16);
	crypto_generichash_update(&st, e->message_id.data, e->message_id.len);
	crypto_generichash_update(&st, (const uint8_t *)e->recipient, strlen(e->recipient));
	crypto_generichash_final(&st, key, 16);
}

/* The slot of a delivery in the open-addressing table (free or its own). */
static struct open_delivery *
delivery_slot(struct report *r, const uint8_t key[16])
{
	size_t i = ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16 |
		    (size_t)key[3] << 24) & (r->open_cap - 1);

	while (r->open[i].used && memcmp(r->open[i].key, key, 16) != 0)
		i = (i + 1) & (r->open_cap - 1);
	return &r->open[i];
}

static int
delivery_grow(struct report *r)
{
	struct open_delivery *old = r->open;
	size_t old_cap = r->open_cap;

	r->open_cap = old_cap ? 2 * old_cap : 1024;
	if ((r->open = calloc(r->open_cap, sizeof(*r->open))) == NULL) {
		r->open = old;
		r->open_cap = old_cap;
		return ENL_E_NOMEM;
	}
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].used)
			*delivery_slot(r, old[i].key) = old[i];
	free(old);
	return ENL_OK;
}

static void
count_reason(struct row *w, const char *reason)
{
	struct reason_count *n;

	for (size_t i = 0; i < w->reasons.n; i++)
		if (strncmp(w->reasons.v[i].reason, reason, sizeof(n->reason) - 1) == 0) {
			w->reasons.v[i].n++;
			return;
		}
	if ((n = enl_vec_push(&w->reasons)) == NULL)
		return;
	snprintf(n->reason, sizeof(n->reason), "%s", reason);
	n->n = 1;
}

static int
report_entry(void *arg, uint64_t index, const uint8_t *bytes, size_t len,
	     Enlace__AuditEntry *e)
{
	struct report *r = arg;
	struct row *w = NULL;
	uint8_t key[16];
	bool in = e->time >= r->since && e->time < r->until;

	(void)index;
	(void)bytes;
	(void)len;
	switch (in ? e->event : 0) {
	case ENLACE__AUDIT_EVENT__SUBMITTED:
		if ((w = row_of(r, e->time, e->sender)) != NULL)
			w->sent++;
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_QUEUED:
		if ((w = row_of(r, e->time, e->recipient)) == NULL)
			break;
		w->pending++;
		if (e->message_id.len == 0)
			break;
		if ((r->open_n + 1) * 2 > r->open_cap && delivery_grow(r) != ENL_OK) {
			r->failed = true;
			break;
		}
		delivery_key(e, key);
		{
			struct open_delivery *d = delivery_slot(r, key);
			if (!d->used) {
				memcpy(d->key, key, 16);
				d->used = true;
				d->row = (size_t)(w - r->rows.v);
				r->open_n++;
			}
		}
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_FETCHED:
		if ((w = row_of(r, e->time, e->recipient)) != NULL)
			w->delivered++;
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_ACKED:
	case ENLACE__AUDIT_EVENT__REFUSED_BY_RECIPIENT:
	case ENLACE__AUDIT_EVENT__EXPIRED:
		if (e->event == ENLACE__AUDIT_EVENT__AUDIT_ACKED &&
		    (w = row_of(r, e->time, e->recipient)) != NULL)
			w->acked++;
		if (r->open_cap == 0 || e->message_id.len == 0)
			break;
		delivery_key(e, key);
		{
			struct open_delivery *d = delivery_slot(r, key);
			if (d->used && !d->closed) {
				d->closed = true;
				r->rows.v[d->row].pending--;
			}
		}
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_REJECTED:
		if ((w = row_of(r, e->time, e->sender[0] ? e->sender : "-")) != NULL) {
			w->rejected++;
			count_reason(w, e->reason[0] ? e->reason : "unspecified");
		}
		break;
	default:
		break;
	}
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return 0;
}

static int
by_day_agency(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = strcmp(a->day, b->day);

	return c ? c : strcmp(a->agency, b->agency);
}

static void
report_print(const struct report *r, bool json)
{
	if (json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < r->rows.n; i++) {
			const struct row *w = &r->rows.v[i];
			enl_json_obj_begin(&j, NULL);
			enl_json_str(&j, "day", w->day);
			enl_json_str(&j, "agency", w->agency);
			enl_json_int(&j, "sent", (int64_t)w->sent);
			enl_json_int(&j, "delivered", (int64_t)w->delivered);
			enl_json_int(&j, "acknowledged", (int64_t)w->acked);
			enl_json_int(&j, "rejected", (int64_t)w->rejected);
			enl_json_obj_begin(&j, "rejected_by_reason");
			for (size_t k = 0; k < w->reasons.n; k++)
				enl_json_int(&j, w->reasons.v[k].reason, (int64_t)w->reasons.v[k].n);
			enl_json_obj_end(&j);
			enl_json_int(&j, "pending", (int64_t)w->pending);
			enl_json_obj_end(&j);
		}
		enl_json_arr_end(&j);
		enl_json_end(&j);
		return;
	}
	printf("day,agency,sent,delivered,acknowledged,rejected,pending,rejected_by_reason\n");
	for (size_t i = 0; i < r->rows.n; i++) {
		const struct row *w = &r->rows.v[i];
		printf("%s,%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",\"",
		       w->day, w->agency, w->sent, w->delivered, w->acked, w->rejected, w->pending);
		for (size_t k = 0; k < w->reasons.n; k++) {
			/* CSV: a quote inside a quoted field is doubled */
			printf("%s", k ? "; " : "");
			for (const char *c = w->reasons.v[k].reason; *c; c++)
				printf(*c == '"' ? "\"\"" : "%c", *c);
			printf(": %" PRIu64, w->reasons.v[k].n);
		}
		printf("\"\n");
	}
}

int
cmd_report(int argc, char **argv)
{
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	struct enl_tlog *log = NULL;
	struct report r;
	struct source src;
	struct opts o;
	bool json;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	memset(&r, 0, sizeof(r));
	r.rows.max = ROWS_MAX;
	if (o.log == NULL || o.broker_pub == NULL || o.since == NULL || o.until == NULL ||
	    o.argc != 0)
		return usage_error("report needs --log, --broker-pub, --since and --until");
	if (!parse_time(o.since, &r.since) || !parse_time(o.until, &r.until) ||
	    r.until <= r.since)
		return usage_error("--since and --until: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, "
				   "since before until");
	if (o.format != NULL && strcmp(o.format, "csv") != 0 && strcmp(o.format, "json") != 0)
		return usage_error("--format is csv or json");
	json = o.json || (o.format != NULL && strcmp(o.format, "json") == 0);
	if ((rc = broker_key(o.broker_pub, &k)) != ENL_OK) {
		if (rc != ENL_E_INVAL)	/* that one is said */
			fprintf(stderr, "enlace-audit: %s: %s\n", o.broker_pub, enl_strerror(rc));
		return ENL_EXIT_USAGE;
	}
	if (source_open(&src, o.log, &o, &k) != ENL_OK)
		return EXIT_BAD;
	src.on_entry = report_entry;
	src.arg = &r;
	rc = source_load(&src, &k, &log, &cp, json);
	if (rc == ENL_OK && r.failed)
		rc = ENL_E_NOMEM;
	if (rc == ENL_OK) {
		qsort(r.rows.v, r.rows.n, sizeof(*r.rows.v), by_day_agency);
		report_print(&r, json);
	}
	for (size_t i = 0; i < r.rows.n; i++)
		enl_vec_free(&r.rows.v[i].reasons);
	enl_vec_free(&r.rows);
	free(r.open);
	enl_tlog_free(log);
	source_close(&src);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}
