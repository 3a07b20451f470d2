/* The routing policy (policy.h): what its files share, the rules as
 * parsed. */
#ifndef ENLACE_BROKER_POLICY_INT_H
#define ENLACE_BROKER_POLICY_INT_H

#include "policy.h"

#define MAX_WORDS 256

#define MAX_VALUES 256

/* One condition on one side: the value must be one of the set. */
enum dim { DIM_AGENCY, DIM_KIND, DIM_COUNTRY, DIM_COUNT };

struct set {
	bool used;
	size_t n;
	char (*v)[ENL_ID_MAX + 1];	/* agency ids or country codes */
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
	struct rule *rules;
	size_t n_rules;
	struct group *groups;
	size_t n_groups;
};

/* policy.c */
int set_add(struct set *s, const char *v);

#endif
