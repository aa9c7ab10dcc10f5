/*
 * Per-client limits on /v1/realtime upgrades: which browser origins may
 * connect, how many sessions one client IP may hold, how fast it may open
 * them, and who the client is behind a proxy.
 *
 *   [server] allowed_origins   an upgrade whose Origin is not listed: 403
 *   [server] max_sessions_per_ip            concurrent sessions: 429
 *   [server] max_upgrades_per_second_per_ip token bucket (burst = the rate,
 *                                           at least 1): 429
 *   [server] trusted_proxies   X-Forwarded-For names the client, but only
 *                              when the TCP peer is one of these
 *
 * A client IP is an IPv4 address or an IPv6 /64 (one IPv6 host usually owns
 * a whole /64 and could otherwise change address at every connection).
 * State per client IP is kept only while it has sessions open or its token
 * bucket is not yet full again, and at most LIMITS_MAX_IDLE idle entries are
 * kept at all (the least recently seen go first), so memory stays bounded
 * whatever the number of addresses.
 *
 * Refusals are counted in voxray_rate_limited_total{limit}, limit being
 * upgrades_per_second, sessions_per_ip, client_secrets or pending_per_ip
 * (the front's cap on request heads waiting per address, host/net/front.h).
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef VOXRAY_CLIENT_LIMITS_H
#define VOXRAY_CLIENT_LIMITS_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "settings.h"

typedef struct metrics_registry metrics_registry;

#define LIMITS_MAX_IDLE 65536

/* A client as the limits see it. */
typedef struct limits_client {
    unsigned char key[16];          /* IPv4 as ::ffff:a.b.c.d, IPv6 cut to /64 */
    char text[INET6_ADDRSTRLEN];    /* the full address, for logs */
    int counted;                    /* limits_admit took a session slot */
} limits_client;

typedef enum limits_verdict {
    LIMITS_OK = 0,
    LIMITS_RATE,     /* max_upgrades_per_second_per_ip */
    LIMITS_SESSIONS  /* max_sessions_per_ip */
} limits_verdict;

/* Register voxray_rate_limited_total{limit}. */
int limits_metrics_init(metrics_registry *reg);
/* Take the settings (origins, proxies, limits; validated by settings_load).
 * Returns 0, or -1 with one line in err. Drops any per-IP state. */
int limits_configure(const settings *s, char *err, size_t errlen);

/* Who the client is: peer, or, when peer is a trusted proxy and xff (the
 * X-Forwarded-For values joined, may be NULL) is usable, the right-most
 * address of xff that is not a trusted proxy (the left-most if all are). */
void limits_identify(const struct sockaddr *peer, const char *xff, limits_client *out);

/* Whether peer is one of [server] trusted_proxies (0 when none is set). */
int limits_trusted_proxy(const struct sockaddr *peer);

/* Whether an upgrade with this Origin header may go on (NULL: no header,
 * always yes; an empty allowed_origins: any). Scheme and host compare
 * without regard to case; a trailing '/' is ignored. */
int limits_origin_allowed(const char *origin);

/* Take one upgrade token and one session slot for c. On LIMITS_OK with
 * limits configured, c->counted is set and limits_release must follow when
 * the session (or the attempt) ends. A refusal is counted. */
limits_verdict limits_admit(limits_client *c);
/* Give c's session slot back (no-op unless c->counted; clears it). */
void limits_release(limits_client *c);

/* Count a refusal of another limit in voxray_rate_limited_total
 * ("client_secrets", "pending_per_ip"). */
void limits_count(const char *limit);

/* Entries kept right now (tests). */
size_t limits_tracked(void);

/* Free everything (at exit). */
void limits_free(void);

#endif
