/*
 * notify.h - tell the service manager how the daemon is doing: the
 * NOTIFY_SOCKET datagram protocol of sd_notify(3), without libsystemd.
 *
 * systemd (Type=notify) names a unix datagram socket in $NOTIFY_SOCKET: a
 * path, or "@name" in the abstract namespace.  Each call sends one
 * datagram of newline-separated assignments ("READY=1").  Without
 * $NOTIFY_SOCKET every call does nothing and succeeds, so hatod started
 * any other way is unaffected.  A failed send returns false with errno
 * set; the caller logs it and goes on (the manager then times the start
 * or reload out, which is its business).
 */
#ifndef HATO_NOTIFY_H
#define HATO_NOTIFY_H

#include <stdbool.h>

/* Send state (e.g. "READY=1" or "STOPPING=1") to $NOTIFY_SOCKET, if set. */
bool notify_send(const char *state);

/* "RELOADING=1" with MONOTONIC_USEC=, as sd_notify(3) asks of a reload. */
bool notify_reloading(void);

#endif
