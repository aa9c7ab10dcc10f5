// The call gate seen from a client: retries, fallback, timeouts, the
// breaker, failures after output, barge-in, and the metrics a conversation
// leaves behind. Providers are sim instances with injected faults.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
    Daemon, vtest, stopAll, parseSeries, turnAudio, joinDeltas, audioSamples, series, sumMetric, words, sleep,
} from './lib.mjs';

after(stopAll);

const SIM = { plugin: 'sim', ms_per_char: 10 };

// A config: `inst` maps instance names to their sim keys; `chains` gives
// the provider list of each stage (default: the plain `sim` instance).
// These tests count provider calls per turn exactly. A speculative reply
// started at a pause makes calls of its own, and when it fails it is dropped
// and the confirmed turn calls again; whether one starts depends on how the
// audio, sent here in one burst, is cut into reads. So they turn it off.
function config(inst, chains = {}, more = {}) {
    const out = { 'plugin.sim': SIM, turn: { speculative: 'false' } };
    for (const [name, keys] of Object.entries(inst)) out[`plugin.${name}`] = { plugin: 'sim', ms_per_char: 10, ...keys };
    for (const st of ['stt', 'llm', 'tts']) {
        const c = chains[st] ?? 'sim';
        out[st] = typeof c === 'string' ? { providers: c } : c;
    }
    for (const [k, v] of Object.entries(more)) out[k] = { ...(out[k] || {}), ...v };
    return out;
}

async function spokenTurn(c) {
    await c.sendAudio(turnAudio());
    return c.collectUntil('response.done');
}

async function textTurn(c, text, modalities = ['text']) {
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    await c.next('conversation.item.done');
    c.send({ type: 'response.create', response: { output_modalities: modalities } });
    return c.collectUntil('response.done');
}

const said = (evs) => evs.at(-1).response.output[0].content[0].transcript ?? evs.at(-1).response.output[0].content[0].text;
const calls = (m, kind, plugin, status) =>
    sumMetric(m, 'voxray_plugin_calls_total', status ? { kind, plugin, status } : { kind, plugin });

// ------------------------------------------------------------ fallback

vtest('LLM fallback: the primary fails, the secondary answers the turn, and both are counted', async () => {
    const d = await Daemon.start(config(
        { llm_bad: { failure_rate: 1, error: 'unavailable', reply: 'From the bad one.' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_bad, llm_good', retries: 0 } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    assert.equal(evs.at(-1).response.status, 'completed');
    assert.equal(said(evs), 'From the good one.');
    assert.equal(joinDeltas(evs, 'response.output_audio_transcript.delta'), 'From the good one.');
    assert.equal(evs.filter((e) => e.type === 'error').length, 0, 'the client sees no error');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_bad', to: 'llm_good' }), 1);
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_bad', error_type: 'unavailable' }), 1);
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_good' }), 0);
    assert.equal(calls(m, 'llm', 'llm_good', 'ok'), 1);
});

vtest('STT fallback: the primary fails, the secondary transcribes the whole utterance', async () => {
    const d = await Daemon.start(config(
        { stt_bad: { failure_rate: 1, transcript: 'bad words' }, stt_good: { transcript: 'good words here' } },
        { stt: 'stt_bad, stt_good' }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    const tr = evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    assert.equal(tr.transcript, 'good words here');
    assert.equal(evs.filter((e) => e.type === 'conversation.item.input_audio_transcription.failed').length, 0);
    assert.equal(said(evs), 'You said: good words here.');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'stt_fallback_total', { from: 'stt_bad', to: 'stt_good' }), 1);
    assert.equal(sumMetric(m, 'stt_errors_total', { model: 'stt_bad', error_type: 'unavailable' }), 1);
    assert.equal(calls(m, 'stt', 'stt_good', 'ok'), 1);
});

vtest('TTS fallback: the primary fails, the secondary speaks the reply', async () => {
    const d = await Daemon.start(config(
        { tts_bad: { failure_rate: 1 }, tts_good: {} },
        { tts: 'tts_bad, tts_good' }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    assert.equal(evs.at(-1).response.status, 'completed');
    assert.equal(said(evs), 'You said: hello world.');
    assert.ok(audioSamples(evs, 'response.output_audio.delta') > 0, 'reply audio');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'tts_fallback_total', { from: 'tts_bad', to: 'tts_good' }), 1, 'one sentence, one fallback');
    assert.equal(sumMetric(m, 'tts_errors_total', { model: 'tts_bad', error_type: 'unavailable' }), 1);
    assert.equal(calls(m, 'tts', 'tts_good', 'ok'), 1);
});

// ------------------------------------------------------------ retries

vtest('a retryable failure is retried on the same provider ([llm] retries) without a fallback', async () => {
    const d = await Daemon.start(config(
        { llm_flaky: { fail_first: 1, error: 'unavailable', reply: 'Flaky but fine.' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_flaky, llm_good', retries: 2, retry_backoff: '20ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    assert.equal(evs.at(-1).response.status, 'completed');
    assert.equal(said(evs), 'Flaky but fine.');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_retries_total', { model: 'llm_flaky' }), 1);
    assert.equal(sumMetric(m, 'llm_fallback_total'), 0, 'no fallback');
    assert.equal(calls(m, 'llm', 'llm_flaky', 'ok'), 1);
    assert.equal(calls(m, 'llm', 'llm_flaky', 'unavailable'), 1);
    assert.equal(calls(m, 'llm', 'llm_good'), 0);
});

vtest('a non-retryable failure (auth) is not retried but falls back', async () => {
    const d = await Daemon.start(config(
        { llm_auth: { failure_rate: 1, error: 'auth' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_auth, llm_good', retries: 2, retry_backoff: '20ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    assert.equal(said(evs), 'From the good one.');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_retries_total'), 0, 'no retry');
    assert.equal(calls(m, 'llm', 'llm_auth'), 1, 'called once');
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_auth', error_type: 'auth' }), 1);
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_auth', to: 'llm_good' }), 1);
});

vtest('a provider that refuses the input (VX_EINVAL) is counted under error_type="invalid", not retried, and falls back', async () => {
    const d = await Daemon.start(config(
        { llm_refuses: { failure_rate: 1, error: 'invalid' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_refuses, llm_good', retries: 2, retry_backoff: '20ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    assert.equal(said(evs), 'From the good one.');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_refuses', error_type: 'invalid' }), 1);
    assert.equal(calls(m, 'llm', 'llm_refuses', 'invalid'), 1);
    assert.equal(calls(m, 'llm', 'llm_refuses'), 1, 'called once');
    assert.equal(sumMetric(m, 'llm_retries_total'), 0, 'no retry');
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_refuses', to: 'llm_good' }), 1);
});

vtest('one selector {provider="NAME"} finds every series of a provider: seed histograms and errors (beside model), call-gate families (beside plugin)', async () => {
    const d = await Daemon.start(config(
        { llm_refuses: { failure_rate: 1, error: 'invalid' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_refuses, llm_good', retries: 0 } }));
    const c = await d.connect();
    await textTurn(c, 'hi');
    await c.close();
    const m = await d.metrics();
    const names = new Set();
    for (const key of m.keys()) {
        const { name, labels } = parseSeries(key);
        for (const l of ['model', 'plugin']) {
            if (labels[l] === undefined || name.endsWith('_fallback_total')) continue;
            assert.equal(labels.provider, labels[l], `${key}: provider beside ${l}`);
        }
        if (labels.provider === 'llm_good') names.add(name.replace(/_(bucket|count|sum)$/, ''));
    }
    for (const want of ['llm_time_to_first_token_seconds', 'llm_generation_latency_seconds',
        'voxray_llm_tokens_total', 'voxray_plugin_calls_total', 'voxray_plugin_call_duration_seconds',
        'voxray_plugin_inflight', 'voxray_plugin_info'])
        assert.ok(names.has(want), `{provider="llm_good"} finds ${want}: ${[...names].join(', ')}`);
    assert.equal(sumMetric(m, 'llm_errors_total', { provider: 'llm_refuses', error_type: 'invalid' }), 1);
    assert.equal(sumMetric(m, 'voxray_plugin_calls_total', { provider: 'llm_refuses', status: 'invalid' }), 1);
});

// ------------------------------------------------------------ timeouts

vtest('a provider that answers nothing (hang = silent) times out ([llm] timeout) and the next one answers', async () => {
    const d = await Daemon.start(config(
        { llm_silent: { hang: 'silent' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_silent, llm_good', retries: 0, timeout: '300ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    assert.equal(evs.at(-1).response.status, 'completed');
    assert.equal(said(evs), 'From the good one.');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_silent', error_type: 'timeout' }), 1);
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_silent', to: 'llm_good' }), 1);
    assert.equal(sumMetric(m, 'voxray_plugin_inflight', { kind: 'llm' }), 0, 'nothing left in flight');
});

// hang = block: generate() itself blocks until the stream is cancelled
// (the sim publishes the stream in *out first so that it can be).
const BLOCK = () => config(
    { llm_block: { hang: 'block' }, llm_good: { reply: 'From the good one.' } },
    { llm: { providers: 'llm_block, llm_good', retries: 0, timeout: '300ms', breaker_failures: 0 } });

vtest('a provider whose call blocks (hang = block) times out, the next one answers, and the session keeps working', async () => {
    const d = await Daemon.start(BLOCK());
    const c = await d.connect();
    const first = await textTurn(c, 'hi');
    assert.equal(first.at(-1).response.status, 'completed');
    assert.equal(said(first), 'From the good one.');
    const second = await textTurn(c, 'again');
    assert.equal(said(second), 'From the good one.');
    await c.update({ instructions: 'still working' });
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_block', error_type: 'timeout' }), 2);
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_block', to: 'llm_good' }), 2);
});

vtest('a blocked call that timed out is cancelled: the daemon then stops cleanly on SIGTERM', async () => {
    const d = await Daemon.start(BLOCK());
    const c = await d.connect();
    assert.equal(said(await textTurn(c, 'hi')), 'From the good one.');
    await c.close();
    await sleep(200);
    const exit = await d.stop({ killAfter: 10000 });
    const log = d.log();
    assert.ok(!/plugin call is still running at shutdown/.test(log), 'no plugin call left blocked at shutdown');
    assert.ok(/voxray stopped/.test(log), 'a clean stop is logged');
    assert.deepEqual(exit, { code: 0, signal: null });
});

// ------------------------------------------------------------ failures

vtest('a failure after output reached the client (fail_at = mid_stream) ends the response incomplete with what was sent, and no other provider repeats it', async () => {
    const reply = 'One two three four five six seven eight.';
    const d = await Daemon.start(config(
        { llm_mid: { failure_rate: 1, fail_at: 'mid_stream', reply }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_mid, llm_good', retries: 2, retry_backoff: '20ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    const r = evs.at(-1).response;
    assert.equal(r.status, 'incomplete');
    assert.equal(r.status_details.type, 'incomplete');
    assert.equal(r.status_details.reason, 'llm_error');
    assert.equal(r.status_details.error.code, 'llm_failed');
    assert.equal(r.status_details.error.type, 'server_error');
    const text = joinDeltas(evs, 'response.output_text.delta');
    assert.ok(text.length > 0 && reply.startsWith(text) && text !== reply, `a part of the reply was sent: "${text}"`);
    assert.equal(said(evs), text.trim(), 'the item keeps what was sent');
    assert.equal(r.output[0].status, 'incomplete');
    assert.doesNotMatch(JSON.stringify(evs), /good one/, 'nothing from the other provider');
    // the session goes on, and the conversation has what was said
    c.send({ type: 'conversation.item.retrieve', item_id: r.output[0].id });
    const got = await c.next('conversation.item.retrieved');
    assert.equal(got.item.content[0].text, text.trim());
    await c.update({ instructions: 'go on' });
    await c.close();
    const m = await d.metrics();
    assert.equal(calls(m, 'llm', 'llm_good'), 0, 'the second provider was never called');
    assert.equal(sumMetric(m, 'llm_fallback_total'), 0);
    assert.equal(sumMetric(m, 'llm_retries_total'), 0, 'no retry after output');
    assert.equal(sumMetric(m, 'http_timeout_total'), 0, 'an error is not a timeout');
});

// ------------------------------------------------------------ stalls after the start

const STORY = 'One two three four five six seven eight nine ten eleven twelve.';

vtest('an LLM that stalls after its first tokens is cut by [llm] idle_timeout: incomplete, what was sent is kept, the timeout is counted', async () => {
    const d = await Daemon.start(config(
        { llm_stall: { failure_rate: 1, fail_at: 'mid_stream', hang: 'stall', reply: STORY }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_stall, llm_good', timeout: '5s', idle_timeout: '300ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    const r = evs.at(-1).response;
    assert.equal(r.status, 'incomplete');
    assert.equal(r.status_details.reason, 'llm_timeout');
    assert.equal(r.status_details.error.code, 'llm_failed');
    assert.match(r.status_details.error.message, /stalled/);
    const text = joinDeltas(evs, 'response.output_text.delta');
    assert.ok(text.length > 0 && STORY.startsWith(text) && text !== STORY, `a part was sent: "${text}"`);
    assert.equal(said(evs), text.trim());
    assert.doesNotMatch(JSON.stringify(evs), /good one/, 'sent text is never repeated by another provider');
    assert.ok(r.usage.output_tokens > 0, 'usage counts what was made');
    // the next turn works (the stalled provider is asked again, and stalls again)
    const again = await textTurn(c, 'and now?');
    assert.equal(again.at(-1).response.status, 'incomplete');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_stall', error_type: 'timeout' }), 2);
    assert.equal(sumMetric(m, 'http_timeout_total', { method: 'GET', route: '/v1/realtime' }), 2);
    assert.equal(sumMetric(m, 'voxray_plugin_inflight', { kind: 'llm' }), 0, 'the stalled calls were ended');
});

vtest('an LLM that stalls before any of its output reached the client falls back: the next provider answers from the start', async () => {
    // half of STORY has no sentence end: nothing was spoken when it stalls
    const d = await Daemon.start(config(
        { llm_stall: { failure_rate: 1, fail_at: 'mid_stream', hang: 'stall', reply: STORY }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_stall, llm_good', timeout: '5s', idle_timeout: '300ms' } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    const r = evs.at(-1).response;
    assert.equal(r.status, 'completed');
    assert.equal(said(evs), 'From the good one.');
    assert.equal(joinDeltas(evs, 'response.output_audio_transcript.delta'), 'From the good one.');
    assert.doesNotMatch(JSON.stringify(evs), /One two/, 'nothing of the stalled answer reached the client');
    assert.equal(evs.filter((e) => e.type === 'error').length, 0);
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_stall', error_type: 'timeout' }), 1);
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_stall', to: 'llm_good' }), 1);
    assert.equal(sumMetric(m, 'llm_retries_total'), 0, 'a timeout goes to the next provider at once');
    assert.equal(sumMetric(m, 'http_timeout_total'), 0, 'the response completed');
});

vtest('an LLM error after tokens but before any audio reached the client falls back too', async () => {
    const d = await Daemon.start(config(
        { llm_mid: { failure_rate: 1, fail_at: 'mid_stream', reply: STORY }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_mid, llm_good', retries: 0 } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    assert.equal(evs.at(-1).response.status, 'completed');
    assert.equal(said(evs), 'From the good one.');
    assert.doesNotMatch(JSON.stringify(evs), /One two/);
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_mid', to: 'llm_good' }), 1);
});

vtest('an LLM that stalls after a sentence was spoken: the queued audio plays out, then the response ends incomplete with what was heard', async () => {
    const reply = 'The first sentence is here. The second sentence follows now. A third one is never said, nor this.';
    const d = await Daemon.start(config(
        { llm_stall: { failure_rate: 1, fail_at: 'mid_stream', hang: 'stall', reply }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_stall, llm_good', timeout: '5s', idle_timeout: '300ms' } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    const r = evs.at(-1).response;
    assert.equal(r.status, 'incomplete');
    assert.equal(r.status_details.reason, 'llm_timeout');
    const heard = joinDeltas(evs, 'response.output_audio_transcript.delta').trim();
    assert.ok(heard.length > 0 && reply.startsWith(heard), `whole sentences were heard: "${heard}"`);
    assert.match(heard, /\.$/, 'an unfinished sentence is not spoken');
    assert.equal(said(evs), heard, 'the item keeps what was heard');
    assert.ok(audioSamples(evs, 'response.output_audio.delta') > 0);
    assert.doesNotMatch(JSON.stringify(evs), /good one/);
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_fallback_total'), 0);
    assert.equal(sumMetric(m, 'http_timeout_total', { route: '/v1/realtime' }), 1);
});

vtest('a TTS that stalls mid-sentence is cut by [tts] idle_timeout: the response ends incomplete, counted as a tts timeout', async () => {
    const d = await Daemon.start(config(
        { tts_stall: { failure_rate: 1, fail_at: 'mid_stream', hang: 'stall', ms_per_char: 40 }, tts_good: {} },
        { tts: { providers: 'tts_stall, tts_good', timeout: '5s', idle_timeout: '300ms' } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    const r = evs.at(-1).response;
    assert.equal(r.status, 'incomplete');
    assert.equal(r.status_details.reason, 'tts_timeout');
    assert.equal(r.status_details.error.code, 'tts_failed');
    assert.ok(audioSamples(evs, 'response.output_audio.delta') > 0, 'part of the sentence was heard');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'tts_errors_total', { model: 'tts_stall', error_type: 'timeout' }), 1);
    assert.equal(sumMetric(m, 'tts_fallback_total'), 0, 'audio the client heard is not spoken again');
    assert.equal(sumMetric(m, 'http_timeout_total', { route: '/v1/realtime' }), 1);
    assert.equal(sumMetric(m, 'voxray_plugin_inflight', { kind: 'tts' }), 0);
});

vtest('a TTS failing on a sentence whose audio was still queued falls back: that sentence is spoken whole, once', async () => {
    const reply = 'This first sentence is long enough to keep the queue busy for a while. Then a second one.';
    const run = async (ttsA) => {
        const d = await Daemon.start(config(
            { llm_two: { reply }, tts_a: { ms_per_char: 30, ...ttsA }, tts_b: { ms_per_char: 30 } },
            { llm: 'llm_two', tts: { providers: 'tts_a, tts_b' } }));
        const c = await d.connect();
        const evs = await spokenTurn(c);
        await c.close();
        return { evs, m: await d.metrics() };
    };
    const clean = await run({});
    // the second call of tts_a (the second sentence) fails half-way
    const failed = await run({ fail_calls: '2', fail_at: 'mid_stream' });
    assert.equal(failed.evs.at(-1).response.status, 'completed');
    assert.equal(said(failed.evs), reply);
    assert.equal(sumMetric(failed.m, 'tts_fallback_total', { from: 'tts_a', to: 'tts_b' }), 1);
    const n0 = audioSamples(clean.evs, 'response.output_audio.delta');
    const n1 = audioSamples(failed.evs, 'response.output_audio.delta');
    assert.ok(Math.abs(n1 - n0) < 0.02 * n0, `the same audio as without the failure (${n1} vs ${n0} samples): nothing twice`);
});

vtest('a hung primary costs one first-output timeout, not one per retry: [llm] retries do not repeat a timeout when a fallback exists', async () => {
    const d = await Daemon.start(config(
        { llm_silent: { hang: 'silent' }, llm_good: { reply: 'From the good one.' } },
        { llm: { providers: 'llm_silent, llm_good', retries: 2, timeout: '300ms', retry_backoff: '20ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    assert.equal(said(evs), 'From the good one.');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_retries_total'), 0);
    assert.equal(calls(m, 'llm', 'llm_silent'), 1);
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_silent', error_type: 'timeout' }), 1);
});

vtest('a single provider that times out is still retried ([llm] retries) before the turn fails', async () => {
    const d = await Daemon.start(config(
        { llm_silent: { hang: 'silent' } },
        { llm: { providers: 'llm_silent', retries: 1, timeout: '200ms', retry_backoff: '20ms' } }));
    const c = await d.connect();
    const evs = await textTurn(c, 'hi');
    const r = evs.at(-1).response;
    assert.equal(r.status, 'failed');
    assert.equal(r.status_details.error.code, 'llm_failed');
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_retries_total'), 1);
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_silent', error_type: 'timeout' }), 2);
    assert.equal(sumMetric(m, 'http_timeout_total', { route: '/v1/realtime' }), 1);
});

vtest('an STT provider failing after partials falls back: the next one transcribes the whole utterance', async () => {
    const d = await Daemon.start(config(
        { stt_mid: { failure_rate: 1, fail_at: 'mid_stream', transcript: 'from the bad one', partial_every: '100ms' },
          stt_good: { transcript: 'from the good one' } },
        { stt: { providers: 'stt_mid, stt_good' } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    const done = evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
    assert.equal(done.transcript, 'from the good one');
    assert.equal(evs.filter((e) => e.type === 'conversation.item.input_audio_transcription.failed').length, 0);
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'stt_fallback_total', { from: 'stt_mid', to: 'stt_good' }), 1);
});

vtest('when every provider fails the response fails, and the session is still usable', async () => {
    const d = await Daemon.start(config(
        { llm_a: { failure_rate: 1 }, llm_b: { failure_rate: 1, error: 'internal' } },
        { llm: { providers: 'llm_a, llm_b', retries: 0 } }));
    const c = await d.connect();
    const evs = await spokenTurn(c);
    const r = evs.at(-1).response;
    assert.equal(r.status, 'failed');
    assert.equal(r.status_details.type, 'failed');
    assert.ok(r.status_details.error.message.length > 0);
    // the user turn is kept; the session still hears, and answers updates
    assert.equal(evs.find((e) => e.type === 'conversation.item.input_audio_transcription.completed').transcript, 'hello world');
    await c.update({ instructions: 'still here' });
    await c.sendAudio(turnAudio());
    const again = await c.collectUntil('response.done');
    assert.equal(again.find((e) => e.type === 'conversation.item.input_audio_transcription.completed').transcript, 'hello world');
    assert.equal(again.at(-1).response.status, 'failed');
    assert.equal(c.closed, null);
    await c.close();
    const m = await d.metrics();
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_a', to: 'llm_b' }), 2);
    assert.equal(sumMetric(m, 'llm_errors_total', { model: 'llm_b', error_type: 'internal' }), 2);
});

// ------------------------------------------------------------ breaker

vtest('the breaker: after breaker_failures failed turns the provider cools down, shows so in /v1/health, and is skipped', async () => {
    const d = await Daemon.start(config(
        { llm_a: { failure_rate: 1 }, llm_b: { reply: 'From B.' } },
        { llm: { providers: 'llm_a, llm_b', retries: 0, breaker_failures: 2, breaker_cooldown: '60s' } }));
    const h0 = (await d.getJSON('/v1/health')).body;
    assert.equal(h0.providers.llm.find((p) => p.name === 'llm_a').status, 'available');
    const m0 = await d.metrics();
    assert.equal(series(m0, 'voxray_provider_breaker_open', { stage: 'llm', provider: 'llm_a' }).length, 1,
        'one breaker series per stage and provider from the start');
    assert.equal(sumMetric(m0, 'voxray_provider_breaker_open', { stage: 'llm', provider: 'llm_a' }), 0, 'closed');
    const c = await d.connect();
    for (let i = 0; i < 2; i++) assert.equal(said(await textTurn(c, `turn ${i}`)), 'From B.');
    let m = await d.metrics();
    const aCalls = calls(m, 'llm', 'llm_a');
    assert.equal(aCalls, 2);

    const h = (await d.getJSON('/v1/health')).body;
    const a = h.providers.llm.find((p) => p.name === 'llm_a');
    const b = h.providers.llm.find((p) => p.name === 'llm_b');
    assert.equal(a.status, 'unavailable', JSON.stringify(a));
    assert.match(a.detail, /cooling down/);
    assert.equal(b.status, 'available');
    assert.equal(h.services.llm, 'available', 'the stage still has a provider');
    m = await d.metrics();
    assert.equal(sumMetric(m, 'voxray_provider_breaker_open', { stage: 'llm', provider: 'llm_a' }), 1, 'A open');
    assert.equal(sumMetric(m, 'voxray_provider_breaker_open', { stage: 'llm', provider: 'llm_b' }), 0, 'B closed');

    assert.equal(said(await textTurn(c, 'turn 2')), 'From B.');
    m = await d.metrics();
    assert.equal(calls(m, 'llm', 'llm_a'), aCalls, 'A was not called for the third turn');
    assert.equal(calls(m, 'llm', 'llm_b', 'ok'), 3);
    assert.equal(sumMetric(m, 'llm_fallback_total', { from: 'llm_a', to: 'llm_b' }), 2, 'no fallback counted for a skip');
    await c.close();
});

vtest('the breaker gauge closes when the cooldown ends, with no call needed to notice', async () => {
    const d = await Daemon.start(config(
        { llm_a: { failure_rate: 1 }, llm_b: { reply: 'From B.' } },
        { llm: { providers: 'llm_a, llm_b', retries: 0, breaker_failures: 1, breaker_cooldown: '1s' } }));
    const c = await d.connect();
    assert.equal(said(await textTurn(c, 'turn 0')), 'From B.');
    const open = { stage: 'llm', provider: 'llm_a' };
    assert.equal(sumMetric(await d.metrics(), 'voxray_provider_breaker_open', open), 1, 'open after one failure');
    await d.waitMetrics((m) => sumMetric(m, 'voxray_provider_breaker_open', open) === 0,
        { timeout: 10000, what: 'the breaker closing after its cooldown' });
    const h = (await d.getJSON('/v1/health')).body;
    assert.equal(h.providers.llm.find((p) => p.name === 'llm_a').status, 'available', '/v1/health agrees');
    await c.close();
});

// ------------------------------------------------------------ barge-in

const LONG_REPLY = [
    'The first thing to know is that the weather changes quickly here.',
    'In the morning it is often cold and foggy near the coast.',
    'By noon the sun usually burns through the clouds.',
    'The afternoons can be warm enough for a short walk on the beach.',
    'In the evening the wind picks up again from the west.',
    'Most people bring a light jacket wherever they go.',
    'Rain is rare in summer but common in the winter months.',
    'That is really all there is to say about it.',
].join(' ');

vtest('barge-in: user speech during a reply cancels it (turn_detected), and the item keeps only what was sent', async () => {
    const d = await Daemon.start(config({}, {}, {
        'plugin.sim': { reply: LONG_REPLY, ms_per_char: 60, token_delay: '2ms' },
        metrics: { session_sample_rate: 1 },
    }));
    const c = await d.connect();
    await c.sendAudio(turnAudio());
    const created = await c.next('response.created');
    const respId = created.response.id;
    await c.next('response.output_audio.delta');
    await sleep(1500); // well into the first sentence's audio, the whole text generated

    await c.sendAudio(turnAudio(24000, { lead: 200 }));
    const started = await c.next('input_audio_buffer.speech_started');
    const done = await c.next('response.done', { where: (e) => e.response.id === respId });
    assert.ok(c.events.indexOf(started) < c.events.indexOf(done), 'speech_started before response.done');
    assert.equal(done.response.status, 'cancelled');
    assert.deepEqual(done.response.status_details, { type: 'cancelled', reason: 'turn_detected' });
    const kept = done.response.output[0].content[0].transcript;
    assert.equal(done.response.output[0].status, 'incomplete');
    const full = words(LONG_REPLY), got = words(kept);
    assert.ok(got.length > 0, 'something was said');
    assert.ok(got.length < full.length, `a strict prefix: ${got.length} of ${full.length} words`);
    assert.deepEqual(got, full.slice(0, got.length), `"${kept}" is a prefix of the reply`);

    // the user's turn gets its own response
    const next = await c.next('response.created', { where: (e) => e.response.id !== respId });
    assert.notEqual(next.response.id, respId);
    // no audio for the cancelled response after its response.done
    const doneAt = c.events.indexOf(done);
    const late = c.events.slice(doneAt + 1).filter((e) => e.response_id === respId);
    assert.deepEqual(late.map((e) => e.type), [], 'nothing more for the cancelled response');
    // the truncated reply is what the next prompt holds: the sim counts
    // the prompt's words (instructions + user + what was said + user)
    await c.next('response.output_audio.delta', { where: (e) => e.response_id === next.response.id });
    await sleep(1000); // the whole text is generated by then (usage known)
    c.send({ type: 'response.cancel' });
    const done2 = await c.next('response.done', { where: (e) => e.response.id === next.response.id });
    assert.equal(done2.response.status, 'cancelled');
    const instr = words(c.created.session.instructions).length;
    assert.equal(done2.response.usage.input_tokens, instr + 2 + got.length + 2);

    const m = await d.metrics();
    assert.equal(sumMetric(m, 'voxray_interruptions_total'), 1);
    await c.close();
});

// ------------------------------------------------------------ metrics

const TWO_SENTENCES = 'The weather is fine today. It should stay sunny until the evening.';

function hexId(id) {
    return createHash('sha256').update(id).digest('hex');
}

function promtool(text) {
    return new Promise((resolve) => {
        const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
            resolve({ code: err ? err.code : 0, out: stdout + stderr });
        });
        p.stdin.end(text);
    });
}

vtest('metrics after a conversation match what happened', async () => {
    const d = await Daemon.start(config({}, {}, {
        'plugin.sim': { reply: TWO_SENTENCES },
        metrics: { session_sample_rate: 1 },
    }));
    const c = await d.connect();
    const sid = c.created.session.id;
    const evs = await spokenTurn(c);
    assert.equal(evs.at(-1).response.status, 'completed');
    assert.equal(said(evs), TWO_SENTENCES);
    await c.close();
    const m = await d.waitMetrics((x) => sumMetric(x, 'voxray_active_sessions') === 0, { what: 'voxray_active_sessions 0' });

    const label = hexId(sid);
    assert.match(label, /^[0-9a-f]{64}$/);
    const one = { model: 'sim', session_id: label };
    const tokens = words(TWO_SENTENCES).length;
    const want = [
        ['voxray_sessions_total', {}, 1],
        ['voxray_active_sessions', {}, 0],
        ['voxray_session_duration_seconds_count', {}, 1],
        ['stt_transcription_latency_seconds_count', one, 1],
        ['llm_time_to_first_token_seconds_count', one, 1],
        ['llm_generation_latency_seconds_count', one, 1],
        ['llm_inter_token_latency_seconds_count', one, tokens - 1],
        ['tts_time_to_first_audio_chunk_seconds_count', one, 2],
        ['tts_synthesis_latency_seconds_count', one, 2],
        ['voxray_plugin_calls_total', { kind: 'llm', plugin: 'sim', op: 'generate', status: 'ok' }, 1],
        ['voxray_plugin_calls_total', { kind: 'stt', plugin: 'sim', op: 'transcribe', status: 'ok' }, 1],
        ['voxray_plugin_calls_total', { kind: 'tts', plugin: 'sim', op: 'synthesize', status: 'ok' }, 2],
        ['voxray_turn_latency_seconds_count', {}, 1],
        ['voxray_request_length_words_count', {}, 1],
        ['voxray_request_length_words_sum', {}, 2],
        ['voxray_reply_length_words_count', {}, 1],
        ['voxray_reply_length_words_sum', {}, tokens],
        ['voxray_interruptions_total', {}, 0],
        ['http_requests_total', { method: 'GET', route: '/v1/realtime', status_code: '101' }, 1],
        ['http_active_connections', { route: '/v1/realtime' }, 0],
    ];
    for (const [name, filter, value] of want) {
        const s = series(m, name, filter);
        assert.ok(s.length > 0, `${name}${JSON.stringify(filter)} exists`);
        assert.equal(sumMetric(m, name, filter), value, `${name}${JSON.stringify(filter)}`);
    }
    assert.ok(sumMetric(m, 'stt_time_to_first_token_seconds_count', one) >= 1);
    // every session-labelled series carries this session's hashed id
    const labelled = [...m.keys()].filter((k) => k.includes('session_id='));
    assert.ok(labelled.length > 0);
    for (const k of labelled) assert.ok(k.includes(`session_id="${label}"`), k);

    const text = await d.metricsText();
    // turn latency in 10 ms buckets where voice turns live (50..500 ms)
    for (const le of ['0.05', '0.3', '0.31', '0.5', '0.6', '10'])
        assert.ok(text.includes(`voxray_turn_latency_seconds_bucket{le="${le}"}`), `a bucket at ${le} s`);
    const pt = await promtool(text);
    assert.equal(pt.out, '', 'promtool says nothing');
    assert.equal(pt.code, 0);
});

vtest('with a large session_sample_rate the session_id label is sampled_out', async () => {
    const d = await Daemon.start(config({}, {}, { metrics: { session_sample_rate: 1000000 } }));
    const c = await d.connect();
    await spokenTurn(c);
    await c.close();
    const m = await d.metrics();
    const s = series(m, 'llm_time_to_first_token_seconds_count', { model: 'sim' });
    assert.equal(s.length, 1);
    assert.equal(s[0].labels.session_id, 'sampled_out');
});

vtest('with [metrics] series_ttl = 1s a session\'s labelled series disappear after it ends', async () => {
    const d = await Daemon.start(config({}, {}, { metrics: { session_sample_rate: 1, series_ttl: '1s' } }));
    const c = await d.connect();
    const label = hexId(c.created.session.id);
    await spokenTurn(c);
    const during = await d.metrics();
    assert.ok(series(during, 'llm_time_to_first_token_seconds_count', { session_id: label }).length === 1);
    await c.close();
    const m = await d.waitMetrics(
        (x) => ![...x.keys()].some((k) => k.includes(label)),
        { timeout: 4000, what: 'the session series to expire within 3 s of series_ttl' });
    // the unlabelled families are still there
    assert.equal(sumMetric(m, 'voxray_sessions_total'), 1);
    const pt = await promtool(await d.metricsText());
    assert.equal(pt.out, '');
});
