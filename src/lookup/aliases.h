/*
 * aliases.h - the aliases file ([delivery] aliases_file), /etc/aliases
 * syntax.
 *
 *   # comment                      (first non-blank character '#')
 *   postmaster: root
 *   root:       alice, bob@example.net
 *   sales@example.org: alice,      (a line that starts with blank space
 *               carol              continues the entry above it)
 *   list:       "|/usr/bin/list-handler --name list", /var/mail/list.archive
 *   alice:      \alice, alice@elsewhere.example   (\name: the mailbox itself)
 *
 * A name is a local part ("user": the alias applies in every local domain)
 * or "user@domain" (that domain only, and it wins over "user").  Names are
 * case-insensitive and may be quoted ("john doe": ...), and each may appear
 * only once.  Targets are separated by commas (a comma inside double quotes
 * is text); a target is a local name (same domain as the alias), a full
 * address (local or remote; "<addr>" is accepted), "|command", "/file",
 * "\name" (the mailbox name, bypassing aliases, as in sendmail), each
 * optionally in double quotes.  Commas inside an unquoted command or file
 * name end it; quote those.  Comments are whole lines only: '#' after a
 * target is part of it (and makes it a syntax error).  ":include:" is
 * refused: the list belongs in this file.  Whether a command or file target
 * may be used is local.c's decision ([delivery] alias_commands,
 * alias_files), not the parser's.
 *
 * Failure: a missing or unreadable file is an error naming it; a syntax
 * error (no ':', bad name or target, a continuation with nothing to
 * continue, an entry without targets, a duplicate name, a NUL byte) names
 * file:line, and the whole file is refused, because half an aliases file
 * sends mail to the wrong place.  errno: the system's for I/O, EINVAL for
 * a malformed file, EFBIG for one over ALIASES_FILE_MAX.
 *
 * Threads: one struct aliases belongs to one thread.  The pointers that
 * aliases_lookup() returns stay valid until the next successful
 * aliases_refresh() or aliases_free().
 */
#ifndef HATO_ALIASES_H
#define HATO_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

/* Largest aliases file that is read at all. */
#define ALIASES_FILE_MAX (16 * 1024 * 1024)

struct aliases;

/* Load path; NULL gives an empty set that never changes.  NULL with err
 * (and errno) on failure. */
struct aliases *aliases_open(const char *path, char *err, size_t errsz);

/* Re-read when the file's inode, size or mtime changed - a stat otherwise.
 * On an error keep the old contents and return false with err; a bad
 * version is parsed once (until it changes, refresh repeats its error). */
bool aliases_refresh(struct aliases *al, char *err, size_t errsz);

void aliases_free(struct aliases *al);

/* The targets of local@domain, else those of local (domain NULL or "":
 * local only), or NULL; *n is their count.  local may be quoted. */
const char *const *aliases_lookup(const struct aliases *al, const char *local, const char *domain,
				  size_t *n);

/* The targets of exactly name ("user" or "user@domain", any case), or
 * NULL: no fallback from user@domain to user. */
const char *const *aliases_get(const struct aliases *al, const char *name, size_t *n);

/* Number of entries. */
size_t aliases_count(const struct aliases *al);

/* Call fn for every entry, in name order; name is in lower case, unquoted;
 * line is where it starts in the file. */
void aliases_each(const struct aliases *al,
		  void (*fn)(const char *name, const char *const *targets, size_t n, unsigned line,
			     void *arg),
		  void *arg);

/* The path read, or NULL. */
const char *aliases_path(const struct aliases *al);

/* A local part as aliases compare it: surrounding double quotes and their
 * backslash escapes removed, ASCII letters in lower case.  False when it
 * does not fit in outsz or the quoting is broken. */
bool aliases_fold_local(const char *local, char *out, size_t outsz);

#endif
