/*
 * hato_cli.h - what the files of the hato command share: the helpers
 * hato.c keeps for commands that write into hatod's state directory, and
 * the commands that live in files of their own (hato_dkim.c).
 */
#ifndef HATO_CLI_H
#define HATO_CLI_H

struct conf;

/* An exit code (sysexits.h) for errno e, other when none fits better. */
int users_exit_code(int e, int other);

/* As root, give path (just made by hato) to hatod's user and group; 0 or
 * an exit code, with the reason on stderr. */
int give_to_daemon(const struct conf *c, const char *path);

/* Create the state directory (0700, hatod's) when missing; 0 or an exit code. */
int prepare_state_dir(const struct conf *c);

/* hato dkim keygen | check (hato_dkim.c); argv[0] is "dkim". */
int cmd_dkim(const struct conf *c, int argc, char **argv);

#endif
