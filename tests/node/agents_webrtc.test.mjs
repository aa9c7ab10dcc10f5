// OpenAI's own WebRTC clients in headless Chromium, pointed at voxray
// instead of api.openai.com.
//
// The Agents SDK's transport (@openai/agents-realtime's
// OpenAIRealtimeWebRTC, its browser bundle), in the flow its documentation
// gives a web app: a server mints an ephemeral key (POST
// /v1/realtime/client_secrets with the API key); the page hands it to
// RealtimeSession.connect(), which posts its SDP offer to
// /v1/realtime/calls without waiting for ICE gathering, waits for
// session.updated on oai-events, takes the microphone (a fake one playing
// a flite WAV) and plays the reply from the remote track.
//
// The beta API's browser example: the key from POST /v1/realtime/sessions,
// the offer posted to /v1/realtime?model=..., beta event names.
//
// A server's control connection to a call the browser set up
// (wss://.../v1/realtime?call_id=, the API's "sideband"), as the API's
// server-side controls and the SDK's OpenAIRealtimeWebSocket({callId}) use it.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Daemon, vtest, stopAll, tempDir, sumMetric, sleep, Client, WebSocket } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const BUNDLE = fileURLToPath(new URL('bundle/openai-realtime-agents.umd.js',
    import.meta.resolve('@openai/agents-realtime')));
const KEY = 'sk-voxray-test-agents-webrtc-7c1e';
const SAID = 'hello how are you';

let d;
let dir;
const browsers = new Set();

before(async () => {
    dir = tempDir('voxray-agents-rtc-');
    d = await Daemon.start({
        'plugin.pocketsphinx': { plugin: 'stt_pocketsphinx', pool_size: 1 },
        'plugin.eliza': { plugin: 'llm_eliza' },
        'plugin.flite': { plugin: 'tts_flite' },
        stt: { providers: 'pocketsphinx' },
        llm: { providers: 'eliza' },
        tts: { providers: 'flite' },
        webrtc: { port_min: 43000, port_max: 43999 },
        auth: { api_keys: KEY },
    });
});

after(async () => {
    await Promise.all([...browsers].map((b) => b.close()));
    await stopAll();
});

// A browser whose microphone plays `text` once, after `lead` s of silence.
async function launch(name, text, lead = 2.5, daemon = d) {
    const raw = path.join(dir, `${name}.raw.wav`);
    const wav = path.join(dir, `${name}.wav`);
    execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', raw]);
    execFileSync('sox', [raw, wav, 'pad', String(lead), '8']);
    const ctx = await chromium.launchPersistentContext(tempDir('voxray-chromium-'), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
            '--disable-features=WebRtcHideLocalIpsWithMdns', '--autoplay-policy=no-user-gesture-required',
            `--use-file-for-fake-audio-capture=${wav}%noloop`],
    });
    browsers.add(ctx);
    const page = await ctx.newPage();
    await page.goto(daemon.url('/health'));
    await page.addScriptTag({ path: BUNDLE });
    return { ctx, page };
}

// What a web app's server does: mint a client secret with the API key.
async function mint() {
    const r = await fetch(d.url('/v1/realtime/client_secrets'), {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ session: { type: 'realtime', instructions: 'You are a patient listener.' } }),
        signal: AbortSignal.timeout(5000),
    });
    assert.equal(r.status, 200);
    return (await r.json()).value;
}

// In the page: RealtimeSession over OpenAIRealtimeWebRTC, as the SDK's
// quick start has it; `interruptOnAudio` calls session.interrupt() when
// the reply audio starts playing. Resolves when connect() did.
function connect(page, ek, { interruptOnAudio = false } = {}) {
    return page.evaluate(async ({ base, ek, interruptOnAudio }) => {
        const { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebRTC } = window.OpenAIAgentsRealtime;
        const r = window.ag = { events: [], history: [], errors: [], done: [] };
        const audioElement = document.createElement('audio');
        document.body.appendChild(audioElement);
        const transport = new OpenAIRealtimeWebRTC({ baseUrl: `${base}/v1/realtime/calls`, audioElement });
        const agent = new RealtimeAgent({ name: 'Listener', instructions: 'You are a patient listener.' });
        const session = new RealtimeSession(agent, { transport, model: 'gpt-realtime' });
        r.session = session;
        r.transport = transport;
        transport.on('*', (ev) => {
            r.events.push(ev.type);
            if (ev.type === 'response.done') r.done.push(ev.response.status);
            if (ev.type === 'session.created') r.sessionId = ev.session.id;
            if (interruptOnAudio && ev.type === 'output_audio_buffer.started') session.interrupt();
        });
        session.on('history_updated', (h) => { r.history = JSON.parse(JSON.stringify(h)); });
        session.on('error', (e) => r.errors.push(JSON.stringify(e?.error ?? String(e))));
        const t0 = performance.now();
        await session.connect({ apiKey: ek });
        return { callId: transport.callId, status: transport.status, ms: performance.now() - t0 };
    }, { base: d.base, ek, interruptOnAudio });
}

// In the page: the SDK's view so far, and the decoded reply audio's energy.
function state(page) {
    return page.evaluate(async () => {
        const r = window.ag;
        let energy = 0;
        const pc = r.transport.connectionState.peerConnection;
        if (pc && pc.connectionState !== 'closed') {
            (await pc.getStats()).forEach((s) => {
                if (s.type === 'inbound-rtp' && s.kind === 'audio') energy = s.totalAudioEnergy || 0;
            });
        }
        return { events: r.events, history: r.history, errors: r.errors, done: r.done, energy,
            status: r.transport.status };
    });
}

async function until(page, pred, what, timeout = 30000) {
    const end = Date.now() + timeout;
    for (;;) {
        const s = await state(page);
        if (pred(s)) return s;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; events: ${s.events.join(',')}; errors: ${s.errors}`);
        await sleep(100);
    }
}

const said = (s, role) => s.history.filter((i) => i.type === 'message' && i.role === role && i.status === 'completed')
    .map((i) => (i.content || []).map((c) => c.transcript ?? c.text ?? '').join(''));

vtest('the Agents SDK WebRTC transport with an ephemeral key: a spoken turn, reply audio on the track, close() hangs up', { timeout: 90000 }, async () => {
    const { page } = await launch('hello', SAID);
    const ek = await mint();
    const c = await connect(page, ek);
    assert.equal(c.status, 'connected');
    assert.match(c.callId, /^rtc_\w+$/);

    const s = await until(page, (x) => said(x, 'assistant').some((t) => t.length > 0) && x.energy > 0 &&
        x.events.includes('output_audio_buffer.stopped'), 'the reply');
    assert.deepEqual(said(s, 'user'), [SAID]);
    assert.deepEqual(s.errors, []);
    // connect() waited for the acknowledgement of the SDK's session.update.
    assert.ok(s.events.indexOf('session.updated') > s.events.indexOf('session.created'), s.events.join(','));
    for (const t of ['input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped',
        'conversation.item.input_audio_transcription.completed', 'response.created', 'output_audio_buffer.started',
        'response.output_audio_transcript.done', 'response.done']) {
        assert.ok(s.events.includes(t), `${t} in ${s.events.join(',')}`);
    }
    assert.equal(await d.sumMetric('webrtc_peer_connections_active'), 1);
    assert.equal(await d.sumMetric('voxray_client_secrets_created_total'), 1);

    // session.close() closes the peer connection without a DELETE.
    await page.evaluate(() => window.ag.session.close());
    const end = Date.now() + 15000;
    while (await d.sumMetric('webrtc_peer_connections_active') !== 0) {
        if (Date.now() > end) throw new Error('the call is still up after close()');
        await sleep(100);
    }
    assert.equal(sumMetric(await d.metrics(), 'webrtc_connection_failures_total'), 0);
});

vtest('the Agents SDK WebRTC transport: session.interrupt() while the reply plays clears the output buffer', { timeout: 90000 }, async () => {
    const { page } = await launch('interrupt', 'i want to talk about my mother and my father');
    const c = await connect(page, await mint(), { interruptOnAudio: true });
    assert.equal(c.status, 'connected');
    const s = await until(page, (x) => x.events.includes('output_audio_buffer.cleared') && x.done.length > 0,
        'output_audio_buffer.cleared');
    const i = s.events.indexOf('output_audio_buffer.started');
    assert.ok(i >= 0 && s.events.indexOf('output_audio_buffer.cleared') > i, s.events.join(','));
    assert.ok(!s.events.slice(i).includes('output_audio_buffer.stopped'), `stopped after a clear: ${s.events.join(',')}`);
    // The SDK sent response.cancel before the clear: the reply was cut short.
    assert.deepEqual(s.done, ['cancelled']);
    assert.deepEqual(s.errors, []);
    // What the browser hears afterwards (once what it had buffered played
    // out) is silence.
    await sleep(1000);
    const e1 = (await state(page)).energy;
    await sleep(1000);
    const e2 = (await state(page)).energy;
    console.log(`reply audio energy at the clear ${s.energy}, 1 s later ${e1}, 2 s later ${e2}`);
    assert.ok(e2 - e1 < 1e-3, `audio went on after the clear: energy ${e1} -> ${e2}`);
    await page.evaluate(() => window.ag.session.close());
});

vtest('the beta API\'s WebRTC example: key from /v1/realtime/sessions, offer to /v1/realtime, beta events', { timeout: 90000 }, async () => {
    const { page } = await launch('beta', SAID);
    const r = await fetch(d.url('/v1/realtime/sessions'), {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-realtime-preview-2024-12-17', voice: 'slt', instructions: 'Listen.' }),
    });
    assert.equal(r.status, 200);
    const ek = (await r.json()).client_secret.value;
    const res = await page.evaluate(async ({ base, ek }) => {
        const out = window.beta = { events: [] };
        const pc = new RTCPeerConnection();
        out.pc = pc;
        const el = document.createElement('audio');
        el.autoplay = true;
        pc.ontrack = (e) => { el.srcObject = e.streams[0]; };
        const ms = await navigator.mediaDevices.getUserMedia({ audio: true });
        pc.addTrack(ms.getTracks()[0]);
        const dc = pc.createDataChannel('oai-events');
        dc.addEventListener('message', (e) => out.events.push(JSON.parse(e.data)));
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        const sdpResponse = await fetch(`${base}/v1/realtime?model=gpt-4o-realtime-preview-2024-12-17`, {
            method: 'POST',
            body: offer.sdp,
            headers: { Authorization: `Bearer ${ek}`, 'Content-Type': 'application/sdp' },
        });
        const answer = { type: 'answer', sdp: await sdpResponse.text() };
        if (sdpResponse.status !== 201) return { status: sdpResponse.status, body: answer.sdp };
        await pc.setRemoteDescription(answer);
        return { status: sdpResponse.status };
    }, { base: d.base, ek });
    assert.equal(res.status, 201, res.body);
    const end = Date.now() + 30000;
    let evs = [];
    while (!evs.some((e) => e.type === 'response.done')) {
        if (Date.now() > end) throw new Error(`no reply: ${evs.map((e) => e.type).join(',')}`);
        await sleep(100);
        evs = await page.evaluate(() => window.beta.events);
    }
    const types = evs.map((e) => e.type);
    const created = evs.find((e) => e.type === 'session.created');
    assert.ok(created && 'modalities' in created.session, 'a beta session.created');
    const updated = evs.find((e) => e.type === 'session.updated');
    assert.equal(updated?.session.voice, 'slt', 'the key\'s configuration applied');
    assert.equal(updated.session.instructions, 'Listen.');
    assert.equal(evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed')?.transcript, SAID);
    // Beta names, not GA ones.
    assert.ok(types.includes('response.audio_transcript.done'), types.join(','));
    assert.ok(types.includes('response.audio.done'), types.join(','));
    assert.ok(!types.some((t) => t.startsWith('response.output_audio')), types.join(','));
    assert.ok(types.includes('output_audio_buffer.started'), types.join(','));
    await page.evaluate(() => window.beta.pc.close());
});

// A WebSocket to /v1/realtime with query q and headers; resolves with the
// Client once open, or {status, body} when the upgrade is refused.
function openControl(q, headers, daemon = d) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(`${daemon.wsBase}/v1/realtime?${q}`, { headers, perMessageDeflate: false });
        const c = new Client(ws);
        ws.once('open', () => resolve(c));
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.on('data', (x) => (body += x));
            res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body || 'null') }));
        });
        ws.once('error', reject);
    });
}

vtest('a server\'s control connection (?call_id=) to a browser\'s call: the same events, its session.update applies to the call, it closes with the call', { timeout: 90000 }, async () => {
    const { page } = await launch('control', SAID, 4);
    const c = await connect(page, await mint());
    assert.match(c.callId, /^rtc_\w+$/);

    // Only an API key may attach, and only to a live call.
    const bySecret = await openControl(`call_id=${c.callId}`, { Authorization: `Bearer ${await mint()}` });
    assert.equal(bySecret.status, 401);
    const unknown = await openControl('call_id=rtc_nosuchcall', { Authorization: `Bearer ${KEY}` });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'call_not_found');

    const ctl = await openControl(`call_id=${c.callId}`, { Authorization: `Bearer ${KEY}` });
    assert.ok(ctl instanceof Client, JSON.stringify(ctl));
    const created = await ctl.next('session.created');
    assert.equal(created.session.id, await page.evaluate(() => window.ag.sessionId), 'the call\'s own session');
    assert.equal(await d.sumMetric('voxray_active_sessions'), 1, 'a control connection is not a session');

    // At most 4 per call: a fifth is closed at once with 1008.
    const more = [];
    for (let i = 0; i < 3; i++) more.push(await openControl(`call_id=${c.callId}`, { Authorization: `Bearer ${KEY}` }));
    for (const m of more) await m.next('session.created');
    const fifth = await openControl(`call_id=${c.callId}`, { Authorization: `Bearer ${KEY}` });
    assert.equal((await fifth.closedP).code, 1008);
    for (const m of more) m.ws.close();
    await Promise.all(more.map((m) => m.closedP));

    // The server sets the instructions; the browser's client sees it applied.
    const upd = await ctl.update({ instructions: 'Set by the server.' });
    assert.equal(upd.session.instructions, 'Set by the server.');
    await until(page, (x) => x.events.filter((t) => t === 'session.updated').length >= 2, 'the server\'s update on the call');

    // The spoken turn: the control connection sees it as the call does.
    const turn = await ctl.collectUntil('response.done', { timeout: 30000 });
    const heard = turn.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    assert.equal(heard?.transcript, SAID);
    assert.ok(turn.some((e) => e.type === 'response.output_audio_transcript.done'));
    assert.ok(!turn.some((e) => e.type === 'response.output_audio.delta'), 'audio stays on the call\'s track');
    // The call's own playback events too.
    assert.ok(turn.some((e) => e.type === 'output_audio_buffer.started'), turn.map((e) => e.type).join(','));
    await ctl.next('output_audio_buffer.stopped', { timeout: 15000 });

    // The server hangs up (the API's POST .../hangup): the control
    // connection is closed too, and the browser sees its call end.
    const hangup = (id, method = 'POST') => fetch(d.url(`/v1/realtime/calls/${id}/hangup`),
        { method, headers: { Authorization: `Bearer ${KEY}` } });
    assert.equal((await hangup('rtc_nosuchcall')).status, 404);
    const get = await hangup(c.callId, 'GET');
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    const h = await hangup(c.callId);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), {});
    const closed = await ctl.closedP;
    assert.equal(closed.code, 1000);
    assert.match(closed.reason, /call has ended/);
    await until(page, (x) => x.status === 'disconnected', 'the browser\'s call to end');
    assert.equal(await d.sumMetric('http_requests_total', { route: '/v1/realtime/calls/{call_id}/hangup', method: 'POST', status_code: '200' }), 1);
});

vtest('tools kept on the server: the control connection offers a tool, answers the call the model makes, and the browser hears the reply', { timeout: 90000 }, async () => {
    // ELIZA has no tools: the sim model calls get_weather when it is offered.
    const dt = await Daemon.start({
        'plugin.pocketsphinx': { plugin: 'stt_pocketsphinx', pool_size: 1 },
        'plugin.sim': { plugin: 'sim', tool_call: 'get_weather {"city":"Paris"}', token_delay: '5ms' },
        'plugin.flite': { plugin: 'tts_flite' },
        stt: { providers: 'pocketsphinx' },
        llm: { providers: 'sim' },
        tts: { providers: 'flite' },
        webrtc: { port_min: 44000, port_max: 44999 },
        auth: { api_keys: KEY },
    });
    const { page } = await launch('tools', 'what is the weather in paris', 4, dt);
    const r = await fetch(dt.url('/v1/realtime/client_secrets'), {
        method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: '{}',
    });
    const ek = (await r.json()).value;
    // The browser: a plain WebRTC client that knows nothing of the tool.
    const call = await page.evaluate(async ({ base, ek }) => {
        const out = window.plain = { events: [] };
        const pc = new RTCPeerConnection();
        out.pc = pc;
        const el = document.createElement('audio');
        el.autoplay = true;
        pc.ontrack = (e) => { el.srcObject = e.streams[0]; };
        const ms = await navigator.mediaDevices.getUserMedia({ audio: true });
        pc.addTrack(ms.getTracks()[0]);
        const dc = pc.createDataChannel('oai-events');
        dc.addEventListener('message', (e) => out.events.push(JSON.parse(e.data)));
        await pc.setLocalDescription(await pc.createOffer());
        const resp = await fetch(`${base}/v1/realtime/calls`, {
            method: 'POST', body: pc.localDescription.sdp,
            headers: { Authorization: `Bearer ${ek}`, 'Content-Type': 'application/sdp' },
        });
        const sdp = await resp.text();
        if (resp.status !== 201) return { status: resp.status, body: sdp };
        await pc.setRemoteDescription({ type: 'answer', sdp });
        return { status: 201, location: resp.headers.get('Location') };
    }, { base: dt.base, ek });
    assert.equal(call.status, 201, call.body);
    const callId = call.location.split('/').pop();

    // The server attaches as soon as it has the call id: until the peer has
    // connected that is 409 call_not_connected, to retry. Then it offers
    // the tool before the caller speaks.
    let ctl;
    for (const until = Date.now() + 15000; ;) {
        ctl = await openControl(`call_id=${callId}`, { Authorization: `Bearer ${KEY}` }, dt);
        if (ctl instanceof Client) break;
        assert.equal(ctl.status, 409, JSON.stringify(ctl));
        assert.equal(ctl.body.error.code, 'call_not_connected');
        if (Date.now() > until) throw new Error('the call never connected');
        await sleep(100);
    }
    await ctl.next('session.created');
    const upd = await ctl.update({ tools: [{
        type: 'function', name: 'get_weather', description: 'Current weather in a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    }] });
    assert.equal(upd.session.tools[0].name, 'get_weather');

    // The caller's question ends in a function call, which the server runs.
    const first = await ctl.next('response.done', { timeout: 40000 });
    const fc = first.response.output[0];
    assert.equal(fc.type, 'function_call', JSON.stringify(first.response));
    assert.equal(fc.name, 'get_weather');
    assert.deepEqual(JSON.parse(fc.arguments), { city: 'Paris' });
    ctl.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: fc.call_id, output: '{"sky":"sunny"}' } });
    ctl.send({ type: 'response.create' });
    const second = await ctl.next('response.done', { timeout: 20000 });
    assert.equal(second.response.status, 'completed');
    const said = second.response.output[0].content[0].transcript;
    assert.match(said, /Tool said/);

    // The browser got the same events and hears the answer on its track.
    const end = Date.now() + 20000;
    for (;;) {
        const s = await page.evaluate(async () => {
            let energy = 0;
            (await window.plain.pc.getStats()).forEach((x) => {
                if (x.type === 'inbound-rtp' && x.kind === 'audio') energy = x.totalAudioEnergy || 0;
            });
            return { types: window.plain.events.map((e) => e.type), done: window.plain.events.filter((e) => e.type === 'response.done').length, energy };
        });
        if (s.done >= 2 && s.energy > 0 && s.types.includes('output_audio_buffer.stopped')) break;
        if (Date.now() > end) throw new Error(`the browser did not hear the answer: ${JSON.stringify(s)}`);
        await sleep(200);
    }
    const browserDone = await page.evaluate(() => window.plain.events.filter((e) => e.type === 'response.done').map((e) => e.response.output[0].type));
    assert.deepEqual(browserDone, ['function_call', 'message']);
    await page.evaluate(() => window.plain.pc.close());
    assert.equal((await ctl.closedP).code, 1000);
});
