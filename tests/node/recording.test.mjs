// Call recordings: what a session's WAV and sidecar hold (both directions on
// one clock, barge-in and truncate cuts, turns and providers), the upload
// queue's retries and dead letters, and their metrics. The sink is the
// test plugin sink_faulty (tests/plugins/sink_faulty.c): successful uploads
// are copies under its dir, failures are chosen by the test.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
    Daemon, simConfig, vtest, stopAll, turnAudio, speech, silence, concat, sleep, tempDir, audioSamples,
    PLUGIN_DIR, TOP_BUILDDIR, IN_RATE,
} from './lib.mjs';

const TEST_PLUGIN_DIR = path.join(TOP_BUILDDIR, 'tests', 'plugins', '.libs');
after(stopAll);

// A daemon recording every session into a sink_faulty instance.
async function recorder(sinkKeys = {}, recKeys = {}, simKeys = {}) {
    const dir = tempDir('voxray-rec-');
    const dirs = { spool: path.join(dir, 'spool'), dead: path.join(dir, 'dead'), sink: path.join(dir, 'sink') };
    mkdirSync(dirs.sink, { recursive: true });
    const d = await Daemon.start(simConfig({ ms_per_char: 20, ...simKeys }, {
        server: { plugin_dir: `${PLUGIN_DIR}:${TEST_PLUGIN_DIR}` },
        recording: {
            enabled: 'true', sink: 'faulty', spool_dir: dirs.spool, dead_letter_dir: dirs.dead,
            retry_backoff: '50ms', ...recKeys,
        },
        'plugin.faulty': { plugin: 'sink_faulty', dir: dirs.sink, ...sinkKeys },
    }));
    d.dirs = dirs;
    return d;
}

function walk(dir) {
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}

// The uploaded files of a session: { wav, json } paths, waiting for them.
async function uploaded(d, id, timeout = 10000) {
    const end = Date.now() + timeout;
    for (;;) {
        const files = walk(d.dirs.sink);
        const wav = files.find((f) => f.endsWith(`/${id}.wav`));
        const json = files.find((f) => f.endsWith(`/${id}.json`));
        if (wav && json) return { wav, json, side: JSON.parse(readFileSync(json, 'utf8')) };
        if (Date.now() > end) throw new Error(`no recording of ${id} in the sink; files: ${files.join(', ')}`);
        await sleep(50);
    }
}

function readWav(file) {
    const b = readFileSync(file);
    assert.equal(b.toString('latin1', 0, 4), 'RIFF');
    assert.equal(b.toString('latin1', 8, 16), 'WAVEfmt ');
    const channels = b.readUInt16LE(22), rate = b.readUInt32LE(24), bits = b.readUInt16LE(34);
    assert.equal(b.toString('latin1', 36, 40), 'data');
    const bytes = b.readUInt32LE(40);
    assert.equal(bytes, b.length - 44, 'the data chunk covers the whole file');
    const frames = bytes / 4;
    const left = new Int16Array(frames), right = new Int16Array(frames);
    for (let i = 0; i < frames; i++) {
        left[i] = b.readInt16LE(44 + 4 * i);
        right[i] = b.readInt16LE(46 + 4 * i);
    }
    return { channels, rate, bits, left, right, frames };
}

// RMS of a channel between two times (ms).
function rms(ch, rate, fromMs, toMs) {
    const a = Math.max(0, Math.floor((fromMs * rate) / 1000)), z = Math.min(ch.length, Math.floor((toMs * rate) / 1000));
    let s = 0;
    for (let i = a; i < z; i++) s += ch[i] * ch[i];
    return z > a ? Math.sqrt(s / (z - a)) : 0;
}

// First and last ms of a channel above a threshold.
function span(ch, rate, thr = 500) {
    let first = -1, last = -1;
    for (let i = 0; i < ch.length; i++) {
        if (Math.abs(ch[i]) > thr) {
            if (first < 0) first = i;
            last = i;
        }
    }
    return first < 0 ? null : { from: (first * 1000) / rate, to: (last * 1000) / rate };
}

const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');
const turnsOf = (side, role) => side.turns.filter((t) => t.role === role);

// Stream audio in real time (100 ms chunks every 100 ms).
const realtime = (c, pcm) => c.sendAudio(pcm, { chunkMs: 100, paceMs: 100 });

vtest('a session is recorded as a stereo WAV, user left and bot right, on one clock', async () => {
    const d = await recorder();
    const c = await d.connect();
    const id = c.created.session.id;
    await realtime(c, turnAudio());
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    await c.close();
    const { wav, side } = await uploaded(d, id);
    assert.match(wav, /\/\d{4}\/\d{2}\/\d{2}\/sess_[A-Za-z0-9]+\.wav$/, 'YYYY/MM/DD/<session>.wav');
    const w = readWav(wav);
    assert.equal(w.channels, 2);
    assert.equal(w.rate, 16000);
    assert.equal(w.bits, 16);
    // The tone was sent from 400 ms to 1400 ms: it is on the left only.
    assert.ok(rms(w.left, w.rate, 500, 1300) > 3000, 'user speech on the left channel');
    assert.ok(rms(w.left, w.rate, 0, 300) < 50, 'silence before it');
    assert.ok(rms(w.right, w.rate, 400, 1400) < 50, 'no bot audio while the user speaks');
    // The bot channel holds the reply where the sidecar says it started,
    // and as much of it as the client received.
    const bot = span(w.right, w.rate);
    assert.ok(bot, 'bot audio on the right channel');
    const reply = turnsOf(side, 'assistant')[0];
    assert.ok(Math.abs(bot.from - reply.first_audio_ms) < 80, `bot audio at ${bot.from} ms, sidecar says ${reply.first_audio_ms}`);
    const gotMs = (audioSamples(evs, 'response.output_audio.delta') * 1000) / IN_RATE;
    assert.ok(Math.abs(bot.to - bot.from - gotMs) < 80, `bot audio ${bot.to - bot.from} ms, client got ${gotMs} ms`);
    // The user channel is placed by arrival time: a slow server may shift
    // the tone, and the sidecar's speech start moves with it.
    const user = turnsOf(side, 'user')[0];
    const said = span(w.left, w.rate);
    assert.ok(said && Math.abs(user.speech_started_ms - said.from) < 120,
        `speech_started_ms ${user.speech_started_ms}, tone on the left from ${said && said.from} ms`);
    assert.ok(user.speech_stopped_ms > user.speech_started_ms);
    assert.ok(bot.from > user.speech_stopped_ms, 'the reply follows the end of speech');
});

vtest('the sidecar names the session, instance, times, providers, transcripts and replies', async () => {
    const d = await recorder({}, { instance: 'pod-7' });
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    await c.collectUntil('response.done', { timeout: 15000 });
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'typed words' }] } });
    await c.next('conversation.item.done');
    await c.close();
    const { side, json, wav } = await uploaded(d, id);
    assert.equal(side.session_id, id);
    assert.equal(side.instance, 'pod-7');
    assert.equal(side.complete, true);
    assert.equal(side.end_reason, 'client_closed');
    assert.ok(side.ended_unix_ms >= side.started_unix_ms);
    assert.match(side.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const day = new Date(side.started_unix_ms).toISOString().slice(0, 10).replaceAll('-', '/');
    assert.ok(json.includes(`/${day}/`), `${json} is filed under ${day}`);
    assert.deepEqual(side.providers, { stt: ['sim'], llm: ['sim'], tts: ['sim'] });
    assert.equal(side.audio.sample_rate, 16000);
    assert.deepEqual(side.audio.channel_map, ['user', 'bot']);
    assert.equal(side.audio.bytes, statSync(wav).size);
    const [u, typed] = turnsOf(side, 'user');
    assert.equal(u.transcript, 'hello world');
    assert.equal(u.stt, 'sim');
    for (const k of ['speech_started_ms', 'speech_stopped_ms', 'committed_ms', 'transcribed_ms']) assert.equal(typeof u[k], 'number', k);
    const a = turnsOf(side, 'assistant')[0];
    assert.equal(a.text, 'You said: hello world.');
    assert.equal(a.status, 'completed');
    assert.equal(a.llm, 'sim');
    assert.equal(a.tts, 'sim');
    for (const k of ['created_ms', 'first_token_ms', 'first_audio_ms', 'done_ms']) assert.equal(typeof a[k], 'number', k);
    assert.ok(a.first_audio_ms >= a.created_ms && a.done_ms >= a.first_audio_ms);
    assert.equal(typed.text, 'typed words');
    assert.equal(typed.source, 'conversation.item.create');
});

vtest('bot audio cut by barge-in ends where playback ended', async () => {
    // A long reply (60 ms of audio per character, ~5 s); the user speaks
    // again 600 ms into it.
    const d = await recorder({}, {}, { ms_per_char: 60, transcripts: 'tell me a long story about a lighthouse keeper' });
    const c = await d.connect();
    const id = c.created.session.id;
    await realtime(c, turnAudio());
    await c.next('response.output_audio.delta', { timeout: 15000 });
    await sleep(600);
    await realtime(c, concat(speech(800), silence(800)));
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    const done = evs.find((e) => e.type === 'response.done' && e.response.status === 'cancelled') ??
        c.events.find((e) => e.type === 'response.done');
    assert.equal(done.response.status, 'cancelled');
    const first = c.events.filter((e) => e.type === 'response.output_audio.delta' && e.response_id === done.response.id);
    const sentMs = (audioSamples(first, 'response.output_audio.delta') * 1000) / IN_RATE;
    await c.collectUntil('response.done', { timeout: 15000 }); // the answer to the second turn
    await c.close();
    const { wav, side } = await uploaded(d, id);
    const w = readWav(wav);
    const cut = turnsOf(side, 'assistant')[0];
    assert.equal(cut.status, 'cancelled');
    assert.equal(cut.reason, 'turn_detected');
    const second = turnsOf(side, 'user')[1];
    // Bot audio of the first reply: from its start to the barge-in.
    const firstReply = w.right.subarray(0, Math.floor((second.speech_started_ms + 1000) * w.rate / 1000));
    const bot = span(firstReply, w.rate);
    assert.ok(bot.to < second.speech_started_ms + 300,
        `bot audio ends at ${bot.to} ms; the user barged in at ${second.speech_started_ms} ms`);
    assert.ok(bot.to - bot.from < sentMs - 100,
        `recorded ${bot.to - bot.from} ms of the reply, less than the ${sentMs} ms sent ahead to the client`);
});

vtest('conversation.item.truncate cuts the bot channel where the client stopped playing', async () => {
    const d = await recorder({}, {}, { ms_per_char: 40 });
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    const evs = await c.collectUntil('response.done', { timeout: 15000 });
    const item = evs.find((e) => e.type === 'response.output_item.added').item.id;
    c.send({ type: 'conversation.item.truncate', item_id: item, content_index: 0, audio_end_ms: 300 });
    await c.next('conversation.item.truncated');
    await c.close();
    const { wav, side } = await uploaded(d, id);
    const bot = span(readWav(wav).right, 16000);
    assert.ok(Math.abs(bot.to - bot.from - 300) < 60, `bot channel holds ${bot.to - bot.from} ms, the client played 300`);
    const a = turnsOf(side, 'assistant')[0];
    assert.equal(a.audio_end_ms, 300);
});

vtest('uploads are counted: queue metrics and sink calls through the call gate', async () => {
    const d = await recorder();
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    await c.collectUntil('response.done', { timeout: 15000 });
    await c.close();
    await uploaded(d, id);
    await d.waitMetrics((m) => m.get('recording_jobs_success_total') === 1, { what: 'one job uploaded' });
    const m = await d.metrics();
    assert.equal(m.get('recording_jobs_enqueued_total'), 1);
    assert.equal(m.get('recording_jobs_failed_total'), 0);
    assert.equal(m.get('recording_queue_depth'), 0);
    assert.equal(m.get('voxray_plugin_calls_total{kind="sink",plugin="faulty",provider="faulty",op="upload",status="ok"}'), 2, 'the WAV and its sidecar');
    assert.equal(m.get('voxray_plugin_call_duration_seconds_count{kind="sink",plugin="faulty",provider="faulty",op="upload"}'), 2);
    assert.equal(m.get('voxray_plugin_inflight{kind="sink",plugin="faulty",provider="faulty"}'), 0);
    const h = (await d.getJSON('/v1/health')).body;
    assert.equal(h.services.recording, 'available');
    assert.equal(h.providers.recording[0].queue_depth, 0);
});

vtest('a retryable upload failure is retried with backoff and the job succeeds', async () => {
    const d = await recorder({ fail_first: 2 }, { max_retries: 3 });
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    await c.collectUntil('response.done', { timeout: 15000 });
    await c.close();
    await uploaded(d, id);
    await d.waitMetrics((m) => m.get('recording_jobs_success_total') === 1, { what: 'the job succeeded' });
    const m = await d.metrics();
    assert.equal(m.get('voxray_recording_upload_retries_total'), 2);
    assert.equal(m.get('voxray_plugin_calls_total{kind="sink",plugin="faulty",provider="faulty",op="upload",status="unavailable"}'), 2);
    assert.equal(m.get('recording_jobs_failed_total'), 0);
    assert.deepEqual(readdirSync(d.dirs.dead), [], 'nothing dead-lettered');
});

vtest('refused credentials dead-letter the job at once (no retry); /ready stays 200', async () => {
    const d = await recorder({ fail_all: 'true', error: 'auth' }, { max_retries: 5 });
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    await c.collectUntil('response.done', { timeout: 15000 });
    await c.close();
    await d.waitMetrics((m) => m.get('recording_jobs_failed_total') === 1, { what: 'the job failed' });
    const m = await d.metrics();
    assert.equal(m.get('voxray_plugin_calls_total{kind="sink",plugin="faulty",provider="faulty",op="upload",status="auth"}'), 1, 'tried once');
    assert.equal(m.get('voxray_recording_dead_letter_total{reason="not_retryable"}'), 1);
    assert.equal(m.get('voxray_recording_dead_letter_jobs'), 1);
    assert.equal(m.get('recording_jobs_success_total'), 0);
    const dead = readdirSync(d.dirs.dead).sort();
    assert.deepEqual(dead, [`${id}.error`, `${id}.json`, `${id}.wav`]);
    assert.match(readFileSync(path.join(d.dirs.dead, `${id}.error`), 'utf8'), /reason: not_retryable[\s\S]*403 InvalidAccessKeyId/);
    assert.match(d.log(), /recording dead-lettered session_id=sess_\S+ reason=not_retryable/);
    assert.equal((await d.get('/ready')).status, 200, 'a failing sink does not stop calls');
    assert.equal((await d.getJSON('/v1/health')).body.providers.recording[0].dead_letter_jobs, 1);
});

vtest('a dead letter is re-submitted every replay_interval and leaves the folder only once uploaded', async () => {
    const d = await recorder({}, { max_retries: 1, replay_interval: '1s' });
    writeFileSync(path.join(d.dirs.sink, '.fail-all'), '');
    const c = await d.connect();
    const id = c.created.session.id;
    await c.sendAudio(turnAudio());
    await c.collectUntil('response.done', { timeout: 15000 });
    await c.close();
    await d.waitMetrics((m) => m.get('voxray_recording_dead_letter_total{reason="retries_exhausted"}') === 1,
        { what: 'dead-lettered after its retries' });
    const before = { wav: sha(path.join(d.dirs.dead, `${id}.wav`)), json: sha(path.join(d.dirs.dead, `${id}.json`)) };
    await sleep(1500); // a replay round while the sink still fails: it stays
    assert.ok(existsSync(path.join(d.dirs.dead, `${id}.wav`)), 'still dead-lettered while the sink fails');
    rmSync(path.join(d.dirs.sink, '.fail-all'));
    const { wav, json } = await uploaded(d, id, 10000);
    assert.equal(sha(wav), before.wav, 'the WAV arrives byte-identical');
    assert.equal(sha(json), before.json, 'the sidecar arrives byte-identical');
    await d.waitMetrics((m) => m.get('voxray_recording_dead_letter_jobs') === 0, { what: 'the folder is empty' });
    assert.deepEqual(readdirSync(d.dirs.dead), []);
    const m = await d.metrics();
    assert.equal(m.get('recording_jobs_success_total'), 1);
    assert.ok(m.get('recording_jobs_enqueued_total') >= 2, 'the replay was enqueued again');
});

vtest('a session ending with the upload queue full is dead-lettered, then replayed', async () => {
    // One slow worker, a queue of one: three sessions ending at once.
    const d = await recorder({ delay: '1500ms' }, { queue_size: 1, workers: 1, replay_interval: '1s' });
    const ids = [];
    const clients = [];
    for (let i = 0; i < 3; i++) {
        const c = await d.connect();
        ids.push(c.created.session.id);
        clients.push(c);
    }
    await Promise.all(clients.map((c) => c.close()));
    await d.waitMetrics((m) => (m.get('voxray_recording_dead_letter_total{reason="queue_full"}') ?? 0) >= 1,
        { what: 'a job found the queue full' });
    for (const id of ids) await uploaded(d, id, 20000);
    await d.waitMetrics((m) => m.get('recording_jobs_success_total') === 3, { timeout: 20000, what: 'all three uploaded' });
    assert.deepEqual(readdirSync(d.dirs.dead), []);
});

vtest('sample_rate = 2 records one session in two', async () => {
    const d = await recorder({}, { sample_rate: 2 });
    const ids = [];
    for (let i = 0; i < 4; i++) {
        const c = await d.connect();
        ids.push(c.created.session.id);
        await c.close();
    }
    await d.waitMetrics((m) => m.get('recording_jobs_success_total') === 2, { what: 'two recordings uploaded' });
    await sleep(300);
    const wavs = walk(d.dirs.sink).filter((f) => f.endsWith('.wav'));
    assert.equal(wavs.length, 2);
    assert.equal((await d.metrics()).get('recording_jobs_enqueued_total'), 2, 'the others were never recorded');
});
