// Live plugin reload: SIGHUP re-reads the configuration and the plugin
// files. New sessions start on the new providers, sessions already running
// finish on the ones they started with, and an old plugin file is unloaded
// when its last session ends. A replacement that cannot load or init
// leaves the running provider in service.
//
// reload_llm (tests/plugins/reload_llm.c) is built twice, as release 1
// ("Version one speaking.") and release 2 ("Version two here."); the tests
// copy one or the other into a plugin folder of their own as
// reload_llm.so, the way a package upgrade replaces a file (a new file
// renamed over the old one).
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
    Daemon, vtest, stopAll, series, sumMetric, sleep, tempDir, PLUGIN_DIR, TOP_BUILDDIR,
} from './lib.mjs';

after(stopAll);

const BUILT = path.join(TOP_BUILDDIR, 'tests', 'plugins', '.libs');
const V1 = path.join(BUILT, 'reload_llm_v1.so');
const V2 = path.join(BUILT, 'reload_llm_v2.so');
const NO_ENTRY = path.join(BUILT, 'no_entry.so');
const ONE = 'Version one speaking.';
const TWO = 'Version two here.';

// Put `src` in place as dir/reload_llm.so: copied beside it, then renamed
// over it (the running daemon keeps its mapping of the old file).
function install(src, dir) {
    const tmp = path.join(dir, '.reload_llm.so.new');
    copyFileSync(src, tmp);
    renameSync(tmp, path.join(dir, 'reload_llm.so'));
}

// A daemon whose LLM is the `rl` instance of reload_llm from a folder of
// its own, STT and TTS the sim plugin.
async function start(rlKeys = {}) {
    const dir = tempDir('voxray-reload-');
    install(V1, dir);
    const d = await Daemon.start({
        server: { plugin_dir: `${dir}:${PLUGIN_DIR}` },
        'plugin.sim': { plugin: 'sim', ms_per_char: 5 },
        'plugin.rl': { plugin: 'reload_llm', ...rlKeys },
        stt: { providers: 'sim' },
        llm: { providers: 'rl', idle_timeout: '5s' },
        tts: { providers: 'sim' },
    });
    return { d, dir };
}

function count(text, needle) {
    return text.split('\n').filter((l) => l.includes(needle)).length;
}

async function waitLog(d, needle, n = 1, timeout = 10000) {
    const deadline = Date.now() + timeout;
    while (count(d.log(), needle) < n) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} log line(s) with "${needle}"`);
        await sleep(50);
    }
}

// Send SIGHUP and wait for the reload to be logged (the n-th time).
async function hup(d, n) {
    process.kill(d.pid, 'SIGHUP');
    await waitLog(d, 'SIGHUP: configuration reloaded', n);
}

async function ask(c, text) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
}

async function answer(c) {
    const evs = await c.collectUntil('response.done', { timeout: 20000 });
    const done = evs.at(-1).response;
    assert.equal(done.status, 'completed', JSON.stringify(done.status_details));
    return done.output[0].content[0].text;
}

async function turn(c, text = 'hello') {
    await ask(c, text);
    return answer(c);
}

const info = (m, filter) => series(m, 'voxray_plugin_info', filter);

vtest('a replaced plugin file: the live session finishes on the old one, the next session runs on the new', async () => {
    const { d, dir } = await start({ token_delay: '150ms' });
    let m = await d.metrics();
    assert.deepEqual(info(m, { plugin: 'rl' }).map((s) => s.labels.version), ['1']);

    // A session mid-reply when the file is replaced and SIGHUP arrives.
    const a = await d.connect();
    await ask(a, 'first');
    await a.next('response.output_text.delta');
    install(V2, dir);
    await hup(d, 1);
    assert.equal(count(d.log(), 'SIGHUP: new sessions use the reloaded providers'), 1);
    assert.equal(await answer(a), ONE, 'the live turn finishes on release 1');

    // Both releases are loaded now, side by side.
    m = await d.metrics();
    assert.deepEqual(info(m, { plugin: 'rl' }).map((s) => s.labels.version).sort(), ['1', '2']);

    const b = await d.connect();
    assert.equal(await turn(b), TWO, 'a new session runs on release 2');
    assert.equal(await turn(a, 'again'), ONE, 'the old session keeps release 1 to its end');
    assert.equal(count(d.log(), 'plugin file unloaded'), 0, 'release 1 stays loaded while a session uses it');

    // The old session ends: release 1 is shut down and unloaded.
    await a.close();
    await waitLog(d, 'plugin file unloaded');
    const lines = d.log().split('\n');
    const unloaded = lines.filter((l) => l.includes('plugin file unloaded'));
    assert.equal(unloaded.length, 1);
    assert.match(unloaded[0], /reload_llm/);
    assert.match(unloaded[0], /version[=":\s]+"?1/);
    assert.equal(count(d.log(), 'plugin instance shut down'), 1, 'only the replaced instance is shut down');
    m = await d.waitMetrics((mm) => info(mm, { plugin: 'rl' }).length === 1, { what: 'one rl info series' });
    assert.deepEqual(info(m, { plugin: 'rl' }).map((s) => s.labels.version), ['2']);
    // The unchanged sim instance was shared, never restarted; its series go on.
    assert.equal(info(m, { plugin: 'sim' }).length, 1);
    assert.equal(sumMetric(m, 'voxray_plugin_calls_total', { plugin: 'rl', kind: 'llm', status: 'ok' }), 3,
        'the call counter of rl counts both releases');

    assert.equal(await turn(b, 'once more'), TWO);
    await b.close();
    const c = await d.connect();
    assert.equal(await turn(c), TWO);
    await c.close();
    const h = await d.getJSON('/v1/health');
    assert.deepEqual(h.body.providers.llm.map((p) => p.name), ['rl']);
    const e = await d.stop();
    assert.equal(e.code, 0);
});

vtest('a replacement that cannot load or init: one error line, the old provider goes on serving', async () => {
    const { d, dir } = await start();
    const a = await d.connect();
    assert.equal(await turn(a), ONE);
    // The reload metrics, as Prometheus reports its own.
    const reloads = async () => {
        const mm = await d.metrics();
        return {
            ok: sumMetric(mm, 'voxray_config_reloads_total', { result: 'success' }),
            failed: sumMetric(mm, 'voxray_config_reloads_total', { result: 'failure' }),
            last: sumMetric(mm, 'voxray_config_last_reload_successful'),
            at: sumMetric(mm, 'voxray_config_last_reload_success_timestamp_seconds'),
        };
    };
    const r0 = await reloads();
    assert.deepEqual([r0.ok, r0.failed, r0.last], [0, 0, 1], 'the start counts as loaded in full');
    assert.ok(Math.abs(r0.at - Date.now() / 1000) < 120, `loaded at ${r0.at}`);

    // A file that is no plugin at all.
    install(NO_ENTRY, dir);
    await hup(d, 1);
    assert.equal(count(d.log(), 'plugins not reloaded'), 1);
    assert.match(d.log().split('\n').find((l) => l.includes('plugins not reloaded')), /reload_llm\.so.*vx_plugin_entry/);
    const b = await d.connect();
    assert.equal(await turn(b), ONE, 'a new session still gets release 1');

    // Release 2 in place, but its section makes init fail.
    install(V2, dir);
    const conf = readFileSync(d.confPath, 'utf8');
    writeFileSync(d.confPath, conf.replace('[plugin.rl]\nplugin = reload_llm', '[plugin.rl]\nplugin = reload_llm\nfail_init = true'));
    await hup(d, 2);
    assert.equal(count(d.log(), 'plugins not reloaded'), 2);
    assert.match(d.log().split('\n').filter((l) => l.includes('plugins not reloaded'))[1], /init failed: fail_init is set/);
    const c = await d.connect();
    assert.equal(await turn(c), ONE, 'still release 1');
    let m = await d.metrics();
    assert.deepEqual(info(m, { plugin: 'rl' }).map((s) => s.labels.version), ['1'], 'the failed instance left no series');
    assert.equal(count(d.log(), 'plugin instance shut down'), 0);
    const r2 = await reloads();
    assert.deepEqual([r2.ok, r2.failed, r2.last], [0, 2, 0], 'two reloads that did not apply in full');
    assert.equal(r2.at, r0.at);

    // Fixed: the next SIGHUP applies release 2.
    writeFileSync(d.confPath, conf);
    await sleep(1100); /* a later second for the timestamp */
    await hup(d, 3);
    const r3 = await reloads();
    assert.deepEqual([r3.ok, r3.failed, r3.last], [1, 2, 1]);
    assert.ok(r3.at > r0.at, `${r3.at} after ${r0.at}`);
    const e2 = await d.connect();
    assert.equal(await turn(e2), TWO);
    for (const x of [a, b, c, e2]) await x.close();
    m = await d.waitMetrics((mm) => info(mm, { plugin: 'rl' }).length === 1 && info(mm, { plugin: 'rl' })[0].labels.version === '2',
        { what: 'release 1 unloaded' });
    assert.equal((await d.stop()).code, 0);
});

vtest('a provider added to a stage list is used by new sessions; two SIGHUPs in a row make one new generation', async () => {
    const { d } = await start();
    const a = await d.connect();
    assert.equal(await turn(a), ONE);
    const callsBefore = sumMetric(await d.metrics(), 'voxray_plugin_calls_total', { plugin: 'sim', kind: 'tts' });
    const breakers = (m) => series(m, 'voxray_provider_breaker_open', { stage: 'llm' }).map((x) => x.labels.provider);
    assert.deepEqual(breakers(await d.metrics()), ['rl'], 'a breaker series per instance of the chain');

    const conf = readFileSync(d.confPath, 'utf8')
        .replace('[llm]\nproviders = rl', '[llm]\nproviders = fresh, rl')
        + '\n[plugin.fresh]\nplugin = sim\nreply = From the new instance.\n';
    writeFileSync(d.confPath, conf);
    // Signals of one kind coalesce while pending: one or two reloads run.
    process.kill(d.pid, 'SIGHUP');
    process.kill(d.pid, 'SIGHUP');
    await waitLog(d, 'SIGHUP: configuration reloaded', 1);
    await sleep(500);
    assert.equal(count(d.log(), 'SIGHUP: new sessions use the reloaded providers'), 1, 'the second SIGHUP found nothing to change');
    assert.equal(count(d.log(), 'plugins not reloaded'), 0);

    const b = await d.connect();
    assert.equal(await turn(b), 'From the new instance.');
    assert.equal(await turn(a, 'again'), ONE, 'the running session keeps its chain');
    const m = await d.metrics();
    assert.equal(info(m, { plugin: 'fresh' }).length, 1);
    assert.equal(info(m, { plugin: 'rl' }).length, 1, 'rl was kept, not loaded again');
    assert.deepEqual(breakers(m).sort(), ['fresh', 'rl'], 'the breaker series follow the reloaded chain');
    assert.ok(sumMetric(m, 'voxray_plugin_calls_total', { plugin: 'sim', kind: 'tts' }) >= callsBefore,
        'the shared sim instance keeps its series');
    const h = await d.getJSON('/v1/health');
    assert.deepEqual(h.body.providers.llm.map((p) => p.name), ['fresh', 'rl']);
    await a.close();
    await b.close();
    // The old generation goes with its last session; its instances live on
    // in the new one, so nothing is shut down or unloaded.
    await waitLog(d, 'releasing it');
    assert.equal(count(d.log(), 'plugin file unloaded'), 0);
    assert.equal(count(d.log(), 'plugin instance shut down'), 0);
    assert.equal((await d.stop()).code, 0);
});

vtest('a section a reload cannot apply asks for a restart, the providers still reload', async () => {
    const dir = tempDir('voxray-reload-');
    install(V1, dir);
    const d = await Daemon.start({
        server: { plugin_dir: `${dir}:${PLUGIN_DIR}` },
        session: { store: 'memory' },
        'plugin.memory': { plugin: 'store_memory', max_keys: 1000 },
        'plugin.sim': { plugin: 'sim', ms_per_char: 5 },
        'plugin.rl': { plugin: 'reload_llm' },
        stt: { providers: 'sim' },
        llm: { providers: 'rl' },
        tts: { providers: 'sim' },
    });
    install(V2, dir);
    writeFileSync(d.confPath, readFileSync(d.confPath, 'utf8').replace('[server]', '[server]\nhttp_threads = 3'));
    await hup(d, 1);
    const warn = d.log().split('\n').filter((l) => l.includes('restart voxray to apply it'));
    assert.equal(warn.length, 1);
    assert.match(warn[0], /WARN .*section=\[server\]/);
    assert.match(d.log(), /SIGHUP: configuration reloaded .*providers.*restart_needed=yes/);
    const c = await d.connect();
    assert.equal(await turn(c), TWO, 'the LLM was reloaded all the same');
    await c.close();
    const h = await d.getJSON('/ready');
    assert.equal(h.status, 200, 'the store stays in service');

    // A changed section alone: a new instance of the same file and version
    // replaces the old one, and the voxray_plugin_info series (the same
    // labels for both) outlives the old instance.
    writeFileSync(d.confPath, readFileSync(d.confPath, 'utf8').replace('plugin = reload_llm', 'plugin = reload_llm\ntoken_delay = 5ms'));
    await hup(d, 2);
    await waitLog(d, 'plugin instance shut down');
    assert.equal(count(d.log(), 'plugin file unloaded'), 1, 'only release 1 was unloaded; release 2 stays loaded');
    const m = await d.metrics();
    assert.deepEqual(info(m, { plugin: 'rl' }).map((s) => s.labels.version), ['2']);
    const c2 = await d.connect();
    assert.equal(await turn(c2), TWO);
    await c2.close();
    assert.equal((await d.stop()).code, 0);
});
