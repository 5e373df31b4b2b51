/*
 * users.c - the SMTP AUTH password file: parse, look up, refresh, verify,
 * edit.  See users.h for the format and the API.
 *
 * The file is read whole (at most USERDB_FILE_MAX, by filewatch.c, which
 * also tells when it changed) and parsed into an array sorted by name; a
 * bad line refuses the whole file, because a half-loaded file would
 * silently lock some users out.  Edits hold "<file>.lock" (an empty file
 * that stays), so two `hato user` runs cannot lose each other's change, and
 * under that lock a "<file>.tmp" can only be the leftover of a writer that
 * died, which is removed so durable_write_file's O_EXCL works.
 */
#include "users.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "errbuf.h"
#include "filewatch.h"
#include "strbuf.h"
#include "util.h"

/*
 * What unknown users are checked against: a yescrypt hash, at
 * password_hash's default cost ("j9T"), of a random password that was
 * thrown away.  It must stay a valid hash so that crypt does the full work.
 */
static const char dummy_hash[] =
	"$y$j9T$oXsJxl.9BFTRwlCZLDYMR0$YfIOhe0so.pqGpi.jBHdweOuS/NNrf191hYFACNsWh.";

/* Longest line: a name, ':', the longest hash crypt can return. */
#define USERDB_LINE_MAX (USERDB_NAME_MAX + 1 + CRYPT_OUTPUT_SIZE)

/* How the file is read: no file is an empty one, and a file that grows
 * while it is read is read on (up to USERDB_FILE_MAX). */
#define USERDB_READ (FILEWATCH_MISSING_EMPTY | FILEWATCH_MAY_GROW)

struct user_entry {
	char *user;
	char *hash;
	size_t off, len; /* the line in the file, its newline included */
	unsigned line;
};

struct userdb {
	char *path;
	struct user_entry *users; /* sorted by name */
	size_t nusers;
	struct filewatch fw; /* the version loaded, the last bad one */
};

/* See users.h. */
bool userdb_name_ok(const char *name)
{
	size_t n;

	for (n = 0; name[n] != '\0'; n++) {
		unsigned char c = (unsigned char)name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' || c == '-' ||
			  c == '@';
		if (!ok || n >= USERDB_NAME_MAX)
			return false;
	}
	return n > 0;
}

/* A character of crypt's base64 alphabet? */
static bool crypt64_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '/';
}

/*
 * The methods accepted, and the length of the hash proper (the part after
 * the last '$') in each: that length is what tells a complete hash from a
 * bare setting such as "$y$j9T$salt", which could never match.  DES, MD5,
 * SHA-256-crypt and the rest of what libxcrypt calls legacy are refused.
 */
static const struct {
	const char *prefix;
	size_t hash_len;
} hash_methods[] = {
	{"$y$", 43},  /* yescrypt, what password_hash makes */
	{"$gy$", 43}, /* gost-yescrypt */
	{"$7$", 43},  /* scrypt */
	{"$6$", 86},  /* SHA-512-crypt */
	{"$2b$", 53}, /* bcrypt: 22 octets of salt, then the hash */
	{"$2y$", 53}, {"$2a$", 53},
};

/* Is hash a complete hash of a method we accept?  libxcrypt has the last
 * word on the settings (cost, salt syntax). */
static bool hash_ok(const char *hash)
{
	size_t len = strlen(hash);
	const char *last;
	bool known = false;

	if (len >= CRYPT_OUTPUT_SIZE)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hash[i] <= ' ' || hash[i] > '~' || hash[i] == ':')
			return false;
	last = strrchr(hash, '$');
	if (last == NULL)
		return false;
	last++;
	for (size_t i = 0; i < sizeof(hash_methods) / sizeof(hash_methods[0]); i++)
		if (strncmp(hash, hash_methods[i].prefix, strlen(hash_methods[i].prefix)) == 0 &&
		    (size_t)(last - hash) > strlen(hash_methods[i].prefix) &&
		    strlen(last) == hash_methods[i].hash_len)
			known = true;
	if (!known)
		return false;
	for (const char *p = last; *p != '\0'; p++)
		if (!crypt64_char(*p))
			return false;
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK:
	case CRYPT_SALT_TOO_CHEAP:
		return true;
	default:
		return false;
	}
}

/* qsort order: by name. */
static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct user_entry *)a)->user, ((const struct user_entry *)b)->user);
}

/* bsearch order: a name against an entry. */
static int name_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct user_entry *)elem)->user);
}

/* The entry for user, or NULL. */
static const struct user_entry *entries_find(const struct user_entry *v, size_t n, const char *user)
{
	if (n == 0 || user == NULL)
		return NULL;
	return bsearch(user, v, n, sizeof(*v), name_cmp);
}

/* Free an entry array. */
static void entries_free(struct user_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].user);
		free(v[i].hash);
	}
	free(v);
}

/*
 * Parse len octets of the file at path into an array sorted by name.  Every
 * error names path:line; a name is printed only once it is known to be made
 * of safe characters, and a hash never is.
 */
static bool users_parse(const char *path, const char *buf, size_t len, struct user_entry **out,
			size_t *nout, char *err, size_t errsz)
{
	struct user_entry *v = NULL;
	size_t n = 0, off = 0;
	unsigned lineno = 0;

	while (off < len) {
		const char *p = buf + off, *nl = memchr(p, '\n', len - off), *colon;
		size_t linelen = nl != NULL ? (size_t)(nl - p) : len - off;
		size_t span = nl != NULL ? linelen + 1 : linelen;
		struct user_entry *e;

		lineno++;
		if (linelen == 0 || p[0] == '#') {
			off += span;
			continue;
		}
		if (memchr(p, '\0', linelen) != NULL) {
			set_err(err, errsz, EINVAL, "%s:%u: NUL byte in line", path, lineno);
			goto fail;
		}
		if (linelen > USERDB_LINE_MAX) {
			set_err(err, errsz, EINVAL, "%s:%u: line longer than %d octets", path,
				lineno, USERDB_LINE_MAX);
			goto fail;
		}
		colon = memchr(p, ':', linelen);
		if (colon == NULL) {
			set_err(err, errsz, EINVAL, "%s:%u: no ':' between user name and hash",
				path, lineno);
			goto fail;
		}
		v = xrealloc(v, (n + 1) * sizeof(*v));
		e = &v[n++];
		e->user = xstrndup(p, (size_t)(colon - p));
		e->hash = xstrndup(colon + 1, linelen - (size_t)(colon - p) - 1);
		e->off = off;
		e->len = span;
		e->line = lineno;
		if (!userdb_name_ok(e->user)) {
			set_err(err, errsz, EINVAL,
				"%s:%u: bad user name (1-%d characters of A-Z a-z 0-9 . _ + - @)",
				path, lineno, USERDB_NAME_MAX);
			goto fail;
		}
		if (!hash_ok(e->hash)) {
			set_err(err, errsz, EINVAL,
				"%s:%u: bad password hash for %s (want a complete yescrypt $y$, "
				"SHA-512-crypt $6$ or bcrypt $2b$ hash)",
				path, lineno, e->user);
			goto fail;
		}
		off += span;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), entry_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1].user, v[i].user) == 0) {
			unsigned a = v[i - 1].line, b = v[i].line;
			set_err(err, errsz, EINVAL, "%s:%u: duplicate user %s (also on line %u)",
				path, a > b ? a : b, v[i].user, a > b ? b : a);
			goto fail;
		}
	*out = v;
	*nout = n;
	return true;
fail:
	entries_free(v, n);
	return false;
}

/* filewatch parse callback: parse the file and, if all of it parsed,
 * replace the entries of the userdb arg. */
static bool userdb_replace(void *arg, const char *path, const char *buf, size_t len, char *err,
			   size_t errsz)
{
	struct userdb *db = arg;
	struct user_entry *v;
	size_t n;

	if (!users_parse(path, buf, len, &v, &n, err, errsz))
		return false;
	entries_free(db->users, db->nusers);
	db->users = v;
	db->nusers = n;
	return true;
}

/* See users.h. */
struct userdb *userdb_open(const char *path, char *err, size_t errsz)
{
	struct userdb *db = xcalloc(1, sizeof(*db));

	db->path = xstrdup(path);
	filewatch_init(&db->fw, db->path, USERDB_FILE_MAX, USERDB_READ, userdb_replace, db);
	if (!filewatch_load(&db->fw, err, errsz)) {
		int e = errno;

		userdb_free(db);
		errno = e;
		return NULL;
	}
	return db;
}

/* See users.h.  A read error is not remembered as a bad version
 * (filewatch.h): EACCES in fix_owner_mode's window passes at the next one. */
bool userdb_refresh(struct userdb *db, char *err, size_t errsz)
{
	return filewatch_refresh(&db->fw, err, errsz);
}

/* See users.h. */
void userdb_free(struct userdb *db)
{
	if (db == NULL)
		return;
	entries_free(db->users, db->nusers);
	free(db->path);
	free(db);
}

/* See users.h. */
size_t userdb_count(const struct userdb *db)
{
	return db->nusers;
}

/* See users.h. */
bool userdb_exists(const struct userdb *db, const char *user)
{
	return entries_find(db->users, db->nusers, user) != NULL;
}

/* See users.h. */
char *userdb_hash_for(const struct userdb *db, const char *user)
{
	const struct user_entry *e = entries_find(db->users, db->nusers, user);

	return xstrdup(e != NULL ? e->hash : dummy_hash);
}

/* See users.h. */
void userdb_each(const struct userdb *db, void (*fn)(const char *user, void *arg), void *arg)
{
	for (size_t i = 0; i < db->nusers; i++)
		fn(db->users[i].user, arg);
}

/* See users.h.  struct crypt_data is 32 KiB: on the heap, not on a worker
 * thread's stack, and wiped because it held the password. */
bool password_verify(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *out;
	bool ok = false;

	if (password == NULL || hash == NULL || !hash_ok(hash))
		return false;
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_rn(password, hash, cd, sizeof(*cd));
	/* the lengths are the stored hash's, not secret; the bytes are */
	if (out != NULL && out[0] != '*' && strlen(out) == strlen(hash))
		ok = CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* See users.h. */
char *password_hash(const char *password)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *out;
	char *hash = NULL;

	if (password == NULL || *password == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL)
		return NULL;
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_rn(password, setting, cd, sizeof(*cd));
	if (out != NULL && out[0] != '*' && hash_ok(out))
		hash = xstrdup(out);
	else
		errno = EINVAL;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return hash;
}

/* path + suffix in a fresh allocation. */
static char *path_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path) + strlen(suffix) + 1;
	char *p = xmalloc(n);

	snprintf(p, n, "%s%s", path, suffix);
	return p;
}

/* Split path into directory and file name for durable_write_file. */
static bool split_path(const char *path, char **dir, char **name)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		*dir = xstrdup(".");
		*name = xstrdup(path);
	} else {
		*dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
		*name = xstrdup(slash + 1);
	}
	if (**name == '\0' || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0) {
		free(*dir);
		free(*name);
		*dir = *name = NULL;
		return false;
	}
	return true;
}

/*
 * After the rename the file belongs to whoever wrote it, with the temp
 * file's mode (umask applied): give it back its old owner and group, and
 * mode 0600.  Until then a reader running as the old owner may fail to open
 * it; hatod then keeps its old copy and retries at the next refresh.
 */
static bool fix_owner_mode(const char *path, const struct stat *old, char *err, size_t errsz)
{
	struct stat st;
	bool changed = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY), e;

	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	if (old != NULL && (st.st_uid != old->st_uid || st.st_gid != old->st_gid)) {
		if (fchown(fd, old->st_uid, old->st_gid) != 0)
			goto fail;
		changed = true;
	}
	if ((st.st_mode & 07777) != 0600 || changed) {
		if (fchmod(fd, 0600) != 0) /* after fchown, which may clear bits */
			goto fail;
		changed = true;
	}
	if (changed && fsync(fd) != 0)
		goto fail;
	close(fd);
	return true;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	set_err(err, errsz, e, "%s: written, but cannot restore its owner and mode 0600: %s", path,
		strerror(e));
	return false;
}

/* Take the edit lock "<path>.lock"; the descriptor, or -1 with err. */
static int users_lock(const char *path, char *err, size_t errsz)
{
	char *lock = path_suffix(path, USERDB_LOCK_SUFFIX);
	/* 0644: empty, and whoever may edit the file later must open it too */
	int fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);

	if (fd < 0) {
		set_err(err, errsz, errno, "%s: %s", lock, strerror(errno));
		free(lock);
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		set_err(err, errsz, errno, "%s: cannot lock: %s", lock, strerror(errno));
		close(fd);
		free(lock);
		return -1;
	}
	free(lock);
	return fd;
}

/* Set user's hash, or delete user when hash is NULL: read, change, write
 * durably, all under the edit lock. */
static bool userdb_edit(const char *path, const char *user, const char *hash, char *err,
			size_t errsz)
{
	char *dir = NULL, *name = NULL, *tmp = NULL, *buf = NULL;
	struct user_entry *v = NULL;
	const struct user_entry *hit;
	struct filewatch_stamp stamp;
	struct stat old;
	struct strbuf out;
	size_t n = 0, len = 0;
	int lockfd = -1, e;
	bool ok = false;

	strbuf_init(&out);
	if (!userdb_name_ok(user)) {
		set_err(err, errsz, EINVAL,
			"bad user name (1-%d characters of A-Z a-z 0-9 . _ + - @)",
			USERDB_NAME_MAX);
		goto done;
	}
	if (hash != NULL && !hash_ok(hash)) {
		set_err(err, errsz, EINVAL, "bad password hash for %s", user);
		goto done;
	}
	if (!split_path(path, &dir, &name)) {
		set_err(err, errsz, EINVAL, "%s: not a file name", path);
		goto done;
	}
	/* nothing to delete from a file that is not there: no lock file either */
	if (hash == NULL && access(path, F_OK) != 0 && errno == ENOENT) {
		set_err(err, errsz, ENOENT, "no such user %s", user);
		goto done;
	}
	if ((lockfd = users_lock(path, err, errsz)) < 0)
		goto done;
	tmp = path_suffix(path, ".tmp");
	if (unlink(tmp) != 0 && errno != ENOENT) {
		set_err(err, errsz, errno, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	if (!filewatch_read(path, USERDB_FILE_MAX, USERDB_READ, &buf, &len, &stamp, &old, err,
			    errsz) ||
	    !users_parse(path, buf, len, &v, &n, err, errsz))
		goto done;
	if (stamp.present && geteuid() != 0 && old.st_uid != geteuid()) {
		set_err(err, errsz, EPERM, "%s: owned by uid %u: edit it as root or as that user",
			path, (unsigned)old.st_uid);
		goto done;
	}
	hit = entries_find(v, n, user);
	if (hash == NULL && hit == NULL) {
		set_err(err, errsz, ENOENT, "no such user %s", user);
		goto done;
	}
	if (hit != NULL) {
		strbuf_add(&out, buf, hit->off);
		if (hash != NULL)
			strbuf_printf(&out, "%s:%s\n", user, hash);
		strbuf_add(&out, buf + hit->off + hit->len, len - hit->off - hit->len);
	} else {
		strbuf_add(&out, buf, len);
		if (len > 0 && buf[len - 1] != '\n')
			strbuf_adds(&out, "\n");
		strbuf_printf(&out, "%s:%s\n", user, hash);
	}
	if (!durable_write_file(dir, name, out.s, out.len)) {
		set_err(err, errsz, errno, "%s: cannot write: %s", path, strerror(errno));
		goto done;
	}
	ok = fix_owner_mode(path, stamp.present ? &old : NULL, err, errsz);
done:
	e = errno;
	if (lockfd >= 0)
		close(lockfd); /* releases the lock */
	entries_free(v, n);
	strbuf_free(&out);
	free(buf);
	free(tmp);
	free(dir);
	free(name);
	errno = e;
	return ok;
}

/* See users.h. */
bool userdb_set(const char *path, const char *user, const char *hash, char *err, size_t errsz)
{
	if (hash == NULL) {
		set_err(err, errsz, EINVAL, "no password hash");
		return false;
	}
	return userdb_edit(path, user, hash, err, errsz);
}

/* See users.h. */
bool userdb_delete(const char *path, const char *user, char *err, size_t errsz)
{
	return userdb_edit(path, user, NULL, err, errsz);
}
