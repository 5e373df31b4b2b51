/*
 * users.h - the SMTP AUTH password file (RFC 4954 submission).
 *
 * One user a line, "name:hash", where hash is a crypt(3) hash from
 * libxcrypt: yescrypt ("$y$", what password_hash makes), or SHA-512-crypt
 * ("$6$") and bcrypt ("$2b$", "$2y$", "$2a$") made elsewhere; scrypt
 * ("$7$") and gost-yescrypt ("$gy$") pass too.  DES, MD5, SHA-256-crypt
 * and the rest of what libxcrypt calls legacy are refused.  Blank lines
 * and lines that start with '#' are ignored and kept when the file is
 * edited.  The file is mode 0600, owned by the daemon user (hatod runs as
 * it and must read it).  A name is 1-64 characters of
 * [A-Za-z0-9._+-@] (so "alice@example.org" can be a login); lookups are
 * exact and case-sensitive.
 *
 * Loading: a missing file is an empty database; a malformed line (bad name,
 * no ':', a hash that is not a complete hash of an accepted method, a
 * duplicate name, a line too long) is an error naming file:line, and the
 * whole file is refused.  userdb_refresh() re-reads only when the file's
 * inode, size or mtime changed and keeps the old contents when the new file
 * is bad, so a broken edit never locks everybody out.  An in-place rewrite
 * of the same size within one clock tick of the last one is not seen (the
 * file systems' mtime is that coarse): editors that rename, and
 * userdb_set(), make a new inode every time.
 *
 * Editing (userdb_set, userdb_delete) is read-modify-write under an
 * exclusive lock on "<file>.lock" (USERDB_LOCK_SUFFIX), written with
 * durable_write_file(), and keeps the file's owner and group; the result is
 * always mode 0600.  A lock or users file that an edit creates belongs to
 * whoever ran it: the caller gives it to the daemon's user (hato does).
 *
 * On failure every function that takes err fills it with one line and sets
 * errno: the system's errno for I/O (EACCES, EPERM, ENOSPC, ...), EINVAL for
 * a malformed file or argument, ENOENT from userdb_delete for "no such
 * user".  Passwords are never logged, printed or kept: buffers that held
 * one are wiped.
 *
 * Threads: a struct userdb belongs to one thread (the event loop);
 * userdb_hash_for() returns a copy so the check itself, password_verify(),
 * can run on any thread.
 */
#ifndef HATO_USERS_H
#define HATO_USERS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest user name, in octets. */
#define USERDB_NAME_MAX 64
/* The edit lock is the users file's name with this appended. */
#define USERDB_LOCK_SUFFIX ".lock"
/* Largest users file that is read at all. */
#define USERDB_FILE_MAX (16 * 1024 * 1024)

struct userdb;

/* Load path; a missing file is an empty database (not an error); a
 * malformed line is an error naming file:line. */
struct userdb *userdb_open(const char *path, char *err, size_t errsz);

/* Re-read when the file changed (mtime, size or inode differ) - a cheap
 * stat otherwise; on an error keep the old contents and return false with
 * err.  A bad file is parsed once: until it changes again, refresh returns
 * false with the same message without reading it. */
bool userdb_refresh(struct userdb *db, char *err, size_t errsz);

void userdb_free(struct userdb *db);

size_t userdb_count(const struct userdb *db);

bool userdb_exists(const struct userdb *db, const char *user);

/* The hash to verify against: the user's, or a fixed dummy yescrypt hash of
 * the default cost when the user does not exist, so a check takes the same
 * time either way (for users whose hashes have the default cost).  Returns
 * a copy the caller frees: the check runs on another thread. */
char *userdb_hash_for(const struct userdb *db, const char *user);

/* Call fn for every user name, in strcmp order. */
void userdb_each(const struct userdb *db, void (*fn)(const char *user, void *arg), void *arg);

/* Is name a valid user name (see above)? */
bool userdb_name_ok(const char *name);

/* Pure and thread-safe (crypt_rn with its own struct crypt_data): does
 * password match hash?  The result is compared in constant time.  False
 * for a malformed or unsupported hash. */
bool password_verify(const char *password, const char *hash);

/* A new yescrypt hash of password (default cost, salt from the kernel);
 * NULL on failure or for an empty password.  The caller frees it. */
char *password_hash(const char *password);

/* Add user or replace its hash, durably (temp + fsync + rename + fsync
 * dir), keeping the file's owner and group when it exists; a new file is
 * mode 0600 and belongs to the caller.  The file must parse. */
bool userdb_set(const char *path, const char *user, const char *hash, char *err, size_t errsz);

/* Remove user, durably, as userdb_set; false + "no such user" (ENOENT) if
 * absent. */
bool userdb_delete(const char *path, const char *user, char *err, size_t errsz);

#endif
