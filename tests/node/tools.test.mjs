// Function calling as the Realtime API defines it, through the plugin ABI's
// tools (minor 3): tools in session.update / response.create, a
// function_call output item with streamed arguments, the client's
// function_call_output and the next response. The sim LLM calls the tool
// its `tool_call` key names when that tool is offered, and answers a tool
// result with "Tool said: <output>."
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, simConfig, vtest, stopAll, joinDeltas, turnAudio } from './lib.mjs';

const WEATHER = {
    type: 'function', name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
let d;
before(async () => {
    d = await Daemon.start(simConfig({ ms_per_char: 5, tool_call: 'get_weather {"city":"Paris"}' }));
});
after(stopAll);

const userText = (text) => ({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });

async function withTools(c, extra = {}) {
    const up = await c.update({ tools: [WEATHER], ...extra });
    return up.session;
}

vtest('session.update takes tools and tool_choice and echoes them', async () => {
    const c = await d.connect();
    const s = await withTools(c, { tool_choice: { type: 'function', name: 'get_weather' } });
    assert.equal(s.tools.length, 1);
    assert.equal(s.tools[0].name, 'get_weather');
    assert.deepEqual(s.tools[0].parameters, WEATHER.parameters);
    assert.deepEqual(s.tool_choice, { type: 'function', name: 'get_weather' });
    await c.close();
});

vtest('the model calls a tool: a function_call item with streamed arguments, then the result and the answer', async () => {
    const c = await d.connect();
    await withTools(c);
    c.send(userText('What is the weather in Paris?'));
    await c.next('conversation.item.done');
    c.send({ type: 'response.create' });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    const added = evs.find((e) => e.type === 'response.output_item.added');
    assert.equal(added.item.type, 'function_call');
    assert.equal(added.item.name, 'get_weather');
    assert.ok(added.item.call_id);
    const deltas = evs.filter((e) => e.type === 'response.function_call_arguments.delta');
    assert.ok(deltas.length >= 2, 'arguments stream in pieces');
    assert.ok(deltas.every((e) => e.call_id === added.item.call_id && e.item_id === added.item.id));
    const argsDone = evs.find((e) => e.type === 'response.function_call_arguments.done');
    assert.equal(argsDone.arguments, '{"city":"Paris"}');
    assert.equal(deltas.map((e) => e.delta).join(''), argsDone.arguments);
    assert.equal(argsDone.name, 'get_weather');
    assert.ok(evs.some((e) => e.type === 'conversation.item.added' && e.item.type === 'function_call'));
    const done = evs.at(-1);
    assert.equal(done.response.status, 'completed');
    assert.equal(done.response.output.length, 1, 'only the call: no empty message');
    assert.equal(done.response.output[0].type, 'function_call');
    assert.equal(done.response.output[0].arguments, '{"city":"Paris"}');
    assert.equal(done.response.output[0].status, 'completed');
    assert.ok(!evs.some((e) => /audio/.test(e.type)), 'nothing to say yet');

    c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: added.item.call_id, output: '{"sky":"sunny"}' } });
    const out = await c.next('conversation.item.added');
    assert.equal(out.item.type, 'function_call_output');
    assert.equal(out.item.call_id, added.item.call_id);
    c.send({ type: 'response.create' });
    const evs2 = await c.collectUntil('response.done', { timeout: 15000 });
    assert.equal(joinDeltas(evs2, 'response.output_audio_transcript.delta').trim(), 'Tool said: {"sky":"sunny"}.');
    assert.equal(evs2.at(-1).response.output[0].type, 'message');
    await c.close();
});

vtest('tool_choice "none" keeps the model from calling', async () => {
    const c = await d.connect();
    await withTools(c, { tool_choice: 'none' });
    c.send(userText('weather please'));
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.ok(!evs.some((e) => e.type.startsWith('response.function_call')));
    assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: weather please.');
    await c.close();
});

vtest('without tools offered the model does not call one', async () => {
    const c = await d.connect();
    c.send(userText('weather please'));
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.ok(!evs.some((e) => e.type.startsWith('response.function_call')));
    await c.close();
});

vtest('tools given on response.create apply to that response only', async () => {
    const c = await d.connect();
    c.send(userText('weather please'));
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { tools: [WEATHER], output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.equal(evs.at(-1).response.output[0].type, 'function_call');
    await c.close();
});

vtest('a spoken turn can end in a tool call', async () => {
    const c = await d.connect();
    await withTools(c);
    await c.sendAudio(turnAudio());
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    assert.ok(evs.some((e) => e.type === 'conversation.item.input_audio_transcription.completed'));
    assert.equal(evs.at(-1).response.output[0].type, 'function_call');
    await c.close();
});

vtest('a function_call_output for an unknown call_id is an error and the session goes on', async () => {
    const c = await d.connect();
    const id = c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_nope', output: 'x' } });
    const err = await c.next('error');
    assert.equal(err.error.code, 'invalid_value');
    assert.equal(err.error.param, 'item.call_id');
    assert.equal(err.error.event_id, id);
    c.send(userText('hi'));
    await c.next('conversation.item.done');
    await c.close();
});

vtest('bad tools are refused member by member and the rest of the update applies', async () => {
    const c = await d.connect();
    c.send({ type: 'session.update', session: { instructions: 'Keep it short.', tools: [{ type: 'function', name: 'has space' }] } });
    const err = await c.next('error');
    assert.equal(err.error.param, 'session.tools[0].name');
    const up = await c.next('session.updated');
    assert.equal(up.session.instructions, 'Keep it short.');
    assert.deepEqual(up.session.tools, []);
    await c.close();
});
