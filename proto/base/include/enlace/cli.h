/*
 * enlace cli: the command-line kit of the five programs (enlace,
 * enlace-agent, enlace-broker, enlace-keys, enlace-audit): exit codes, a
 * table of subcommands, long options checked against what each command
 * takes, usage errors, and the daemons' log lines.
 *
 * Every function here is for a program's main thread: getopt_long keeps
 * its state in globals.
 */
#ifndef ENLACE_CLI_H
#define ENLACE_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit status of every program: 0 success, 1 failure (a verification that
 * fails included), 2 usage error. */
enum { ENL_EXIT_OK = 0, ENL_EXIT_FAIL = 1, ENL_EXIT_USAGE = 2 };

/* One subcommand: `fn` gets argv from the command's name on. */
struct enl_cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;	/* one line for the program's help */
};

/* A program made of subcommands. */
struct enl_cli {
	const char *prog;			/* "enlace-audit" */
	const struct enl_cli_cmd *cmds;		/* ends with a NULL name */
	const char *usage;	/* the help above the command list (synopsis) */
	const char *epilogue;	/* the help below it; may be NULL */
};

/* The program's help: usage, every command with its summary, epilogue. */
void enl_cli_help(const struct enl_cli *cli, FILE *fp);

/* The command of that name, or NULL. */
const struct enl_cli_cmd *enl_cli_find(const struct enl_cli *cli, const char *name);

/*
 * Runs the command argv[1] names (--help, -h and help print the help
 * and return 0). With `hoist`, options written before the command
 * (`enlace --socket S status`) are moved after it; `hoist` names the one
 * option whose value could look like a command. Returns the command's
 * exit status, or ENL_EXIT_USAGE with the help on stderr.
 */
int enl_cli_run(const struct enl_cli *cli, int argc, char **argv, const char *hoist);

/* Prints "PROG: MSG" and the command's usage to stderr; ENL_EXIT_USAGE. */
int enl_cli_usage_error(const char *prog, const char *msg, const char *usage);
/* The same for a command's synopsis `line`: "PROG: MSG\nusage: LINE". */
int enl_cli_usage_line(const char *prog, const char *msg, const char *line);
/* Prints "PROG: WHAT: <enl_strerror(err)>" to stderr; ENL_EXIT_FAIL. */
int enl_cli_fail(const char *prog, const char *what, int err);

/*
 * Parses long options (no short ones) from argv[1] on. `opts` is the
 * program's whole option table; `allowed` lists (0-terminated) the `val`s
 * this command takes, NULL for all. Each option is handed to
 * set(ctx, val, optarg) (NULL for an option without a value), which
 * returns NULL, or a message for a bad value (a usage error). The option
 * `help_val` (--help) is taken by every command: it prints `help` (or,
 * if NULL, `usage`) to stdout.
 * Returns -1 to go on, with *first the index of the first positional
 * argument; or the exit status to end with: 0 after --help,
 * ENL_EXIT_USAGE (the message and `usage` printed to stderr).
 */
struct enl_cli_opts {
	const char *prog;
	const struct option *opts;
	int help_val;
	const char *(*set)(void *ctx, int val, const char *arg);
};
int enl_cli_parse(const struct enl_cli_opts *o, int argc, char **argv, const int *allowed,
		  const char *usage, const char *help, void *ctx, int *first);

/*
 * enl_cli_parse for one command of a program of commands: `line` is its
 * synopsis (printed after "usage: "), `help` what --help says below it
 * (may be NULL). On -1 (go on), *pargc and *pargv are the positional
 * arguments.
 */
int enl_cli_command(const struct enl_cli_opts *o, int argc, char **argv, const int *allowed,
		    const char *line, const char *help, void *ctx, int *pargc, char ***pargv);

/*
 * What the two daemons share: `--config FILE [--check-config] [--help]`.
 * Returns -1 to go on (with *config and *check set), or the exit status
 * (0 after --help, 2 on a usage error, with the message printed).
 */
int enl_daemon_args(int argc, char **argv, const char *prog, const char *usage,
		    const char **config, bool *check);

/* One log line to stderr: "TIME PROG: message". */
void enl_logv(const char *prog, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#endif
