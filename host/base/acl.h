/*
 * CIDR allowlists ("127.0.0.0/8, 10.0.0.0/8, ::1/128") for /metrics.
 * An IPv4 client that reaches an IPv6 socket as ::ffff:a.b.c.d matches IPv4
 * entries.
 */
#ifndef VOXRAY_ACL_H
#define VOXRAY_ACL_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct acl acl;

/* Parse a comma-separated list; a bare address means a single host.
 * Returns 0, or -1 with the reason in why ("'10.0.0.0/33': prefix length
 * out of range"). An empty list gives an acl that matches nothing. */
int acl_parse(const char *list, acl **out, char *why, size_t len);
/* 1 if addr falls in any entry, 0 otherwise (also for non-IP families). */
int acl_match(const acl *a, const struct sockaddr *addr);
void acl_free(acl *a);

#endif
