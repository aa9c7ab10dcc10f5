// Shared helpers for the protocol tests: a voxray daemon on a free loopback
// port, a recording WebSocket client, synthesized audio, /metrics parsing.
//
// Nothing here writes to stdout: the TAP stream belongs to node:test.
// Daemons are stopped by their PID (SIGTERM, then SIGKILL after 5 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

export { WebSocket, sleep };

export const TOP_BUILDDIR = process.env.top_builddir;
export const TOP_SRCDIR = process.env.top_srcdir;
if (!TOP_BUILDDIR || !TOP_SRCDIR) {
    throw new Error('top_builddir and top_srcdir must be set (run through make check)');
}
export const VOXRAY = path.join(TOP_BUILDDIR, 'voxray');
export const PLUGIN_DIR = path.join(TOP_BUILDDIR, 'plugins', '.built');

export const IN_RATE = 24000; // the protocol's default input and output rate

// ------------------------------------------------------------ temp dirs

const tempDirs = [];
export function tempDir(prefix = 'voxray-node-') {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    tempDirs.push(d);
    return d;
}
process.on('exit', () => {
    for (const d of tempDirs) {
        try {
            rmSync(d, { recursive: true, force: true });
        } catch {
            /* best effort */
        }
    }
});

// ------------------------------------------------------------ ports

// A free loopback port: listen on 0, read the port, close.
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// ------------------------------------------------------------ config

// sections: { 'plugin.sim': { plugin: 'sim' }, llm: { providers: 'sim' } }
// or an INI string appended as is. [server] keys given here override the
// defaults written first.
function iniText(port, sections) {
    const server = {
        listen: `127.0.0.1:${port}`,
        plugin_dir: PLUGIN_DIR,
        health_interval: '100ms',
    };
    let extra = '';
    const rest = [];
    if (typeof sections === 'string') {
        extra = sections;
    } else {
        for (const [name, keys] of Object.entries(sections || {})) {
            if (name === 'server') Object.assign(server, keys);
            else rest.push([name, keys]);
        }
    }
    const lines = ['[server]'];
    for (const [k, v] of Object.entries(server)) lines.push(`${k} = ${v}`);
    for (const [name, keys] of rest) {
        lines.push('', `[${name}]`);
        for (const [k, v] of Object.entries(keys)) lines.push(`${k} = ${v}`);
    }
    return lines.join('\n') + '\n' + extra + '\n';
}

// The usual single-provider setup: one sim instance serving every stage.
export function simConfig(simKeys = {}, more = {}) {
    return {
        'plugin.sim': { plugin: 'sim', ...simKeys },
        stt: { providers: 'sim' },
        llm: { providers: 'sim' },
        tts: { providers: 'sim' },
        ...more,
    };
}

// ------------------------------------------------------------ the daemon

const liveDaemons = new Set();
let testDaemons = null; // daemons started by the running vtest()

export class Daemon {
    constructor(port, dir, confPath, logPath, child) {
        this.port = port;
        this.dir = dir;
        this.confPath = confPath;
        this.logPath = logPath;
        this.child = child;
        this.pid = child.pid;
        this.base = `http://127.0.0.1:${port}`;
        this.wsBase = `ws://127.0.0.1:${port}`;
        this.exited = new Promise((resolve) => {
            child.on('exit', (code, signal) => resolve({ code, signal }));
        });
        this.exit = null;
        this.exited.then((e) => {
            this.exit = e;
        });
    }

    // Start voxray with a config built from `sections`; resolves once
    // /health answers 200.
    static async start(sections, { env = {}, waitReady = true } = {}) {
        const port = await freePort();
        const dir = tempDir();
        const confPath = path.join(dir, 'voxray.ini');
        const logPath = path.join(dir, 'voxray.log');
        writeFileSync(confPath, iniText(port, sections));
        const fd = openSync(logPath, 'a');
        const child = spawn(VOXRAY, ['-c', confPath], {
            stdio: ['ignore', fd, fd],
            env: { ...process.env, ...env },
        });
        closeSync(fd);
        const d = new Daemon(port, dir, confPath, logPath, child);
        liveDaemons.add(d);
        if (testDaemons) testDaemons.add(d);
        const deadline = Date.now() + 10000;
        for (;;) {
            if (d.exit) {
                liveDaemons.delete(d);
                throw new Error(`voxray exited at start (${JSON.stringify(d.exit)}):\n${d.log()}`);
            }
            try {
                const r = await fetch(`${d.base}/health`, { signal: AbortSignal.timeout(1000) });
                await r.arrayBuffer();
                if (r.status === 200) break;
            } catch {
                /* not listening yet */
            }
            if (Date.now() > deadline) {
                await d.stop();
                throw new Error(`voxray did not answer /health within 10 s:\n${d.log()}`);
            }
            await sleep(25);
        }
        // /health answers as soon as the process does; sessions are accepted
        // once the providers are loaded (/ready). Give up quietly after 10 s:
        // some tests want a daemon that is not ready.
        for (const end = Date.now() + 10000; waitReady && Date.now() < end;) {
            try {
                const r = await fetch(`${d.base}/ready`, { signal: AbortSignal.timeout(1000) });
                await r.arrayBuffer();
                if (r.status === 200) break;
            } catch {
                /* retry */
            }
            await sleep(25);
        }
        return d;
    }

    log() {
        try {
            return readFileSync(this.logPath, 'utf8');
        } catch {
            return '';
        }
    }

    logTail(lines = 80) {
        return this.log().split('\n').slice(-lines).join('\n');
    }

    // SIGTERM by PID, SIGKILL after killAfter ms (5 s). Resolves with
    // {code, signal}.
    async stop({ killAfter = 5000 } = {}) {
        liveDaemons.delete(this);
        if (this.exit) return this.exit;
        try {
            process.kill(this.pid, 'SIGTERM');
        } catch {
            /* already gone */
        }
        const t = setTimeout(() => {
            try {
                process.kill(this.pid, 'SIGKILL');
            } catch {
                /* already gone */
            }
        }, killAfter);
        const e = await this.exited;
        clearTimeout(t);
        return e;
    }

    url(p) {
        return `${this.base}${p}`;
    }

    async get(p, opts = {}) {
        const r = await fetch(this.url(p), { signal: AbortSignal.timeout(5000), ...opts });
        const text = await r.text();
        return { status: r.status, text, headers: r.headers };
    }

    async getJSON(p) {
        const r = await this.get(p);
        return { status: r.status, body: JSON.parse(r.text) };
    }

    async metricsText() {
        const r = await this.get('/metrics');
        assert.equal(r.status, 200, 'GET /metrics answers 200');
        return r.text;
    }

    async metrics() {
        return parseMetrics(await this.metricsText());
    }

    async sumMetric(name, labels = {}) {
        return sumMetric(await this.metrics(), name, labels);
    }

    // Poll until fn(metrics) is true (or timeout); returns the last metrics.
    async waitMetrics(fn, { timeout = 10000, what = 'metrics condition' } = {}) {
        const deadline = Date.now() + timeout;
        let m;
        for (;;) {
            m = await this.metrics();
            if (fn(m)) return m;
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await sleep(50);
        }
    }

    // Open a realtime session (see Client.connect).
    connect(opts = {}) {
        return Client.connect(this, opts);
    }
}

// A test process that dies must not leave daemons behind.
process.on('exit', () => {
    for (const d of liveDaemons) {
        try {
            process.kill(d.pid, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
});

// Stop every daemon still running (for after() hooks).
export async function stopAll() {
    await Promise.all([...liveDaemons].map((d) => d.stop()));
}

// test() that attaches the logs of the daemons alive (or started) during
// the test as diagnostics when it fails, and closes the clients it opened.
export function vtest(name, opts, fn) {
    if (typeof opts === 'function') {
        fn = opts;
        opts = {};
    }
    return test(name, { timeout: 60000, ...opts }, async (t) => {
        const shared = new Set(liveDaemons);
        const own = (testDaemons = new Set());
        const clientsBefore = new Set(liveClients);
        try {
            await fn(t);
        } catch (e) {
            for (const d of [...shared, ...own]) {
                t.diagnostic(`voxray log (pid ${d.pid}, port ${d.port}, ${d.logPath}):`);
                for (const line of d.logTail().split('\n')) if (line) t.diagnostic(`  ${line}`);
            }
            throw e;
        } finally {
            testDaemons = null;
            for (const c of liveClients) if (!clientsBefore.has(c)) c.terminate();
            // daemons started by the test itself are its own to stop
            await Promise.all([...own].map((d) => d.stop()));
        }
    });
}

// ------------------------------------------------------------ audio

// s16le mono tone: 220 Hz at amplitude ~8000 (about -12 dBFS), speech to
// the energy VAD.
export function speech(ms, rate = IN_RATE, { freq = 220, amp = 8000 } = {}) {
    const n = Math.round((rate * ms) / 1000);
    const a = new Int16Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.round(amp * Math.sin((2 * Math.PI * freq * i) / rate));
    return a;
}

export function silence(ms, rate = IN_RATE) {
    return new Int16Array(Math.round((rate * ms) / 1000));
}

export function concat(...parts) {
    const n = parts.reduce((s, p) => s + p.length, 0);
    const out = new Int16Array(n);
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
}

export function toBase64(pcm) {
    return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64');
}

export function fromBase64(b64) {
    const b = Buffer.from(b64, 'base64');
    return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

// A spoken turn: lead-in silence (the VAD learns its floor), a tone, then
// enough silence to end the turn (silence_duration_ms 500 by default).
export function turnAudio(rate = IN_RATE, { lead = 400, talk = 1000, tail = 800 } = {}) {
    return concat(silence(lead, rate), speech(talk, rate), silence(tail, rate));
}

// ------------------------------------------------------------ metrics

// Prometheus text -> Map of 'name{labels}' (as rendered) -> number.
export function parseMetrics(text) {
    const m = new Map();
    for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return m;
}

// 'name{a="x",b="y"}' -> { name, labels: {a: 'x', b: 'y'} }
export function parseSeries(key) {
    const b = key.indexOf('{');
    if (b < 0) return { name: key, labels: {} };
    const name = key.slice(0, b);
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let r;
    while ((r = re.exec(key.slice(b))) !== null) {
        labels[r[1]] = r[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    return { name, labels };
}

// Series of `name` whose labels include every pair of `filter` (a value
// may be a RegExp or a function).
export function series(metrics, name, filter = {}) {
    const out = [];
    for (const [key, value] of metrics) {
        const s = parseSeries(key);
        if (s.name !== name) continue;
        let ok = true;
        for (const [k, want] of Object.entries(filter)) {
            const got = s.labels[k];
            if (want instanceof RegExp) ok = got !== undefined && want.test(got);
            else if (typeof want === 'function') ok = want(got);
            else ok = got === String(want);
            if (!ok) break;
        }
        if (ok) out.push({ ...s, value, key });
    }
    return out;
}

// Sum of the matching series (0 when none).
export function sumMetric(metrics, name, filter = {}) {
    return series(metrics, name, filter).reduce((s, x) => s + x.value, 0);
}

// ------------------------------------------------------------ the client

const liveClients = new Set();

export class Client {
    constructor(ws) {
        this.ws = ws;
        this.events = []; // every server event, parsed, in arrival order
        this.pos = 0; // next() and collectUntil() read from here
        this.counter = 0;
        this.waiters = [];
        this.closed = null; // {code, reason} once closed
        this.closedP = new Promise((resolve) => {
            ws.on('close', (code, reason) => {
                this.closed = { code, reason: reason.toString() };
                liveClients.delete(this);
                this._wake();
                resolve(this.closed);
            });
        });
        ws.on('message', (data, isBinary) => {
            let ev;
            try {
                ev = JSON.parse(data.toString());
            } catch (e) {
                ev = { type: '<unparseable>', raw: data.toString(), isBinary, parseError: String(e) };
            }
            ev._t = Date.now();
            this.events.push(ev);
            this._wake();
        });
        ws.on('error', (e) => {
            this.error = e;
            this._wake();
        });
        liveClients.add(this);
    }

    // Open /v1/realtime on daemon d. beta: send `OpenAI-Beta: realtime=v1`.
    static connect(d, { beta = false, headers = {}, path: p = '/v1/realtime', protocols, waitCreated = true } = {}) {
        const h = { ...headers };
        if (beta) h['OpenAI-Beta'] = 'realtime=v1';
        const ws = new WebSocket(`${d.wsBase}${p}`, protocols, { headers: h, perMessageDeflate: false });
        const c = new Client(ws);
        return new Promise((resolve, reject) => {
            const to = setTimeout(() => reject(new Error('WebSocket open timed out')), 10000);
            ws.once('open', async () => {
                clearTimeout(to);
                if (!waitCreated) return resolve(c);
                try {
                    c.created = await c.next('session.created');
                    resolve(c);
                } catch (e) {
                    reject(e);
                }
            });
            ws.once('unexpected-response', (req, res) => {
                clearTimeout(to);
                reject(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}`), { status: res.statusCode }));
            });
            ws.once('error', (e) => {
                clearTimeout(to);
                reject(e);
            });
        });
    }

    _wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    _changed() {
        return new Promise((resolve) => this.waiters.push(resolve));
    }

    // Send a client event (an object gets a counter event_id unless it has
    // one); returns the event_id.
    send(ev) {
        if (ev.event_id === undefined) ev = { event_id: `evt_${++this.counter}`, ...ev };
        this.ws.send(JSON.stringify(ev));
        return ev.event_id;
    }

    sendRaw(data, opts) {
        this.ws.send(data, opts);
    }

    // Append audio in chunks of chunkMs (at `rate`), optionally paced.
    async sendAudio(pcm, { rate = IN_RATE, chunkMs = 100, paceMs = 0 } = {}) {
        const step = Math.max(1, Math.round((rate * chunkMs) / 1000));
        for (let o = 0; o < pcm.length; o += step) {
            this.send({ type: 'input_audio_buffer.append', audio: toBase64(pcm.subarray(o, o + step)) });
            if (paceMs) await sleep(paceMs);
        }
    }

    // Index of the first event at or after `from` matching type and where.
    _find(from, type, where) {
        for (let i = from; i < this.events.length; i++) {
            const e = this.events[i];
            if ((type === null || e.type === type) && (!where || where(e))) return i;
        }
        return -1;
    }

    _seen(from = this.pos) {
        return this.events
            .slice(from)
            .map((e) => (e.type === 'error' ? `error(${e.error?.code})` : e.type))
            .join(', ');
    }

    // The next event of `type` (null: any) after the read position,
    // waiting up to timeout ms; moves the read position past it.
    async next(type, { timeout = 10000, where } = {}) {
        const deadline = Date.now() + timeout;
        for (;;) {
            const i = this._find(this.pos, type, where);
            if (i >= 0) {
                this.pos = i + 1;
                return this.events[i];
            }
            if (this.closed) {
                throw new Error(`connection closed (${this.closed.code} ${this.closed.reason}) before ${type}; seen: ${this._seen()}`);
            }
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`timed out waiting for ${type}; seen since: ${this._seen()}`);
            let to;
            await Promise.race([this._changed(), new Promise((r) => (to = setTimeout(r, left)))]);
            clearTimeout(to);
        }
    }

    // Every event from the read position up to and including the first of
    // `type`; moves the read position past it.
    async collectUntil(type, opts = {}) {
        const from = this.pos;
        await this.next(type, opts);
        return this.events.slice(from, this.pos);
    }

    // Events from the read position on (no wait, no move).
    pending() {
        return this.events.slice(this.pos);
    }

    // Wait `ms` and return what arrived meanwhile (read position moves).
    async drain(ms) {
        await sleep(ms);
        const out = this.events.slice(this.pos);
        this.pos = this.events.length;
        return out;
    }

    // A session.update round trip: returns session.updated.
    async update(session, opts) {
        const id = this.send({ type: 'session.update', session });
        const ev = await this.next(null, { ...opts, where: (e) => e.type === 'session.updated' || e.type === 'error' });
        if (ev.type === 'error') throw new Error(`session.update (${id}) refused: ${JSON.stringify(ev.error)}`);
        return ev;
    }

    waitClose(timeout = 10000) {
        let to;
        return Promise.race([
            this.closedP.finally(() => clearTimeout(to)),
            new Promise((_, rej) => {
                to = setTimeout(() => rej(new Error(`connection not closed within ${timeout} ms; seen: ${this._seen()}`)), timeout);
            }),
        ]);
    }

    async close() {
        if (this.closed) return this.closed;
        this.ws.close(1000, 'bye');
        return this.waitClose();
    }

    terminate() {
        if (!this.closed) this.ws.terminate();
    }
}

// ------------------------------------------------------------ assertions

// Delta texts of `type` (and optional response/item) concatenated.
export function joinDeltas(events, type, field = 'delta') {
    return events.filter((e) => e.type === type).map((e) => e[field]).join('');
}

// Total samples of audio deltas of `type` among events.
export function audioSamples(events, type) {
    return events.filter((e) => e.type === type).reduce((n, e) => n + fromBase64(e.delta).length, 0);
}

export function words(text) {
    return text.trim().split(/\s+/).filter(Boolean);
}
