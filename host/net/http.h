/*
 * The HTTP server (libmicrohttpd, no listening socket of its own: the front
 * hands it connections) and its routes:
 *
 *   GET /health      liveness: 200 while the process answers
 *   GET /ready       200, or 503 with a JSON body naming the failing check
 *                    (starting, draining, session_store, max_sessions)
 *   GET /metrics     Prometheus exposition; 404 when [metrics] enabled =
 *                    false; 403 outside [metrics] allow
 *   GET /v1/health   JSON: overall ok, per-stage and per-provider status
 *   POST /v1/realtime/client_secrets
 *                    mint a client secret (auth.h) with a real API key;
 *                    body and answer as in the OpenAI API
 *   GET /v1/realtime without an upgrade: 401 when a key is needed and none
 *                    was sent, else 426
 *
 * Every request is counted in the five HTTP families of the observability
 * reference, labelled with the route template (never the raw path; unknown
 * paths share route="unmatched").
 */
#ifndef VOXRAY_HTTP_H
#define VOXRAY_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "app.h"
#include "net/front.h"

/* Register the HTTP metric families. Call before http_start. */
int http_metrics_init(metrics_registry *reg);
/* Start the daemon. Returns 0 or -1 with one line in err. */
int http_start(app *a, char *err, size_t errlen);
/* Give a connection to the HTTP server (front callback). Always takes fd. */
int http_add_connection(void *user, int fd, const struct sockaddr *addr, socklen_t len);
/* Count a request the front answered itself (408/431/503), or a TLS
 * handshake it closed (http_errors_total{error_type="tls_on_plain_port"}). */
void http_front_dropped(void *user, front_drop why, const char *method, const char *path);
/* Count a GET /v1/realtime upgrade answered outside libmicrohttpd (101
 * for a WebSocket session, 503 at capacity, 400 for a bad handshake, 401
 * without a valid key, 403 for a foreign origin, 429 over a limit), and
 * the open sessions in http_active_connections{route="/v1/realtime"}. */
void http_count_realtime(int status, uint64_t ns);
/* http_timeout_total{method="GET",route="/v1/realtime"}: a response of a
 * realtime session ended because a provider timed out. */
void http_count_realtime_timeout(void);
void http_realtime_active(int delta);
/* Stop; in-flight requests are finished or closed. */
void http_stop(void);

#endif
