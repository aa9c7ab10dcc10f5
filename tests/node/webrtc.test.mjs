// WebRTC calls (POST /v1/realtime/calls) from headless Chromium with a fake
// microphone playing a WAV synthesized by flite, against the offline
// default (pocketsphinx hears, ELIZA answers, flite speaks): the same
// signalling and data channel an OpenAI Realtime WebRTC client uses.
//
// The browser code is plain RTCPeerConnection in a page of the daemon's own
// origin; what it sees (events, the decoded reply audio's energy from
// getStats) comes back through page.evaluate.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Daemon, vtest, stopAll, tempDir, sumMetric, sleep } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const SAID = 'hello how are you';
const PROVIDERS = {
    'plugin.pocketsphinx': { plugin: 'stt_pocketsphinx', pool_size: 1 },
    'plugin.eliza': { plugin: 'llm_eliza' },
    'plugin.flite': { plugin: 'tts_flite' },
    stt: { providers: 'pocketsphinx' },
    llm: { providers: 'eliza' },
    tts: { providers: 'flite' },
};
const BROWSER_ARGS = [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--autoplay-policy=no-user-gesture-required',
];

let dir;
let d; // the offline default, WebRTC on
const browsers = new Set();

function synth(name, texts, { lead = 2.5, gap = 1.3, tail = 2.5 } = {}) {
    const parts = texts.map((text, i) => {
        const raw = path.join(dir, `${name}-${i}.raw.wav`);
        const padded = path.join(dir, `${name}-${i}.wav`);
        execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', raw]);
        execFileSync('sox', [raw, padded, 'pad', String(i === 0 ? lead : 0), String(i === texts.length - 1 ? tail : gap)]);
        return padded;
    });
    const out = path.join(dir, `${name}.wav`);
    execFileSync('sox', [...parts, out]);
    return out;
}

async function launch(wav) {
    const args = [...BROWSER_ARGS];
    if (wav) args.push(`--use-file-for-fake-audio-capture=${wav}%noloop`);
    const ctx = await chromium.launchPersistentContext(tempDir('voxray-chromium-'), {
        executablePath: CHROMIUM,
        headless: true,
        args,
    });
    browsers.add(ctx);
    return ctx;
}

async function closeBrowser(ctx) {
    browsers.delete(ctx);
    await ctx.close();
}

// In the page: a call as an OpenAI WebRTC client makes it. Returns a handle
// on window.rtc: events (type, t ms), remote audio energy, the answer.
function pageCall(opts) {
    return async ({ audio, wait, hold, multipart, session, stripCandidates, path = '/v1/realtime/calls' }) => {
        const r = { events: [], log: [], energy: 0, status: 0, location: null, answer: '' };
        window.rtc = r;
        const t0 = performance.now();
        const pc = new RTCPeerConnection();
        r.pc = pc;
        if (audio) {
            const ms = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
            pc.addTrack(ms.getAudioTracks()[0], ms);
        }
        const dc = pc.createDataChannel('oai-events');
        r.dc = dc;
        dc.onopen = () => r.log.push('open');
        dc.onclose = () => r.log.push('dc closed');
        dc.onmessage = (e) => {
            const ev = JSON.parse(e.data);
            r.events.push({ ...ev, t: performance.now() - t0 });
        };
        pc.ontrack = (e) => {
            const el = document.createElement('audio');
            el.srcObject = e.streams[0] || new MediaStream([e.track]);
            el.autoplay = true;
            document.body.appendChild(el);
            r.log.push('track');
        };
        pc.oniceconnectionstatechange = () => {
            if (pc.iceConnectionState === 'connected') r.connectedMs = performance.now() - t0;
        };
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        let sdp = offer.sdp;
        if (stripCandidates) sdp = sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate')).join('\r\n');
        let body, headers = {};
        if (multipart) {
            body = new FormData();
            body.set('sdp', sdp);
            if (session) body.set('session', JSON.stringify(session));
        } else {
            body = sdp;
            headers['Content-Type'] = 'application/sdp';
        }
        const resp = await fetch(path, { method: 'POST', body, headers });
        r.status = resp.status;
        r.location = resp.headers.get('Location');
        r.answer = await resp.text();
        if (resp.status !== 201 || hold) return { status: r.status, location: r.location, answer: r.answer };
        await pc.setRemoteDescription({ type: 'answer', sdp: r.answer });
        return { status: r.status, location: r.location, answer: r.answer };
    };
}

// In the page: the events so far, and the energy of the reply audio the
// browser decoded (inbound-rtp totalAudioEnergy).
async function state(page) {
    return page.evaluate(async () => {
        const r = window.rtc;
        let energy = 0, packets = 0;
        if (r.pc.connectionState !== 'closed') {
            (await r.pc.getStats()).forEach((s) => {
                if (s.type === 'inbound-rtp' && s.kind === 'audio') {
                    energy = s.totalAudioEnergy || 0;
                    packets = s.packetsReceived || 0;
                }
            });
        }
        return { events: r.events, log: r.log, energy, packets, connectedMs: r.connectedMs };
    });
}

async function waitFor(page, pred, timeout = 30000) {
    const end = Date.now() + timeout;
    for (;;) {
        const s = await state(page);
        if (pred(s)) return s;
        if (Date.now() > end) throw new Error(`timed out; events: ${s.events.map((e) => e.type).join(',')}; log ${s.log}`);
        await sleep(100);
    }
}

const types = (s) => s.events.map((e) => e.type);

// A test starts with no browser left from an earlier one (which may have
// failed half-way with its call still up).
async function fresh() {
    await Promise.all([...browsers].map((b) => closeBrowser(b)));
}

async function newPage(ctx, daemon) {
    const page = await ctx.newPage();
    await page.goto(daemon.url('/health'));
    return page;
}

async function waitMetric(daemon, name, filter, pred, timeout = 15000) {
    const end = Date.now() + timeout;
    for (;;) {
        const v = sumMetric(await daemon.metrics(), name, filter);
        if (pred(v)) return v;
        if (Date.now() > end) throw new Error(`${name} ${JSON.stringify(filter)} is ${v}`);
        await sleep(100);
    }
}

before(async () => {
    dir = tempDir('voxray-webrtc-');
    d = await Daemon.start({ ...PROVIDERS, webrtc: { port_min: 41000, port_max: 41999, rtp_timeout: '3s' } });
});

after(async () => {
    await Promise.all([...browsers].map((b) => closeBrowser(b)));
    await stopAll();
});

vtest('a spoken turn over WebRTC: transcript and events on oai-events, reply audio on the track, DELETE hangs up', async (t) => {
    await fresh();
    const ctx = await launch(synth('hello', [SAID]));
    const page = await newPage(ctx, d);
    const res = await page.evaluate(pageCall(), {
        audio: true, multipart: true, session: { instructions: 'You are a test.' },
    });
    assert.equal(res.status, 201, res.answer);
    assert.match(res.location, /^\/v1\/realtime\/calls\/rtc_\w+$/);
    assert.match(res.answer, /^v=0/);
    assert.match(res.answer, /a=candidate:/);
    // Host candidates come from [webrtc] port_min..port_max.
    for (const l of res.answer.split('\r\n').filter((x) => x.startsWith('a=candidate:'))) {
        const port = Number(l.split(' ')[5]);
        assert.ok(port >= 41000 && port <= 41999, `candidate port ${port} in range: ${l}`);
    }
    const s = await waitFor(page, (x) => types(x).includes('output_audio_buffer.stopped') && x.energy > 0);
    const ty = types(s);
    assert.equal(ty[0], 'session.created');
    assert.ok(ty.includes('session.updated'), 'the form\'s session was applied');
    const tr = s.events.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    // (The WAV starts with 2.5 s of silence: the fake microphone plays from
    // getUserMedia on, before the call is up.)
    assert.equal(tr.transcript, SAID);
    const done = s.events.find((e) => e.type === 'response.done');
    assert.equal(done.response.status, 'completed');
    assert.ok(ty.indexOf('output_audio_buffer.started') < ty.indexOf('output_audio_buffer.stopped'));
    assert.ok(!ty.includes('response.output_audio.delta'), 'audio goes on the track, not in events');
    assert.ok(s.energy > 0.001, `reply audio decoded by the browser has energy (${s.energy})`);
    const speechEnd = s.events.find((e) => e.type === 'input_audio_buffer.speech_stopped').t;
    const firstAudio = s.events.find((e) => e.type === 'output_audio_buffer.started').t;
    t.diagnostic(`offer -> connected ${Math.round(s.connectedMs)} ms; end of speech -> reply audio ${Math.round(firstAudio - speechEnd)} ms; ` +
        `${s.packets} RTP packets received, energy ${s.energy.toFixed(4)}`);

    let m = await d.metrics();
    assert.equal(sumMetric(m, 'webrtc_peer_connections_active'), 1);
    assert.ok(sumMetric(m, 'webrtc_peer_connections_total', { state: 'connected' }) >= 1);
    assert.ok(sumMetric(m, 'webrtc_bytes_sent_total') > 1000);
    assert.ok(sumMetric(m, 'webrtc_bytes_received_total') > 1000);
    assert.ok(sumMetric(m, 'http_requests_total', { route: '/v1/realtime/calls', status_code: '201' }) >= 1);
    assert.ok(sumMetric(m, 'voxray_turn_latency_seconds_count') >= 1, 'WebRTC turns feed the pipeline families');
    const ready = await d.getJSON('/ready');
    assert.equal(ready.body.checks.sessions.active, 1, '/ready counts the WebRTC session');

    const del = await d.get(res.location, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await waitFor(page, (x) => x.log.includes('dc closed'), 10000);
    await waitMetric(d, 'webrtc_peer_connections_active', {}, (v) => v === 0);
    m = await d.metrics();
    assert.ok(sumMetric(m, 'webrtc_peer_connections_total', { state: 'closed' }) >= 1);
    assert.equal(sumMetric(m, 'voxray_active_sessions'), 0);
    assert.equal((await d.get(res.location, { method: 'DELETE' })).status, 404);
    await closeBrowser(ctx);
});

vtest('barge-in over WebRTC: speech during the reply cancels it and clears the queued audio', async () => {
    await fresh();
    const ctx = await launch(synth('barge', [SAID, SAID], { gap: 2.5 }));
    const page = await newPage(ctx, d);
    const res = await page.evaluate(pageCall(), { audio: true });
    assert.equal(res.status, 201);
    const s = await waitFor(page, (x) => types(x).includes('output_audio_buffer.cleared'), 40000);
    const ty = types(s);
    const cancelled = s.events.find((e) => e.type === 'response.done' && e.response.status === 'cancelled');
    assert.ok(cancelled, `a response was cancelled: ${ty.join(',')}`);
    assert.ok(ty.indexOf('output_audio_buffer.started') < ty.indexOf('output_audio_buffer.cleared'));
    const cleared = s.events.find((e) => e.type === 'output_audio_buffer.cleared');
    assert.equal(cleared.response_id, cancelled.response.id);
    await closeBrowser(ctx);
});

vtest('output_audio_buffer.clear on oai-events cuts the reply off mid-sentence, and is answered even when nothing plays', async () => {
    await fresh();
    // Replies spoken at half speed ("Tell me more about your family." lasts
    // 4.6 s): had the clear not cut it, the reply would still be playing in
    // the window measured after it.
    const dc = await Daemon.start({ ...PROVIDERS, 'plugin.flite': { plugin: 'tts_flite', rate: '0.5' } });
    const ctx = await launch(synth('clear', ['i want to talk about my mother and my father']));
    const page = await newPage(ctx, dc);
    const res = await page.evaluate(pageCall(), { audio: true });
    assert.equal(res.status, 201);
    const send = (ev) => page.evaluate((e) => window.rtc.dc.send(JSON.stringify(e)), ev);
    const energyGrows = async (ms) => {
        const e1 = (await state(page)).energy;
        await sleep(ms);
        return (await state(page)).energy - e1;
    };
    await waitFor(page, (x) => types(x).includes('output_audio_buffer.started'), 40000);
    const before = await energyGrows(1500);
    assert.ok(before > 1e-3, `the reply is audible before the clear (${before})`);
    // No response.cancel first: the clear alone stops the reply.
    await send({ type: 'output_audio_buffer.clear', event_id: 'clr_1' });
    let s = await waitFor(page, (x) => types(x).includes('output_audio_buffer.cleared'));
    const done = s.events.find((e) => e.type === 'response.done');
    assert.equal(done?.response.status, 'cancelled', types(s).join(','));
    assert.equal(done.response.status_details?.reason, 'client_cancelled');
    assert.equal(s.events.find((e) => e.type === 'output_audio_buffer.cleared').response_id, done.response.id);
    // What the browser had buffered plays out (up to a second under load);
    // then silence, while the uncut reply would still be speaking.
    await sleep(1000);
    const after = await energyGrows(1000);
    assert.ok(after < before / 20, `silence after the clear: energy grew ${after} in 1 s, ${before} in 1.5 s before`);
    // Nothing plays now: the clear is still acknowledged, with no error.
    await send({ type: 'output_audio_buffer.clear', event_id: 'clr_2' });
    s = await waitFor(page, (x) => types(x).filter((t) => t === 'output_audio_buffer.cleared').length === 2);
    assert.ok(!types(s).includes('error'), types(s).join(','));
    assert.ok(!types(s).includes('output_audio_buffer.stopped'), types(s).join(','));
    await closeBrowser(ctx);
});

vtest('the peer closing its RTCPeerConnection hangs up at once: counted closed, not as a failure', async () => {
    await fresh();
    // rtp_timeout is long here: only the peer's close can end the call.
    const d3 = await Daemon.start({ ...PROVIDERS, webrtc: { rtp_timeout: '120s' } });
    const ctx = await launch(synth('close', [SAID]));
    const page = await newPage(ctx, d3);
    const res = await page.evaluate(pageCall(), { audio: true });
    assert.equal(res.status, 201);
    await waitFor(page, (x) => types(x).includes('session.created'));
    let m = await d3.metrics();
    assert.equal(sumMetric(m, 'webrtc_peer_connections_active'), 1);
    assert.equal(sumMetric(m, 'voxray_active_sessions'), 1);
    await page.evaluate(() => window.rtc.pc.close());
    await waitMetric(d3, 'webrtc_peer_connections_active', {}, (v) => v === 0, 10000);
    m = await d3.metrics();
    assert.equal(sumMetric(m, 'webrtc_peer_connections_total', { state: 'closed' }), 1);
    assert.equal(sumMetric(m, 'webrtc_peer_connections_total', { state: 'failed' }), 0);
    assert.equal(sumMetric(m, 'webrtc_connection_failures_total'), 0);
    assert.equal(sumMetric(m, 'voxray_active_sessions'), 0);
    assert.match(d3.log(), /webrtc call ended call_id=rtc_\w+ reason=peer_closed/);
    // The slot is free again: a new call is taken.
    const page2 = await newPage(ctx, d3);
    assert.equal((await page2.evaluate(pageCall(), { audio: true })).status, 201);
    await waitFor(page2, (x) => types(x).includes('session.created'));
    await page2.evaluate(() => window.rtc.pc.close());
    await waitMetric(d3, 'webrtc_peer_connections_active', {}, (v) => v === 0, 10000);
    assert.equal(sumMetric(await d3.metrics(), 'webrtc_connection_failures_total'), 0);
    await closeBrowser(ctx);
});

vtest('a client whose call dropped reconnects with ?session_id= and resumes its conversation', async () => {
    await fresh();
    const before = sumMetric(await d.metrics(), 'webrtc_reconnection_attempts_total');
    const ctx = await launch(synth('resume', [SAID]));
    const page = await newPage(ctx, d);
    assert.equal((await page.evaluate(pageCall(), { audio: true })).status, 201);
    let s = await waitFor(page, (x) => types(x).includes('response.done'), 40000);
    const id = s.events.find((e) => e.type === 'session.created').session.id;
    const userItem = s.events.find((e) => e.type === 'conversation.item.input_audio_transcription.completed').item_id;
    await page.evaluate(() => window.rtc.pc.close()); // the call drops
    await waitMetric(d, 'webrtc_peer_connections_active', {}, (v) => v === 0);
    // The reconnection: a new offer naming the session.
    const page2 = await newPage(ctx, d);
    const res = await page2.evaluate(pageCall(), { audio: true, path: `/v1/realtime/calls?session_id=${id}` });
    assert.equal(res.status, 201, res.answer);
    s = await waitFor(page2, (x) => types(x).includes('session.created') &&
        x.events.some((e) => e.type === 'conversation.item.added' && e.item.id === userItem), 15000);
    assert.equal(s.events.find((e) => e.type === 'session.created').session.id, id, 'the same session');
    assert.equal(sumMetric(await d.metrics(), 'webrtc_reconnection_attempts_total'), before + 1);
    await page2.evaluate(() => window.rtc.pc.close());
    // An unknown id: a fresh session, and still counted as an attempt.
    const page3 = await newPage(ctx, d);
    assert.equal((await page3.evaluate(pageCall(), { audio: true, path: '/v1/realtime/calls?session_id=sess_doesnotexist' })).status, 201);
    s = await waitFor(page3, (x) => types(x).includes('session.created'));
    assert.notEqual(s.events.find((e) => e.type === 'session.created').session.id, 'sess_doesnotexist');
    assert.ok(s.events.some((e) => e.type === 'error' && e.error.code === 'session_not_found'), types(s).join(','));
    assert.equal(sumMetric(await d.metrics(), 'webrtc_reconnection_attempts_total'), before + 2);
    await page3.evaluate(() => window.rtc.pc.close());
    await waitMetric(d, 'webrtc_peer_connections_active', {}, (v) => v === 0);
    await closeBrowser(ctx);
});

vtest('bad offers get 400/415 with a clear error and leave nothing behind', async () => {
    await fresh();
    await waitMetric(d, 'webrtc_peer_connections_active', {}, (v) => v === 0);
    const before = await d.metrics();
    const post = (body, ct = 'application/sdp') =>
        d.get('/v1/realtime/calls', { method: 'POST', body, headers: { 'Content-Type': ct } });
    let r = await post('this is not sdp');
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.text).error.code, 'invalid_offer');
    r = await post('v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:x\r\na=fingerprint:sha-256 AA\r\n' +
        'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n');
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error.message, /no audio/);
    r = await post('{"sdp":"v=0"}', 'application/json');
    assert.equal(r.status, 415);
    r = await d.get('/v1/realtime/calls', {});
    assert.equal(r.status, 405);
    r = await d.get('/v1/realtime/calls/rtc_nosuchcall', { method: 'DELETE' });
    assert.equal(r.status, 404);
    // A browser offer without a microphone has no audio section.
    const ctx = await launch(null);
    const page = await newPage(ctx, d);
    const res = await page.evaluate(pageCall(), { audio: false, hold: true });
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.answer).error.message, /no audio/);
    await closeBrowser(ctx);
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'webrtc_peer_connections_active'), 0);
    assert.equal(sumMetric(m, 'webrtc_peer_connections_total'), sumMetric(before, 'webrtc_peer_connections_total'));
    assert.ok(sumMetric(m, 'http_requests_total', { route: '/v1/realtime/calls', status_code: '400' }) >= 3);
});

vtest('a peer that never completes ICE times out (ice_timeout); max_peers refuses with 503; a data-channel flood closes the call', async () => {
    await fresh();
    const d2 = await Daemon.start({
        ...PROVIDERS,
        session: { max_messages_per_second: 20 },
        webrtc: { connect_timeout: '1s', max_peers: 1 },
    });
    const ctx = await launch(synth('hello2', [SAID]));
    const page = await newPage(ctx, d2);
    // An offer with no candidates whose answer is never applied: no ICE.
    const res = await page.evaluate(pageCall(), { audio: true, hold: true, stripCandidates: true });
    assert.equal(res.status, 201, res.answer);
    assert.equal(sumMetric(await d2.metrics(), 'webrtc_peer_connections_active'), 1);
    const page2 = await newPage(ctx, d2);
    const res2 = await page2.evaluate(pageCall(), { audio: true, hold: true });
    assert.equal(res2.status, 503);
    assert.match(JSON.parse(res2.answer).error.message, /max_peers/);
    await waitMetric(d2, 'webrtc_connection_failures_total', { reason: 'ice_timeout' }, (v) => v === 1);
    let m = await d2.metrics();
    assert.equal(sumMetric(m, 'webrtc_peer_connections_active'), 0);
    assert.equal(sumMetric(m, 'webrtc_peer_connections_total', { state: 'failed' }), 1);
    assert.equal(sumMetric(m, 'webrtc_reconnection_attempts_total'), 0);

    // The flood: 100 events at once on oai-events.
    const page3 = await newPage(ctx, d2);
    const res3 = await page3.evaluate(pageCall(), { audio: true });
    assert.equal(res3.status, 201);
    await waitFor(page3, (x) => types(x).includes('session.created'));
    await page3.evaluate(() => {
        for (let i = 0; i < 100; i++) window.rtc.dc.send(JSON.stringify({ type: 'input_audio_buffer.clear' }));
    });
    const s = await waitFor(page3, (x) => x.events.some((e) => e.type === 'error'), 15000);
    const err = s.events.find((e) => e.type === 'error' && e.error.code === 'rate_limit_exceeded');
    assert.ok(err, `an error event says why: ${types(s).join(',')}`);
    await waitMetric(d2, 'webrtc_peer_connections_active', {}, (v) => v === 0);
    m = await d2.metrics();
    assert.equal(sumMetric(m, 'voxray_active_sessions'), 0);
    await closeBrowser(ctx);
});
