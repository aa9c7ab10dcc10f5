// The official client: the `openai` package's OpenAIRealtimeWS talks to
// voxray through nginx terminating TLS (the SDK only speaks wss://), with a
// throw-away self-signed certificate (tls_proxy.mjs).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { Daemon, simConfig, vtest, stopAll, turnAudio, toBase64, fromBase64 } from './lib.mjs';
import { Proxy } from './tls_proxy.mjs';

let d, proxy;

before(async () => {
    d = await Daemon.start(simConfig({ ms_per_char: 10 }));
    proxy = await Proxy.start(d.port);
});
after(async () => {
    if (proxy) await proxy.stop();
    await stopAll();
});

// An OpenAIRealtimeWS connected through the proxy; resolves once open,
// with every event it emitted recorded in rt.seen.
async function openRealtime() {
    const client = new OpenAI({ apiKey: 'test-key', baseURL: `https://127.0.0.1:${proxy.port}/v1`, maxRetries: 0 });
    const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: proxy.ca } }, client);
    rt.seen = [];
    rt.on('event', (e) => rt.seen.push(e));
    assert.equal(rt.url.protocol, 'wss:');
    await new Promise((resolve, reject) => {
        rt.socket.once('open', resolve);
        rt.socket.once('error', reject);
    });
    return rt;
}

// Resolve with the first event of `type` emitted by the SDK.
function once(rt, type, timeout = 10000) {
    return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${type} within ${timeout} ms; seen: ${rt.seen.map((e) => e.type).join(', ')}`)), timeout);
        rt.once(type, (e) => {
            clearTimeout(t);
            resolve(e);
        });
    });
}

function closed(rt) {
    return new Promise((resolve) => {
        if (rt.socket.readyState === rt.socket.CLOSED) return resolve();
        rt.socket.once('close', resolve);
        rt.close();
    });
}

vtest('the openai SDK (OpenAIRealtimeWS over wss through nginx) drives a whole spoken turn', async () => {
    const rt = await openRealtime();
    const errors = [];
    rt.on('error', (e) => errors.push(e));
    const created = await once(rt, 'session.created');
    assert.equal(created.session.type, 'realtime');

    const updated = once(rt, 'session.updated');
    rt.send({
        type: 'session.update',
        session: {
            type: 'realtime',
            instructions: 'Answer briefly.',
            audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: { type: 'server_vad' } } },
        },
    });
    assert.equal((await updated).session.instructions, 'Answer briefly.');

    const transcript = once(rt, 'conversation.item.input_audio_transcription.completed');
    const done = once(rt, 'response.done');
    const audio = [];
    rt.on('response.output_audio.delta', (e) => audio.push(fromBase64(e.delta)));
    const pcm = turnAudio();
    const step = 2400; // 100 ms
    for (let o = 0; o < pcm.length; o += step) {
        rt.send({ type: 'input_audio_buffer.append', audio: toBase64(pcm.subarray(o, o + step)) });
    }
    assert.equal((await transcript).transcript, 'hello world');
    const r = (await done).response;
    assert.equal(r.status, 'completed');
    assert.equal(r.output[0].content[0].transcript, 'You said: hello world.');
    const samples = audio.reduce((n, a) => n + a.length, 0);
    assert.ok(samples > 0, 'reply audio received through the SDK');
    assert.deepEqual(errors.map((e) => e.message), [], 'no error');
    const types = rt.seen.map((e) => e.type);
    for (const t of ['input_audio_buffer.speech_started', 'input_audio_buffer.committed', 'response.created',
        'response.output_audio_transcript.delta', 'response.output_audio.done']) {
        assert.ok(types.includes(t), `${t} reached the SDK`);
    }
    await closed(rt);
});

vtest('the openai SDK surfaces a server error event through its error listener', async () => {
    const rt = await openRealtime();
    await once(rt, 'session.created');
    const err = new Promise((resolve) => rt.on('error', resolve));
    rt.send({ type: 'conversation.teleport', event_id: 'evt_sdk_1' });
    const e = await err;
    assert.equal(e.error?.code, 'unknown_event');
    assert.equal(e.error?.type, 'invalid_request_error');
    assert.equal(e.error?.event_id, 'evt_sdk_1');
    assert.match(e.message, /unknown_event/);
    // the session goes on
    const updated = once(rt, 'session.updated');
    rt.send({ type: 'session.update', session: { instructions: 'after the error' } });
    assert.equal((await updated).session.instructions, 'after the error');
    await closed(rt);
});
