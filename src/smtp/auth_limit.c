/*
 * auth_limit.c - failed-AUTH counters per client address, in a fixed table.
 */
#include "auth_limit.h"

#include <netinet/in.h>
#include <string.h>

#include "conf.h"

#define AUTH_LIMIT_SLOTS 1024

struct slot {
	unsigned char addr[16]; /* IPv4 as v4-mapped IPv6 */
	bool used;
	unsigned failures;
	time_t window_start;
	time_t locked_until;
};

static struct slot table[AUTH_LIMIT_SLOTS];

/* The 16-octet key of an address. */
static void addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

/* The slot of an address, or NULL. */
static struct slot *slot_find(const unsigned char key[16])
{
	for (size_t i = 0; i < AUTH_LIMIT_SLOTS; i++)
		if (table[i].used && memcmp(table[i].addr, key, 16) == 0)
			return &table[i];
	return NULL;
}

/* See auth_limit.h. */
bool auth_limit_locked(const struct limits *lim, const struct sockaddr *sa, time_t now)
{
	unsigned char key[16];
	struct slot *s;

	(void)lim;
	addr_key(sa, key);
	s = slot_find(key);
	return s && s->locked_until > now;
}

/* See auth_limit.h. */
bool auth_limit_fail(const struct limits *lim, const struct sockaddr *sa, time_t now)
{
	unsigned char key[16];
	struct slot *s;

	addr_key(sa, key);
	if ((s = slot_find(key)) == NULL) {
		/* a free slot, else the one whose window started longest ago */
		s = &table[0];
		for (size_t i = 0; i < AUTH_LIMIT_SLOTS; i++) {
			if (!table[i].used) {
				s = &table[i];
				break;
			}
			if (table[i].locked_until <= now && table[i].window_start < s->window_start)
				s = &table[i];
		}
		memset(s, 0, sizeof(*s));
		memcpy(s->addr, key, 16);
		s->used = true;
	}
	if (now - s->window_start >= (time_t)lim->auth_client_window) {
		s->window_start = now;
		s->failures = 0;
	}
	if (++s->failures >= lim->auth_client_failures && s->locked_until <= now) {
		s->locked_until = now + (time_t)lim->auth_client_lockout;
		s->failures = 0;
		s->window_start = now;
		return true;
	}
	return false;
}
