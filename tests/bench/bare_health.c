/*
 * The yardstick for voxray's /health: a bare libmicrohttpd server that
 * answers every GET with what voxray's /health sends (200, "ok\n",
 * Content-Type text/plain; charset=utf-8, Cache-Control no-store), on the
 * same kind of daemon (epoll, a pool of THREADS polling threads, default 2
 * as voxray's [server] http_threads). Runs until SIGTERM or SIGINT.
 *
 *   tests/bench/bare_health PORT [THREADS]
 */
#include "config.h"

#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    static int first;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_size;
    /* Answer on the second call, as voxray does (the first only sees the
     * head). */
    if (*con_cls == NULL) {
        *con_cls = &first;
        return MHD_YES;
    }
    resp = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    int port = argc > 1 ? atoi(argv[1]) : 0;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    sigset_t set;
    int sig;

    if (port <= 0 || port > 65535 || threads < 1) {
        fprintf(stderr, "usage: bare_health PORT [THREADS]\n");
        return 2;
    }
    /* Blocked before the daemon's threads exist, so they inherit the mask
     * and sigwait() below takes the signal. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC,
                         (uint16_t)port, NULL, NULL, on_request, NULL,
                         MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bare_health: cannot listen on port %d\n", port);
        return 1;
    }
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
