#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "enlace/base.h"
#include "enlace/cli.h"

void
enl_cli_help(const struct enl_cli *cli, FILE *fp)
{
	fputs(cli->usage, fp);
	fputs("\ncommands:\n", fp);
	for (const struct enl_cli_cmd *c = cli->cmds; c->name != NULL; c++)
		fprintf(fp, "  %-13s %s\n", c->name, c->summary);
	if (cli->epilogue != NULL)
		fprintf(fp, "\n%s", cli->epilogue);
}

const struct enl_cli_cmd *
enl_cli_find(const struct enl_cli *cli, const char *name)
{
	for (const struct enl_cli_cmd *c = cli->cmds; c->name != NULL; c++)
		if (strcmp(name, c->name) == 0)
			return c;
	return NULL;
}

int
enl_cli_run(const struct enl_cli *cli, int argc, char **argv, const char *hoist)
{
	const struct enl_cli_cmd *c;

	if (argc < 2) {
		enl_cli_help(cli, stderr);
		return ENL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		enl_cli_help(cli, stdout);
		return ENL_EXIT_OK;
	}
	/* options before the command go after it */
	for (int at = 2; hoist != NULL && argv[1][0] == '-' && at < argc; at++)
		if (enl_cli_find(cli, argv[at]) != NULL && strcmp(argv[at - 1], hoist) != 0) {
			char *cmd = argv[at];
			memmove(argv + 2, argv + 1, (size_t)(at - 1) * sizeof(*argv));
			argv[1] = cmd;
			break;
		}
	if ((c = enl_cli_find(cli, argv[1])) != NULL)
		return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", cli->prog, argv[1]);
	enl_cli_help(cli, stderr);
	return ENL_EXIT_USAGE;
}

int
enl_cli_usage_error(const char *prog, const char *msg, const char *usage)
{
	fprintf(stderr, "%s: %s\n%s", prog, msg, usage);
	return ENL_EXIT_USAGE;
}

int
enl_cli_usage_line(const char *prog, const char *msg, const char *line)
{
	fprintf(stderr, "%s: %s\nusage: %s\n", prog, msg, line);
	return ENL_EXIT_USAGE;
}

int
enl_cli_fail(const char *prog, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, enl_strerror(err));
	return ENL_EXIT_FAIL;
}

/* What is wrong with the option getopt_long just returned as `c` ('?', or
 * an option of the table this command does not take), by its long name
 * (argv[optind - 1] is the value when the option takes one). */
static void
option_fault(const struct option *opts, char **argv, int c, char *msg, size_t cap)
{
	const struct option *o = opts;

	for (; o->name != NULL && o->val != (c == '?' ? optopt : c); o++)
		;
	if (c != '?' && o->name != NULL)	/* a known option another command takes */
		snprintf(msg, cap, "option '--%s' is not one of this command's", o->name);
	else if (optopt != 0 && o->name != NULL)
		snprintf(msg, cap, "option '--%s' needs a value", o->name);
	else
		snprintf(msg, cap, "unknown option '%s'", argv[optind - 1]);
}

static bool
allowed_has(const int *allowed, int c)
{
	if (allowed == NULL)
		return true;
	for (; *allowed; allowed++)
		if (*allowed == c)
			return true;
	return false;
}

int
enl_cli_parse(const struct enl_cli_opts *o, int argc, char **argv, const int *allowed,
	      const char *usage, const char *help, void *ctx, int *first)
{
	const char *bad;
	char msg[256];
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", o->opts, NULL)) != -1) {
		if (c != '?' && c == o->help_val) {
			fputs(help != NULL ? help : usage, stdout);
			return ENL_EXIT_OK;
		}
		if (c == '?' || c == ':' || (c != o->help_val && !allowed_has(allowed, c))) {
			option_fault(o->opts, argv, c, msg, sizeof(msg));
			return enl_cli_usage_error(o->prog, msg, usage);
		}
		if ((bad = o->set(ctx, c, optarg)) != NULL)
			return enl_cli_usage_error(o->prog, bad, usage);
	}
	*first = optind;
	return -1;
}

int
enl_daemon_args(int argc, char **argv, const char *prog, const char *usage,
		const char **config, bool *check)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*config = NULL;
	*check = false;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *config = optarg; break;
		case 'k': *check = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (optopt == 'c')
				fprintf(stderr, "%s: --config needs a file\n%s", prog, usage);
			else
				fprintf(stderr, "%s: unknown option '%s'\n%s", prog,
					argv[optind - 1], usage);
			return 2;
		}
	}
	if (*config == NULL || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	return -1;
}

void
enl_logv(const char *prog, const char *fmt, va_list ap)
{
	char t[32], line[1024];

	enl_time_format((int64_t)time(NULL), t);
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "%s %s: %s\n", t, prog, line);
}

int
enl_cli_command(const struct enl_cli_opts *o, int argc, char **argv, const int *allowed,
		const char *line, const char *help, void *ctx, int *pargc, char ***pargv)
{
	char usage[2048], full[8192];
	int first, ret;

	snprintf(usage, sizeof(usage), "usage: %s\n", line);
	if (help != NULL)
		snprintf(full, sizeof(full), "usage: %s\n\n%s", line, help);
	ret = enl_cli_parse(o, argc, argv, allowed, usage, help != NULL ? full : NULL, ctx, &first);
	if (ret < 0) {
		*pargc = argc - first;
		*pargv = argv + first;
	}
	return ret;
}
