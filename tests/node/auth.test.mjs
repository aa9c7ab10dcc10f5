// Authentication and per-client limits on /v1/realtime: API keys (Bearer
// and the openai-insecure-api-key.KEY subprotocol browsers use), the keys
// file and its reload on SIGHUP, ephemeral client secrets from
// POST /v1/realtime/client_secrets, allowed browser origins, per-IP session
// and upgrade-rate limits, and X-Forwarded-For from trusted proxies.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { Daemon, Client, WebSocket, simConfig, vtest, stopAll, sleep, tempDir, TlsProxy } from './lib.mjs';

const KEY = 'sk-voxray-test-3f9a1c0b7e52d4a8'; // [auth] api_keys
const FILE_KEY = 'sk-voxray-file-9b2e7d41c0a3f658'; // in the keys file
const NEW_KEY = 'sk-voxray-new-51d0e8a27f3bc946'; // added to it later
const WRONG = 'sk-voxray-wrong-0000000000000000';

let d; // auth on: KEY in api_keys, FILE_KEY in the keys file
let keysFile;
const minted = []; // every client secret seen, for the log check

before(async () => {
    const dir = tempDir('voxray-keys-');
    keysFile = path.join(dir, 'keys.txt');
    writeFileSync(keysFile, `# test keys\n${FILE_KEY}   # the file's key\n`);
    chmodSync(keysFile, 0o600);
    d = await Daemon.start(simConfig({}, { auth: { api_keys: KEY, keys_file: keysFile } }));
});
after(stopAll);

// Try to open /v1/realtime: resolves {status: 101, client} on success
// (after session.created), or {status, body, headers} when the server
// answers the upgrade with an HTTP error.
function attempt(daemon, { headers = {}, protocols } = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(`${daemon.wsBase}/v1/realtime`, protocols, { headers, perMessageDeflate: false });
        const c = new Client(ws);
        ws.once('open', async () => {
            try {
                const created = await c.next('session.created');
                resolve({ status: 101, client: c, created, protocol: ws.protocol });
            } catch (e) {
                reject(e);
            }
        });
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (x) => (body += x));
            res.on('end', () => {
                let json = null;
                try {
                    json = JSON.parse(body);
                } catch {
                    /* left null: the assertion says so */
                }
                resolve({ status: res.statusCode, body: json, raw: body, headers: res.headers });
            });
        });
        ws.once('error', reject); // after a resolve this changes nothing
    });
}

function assertOpenAIError(r, status, code) {
    assert.equal(r.status, status, `HTTP ${status}, got ${r.status} ${r.raw || ''}`);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.ok(r.body && r.body.error, `an OpenAI-shaped error body: ${r.raw}`);
    const e = r.body.error;
    assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.code, code);
    assert.equal(e.param, null);
    assert.equal(typeof e.message, 'string');
    return e;
}

async function mint(daemon, body = {}, key = KEY) {
    const headers = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    const r = await fetch(daemon.url('/v1/realtime/client_secrets'), {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
    });
    const json = await r.json();
    if (json.value) minted.push(json.value);
    return { status: r.status, body: json, headers: r.headers };
}

const asSubprotocol = (k) => ['realtime', `openai-insecure-api-key.${k}`];

// Wait until the daemon's log has `n` lines matching re.
async function waitLog(daemon, re, n = 1, timeout = 5000) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const got = daemon.log().split('\n').filter((l) => re.test(l)).length;
        if (got >= n) return;
        if (Date.now() > deadline) throw new Error(`log never showed ${re} ${n} time(s)`);
        await sleep(25);
    }
}

// ------------------------------------------------------------ API keys

vtest('without a key the upgrade gets 401 with an OpenAI-shaped error and never becomes a WebSocket', async () => {
    const before101 = await d.sumMetric('http_requests_total', { route: '/v1/realtime', status_code: '101' });
    const r = await attempt(d);
    const e = assertOpenAIError(r, 401, 'invalid_api_key');
    assert.match(e.message, /missing API key/);
    assert.match(r.headers['www-authenticate'], /^Bearer/);
    const m = await d.metrics();
    assert.ok(m.get('http_requests_total{method="GET",route="/v1/realtime",status_code="401"}') >= 1);
    assert.ok(m.get('voxray_auth_failures_total{reason="missing"}') >= 1);
    assert.equal(await d.sumMetric('http_requests_total', { route: '/v1/realtime', status_code: '101' }), before101,
        'no upgrade happened');
});

vtest('a plain GET /v1/realtime without a key says 401, so that a browser page can tell why its upgrade failed', async () => {
    const r = await d.get('/v1/realtime');
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.text).error.code, 'invalid_api_key');
    const k = await d.get('/v1/realtime', { headers: { Authorization: `Bearer ${KEY}` } });
    assert.equal(k.status, 426, 'with a key: the usual "speak WebSocket"');
});

vtest('a wrong key gets 401 invalid_api_key', async () => {
    const before = await d.sumMetric('voxray_auth_failures_total', { reason: 'invalid' });
    const r = await attempt(d, { headers: { Authorization: `Bearer ${WRONG}` } });
    assert.match(assertOpenAIError(r, 401, 'invalid_api_key').message, /invalid API key/);
    const r2 = await attempt(d, { protocols: asSubprotocol(WRONG) });
    assertOpenAIError(r2, 401, 'invalid_api_key');
    assert.equal(await d.sumMetric('voxray_auth_failures_total', { reason: 'invalid' }), before + 2);
});

vtest('the right key as Authorization: Bearer opens a session', async () => {
    const r = await attempt(d, { headers: { Authorization: `Bearer ${KEY}` } });
    assert.equal(r.status, 101);
    assert.equal(r.created.type, 'session.created');
    await r.client.close();
});

vtest('the right key in the openai-insecure-api-key subprotocol opens a session answering "realtime"', async () => {
    const r = await attempt(d, { protocols: asSubprotocol(KEY) });
    assert.equal(r.status, 101);
    assert.equal(r.protocol, 'realtime', 'the server picks the subprotocol the browser offered, never the key');
    await r.client.close();
    // A key from the keys file works the same way.
    const f = await attempt(d, { protocols: asSubprotocol(FILE_KEY) });
    assert.equal(f.status, 101);
    await f.client.close();
});

vtest('offering only the key subprotocol is a clear 400, not a hang-up', async () => {
    const r = await attempt(d, { protocols: [`openai-insecure-api-key.${KEY}`] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_subprotocol');
    assert.match(r.body.error.message, /must include realtime/);
});

vtest('the openai SDK with apiKey set to the key completes a text turn, and with a client secret it minted', async () => {
    const proxy = await TlsProxy.start(d.port); // the SDK dials wss:// only
    try {
        const turn = async (apiKey) => {
            const client = new OpenAI({ apiKey, baseURL: `https://127.0.0.1:${proxy.port}/v1`, maxRetries: 0 });
            const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: proxy.ca } }, client);
            const seen = [];
            rt.on('event', (e) => seen.push(e));
            const errors = [];
            rt.on('error', (e) => errors.push(e.message));
            const wait = (type) => new Promise((resolve, reject) => {
                const t = setTimeout(() => reject(new Error(`no ${type}; seen ${seen.map((e) => e.type).join(', ')}; errors ${errors}`)), 10000);
                rt.once(type, (e) => {
                    clearTimeout(t);
                    resolve(e);
                });
            });
            const created = wait('session.created');
            await created;
            const done = wait('response.done');
            rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'good morning' }] } });
            rt.send({ type: 'response.create', response: { output_modalities: ['text'] } });
            const r = (await done).response;
            assert.equal(r.status, 'completed');
            const text = seen.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
            assert.match(text, /good morning/i);
            assert.deepEqual(errors, []);
            await new Promise((resolve) => {
                rt.socket.once('close', resolve);
                rt.close();
            });
            return seen;
        };
        await turn(KEY);

        // The SDK's own client_secrets call, over plain http to voxray.
        const sdk = new OpenAI({ apiKey: KEY, baseURL: `${d.base}/v1`, maxRetries: 0 });
        const secret = await sdk.realtime.clientSecrets.create({
            expires_after: { anchor: 'created_at', seconds: 60 },
            session: { type: 'realtime', instructions: 'Answer in one word.' },
        });
        minted.push(secret.value);
        assert.match(secret.value, /^ek_[0-9a-f]{64}$/);
        const seen = await turn(secret.value);
        const updated = seen.find((e) => e.type === 'session.updated');
        assert.equal(updated?.session.instructions, 'Answer in one word.');
    } finally {
        await proxy.stop();
    }
});

// ------------------------------------------------------------ client secrets

vtest('a client secret has the API shape, opens one session, and a second use gets 401 reused', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const m = await mint(d, { expires_after: { anchor: 'created_at', seconds: 120 } });
    assert.equal(m.status, 200, JSON.stringify(m.body));
    assert.match(m.body.value, /^ek_[0-9a-f]{64}$/);
    assert.ok(m.body.expires_at >= t0 + 119 && m.body.expires_at <= t0 + 122, `expires_at ${m.body.expires_at}`);
    assert.equal(m.body.session.type, 'realtime');
    assert.equal(m.body.session.object, 'realtime.session');
    assert.equal(m.headers.get('cache-control'), 'no-store');

    const first = await attempt(d, { protocols: asSubprotocol(m.body.value) });
    assert.equal(first.status, 101);
    await first.client.close();
    const before = await d.sumMetric('voxray_auth_failures_total', { reason: 'reused' });
    const second = await attempt(d, { protocols: asSubprotocol(m.body.value) });
    assert.match(assertOpenAIError(second, 401, 'invalid_api_key').message, /already used/);
    const bearer = await attempt(d, { headers: { Authorization: `Bearer ${m.body.value}` } });
    assertOpenAIError(bearer, 401, 'invalid_api_key');
    assert.equal(await d.sumMetric('voxray_auth_failures_total', { reason: 'reused' }), before + 2);
    assert.equal(await d.sumMetric('voxray_client_secrets_created_total'), minted.length);
});

vtest('the session a client secret opens starts with the secret\'s configuration', async () => {
    const session = {
        type: 'realtime',
        instructions: 'You are a pirate. Say arr.',
        audio: { input: { format: { type: 'audio/pcm', rate: 16000 } } },
    };
    const m = await mint(d, { session });
    assert.equal(m.status, 200, JSON.stringify(m.body));
    assert.equal(m.body.session.instructions, session.instructions, 'the effective session is returned');
    assert.equal(m.body.session.audio.input.format.rate, 16000);

    const r = await attempt(d, { headers: { Authorization: `Bearer ${m.body.value}` } });
    assert.equal(r.status, 101);
    const updated = await r.client.next('session.updated');
    assert.equal(updated.session.instructions, session.instructions);
    assert.equal(updated.session.audio.input.format.rate, 16000);
    // ... before anything the client says: its own update comes after.
    const mine = await r.client.update({ instructions: 'Now be polite.' });
    assert.equal(mine.session.instructions, 'Now be polite.');
    assert.equal(mine.session.audio.input.format.rate, 16000);
    await r.client.close();
});

// The beta API's minting call: the body is the session configuration, the
// answer the session object with client_secret {value, expires_at}.
async function mintBeta(daemon, body, key = KEY) {
    const r = await fetch(daemon.url('/v1/realtime/sessions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
    });
    const json = await r.json();
    if (json.client_secret?.value) minted.push(json.client_secret.value);
    return { status: r.status, body: json };
}

vtest('beta POST /v1/realtime/sessions mints a secret in the beta shapes; a beta session opens with its configuration', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const m = await mintBeta(d, {
        model: 'gpt-4o-realtime-preview-2024-12-17', voice: 'verse', instructions: 'Talk like a sailor.',
        modalities: ['text'], turn_detection: { type: 'server_vad', silence_duration_ms: 400 },
        input_audio_transcription: { model: 'whisper-1' },
        client_secret: { expires_after: { anchor: 'created_at', seconds: 60 } },
    });
    assert.equal(m.status, 200, JSON.stringify(m.body));
    assert.equal(m.body.object, 'realtime.session');
    assert.match(m.body.client_secret.value, /^ek_[0-9a-f]{64}$/);
    const exp = m.body.client_secret.expires_at;
    assert.ok(exp >= t0 + 59 && exp <= t0 + 62, `expires_at ${exp}`);
    assert.equal(m.body.voice, 'verse');
    assert.deepEqual(m.body.modalities, ['text']);
    assert.equal(m.body.turn_detection.silence_duration_ms, 400);
    assert.equal(m.body.input_audio_format, 'pcm16');

    const r = await attempt(d, { protocols: ['realtime', 'openai-beta.realtime-v1', `openai-insecure-api-key.${m.body.client_secret.value}`] });
    assert.equal(r.status, 101);
    assert.equal(r.created.type, 'session.created');
    assert.ok('modalities' in r.created.session, 'a beta session');
    const updated = await r.client.next('session.updated');
    assert.equal(updated.session.instructions, 'Talk like a sailor.');
    assert.equal(updated.session.voice, 'verse');
    assert.deepEqual(updated.session.modalities, ['text']);
    assert.equal(updated.session.turn_detection.silence_duration_ms, 400);
    await r.client.close();

    // Refusals name the member from the top of the beta body.
    const bad = await mintBeta(d, { instructions: 5 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'instructions');
    assert.equal((await mintBeta(d, {}, WRONG)).status, 401);
    assert.equal(await d.sumMetric('http_requests_total', { route: '/v1/realtime/sessions', method: 'POST', status_code: '200' }), 1);
    assert.equal(await d.sumMetric('http_requests_total', { route: '/v1/realtime/sessions', method: 'POST', status_code: '400' }), 1);
});

vtest('a secret minted in one dialect opens a session of the other with its configuration restated', async () => {
    // GA secret, beta session.
    const ga = await mint(d, { session: { type: 'realtime', instructions: 'Say ahoy.', output_modalities: ['text'],
        audio: { output: { voice: 'kal' } } } });
    assert.equal(ga.status, 200);
    const b = await attempt(d, { protocols: ['realtime', 'openai-beta.realtime-v1', `openai-insecure-api-key.${ga.body.value}`] });
    assert.equal(b.status, 101);
    const bu = await b.client.next(null, { where: (e) => e.type === 'session.updated' || e.type === 'error' });
    assert.equal(bu.type, 'session.updated', JSON.stringify(bu));
    assert.equal(bu.session.instructions, 'Say ahoy.');
    assert.equal(bu.session.voice, 'kal');
    assert.deepEqual(bu.session.modalities, ['text']);
    await b.client.close();
    // Beta secret, GA session.
    const beta = await mintBeta(d, { instructions: 'Say avast.', voice: 'slt', temperature: 0.6 });
    assert.equal(beta.status, 200);
    const g = await attempt(d, { headers: { Authorization: `Bearer ${beta.body.client_secret.value}` } });
    assert.equal(g.status, 101);
    const gu = await g.client.next(null, { where: (e) => e.type === 'session.updated' || e.type === 'error' });
    assert.equal(gu.type, 'session.updated', JSON.stringify(gu));
    assert.equal(gu.session.instructions, 'Say avast.');
    assert.equal(gu.session.audio.output.voice, 'slt');
    await g.client.close();
});

vtest('minting a client secret needs a real API key', async () => {
    const none = await mint(d, {}, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'invalid_api_key');
    assert.equal(none.body.error.param, null);
    const wrong = await mint(d, {}, WRONG);
    assert.equal(wrong.status, 401);
    const ok = await mint(d, {});
    assert.equal(ok.status, 200);
    const bySecret = await mint(d, {}, ok.body.value);
    assert.equal(bySecret.status, 401, 'a client secret cannot mint client secrets');
});

vtest('a bad client_secrets request gets 400 naming the field, like the API', async () => {
    const cases = [
        [{ expires_after: { seconds: 5 } }, 'expires_after.seconds'],
        [{ expires_after: { seconds: 7201 } }, 'expires_after.seconds'],
        [{ expires_after: { anchor: 'now', seconds: 60 } }, 'expires_after.anchor'],
        [{ session: { type: 'transcription' } }, 'session.type'],
        [{ session: { instructions: 42 } }, 'session.instructions'],
    ];
    for (const [body, param] of cases) {
        const r = await mint(d, body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body.error.type, 'invalid_request_error');
        assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    }
    const r = await fetch(d.url('/v1/realtime/client_secrets'), {
        method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{"session":',
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, 'invalid_json');
    const g = await fetch(d.url('/v1/realtime/client_secrets'));
    assert.equal(g.status, 405);
    assert.equal(g.headers.get('allow'), 'POST');
});

vtest('an expired client secret gets 401 expired', async () => {
    // client_secret_max_ttl shortens every secret to 1 s here.
    const e = await Daemon.start(simConfig({}, { auth: { api_keys: KEY, client_secret_max_ttl: '1s' } }));
    const m = await mint(e, {});
    assert.equal(m.status, 200);
    assert.ok(m.body.expires_at <= Math.floor(Date.now() / 1000) + 1);
    await sleep(1300);
    const r = await attempt(e, { protocols: asSubprotocol(m.body.value) });
    assert.match(assertOpenAIError(r, 401, 'invalid_api_key').message, /expired/);
    assert.equal(await e.sumMetric('voxray_auth_failures_total', { reason: 'expired' }), 1);
});

vtest('outstanding client secrets are bounded: beyond max_client_secrets minting gets 429', async () => {
    const e = await Daemon.start(simConfig({}, { auth: { api_keys: KEY, max_client_secrets: 2 } }));
    const a = await mint(e, {});
    assert.equal((await mint(e, {})).status, 200);
    const full = await mint(e, {});
    assert.equal(full.status, 429);
    assert.equal(full.body.error.code, 'rate_limit_exceeded');
    assert.equal(await e.sumMetric('voxray_rate_limited_total', { limit: 'client_secrets' }), 1);
    const r = await attempt(e, { protocols: asSubprotocol(a.body.value) }); // using one frees its slot
    assert.equal(r.status, 101);
    await r.client.close();
    assert.equal((await mint(e, {})).status, 200);
});

// ------------------------------------------------------------ keys file

vtest('SIGHUP re-reads the keys file: a new key works and a removed key is refused', async () => {
    const reloads = d.log().split('\n').filter((l) => /SIGHUP: configuration reloaded/.test(l)).length;
    writeFileSync(keysFile, `${NEW_KEY}\n`);
    process.kill(d.pid, 'SIGHUP');
    await waitLog(d, /SIGHUP: configuration reloaded.*\[auth\]/, reloads + 1);
    const added = await attempt(d, { protocols: asSubprotocol(NEW_KEY) });
    assert.equal(added.status, 101);
    await added.client.close();
    const removed = await attempt(d, { protocols: asSubprotocol(FILE_KEY) });
    assertOpenAIError(removed, 401, 'invalid_api_key');
    const still = await attempt(d, { headers: { Authorization: `Bearer ${KEY}` } }); // api_keys stays
    assert.equal(still.status, 101);
    await still.client.close();
});

vtest('a broken keys file on SIGHUP keeps the keys in force and logs an error', async () => {
    const errors = d.log().split('\n').filter((l) => /the API keys could not be loaded/.test(l)).length;
    writeFileSync(keysFile, `${FILE_KEY}\nshort\n`);
    process.kill(d.pid, 'SIGHUP');
    await waitLog(d, /ERROR SIGHUP: the API keys could not be loaded; keeping the ones in force/, errors + 1);
    assert.match(d.log(), /keys\.txt:2: the key is shorter than 16 characters/);
    const kept = await attempt(d, { protocols: asSubprotocol(NEW_KEY) });
    assert.equal(kept.status, 101, 'the key of the last good file still works');
    await kept.client.close();
    const notAdded = await attempt(d, { protocols: asSubprotocol(FILE_KEY) });
    assert.equal(notAdded.status, 401, 'nothing of the broken file was taken');
    writeFileSync(keysFile, `${NEW_KEY}\n`); // for the tests after this one
});

// ------------------------------------------------------------ open routes

vtest('/health, /ready and /metrics answer without a key', async () => {
    assert.equal((await d.get('/health')).status, 200);
    assert.equal((await d.get('/ready')).status, 200);
    assert.equal((await d.get('/metrics')).status, 200);
    assert.equal((await d.get('/')).status, 404, 'no web_root here, but no 401 either');
});

// ------------------------------------------------------------ origins and limits

vtest('allowed_origins: a listed Origin upgrades, another gets 403, and no Origin passes', async () => {
    const e = await Daemon.start(simConfig({}, { server: { allowed_origins: 'http://good.example, https://app.example:8443' } }));
    const good = await attempt(e, { headers: { Origin: 'http://good.example' } });
    assert.equal(good.status, 101);
    await good.client.close();
    const bad = await attempt(e, { headers: { Origin: 'http://evil.example' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.body.error.code, 'origin_not_allowed');
    const none = await attempt(e);
    assert.equal(none.status, 101, 'a client that sends no Origin is not a browser page');
    await none.client.close();
    assert.equal(await e.sumMetric('http_requests_total', { route: '/v1/realtime', status_code: '403' }), 1);
    assert.match(e.log(), /websocket refused: origin not allowed origin=http:\/\/evil.example client=127.0.0.1/);
});

vtest('max_sessions_per_ip: the session beyond the limit gets 429 until one closes', async () => {
    const e = await Daemon.start(simConfig({}, { server: { max_sessions_per_ip: 2 } }));
    const a = await attempt(e);
    const b = await attempt(e);
    assert.equal(a.status, 101);
    assert.equal(b.status, 101);
    const c = await attempt(e);
    assert.equal(c.status, 429);
    assert.equal(c.body.error.code, 'rate_limit_exceeded');
    assert.match(c.body.error.message, /too many open sessions/);
    assert.equal(c.headers['retry-after'], '1');
    assert.equal(await e.sumMetric('voxray_rate_limited_total', { limit: 'sessions_per_ip' }), 1);
    await a.client.close();
    let again;
    for (const end = Date.now() + 5000; Date.now() < end;) { // the server sees the close a moment later
        again = await attempt(e);
        if (again.status === 101) break;
        await sleep(50);
    }
    assert.equal(again.status, 101);
    await again.client.close();
    await b.client.close();
});

vtest('max_upgrades_per_second_per_ip: upgrades beyond the rate get 429', async () => {
    const e = await Daemon.start(simConfig({}, { server: { max_upgrades_per_second_per_ip: 0.2 } }));
    const a = await attempt(e);
    assert.equal(a.status, 101);
    await a.client.close();
    const b = await attempt(e);
    assert.equal(b.status, 429);
    assert.match(b.body.error.message, /too many connections per second/);
    assert.equal(await e.sumMetric('voxray_rate_limited_total', { limit: 'upgrades_per_second' }), 1);
});

vtest('X-Forwarded-For names the client only when the peer is a trusted proxy', async () => {
    const xff = (ip) => ({ headers: { 'X-Forwarded-For': `${ip}, 127.0.0.1` } });
    // Loopback is the proxy: the forwarded addresses are two clients.
    const trusted = await Daemon.start(simConfig({}, { server: { max_sessions_per_ip: 1, trusted_proxies: '127.0.0.0/8' } }));
    const a = await attempt(trusted, xff('203.0.113.7'));
    assert.equal(a.status, 101);
    assert.equal((await attempt(trusted, xff('203.0.113.7'))).status, 429);
    const b = await attempt(trusted, xff('203.0.113.8'));
    assert.equal(b.status, 101, 'another forwarded client has its own limit');
    await a.client.close();
    await b.client.close();

    // Loopback is not trusted: the header is ignored, both are 127.0.0.1.
    const untrusted = await Daemon.start(simConfig({}, { server: { max_sessions_per_ip: 1, trusted_proxies: '10.0.0.0/8' } }));
    const c = await attempt(untrusted, xff('203.0.113.7'));
    assert.equal(c.status, 101);
    assert.equal((await attempt(untrusted, xff('203.0.113.8'))).status, 429, 'a forged header changes nothing');
    await c.client.close();
});

vtest('the client behind a trusted proxy is named in the refusal log', async () => {
    const e = await Daemon.start(simConfig({}, { auth: { api_keys: KEY }, server: { trusted_proxies: '127.0.0.1' } }));
    await attempt(e, { headers: { 'X-Forwarded-For': '198.51.100.23' } });
    await waitLog(e, /request refused: no API key reason=missing route=\/v1\/realtime client=198\.51\.100\.23/);
});

// ------------------------------------------------------------ auth off

vtest('with no key configured nothing is refused and a client secret still brings its session', async () => {
    const e = await Daemon.start(simConfig());
    const plain = await attempt(e, { headers: { Authorization: `Bearer ${WRONG}` } });
    assert.equal(plain.status, 101, 'any credential passes when auth is off');
    await plain.client.close();
    const m = await mint(e, { session: { instructions: 'Offline and fine.' } }, null);
    assert.equal(m.status, 200);
    const r = await attempt(e, { protocols: asSubprotocol(m.body.value) });
    assert.equal(r.status, 101);
    assert.equal((await r.client.next('session.updated')).session.instructions, 'Offline and fine.');
    await r.client.close();
});

// ------------------------------------------------------------ logs

vtest('no key and no client secret ever appears in the daemon\'s log', async () => {
    const log = d.log();
    assert.ok(log.includes('request refused'), 'the log was exercised');
    for (const k of [KEY, FILE_KEY, NEW_KEY, WRONG, ...minted]) {
        assert.ok(!log.includes(k), `a credential (${k.slice(0, 6)}...) is in the log`);
        assert.ok(!log.includes(k.slice(-16)), 'not even its end');
    }
});
