/*
 * hatod.c - the hato daemon: read the configuration, bind the listeners,
 * drop privileges, open the spool, run the event loop until SIGTERM/SIGINT.
 *
 * Order matters: listeners are bound and TLS keys read while still root
 * (ports below 1024, root-only key files), then the process becomes the
 * unprivileged user for good, and only then is the spool opened, so every
 * spool file belongs to that user.
 *
 * Under systemd (Type=notify, etc/systemd/hatod.service) hatod says
 * READY=1 once its listeners accept and the spool is recovered,
 * RELOADING=1 and READY=1 around a SIGHUP reload, and STOPPING=1 when a
 * shutdown begins (notify.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "aliases.h"
#include "conf.h"
#include "control.h"
#include "checks.h"
#include "dns.h"
#include "intake_dkim.h"
#include "greylist.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
#include "queue.h"
#include "pickup.h"
#include "scheduler.h"
#include "server.h"
#include "tls.h"
#include "util.h"
#include "sqlmap.h"
#include "users.h"
#include "worker.h"

#define SHUTDOWN_GRACE_SECONDS 10
#define AUTH_THREADS 2 /* password checks (yescrypt) off the event loop */

/* Usage text. */
static void usage(FILE *f)
{
	fprintf(f, "usage: hatod [-fknvVh] [-c FILE]\n"
		   "  -c FILE  configuration file (default: built-in defaults)\n"
		   "  -f       stay in the foreground, log to stderr\n"
		   "  -k       print every configuration key with its default and exit\n"
		   "  -n       check the configuration and exit\n"
		   "  -v       verbose: log every command and reply\n"
		   "  -V       print the version and exit\n"
		   "  -h       this help\n");
}

/*
 * The maildrop directory: owned by the daemon user and the maildrop group,
 * mode 1730, so that `hato send` installed set-gid to that group (make
 * install) can add files but nobody can read or remove anyone else's.  The
 * state directory then needs o+x (0711) to be traversed.  Without the group
 * only root and the daemon user can drop mail (0700), and that is logged.
 */
static void prepare_maildrop(const struct conf *c, uid_t uid, gid_t gid)
{
	struct group *drop = getgrnam(c->maildrop_group);

	if (drop == NULL) {
		if (chown(c->maildrop_dir, uid, gid) != 0 || chmod(c->maildrop_dir, 0700) != 0)
			fatal("event=startup error=\"cannot set up %s\"", c->maildrop_dir);
		log_info(
			"event=maildrop dir=%s mode=0700 note=\"group %s does not exist: only root "
			"can use sendmail mode (make install creates the group)\"",
			c->maildrop_dir, c->maildrop_group);
		return;
	}
	if (chown(c->maildrop_dir, uid, drop->gr_gid) != 0 || chmod(c->maildrop_dir, 01730) != 0)
		fatal("event=startup error=\"cannot set up %s\"", c->maildrop_dir);
	chmod(c->state_dir, 0711);
}

/*
 * As root: look up the daemon user and create the state directory for it,
 * so that what is made before the drop (the self-signed certificate)
 * already belongs to that user.  As anyone else: nothing; *uid is -1.
 */
static void prepare_state(const struct conf *c, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	struct group *gr;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (!mkdir_parents(c->state_dir, 0700))
		fatal("event=startup error=\"cannot create state directory %s\"", c->state_dir);
	if (!mkdir_parents(c->maildrop_dir, 0700))
		fatal("event=startup error=\"cannot create maildrop directory %s\"",
		      c->maildrop_dir);
	if (geteuid() != 0)
		return;
	pw = getpwnam(c->user);
	if (pw == NULL)
		fatalx("event=startup error=\"user %s does not exist: create it (scripts/setup.sh "
		       "does: useradd --system --user-group --no-create-home --shell "
		       "/usr/sbin/nologin %s) or set [server] user\"",
		       c->user, c->user);
	gr = getgrnam(c->group);
	if (gr == NULL)
		fatalx("event=startup error=\"group %s does not exist: create it or set [server] "
		       "group\"",
		       c->group);
	if (pw->pw_uid == 0)
		fatalx("event=startup error=\"refusing to run as root: [server] user must be an "
		       "unprivileged user\"");
	if (chown(c->state_dir, pw->pw_uid, gr->gr_gid) != 0)
		fatal("event=startup error=\"cannot chown %s to %s\"", c->state_dir, c->user);
	*uid = pw->pw_uid;
	*gid = gr->gr_gid;
	prepare_maildrop(c, pw->pw_uid, gr->gr_gid);
}

/* Become uid/gid for good (only when started as root). */
static void drop_privileges(const struct conf *c, uid_t uid, gid_t gid)
{
	if (uid == (uid_t)-1)
		return;
	gid_t groups[2] = {gid, gid};
	struct group *drop = getgrnam(c->maildrop_group);

	/* the maildrop group too: drop files are user:maildrop_group 0640 */
	if (drop)
		groups[1] = drop->gr_gid;
	if (setgroups(drop ? 2 : 1, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0)
		fatal("event=startup error=\"cannot drop privileges to %s:%s\"", c->user, c->group);
	if (setuid(0) == 0)
		fatalx("event=startup error=\"privileges could be regained after the drop\"");
}

/* [metrics] listen: start counting and bind the endpoint (before the
 * privilege drop, like the SMTP listeners); NULL when it is off. */
static struct metrics_http *metrics_start(const struct conf *c, struct event_base *base)
{
	const char **names;
	struct metrics_http *mh;
	char err[512];
	const struct metrics_http_conf mc = {
		.addr = (const struct sockaddr *)&c->metrics.ss,
		.addrlen = c->metrics.sslen,
		.address = c->metrics.listen,
		.timeout = c->metrics.timeout,
		.request_max = c->metrics.request_max,
		.clients_max = c->metrics.clients_max,
	};

	if (c->metrics.listen == NULL)
		return NULL;
	names = xcalloc(c->nlisteners + 1, sizeof(*names));
	for (size_t i = 0; i < c->nlisteners; i++)
		names[i] = c->listeners[i].name;
	metrics_init(names, c->nlisteners);
	free(names);
	mh = metrics_http_open(base, &mc, err, sizeof(err));
	if (mh == NULL)
		fatalx("event=startup error=\"%s\"", err);
	return mh;
}

/* Allow as many descriptors as the hard limit: one per session. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Report a failed notification to the service manager (notify.h). */
static void notify_check(bool sent, const char *state)
{
	if (!sent)
		log_warn("event=notify state=%s error=\"cannot tell the service manager\"", state);
}

/* Force the loop to end when sessions do not drain in time. */
static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (queue_inflight(srv->queue) == 0) {
		log_warnx("event=shutdown_forced sessions=%zu", srv->nsessions);
		event_base_loopexit(srv->base, NULL);
	} else {
		struct timeval tv = {1, 0};
		evtimer_add(event_new(srv->base, -1, 0, grace_cb, srv), &tv);
	}
}

/* SIGTERM/SIGINT: stop accepting, 421 to sessions, finish commits. */
static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {SHUTDOWN_GRACE_SECONDS, 0};

	(void)what;
	if (srv->stopping)
		return;
	notify_check(notify_send("STOPPING=1"), "STOPPING");
	log_info("event=signal signal=%d action=shutdown", (int)sig);
	control_close(srv->control); /* no flush or delete while stopping */
	srv->control = NULL;
	pickup_stop(srv->pickup);
	scheduler_stop(srv->scheduler);
	server_stop(srv);
	evtimer_add(event_new(srv->base, -1, 0, grace_cb, srv), &tv);
}

/* SIGHUP: the reload, with RELOADING=1 before it and READY=1 after it for
 * the service manager. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)sig;
	(void)what;
	if (srv->stopping)
		return;
	log_info("event=signal signal=HUP action=reload");
	notify_check(notify_reloading(), "RELOADING");
	server_reload(srv);
	notify_check(notify_send("READY=1"), "READY");
}

int main(int argc, char **argv)
{
	const char *path = getenv("HATO_CONFIG");
	bool foreground = false, verbose = false, check = false;
	struct server srv;
	struct event *sigterm, *sigint, *sighup;
	struct metrics_http *metrics;
	char err[1024];
	uid_t uid;
	gid_t gid;
	int ch;

	while ((ch = getopt(argc, argv, "c:fknvVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'k':
			conf_print_keys(stdout);
			return fflush(stdout) == 0 ? 0 : 1;
		case 'n':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("hatod %s\n", HATO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (path != NULL && *path == '\0')
		path = NULL;
	memset(&srv, 0, sizeof(srv));
	srv.conf = conf_load(path, err, sizeof(err));
	if (srv.conf == NULL) {
		fprintf(stderr, "hatod: %s\n", err);
		return 1;
	}
	if (check) {
		printf("hatod: configuration %s is valid\n", path ? path : "(built-in defaults)");
		conf_free(srv.conf);
		return 0;
	}
	log_init("hatod", foreground, verbose);
	log_set_format(srv.conf->log_json ? LOG_FORMAT_JSON : LOG_FORMAT_KEYVALUE);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	srv.base = event_base_new();
	if (srv.base == NULL)
		fatalx("event=startup error=\"cannot create event base\"");
	if (!server_bind(&srv, err, sizeof(err)))
		fatalx("event=startup error=\"%s\"", err);
	metrics = metrics_start(srv.conf, srv.base);
	prepare_state(srv.conf, &uid, &gid);
	if (!tls_init(srv.conf, uid, gid, err, sizeof(err)))
		fatalx("event=startup error=\"%s\"", err);
	if (!relay_auth_load(srv.conf, err, sizeof(err))) /* root-only file: before the drop */
		fatalx("event=startup error=\"%s\"", err);
	if (!intake_dkim_init(srv.conf, err, sizeof(err))) /* the keys: before the drop too */
		fatalx("event=startup error=\"%s\"", err);
	drop_privileges(srv.conf, uid, gid);
	if (!foreground && daemon(1, 0) != 0)
		fatal("event=startup error=\"cannot daemonize\"");
	if (!dns_init(srv.base, srv.conf, err, sizeof(err)))
		fatalx("event=startup error=\"%s\"", err);
	if (!checks_init(srv.conf, err, sizeof(err)))
		fatalx("event=startup error=\"[checks] %s\"", err);
	srv.queue = queue_open(srv.conf->state_dir, srv.conf->commit_threads,
			       srv.conf->commit_syncfs, srv.base, err, sizeof(err));
	if (srv.queue == NULL)
		fatalx("event=startup error=\"%s\"", err);
	srv.users = userdb_open(srv.conf->users_file, err, sizeof(err));
	if (srv.users == NULL)
		fatalx("event=startup error=\"%s\"", err);
	if (srv.conf->aliases_file &&
	    (srv.aliases = aliases_open(srv.conf->aliases_file, err, sizeof(err))) == NULL)
		fatalx("event=startup error=\"%s\"", err);
	srv.workers = workers_new(srv.base, AUTH_THREADS);
	intake_dkim_start(srv.base);
	if (srv.conf->greylist_enabled &&
	    (srv.greylist = greylist_open(srv.conf, srv.base, srv.workers, err, sizeof(err))) ==
		    NULL)
		fatalx("event=startup error=\"%s\"", err);
	if (srv.conf->sql_backend != SQL_BACKEND_NONE &&
	    (srv.sqlmap = sqlmap_new(srv.conf, srv.base, err, sizeof(err))) == NULL)
		fatalx("event=startup error=\"%s\"", err);
	srv.scheduler = scheduler_new(srv.conf, srv.base, srv.queue);
	scheduler_load(srv.scheduler);
	srv.control = control_open(srv.base, srv.conf, srv.scheduler, err, sizeof(err));
	if (srv.control == NULL)
		fatalx("event=startup error=\"%s\"", err);
	srv.pickup = pickup_open(&srv);
	sigterm = evsignal_new(srv.base, SIGTERM, stop_cb, &srv);
	sigint = evsignal_new(srv.base, SIGINT, stop_cb, &srv);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	sighup = evsignal_new(srv.base, SIGHUP, hup_cb, &srv);
	evsignal_add(sighup, NULL);
	server_start(&srv);
	log_info("event=started version=%s config=%s state_dir=%s hostname=%s queued=%zu users=%zu "
		 "uid=%d",
		 HATO_VERSION, path ? path : "built-in", srv.conf->state_dir, srv.conf->hostname,
		 queue_count(srv.queue), userdb_count(srv.users), (int)getuid());
	notify_check(notify_send("READY=1"), "READY");
	if (foreground && !srv.conf->log_json) /* JSON: every stderr line is an object */
		for (size_t i = 0; i < srv.conf->nlisteners; i++)
			fprintf(stderr, "hatod: listening on %s (%s), state in %s\n",
				srv.conf->listeners[i].address, srv.conf->listeners[i].name,
				srv.conf->state_dir);
	event_base_dispatch(srv.base);
	control_close(srv.control);
	metrics_http_close(metrics);
	server_free(&srv);
	scheduler_free(srv.scheduler);
	workers_free(srv.workers);
	greylist_close(srv.greylist); /* after the workers: its last write is its own */
	sqlmap_free(srv.sqlmap);
	userdb_free(srv.users);
	aliases_free(srv.aliases);
	queue_close(srv.queue);
	pickup_close(srv.pickup);
	dns_shutdown();
	checks_shutdown();
	tls_shutdown();
	intake_dkim_shutdown();
	log_info("event=stopped");
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	metrics_free(); /* every thread that counted has ended */
	conf_free(srv.conf);
	return 0;
}
