/*
 * maildir.h - local delivery into a Maildir (blocking: call it from a
 * worker thread, never from the event loop).
 *
 * The directory of a recipient comes from maildir_path() (common/
 * maildir_path.h, shared with the RCPT check).  maildir_deliver()
 * writes "Return-Path:" and "Delivered-To:" followed by the queued message
 * into dir/tmp/NAME with LF line endings (as other Maildir writers do),
 * fsyncs it, links it to dir/new/NAME,S=<size> and fsyncs new/; tmp/,
 * new/, cur/ (and missing parents) are created on demand, mode 0700.
 *
 * Failure: the outcome comes back in a struct delivery_result.  A full disk
 * or quota is OUTCOME_TEMPFAIL 4.3.1; any other I/O error, permission
 * problem or message that cannot be read is OUTCOME_TEMPFAIL 4.2.0, so the queue
 * keeps the message and retries.  On every failure the tmp file is removed
 * and nothing is left in new/.  After a delivery, files left in tmp/ by
 * deliveries cut short (a crash) are removed once they are 36 hours old.
 * Thread-safe.
 */
#ifndef HATO_MAILDIR_H
#define HATO_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "outcome.h"

/* The folder a message judged junk goes to, inside the recipient's Maildir
 * (a Maildir++ folder: what Dovecot shows as "Junk"). */
#define MAILDIR_JUNK ".Junk"

/* A file in tmp/ older than this (mtime and ctime) is a leftover of a
 * delivery cut short: removed (the Maildir convention's 36 hours). */
#define MAILDIR_TMP_MAX_AGE (36 * 3600)
/* tmp/ of one Maildir is swept at most this often (seconds), as Dovecot. */
#define MAILDIR_TMP_SWEEP_INTERVAL (8 * 3600)

/*
 * Deliver the queued message, the first msg_len octets of msg_fd (CRLF
 * lines, copied with each CRLF turned into LF and every other byte as it
 * is; read with pread from offset 0, so the fd's position does not matter
 * and the caller keeps it open), into the Maildir
 * at dir, preceded by "Return-Path: <return_path>" (given with its angle
 * brackets, "<>" for the null sender) and "Delivered-To: delivered_to"
 * (without brackets).  hostname goes into the unique file name; NULL means
 * gethostname().  The result is written to r; on OUTCOME_DELIVERED r->text
 * names the file in new/.
 */
void maildir_deliver(const char *dir, int msg_fd, uint64_t msg_len, const char *return_path,
		     const char *delivered_to, const char *hostname, struct delivery_result *r);

/*
 * Remove from dir/tmp/ every regular file whose mtime and ctime are both
 * more than MAILDIR_TMP_MAX_AGE before now; dot-files, directories and
 * links stay.  Returns how many went.  A missing tmp/ is nothing to do.
 */
size_t maildir_clean_tmp(const char *dir, time_t now);

/*
 * maildir_clean_tmp(dir, now) unless this process swept dir less than
 * MAILDIR_TMP_SWEEP_INTERVAL ago; logs what it removed, returns how many.
 * maildir_deliver() calls it after each delivery.
 */
size_t maildir_sweep_tmp(const char *dir, time_t now);

#endif
