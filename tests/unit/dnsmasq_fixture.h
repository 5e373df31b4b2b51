/*
 * dnsmasq_fixture.h - a private DNS server for unit tests: Debian's dnsmasq
 * (package dnsmasq-base) in the foreground on 127.0.0.1 and a free port,
 * serving the records a test gives as lines of dnsmasq's configuration
 * ("txt-record=x.test,\"v=spf1 -all\"").  Names under .test that it does
 * not define get NXDOMAIN, a defined name asked for a type it lacks an
 * empty answer (NODATA), and "broken.test" and below go to a socket that
 * never answers.  Stopped by its PID.  The same setup as
 * tests/e2e/dnsserver.py, for C tests.
 */
#ifndef HATO_TEST_DNSMASQ_FIXTURE_H
#define HATO_TEST_DNSMASQ_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DNSMASQ_PATH "/usr/sbin/dnsmasq"
#define DNSMASQ_START_TRIES 5
#define DNSMASQ_START_MS 10000

struct dnsmasq {
	char dir[64];
	char conf[96];
	int port;
	pid_t pid;
	int blackhole; /* queries for broken.test go here and are never read */
};

/* A free UDP port on 127.0.0.1 (free when asked). */
static inline int dnsmasq_free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		port = -1;
	else
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Does the server answer a query for ready.test within ms? */
static inline int dnsmasq_answers(int port, int ms)
{
	static const unsigned char q[] = {0x12, 0x34, 1,   0,   0,   1,   0,   0,   0, 0,
					  0,    0,    5,   'r', 'e', 'a', 'd', 'y', 4, 't',
					  'e',  's',  't', 0,   0,   1,   0,   1};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	unsigned char buf[512];
	struct pollfd pfd;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ok = 0;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (fd < 0)
		return 0;
	if (sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, sizeof(sin)) ==
	    (ssize_t)sizeof(q)) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, ms) == 1 && recv(fd, buf, sizeof(buf), 0) >= 12)
			ok = 1;
	}
	close(fd);
	return ok;
}

/* Start dnsmasq with the configuration lines in records ("a\nb\n"), and
 * extra, a further line or NULL.  0 on success. */
static inline int dnsmasq_start(struct dnsmasq *d, const char *records)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	FILE *f;

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	strcpy(d->dir, "/tmp/hato-dnsmasq-XXXXXX");
	if (mkdtemp(d->dir) == NULL)
		return -1;
	snprintf(d->conf, sizeof(d->conf), "%s/dnsmasq.conf", d->dir);
	d->blackhole = socket(AF_INET, SOCK_DGRAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (d->blackhole < 0 || bind(d->blackhole, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(d->blackhole, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	f = fopen(d->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
		"no-resolv\nno-hosts\nbind-interfaces\nlisten-address=127.0.0.1\n"
		"cache-size=0\nlog-facility=%s/dnsmasq.log\nlocal=/test/\n"
		"server=/broken.test/127.0.0.1#%d\n%s\n",
		d->dir, ntohs(sin.sin_port), records);
	fclose(f);
	for (int attempt = 0; attempt < DNSMASQ_START_TRIES; attempt++) {
		char portarg[32], confarg[128];

		d->port = dnsmasq_free_port();
		snprintf(portarg, sizeof(portarg), "--port=%d", d->port);
		snprintf(confarg, sizeof(confarg), "--conf-file=%s", d->conf);
		d->pid = fork();
		if (d->pid < 0)
			return -1;
		if (d->pid == 0) {
			execl(DNSMASQ_PATH, DNSMASQ_PATH, "--keep-in-foreground", confarg, portarg,
			      (char *)NULL);
			_exit(127);
		}
		for (int waited = 0; waited < DNSMASQ_START_MS; waited += 50) {
			int st;

			if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
				d->pid = -1;
				break; /* the port was taken meanwhile: try another */
			}
			if (dnsmasq_answers(d->port, 50))
				return 0;
		}
		if (d->pid > 0) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->pid = -1;
		}
	}
	return -1;
}

/* Stop the server (SIGTERM to its PID) and remove its directory. */
static inline void dnsmasq_stop(struct dnsmasq *d)
{
	char path[128];

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
	if (d->blackhole >= 0)
		close(d->blackhole);
	d->blackhole = -1;
	snprintf(path, sizeof(path), "%s/dnsmasq.log", d->dir);
	unlink(path);
	unlink(d->conf);
	rmdir(d->dir);
}

#endif
