/*
 * CIDR allowlist matching.
 */
#include "config.h"

#include "base/acl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct acl_entry {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
} acl_entry;

struct acl {
    acl_entry *e;
    size_t n;
};

static int prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0) return 0;
    if (rest == 0) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static int parse_one(const char *s, acl_entry *e, char *why, size_t len)
{
    char buf[128];
    if (strlen(s) >= sizeof buf) {
        snprintf(why, len, "'%.40s...': too long", s);
        return -1;
    }
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash) *slash = '\0';
    if (inet_pton(AF_INET, buf, e->addr) == 1) {
        e->family = AF_INET;
        e->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, e->addr) == 1) {
        e->family = AF_INET6;
        e->prefix = 128;
    } else {
        snprintf(why, len, "'%s': not an IP address", s);
        return -1;
    }
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end != '\0' || p > e->prefix) {
            snprintf(why, len, "'%s': prefix length out of range (0..%d)", s, e->prefix);
            return -1;
        }
        e->prefix = (int)p;
    }
    return 0;
}

int acl_parse(const char *list, acl **out, char *why, size_t len)
{
    acl *a = calloc(1, sizeof *a);
    size_t cap = 1;
    const char *p = list;
    *out = NULL;
    if (a == NULL) goto oom;
    for (const char *q = list; *q; q++)
        if (*q == ',') cap++;
    a->e = calloc(cap, sizeof *a->e);
    if (a->e == NULL) goto oom;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *e = end;
        while (e > p && isspace((unsigned char)e[-1])) e--;
        if (e > p) {
            char *one = strndup(p, (size_t)(e - p));
            if (one == NULL) goto oom;
            int rc = parse_one(one, &a->e[a->n], why, len);
            free(one);
            if (rc != 0) goto fail;
            a->n++;
        } else if (comma) {
            snprintf(why, len, "empty entry");
            goto fail;
        }
        if (comma == NULL) break;
        p = comma + 1;
    }
    *out = a;
    return 0;
oom:
    snprintf(why, len, "out of memory");
fail:
    acl_free(a);
    return -1;
}

int acl_match(const acl *a, const struct sockaddr *addr)
{
    unsigned char v4[4], v6[16];
    int have4 = 0, have6 = 0;
    if (a == NULL || addr == NULL) return 0;
    if (addr->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        have4 = 1;
    } else if (addr->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        memcpy(v6, in6, 16);
        have6 = 1;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            memcpy(v4, v6 + 12, 4);
            have4 = 1;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        const acl_entry *e = &a->e[i];
        if (e->family == AF_INET && have4 && prefix_match(v4, e->addr, e->prefix)) return 1;
        if (e->family == AF_INET6 && have6 && prefix_match(v6, e->addr, e->prefix)) return 1;
    }
    return 0;
}

void acl_free(acl *a)
{
    if (a == NULL) return;
    free(a->e);
    free(a);
}
