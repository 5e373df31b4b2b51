/*
 * filewatch.h - a file that is read whole, of bounded size, and read again
 * only when it changes.
 *
 * A stamp (device, inode, size, mtime) tells one version of a file from
 * another.  filewatch_read() reads a whole file together with the stamp of
 * the descriptor it read, so the stamp describes exactly those bytes.  A
 * struct filewatch remembers the stamp of the version its owner loaded,
 * and the stamp and error of the last version that failed to parse:
 * filewatch_refresh() costs one stat() while nothing changed, and repeats
 * a bad version's error without reading it again until it changes.
 *
 * On any failure the owner keeps what it had: the parse callback replaces
 * the owner's contents only once the whole file parsed.  An error reading
 * the file is not remembered, so a file that cannot be opened for a moment
 * (EACCES while an editor puts its owner back) is read at the next refresh.
 * Errors fill err (errsz octets) and set errno: the system's for I/O,
 * EINVAL for something not a regular file, EFBIG for a file over the limit,
 * EAGAIN for one that grew while it was read (unless FILEWATCH_MAY_GROW),
 * whatever the parse callback sets for a bad file.
 */
#ifndef HATO_FILEWATCH_H
#define HATO_FILEWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* What tells one version of a file from another. */
struct filewatch_stamp {
	bool present; /* false: there was no file */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* filewatch_read's flags.  MISSING_EMPTY: no file reads as an empty one
 * whose stamp is not present, instead of ENOENT.  MAY_GROW: a file that
 * grew since its fstat is read on, in a buffer doubled while it is at most
 * max octets, instead of EAGAIN. */
#define FILEWATCH_MISSING_EMPTY 0x1
#define FILEWATCH_MAY_GROW 0x2

/*
 * Read the whole file at path, at most max octets, into *bufp
 * (NUL-terminated, caller frees) and *lenp, with its stamp and, if st is
 * not NULL, its stat (zeroed when missing).  A FIFO or other non-regular
 * file is refused without blocking.
 */
bool filewatch_read(const char *path, size_t max, unsigned flags, char **bufp, size_t *lenp,
		    struct filewatch_stamp *stamp, struct stat *st, char *err, size_t errsz);

/* Parse len octets of path (buf is NUL-terminated) and, only when all of it
 * parsed, replace arg's contents; false with err and errno otherwise. */
typedef bool filewatch_parse_fn(void *arg, const char *path, const char *buf, size_t len, char *err,
				size_t errsz);

struct filewatch {
	const char *path; /* the owner's: must outlive the filewatch */
	size_t max;
	unsigned flags;
	filewatch_parse_fn *parse;
	void *arg;
	struct filewatch_stamp stamp; /* of the version loaded */
	bool bad;                     /* bad_stamp is a version that did not parse */
	struct filewatch_stamp bad_stamp;
	char bad_err[512];
};

/* Watch path, read with filewatch_read(max, flags) and handed to parse(arg);
 * nothing is read yet. */
void filewatch_init(struct filewatch *fw, const char *path, size_t max, unsigned flags,
		    filewatch_parse_fn *parse, void *arg);

/* Read and parse the file, whatever its stamp; on a parse error remember
 * that version as bad. */
bool filewatch_load(struct filewatch *fw, char *err, size_t errsz);

/* filewatch_load() if the file changed since the last load - a stat()
 * otherwise; a version known bad gives its error again (EINVAL). */
bool filewatch_refresh(struct filewatch *fw, char *err, size_t errsz);

#endif
