/*
 * hato.c - the command line: `hato queue` lists the spool.  It reads the
 * spool directly, so it works whether or not hatod is running; it finds
 * the spool like hatod does (-c FILE, $HATO_CONFIG, $HATO_STATE, or the
 * built-in ./var/hato).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "envelope.h"
#include "queue.h"

/* Usage text. */
static void usage(FILE *f)
{
	fprintf(f, "usage: hato [-c FILE] COMMAND\n"
		   "commands:\n"
		   "  queue     list queued messages: ID, age, size, sender, recipients\n"
		   "  version   print the version\n");
}

/* "3d4h", "12m", "40s": an age for people. */
static void format_age(time_t secs, char *buf, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(buf, size, "%lldd%lldh", (long long)secs / 86400,
			 (long long)(secs % 86400) / 3600);
	else if (secs >= 3600)
		snprintf(buf, size, "%lldh%lldm", (long long)secs / 3600, (long long)(secs % 3600) / 60);
	else if (secs >= 60)
		snprintf(buf, size, "%lldm", (long long)secs / 60);
	else
		snprintf(buf, size, "%llds", (long long)secs);
}

struct listing {
	size_t count;
	time_t now;
};

/* Print one queued message. */
static void print_message(const struct envelope *e, uint64_t msg_size, void *arg)
{
	struct listing *l = arg;
	char age[32];

	format_age(l->now - e->arrival, age, sizeof(age));
	printf("%-20s %6s %9llu %s\n", e->id, age, (unsigned long long)msg_size, e->sender);
	for (size_t i = 0; i < e->nrcpts; i++)
		printf("%38s %s\n", "", e->rcpts[i].addr);
	l->count++;
}

/* hato queue */
static int cmd_queue(const struct conf *c)
{
	struct listing l = {0, time(NULL)};
	char err[512];

	printf("%-20s %6s %9s %s\n", "ID", "AGE", "SIZE", "SENDER / RECIPIENTS");
	if (!queue_scan(c->state_dir, print_message, &l, err, sizeof(err))) {
		fprintf(stderr, "hato: %s\n", err);
		return 1;
	}
	printf("-- %zu message%s in %s/queue\n", l.count, l.count == 1 ? "" : "s", c->state_dir);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = getenv("HATO_CONFIG");
	struct conf *c;
	char err[1024];
	int ch, rc;

	while ((ch = getopt(argc, argv, "+c:hV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hato %s\n", HATO_VERSION);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 64;
	}
	if (strcmp(argv[optind], "version") == 0) {
		printf("hato %s\n", HATO_VERSION);
		return 0;
	}
	if (path != NULL && *path == '\0')
		path = NULL;
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "hato: %s\n", err);
		return 78;
	}
	if (strcmp(argv[optind], "queue") == 0) {
		rc = cmd_queue(c);
	} else {
		fprintf(stderr, "hato: unknown command \"%s\"\n", argv[optind]);
		usage(stderr);
		rc = 64;
	}
	conf_free(c);
	return rc;
}
