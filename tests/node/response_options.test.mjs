// response.create options as the Realtime API defines them: metadata echoed
// (LiveKit's RealtimeModel waits for its client_event_id there), out-of-band
// responses (conversation "none"), explicit input, per-response modalities,
// max_output_tokens, voice and instructions; and bad values answered with
// error events while the session goes on. The sim LLM answers
// "You said: <last user text>."
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, simConfig, vtest, stopAll, joinDeltas } from './lib.mjs';

let d;
before(async () => {
    d = await Daemon.start(simConfig({ ms_per_char: 5 }));
});
after(stopAll);

const userText = (text) => ({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });

async function say(c, text) {
    c.send(userText(text));
    await c.next('conversation.item.done');
}

vtest('response.metadata is echoed in response.created and response.done', async () => {
    const c = await d.connect();
    await say(c, 'hello');
    c.send({ type: 'response.create', response: { metadata: { client_event_id: 'evt_42', topic: 'x' } } });
    const created = await c.next('response.created');
    assert.deepEqual(created.response.metadata, { client_event_id: 'evt_42', topic: 'x' });
    const done = await c.next('response.done', { timeout: 15000 });
    assert.deepEqual(done.response.metadata, { client_event_id: 'evt_42', topic: 'x' });
    await c.close();
});

vtest('a response without metadata says null, and names the conversation', async () => {
    const c = await d.connect();
    await say(c, 'hello');
    c.send({ type: 'response.create' });
    const created = await c.next('response.created');
    assert.equal(created.response.metadata, null);
    assert.match(created.response.conversation_id, /^conv_/);
    assert.equal(created.response.max_output_tokens, 'inf');
    const done = await c.next('response.done', { timeout: 15000 });
    assert.equal(done.response.conversation_id, created.response.conversation_id);
    await c.close();
});

vtest('an out-of-band response (conversation "none") stays out of the conversation', async () => {
    const c = await d.connect();
    await say(c, 'first question');
    c.send({
        type: 'response.create',
        response: {
            conversation: 'none', output_modalities: ['text'], metadata: { purpose: 'classify' },
            input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'side question' }] }],
        },
    });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    const done = evs.at(-1);
    assert.equal(done.response.conversation_id, null);
    assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: side question.', 'the prompt is response.input');
    assert.ok(!evs.some((e) => e.type === 'conversation.item.added' || e.type === 'conversation.item.done'),
        'no conversation item events for an out-of-band response');
    assert.equal(done.response.output[0].content[0].text, 'You said: side question.');
    // The next in-band response sees the conversation without it.
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs2 = await c.collectUntil('response.done', { timeout: 15000 });
    assert.equal(joinDeltas(evs2, 'response.output_text.delta'), 'You said: first question.');
    await c.close();
});

vtest('response.input may refer to conversation items by id', async () => {
    const c = await d.connect();
    c.send({ type: 'conversation.item.create', item: { id: 'item_keep', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'kept words' }] } });
    await c.next('conversation.item.done');
    await say(c, 'later words');
    c.send({ type: 'response.create', response: { output_modalities: ['text'], input: [{ type: 'item_reference', id: 'item_keep' }] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: kept words.');
    await c.close();
});

vtest('a response.input reference to a missing item is an error and the session goes on', async () => {
    const c = await d.connect();
    const id = c.send({ type: 'response.create', response: { input: [{ type: 'item_reference', id: 'item_nope' }] } });
    const err = await c.next('error');
    assert.equal(err.error.code, 'item_not_found');
    assert.equal(err.error.param, 'response.input');
    assert.equal(err.error.event_id, id);
    await say(c, 'still here');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: still here.');
    await c.close();
});

vtest('per-response output_modalities, voice and max_output_tokens are used and echoed', async () => {
    const c = await d.connect();
    await say(c, 'one two three four five');
    c.send({ type: 'response.create', response: { output_modalities: ['text'], max_output_tokens: 3, audio: { output: { voice: 'tenor' } } } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    const created = evs.find((e) => e.type === 'response.created');
    assert.deepEqual(created.response.output_modalities, ['text']);
    assert.equal(created.response.max_output_tokens, 3);
    assert.equal(created.response.audio.output.voice, 'tenor');
    assert.ok(!evs.some((e) => /audio/.test(e.type)), 'text only');
    const done = evs.at(-1);
    // The provider produced more than 3 tokens: the response says it was cut.
    assert.equal(done.response.status, 'incomplete');
    assert.equal(done.response.status_details.reason, 'max_output_tokens');
    await c.close();
});

vtest('the beta dialect takes max_response_output_tokens, voice and metadata on response.create', async () => {
    const c = await d.connect({ beta: true });
    c.send(userText('hi'));
    await c.next('conversation.item.created');
    c.send({ type: 'response.create', response: { modalities: ['text'], voice: 'alto', max_response_output_tokens: 100, metadata: { k: 'v' } } });
    const created = await c.next('response.created');
    assert.equal(created.response.voice, 'alto');
    assert.equal(created.response.max_output_tokens, 100);
    assert.deepEqual(created.response.metadata, { k: 'v' });
    const done = await c.next('response.done', { timeout: 15000 });
    assert.equal(done.response.status, 'completed');
    await c.close();
});

for (const [what, response, code, param] of [
    ['metadata with a non-string value', { metadata: { n: 1 } }, 'invalid_type', 'response.metadata'],
    ['metadata with 17 keys', { metadata: Object.fromEntries([...Array(17).keys()].map((i) => [`k${i}`, 'v'])) }, 'invalid_value', 'response.metadata'],
    ['an unknown conversation', { conversation: 'conv_elsewhere' }, 'invalid_value', 'response.conversation'],
    ['input that is not an array', { input: 'text' }, 'invalid_type', 'response.input'],
    ['max_output_tokens of 0', { max_output_tokens: 0 }, 'invalid_value', 'response.max_output_tokens'],
]) {
    vtest(`response.create with ${what} gets an error event and the session goes on`, async () => {
        const c = await d.connect();
        const id = c.send({ type: 'response.create', response });
        const err = await c.next('error');
        assert.equal(err.error.code, code);
        assert.equal(err.error.param, param);
        assert.equal(err.error.event_id, id);
        await say(c, 'ok');
        c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
        const evs = await c.collectUntil('response.done', { timeout: 15000 });
        assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: ok.');
        await c.close();
    });
}

vtest('response.done carries the usage and voxray_llm_tokens_total counts it per model', async () => {
    const c = await d.connect();
    await say(c, 'count my words please');
    const before = await d.metrics();
    const key = (t) => `voxray_llm_tokens_total{model="sim",provider="sim",type="${t}"}`;
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const done = await c.next('response.done', { timeout: 15000 });
    const u = done.response.usage;
    assert.ok(u.input_tokens > 0 && u.output_tokens > 0, JSON.stringify(u));
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    const m = await d.metrics();
    assert.equal((m.get(key('input')) ?? 0) - (before.get(key('input')) ?? 0), u.input_tokens);
    assert.equal((m.get(key('output')) ?? 0) - (before.get(key('output')) ?? 0), u.output_tokens);
    await c.close();
});

vtest('conversation.item.retrieve returns the item; an unknown id is an error', async () => {
    const c = await d.connect();
    c.send({ type: 'conversation.item.create', item: { id: 'item_r1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'remember me' }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'conversation.item.retrieve', item_id: 'item_r1' });
    const got = await c.next('conversation.item.retrieved');
    assert.equal(got.item.id, 'item_r1');
    assert.equal(got.item.content[0].text, 'remember me');
    const id = c.send({ type: 'conversation.item.retrieve', item_id: 'item_none' });
    const err = await c.next('error');
    assert.equal(err.error.code, 'item_not_found');
    assert.equal(err.error.event_id, id);
    await c.close();
});

vtest('conversation.item.delete removes the item from the conversation and the prompt', async () => {
    const c = await d.connect();
    await say(c, 'keep this');
    c.send({ type: 'conversation.item.create', item: { id: 'item_gone', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'forget this' }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'conversation.item.delete', item_id: 'item_gone' });
    const del = await c.next('conversation.item.deleted');
    assert.equal(del.item_id, 'item_gone');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: keep this.');
    c.send({ type: 'conversation.item.delete', item_id: 'item_gone' });
    assert.equal((await c.next('error')).error.code, 'item_not_found');
    await c.close();
});
