// A small production on loopback: three voxray instances behind nginx (the
// shipped example: TLS, WebSocket proxying, least connections), one Redis for
// sessions, the S3 server for recordings, and Prometheus scraping all three
// through file-based discovery. Sessions spread over the instances; an
// instance sent SIGTERM mid-conversation loses its clients, which resume
// through nginx on another instance with their history; Prometheus sees
// three targets up, then two, and the dashboards' sums match the instances;
// every recording of every instance reaches S3.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Daemon, Client, simConfig, vtest, stopAll, freePort, sleep, tempDir, TOP_SRCDIR } from './lib.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // nginx has a self-signed certificate
const KEY = 'AKIAVOXRAYFLEET', SECRET = 'voxray-fleet-secret-9b1c';
const dir = tempDir('voxray-fleet-');
const children = [];
let rport, s3port, nport, pport, s3dir, fleet = [];

function child(cmd, args, opts = {}) {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    c.stdout.on('data', () => {});
    c.stderr.on('data', () => {});
    c.gone = new Promise((resolve) => c.on('exit', resolve));
    children.push(c);
    return c;
}
// Every child started here is killed by its PID, whatever way the test ends.
function killChildren(sig) {
    for (const c of children) {
        if (c.exitCode !== null || c.signalCode !== null) continue;
        try {
            process.kill(c.pid, sig);
        } catch { /* gone */ }
    }
}
process.on('exit', () => killChildren('SIGKILL'));
// A promise that must settle within ms, or fails with what it was for.
function within(p, ms, what) {
    let to;
    return Promise.race([p.finally(() => clearTimeout(to)),
        new Promise((_, rej) => { to = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); })]);
}
const get = (url) => fetch(url, { signal: AbortSignal.timeout(2000) });
async function until(fn, what, timeout = 15000) {
    const end = Date.now() + timeout;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
        } catch { /* not yet */ }
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
    }
}
async function promQuery(q) {
    const r = await get(`http://127.0.0.1:${pport}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = await r.json();
    assert.equal(j.status, 'success', `query ${q}: ${j.error}`);
    return j.data.result;
}
const scalar = async (q) => {
    const r = await promQuery(q);
    return r.length ? Number(r[0].value[1]) : NaN;
};
// The dashboards' own expressions, for every instance.
function dashboardExpr(uid, title) {
    const d = JSON.parse(readFileSync(path.join(TOP_SRCDIR, 'conf', 'grafana', 'dashboards', `${uid}.json`), 'utf8'));
    const p = d.panels.find((x) => x.title === title);
    return (t) => p.targets.find((x) => x.legendFormat === t).expr
        .replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.+');
}

before(async () => {
    // Redis
    rport = await freePort();
    child('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    await until(() => execFileSync('redis-cli', ['-p', String(rport), 'ping'], { timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).toString().includes('PONG'), 'redis');
    // S3
    s3port = await freePort();
    s3dir = path.join(dir, 's3');
    const s3 = child('node', [path.join(TOP_SRCDIR, 'tests', 'tools', 's3rver.mjs'), '--port', String(s3port),
        '--dir', s3dir, '--bucket', 'recordings', '--key', KEY, '--secret', SECRET]);
    let s3out = '';
    s3.stdout.on('data', (b) => { s3out += b; });
    await until(() => s3out.includes('ready'), 's3rver');
    // three instances sharing Redis and S3
    for (let i = 0; i < 3; i++) {
        fleet.push(await Daemon.start(simConfig({ latency: '20ms' }, {
            server: { drain_timeout: '1s' },
            session: { store: 'redis', ttl: '600s' },
            'plugin.redis': { plugin: 'store_redis', address: `127.0.0.1:${rport}` },
            recording: { enabled: 'true', sink: 's3', spool_dir: path.join(dir, `spool${i}`),
                dead_letter_dir: path.join(dir, `dead${i}`), retry_backoff: '100ms' },
            'plugin.s3': { plugin: 'rec_s3', endpoint: `http://127.0.0.1:${s3port}`, bucket: 'recordings',
                prefix: 'calls', path_style: 'true', access_key_id: KEY, connect_timeout: '1s', timeout: '10s' },
        }, ), { env: { VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY: SECRET } }));
    }
    // nginx: the shipped example with these upstreams, this port, a test certificate
    nport = await freePort();
    const n = path.join(dir, 'nginx');
    mkdirSync(path.join(n, 'tmp'), { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout',
        path.join(n, 'key.pem'), '-out', path.join(n, 'cert.pem'), '-subj', '/CN=127.0.0.1'], { stdio: 'ignore', timeout: 20000 });
    let conf = readFileSync(path.join(TOP_SRCDIR, 'conf', 'nginx', 'voxray.conf'), 'utf8');
    // (both upstream blocks name the instances)
    for (let i = 0; i < 3; i++) conf = conf.replaceAll(`server 10.0.0.1${i + 1}:8080`, `server 127.0.0.1:${fleet[i].port}`);
    conf = conf.replace('listen 443 ssl;', `listen 127.0.0.1:${nport} ssl;`)
        .replace('/etc/ssl/voxray/fullchain.pem', path.join(n, 'cert.pem'))
        .replace('/etc/ssl/voxray/privkey.pem', path.join(n, 'key.pem'));
    writeFileSync(path.join(n, 'voxray.conf'), conf);
    const t = (x) => path.join(n, 'tmp', x);
    // One process (no master): killing it by PID leaves no worker behind.
    writeFileSync(path.join(n, 'nginx.conf'), `daemon off; master_process off; pid ${n}/nginx.pid;
error_log ${n}/error.log info; events { worker_connections 256; }
http { access_log off; client_body_temp_path ${t('b')}; proxy_temp_path ${t('p')};
fastcgi_temp_path ${t('f')}; uwsgi_temp_path ${t('u')}; scgi_temp_path ${t('s')};
include ${n}/voxray.conf; }\n`);
    child('/usr/sbin/nginx', ['-p', n, '-c', path.join(n, 'nginx.conf'), '-e', path.join(n, 'error.log')]);
    await until(async () => (await get(`https://127.0.0.1:${nport}/health`)).status === 200, 'nginx');
    // Prometheus, discovering the instances from a file as a ServiceMonitor would
    pport = await freePort();
    const p = path.join(dir, 'prom');
    mkdirSync(p, { recursive: true });
    writeFileSync(path.join(p, 'targets.json'), JSON.stringify([{ targets: fleet.map((d) => `127.0.0.1:${d.port}`),
        labels: { env: 'test' } }]));
    writeFileSync(path.join(p, 'prometheus.yml'), `global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["${path.join(TOP_SRCDIR, 'conf', 'prometheus', 'voxray-alerts.yml')}"]
scrape_configs:
  - job_name: voxray
    file_sd_configs: [{files: ["${path.join(p, 'targets.json')}"], refresh_interval: 1s}]
`);
    child('prometheus', [`--config.file=${path.join(p, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(p, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${pport}`]);
    await until(async () => (await get(`http://127.0.0.1:${pport}/-/ready`)).status === 200, 'prometheus', 30000);
}, { timeout: 60000 });
after(async () => {
    await within(stopAll(), 10000, 'voxray instances stopping').catch(() => {});
    killChildren('SIGTERM');
    const t = setTimeout(() => killChildren('SIGKILL'), 3000);
    await Promise.all(children.map((c) => c.gone));
    clearTimeout(t);
}, { timeout: 20000 });

const viaNginx = { wsBase: `wss://127.0.0.1:PORT` };
function connect(p = '/v1/realtime') {
    return Client.connect({ wsBase: viaNginx.wsBase.replace('PORT', String(nport)) }, { path: p });
}
async function textTurn(c, text) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user',
        content: [{ type: 'input_text', text }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text', 'audio'] } });
    const evs = await c.collectUntil('response.done');
    return evs.at(-1).response;
}
const active = async (d) => (await d.sumMetric('voxray_active_sessions'));

vtest('three instances behind nginx: spread, SIGTERM mid-conversation, resume elsewhere, Prometheus and S3 agree', { timeout: 90000 }, async () => {
    await until(async () => (await scalar('sum(up{job="voxray"})')) === 3, 'three targets up', 20000)
        .catch(async (e) => {
            const t = await (await get(`http://127.0.0.1:${pport}/api/v1/targets`)).json().catch(() => ({}));
            throw new Error(`${e.message}: ${JSON.stringify(t.data?.activeTargets?.map((x) => [x.scrapeUrl, x.health, x.lastError]))}`);
        });
    const up = dashboardExpr('voxray-overview', 'Instances up');
    assert.equal(await scalar(up('up')), 3, 'the overview dashboard counts three instances up');

    // Six conversations through nginx: least connections spreads them.
    const clients = [];
    for (let i = 0; i < 6; i++) clients.push(await connect());
    const ids = clients.map((c) => c.created.session.id);
    for (let i = 0; i < 6; i++) assert.equal((await textTurn(clients[i], `remember door number ${i}`)).status, 'completed');
    const per = await Promise.all(fleet.map(active));
    assert.deepEqual(per, [2, 2, 2], `least_conn spreads six sessions over three instances: ${per}`);

    // Prometheus' sums (the dashboards' expressions) match the instances.
    const act = dashboardExpr('voxray-overview', 'Active sessions');
    await until(async () => (await scalar(act('all'))) === 6, 'six active sessions in Prometheus');
    const started = (await Promise.all(fleet.map((d) => d.sumMetric('voxray_sessions_total')))).reduce((a, b) => a + b);
    await until(async () => (await scalar('sum(voxray_sessions_total)')) === started, 'sessions_total summed');

    // SIGTERM one instance mid-conversation: its clients are closed after the drain.
    const victim = fleet[0];
    const vport = `127.0.0.1:${victim.port}`;
    const mine = [];
    process.kill(victim.pid, 'SIGTERM');
    const closed = await Promise.all(clients.map((c) => c.waitClose(5000).then(() => true, () => false)));
    for (let i = 0; i < 6; i++) if (closed[i]) mine.push(i);
    assert.equal(mine.length, 2, `the instance's two clients are closed by its drain (closed: ${closed})`);
    const e = await within(victim.exited, 15000, 'the SIGTERMed instance exiting');
    assert.equal(e.code, 0, 'the drained instance exits 0');

    // Each resumes through nginx on another instance, with its history.
    for (const i of mine) {
        const c = await connect(`/v1/realtime?session_id=${ids[i]}`);
        assert.equal(c.created.session.id, ids[i]);
        const added = (await c.drain(300)).filter((x) => x.type === 'conversation.item.added').map((x) => x.item);
        assert.equal(added[0]?.content?.[0]?.text, `remember door number ${i}`, 'the history came back');
        assert.equal((await textTurn(c, 'and now')).status, 'completed');
        await c.close();
    }
    const after2 = await Promise.all(fleet.slice(1).map((d) => d.sumMetric('voxray_sessions_total')));
    assert.ok(after2.reduce((a, b) => a + b) >= 6, 'the resumed sessions ran on the other two instances');

    // Prometheus: three targets, then two up.
    await until(async () => (await scalar('sum(up{job="voxray"})')) === 2, 'two targets up');
    assert.equal(await scalar('count(up{job="voxray"})'), 3, 'three targets still discovered');
    const down = await promQuery('up{job="voxray"} == 0');
    assert.equal(down[0].metric.instance, vport, 'the stopped instance is the one down');
    assert.equal(await scalar(up('up')), 2, 'the overview dashboard counts two instances up');

    for (const c of clients) c.terminate();
    // Every session of every instance has its recording in S3.
    await until(async () => (await Promise.all(fleet.slice(1).map(active))).every((n) => n === 0), 'sessions ended');
    const objects = () => {
        const walk = (d) => (existsSync(d) ? readdirSync(d, { withFileTypes: true })
            .flatMap((x) => (x.isDirectory() ? walk(path.join(d, x.name)) : [x.name])) : []);
        return walk(path.join(s3dir, 'recordings'));
    };
    await until(() => ids.every((id) => objects().some((o) => o.startsWith(`${id}.wav`))),
        `recordings of ${ids.join(', ')} in S3`, 20000);
    for (const id of ids) assert.ok(objects().some((o) => o.startsWith(`${id}.json`)), `${id}.json in S3`);
});
