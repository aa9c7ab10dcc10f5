// The demo page at GET / in headless Chromium, with a fake microphone that
// plays a WAV file synthesized by flite: the page calls over WebRTC
// (POST /v1/realtime/calls) by default, over the WebSocket (/v1/realtime)
// with ?transport=ws or when WebRTC cannot be set up, streams the
// microphone, shows the conversation and plays the reply.
//
// The page reports what it shows through window.voxray (see web/app.js).
// Every browser process is Playwright's child and is closed in after().
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Daemon, vtest, stopAll, tempDir, sumMetric, sleep, TOP_SRCDIR, TOP_BUILDDIR } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const WEB_ROOT = path.join(TOP_SRCDIR, 'web');
const SAID = 'hello how are you'; // what the WAV says and the STT must hear
// Screenshots outlive the run (temp dirs do not): build tree, overwritten.
const shotPath = (name) => path.join(TOP_BUILDDIR, 'tests', 'node', `demo_page-${name}.png`);

// ---------------------------------------------------------------- PROVIDERS
// The STT, LLM and TTS the page talks to. Whatever is configured here must
// transcribe the WAV below as SAID and answer with some text and audio.
// The offline default of conf/voxray.ini: pocketsphinx hears, ELIZA answers,
// flite speaks.
const PROVIDERS = {
    'plugin.pocketsphinx': { plugin: 'stt_pocketsphinx', pool_size: 1 },
    'plugin.eliza': { plugin: 'llm_eliza' },
    'plugin.flite': { plugin: 'tts_flite' },
    stt: { providers: 'pocketsphinx' },
    llm: { providers: 'eliza' },
    tts: { providers: 'flite' },
};
// ---------------------------------------------------------------- /PROVIDERS

const BROWSER_ARGS = [
    '--headless=new',
    '--no-sandbox', // the tests may run as root
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream', // grant the microphone without asking
    '--use-fake-device-for-media-stream',
];

let dir; // temp dir: WAVs
let wavHello; // SAID between 0.5 s and 1.5 s of silence: one turn
let d; // voxray with PROVIDERS
let browser; // a persistent context (its own fresh profile) on wavHello
const browsers = new Set();

// flite speaks `text`; sox pads it with silence (lead and tail in seconds,
// and a gap between the parts).
function synth(name, texts, { lead = 0.5, gap = 1.3, tail = 1.5 } = {}) {
    const parts = texts.map((text, i) => {
        const raw = path.join(dir, `${name}-${i}.raw.wav`);
        const padded = path.join(dir, `${name}-${i}.wav`);
        execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', raw]);
        const before = i === 0 ? lead : 0;
        const afterPad = i === texts.length - 1 ? tail : gap;
        execFileSync('sox', [raw, padded, 'pad', String(before), String(afterPad)]);
        return padded;
    });
    const out = path.join(dir, `${name}.wav`);
    if (parts.length === 1) execFileSync('sox', [parts[0], out]);
    else execFileSync('sox', [...parts, out]);
    return out;
}

// A Chromium whose fake microphone plays `wav` once per capture.
async function launch(wav) {
    const ctx = await chromium.launchPersistentContext(tempDir('voxray-chromium-'), {
        executablePath: CHROMIUM,
        headless: true,
        args: [...BROWSER_ARGS, `--use-file-for-fake-audio-capture=${wav}%noloop`],
        viewport: { width: 1280, height: 800 },
    });
    browsers.add(ctx);
    return ctx;
}

async function closeBrowser(ctx) {
    browsers.delete(ctx);
    await ctx.close();
}

before(async () => {
    dir = tempDir('voxray-demo-');
    wavHello = synth('hello', [SAID]);
    d = await Daemon.start({ server: { web_root: WEB_ROOT }, ...PROVIDERS });
    browser = await launch(wavHello);
});

after(async () => {
    await Promise.all([...browsers].map((b) => closeBrowser(b)));
    await stopAll();
});

// vtest() with a fresh tab of `ctx` (default: the shared browser) opened on
// daemon `daemon`'s page. On failure the page's console and a screenshot
// are attached as diagnostics.
// `query` is appended to the page's URL: the tests of the WebSocket
// transport ask for it with ?transport=ws.
function pageTest(name, fn, { ctx, daemon, query = WS } = {}) {
    return vtest(name, async (t) => {
        const c = ctx ? await ctx() : browser;
        const srv = daemon ? await daemon() : d;
        const page = await c.newPage();
        const consoleLines = [];
        page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
        page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
        try {
            await page.goto(srv.url(`/${query}`));
            await fn(t, page, srv);
        } catch (e) {
            for (const l of consoleLines) t.diagnostic(`console ${l}`);
            try {
                const shot = shotPath(`failed-${name.replace(/\W+/g, '_').slice(0, 48)}`);
                await page.screenshot({ path: shot });
                t.diagnostic(`screenshot: ${shot}`);
                t.diagnostic(`window.voxray: ${JSON.stringify(await page.evaluate(() => window.voxray))}`);
            } catch {
                /* the page may be gone */
            }
            throw e;
        } finally {
            await page.close();
            if (ctx) await closeBrowser(c);
        }
    });
}

const WS = '?transport=ws';

// What the page reports (its reply MediaStream only as hasRemote).
const hook = (page) =>
    page.evaluate(() => {
        const { remoteStream, ...v } = window.voxray;
        return { ...v, hasRemote: remoteStream !== null };
    });

// Wait until fn(window.voxray) is true in the page.
function waitHook(page, fn, timeout = 30000) {
    return page.waitForFunction(`(${fn})(window.voxray)`, null, { timeout, polling: 50 });
}

pageTest('a spoken turn shows what the user said and the reply, and plays the reply audio', async (t, page) => {
    await page.getByRole('button', { name: 'Start talking' }).click();
    await waitHook(page, (v) => v.transcripts.length > 0 && v.audioSamples > 0 && v.replies.some((r) => r.trim()));
    const v = await hook(page);
    assert.deepEqual(v.transcripts, [SAID]);
    assert.equal(v.lastError, null);
    assert.ok(v.audioChunks > 0 && v.audioSamples > 0, 'reply audio was received and scheduled');
    // What the page shows, not only what it reports.
    assert.equal((await page.locator('.msg.user .text').first().textContent()).trim(), SAID);
    assert.equal((await page.locator('.msg.bot .text').first().textContent()).trim(), v.replies[0].trim());
    assert.match(await page.locator('#stats').textContent(), /Reply delay: \d+ ms/);
    t.diagnostic(`reply: ${JSON.stringify(v.replies[0])}, ${v.audioSamples} samples in ${v.audioChunks} chunks, ` +
        `mic ${v.inputRate} Hz, reply delay ${Math.round(v.latencies[0])} ms`);
    await waitHook(page, (x) => x.state === 'listening' && x.playing === 0, 15000);
    const shot = shotPath('turn');
    await page.screenshot({ path: shot });
    t.diagnostic(`screenshot: ${shot}`);
});

pageTest('the status line follows the turn: listening, hearing you, thinking, speaking, listening again', async (t, page) => {
    await page.getByRole('button', { name: 'Start talking' }).click();
    await waitHook(page, (v) => v.transcripts.length > 0 && v.audioSamples > 0 && v.state === 'listening' && v.playing === 0);
    const { states } = await hook(page);
    t.diagnostic(`states: ${states.join(' -> ')}`);
    assert.deepEqual(states, ['connecting', 'listening', 'hearing', 'thinking', 'speaking', 'listening']);
    assert.match(await page.getByRole('status').textContent(), /Listening/);
});

pageTest('pressing the button again ends the call and the page returns to idle', async (t, page) => {
    const talk = page.locator('#talk');
    await talk.click();
    await waitHook(page, (v) => v.state === 'listening');
    assert.equal(await talk.getAttribute('aria-pressed'), 'true');
    await talk.click();
    await waitHook(page, (v) => v.state === 'idle');
    assert.equal(await talk.getAttribute('aria-pressed'), 'false');
    assert.equal((await talk.textContent()).trim(), 'Start talking');
    assert.equal(await page.locator('#error').isVisible(), false, 'a call the user ends is no error');
});

let bargeWav;
pageTest(
    'when the user speaks during a reply the page stops playing it at once',
    async (t, page) => {
        await page.getByRole('button', { name: 'Start talking' }).click();
        // The second utterance starts while the first reply is playing.
        await waitHook(page, (v) => v.states.includes('speaking') && v.states.lastIndexOf('hearing') > v.states.indexOf('speaking'));
        const v = await hook(page);
        assert.equal(v.playing, 0, 'no reply audio left scheduled after speech_started');
        await waitHook(page, (x) => document.querySelector('.msg.bot.interrupted') !== null, 10000);
        t.diagnostic(`states: ${v.states.join(' -> ')}; first reply shown: ${JSON.stringify(v.replies[0])}`);
    },
    {
        // A long reply (0.1 s of audio per character, ~4 s) and a second
        // utterance 2.5 s after the first: inside the reply even when a busy
        // machine starts the reply late.
        ctx: async () => {
            bargeWav = bargeWav || synth('barge', [SAID, SAID], { gap: 2.5 });
            return launch(bargeWav);
        },
        daemon: () =>
            Daemon.start({
                server: { web_root: WEB_ROOT },
                ...PROVIDERS,
                'plugin.slow': { plugin: 'sim', ms_per_char: 100 },
                tts: { providers: 'slow' },
            }),
    },
);

pageTest(
    'an error event from the server is shown to the user',
    async (t, page) => {
        await page.getByRole('button', { name: 'Start talking' }).click();
        // No STT provider: the server answers the turn with an error event.
        await waitHook(page, (v) => v.lastError !== null);
        const v = await hook(page);
        assert.equal(v.lastError.code, 'no_stt_provider');
        const alert = page.getByRole('alert');
        assert.equal(await alert.isVisible(), true);
        assert.match(await alert.textContent(), /no speech-to-text provider is available/);
        const shot = shotPath('error');
        await page.screenshot({ path: shot });
        t.diagnostic(`shown: ${JSON.stringify(await alert.textContent())}; screenshot: ${shot}`);
    },
    {
        daemon: () => Daemon.start({ server: { web_root: WEB_ROOT }, ...PROVIDERS, stt: { providers: '' } }),
    },
);

const PAGE_KEY = 'sk-voxray-page-7c41e09b2d6a8f35';
pageTest(
    'when the server wants an API key the page asks for it, trades it for a client secret and talks',
    async (t, page, srv) => {
        const talk = page.locator('#talk');
        const field = page.getByLabel('API key');
        assert.equal(await field.isVisible(), false, 'no key field until the server asks');
        await talk.click();
        await waitHook(page, (v) => v.keyAsked && v.state === 'idle');
        assert.equal(await field.isVisible(), true);
        assert.match(await page.getByRole('alert').textContent(), /needs an API key/);

        await field.fill('sk-voxray-page-wrong-000000000');
        await talk.click();
        await waitHook(page, (v) => v.lastError && v.lastError.message === 'The server refused this API key.' && v.state === 'idle');

        await field.fill(PAGE_KEY);
        await talk.click();
        await waitHook(page, (v) => v.transcripts.length > 0 && v.audioSamples > 0);
        const v = await hook(page);
        assert.equal(v.usedSecret, true);
        assert.deepEqual(v.transcripts, [SAID]);
        assert.equal(await srv.sumMetric('voxray_client_secrets_created_total'), 1);
        // The key only went to the server, once; the page kept it nowhere.
        const kept = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
        assert.deepEqual(kept, [0, 0, '']);
        assert.ok(!srv.log().includes(PAGE_KEY), 'the key is not in the server log');
        const shot = shotPath('api-key');
        await page.screenshot({ path: shot });
        t.diagnostic(`screenshot: ${shot}`);
    },
    {
        daemon: () => Daemon.start({ server: { web_root: WEB_ROOT }, ...PROVIDERS, auth: { api_keys: PAGE_KEY } }),
    },
);

pageTest('the capture worklet turns a rate the server does not take into 24 kHz s16 blocks of 20 ms', async (t, page) => {
    // One second of a 440 Hz tone at half scale through worklet.js in an
    // OfflineAudioContext running at 96 kHz.
    const r = await page.evaluate(async () => {
        const ctx = new OfflineAudioContext(1, 96000, 96000);
        await ctx.audioWorklet.addModule('worklet.js');
        const node = new AudioWorkletNode(ctx, 'voxray-capture', {
            processorOptions: { outRate: 24000, blockMs: 20 },
        });
        const blocks = [];
        node.port.onmessage = (e) => blocks.push(new Int16Array(e.data.pcm));
        const osc = new OscillatorNode(ctx, { frequency: 440 });
        osc.connect(new GainNode(ctx, { gain: 0.5 })).connect(node);
        node.connect(ctx.destination);
        osc.start();
        await ctx.startRendering();
        await new Promise((res) => setTimeout(res, 300)); // the last port messages
        const pcm = new Int16Array(blocks.reduce((n, b) => n + b.length, 0));
        let o = 0;
        for (const b of blocks) {
            pcm.set(b, o);
            o += b.length;
        }
        let crossings = 0;
        let peak = 0;
        for (let i = 1; i < pcm.length; i++) {
            if (pcm[i - 1] < 0 !== pcm[i] < 0) crossings++;
            peak = Math.max(peak, Math.abs(pcm[i]));
        }
        return { samples: pcm.length, blockLens: [...new Set(blocks.map((b) => b.length))], hz: crossings / 2 / (pcm.length / 24000), peak };
    });
    t.diagnostic(JSON.stringify(r));
    assert.deepEqual(r.blockLens, [480], 'every block holds 20 ms at 24 kHz');
    assert.ok(r.samples >= 24000 - 480 && r.samples <= 24000, `about one second at 24 kHz: ${r.samples}`);
    assert.ok(Math.abs(r.hz - 440) < 5, `the tone keeps its pitch: ${r.hz} Hz`);
    assert.ok(Math.abs(r.peak - 16384) < 820, `and its level: peak ${r.peak}`);
});

// ---------------------------------------------------------------- WebRTC
// The page's default transport. The fake microphone plays from
// getUserMedia on, before the call is up: these WAVs start with 2.5 s of
// silence.

// In the page: record the reply track (MediaRecorder) until stopRecording.
function startRecording(page) {
    return page.evaluate(() => {
        const rec = new MediaRecorder(window.voxray.remoteStream);
        const chunks = [];
        rec.ondataavailable = (e) => chunks.push(e.data);
        rec.start(250);
        window.recording = { rec, chunks };
    });
}

// In the page: stop the recorder, decode what it recorded; peak and RMS.
function stopRecording(page) {
    return page.evaluate(async () => {
        const { rec, chunks } = window.recording;
        await new Promise((res) => {
            rec.onstop = res;
            rec.stop();
        });
        const blob = new Blob(chunks, { type: rec.mimeType });
        const ctx = new AudioContext();
        const buf = await ctx.decodeAudioData(await blob.arrayBuffer());
        const x = buf.getChannelData(0);
        let peak = 0;
        let sq = 0;
        for (let i = 0; i < x.length; i++) {
            peak = Math.max(peak, Math.abs(x[i]));
            sq += x[i] * x[i];
        }
        await ctx.close();
        return { mime: rec.mimeType, bytes: blob.size, seconds: buf.duration, peak, rms: Math.sqrt(sq / x.length) };
    });
}

let rtcWav;
pageTest(
    'by default the page calls over WebRTC with echo cancellation on, and the reply is heard on the remote track',
    async (t, page, srv) => {
        assert.doesNotMatch(await page.locator('#hint').textContent(), /headphones/i);
        await page.getByRole('button', { name: 'Start talking' }).click();
        await waitHook(page, (v) => v.remoteStream !== null, 20000);
        await startRecording(page);
        await waitHook(page, (v) => v.transcripts.length > 0 && v.audioStarted > 0 && v.playing === 0 && v.state === 'listening', 40000);
        const rec = await stopRecording(page);
        const v = await hook(page);
        assert.equal(v.transport, 'webrtc');
        assert.equal(v.fallback, null);
        assert.match(v.callId, /^\/v1\/realtime\/calls\/rtc_\w+$/);
        assert.equal(v.micSettings.echoCancellation, true, 'the microphone has echo cancellation');
        assert.equal(v.micSettings.noiseSuppression, true);
        assert.equal(v.micSettings.autoGainControl, true);
        assert.deepEqual(v.transcripts, [SAID]);
        assert.equal(v.lastError, null);
        assert.ok(v.replies.some((r) => r.trim()), 'the reply text is shown');
        assert.equal(v.audioChunks, 0, 'no audio in events: it is on the track');
        assert.deepEqual(v.states, ['connecting', 'listening', 'hearing', 'thinking', 'speaking', 'listening']);
        assert.ok(rec.peak > 0.05 && rec.rms > 0.002, `the recorded reply track is not silent: ${JSON.stringify(rec)}`);
        assert.match(await page.locator('#stats').textContent(), /Reply delay: \d+ ms/);
        let m = await srv.metrics();
        assert.equal(sumMetric(m, 'webrtc_peer_connections_active'), 1);
        assert.equal(sumMetric(m, 'http_requests_total', { route: '/v1/realtime/calls', status_code: '201' }), 1);
        t.diagnostic(`reply recorded from the track: ${JSON.stringify(rec)}; reply delay ${Math.round(v.latencies[0])} ms`);
        // Stop: the page closes its peer connection, the server hangs up.
        await page.getByRole('button', { name: 'Stop' }).click();
        await waitHook(page, (x) => x.state === 'idle');
        for (let i = 0; i < 100 && sumMetric(await srv.metrics(), 'webrtc_peer_connections_active') !== 0; i++) await sleep(100);
        m = await srv.metrics();
        assert.equal(sumMetric(m, 'webrtc_peer_connections_active'), 0);
        assert.equal(sumMetric(m, 'webrtc_peer_connections_total', { state: 'closed' }), 1);
        assert.equal(sumMetric(m, 'webrtc_connection_failures_total'), 0);
        assert.equal(await page.locator('#error').isVisible(), false, 'a call the user ends is no error');
        const shot = shotPath('webrtc');
        await page.screenshot({ path: shot });
        t.diagnostic(`screenshot: ${shot}`);
    },
    {
        query: '',
        ctx: async () => {
            rtcWav = rtcWav || synth('rtc', [SAID], { lead: 2.5, tail: 2.5 });
            return launch(rtcWav);
        },
        daemon: () => Daemon.start({ server: { web_root: WEB_ROOT }, ...PROVIDERS }),
    },
);

let rtcBargeWav;
pageTest(
    'over WebRTC, speaking during a reply cancels it and the server clears the queued audio',
    async (t, page, srv) => {
        await page.getByRole('button', { name: 'Start talking' }).click();
        await waitHook(page, (v) => v.cleared > 0 && document.querySelector('.msg.bot.interrupted') !== null, 45000);
        const v = await hook(page);
        assert.equal(v.transport, 'webrtc');
        assert.ok(v.states.indexOf('speaking') >= 0 && v.states.lastIndexOf('hearing') > v.states.indexOf('speaking'),
            `hearing after speaking: ${v.states.join(' -> ')}`);
        assert.equal(v.playing, 0);
        assert.ok(sumMetric(await srv.metrics(), 'voxray_interruptions_total') >= 1);
        t.diagnostic(`states: ${v.states.join(' -> ')}; first reply shown: ${JSON.stringify(v.replies[0])}`);
    },
    {
        query: '',
        ctx: async () => {
            rtcBargeWav = rtcBargeWav || synth('rtcbarge', [SAID, SAID], { lead: 2.5, gap: 2.5, tail: 2.5 });
            return launch(rtcBargeWav);
        },
        daemon: () =>
            Daemon.start({
                server: { web_root: WEB_ROOT },
                ...PROVIDERS,
                'plugin.slow': { plugin: 'sim', ms_per_char: 100 },
                tts: { providers: 'slow' },
            }),
    },
);

pageTest(
    'over WebRTC too, a server that wants an API key gets one: the page asks, trades it for a client secret and calls',
    async (t, page, srv) => {
        const talk = page.locator('#talk');
        await talk.click();
        await waitHook(page, (v) => v.keyAsked && v.state === 'idle');
        assert.equal(await page.getByLabel('API key').isVisible(), true);
        assert.match(await page.getByRole('alert').textContent(), /needs an API key/);
        await page.getByLabel('API key').fill(PAGE_KEY);
        await talk.click();
        await waitHook(page, (v) => v.transcripts.length > 0 && v.audioStarted > 0, 40000);
        const v = await hook(page);
        assert.equal(v.transport, 'webrtc');
        assert.equal(v.fallback, null);
        assert.equal(v.usedSecret, true);
        assert.deepEqual(v.transcripts, [SAID]);
        const m = await srv.metrics();
        assert.equal(sumMetric(m, 'voxray_client_secrets_created_total'), 1);
        assert.equal(sumMetric(m, 'http_requests_total', { route: '/v1/realtime/calls', status_code: '401' }), 1);
        assert.equal(sumMetric(m, 'http_requests_total', { route: '/v1/realtime/calls', status_code: '201' }), 1);
        assert.ok(!srv.log().includes(PAGE_KEY), 'the key is not in the server log');
    },
    {
        query: '',
        ctx: async () => {
            rtcWav = rtcWav || synth('rtc', [SAID], { lead: 2.5, tail: 2.5 });
            return launch(rtcWav);
        },
        daemon: () => Daemon.start({ server: { web_root: WEB_ROOT }, ...PROVIDERS, auth: { api_keys: PAGE_KEY } }),
    },
);

let fallbackWav;
pageTest(
    'when the server takes no WebRTC calls the page falls back to the WebSocket and talks',
    async (t, page) => {
        await page.getByRole('button', { name: 'Start talking' }).click();
        await waitHook(page, (v) => v.transcripts.length > 0 && v.audioSamples > 0, 40000);
        const v = await hook(page);
        assert.equal(v.transport, 'ws');
        assert.match(v.fallback, /404/);
        assert.deepEqual(v.transcripts, [SAID]);
        assert.equal(v.lastError, null);
        assert.match(await page.locator('#hint').textContent(), /headphones/i);
        t.diagnostic(`fell back: ${v.fallback}`);
    },
    {
        query: '',
        ctx: async () => {
            fallbackWav = fallbackWav || synth('fallback', [SAID], { lead: 1.5 });
            return launch(fallbackWav);
        },
        daemon: () => Daemon.start({ server: { web_root: WEB_ROOT }, ...PROVIDERS, webrtc: { enabled: false } }),
    },
);

vtest('the page files are served with their content types and an unknown file is 404', async () => {
    const want = {
        '/': 'text/html',
        '/index.html': 'text/html',
        '/app.js': 'text/javascript',
        '/worklet.js': 'text/javascript',
        '/style.css': 'text/css',
    };
    for (const [p, type] of Object.entries(want)) {
        const r = await d.get(p);
        assert.equal(r.status, 200, `GET ${p}`);
        assert.equal(r.headers.get('content-type').split(';')[0].trim(), type, `content type of ${p}`);
        assert.ok(r.text.length > 0, `${p} is not empty`);
    }
    const nope = await d.get('/nope.js');
    assert.equal(nope.status, 404);
});
