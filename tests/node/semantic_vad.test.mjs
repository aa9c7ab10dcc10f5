// turn_detection semantic_vad: accepted with its eagerness (the OpenAI
// Agents SDK asks for it in its first session.update), and the end of a
// turn weighs the transcript: a pause after an unfinished sentence ("I want
// to ...") does not end the turn, a finished one ends sooner. The sim STT
// shows one more word of its transcript every 100 ms of speech. A
// session.update with one unsupported member still applies the others.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, simConfig, vtest, stopAll, speech, silence, concat } from './lib.mjs';

after(stopAll);

const semantic = (eagerness) => ({ audio: { input: { turn_detection: { type: 'semantic_vad', ...(eagerness ? { eagerness } : {}) } } } });

// Audio as a microphone sends it: 100 ms every 100 ms (the transcript's
// partials then arrive while the user speaks, as they do in a call).
const realtime = (c, pcm) => c.sendAudio(pcm, { chunkMs: 100, paceMs: 100 });

async function daemon(transcript) {
    return Daemon.start(simConfig({ transcript, partial_every: '100ms', ms_per_char: 2 }));
}

// Speech, a pause, more speech, then silence; how many turns were committed.
async function turnsFor(d, turnDetection, pauseMs) {
    const c = await d.connect();
    if (turnDetection) await c.update(turnDetection);
    await realtime(c, concat(silence(300), speech(600), silence(pauseMs), speech(500), silence(2500)));
    await c.drain(500);
    const committed = c.events.filter((e) => e.type === 'input_audio_buffer.committed').length;
    const started = c.events.filter((e) => e.type === 'input_audio_buffer.speech_started').length;
    await c.close();
    return { committed, started };
}

vtest('semantic_vad is accepted with its eagerness and echoed in session.updated', async () => {
    const d = await daemon('hello world');
    const c = await d.connect();
    const up = await c.update({ instructions: 'Be brief.', ...semantic('low') });
    const td = up.session.audio.input.turn_detection;
    assert.equal(td.type, 'semantic_vad');
    assert.equal(td.eagerness, 'low');
    assert.equal(td.create_response, true);
    assert.equal(td.interrupt_response, true);
    assert.equal(up.session.instructions, 'Be brief.');
    const up2 = await c.update(semantic());
    assert.equal(up2.session.audio.input.turn_detection.eagerness, 'auto');
    await c.close();
});

vtest('a pause after an unfinished sentence does not end the turn (semantic_vad)', async () => {
    const d = await daemon('I want to');
    const r = await turnsFor(d, semantic('medium'), 900);
    assert.equal(r.started, 1, 'the resumed speech is the same turn');
    assert.equal(r.committed, 1);
});

vtest('the same pause ends the turn with server_vad', async () => {
    const d = await daemon('I want to');
    const r = await turnsFor(d, null, 900);
    assert.equal(r.committed, 2);
});

vtest('a pause after a finished sentence ends the turn (semantic_vad)', async () => {
    const d = await daemon('hello there');
    const r = await turnsFor(d, semantic('medium'), 900);
    assert.equal(r.committed, 2);
});

vtest('an unfinished sentence followed by silence still ends, after the hold', async () => {
    const d = await daemon('I would like a pizza and');
    const c = await d.connect();
    await c.update(semantic('high'));
    await realtime(c, concat(silence(300), speech(800), silence(3000)));
    const committed = await c.next('input_audio_buffer.committed', { timeout: 10000 });
    assert.ok(committed.item_id);
    const stopped = c.events.find((e) => e.type === 'input_audio_buffer.speech_stopped');
    assert.ok(stopped.audio_end_ms < 1400, `speech_stopped names where speech ended (${stopped.audio_end_ms} ms)`);
    await c.next('response.done', { timeout: 15000 });
    await c.close();
});

vtest('an unfinished sentence and a client that stops sending audio: the turn still ends', async () => {
    const d = await daemon('because');
    const c = await d.connect();
    await c.update(semantic('high'));
    // Only enough silence for the VAD to notice the end, then nothing.
    await realtime(c, concat(silence(300), speech(600), silence(400)));
    await c.next('input_audio_buffer.committed', { timeout: 5000 });
    await c.close();
});

vtest('high eagerness ends a finished sentence after a shorter silence than low', async () => {
    const d = await daemon('hello there');
    const count = async (eagerness) => {
        const c = await d.connect();
        await c.update(semantic(eagerness));
        // 350 ms of silence: enough for high (250 ms), not for low (600 ms).
        await c.sendAudio(concat(silence(300), speech(600), silence(350)));
        await c.drain(1000);
        const n = c.events.filter((e) => e.type === 'input_audio_buffer.committed').length;
        await c.close();
        return n;
    };
    assert.equal(await count('high'), 1);
    assert.equal(await count('low'), 0);
});

vtest('a session.update with an unsupported member applies the rest and reports that member', async () => {
    const d = await daemon('hello world');
    const c = await d.connect();
    const id = c.send({
        type: 'session.update',
        session: {
            type: 'realtime', instructions: 'You are a pirate.', output_modalities: ['text'],
            audio: { input: { turn_detection: { type: 'push_to_talk' } }, output: { voice: 'tenor' } },
        },
    });
    const err = await c.next('error');
    assert.equal(err.error.code, 'invalid_value');
    assert.equal(err.error.param, 'session.audio.input.turn_detection.type');
    assert.equal(err.error.event_id, id);
    const up = await c.next('session.updated');
    assert.equal(up.session.instructions, 'You are a pirate.');
    assert.deepEqual(up.session.output_modalities, ['text']);
    assert.equal(up.session.audio.output.voice, 'tenor');
    assert.equal(up.session.audio.input.turn_detection.type, 'server_vad', 'the old turn detection stays');
    await c.close();
});
