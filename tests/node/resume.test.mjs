// Sessions live in the session store: a client resumes its conversation by
// id (GET /v1/realtime?session_id=...) on another instance sharing Redis.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { Daemon, simConfig, vtest, stopAll, freePort, sumMetric } from './lib.mjs';

let redis, rport, a, b;

async function startRedis() {
    rport = await freePort();
    redis = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
        try {
            if (execFileSync('redis-cli', ['-p', String(rport), 'ping']).toString().includes('PONG')) return;
        } catch { /* not yet */ }
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start');
}

const shared = () => simConfig({}, {
    session: { store: 'redis', ttl: '600s' },
    'plugin.redis': { plugin: 'store_redis', address: `127.0.0.1:${rport}` },
});

before(async () => {
    await startRedis();
    a = await Daemon.start(shared());
    b = await Daemon.start(shared());
});
after(async () => {
    await stopAll();
    if (redis) redis.kill('SIGKILL');
});

async function textTurn(c, text) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user',
        content: [{ type: 'input_text', text }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const evs = await c.collectUntil('response.done');
    return evs.at(-1).response;
}

vtest('a session resumed by id on another instance gets its conversation back', async () => {
    const c1 = await a.connect();
    const id = c1.created.session.id;
    const r1 = await textTurn(c1, 'remember the blue door');
    assert.equal(r1.status, 'completed');
    await c1.close();

    const c2 = await b.connect({ path: `/v1/realtime?session_id=${id}` });
    assert.equal(c2.created.session.id, id, 'the same session id');
    const added = await c2.drain(300);
    const items = added.filter((e) => e.type === 'conversation.item.added').map((e) => e.item);
    assert.deepEqual(items.map((i) => i.role), ['user', 'assistant']);
    assert.equal(items[0].content[0].text, 'remember the blue door');
    assert.equal(items[1].content[0].text, 'You said: remember the blue door.');
    // the next answer is generated with the restored history in the prompt
    const r2 = await textTurn(c2, 'and now');
    assert.ok(r2.usage.input_tokens > r1.usage.input_tokens + 3, 'the prompt grew by the restored exchange');
    await c2.close();
    const m = await b.metrics();
    assert.ok(sumMetric(m, 'voxray_plugin_calls_total', { kind: 'store', plugin: 'redis', op: 'get', status: 'ok' }) >= 1);
    assert.ok(sumMetric(m, 'voxray_plugin_calls_total', { kind: 'store', plugin: 'redis', op: 'put', status: 'ok' }) >= 1);
});

vtest('resuming an unknown session id is a session_not_found error and a fresh session', async () => {
    const c = await a.connect({ path: '/v1/realtime?session_id=sess_doesnotexist' });
    const err = await c.next('error');
    assert.equal(err.error.code, 'session_not_found');
    assert.notEqual(c.created.session.id, 'sess_doesnotexist');
    const r = await textTurn(c, 'hello');
    assert.equal(r.status, 'completed');
    await c.close();
});

vtest('the stored state expires after [session] ttl', async () => {
    const c = await a.connect();
    await textTurn(c, 'hello');
    await c.close();
    const key = `voxray:session:${c.created.session.id}`; // store_redis prefix + key
    const ttl = Number(execFileSync('redis-cli', ['-p', String(rport), 'ttl', key]).toString());
    assert.ok(ttl > 500 && ttl <= 600, `a TTL near 600 s, got ${ttl}`);
});

vtest('a resume while the store is unavailable is refused as retryable, and the session stays resumable', async () => {
    const c = await a.connect();
    const id = c.created.session.id;
    await textTurn(c, 'keep my words');
    await c.close();
    await new Promise((r) => setTimeout(r, 300)); // the save lands
    redis.kill('SIGSTOP'); // the store hangs: its calls time out
    try {
        const c2 = await b.connect({ path: `/v1/realtime?session_id=${id}`, waitCreated: false });
        const err = await c2.next('error', { timeout: 15000 });
        assert.equal(err.error.code, 'session_store_unavailable');
        assert.equal(err.error.type, 'server_error');
        const closed = await c2.waitClose(15000);
        assert.equal(closed.code, 1013, 'close code 1013: try again later');
        assert.ok(!c2.events.some((e) => e.type === 'session.created'), 'no fresh session in its place');
    } finally {
        redis.kill('SIGCONT');
    }
    // Once the store answers, the same id resumes with its conversation.
    let c3;
    for (let i = 0; i < 50; i++) {
        c3 = await b.connect({ path: `/v1/realtime?session_id=${id}` });
        const evs = await c3.drain(300);
        if (!evs.some((e) => e.type === 'error')) break;
        await c3.close();
        c3 = null;
        await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(c3, 'the session resumes once the store is back');
    assert.equal(c3.created.session.id, id);
    await c3.close();
});

vtest('saves coalesce: changes made while the store is slow cost one more save, and the last state is stored', async () => {
    const puts = async () => sumMetric(await a.metrics(), 'voxray_plugin_calls_total',
        { kind: 'store', plugin: 'redis', op: 'put' });
    const c = await a.connect();
    const id = c.created.session.id;
    const create = (i) => c.send({ type: 'conversation.item.create', item: { id: `item_c${i}`, type: 'message',
        role: 'user', content: [{ type: 'input_text', text: `note ${i}` }] } });
    create(0);
    await c.next('conversation.item.done');
    await new Promise((r) => setTimeout(r, 300)); // that save lands
    const before = await puts();
    const N = 40;
    redis.kill('SIGSTOP'); // the next save hangs in the store
    try {
        create(1);
        await c.next('conversation.item.done', { where: (e) => e.item.id === 'item_c1' });
        await new Promise((r) => setTimeout(r, 100)); // its save is being written
        for (let i = 2; i <= N; i++) create(i);
        await c.next('conversation.item.done', { where: (e) => e.item.id === `item_c${N}` });
    } finally {
        redis.kill('SIGCONT');
    }
    let n;
    for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        n = (await puts()) - before;
        if (n >= 2) break;
    }
    await new Promise((r) => setTimeout(r, 300));
    n = (await puts()) - before;
    assert.ok(n >= 2 && n <= 3, `${N} changes during a hung save cost ${n} saves, not ${N}`);
    await c.close();
    const c2 = await b.connect({ path: `/v1/realtime?session_id=${id}` });
    const added = (await c2.drain(300)).filter((e) => e.type === 'conversation.item.added');
    assert.equal(added.length, N + 1, 'every item is in the stored state');
    assert.equal(added.at(-1).item.id, `item_c${N}`);
    await c2.close();
});
