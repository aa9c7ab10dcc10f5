// Speculative turns ([turn] speculative, min_silence): at a pause the
// recognizer's final is asked for and a reply is made from it, held until
// the turn ends. The client sees exactly the events of a turn answered
// without speculation; a reply made at a pause the user talks on after is
// dropped without a trace. voxray_speculative_turns_total counts both.
// The sim STT gives each stream the next of its `transcripts`: a turn
// resumed after a pause is heard by a second stream.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, simConfig, vtest, stopAll, speech, silence, concat, sumMetric } from './lib.mjs';

after(stopAll);

const realtime = (c, pcm) => c.sendAudio(pcm, { chunkMs: 100, paceMs: 100 });
const semantic = { audio: { input: { turn_detection: { type: 'semantic_vad' } } } };
const spec = async (d) => {
    const m = await d.metrics();
    return {
        used: sumMetric(m, 'voxray_speculative_turns_total', { outcome: 'used' }),
        discarded: sumMetric(m, 'voxray_speculative_turns_total', { outcome: 'discarded' }),
    };
};
// Event types in order, without the deltas (their number follows timing).
const shape = (evs) => evs.map((e) => e.type).filter((t) => !t.endsWith('.delta'));

async function oneTurn(d, pcm, update) {
    const c = await d.connect();
    if (update) await c.update(update);
    const from = c.events.length;
    await realtime(c, pcm);
    await c.next('response.done', { timeout: 15000 });
    await c.drain(300);
    const evs = c.events.slice(from);
    await c.close();
    return evs;
}

vtest('a finished sentence: the reply made at the pause is released as the normal reply (used)', async () => {
    const sim = { transcript: 'hello there', partial_every: '100ms', ms_per_char: 2 };
    const d = await Daemon.start(simConfig(sim));
    const plain = await Daemon.start(simConfig(sim, { turn: { speculative: 'false' } }));
    const pcm = concat(silence(300), speech(600), silence(1500));
    const evs = await oneTurn(d, pcm);
    const ref = await oneTurn(plain, pcm);
    assert.deepEqual(shape(evs), shape(ref), 'the same events as a turn answered without speculation');
    assert.deepEqual(await spec(d), { used: 1, discarded: 0 });
    assert.deepEqual(await spec(plain), { used: 0, discarded: 0 });
    // What the host adds between the stages: every step of the plain turn;
    // the speculative one had no transcript-to-LLM wait, and its first audio
    // waited for the turn to end (not the host's time).
    const host = async (dd, step) => sumMetric(await dd.metrics(), 'voxray_host_latency_seconds_count', { step });
    for (const step of ['stt_final_to_llm', 'llm_sentence_to_tts', 'tts_chunk_to_client'])
        assert.equal(await host(plain, step), 1, `plain turn: ${step}`);
    assert.equal(await host(d, 'stt_final_to_llm'), 0);
    assert.equal(await host(d, 'llm_sentence_to_tts'), 1);
    assert.equal(await host(d, 'tts_chunk_to_client'), 0);
    const sumPlain = sumMetric(await plain.metrics(), 'voxray_host_latency_seconds_sum');
    assert.ok(sumPlain >= 0 && sumPlain < 1, `host time ${sumPlain} s`);

    const user = evs.find((e) => e.type === 'input_audio_buffer.committed').item_id;
    const botAdded = evs.find((e) => e.type === 'conversation.item.added' && e.item.role === 'assistant');
    assert.equal(botAdded.previous_item_id, user, 'the reply follows the user item in the conversation');
    const created = evs.findIndex((e) => e.type === 'response.created');
    const userDone = evs.findIndex((e) => e.type === 'conversation.item.done' && e.item.id === user);
    assert.ok(userDone >= 0 && created > userDone, 'response.created comes after the transcript');
    const done = evs.find((e) => e.type === 'response.done');
    assert.equal(done.response.status, 'completed');
    assert.match(done.response.output[0].content[0].transcript, /hello there/);
});

vtest('a pause after "I would like to" gets no reply; the speculation made there is discarded', async () => {
    const d = await Daemon.start(simConfig({ transcripts: 'i would like to|order a pizza', partial_every: '100ms', ms_per_char: 2 }));
    const evs = await oneTurn(d, concat(silence(300), speech(600), silence(700), speech(500), silence(2000)), semantic);
    assert.equal(evs.filter((e) => e.type === 'input_audio_buffer.committed').length, 1, 'one turn');
    assert.equal(evs.filter((e) => e.type === 'response.created').length, 1, 'one reply');
    const committed = evs.findIndex((e) => e.type === 'input_audio_buffer.committed');
    const firstResp = evs.findIndex((e) => e.type.startsWith('response.'));
    assert.ok(firstResp > committed, 'nothing of a reply before the turn ended');
    const t = evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    assert.equal(t.transcript, 'i would like to order a pizza');
    const done = evs.find((e) => e.type === 'response.done');
    assert.match(done.response.output[0].content[0].transcript, /i would like to order a pizza/);
    assert.deepEqual(await spec(d), { used: 1, discarded: 1 });
});

vtest('server_vad: a pause shorter than silence_duration_ms is the same turn; the speculation made there is discarded', async () => {
    const d = await Daemon.start(simConfig({ transcripts: 'hello there|how are you', partial_every: '100ms', ms_per_char: 2 }));
    // 450 ms: past min_silence (200 ms), short of the 500 ms that ends a turn
    const evs = await oneTurn(d, concat(silence(300), speech(600), silence(450), speech(500), silence(1500)));
    assert.equal(evs.filter((e) => e.type === 'input_audio_buffer.speech_started').length, 1);
    assert.equal(evs.filter((e) => e.type === 'response.created').length, 1);
    const t = evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    assert.equal(t.transcript, 'hello there how are you');
    assert.deepEqual(await spec(d), { used: 1, discarded: 1 });
});

vtest('server_vad with an explicit silence_duration_ms keeps it: a 700 ms pause ends a turn at 600 ms', async () => {
    const d = await Daemon.start(simConfig({ transcripts: 'i want to|go home', partial_every: '100ms', ms_per_char: 2 }, { turn: { detection: 'semantic_vad' } }));
    const c = await d.connect();
    assert.equal(c.events.find((e) => e.type === 'session.created').session.audio.input.turn_detection.type, 'semantic_vad',
        '[turn] detection is the session default');
    await c.update({ audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: 600 } } } });
    await realtime(c, concat(silence(300), speech(600), silence(700), speech(500), silence(1500)));
    await c.drain(1500);
    assert.equal(c.events.filter((e) => e.type === 'input_audio_buffer.committed').length, 2, 'the unfinished sentence is not held');
    const stopped = c.events.find((e) => e.type === 'input_audio_buffer.speech_stopped');
    assert.ok(Math.abs(stopped.audio_end_ms - 900) <= 100, `speech_stopped at ${stopped.audio_end_ms} ms`);
    await c.close();
});

vtest('a client event during a held reply drops it: response.create gets the normal answer', async () => {
    const d = await Daemon.start(simConfig({ transcript: 'hello there', partial_every: '100ms', ms_per_char: 2 }));
    const c = await d.connect();
    // speech, then 300 ms of silence (past min_silence) and nothing more yet
    await realtime(c, concat(silence(300), speech(600), silence(300)));
    await c.drain(800);
    c.send({ type: 'response.create' });
    await realtime(c, silence(1000));
    await c.next('response.done', { timeout: 10000 });
    await c.drain(500);
    assert.equal(c.events.filter((e) => e.type === 'error').length, 0, c.events.filter((e) => e.type === 'error').map((e) => e.error.code).join());
    assert.ok(c.events.filter((e) => e.type === 'response.created').length >= 1);
    const s = await spec(d);
    assert.equal(s.discarded, 1);
    await c.close();
});
