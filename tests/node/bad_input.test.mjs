// Bad input and abuse on /v1/realtime: every mistake gets an `error` event
// naming it and the session goes on; abuse closes the socket with a close
// code; session limits refuse or end sessions cleanly.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
    Daemon, simConfig, vtest, stopAll, silence, speech, toBase64, sumMetric, sleep, WebSocket,
} from './lib.mjs';

let d;
before(async () => {
    d = await Daemon.start(simConfig({ ms_per_char: 10 }));
});
after(stopAll);

// The session still works: a session.update gets session.updated.
async function stillAlive(c) {
    const up = await c.update({ instructions: `alive ${Date.now()}` });
    assert.equal(up.type, 'session.updated');
    assert.equal(c.closed, null, 'the socket is still open');
}

// Send raw text, expect an error event with `code` (and `param`) before
// the answer to a session.update sent right after it.
async function expectError(c, raw, code, { param, eventId } = {}) {
    c.sendRaw(raw);
    c.send({ type: 'session.update', session: {} });
    const ev = await c.next(null, { where: (e) => e.type === 'error' || e.type === 'session.updated' });
    assert.equal(ev.type, 'error', `an error event for ${String(raw).slice(0, 80)} (got ${ev.type} first)`);
    await c.next('session.updated');
    assert.equal(ev.error.code, code, `code of ${JSON.stringify(ev.error)}`);
    assert.equal(ev.error.type, 'invalid_request_error');
    assert.ok(typeof ev.error.message === 'string' && ev.error.message.length > 0, 'a message');
    if (param !== undefined) assert.equal(ev.error.param, param);
    if (eventId !== undefined) assert.equal(ev.error.event_id, eventId);
    return ev;
}

vtest('malformed JSON is an invalid_json error and the session goes on', async () => {
    const c = await d.connect();
    await expectError(c, '{"type": "session.update", "session": {', 'invalid_json');
    await stillAlive(c);
    await c.close();
});

vtest('a JSON value that is not an object is an invalid_type error and the session goes on', async () => {
    const c = await d.connect();
    await expectError(c, '["session.update"]', 'invalid_type');
    await expectError(c, '"hello"', 'invalid_type');
    await stillAlive(c);
    await c.close();
});

vtest('an event without type is a missing_required_parameter error naming type', async () => {
    const c = await d.connect();
    await expectError(c, JSON.stringify({ event_id: 'no_type_1', session: {} }), 'missing_required_parameter',
        { param: 'type', eventId: 'no_type_1' });
    await stillAlive(c);
    await c.close();
});

vtest('an unknown event type is an unknown_event error and the session goes on', async () => {
    const c = await d.connect();
    const ev = await expectError(c, JSON.stringify({ event_id: 'unk_1', type: 'conversation.teleport' }), 'unknown_event',
        { eventId: 'unk_1' });
    assert.match(ev.error.message, /conversation\.teleport/);
    await stillAlive(c);
    await c.close();
});

vtest('output_audio_buffer.clear over a WebSocket is an error naming the transport (it is for WebRTC calls)', async () => {
    const c = await d.connect();
    const ev = await expectError(c, JSON.stringify({ event_id: 'oab_1', type: 'output_audio_buffer.clear' }),
        'unsupported_for_transport', { param: 'type', eventId: 'oab_1' });
    assert.match(ev.error.message, /WebRTC/);
    await stillAlive(c);
    await c.close();
});

vtest('a field of the wrong type is an invalid_type error with its param', async () => {
    const c = await d.connect();
    await expectError(c, JSON.stringify({ event_id: 'wt_1', type: 'session.update', session: { instructions: 5 } }),
        'invalid_type', { param: 'session.instructions', eventId: 'wt_1' });
    // the refused update changed nothing
    const up = await c.update({});
    assert.equal(up.session.instructions, c.created.session.instructions);
    await stillAlive(c);
    await c.close();
});

vtest('audio that is not base64 is an invalid_base64 error', async () => {
    const c = await d.connect();
    await expectError(c, JSON.stringify({ event_id: 'b64_1', type: 'input_audio_buffer.append', audio: 'AAA*AAAA' }),
        'invalid_base64', { param: 'audio', eventId: 'b64_1' });
    await expectError(c, JSON.stringify({ event_id: 'b64_2', type: 'input_audio_buffer.append', audio: 'AAAAA' }),
        'invalid_base64', { param: 'audio', eventId: 'b64_2' });
    await stillAlive(c);
    await c.close();
});

vtest('audio of an odd number of bytes is refused (not whole 16-bit samples)', async () => {
    const c = await d.connect();
    const odd = Buffer.from([1, 2, 3]).toString('base64');
    const ev = await expectError(c, JSON.stringify({ event_id: 'odd_1', type: 'input_audio_buffer.append', audio: odd }),
        'invalid_value', { param: 'audio', eventId: 'odd_1' });
    assert.match(ev.error.message, /16-bit|sample/);
    await stillAlive(c);
    await c.close();
});

vtest('an audio/pcmu input format is an unsupported_audio_format error', async () => {
    const c = await d.connect();
    await expectError(c, JSON.stringify({
        event_id: 'fmt_1', type: 'session.update',
        session: { audio: { input: { format: { type: 'audio/pcmu' } } } },
    }), 'unsupported_audio_format', { param: 'session.audio.input.format.type', eventId: 'fmt_1' });
    const up = await c.update({});
    assert.deepEqual(up.session.audio.input.format, { type: 'audio/pcm', rate: 24000 }, 'format unchanged');
    await c.close();
});

vtest('an unsupported sample rate is an invalid_value error naming the rate', async () => {
    const c = await d.connect();
    await expectError(c, JSON.stringify({
        event_id: 'rate_1', type: 'session.update',
        session: { audio: { input: { format: { type: 'audio/pcm', rate: 12345 } } } },
    }), 'invalid_value', { param: 'session.audio.input.format.rate', eventId: 'rate_1' });
    await stillAlive(c);
    await c.close();
});

vtest('an append with more than 60 s of audio is a message_too_large error', async () => {
    const c = await d.connect();
    // 8 kHz keeps 61 s small: 976 kB of PCM
    await c.update({ audio: { input: { format: { type: 'audio/pcm', rate: 8000 } } } });
    const big = toBase64(silence(61000, 8000));
    await expectError(c, JSON.stringify({ event_id: 'big_1', type: 'input_audio_buffer.append', audio: big }),
        'message_too_large', { param: 'audio', eventId: 'big_1' });
    await stillAlive(c);
    await c.close();
});

vtest('an append of exactly 60 s of audio is accepted', async () => {
    const c = await d.connect();
    await c.update({ audio: { input: { format: { type: 'audio/pcm', rate: 8000 } } } });
    c.send({ event_id: 'sixty_1', type: 'input_audio_buffer.append', audio: toBase64(silence(60000, 8000)) });
    await stillAlive(c);
    assert.equal(c.events.filter((e) => e.type === 'error').length, 0, 'no error');
    await c.close();
});

vtest('a binary WebSocket frame is an invalid_message error and the session goes on', async () => {
    const c = await d.connect();
    c.sendRaw(Buffer.from(toBase64(speech(20)), 'utf8'), { binary: true });
    const ev = await c.next('error');
    assert.equal(ev.error.code, 'invalid_message');
    await stillAlive(c);
    await c.close();
});

vtest('error events echo the client event_id of the bad event', async () => {
    const c = await d.connect();
    const cases = [
        [{ event_id: 'echo_a', type: 'nope' }, 'unknown_event'],
        [{ event_id: 'echo_b', type: 'session.update', session: 'x' }, 'invalid_type'],
        [{ event_id: 'echo_c', type: 'input_audio_buffer.append' }, 'missing_required_parameter'],
        [{ event_id: 'echo_d', type: 'response.cancel' }, 'response_cancel_not_active'],
    ];
    for (const [ev, code] of cases) await expectError(c, JSON.stringify(ev), code, { eventId: ev.event_id });
    await stillAlive(c);
    await c.close();
});

vtest('voxray_client_errors_total counts the error events by code', async () => {
    const m0 = await d.metrics();
    const c = await d.connect();
    await expectError(c, '{', 'invalid_json');
    await expectError(c, 'nope', 'invalid_json');
    await expectError(c, JSON.stringify({ type: 'x.y' }), 'unknown_event');
    await expectError(c, JSON.stringify({ type: 'input_audio_buffer.append', audio: '!!!!' }), 'invalid_base64');
    await c.close();
    const m1 = await d.metrics();
    const delta = (code) => sumMetric(m1, 'voxray_client_errors_total', { code }) - sumMetric(m0, 'voxray_client_errors_total', { code });
    assert.equal(delta('invalid_json'), 2);
    assert.equal(delta('unknown_event'), 1);
    assert.equal(delta('invalid_base64'), 1);
});

// ------------------------------------------------------------ abuse

async function abuseDaemon() {
    return Daemon.start(simConfig({}, { session: { max_message_size: 65536, max_messages_per_second: 50 } }));
}

vtest('a message over [session] max_message_size closes the socket with 1009, and the daemon serves new sessions', async () => {
    const abuse = await abuseDaemon();
    const c = await abuse.connect();
    c.send({ type: 'input_audio_buffer.append', audio: toBase64(silence(2000)) }); // 96 kB of PCM, 128 kB of base64
    const closed = await c.waitClose();
    assert.equal(closed.code, 1009);
    const c2 = await abuse.connect();
    await stillAlive(c2);
    await c2.close();
});

// Send n small events in one burst (one TCP write).
function burst(c, n) {
    c.ws._socket.cork();
    for (let i = 0; i < n; i++) c.send({ type: 'input_audio_buffer.clear' });
    c.ws._socket.uncork();
}

vtest('more than [session] max_messages_per_second closes the socket with 1008, and the daemon serves new sessions', async () => {
    const abuse = await abuseDaemon();
    const c = await abuse.connect();
    burst(c, 60);
    const closed = await c.waitClose();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /too many messages/);
    const c2 = await abuse.connect();
    await stillAlive(c2);
    await c2.close();
});

vtest('a flood larger than one read still gets the 1008 close frame', async () => {
    const abuse = await abuseDaemon();
    const c = await abuse.connect();
    burst(c, 100); // about 5 kB: more than the server reads at once
    const closed = await c.waitClose();
    assert.equal(closed.code, 1008, 'close frame with 1008, not a dropped connection (1006)');
    const c2 = await abuse.connect();
    await stillAlive(c2);
    await c2.close();
});

vtest('a burst of 600 audio appends (over the default 500 messages per second) still gets the 1008 close frame, not a dropped connection', async () => {
    const c = await d.connect();
    const audio = toBase64(silence(10));
    for (let i = 0; i < 600; i++) c.send({ type: 'input_audio_buffer.append', audio });
    const closed = await c.waitClose();
    assert.equal(closed.code, 1008, 'the close frame was read before the socket closed');
    assert.match(closed.reason, /too many messages/);
    const c2 = await d.connect();
    await stillAlive(c2);
    await c2.close();
});

// ------------------------------------------------------------ backpressure

// Peak resident memory of a process (kB).
function peakRssKb(pid) {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

// Under AddressSanitizer freed memory stays resident (its quarantine):
// memory bounds are only asserted on a normal build.
function sanitized(pid) {
    return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libasan');
}

function assertGrowth(pid, base, maxMb, what) {
    const grown = (peakRssKb(pid) - base) / 1024;
    console.log(`# peak RSS grew by ${grown.toFixed(1)} MB while ${what}`);
    if (!sanitized(pid)) assert.ok(grown < maxMb, `peak RSS grew by ${grown.toFixed(1)} MB while ${what}`);
}

vtest('a client sending faster than its session works is slowed down, not buffered: memory stays bounded and every message is handled', async () => {
    // the reproducer: 60 s appends of 3.8 MB each, as fast as possible
    const dd = await Daemon.start(simConfig({}, { session: { max_input_buffer: 1048576, max_audio_ahead: '3600s' } }));
    const base = peakRssKb(dd.pid);
    const c = await dd.connect();
    const N = 50; // 190 MB in all
    const audio = toBase64(silence(60000));
    for (let i = 0; i < N; i++) c.send({ type: 'input_audio_buffer.append', event_id: `a${i}`, audio });
    c.send({ type: 'input_audio_buffer.append', event_id: 'bad', audio: 'not base64!' });
    const ev = await c.next('error', { timeout: 60000 });
    assert.equal(ev.error.event_id, 'bad', 'the appends were handled in order, without an error');
    await stillAlive(c);
    assertGrowth(dd.pid, base, 64, `one client sent ${(3.84 * N).toFixed(0)} MB (max_input_buffer is 1 MB)`);
    const m = await dd.metrics();
    assert.ok(sumMetric(m, 'voxray_client_input_paused_total', { reason: 'input_buffer' }) >= 1, 'reading was paused');
    await c.close();
});

vtest('an event of a million tiny JSON values is refused before it is parsed (it would cost ~100 MB)', async () => {
    const dd = await Daemon.start(simConfig({}));
    const base = peakRssKb(dd.pid);
    const c = await dd.connect();
    for (let i = 0; i < 5; i++) {
        c.sendRaw(`{"type":"session.update","event_id":"big${i}","session":{"tools":[${'0,'.repeat(1500000)}0]}}`);
        const ev = await c.next('error');
        assert.equal(ev.error.code, 'invalid_event');
        assert.ok(!ev.error.event_id, 'refused unparsed: its event_id is not known');
    }
    await stillAlive(c);
    assertGrowth(dd.pid, base, 32, 'one client sent 5 events of 1.5 million values');
    await c.close();
});

vtest('audio sent far ahead of real time is read at real time: [session] max_audio_ahead', async () => {
    const dd = await Daemon.start(simConfig({}, { session: { max_audio_ahead: '1s' } }));
    const c = await dd.connect();
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) c.send({ type: 'input_audio_buffer.append', audio: toBase64(silence(500)) });
    // 3 s of audio, 2 s over the allowance: reading pauses, and what comes
    // next is read once that is due in real time
    await dd.waitMetrics((m) => sumMetric(m, 'voxray_client_input_paused_total', { reason: 'audio_ahead' }) >= 1,
        { what: 'reading paused' });
    await stillAlive(c);
    // Unheld, the answer comes in tens of ms. Held, the socket is read a
    // read (up to 64 KB: two of these appends) at a time whenever the audio
    // read so far is due, so the update can ride in with the last appends
    // once about 2 s - 1 s of reads are due: at least half a second.
    const waited = Date.now() - t0;
    assert.ok(waited >= 500, `the client was held back to real time (answered after ${waited} ms)`);
    await c.close();
});

vtest('the messages a closing client left queued are dropped, not worked through after it left', async () => {
    const dd = await Daemon.start(simConfig({}, { session: { max_input_buffer: 268435456, max_audio_ahead: '3600s' } }));
    const c = await dd.connect();
    const N = 40;
    const audio = toBase64(silence(60000));
    for (let i = 0; i < N; i++) c.send({ type: 'input_audio_buffer.append', event_id: `a${i}`, audio: i === N - 1 ? 'x' : audio });
    await c.close();
    await dd.waitMetrics((m) => sumMetric(m, 'voxray_active_sessions') === 0, { what: 'the session ended' });
    await sleep(500);
    // the last append is bad: worked through, it would be answered with an error
    assert.equal(sumMetric(await dd.metrics(), 'voxray_client_errors_total'), 0, 'the backlog was dropped');
});

// ------------------------------------------------------------ the conversation's size

function createItem(c, id, text) {
    c.send({ type: 'conversation.item.create', event_id: `ev_${id}`, item: { id, type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
}

vtest('the conversation keeps at most [session] max_conversation_items: the oldest go first, each announced with conversation.item.deleted', async () => {
    const dd = await Daemon.start(simConfig({}, { session: { max_conversation_items: 5 } }));
    const c = await dd.connect();
    for (let i = 1; i <= 8; i++) {
        createItem(c, `item_n${i}`, `number ${i}`);
        await c.next('conversation.item.done', { where: (e) => e.item.id === `item_n${i}` });
    }
    const deleted = c.events.filter((e) => e.type === 'conversation.item.deleted').map((e) => e.item_id);
    assert.deepEqual(deleted, ['item_n1', 'item_n2', 'item_n3']);
    c.send({ type: 'conversation.item.retrieve', item_id: 'item_n3' });
    assert.equal((await c.next('error')).error.code, 'item_not_found');
    c.send({ type: 'conversation.item.retrieve', item_id: 'item_n4' });
    assert.equal((await c.next('conversation.item.retrieved')).item.id, 'item_n4');
    // a response still answers from what is kept
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    assert.equal((await c.collectUntil('response.done')).at(-1).response.status, 'completed');
    await c.close();
});

vtest('the conversation keeps at most [session] max_conversation_bytes of text, and an item over half of it is refused', async () => {
    const dd = await Daemon.start(simConfig({}, { session: { max_conversation_bytes: 65536 } }));
    const c = await dd.connect();
    for (let i = 1; i <= 6; i++) {
        createItem(c, `item_b${i}`, String(i).repeat(20000));
        await c.next('conversation.item.done', { where: (e) => e.item.id === `item_b${i}` });
    }
    const deleted = c.events.filter((e) => e.type === 'conversation.item.deleted').map((e) => e.item_id);
    assert.deepEqual(deleted, ['item_b1', 'item_b2', 'item_b3'], 'three items of 20 kB fit in 64 kB');
    createItem(c, 'item_big', 'x'.repeat(40000));
    const err = await c.next('error');
    assert.equal(err.error.code, 'invalid_value');
    assert.equal(err.error.event_id, 'ev_item_big');
    await stillAlive(c);
    await c.close();
});

vtest('a client piling up conversation items cannot grow the server without bound', { timeout: 180000 }, async () => {
    const dd = await Daemon.start(simConfig({}, {}));
    const base = peakRssKb(dd.pid);
    const c = await dd.connect();
    const N = 100;
    const text = 'y'.repeat(1500000);
    for (let i = 0; i < N; i++) createItem(c, `item_m${i}`, text);
    await c.next('conversation.item.done', { where: (e) => e.item.id === `item_m${N - 1}`, timeout: 170000 });
    // unbounded it held them all, twice (the conversation and its saved copy)
    assertGrowth(dd.pid, base, 128, `one client added ${1.5 * N} MB of items`);
    assert.ok(c.events.filter((e) => e.type === 'conversation.item.deleted').length >= N - 3);
    await c.close();
});

vtest('messages at a lawful rate are not closed', async () => {
    const abuse = await abuseDaemon();
    const c = await abuse.connect();
    for (let i = 0; i < 30; i++) c.send({ type: 'input_audio_buffer.append', audio: toBase64(silence(10)) });
    await sleep(1100);
    for (let i = 0; i < 30; i++) c.send({ type: 'input_audio_buffer.append', audio: toBase64(silence(10)) });
    await stillAlive(c);
    await c.close();
});

// ------------------------------------------------------------ limits

// Try an upgrade; resolves with the HTTP status of a refusal (or 101).
function upgradeStatus(url, headers = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { headers });
        ws.once('open', () => {
            ws.terminate();
            resolve(101);
        });
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.on('data', (b) => (body += b));
            res.on('end', () => resolve({ status: res.statusCode, body }));
            res.on('error', () => resolve({ status: res.statusCode, body }));
        });
        ws.once('error', (e) => {
            if (!/Unexpected server response/.test(e.message)) reject(e);
        });
    });
}

async function pollReady(dm, status, timeout = 5000) {
    const deadline = Date.now() + timeout;
    let r;
    for (;;) {
        r = await dm.get('/ready');
        if (r.status === status) return JSON.parse(r.text);
        if (Date.now() > deadline) throw new Error(`/ready stayed ${r.status} (${r.text}), wanted ${status}`);
        await sleep(50);
    }
}

vtest('[server] max_sessions = 2: a third upgrade gets 503 and /ready fails max_sessions until one closes', async () => {
    const dm = await Daemon.start(simConfig({}, { server: { max_sessions: 2 } }));
    assert.equal((await dm.get('/ready')).status, 200);
    const a = await dm.connect();
    const b = await dm.connect();
    const third = await upgradeStatus(`${dm.wsBase}/v1/realtime`);
    assert.equal(third.status, 503, 'third upgrade refused');
    const ready = await pollReady(dm, 503);
    assert.equal(ready.failing, 'max_sessions');
    assert.equal(ready.checks.sessions.active, 2);
    assert.equal(ready.checks.sessions.max, 2);
    // the open sessions are unaffected
    await stillAlive(a);
    await b.close();
    const again = await pollReady(dm, 200);
    assert.equal(again.status, 'ok');
    const c = await dm.connect();
    await stillAlive(c);
    await c.close();
    await a.close();
});

vtest('[session] idle_timeout = 1s: a silent client gets session_idle_timeout, then close 1000', async () => {
    const dm = await Daemon.start(simConfig({}, { session: { idle_timeout: '1s' } }));
    const c = await dm.connect();
    const ev = await c.next('error', { timeout: 5000 });
    assert.equal(ev.error.code, 'session_idle_timeout');
    const closed = await c.waitClose(5000);
    assert.equal(closed.code, 1000);
});

vtest('[session] idle_timeout does not end a session whose client keeps talking', async () => {
    const dm = await Daemon.start(simConfig({}, { session: { idle_timeout: '1s' } }));
    const c = await dm.connect();
    for (let i = 0; i < 8; i++) {
        await sleep(250);
        await stillAlive(c);
    }
    assert.equal(c.events.filter((e) => e.type === 'error').length, 0);
    await c.close();
});

vtest('[session] idle_timeout counts from the last client message, not from a periodic check', async () => {
    const dm = await Daemon.start(simConfig({}, { session: { idle_timeout: '2s' } }));
    const c = await dm.connect();
    await sleep(1200);
    await stillAlive(c);
    const sent = Date.now();
    c.send({ type: 'input_audio_buffer.clear' });
    const ev = await c.next('error', { timeout: 8000 });
    assert.equal(ev.error.code, 'session_idle_timeout');
    assert.ok(Date.now() - sent >= 1900, `closed ${Date.now() - sent} ms after the last message`);
    const closed = await c.waitClose(5000);
    assert.equal(closed.code, 1000);
});

vtest('[session] max_duration = 1s: the session gets session_expired, then close', async () => {
    const dm = await Daemon.start(simConfig({}, { session: { max_duration: '1s' } }));
    const c = await dm.connect();
    // an active client is expired all the same
    const keep = setInterval(() => c.closed || c.send({ type: 'input_audio_buffer.clear' }), 200);
    try {
        const ev = await c.next('error', { timeout: 5000 });
        assert.equal(ev.error.code, 'session_expired');
        const closed = await c.waitClose(5000);
        assert.equal(closed.code, 1000);
    } finally {
        clearInterval(keep);
    }
});

vtest('GET /v1/realtime without an upgrade answers 426', async () => {
    const r = await d.get('/v1/realtime');
    assert.equal(r.status, 426);
});

vtest('a WebSocket upgrade to another path is answered 404 by the HTTP server', async () => {
    const r = await upgradeStatus(`${d.wsBase}/v1/other`);
    assert.equal(r.status, 404);
    // and the daemon goes on
    const c = await d.connect();
    await stillAlive(c);
    await c.close();
});
