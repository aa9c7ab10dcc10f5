// Live reload of the session store and the recording sink: SIGHUP puts the
// [session] store and [recording] sink instances the new configuration
// names in service. Store calls and upload attempts that start after the
// reload use the new ones; an upload already running finishes on the old
// sink, which is shut down once it returned. A new store must answer a
// ping before it is used. A replacement that cannot load, init or answer
// leaves the running one in service, with one error line.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import {
    Daemon, simConfig, vtest, stopAll, sleep, tempDir, freePort, turnAudio, sumMetric,
    PLUGIN_DIR, TOP_BUILDDIR, TOP_SRCDIR,
} from './lib.mjs';

const TEST_PLUGIN_DIR = path.join(TOP_BUILDDIR, 'tests', 'plugins', '.libs');
const children = [];

after(async () => {
    await stopAll();
    for (const p of children) {
        try { process.kill(p.pid, 'SIGCONT'); } catch { /* gone */ }
        p.kill('SIGKILL');
    }
});

function count(text, needle) {
    return text.split('\n').filter((l) => l.includes(needle)).length;
}

async function waitFor(fn, what, timeout = 15000) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const v = fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
    }
}

const waitLog = (d, needle, n = 1) => waitFor(() => count(d.log(), needle) >= n, `${n} log line(s) "${needle}"`);

async function hup(d, n) {
    process.kill(d.pid, 'SIGHUP');
    await waitLog(d, 'SIGHUP: configuration reloaded', n);
}

function edit(d, fn) {
    writeFileSync(d.confPath, fn(readFileSync(d.confPath, 'utf8')));
}

function walk(dir) {
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}

// The files of session `id` under dir (any depth): the sink's copies, or
// the S3 server's objects (<key>._S3rver_object, beside its metadata).
function filesOf(dir, id) {
    return walk(dir).map((f) => path.basename(f))
        .filter((f) => f.startsWith(`${id}.`) && (!f.includes('._S3rver_') || f.endsWith('._S3rver_object'))).sort();
}

// One recorded session: a spoken turn, answered, then closed. Its id.
async function recordedCall(d) {
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    await c.collectUntil('response.done', { timeout: 15000 });
    await c.close();
    return id;
}

async function textTurn(c, text) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    return evs.at(-1).response;
}

// An S3 server checking SigV4 with one key pair (tests/tools/s3rver.mjs).
async function startS3(key, secret, bucket) {
    const port = await freePort();
    const dir = tempDir('voxray-s3-');
    const log = path.join(dir, 'requests.log');
    const p = spawn(process.execPath, [path.join(TOP_SRCDIR, 'tests', 'tools', 's3rver.mjs'), '--port', String(port),
        '--dir', path.join(dir, 'data'), '--bucket', bucket, '--key', key, '--secret', secret, '--log', log],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(p);
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    await waitFor(() => out.includes('ready'), 'the S3 server', 20000);
    return { p, port, dir: path.join(dir, 'data', bucket), log };
}

async function startRedis() {
    const port = await freePort();
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' });
    children.push(p);
    for (let i = 0; i < 200; i++) {
        try {
            if (execFileSync('redis-cli', ['-p', String(port), 'ping']).toString().includes('PONG')) return { p, port };
        } catch { /* not yet */ }
        await sleep(50);
    }
    throw new Error('redis-server did not start');
}

vtest('rotated S3 endpoint, bucket and credentials: later recordings go to the new sink, the upload in flight lands in the old', { timeout: 120000 }, async () => {
    const A = await startS3('OLDKEY', 'old-secret-0000', 'recordings');
    const B = await startS3('NEWKEY', 'new-secret-1111', 'rotated');
    const work = tempDir('voxray-rs-');
    const s3 = (srv, bucket, key, secret) => ({
        plugin: 'rec_s3', endpoint: `http://127.0.0.1:${srv.port}`, bucket, prefix: 'calls', path_style: 'true',
        access_key_id: key, secret_access_key: secret, connect_timeout: '1s', timeout: '60s', stall_timeout: '60s',
    });
    const d = await Daemon.start(simConfig({ ms_per_char: 5 }, {
        recording: {
            enabled: 'true', sink: 's3', spool_dir: path.join(work, 'spool'), dead_letter_dir: path.join(work, 'dead'),
            retry_backoff: '100ms',
        },
        'plugin.s3': s3(A, 'recordings', 'OLDKEY', 'old-secret-0000'),
    }));

    // Before the reload: into the old bucket.
    const id0 = await recordedCall(d);
    await waitFor(() => filesOf(A.dir, id0).length === 2, 'the first recording in the old bucket');
    // The server stores an object before it answers: wait for the answer,
    // or a SIGSTOP in between holds this job's worker too, and with both
    // of the default 2 workers held the next recording waits for the
    // stall timeout.
    await d.waitMetrics((m) => m.get('recording_jobs_success_total') === 1, { what: 'the first job done' });

    // The old server stops answering: the next upload hangs in the old sink.
    process.kill(A.p.pid, 'SIGSTOP');
    const id1 = await recordedCall(d);
    await d.waitMetrics((m) => m.get('voxray_plugin_inflight{kind="sink",plugin="s3",provider="s3"}') === 1,
        { what: 'an upload in flight', timeout: 15000 });

    // Rotated: another endpoint, bucket and key pair.
    edit(d, (t) => t.replace(`127.0.0.1:${A.port}`, `127.0.0.1:${B.port}`).replace('bucket = recordings', 'bucket = rotated')
        .replace('OLDKEY', 'NEWKEY').replace('old-secret-0000', 'new-secret-1111'));
    await hup(d, 1);
    assert.equal(count(d.log(), 'the recording sink is replaced'), 1);
    assert.match(d.log(), /SIGHUP: configuration reloaded .*store\/sink.*restart_needed=no/);

    // A recording after the reload lands in the new bucket with the new key.
    const id2 = await recordedCall(d);
    await waitFor(() => filesOf(B.dir, id2).length === 2, 'the recording after the reload in the new bucket');
    assert.deepEqual(filesOf(B.dir, id2), [`${id2}.json._S3rver_object`, `${id2}.wav._S3rver_object`]);
    assert.deepEqual(filesOf(A.dir, id2), []);
    assert.equal(count(d.log(), 'plugin instance shut down'), 0, 'the old sink stays while its upload runs');

    // The old server answers again: the upload in flight finishes there.
    process.kill(A.p.pid, 'SIGCONT');
    // The upload in flight ends on the old sink: it lands there, or, when
    // the resumed server drops the connection first (a keep-alive timer
    // that ran out while it was stopped fires before it reads the request),
    // the attempt fails and its retry goes whole to the sink in service.
    // Either way both files are in one bucket.
    await waitFor(() => filesOf(A.dir, id1).length === 2 || filesOf(B.dir, id1).length === 2,
        'the recording in flight in one bucket', 30000);
    await waitLog(d, 'plugin instance shut down');
    const down = d.log().split('\n').filter((l) => l.includes('plugin instance shut down'));
    assert.equal(down.length, 1);
    assert.match(down[0], /instance[=":\s]+"?s3/);
    await waitLog(d, 'no call uses the session store and recording sink a reload replaced');

    // The old key pair is revoked (its server gone): recordings still land.
    A.p.kill('SIGTERM');
    const id3 = await recordedCall(d);
    await waitFor(() => filesOf(B.dir, id3).length === 2, 'a later recording in the new bucket');
    // (an object is stored before the server answers: wait for the count)
    const m = await d.waitMetrics((mm) => mm.get('recording_jobs_success_total') === 4, { what: 'four jobs uploaded' });
    assert.equal(m.get('recording_jobs_failed_total'), 0);
    assert.equal(sumMetric(m, 'voxray_plugin_calls_total', { kind: 'sink', plugin: 's3', op: 'upload', status: 'ok' }), 8);
    const newReqs = readFileSync(B.log, 'utf8').split('\n').filter((l) => l.startsWith('PUT '));
    assert.ok(newReqs.every((l) => l.endsWith(' 200')), newReqs.join('\n'));
    const h = (await d.getJSON('/v1/health')).body;
    assert.equal(h.providers.recording[0].name, 's3');
    assert.equal((await d.stop()).code, 0);
});

vtest('the session store switched from memory to redis: sessions created after the reload resume from redis', { timeout: 60000 }, async () => {
    const r = await startRedis();
    const d = await Daemon.start(simConfig({}, { session: { store: 'memory', ttl: '600s' } }));
    const c1 = await d.connect();
    const id1 = c1.created.session.id;
    assert.equal((await textTurn(c1, 'remember the red car')).status, 'completed');
    await c1.close();

    edit(d, (t) => t.replace('store = memory', 'store = redis')
        + `\n[plugin.redis]\nplugin = store_redis\naddress = 127.0.0.1:${r.port}\n`);
    await hup(d, 1);
    assert.equal(count(d.log(), 'the session store is replaced'), 1);
    const warn = d.log().split('\n').filter((l) => l.includes('the session store was in memory'));
    assert.equal(warn.length, 1, 'the loss of the in-memory sessions is logged once');
    assert.match(warn[0], /WARN/);
    assert.match(d.log(), /SIGHUP: configuration reloaded .*store\/sink.*restart_needed=no/);

    // /ready checks the new store.
    const ready = await d.getJSON('/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.checks.session_store.store, 'redis');
    assert.equal(ready.body.checks.session_store.status, 'ok');

    // A session after the reload is saved in redis and resumable from it.
    const c2 = await d.connect();
    const id2 = c2.created.session.id;
    assert.equal((await textTurn(c2, 'remember the green bike')).status, 'completed');
    await c2.close();
    await waitFor(() => execFileSync('redis-cli', ['-p', String(r.port), 'exists', `voxray:session:${id2}`]).toString().trim() === '1',
        'the session in redis');
    const c3 = await d.connect({ path: `/v1/realtime?session_id=${id2}` });
    assert.equal(c3.created.session.id, id2);
    const items = (await c3.drain(300)).filter((e) => e.type === 'conversation.item.added').map((e) => e.item);
    assert.equal(items[0].content[0].text, 'remember the green bike');
    await c3.close();

    // The session saved only in memory is out of reach, as logged.
    const c4 = await d.connect({ path: `/v1/realtime?session_id=${id1}` });
    assert.equal((await c4.next('error')).error.code, 'session_not_found');
    await c4.close();

    await waitLog(d, 'plugin instance shut down');
    assert.match(d.log().split('\n').find((l) => l.includes('plugin instance shut down')), /instance[=":\s]+"?memory/);
    const m = await d.metrics();
    assert.ok(sumMetric(m, 'voxray_plugin_calls_total', { kind: 'store', plugin: 'redis', op: 'put', status: 'ok' }) >= 1);
    assert.ok(sumMetric(m, 'voxray_plugin_calls_total', { kind: 'store', plugin: 'redis', op: 'get', status: 'ok' }) >= 1);
    assert.equal((await d.stop()).code, 0);
});

vtest('a new store or sink that cannot load, init or answer: one error line each, the running ones stay', { timeout: 60000 }, async () => {
    const work = tempDir('voxray-rs-');
    const sinkDir = path.join(work, 'sink');
    mkdirSync(sinkDir, { recursive: true });
    const d = await Daemon.start(simConfig({ ms_per_char: 5 }, {
        server: { plugin_dir: `${PLUGIN_DIR}:${TEST_PLUGIN_DIR}` },
        session: { store: 'memory' },
        recording: {
            enabled: 'true', sink: 'faulty', spool_dir: path.join(work, 'spool'), dead_letter_dir: path.join(work, 'dead'),
        },
        'plugin.faulty': { plugin: 'sink_faulty', dir: sinkDir },
    }));
    const base = readFileSync(d.confPath, 'utf8');
    const errors = () => d.log().split('\n').filter((l) => l.includes('session store and recording sink not reloaded'));
    const stillServing = async () => {
        const ready = await d.getJSON('/ready');
        assert.equal(ready.status, 200);
        assert.equal(ready.body.checks.session_store.store, 'memory');
        const id = await recordedCall(d);
        await waitFor(() => filesOf(sinkDir, id).length === 2, 'a recording in the running sink');
    };

    // A redis nobody listens on: its ping fails.
    const closed = await freePort();
    writeFileSync(d.confPath, base.replace('store = memory', 'store = redis')
        + `\n[plugin.redis]\nplugin = store_redis\naddress = 127.0.0.1:${closed}\nconnect_timeout = 200ms\n`);
    await hup(d, 1);
    assert.equal(errors().length, 1);
    assert.match(errors()[0], /ERROR.*does not answer/);
    await stillServing();

    // A store whose init fails.
    writeFileSync(d.confPath, base.replace('store = memory', 'store = broken') + '\n[plugin.broken]\nplugin = init_fails\n');
    await hup(d, 2);
    assert.equal(errors().length, 2);
    assert.match(errors()[1], /init/);
    await stillServing();

    // A sink file that is no plugin.
    writeFileSync(d.confPath, base.replace('sink = faulty', 'sink = bad') + '\n[plugin.bad]\nplugin = no_entry\n');
    await hup(d, 3);
    assert.equal(errors().length, 3);
    assert.match(errors()[2], /vx_plugin_entry/);
    await stillServing();

    assert.equal(count(d.log(), 'plugin instance shut down'), 0, 'the running store and sink were never replaced');
    assert.equal(count(d.log(), 'SIGHUP: configuration reloaded'), 3);
    // Fixed: the next SIGHUP with the running configuration changes nothing.
    writeFileSync(d.confPath, base);
    await hup(d, 4);
    assert.equal(errors().length, 3);
    assert.equal((await d.stop()).code, 0);
});

vtest('limits and session defaults apply on SIGHUP without a restart: max_sessions, instructions, idle_timeout', { timeout: 60000 }, async () => {
    const d = await Daemon.start(simConfig({}, {
        server: { max_sessions: 10 },
        session: { instructions: 'The old prompt.', ttl: '600s', idle_timeout: '120s' },
    }));
    const a = await d.connect();
    assert.equal(a.created.session.instructions, 'The old prompt.');

    edit(d, (t) => t.replace('max_sessions = 10', 'max_sessions = 1').replace('The old prompt.', 'The new prompt.')
        .replace('ttl = 600s', 'ttl = 300s').replace('idle_timeout = 120s', 'idle_timeout = 1s'));
    await hup(d, 1);
    assert.equal(count(d.log(), 'restart voxray to apply it'), 0);
    assert.match(d.log(), /SIGHUP: configuration reloaded .*restart_needed=no/);

    // One session open, one allowed: /ready says so, a second is refused.
    const ready = await d.getJSON('/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.failing, 'max_sessions');
    assert.equal(ready.body.checks.sessions.max, 1);
    await assert.rejects(d.connect(), 'a session beyond the new max_sessions is refused');
    await a.close();
    for (const end = Date.now() + 10000; (await d.getJSON('/ready')).status !== 200;) {
        assert.ok(Date.now() < end, '/ready comes back once the session ended');
        await sleep(50);
    }
    // The next session starts with the new default instructions, and is
    // closed after the new idle_timeout.
    const b = await d.connect();
    assert.equal(b.created.session.instructions, 'The new prompt.');
    const idle = await b.next('error', { timeout: 10000 });
    assert.equal(idle.error.code, 'session_idle_timeout');
    await b.waitClose();
    assert.equal((await d.stop()).code, 0);
});

vtest('a recording the old sink keeps failing is retried on the new sink after the reload: nothing is lost', { timeout: 60000 }, async () => {
    const work = tempDir('voxray-rs-');
    const oldDir = path.join(work, 'old'), newDir = path.join(work, 'new');
    mkdirSync(oldDir, { recursive: true });
    mkdirSync(newDir, { recursive: true });
    const d = await Daemon.start(simConfig({ ms_per_char: 5 }, {
        server: { plugin_dir: `${PLUGIN_DIR}:${TEST_PLUGIN_DIR}` },
        recording: {
            enabled: 'true', sink: 'faulty', spool_dir: path.join(work, 'spool'), dead_letter_dir: path.join(work, 'dead'),
            max_retries: 100, retry_backoff: '100ms', retry_backoff_max: '200ms',
        },
        'plugin.faulty': { plugin: 'sink_faulty', dir: oldDir, fail_all: 'true' },
    }));
    const id = await recordedCall(d);
    await d.waitMetrics((m) => m.get('voxray_recording_upload_retries_total') >= 2, { what: 'retries on the old sink' });

    edit(d, (t) => t.replace(`dir = ${oldDir}`, `dir = ${newDir}`).replace('fail_all = true', 'fail_all = false'));
    await hup(d, 1);
    await waitFor(() => filesOf(newDir, id).length === 2, 'the recording in the new sink');
    assert.deepEqual(filesOf(newDir, id), [`${id}.json`, `${id}.wav`]);
    assert.deepEqual(filesOf(oldDir, id), []);
    const m = await d.waitMetrics((mm) => mm.get('recording_jobs_success_total') === 1, { what: 'the job uploaded' });
    assert.equal(m.get('recording_jobs_failed_total'), 0);
    assert.deepEqual(readdirSync(path.join(work, 'dead')), [], 'nothing dead-lettered');
    assert.match(d.log(), /recording uploaded session_id=\S+ sink=faulty attempts=([3-9]|[1-9]\d+)\b/);
    assert.equal((await d.stop()).code, 0);
});
