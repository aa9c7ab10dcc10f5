/*
 * Reading the event type at the head of a server message without parsing
 * the whole JSON (voxray-loadtest, tools/lt_scan.h).
 */
#include "config.h"

#include <string.h>

#include "lt_scan.h"

int lt_scan_type(const char *p, size_t n, char *out, size_t outlen) {
    size_t i = 0;
#define WS() while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++
#define NEED() if (i >= n) return 0
    WS(); NEED();
    if (p[i++] != '{') return -1;
    for (;;) {
        size_t ks, ke;
        WS(); NEED();
        if (p[i] != '"') return -1;
        ks = ++i;
        while (i < n && p[i] != '"') {
            if (p[i] == '\\') return -1;
            i++;
        }
        NEED();
        ke = i++;
        WS(); NEED();
        if (p[i++] != ':') return -1;
        WS(); NEED();
        if (ke - ks == 4 && memcmp(p + ks, "type", 4) == 0) {
            size_t vs;
            if (p[i] != '"') return -1;
            vs = ++i;
            while (i < n && p[i] != '"') {
                if (p[i] == '\\' || i - vs >= outlen - 1) return -1;
                i++;
            }
            NEED();
            memcpy(out, p + vs, i - vs);
            out[i - vs] = '\0';
            return 1;
        }
        if (p[i] == '"') {
            i++;
            while (i < n && p[i] != '"') i += p[i] == '\\' ? 2 : 1;
            NEED();
            i++;
        } else if (p[i] == '{' || p[i] == '[') {
            return -1;
        } else {
            while (i < n && p[i] != ',' && p[i] != '}') i++;
        }
        WS(); NEED();
        if (p[i] == '}') return -1; /* no type */
        if (p[i++] != ',') return -1;
        if (i > LT_SCAN_HEAD_MAX) return -1;
    }
#undef WS
#undef NEED
}
