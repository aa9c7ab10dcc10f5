// Shared helpers for the protocol tests: a voxray daemon on a free loopback
// port, a recording WebSocket client, synthesized audio, /metrics parsing.
//
// Nothing here writes to stdout: the TAP stream belongs to node:test.
// Daemons are stopped by their PID (SIGTERM, then SIGKILL after 5 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { WebSocketServer } from 'ws';

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

// ------------------------------------------------------------ relays

// Close a ws socket with the code the other side gave, where one may be sent.
function relayClose(ws, code, reason) {
    if (ws.readyState !== WebSocket.OPEN && ws.readyState !== WebSocket.CONNECTING) return;
    const sendable = code >= 1000 && code <= 4999 && ![1004, 1005, 1006, 1015].includes(code);
    try {
        if (sendable) ws.close(code, reason);
        else ws.close();
    } catch {
        ws.terminate();
    }
}

// A copy of an event fit for a trace: base64 audio replaced by its size.
function traceable(ev) {
    if (!ev || typeof ev !== 'object') return ev;
    const out = { ...ev };
    if (typeof out.audio === 'string' && out.audio.length > 64) out.audio = `<${Buffer.from(out.audio, 'base64').length} bytes of base64 audio>`;
    if (typeof out.delta === 'string' && /audio\.delta$/.test(out.type || '') && out.delta.length > 64) {
        out.delta = `<${Buffer.from(out.delta, 'base64').length} bytes of base64 audio>`;
    }
    return out;
}

// A recording WebSocket relay in front of voxray, for clients that cannot be
// handed a recording socket: every frame goes through unchanged and is noted
// in `log` as {conn, dir: 'send' (client to voxray) | 'recv', t (ms since the
// relay started), type, ev}. Plain HTTP requests (/health) are passed on too.
export class TraceProxy {
    static async start(upstreamPort) {
        const p = new TraceProxy(upstreamPort);
        p.port = await freePort();
        await new Promise((resolve, reject) => {
            p.server.once('error', reject);
            p.server.listen(p.port, '127.0.0.1', resolve);
        });
        return p;
    }

    constructor(upstreamPort) {
        this.upstreamPort = upstreamPort;
        this.t0 = Date.now();
        this.log = [];
        this.conns = 0;
        this.sockets = new Set();
        this.waiters = [];
        this.wss = new WebSocketServer({
            noServer: true,
            perMessageDeflate: false,
            handleProtocols: (protocols, req) => req.upstreamProtocol || false,
        });
        this.server = http.createServer((req, res) => {
            const up = http.request({
                host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers: req.headers,
            }, (ures) => {
                res.writeHead(ures.statusCode, ures.headers);
                ures.pipe(res);
            });
            up.on('error', () => res.destroy());
            req.pipe(up);
        });
        this.server.on('upgrade', (req, socket, head) => this._upgrade(req, socket, head));
    }

    get wsBase() {
        return `ws://127.0.0.1:${this.port}`;
    }

    get httpBase() {
        return `http://127.0.0.1:${this.port}`;
    }

    _note(conn, dir, data, isBinary) {
        let ev;
        if (isBinary) ev = { type: '<binary>', bytes: data.length };
        else {
            try {
                ev = JSON.parse(data.toString());
            } catch {
                ev = { type: '<unparseable>', raw: data.toString().slice(0, 200) };
            }
        }
        this._push({ conn, dir, t: Date.now() - this.t0, type: ev?.type, ev: traceable(ev) });
    }

    _push(entry) {
        this.log.push(entry);
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    _upgrade(req, socket, head) {
        const conn = ++this.conns;
        // every header but the hop-by-hop and handshake ones
        const headers = {};
        for (const [k, v] of Object.entries(req.headers)) {
            if (!/^(host|connection|upgrade|content-length|sec-websocket-.*)$/.test(k)) headers[k] = v;
        }
        const protocols = (req.headers['sec-websocket-protocol'] || '').split(',').map((x) => x.trim()).filter(Boolean);
        this._push({ conn, dir: 'open', t: Date.now() - this.t0, type: '<open>', ev: { url: req.url, headers } });
        const up = new WebSocket(`ws://127.0.0.1:${this.upstreamPort}${req.url}`, protocols, { headers, perMessageDeflate: false });
        this.sockets.add(up);
        const early = [];
        let client = null;
        up.on('message', (data, isBinary) => {
            this._note(conn, 'recv', data, isBinary);
            if (client) client.send(data, { binary: isBinary });
            else early.push([data, isBinary]);
        });
        up.once('unexpected-response', (r, res) => {
            this._push({ conn, dir: 'recv', t: Date.now() - this.t0, type: '<refused>', ev: { status: res.statusCode } });
            socket.end(`HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        });
        up.on('error', () => {
            if (!client) socket.destroy();
            else client.terminate();
        });
        up.on('close', (code, reason) => {
            this.sockets.delete(up);
            this._push({ conn, dir: 'recv', t: Date.now() - this.t0, type: '<close>', ev: { code, reason: reason.toString() } });
            if (client) relayClose(client, code, reason.toString());
            else socket.destroy();
        });
        up.once('open', () => {
            req.upstreamProtocol = up.protocol || undefined;
            this.wss.handleUpgrade(req, socket, head, (ws) => {
                client = ws;
                this.sockets.add(ws);
                for (const [data, isBinary] of early) ws.send(data, { binary: isBinary });
                ws.on('message', (data, isBinary) => {
                    this._note(conn, 'send', data, isBinary);
                    if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
                });
                ws.on('close', (code, reason) => {
                    this.sockets.delete(ws);
                    this._push({ conn, dir: 'send', t: Date.now() - this.t0, type: '<close>', ev: { code, reason: reason.toString() } });
                    relayClose(up, code, reason.toString());
                });
                ws.on('error', () => up.terminate());
            });
        });
    }

    // Entries matching dir ('send'/'recv'), type (string, RegExp or null)
    // and where(ev), from index `from` of the log.
    find({ dir, type = null, where, from = 0 } = {}) {
        const out = [];
        for (let i = from; i < this.log.length; i++) {
            const e = this.log[i];
            if (dir && e.dir !== dir) continue;
            if (type !== null && !(type instanceof RegExp ? type.test(e.type || '') : e.type === type)) continue;
            if (where && !where(e.ev, e)) continue;
            out.push({ ...e, index: i });
        }
        return out;
    }

    sent(type, where) {
        return this.find({ dir: 'send', type, where }).map((e) => e.ev);
    }

    received(type, where) {
        return this.find({ dir: 'recv', type, where }).map((e) => e.ev);
    }

    // The first entry matching `q` (see find), waiting up to timeout ms.
    async waitFor(q, { timeout = 10000, what } = {}) {
        const deadline = Date.now() + timeout;
        for (;;) {
            const hit = this.find(q)[0];
            if (hit) return hit;
            const left = deadline - Date.now();
            if (left <= 0) {
                const desc = what || `${q.dir || 'any'} ${q.type instanceof RegExp ? q.type : q.type || 'event'}`;
                throw new Error(`timed out after ${timeout} ms waiting for ${desc}; trace: ${this.summary()}`);
            }
            let to;
            await Promise.race([
                new Promise((r) => this.waiters.push(r)),
                new Promise((r) => (to = setTimeout(r, left))),
            ]);
            clearTimeout(to);
        }
    }

    // One line per event: '> type' sent, '< type' received, errors with code.
    summary() {
        return this.log.map((e) => {
            const arrow = e.dir === 'send' ? '>' : e.dir === 'recv' ? '<' : '*';
            let s = `${arrow}${e.type}`;
            if (e.type === 'error') s += `(${e.ev.error?.code}: ${e.ev.error?.message})`;
            return s;
        }).join(' ');
    }

    // The whole trace as JSON lines.
    jsonl() {
        return this.log.map((e) => JSON.stringify(e)).join('\n') + '\n';
    }

    async stop() {
        for (const s of this.sockets) s.terminate();
        this.sockets.clear();
        await new Promise((resolve) => {
            this.server.close(() => resolve());
            this.server.closeAllConnections?.();
        });
    }
}

// nginx as a TLS-terminating WebSocket proxy in front of a loopback port
// (for clients that only speak wss://), with a throw-away self-signed
// certificate (`ca`). Started on a free port and stopped by its PID.
const NGINX = '/usr/sbin/nginx';

export class TlsProxy {
    static async start(upstreamPort) {
        const dir = tempDir('voxray-nginx-');
        const port = await freePort();
        mkdirSync(path.join(dir, 'tmp'));
        execFileSync('openssl', [
            'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
            '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
            '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        ], { stdio: ['ignore', 'ignore', 'pipe'] });
        const conf = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    server {
        listen 127.0.0.1:${port} ssl;
        ssl_certificate ${dir}/cert.pem;
        ssl_certificate_key ${dir}/key.pem;
        location / {
            proxy_pass http://127.0.0.1:${upstreamPort};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 60s;
        }
    }
}
`;
        writeFileSync(path.join(dir, 'nginx.conf'), conf);
        const fd = openSync(path.join(dir, 'nginx.out'), 'a');
        const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')],
            { stdio: ['ignore', fd, fd] });
        closeSync(fd);
        const p = new TlsProxy(dir, port, child);
        process.on('exit', () => p.exit || p.kill('SIGKILL'));
        const ca = p.ca;
        const deadline = Date.now() + 10000;
        for (;;) {
            if (p.exit) throw new Error(`nginx exited: ${p.log()}`);
            const status = await new Promise((resolve) => {
                const req = https.get({ host: '127.0.0.1', port, path: '/health', ca, timeout: 1000 }, (res) => {
                    res.resume();
                    resolve(res.statusCode);
                });
                req.on('error', () => resolve(0));
                req.on('timeout', () => req.destroy());
            });
            if (status === 200) return p;
            if (Date.now() > deadline) {
                await p.stop();
                throw new Error(`nginx did not proxy /health within 10 s: ${p.log()}`);
            }
            await sleep(50);
        }
    }

    constructor(dir, port, child) {
        this.dir = dir;
        this.port = port;
        this.child = child;
        this.pid = child.pid;
        this.ca = readFileSync(path.join(dir, 'cert.pem'));
        this.exit = null;
        this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((this.exit = { code, signal }))));
    }

    log() {
        try {
            return readFileSync(path.join(this.dir, 'error.log'), 'utf8');
        } catch {
            return '';
        }
    }

    kill(sig) {
        try {
            process.kill(this.pid, sig);
        } catch {
            /* gone */
        }
    }

    // SIGQUIT (graceful) by PID, SIGKILL after 5 s.
    async stop() {
        if (this.exit) return this.exit;
        this.kill('SIGQUIT');
        const t = setTimeout(() => this.kill('SIGKILL'), 5000);
        const e = await this.exited;
        clearTimeout(t);
        return e;
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
