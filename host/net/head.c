/*
 * Header fields out of a raw request head.
 */
#include "config.h"

#include "net/head.h"

#include <string.h>
#include <strings.h>

int head_values(const char *head, size_t n, const char *name, char *out, size_t len)
{
    const char *end = head + n, *p = memmem(head, n, "\r\n", 2);
    size_t nl = strlen(name), used = 0;
    int found = 0;

    if (len == 0) return -1;
    out[0] = '\0';
    if (p == NULL) return 0;
    for (p += 2; p < end;) { /* past the request line */
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL) eol = end;
        if (eol == p) break; /* the blank line ends the head */
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            size_t vl = (size_t)(e - v), sep = found ? 2 : 0;
            if (used + sep + vl + 1 > len) {
                out[0] = '\0';
                return -1;
            }
            if (sep) memcpy(out + used, ", ", 2);
            memcpy(out + used + sep, v, vl);
            used += sep + vl;
            out[used] = '\0';
            found++;
        }
        p = eol + 2;
    }
    return found;
}
