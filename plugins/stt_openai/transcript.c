/*
 * transcript: the text of a transcription answer (see transcript.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "oai_client.h"
#include "transcript.h"

#define STT_NAME "stt_openai"

char *stt_transcript(const char *body, size_t len, vx_error *err) {
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, 0, &je);
    const char *t = json_string_value(json_object_get(j, "text"));
    size_t n;
    char *out = NULL;

    if (!j) {
        oai_seterr(err, VX_EPROTO, 0, 0, STT_NAME ": unparseable answer: %s", je.text);
        return NULL;
    }
    if (!t) {
        const char *m = oai_error_message(j);
        oai_seterr(err, VX_EPROTO, 0, 0, STT_NAME ": the answer has no \"text\"%s%s",
                   m ? ": " : "", m ? m : "");
    } else {
        while (isspace((unsigned char)*t)) t++;
        n = strlen(t);
        while (n && isspace((unsigned char)t[n - 1])) n--;
        if (!(out = strndup(t, n)))
            oai_seterr(err, VX_ENOMEM, 1, 0, STT_NAME ": out of memory reading the answer");
    }
    json_decref(j);
    return out;
}
