/*
 * Connections grouped by client address, each group in arrival order.
 *
 * The front keeps every connection still sending its request head in a
 * group, so that it can tell at once how many heads one client address has
 * waiting and which of them has waited longest. A client address is an IPv4
 * address or an IPv6 /64 (as in client_limits.h: one IPv6 host usually owns
 * a whole /64 and could otherwise change address at every connection).
 *
 * The links live inside the caller's structures (peers_link), so adding and
 * removing allocate nothing but the group of an address seen for the first
 * time; a group is freed with its last link, so memory follows the number
 * of links and nothing else. A table belongs to one thread.
 */
#ifndef VOXRAY_PEERS_H
#define VOXRAY_PEERS_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct peers peers;
typedef struct peers_group peers_group;

typedef struct peers_link {
    struct peers_link *prev, *next; /* within the group, oldest first */
    peers_group *group;             /* NULL: not in a table */
} peers_link;

/* A table sized for about `expected` links at once (it works with more,
 * only slower). Returns NULL when out of memory. */
peers *peers_new(size_t expected);
/* Free the table and its groups. Links still in it are left dangling: the
 * caller owns them and must not use them with this table again. NULL is a
 * no-op. */
void peers_free(peers *t);

/* The 16-byte client key of sa: IPv4 (also as ::ffff:a.b.c.d) as
 * ::ffff:a.b.c.d, IPv6 cut to its /64. Returns 0, or -1 when sa is not an
 * IPv4 or IPv6 address (key untouched). */
int peers_key(const struct sockaddr *sa, socklen_t len, unsigned char key[16]);

/* Append l (not in any table) as the newest link of key's group, creating
 * the group on first use. Returns how many links the group holds now, or 0
 * when out of memory (l is then left out, l->group NULL). */
unsigned peers_add(peers *t, const unsigned char key[16], peers_link *l);
/* Take l out of its group, freeing the group when it empties. A link not in
 * a table is left alone. */
void peers_remove(peers *t, peers_link *l);

/* The link that has been in l's group longest (l itself when alone). */
peers_link *peers_oldest(const peers_link *l);
/* How many links l's group holds (0 when l is not in a table). */
unsigned peers_count(const peers_link *l);
/* How many addresses have links right now. */
size_t peers_groups(const peers *t);

#endif
