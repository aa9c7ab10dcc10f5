/*
 * The document a session is saved as in the session store
 * (host/session/persist_state.c): what is written and what is restored from it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "session/persist.h"
#include "session/session_int.h"

typedef struct restored {
    conversation cv;
    char *instructions, *voice;
} restored;

static int restore(restored *r, const char *doc)
{
    memset(r, 0, sizeof *r);
    return persist_state_decode(doc, strlen(doc), &r->cv, &r->instructions, &r->voice);
}

static void release(restored *r)
{
    conv_free(&r->cv);
    free(r->instructions);
    free(r->voice);
}

static void test_a_saved_session_is_restored_as_it_was(void **st)
{
    conversation cv = {0};
    restored r;
    (void)st;
    assert_non_null(conv_add(&cv, NULL, "item_1", "user", PROTO_INPUT_AUDIO, "Weather in São Paulo?", "completed"));
    assert_non_null(conv_add_function(&cv, NULL, "item_2", "function_call", "call_1", "get_weather",
                                      "{\"city\":\"São Paulo\"}", "completed"));
    assert_non_null(conv_add_function(&cv, NULL, "item_3", "function_call_output", "call_1", NULL, "{\"c\":24}",
                                      "completed"));
    assert_non_null(conv_add(&cv, NULL, "item_4", "assistant", PROTO_OUTPUT_AUDIO, "It is 24.", "incomplete"));
    assert_non_null(conv_add(&cv, NULL, "item_5", "assistant", PROTO_OUTPUT_AUDIO, "Spea", "in_progress"));
    char *doc = persist_state_encode(&cv, "sess_1", "Be brief.", "alloy");
    assert_non_null(doc);

    assert_int_equal(restore(&r, doc), 0);
    assert_string_equal(r.instructions, "Be brief.");
    assert_string_equal(r.voice, "alloy");
    assert_int_equal(r.cv.n, 4); /* the answer still being spoken is not saved */
    const item *a = cv.head, *b = r.cv.head;
    for (int i = 0; i < 4; i++, a = a->next, b = b->next) {
        assert_string_equal(a->id, b->id);
        assert_string_equal(a->role, b->role);
        assert_int_equal(a->content, b->content);
        assert_string_equal(a->text, b->text);
        assert_string_equal(a->status, b->status);
        assert_string_equal(a->type, b->type);
        assert_string_equal(a->call_id, b->call_id);
    }
    assert_string_equal(r.cv.head->next->name, "get_weather");
    release(&r);
    free(doc);
    conv_free(&cv);
}

static void test_a_document_of_another_version_changes_nothing(void **st)
{
    restored r;
    (void)st;
    assert_int_equal(restore(&r, "{\"v\":2,\"voice\":\"x\",\"items\":[]}"), -1);
    assert_int_equal(restore(&r, "{\"v\":1,\"items\":{}}"), -1);
    assert_int_equal(restore(&r, "not json"), -1);
    assert_null(r.voice);
    assert_int_equal(r.cv.n, 0);
}

/* Found by tests/fuzz/fuzz_session_state: ids longer than an item holds were
 * cut (two became one, or a UTF-8 sequence was split) and any role was
 * taken, to be sent to the LLM. Such items are left out; the rest stays. */
static void test_items_no_client_could_have_created_are_left_out(void **st)
{
    restored r;
    (void)st;
    assert_int_equal(
        restore(&r, "{\"v\":1,\"items\":["
                    "{\"id\":\"iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii1\",\"role\":\"user\",\"content\":\"input_text\"},"
                    "{\"id\":\"iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii2\",\"role\":\"user\",\"content\":\"input_text\"},"
                    "{\"id\":\"a\",\"role\":\"banana\",\"content\":\"input_text\",\"text\":\"x\"},"
                    "{\"id\":\"b\",\"role\":\"user\",\"content\":\"input_text\",\"status\":\"done\"},"
                    "{\"id\":\"\",\"role\":\"user\",\"content\":\"input_text\"},"
                    "{\"id\":\"c\",\"type\":\"function_call_output\",\"role\":\"tool\",\"content\":\"output_text\","
                    "\"call_id\":\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"},"
                    "{\"id\":\"ok\",\"role\":\"user\",\"content\":\"input_text\",\"text\":\"kept\"}]}"),
        0);
    assert_int_equal(r.cv.n, 1);
    assert_string_equal(r.cv.head->id, "ok");
    assert_string_equal(r.cv.head->text, "kept");
    release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_saved_session_is_restored_as_it_was),
        cmocka_unit_test(test_a_document_of_another_version_changes_nothing),
        cmocka_unit_test(test_items_no_client_could_have_created_are_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
