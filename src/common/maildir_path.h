/*
 * maildir_path.h - the one rule for where a local mailbox lives on disk.
 *
 * maildir_path() turns the [delivery] mailbox_path template into the
 * Maildir directory of one recipient, and refuses names that could climb
 * out of the tree or hide in it.  Delivery (mda/maildir.c, through the
 * scheduler) uses it to find the directory; recipient lookup
 * (lookup/local.c) uses the same function at RCPT, so a local part that
 * can never become a Maildir is refused there (553 5.1.3) instead of
 * being accepted and bounced later.  Pure and thread-safe.
 */
#ifndef HATO_MAILDIR_PATH_H
#define HATO_MAILDIR_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Room for an expanded mailbox_path, NUL included: delivery and the RCPT
 * check use this one size, so a name that fits one fits the other. */
#define MAILDIR_PATH_MAX 4096

/*
 * Expand a mailbox_path template into out: "%d" is the domain, "%u" the user
 * (both lower-cased ASCII; non-ASCII kept), "%%" a percent sign.  Refuses
 * (false) a user or domain that is empty, contains '/', or starts with '.',
 * any other '%' sequence, or a result that does not fit in outsz.
 */
bool maildir_path(const char *tmpl, const char *user, const char *domain, char *out, size_t outsz);

#endif
