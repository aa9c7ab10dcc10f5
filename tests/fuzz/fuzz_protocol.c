/*
 * libFuzzer target for host/session/protocol.c: arbitrary bytes through proto_parse
 * in both dialects, and through the builders as text, with every output
 * required to be valid JSON. Built and run by `make fuzz` (tests/fuzz/local.mk);
 * `make check` replays corpus/protocol and regressions/protocol.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session/protocol.h"

/* Take a builder's output: it must exist and be JSON. */
static void must_be_json(char *text)
{
    json_t *o;
    if (text == NULL) abort();
    o = json_loads(text, 0, NULL);
    if (o == NULL) abort();
    json_decref(o);
    free(text);
}

/* proto_parse (with its fast path for plain appends) and the full parse
 * must give the same answer for every input. */
static void same_as_full(const uint8_t *data, size_t size, proto_dialect d)
{
    proto_client_event a, b;
    proto_error ea, eb;
    int ra = proto_parse((const char *)data, size, d, 48000, &a, &ea);
    int rb = proto_parse_full((const char *)data, size, d, 48000, &b, &eb);
    if (ra != rb) abort();
    if (ra == 0) {
        if (a.type != b.type || strcmp(a.event_id, b.event_id) != 0) abort();
        if (a.type == PC_AUDIO_APPEND &&
            (a.samples != b.samples || (a.samples && memcmp(a.pcm, b.pcm, a.samples * sizeof *a.pcm) != 0)))
            abort();
        proto_client_event_free(&a);
        proto_client_event_free(&b);
    } else if (strcmp(ea.type, eb.type) != 0 || strcmp(ea.code, eb.code) != 0 || strcmp(ea.param, eb.param) != 0 ||
               strcmp(ea.message, eb.message) != 0 || strcmp(ea.event_id, eb.event_id) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const proto_dialect dialects[] = {PROTO_GA, PROTO_BETA};
    char *text = malloc(size + 1);
    if (text == NULL) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    for (int i = 0; i < 2; i++) {
        proto_dialect d = dialects[i];
        same_as_full(data, size, d);
        proto_client_event ev;
        proto_error err;
        if (proto_parse((const char *)data, size, d, 48000, &ev, &err) == 0) {
            if (ev.type == PC_AUDIO_APPEND) {
                proto_pos p = {"resp_x", "item_x", 0};
                must_be_json(proto_ev_audio_delta(d, &p, ev.pcm, ev.samples));
            } else if (ev.type == PC_SESSION_UPDATE) {
                proto_session s;
                proto_session_defaults(&s, d);
                if (proto_session_merge(&s, &ev.session) != 0) abort();
                must_be_json(proto_ev_session(d, 1, &s));
                proto_session_clear(&s);
            } else if (ev.type == PC_ITEM_CREATE) {
                proto_item it = {.id = ev.item_id, .role = ev.role, .status = "completed",
                                 .content = PROTO_INPUT_TEXT, .text = ev.text, .type = ev.item_type,
                                 .call_id = ev.call_id, .name = ev.name};
                must_be_json(proto_ev_item_added(d, &it, ev.previous_item_id));
            }
            proto_client_event_free(&ev);
        } else {
            /* Messages quote client input (and are cut at any byte). */
            must_be_json(proto_ev_error(d, &err));
        }
    }

    /* The raw bytes as recognizer or model text, up to the first NUL. */
    {
        proto_pos p = {text, text, 1};
        proto_item it = {.id = text, .role = "assistant", .status = "completed",
                         .content = PROTO_OUTPUT_AUDIO, .text = text};
        must_be_json(proto_ev_transcript_delta(PROTO_GA, &p, text));
        must_be_json(proto_ev_item_added(PROTO_BETA, &it, text));
    }
    free(text);
    return 0;
}
