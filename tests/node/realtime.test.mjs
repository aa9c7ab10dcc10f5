// Realtime protocol conversations on /v1/realtime: session events, spoken
// turns with server_vad, manual commits, text turns, response control and
// the beta dialect. One sim instance serves STT, LLM and TTS.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    Daemon, simConfig, vtest, stopAll, turnAudio, speech, silence, concat,
    fromBase64, joinDeltas, audioSamples, words,
} from './lib.mjs';

const MS_PER_CHAR = 20; // sim TTS: 20 ms of audio per character
let d; // STT hears "one two", then "three four" (the sim's transcripts)
let hello; // STT always hears "hello world" (the sim default)

before(async () => {
    d = await Daemon.start(simConfig({ ms_per_char: MS_PER_CHAR, transcripts: 'one two|three four' }));
    hello = await Daemon.start(simConfig({ ms_per_char: MS_PER_CHAR }));
});
after(stopAll);

const types = (evs) => evs.map((e) => e.type);
function indexOf(evs, type, where = () => true, from = 0) {
    for (let i = from; i < evs.length; i++) if (evs[i].type === type && where(evs[i])) return i;
    return -1;
}
// Assert the events of `order` appear in that order (each after the last).
function assertOrder(evs, order) {
    let at = -1;
    for (const step of order) {
        const [type, where] = Array.isArray(step) ? step : [step, undefined];
        const i = indexOf(evs, type, where, at + 1);
        assert.ok(i > at, `${type} after position ${at}; events: ${types(evs).join(', ')}`);
        at = i;
    }
}

// Dominant frequency of a tone from its zero crossings.
function toneHz(pcm, rate) {
    let crossings = 0;
    for (let i = 1; i < pcm.length; i++) if ((pcm[i - 1] < 0) !== (pcm[i] < 0)) crossings++;
    return crossings / 2 / (pcm.length / rate);
}

function allAudio(evs, type = 'response.output_audio.delta') {
    return concat(...evs.filter((e) => e.type === type).map((e) => fromBase64(e.delta)));
}

vtest('session.created comes first, in the GA shape, and every server event has a unique event_id', async () => {
    const c = await d.connect();
    assert.equal(c.events[0].type, 'session.created');
    const s = c.events[0].session;
    assert.equal(s.type, 'realtime');
    assert.equal(s.object, 'realtime.session');
    assert.match(s.id, /^sess_[A-Za-z0-9]{20}$/);
    assert.deepEqual(s.output_modalities, ['audio']);
    assert.deepEqual(s.audio.input.format, { type: 'audio/pcm', rate: 24000 });
    assert.deepEqual(s.audio.output.format, { type: 'audio/pcm', rate: 24000 });
    assert.equal(s.audio.input.turn_detection.type, 'server_vad');
    assert.equal(s.audio.input.turn_detection.threshold, 0.5);
    assert.equal(s.audio.input.turn_detection.prefix_padding_ms, 300);
    assert.equal(s.audio.input.turn_detection.silence_duration_ms, 500);
    assert.equal(s.audio.input.turn_detection.create_response, true);
    assert.equal(s.audio.input.turn_detection.interrupt_response, true);
    assert.equal('modalities' in s, false, 'no beta field in a GA session');
    // a few more events, then check their ids
    await c.update({ instructions: 'Be brief.' });
    await c.update({ instructions: 'Be very brief.' });
    c.send({ type: 'input_audio_buffer.clear' });
    await c.next('input_audio_buffer.cleared');
    const ids = c.events.map((e) => e.event_id);
    for (const id of ids) assert.match(id, /^event_[A-Za-z0-9]{20}$/);
    assert.equal(new Set(ids).size, ids.length, 'event ids are unique');
    await c.close();
});

vtest('session.update is answered by session.updated with the change, and audio at the new input rate still makes a turn', async () => {
    const c = await d.connect();
    const up = await c.update({
        type: 'realtime',
        instructions: 'Answer briefly.',
        output_modalities: ['audio'],
        audio: {
            input: {
                format: { type: 'audio/pcm', rate: 16000 },
                turn_detection: { type: 'server_vad', threshold: 0.6, prefix_padding_ms: 200, silence_duration_ms: 400 },
            },
            output: { voice: 'tenor' },
        },
    });
    const s = up.session;
    assert.equal(up.type, 'session.updated');
    assert.equal(s.id, c.created.session.id, 'same session');
    assert.equal(s.instructions, 'Answer briefly.');
    assert.deepEqual(s.output_modalities, ['audio']);
    assert.deepEqual(s.audio.input.format, { type: 'audio/pcm', rate: 16000 });
    assert.deepEqual(s.audio.output.format, { type: 'audio/pcm', rate: 24000 }, 'output rate untouched');
    assert.equal(s.audio.output.voice, 'tenor');
    const td = s.audio.input.turn_detection;
    assert.equal(td.type, 'server_vad');
    assert.equal(td.threshold, 0.6);
    assert.equal(td.prefix_padding_ms, 200);
    assert.equal(td.silence_duration_ms, 400);

    await c.sendAudio(turnAudio(16000, { lead: 500 }), { rate: 16000 });
    const evs = await c.collectUntil('response.done');
    const started = evs.find((e) => e.type === 'input_audio_buffer.speech_started');
    assert.ok(started, 'speech detected in 16 kHz audio');
    assert.ok(Math.abs(started.audio_start_ms - 500) <= 100, `audio_start_ms ${started.audio_start_ms} near 500`);
    const done = evs.at(-1);
    assert.equal(done.response.status, 'completed');
    assert.equal(done.response.output[0].content[0].transcript, 'You said: one two.');
    // the new instructions are the system prompt: 2 words + the 2 heard
    assert.equal(done.response.usage.input_tokens, 4);
    // the voice reached the TTS: tenor is a 165 Hz tone (alto 220 Hz)
    const pcm = allAudio(evs);
    const mid = pcm.subarray(Math.floor(pcm.length * 0.1), Math.floor(pcm.length * 0.9));
    const hz = toneHz(mid, 24000);
    assert.ok(Math.abs(hz - 165) < 8, `reply tone ${hz.toFixed(1)} Hz is the tenor voice`);
    await c.close();
});

vtest('a spoken turn with server_vad produces the whole event sequence, transcript and reply audio', async () => {
    const c = await hello.connect();
    await c.sendAudio(turnAudio(24000, { lead: 400, talk: 1000, tail: 800 }));
    const evs = await c.collectUntil('response.done');

    const started = evs.find((e) => e.type === 'input_audio_buffer.speech_started');
    const stopped = evs.find((e) => e.type === 'input_audio_buffer.speech_stopped');
    assert.ok(started && stopped);
    const userItem = started.item_id;
    assert.match(userItem, /^item_/);
    // the tone starts at 400 ms and stops at 1400 ms (10 ms frames, resampler delay)
    assert.ok(Math.abs(started.audio_start_ms - 400) <= 100, `audio_start_ms ${started.audio_start_ms}`);
    assert.ok(Math.abs(stopped.audio_end_ms - 1400) <= 100, `audio_end_ms ${stopped.audio_end_ms}`);
    assert.equal(stopped.item_id, userItem);

    const isUser = (e) => e.item?.id === userItem;
    const respCreated = evs.find((e) => e.type === 'response.created');
    assert.ok(respCreated);
    const respId = respCreated.response.id;
    assert.match(respId, /^resp_/);
    assert.equal(respCreated.response.status, 'in_progress');
    const outAdded = evs.find((e) => e.type === 'response.output_item.added');
    const botItem = outAdded.item.id;
    const isBot = (e) => e.item?.id === botItem;

    assertOrder(evs, [
        'input_audio_buffer.speech_started',
        'input_audio_buffer.speech_stopped',
        ['input_audio_buffer.committed', (e) => e.item_id === userItem],
        ['conversation.item.added', isUser],
        ['conversation.item.input_audio_transcription.completed', (e) => e.item_id === userItem],
        ['conversation.item.done', isUser],
        'response.created',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_audio_transcript.delta',
        'response.output_audio.delta',
        'response.output_audio.done',
        'response.output_audio_transcript.done',
        'response.content_part.done',
        'response.output_item.done',
        ['conversation.item.done', isBot],
        'response.done',
    ]);

    // the user item
    const added = evs.find((e) => e.type === 'conversation.item.added' && isUser(e));
    assert.equal(added.item.role, 'user');
    assert.equal(added.item.type, 'message');
    assert.equal(added.item.content[0].type, 'input_audio');
    const completed = evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    assert.equal(completed.transcript, 'hello world');
    const userDone = evs.find((e) => e.type === 'conversation.item.done' && isUser(e));
    assert.equal(userDone.item.status, 'completed');
    assert.equal(userDone.item.content[0].transcript, 'hello world');

    // transcription deltas: for the user item, before completed, a prefix of it
    const tdeltas = evs.filter((e) => e.type === 'conversation.item.input_audio_transcription.delta');
    assert.ok(tdeltas.length > 0, 'transcription deltas');
    for (const e of tdeltas) {
        assert.equal(e.item_id, userItem);
        assert.ok(evs.indexOf(e) < evs.indexOf(completed), 'deltas come before completed');
    }
    const partial = joinDeltas(tdeltas, 'conversation.item.input_audio_transcription.delta');
    assert.ok('hello world'.startsWith(partial) && partial.length > 0, `deltas "${partial}" are a prefix`);

    // the response: every event names it and the assistant item
    assert.equal(outAdded.item.role, 'assistant');
    const contentAdded = evs.find((e) => e.type === 'response.content_part.added');
    assert.equal(contentAdded.part.type, 'audio');
    for (const e of evs.filter((x) => x.type.startsWith('response.') && x.type !== 'response.created' && x.type !== 'response.done')) {
        assert.equal(e.response_id, respId, `${e.type} names the response`);
        if (e.item_id !== undefined) assert.equal(e.item_id, botItem, `${e.type} names the item`);
    }
    const transcript = joinDeltas(evs, 'response.output_audio_transcript.delta');
    assert.equal(transcript, 'You said: hello world.');
    assert.equal(evs.find((e) => e.type === 'response.output_audio_transcript.done').transcript, 'You said: hello world.');
    assert.equal(evs.find((e) => e.type === 'response.content_part.done').part.transcript, 'You said: hello world.');

    // reply audio: 24 kHz, as long as the sim made it (chars x ms_per_char)
    const samples = audioSamples(evs, 'response.output_audio.delta');
    const expected = ('You said: hello world.'.length * MS_PER_CHAR * 24000) / 1000;
    assert.ok(samples > 0);
    assert.ok(Math.abs(samples - expected) <= expected * 0.02, `${samples} samples ~ ${expected} at 24 kHz`);
    assert.equal(evs.filter((e) => e.type === 'error').length, 0, 'no error event');

    const done = evs.at(-1).response;
    assert.equal(done.id, respId);
    assert.equal(done.status, 'completed');
    assert.equal(done.status_details, null);
    assert.ok(done.usage.input_tokens > 0 && done.usage.output_tokens > 0, JSON.stringify(done.usage));
    assert.equal(done.output.length, 1);
    assert.equal(done.output[0].id, botItem);
    assert.equal(done.output[0].role, 'assistant');
    assert.equal(done.output[0].status, 'completed');
    assert.equal(done.output[0].content[0].type, 'output_audio');
    assert.equal(done.output[0].content[0].transcript, 'You said: hello world.');

    const ids = c.events.map((e) => e.event_id);
    assert.equal(new Set(ids).size, ids.length, 'event ids are unique');
    await c.close();
});

vtest('the second turn of a session is answered with the first exchange in the prompt', async () => {
    const c = await d.connect();
    await c.sendAudio(turnAudio());
    const first = await c.collectUntil('response.done');
    await c.sendAudio(turnAudio());
    const second = await c.collectUntil('response.done');

    const heard = (evs) => evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed').transcript;
    const said = (evs) => evs.at(-1).response.output[0].content[0].transcript;
    const t1 = heard(first), t2 = heard(second);
    assert.ok(['one two', 'three four'].includes(t1), `a scripted transcript, got ${t1}`);
    assert.notEqual(t2, t1, 'the sim cycles its transcripts from turn to turn');
    assert.equal(said(first), `You said: ${t1}.`);
    assert.equal(said(second), `You said: ${t2}.`, 'the second reply echoes the second transcript');
    // the sim LLM counts prompt words: the second prompt is the first one
    // plus the first reply and the second user turn
    const u1 = first.at(-1).response.usage.input_tokens;
    const u2 = second.at(-1).response.usage.input_tokens;
    assert.equal(u2, u1 + words(said(first)).length + words(t2).length);
    // items chain: the second user item follows the first reply
    const botItem1 = first.at(-1).response.output[0].id;
    const committed2 = second.find((e) => e.type === 'input_audio_buffer.committed');
    assert.equal(committed2.previous_item_id, botItem1);
    await c.close();
});

vtest('manual mode: appends make no speech events, commit adds the item, response.create answers it', async () => {
    const c = await hello.connect();
    const up = await c.update({ audio: { input: { turn_detection: null } } });
    assert.equal(up.session.audio.input.turn_detection, null);
    await c.sendAudio(turnAudio());
    const quiet = await c.drain(400);
    assert.deepEqual(quiet.filter((e) => e.type.startsWith('input_audio_buffer.speech')), [], 'no VAD events');
    assert.deepEqual(quiet.filter((e) => e.type === 'error'), []);

    c.send({ type: 'input_audio_buffer.commit' });
    const committed = await c.next('input_audio_buffer.committed');
    const added = await c.next('conversation.item.added');
    assert.equal(added.item.id, committed.item_id);
    assert.equal(added.item.role, 'user');
    assert.equal(added.item.content[0].type, 'input_audio');
    const tr = await c.next('conversation.item.input_audio_transcription.completed');
    assert.equal(tr.transcript, 'hello world');
    // manual mode does not answer by itself
    const after = await c.drain(300);
    assert.equal(after.filter((e) => e.type === 'response.created').length, 0, 'no automatic response');

    c.send({ type: 'response.create' });
    const evs = await c.collectUntil('response.done');
    assert.equal(evs[0].type, 'response.created');
    const done = evs.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].transcript, 'You said: hello world.');
    assert.ok(audioSamples(evs, 'response.output_audio.delta') > 0, 'reply audio');
    await c.close();
});

vtest('manual mode: commit with an empty buffer is an input_audio_buffer_commit_empty error', async () => {
    const c = await d.connect();
    await c.update({ audio: { input: { turn_detection: null } } });
    const id = c.send({ type: 'input_audio_buffer.commit' });
    const err = await c.next('error');
    assert.equal(err.error.code, 'input_audio_buffer_commit_empty');
    assert.equal(err.error.type, 'invalid_request_error');
    assert.equal(err.error.event_id, id);
    assert.equal(c.pending().filter((e) => e.type === 'input_audio_buffer.committed').length, 0);
    await c.close();
});

vtest('input_audio_buffer.clear is answered by input_audio_buffer.cleared and empties the buffer', async () => {
    const c = await d.connect();
    await c.update({ audio: { input: { turn_detection: null } } });
    await c.sendAudio(speech(500));
    c.send({ type: 'input_audio_buffer.clear' });
    await c.next('input_audio_buffer.cleared');
    c.send({ type: 'input_audio_buffer.commit' });
    const err = await c.next('error');
    assert.equal(err.error.code, 'input_audio_buffer_commit_empty', 'nothing left to commit after clear');
    await c.close();
});

vtest('a text turn: conversation.item.create then a text-only response.create gives output_text deltas and no audio', async () => {
    const c = await d.connect();
    const id = c.send({
        type: 'conversation.item.create',
        item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'good morning' }] },
    });
    const added = await c.next('conversation.item.added');
    assert.equal(added.item.role, 'user');
    assert.equal(added.item.status, 'completed');
    assert.deepEqual(added.item.content, [{ type: 'input_text', text: 'good morning' }]);
    const itemDone = await c.next('conversation.item.done');
    assert.equal(itemDone.item.id, added.item.id);
    assert.ok(!c.events.some((e) => e.type === 'error'), `no error for ${id}`);

    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done');
    assert.equal(evs[0].type, 'response.created');
    assert.deepEqual(evs[0].response.output_modalities, ['text']);
    assertOrder(evs, [
        'response.created', 'response.output_item.added', 'response.content_part.added',
        'response.output_text.delta', 'response.output_text.done', 'response.content_part.done',
        'response.output_item.done', 'conversation.item.done', 'response.done',
    ]);
    assert.equal(evs.find((e) => e.type === 'response.content_part.added').part.type, 'text');
    const deltas = evs.filter((e) => e.type === 'response.output_text.delta');
    assert.ok(deltas.length > 1, 'streamed in several deltas');
    assert.equal(joinDeltas(evs, 'response.output_text.delta'), 'You said: good morning.');
    assert.equal(evs.find((e) => e.type === 'response.output_text.done').text, 'You said: good morning.');
    assert.deepEqual(evs.filter((e) => /audio/.test(e.type)).map((e) => e.type), [], 'no audio events');
    const done = evs.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.output[0].content, [{ type: 'output_text', text: 'You said: good morning.' }]);
    await c.close();
});

async function textItem(c, text) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    await c.next('conversation.item.done');
}

vtest('response.create while a response is active is a conversation_already_has_active_response error', async () => {
    const c = await d.connect();
    await textItem(c, 'tell me something');
    c.send({ type: 'response.create' });
    const id = c.send({ type: 'response.create' });
    const err = await c.next('error');
    assert.equal(err.error.code, 'conversation_already_has_active_response');
    assert.equal(err.error.event_id, id);
    const evs = await c.collectUntil('response.done');
    assert.equal(evs.at(-1).response.status, 'completed', 'the first response goes on');
    assert.equal(c.events.filter((e) => e.type === 'response.created').length, 1, 'one response only');
    await c.close();
});

vtest('response.cancel with no active response is a response_cancel_not_active error', async () => {
    const c = await d.connect();
    const id = c.send({ type: 'response.cancel' });
    const err = await c.next('error');
    assert.equal(err.error.code, 'response_cancel_not_active');
    assert.equal(err.error.event_id, id);
    await c.update({ instructions: 'still here' });
    await c.close();
});

vtest('response.cancel during a response ends it as cancelled with reason client_cancelled', async () => {
    const c = await d.connect();
    await textItem(c, 'tell me something');
    c.send({ type: 'response.create' });
    const created = await c.next('response.created');
    c.send({ type: 'response.cancel' });
    const evs = await c.collectUntil('response.done');
    const done = evs.at(-1).response;
    assert.equal(done.id, created.response.id);
    assert.equal(done.status, 'cancelled');
    assert.deepEqual(done.status_details, { type: 'cancelled', reason: 'client_cancelled' });
    assert.equal(done.output[0].status, 'incomplete');
    assert.equal(c.pending().length, 0);
    // nothing more for that response afterwards, and a new one works
    const late = await c.drain(300);
    assert.deepEqual(late.filter((e) => e.response_id === created.response.id).map((e) => e.type), []);
    await textItem(c, 'again');
    c.send({ type: 'response.create' });
    assert.equal((await c.collectUntil('response.done')).at(-1).response.status, 'completed');
    await c.close();
});

// ------------------------------------------------------------ beta dialect

vtest('beta dialect: session.created has the beta shape', async () => {
    const c = await d.connect({ beta: true });
    const s = c.created.session;
    assert.equal(c.events[0].type, 'session.created');
    assert.equal(s.object, 'realtime.session');
    assert.match(s.id, /^sess_/);
    assert.deepEqual([...s.modalities].sort(), ['audio', 'text']);
    assert.equal(s.input_audio_format, 'pcm16');
    assert.equal(s.output_audio_format, 'pcm16');
    assert.equal(s.turn_detection.type, 'server_vad');
    assert.equal(s.turn_detection.silence_duration_ms, 500);
    assert.equal('audio' in s, false, 'no GA audio object');
    assert.equal('output_modalities' in s, false, 'no GA output_modalities');
    await c.close();
});

vtest('beta dialect: a spoken turn uses conversation.item.created, response.audio.delta and response.audio_transcript.delta', async () => {
    const c = await hello.connect({ beta: true });
    await c.sendAudio(turnAudio());
    const evs = await c.collectUntil('response.done');
    const t = new Set(types(evs));
    for (const name of ['conversation.item.created', 'response.audio.delta', 'response.audio_transcript.delta',
        'response.audio.done', 'response.audio_transcript.done', 'conversation.item.input_audio_transcription.completed']) {
        assert.ok(t.has(name), `${name} sent; got ${[...t].join(', ')}`);
    }
    for (const name of ['conversation.item.added', 'response.output_audio.delta', 'response.output_audio_transcript.delta',
        'response.output_text.delta']) {
        assert.ok(!t.has(name), `GA event ${name} not sent`);
    }
    assert.equal(joinDeltas(evs, 'response.audio_transcript.delta'), 'You said: hello world.');
    assert.ok(audioSamples(evs, 'response.audio.delta') > 0);
    const done = evs.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].type, 'audio');
    await c.close();
});

vtest('beta dialect: a text response streams response.text.delta', async () => {
    const c = await d.connect({ beta: true });
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi there' }] } });
    await c.next('conversation.item.created');
    c.send({ type: 'response.create', response: { modalities: ['text'] } });
    const evs = await c.collectUntil('response.done');
    assert.equal(joinDeltas(evs, 'response.text.delta'), 'You said: hi there.');
    assert.equal(evs.find((e) => e.type === 'response.text.done').text, 'You said: hi there.');
    assert.ok(!evs.some((e) => e.type === 'response.output_text.delta'), 'no GA text delta');
    assert.ok(!evs.some((e) => /audio/.test(e.type)), 'no audio');
    assert.equal(evs.at(-1).response.status, 'completed');
    await c.close();
});

vtest('beta dialect: the flat session.update shape is accepted', async () => {
    const c = await d.connect({ beta: true });
    const up = await c.update({
        modalities: ['text'],
        instructions: 'Be terse.',
        voice: 'tenor',
        input_audio_format: 'pcm16',
        output_audio_format: 'pcm16',
        turn_detection: { type: 'server_vad', threshold: 0.4, silence_duration_ms: 700 },
        input_audio_transcription: null,
    });
    const s = up.session;
    assert.deepEqual(s.modalities, ['text']);
    assert.equal(s.instructions, 'Be terse.');
    assert.equal(s.voice, 'tenor');
    assert.equal(s.turn_detection.threshold, 0.4);
    assert.equal(s.turn_detection.silence_duration_ms, 700);
    assert.equal(s.turn_detection.prefix_padding_ms, 300, 'unset members take the defaults');
    assert.equal(s.input_audio_transcription, null);
    // the session honours it: a text item gets a text-only answer
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'ok' }] } });
    c.send({ type: 'response.create' });
    const evs = await c.collectUntil('response.done');
    assert.equal(joinDeltas(evs, 'response.text.delta'), 'You said: ok.');
    assert.ok(!evs.some((e) => /audio/.test(e.type)));
    await c.close();
});

vtest('speaking again while the previous turn is still being transcribed keeps both transcripts', async () => {
    // The STT takes 1.2 s for a final: the second utterance starts while the
    // first is still being transcribed.
    const slow = await Daemon.start(simConfig({ ms_per_char: MS_PER_CHAR, transcripts: 'first words|second words' },
        { 'plugin.stt_slow': { plugin: 'sim', latency: '1200ms', transcripts: 'first words|second words' },
          stt: { providers: 'stt_slow' } }));
    const c = await slow.connect();
    await c.sendAudio(concat(silence(300), speech(600), silence(700), speech(600), silence(800)));
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    // The audio is sent faster than real time, so the two finals may come in
    // either order: match them to their items.
    const done = evs.filter((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    const started = evs.filter((e) => e.type === 'input_audio_buffer.speech_started');
    assert.equal(started.length, 2);
    assert.equal(done.length, 2, 'both turns are transcribed');
    // Which utterance the sim's cycling transcripts give to which stream
    // depends on which STT stream opened first (they open concurrently):
    // what matters is that each item gets exactly one of them.
    const heard = Object.fromEntries(done.map((e) => [e.item_id, e.transcript]));
    assert.deepEqual(started.map((e) => heard[e.item_id]).sort(), ['first words', 'second words'],
        'each transcript completes its own item');
    // one answer, after both: the prompt holds both user turns
    assert.equal(evs.filter((e) => e.type === 'response.created').length, 1);
    await c.close();
    await slow.stop();
});

vtest('conversation.item.truncate cuts the assistant item to the audio the client played', async () => {
    const c = await hello.connect();
    await c.sendAudio(turnAudio());
    const evs = await c.collectUntil('response.done');
    const item = evs.at(-1).response.output[0];
    const said = item.content[0].transcript; // "You said: hello world."
    const ms = audioSamples(evs, 'response.output_audio.delta') * 1000 / 24000;
    assert.ok(ms > 400, `reply audio long enough to cut (${ms} ms)`);

    c.send({ type: 'conversation.item.truncate', item_id: item.id, content_index: 0, audio_end_ms: Math.floor(ms / 2) });
    const tr = await c.next('conversation.item.truncated');
    assert.equal(tr.item_id, item.id);
    assert.equal(tr.audio_end_ms, Math.floor(ms / 2));

    // The next answer's prompt holds the truncated reply: fewer words.
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'x' }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const r = (await c.collectUntil('response.done')).at(-1).response;
    const instr = words(c.created.session.instructions ?? '').length;
    const kept = Math.floor(words(said).length * Math.floor(ms / 2) / ms);
    assert.ok(kept < words(said).length, 'something was cut');
    assert.equal(r.usage.input_tokens, instr + words('hello world').length + kept + 1,
        'the prompt holds only the words of the reply that were played');

    c.send({ type: 'conversation.item.truncate', item_id: 'item_nope', content_index: 0, audio_end_ms: 10 });
    assert.equal((await c.next('error')).error.code, 'item_not_found');
    c.send({ type: 'conversation.item.truncate', item_id: item.id, content_index: 0, audio_end_ms: 10 * ms });
    assert.equal((await c.next('error')).error.code, 'invalid_value');
    await c.close();
});
