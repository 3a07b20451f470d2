/* The routing policy (policy.h): what its files share, the rules as
 * parsed. */
#ifndef ENLACE_BROKER_POLICY_INT_H
#define ENLACE_BROKER_POLICY_INT_H

#include "policy.h"

#define MAX_WORDS 256

#define MAX_VALUES 256
#define RULES_MAX 10000
#define GROUPS_MAX 1000

/* One condition on one side: the value must be one of the set. */
enum dim { DIM_AGENCY, DIM_KIND, DIM_COUNTRY, DIM_COUNT };

typedef char policy_id[ENL_ID_MAX + 1];

/* The values are an ENL_VEC of at most MAX_VALUES (v, n, cap, max: the
 * enl_vec macros work on a set). */
struct set {
	policy_id *v;			/* agency ids or country codes */
	size_t n, cap, max;
	bool used;
	uint32_t kinds;			/* DIM_KIND: bit k for kind k */
	char what[ENL_ID_MAX + 16];	/* how it was written, for explain */
};

struct side {
	bool any;
	/* a side may name several country sets ("country AR and group
	 * MERCOSUR"): each must hold */
	struct set c[DIM_COUNT];
	struct set groups[8];
	size_t n_groups;
};

struct rule {
	char name[POLICY_NAME_MAX + 1];
	bool allow;
	unsigned line;
	bool has_from, has_to;
	struct side from, to;
	bool same_country;
	uint32_t types;		/* 0: any */
	int tlp_max;		/* 0: any */
	uint64_t size_max;	/* 0: any */
	int forward;		/* -1 any, 0 only originals, 1 only forwards */
};

struct group {
	char name[POLICY_NAME_MAX + 1];
	struct set countries;
};

struct policy {
	ENL_VEC(struct rule) rules;	/* at most RULES_MAX */
	ENL_VEC(struct group) groups;	/* at most GROUPS_MAX */
};

/* policy.c */
int set_add(struct set *s, const char *v);

#endif
