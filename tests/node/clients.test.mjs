// Third-party Realtime clients against voxray, each driven the way its
// users drive it:
//   - the OpenAI Agents SDK (@openai/agents-realtime): RealtimeAgent +
//     RealtimeSession over its WebSocket transport;
//   - LiveKit Agents' OpenAI plugin (@livekit/agents-plugin-openai):
//     realtime.RealtimeModel and its session, outside a LiveKit room;
//   - the `openai` package's OpenAIRealtimeWS, for function calling.
// Every client connects through a TraceProxy (lib.mjs) that records each
// event both ways; a failing test prints that trace. With
// VX_CLIENT_TRACE_DIR set, every test writes its trace there as JSON lines.
//
// The function-calling tests need the sim LLM's `tool_call = <name> <json
// args>` key (call that function when it is offered).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
    RealtimeAgent, RealtimeSession, OpenAIRealtimeWebSocket, tool as agentTool,
} from '@openai/agents-realtime';
// The Agents SDK validates every server event against these zod schemas;
// an event that fails them is passed on only as a raw '*' event, and the
// SDK's own handling of its type (history, tool calls, audio) is skipped.
// The module is not among the package's exports, hence the file path.
import { realtimeServerEventSchema } from './node_modules/@openai/agents-realtime/dist/openaiRealtimeEvents.mjs';
import { initializeLogger, log as lkLog, llm as lkLlm } from '@livekit/agents';
import { realtime as lkRealtime } from '@livekit/agents-plugin-openai';
import { AudioFrame } from '@livekit/rtc-node';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import {
    Daemon, simConfig, vtest, stopAll, turnAudio, sleep, TraceProxy, TlsProxy, IN_RATE,
} from './lib.mjs';

const AGENT_INSTRUCTIONS = 'You are a terse assistant. Answer in one sentence.';
const TOOL_ARGS = { city: 'Paris' };
const TOOL_SIM = { tool_call: `get_weather ${JSON.stringify(TOOL_ARGS)}` };

let d; // the shared daemon: sim STT hears "hello world", sim LLM says "You said: <text>."

before(async () => {
    d = await Daemon.start(simConfig({ ms_per_char: 5 }));
});
after(stopAll);

// LiveKit's plugin logs through @livekit/agents' logger, which must be
// initialised; 'silent' keeps its pino streams off stdout (the TAP stream).
// What it logs at warn and error is kept in lkLogged for the diagnostics.
initializeLogger({ pretty: false, level: 'silent' });
const lkLogged = [];
{
    const l = lkLog();
    for (const level of ['warn', 'error']) {
        const orig = l[level].bind(l);
        l[level] = (...args) => {
            lkLogged.push({ level, args: args.map((a) => (a instanceof Error ? a.message : a)) });
            return orig(...args);
        };
    }
}

// ------------------------------------------------------------ harness

function withTimeout(p, ms, what) {
    let t;
    return Promise.race([
        Promise.resolve(p).finally(() => clearTimeout(t)),
        new Promise((_, rej) => {
            t = setTimeout(() => rej(new Error(`${what}: no result within ${ms} ms`)), ms);
        }),
    ]);
}

// Records the named events of an emitter (node EventEmitter or the Agents
// SDK's) and waits for them.
class Recorder {
    constructor(emitter, names) {
        this.seen = [];
        this.waiters = [];
        for (const name of names) {
            emitter.on(name, (...args) => {
                this.seen.push({ name, args, t: Date.now() });
                const w = this.waiters;
                this.waiters = [];
                for (const f of w) f();
            });
        }
    }

    all(name) {
        return this.seen.filter((s) => s.name === name).map((s) => s.args);
    }

    // The args of the first `name` event (at index >= from) for which
    // where(...args) holds, waiting up to timeout ms.
    async wait(name, { where = () => true, timeout = 10000, from = 0, what } = {}) {
        const deadline = Date.now() + timeout;
        for (;;) {
            for (let i = from; i < this.seen.length; i++) {
                const s = this.seen[i];
                if (s.name === name && where(...s.args)) return s.args;
            }
            const left = deadline - Date.now();
            if (left <= 0) {
                throw new Error(`timed out after ${timeout} ms waiting for ${what || `the '${name}' event`}; `
                    + `client events seen: ${[...new Set(this.seen.map((s) => s.name))].join(', ')}`);
            }
            let to;
            await Promise.race([
                new Promise((r) => this.waiters.push(r)),
                new Promise((r) => (to = setTimeout(r, left))),
            ]);
            clearTimeout(to);
        }
    }
}

// vtest with a trace: ctx.trace(daemon) starts a TraceProxy in front of it;
// ctx.cleanup(fn) runs fn (bounded to 5 s) before the proxies stop. A
// failing test gets the trace as diagnostics.
function ctest(name, fn, opts = {}) {
    return vtest(name, { timeout: 60000, ...opts }, async (t) => {
        const proxies = [];
        const cleanups = [];
        const lkBefore = lkLogged.length;
        const ctx = {
            async trace(daemon = d) {
                const p = await TraceProxy.start(daemon.port);
                proxies.push(p);
                return p;
            },
            cleanup(f) {
                cleanups.push(f);
            },
        };
        try {
            await fn(t, ctx);
        } catch (e) {
            for (const p of proxies) t.diagnostic(`trace: ${p.summary()}`);
            for (const l of lkLogged.slice(lkBefore)) t.diagnostic(`livekit ${l.level}: ${JSON.stringify(l.args).slice(0, 400)}`);
            throw e;
        } finally {
            for (const f of cleanups.reverse()) {
                try {
                    await withTimeout(f(), 5000, 'cleanup');
                } catch {
                    /* the proxies are stopped next anyway */
                }
            }
            const dir = process.env.VX_CLIENT_TRACE_DIR;
            if (dir) {
                mkdirSync(dir, { recursive: true });
                const slug = name.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 100);
                proxies.forEach((p, i) => writeFileSync(path.join(dir, `${slug}${i ? `.${i}` : ''}.jsonl`), p.jsonl()));
            }
            for (const p of proxies) await p.stop();
        }
    });
}

// voxray's answer (session.updated or error) to the first session.update
// matching where. Answers come in the order of the updates: the answer to
// the k-th session.update sent is the k-th session.updated-or-error among
// those that answer a session.update (an error naming one by event_id, or
// an error about a session.* parameter naming no event).
async function updateAnswer(tr, where, { timeout = 10000 } = {}) {
    const target = await tr.waitFor({ dir: 'send', type: 'session.update', where }, { timeout, what: "the client's session.update" });
    const updates = () => tr.find({ dir: 'send', type: 'session.update' });
    const k = updates().findIndex((e) => e.index === target.index);
    const isAnswer = (ev) => {
        if (ev.type === 'session.updated') return true;
        if (ev.type !== 'error') return false;
        const id = ev.error?.event_id;
        if (id) return updates().some((u) => u.ev.event_id === id);
        return /^session(\.|$)/.test(ev.error?.param || '');
    };
    const deadline = Date.now() + timeout;
    for (;;) {
        const answers = tr.find({ dir: 'recv', type: /^(session\.updated|error)$/, where: isAnswer });
        if (answers.length > k) return { sent: target.ev, got: answers[k].ev };
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeout} ms waiting for the answer to session.update #${k + 1}; trace: ${tr.summary()}`);
        }
        await sleep(20);
    }
}

function errorsIn(tr) {
    return tr.received('error').map((e) => `${e.error?.code}: ${e.error?.message}`);
}

// PCM chunks of 100 ms as fresh ArrayBuffers.
function* chunks(pcm, rate = IN_RATE, ms = 100) {
    const step = Math.round((rate * ms) / 1000);
    for (let o = 0; o < pcm.length; o += step) yield pcm.slice(o, o + step).buffer;
}

// ------------------------------------------------------------ Agents SDK

const agentText = (item) => (item.content || []).map((c) => c.text ?? c.transcript ?? '').join('');

function weatherTool(calls) {
    return agentTool({
        name: 'get_weather',
        description: 'The weather in a city.',
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => {
            calls.push(city);
            return `Sunny, 21 C in ${city}`;
        },
    });
}

// A RealtimeSession for `agent` over OpenAIRealtimeWebSocket, connected to
// voxray through the trace proxy. Resolves once connect() has.
async function agentSession(ctx, tr, agent) {
    const transport = new OpenAIRealtimeWebSocket();
    const session = new RealtimeSession(agent, { transport, model: 'gpt-realtime' });
    const rec = new Recorder(session, ['error', 'history_updated', 'history_added', 'agent_start', 'agent_end',
        'agent_tool_start', 'agent_tool_end', 'audio', 'audio_stopped', 'audio_interrupted', 'transport_event']);
    ctx.cleanup(async () => session.close());
    await withTimeout(session.connect({ apiKey: 'test-key', url: `${tr.wsBase}/v1/realtime?model=gpt-realtime` }),
        10000, 'RealtimeSession.connect()');
    return { session, rec };
}

const sessionErrors = (rec) => rec.all('error').map(([e]) => {
    const err = e?.error?.error ?? e?.error ?? e;
    return err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? JSON.stringify(err));
});

ctest('agents-realtime: connect() sends the agent instructions and voxray applies them', async (t, ctx) => {
    const tr = await ctx.trace();
    const { rec } = await agentSession(ctx, tr, new RealtimeAgent({ name: 'Assistant', instructions: AGENT_INSTRUCTIONS }));
    // The SDK's first session.update carries the whole configuration.
    const { sent, got } = await updateAnswer(tr, (ev) => ev.session?.instructions !== undefined);
    assert.equal(sent.session.instructions, AGENT_INSTRUCTIONS);
    assert.equal(got.type, 'session.updated',
        `the SDK's first session.update is applied, not refused: ${JSON.stringify(got.error ?? null)}`);
    assert.equal(got.session.instructions, AGENT_INSTRUCTIONS);
    await sleep(300);
    const last = tr.received('session.updated').at(-1);
    assert.equal(last.session.instructions, AGENT_INSTRUCTIONS, 'the instructions stay after the later updates');
    assert.deepEqual(sessionErrors(rec), [], 'the session emitted no error');
});

ctest('agents-realtime: a text turn (sendMessage) gets a reply in the history', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = await agentSession(ctx, tr, new RealtimeAgent({ name: 'Assistant', instructions: AGENT_INSTRUCTIONS }));
    session.sendMessage('hello there');
    const [, , output] = await rec.wait('agent_end', { timeout: 15000, what: 'agent_end (response.done of the reply)' });
    assert.equal(output, 'You said: hello there.', 'agent_end carries the reply text');
    const [history] = await rec.wait('history_updated', {
        timeout: 5000,
        where: (h) => h.some((i) => i.role === 'assistant' && agentText(i) === 'You said: hello there.'),
        what: 'the reply in the history',
    });
    const user = history.find((i) => i.role === 'user');
    assert.equal(user && agentText(user), 'hello there', 'the user message is in the history');
    assert.ok(history.indexOf(user) < history.findIndex((i) => i.role === 'assistant'), 'user item before the reply');
    assert.deepEqual(sessionErrors(rec), [], 'the session emitted no error');
});

ctest('agents-realtime: a spoken turn (sendAudio) gets a transcript and reply audio', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = await agentSession(ctx, tr, new RealtimeAgent({ name: 'Assistant', instructions: AGENT_INSTRUCTIONS }));
    for (const buf of chunks(turnAudio())) session.sendAudio(buf);
    const [history] = await rec.wait('history_updated', {
        timeout: 15000,
        where: (h) => h.some((i) => i.role === 'user' && agentText(i) === 'hello world'),
        what: "the user's transcript 'hello world' in the history",
    });
    assert.ok(history.length >= 1);
    const [, , output] = await rec.wait('agent_end', { timeout: 15000, what: 'agent_end (response.done of the reply)' });
    assert.equal(output, 'You said: hello world.');
    const bytes = rec.all('audio').reduce((n, [e]) => n + e.data.byteLength, 0);
    assert.ok(bytes > 0, 'reply audio reached the session (audio events)');
    await rec.wait('history_updated', {
        timeout: 5000,
        where: (h) => h.some((i) => i.role === 'assistant' && agentText(i) === 'You said: hello world.'),
        what: 'the reply transcript in the history',
    });
    await sleep(300); // let the follow-up events the SDK sends be answered
    assert.deepEqual(sessionErrors(rec), [], 'the session emitted no error');
});

ctest('agents-realtime: every server event of a text and a spoken turn passes the SDK event schemas', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = await agentSession(ctx, tr, new RealtimeAgent({ name: 'Assistant', instructions: AGENT_INSTRUCTIONS }));
    session.sendMessage('hello there');
    await rec.wait('agent_end', { timeout: 15000, what: 'agent_end of the text turn' });
    for (const buf of chunks(turnAudio())) session.sendAudio(buf);
    await rec.wait('agent_end', { timeout: 15000, from: rec.seen.findIndex((x) => x.name === 'agent_end') + 1, what: 'agent_end of the spoken turn' });
    await sleep(300);
    const failures = new Map(); // type -> first failure
    for (const e of tr.find({ dir: 'recv' })) {
        if (e.type.startsWith('<')) continue;
        const r = realtimeServerEventSchema.safeParse(e.ev);
        if (!r.success && !failures.has(e.type)) {
            failures.set(e.type, `${e.type}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} in ${JSON.stringify(e.ev).slice(0, 300)}`);
        }
    }
    assert.deepEqual([...failures.values()], [], 'server events the SDK cannot parse');
});

ctest('agents-realtime: conversation.item.retrieve (sent after each input transcript) is answered with conversation.item.retrieved', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = await agentSession(ctx, tr, new RealtimeAgent({ name: 'Assistant', instructions: AGENT_INSTRUCTIONS }));
    for (const buf of chunks(turnAudio())) session.sendAudio(buf);
    const tx = await tr.waitFor({ dir: 'recv', type: 'conversation.item.input_audio_transcription.completed' }, { timeout: 15000 });
    const itemId = tx.ev.item_id;
    // What the SDK's transport sends on every transcription.completed
    // (openaiRealtimeBase.mjs), here with an event_id to find a refusal by.
    session.transport.sendEvent({ type: 'conversation.item.retrieve', item_id: itemId, event_id: 'evt_retrieve_1' });
    const ans = await tr.waitFor({
        dir: 'recv',
        type: /^(conversation\.item\.retrieved|error)$/,
        where: (ev) => ev.type === 'conversation.item.retrieved' || ev.error?.event_id === 'evt_retrieve_1',
    }, { timeout: 5000, what: 'conversation.item.retrieved (or an error) for the retrieve' });
    assert.equal(ans.type, 'conversation.item.retrieved', `conversation.item.retrieve refused: ${JSON.stringify(ans.ev.error ?? null)}`);
    const item = ans.ev.item;
    assert.equal(item.id, itemId);
    assert.equal(item.type, 'message');
    assert.equal(item.role, 'user');
    assert.equal(item.content?.[0]?.type, 'input_audio');
    assert.equal(item.content[0].transcript, 'hello world');
    assert.equal(realtimeServerEventSchema.safeParse(ans.ev).success, true, 'the SDK can parse it');
    await rec.wait('history_updated', {
        timeout: 5000,
        where: (h) => h.some((i) => i.itemId === itemId && i.status === 'completed' && agentText(i) === 'hello world'),
        what: 'the retrieved item in the history',
    });
});

ctest('agents-realtime: a tool call round trip (the SDK runs the tool, the final answer arrives)', async (t, ctx) => {
    const td = await Daemon.start(simConfig({ ms_per_char: 5, ...TOOL_SIM }));
    const tr = await ctx.trace(td);
    const calls = [];
    const agent = new RealtimeAgent({ name: 'Assistant', instructions: AGENT_INSTRUCTIONS, tools: [weatherTool(calls)] });
    const { session, rec } = await agentSession(ctx, tr, agent);
    const { sent, got } = await updateAnswer(tr, (ev) => Array.isArray(ev.session?.tools));
    assert.equal(sent.session.tools[0].name, 'get_weather');
    assert.equal(got.type, 'session.updated', `the session.update declaring the tool is applied: ${JSON.stringify(got.error ?? null)}`);
    assert.deepEqual((got.session.tools || []).map((x) => x.name), ['get_weather'], 'session.updated lists the tool');

    session.sendMessage('What is the weather in Paris?');
    const [, , , result] = await rec.wait('agent_tool_end', { timeout: 15000, what: 'agent_tool_end (the SDK ran the tool)' });
    assert.deepEqual(calls, ['Paris'], 'the tool ran with the arguments the model gave');
    assert.equal(result, 'Sunny, 21 C in Paris');
    const out = await tr.waitFor({ dir: 'send', type: 'conversation.item.create', where: (ev) => ev.item?.type === 'function_call_output' },
        { timeout: 5000, what: 'the function_call_output item' });
    const call = tr.received('response.output_item.done', (ev) => ev.item?.type === 'function_call')[0];
    assert.equal(out.ev.item.call_id, call.item.call_id, 'the output answers the call');
    await tr.waitFor({ dir: 'send', type: 'response.create', from: out.index }, { timeout: 5000, what: 'response.create after the output' });
    // the final answer: a response after the tool output, with an assistant message
    const done = await tr.waitFor({ dir: 'recv', type: 'response.done', from: out.index, where: (ev) => (ev.response?.output || []).some((o) => o.type === 'message') },
        { timeout: 15000, what: 'response.done of the final answer (after function_call_output)' });
    const msg = done.ev.response.output.find((o) => o.type === 'message');
    assert.ok(agentText({ content: msg.content }).length > 0, 'the final answer has text');
    assert.deepEqual(sessionErrors(rec), [], 'the session emitted no error');
});

// ------------------------------------------------------------ LiveKit plugin

// A realtime.RealtimeModel aimed at voxray through the trace proxy, and its
// session (model.session() connects at once). opts are more constructor
// options (defaults as a LiveKit user gets them otherwise).
function lkSession(ctx, tr, opts = {}) {
    const model = new lkRealtime.RealtimeModel({
        baseURL: `${tr.httpBase}/v1`,
        apiKey: 'test-key',
        model: 'gpt-realtime',
        ...opts,
    });
    const session = model.session();
    const rec = new Recorder(session, ['error', 'generation_created', 'input_speech_started', 'input_speech_stopped',
        'input_audio_transcription_completed', 'metrics_collected', 'session_reconnected']);
    ctx.cleanup(async () => session.close());
    return { model, session, rec };
}

const lkErrors = (rec) => rec.all('error').map(([e]) => `${e.error?.body?.code ?? ''}: ${e.error?.message}`);

// The text of a generation: every message's text stream read to its end
// (audio streams drained alongside, their frames counted).
async function lkGenerationText(gen, timeout = 15000) {
    const read = async () => {
        let text = '';
        let frames = 0;
        const msgs = gen.messageStream.getReader();
        for (;;) {
            const { value: m, done } = await msgs.read();
            if (done) break;
            const drainAudio = (async () => {
                const r = m.audioStream.getReader();
                for (;;) {
                    const a = await r.read();
                    if (a.done) break;
                    frames++;
                }
            })();
            const r = m.textStream.getReader();
            for (;;) {
                const x = await r.read();
                if (x.done) break;
                text += typeof x.value === 'string' ? x.value : x.value.text;
            }
            await drainAudio;
        }
        return { text, frames };
    };
    return withTimeout(read(), timeout, 'reading the generation streams');
}

ctest('livekit: a session opens and its first session.update is applied', async (t, ctx) => {
    const tr = await ctx.trace();
    const { rec } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    const { sent, got } = await updateAnswer(tr);
    assert.equal(sent.session.type, 'realtime');
    assert.equal(got.type, 'session.updated', `the plugin's first session.update is applied, not refused: ${JSON.stringify(got.error ?? null)}`);
    assert.deepEqual(got.session.output_modalities, ['audio']);
    assert.deepEqual(lkErrors(rec), [], 'the session emitted no error');
});

ctest('livekit: updateInstructions() reaches the session', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    await session.updateInstructions(AGENT_INSTRUCTIONS);
    const { got } = await updateAnswer(tr, (ev) => ev.session?.instructions === AGENT_INSTRUCTIONS);
    assert.equal(got.type, 'session.updated', `refused: ${JSON.stringify(got.error ?? null)}`);
    assert.equal(got.session.instructions, AGENT_INSTRUCTIONS);
});

ctest('livekit: updateOptions({toolChoice}) reaches the session', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    session.updateOptions({ toolChoice: 'none' });
    const { sent, got } = await updateAnswer(tr, (ev) => ev.session?.tool_choice === 'none');
    assert.deepEqual(sent.session, { type: 'realtime', tool_choice: 'none' });
    assert.equal(got.type, 'session.updated', `refused: ${JSON.stringify(got.error ?? null)}`);
    assert.equal(got.session.tool_choice, 'none', 'session.updated echoes the tool choice');
});

ctest('livekit: updateTools() declares the functions to the session', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    const weather = lkLlm.tool({
        name: 'get_weather',
        description: 'The weather in a city.',
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => `Sunny in ${city}`,
    });
    await session.updateTools(new lkLlm.ToolContext([weather]));
    const { sent, got } = await updateAnswer(tr, (ev) => Array.isArray(ev.session?.tools));
    assert.equal(sent.session.tools[0].name, 'get_weather');
    assert.equal(got.type, 'session.updated', `refused: ${JSON.stringify(got.error ?? null)}`);
    const tools = got.session.tools || [];
    assert.deepEqual(tools.map((x) => [x.type, x.name]), [['function', 'get_weather']], 'session.updated lists the tool');
    assert.deepEqual(tools[0].parameters?.properties?.city, { type: 'string' });
});

ctest('livekit: generateReply() resolves and the reply streams in', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    // generateReply() rejects by itself after 10 s ('generateReply timed
    // out.') when response.created does not name its response.create.
    const gen = await withTimeout(session.generateReply(), 12000, 'generateReply()');
    assert.equal(gen.userInitiated, true);
    assert.ok(gen.responseId);
    const { text } = await lkGenerationText(gen);
    assert.ok(text.length > 0, 'the reply has text');
    assert.deepEqual(lkErrors(rec), [], 'the session emitted no error');
});

ctest('livekit: a user text item (updateChatCtx) then generateReply() gets the answer to it', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    const chatCtx = session.chatCtx.copy();
    chatCtx.addMessage({ role: 'user', content: 'hello there' });
    // updateChatCtx waits for conversation.item.added naming the item's id
    // and gives up after 5 s ('update_chat_ctx timed out.').
    await withTimeout(session.updateChatCtx(chatCtx), 7000, 'updateChatCtx()');
    assert.deepEqual(session.chatCtx.items.map((i) => [i.role, i.content.join('')]), [['user', 'hello there']]);
    const gen = await withTimeout(session.generateReply(), 12000, 'generateReply()');
    const { text, frames } = await lkGenerationText(gen);
    assert.equal(text, 'You said: hello there.');
    assert.ok(frames > 0, 'reply audio frames');
    assert.deepEqual(lkErrors(rec), [], 'the session emitted no error');
});

ctest('livekit: a spoken turn (pushAudio) gets a transcript and a reply', async (t, ctx) => {
    const tr = await ctx.trace();
    const { session, rec } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    const pcm = turnAudio();
    const step = IN_RATE / 100; // 10 ms frames, as a room track delivers them
    for (let o = 0; o < pcm.length; o += step) {
        const s = pcm.slice(o, o + step);
        session.pushAudio(new AudioFrame(s, IN_RATE, 1, s.length));
    }
    const [tx] = await rec.wait('input_audio_transcription_completed', { timeout: 15000, where: (e) => e.isFinal, what: 'the final transcript' });
    assert.equal(tx.transcript, 'hello world');
    const [gen] = await rec.wait('generation_created', { timeout: 15000 });
    assert.equal(gen.userInitiated, false);
    const { text, frames } = await lkGenerationText(gen);
    assert.equal(text, 'You said: hello world.');
    assert.ok(frames > 0, 'reply audio frames');
    assert.deepEqual(lkErrors(rec), [], 'the session emitted no error');
});

ctest('livekit: a tool call round trip (function call in the generation, output via updateChatCtx, then generateReply)', async (t, ctx) => {
    const td = await Daemon.start(simConfig({ ms_per_char: 5, ...TOOL_SIM }));
    const tr = await ctx.trace(td);
    const { session, rec } = lkSession(ctx, tr);
    await tr.waitFor({ dir: 'recv', type: 'session.created' }, { timeout: 10000 });
    const weather = lkLlm.tool({
        name: 'get_weather',
        description: 'The weather in a city.',
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => `Sunny in ${city}`,
    });
    await session.updateTools(new lkLlm.ToolContext([weather]));
    let chatCtx = session.chatCtx.copy();
    chatCtx.addMessage({ role: 'user', content: 'What is the weather in Paris?' });
    await withTimeout(session.updateChatCtx(chatCtx), 7000, 'updateChatCtx() with the question');
    const gen = await withTimeout(session.generateReply(), 12000, 'generateReply()');
    // As LiveKit's AgentSession does: the function calls of the generation
    // are read from its functionStream (the message stream drained alongside).
    const readCalls = async () => {
        const out = [];
        const drain = lkGenerationText(gen).catch(() => null);
        const r = gen.functionStream.getReader();
        for (;;) {
            const { value, done } = await r.read();
            if (done) break;
            out.push(value);
        }
        await drain;
        return out;
    };
    const calls = await withTimeout(readCalls(), 15000, 'reading the function stream');
    assert.equal(calls.length, 1, 'one function call in the generation');
    assert.equal(calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(calls[0].args), TOOL_ARGS);
    chatCtx = session.chatCtx.copy();
    const fc = chatCtx.items.find((i) => i.type === 'function_call');
    assert.ok(fc && fc.callId === calls[0].callId, 'the function_call item is in the remote chat context (conversation.item.added)');
    chatCtx.insert(lkLlm.FunctionCallOutput.create({ callId: fc.callId, name: fc.name, output: 'Sunny in Paris', isError: false }));
    await withTimeout(session.updateChatCtx(chatCtx), 7000, 'updateChatCtx() with the function_call_output');
    assert.ok(session.chatCtx.items.some((i) => i.type === 'function_call_output' && i.callId === fc.callId),
        'the function_call_output item is in the remote chat context');
    const gen2 = await withTimeout(session.generateReply(), 12000, 'generateReply() after the output');
    const { text } = await lkGenerationText(gen2);
    assert.ok(text.length > 0, 'the final answer has text');
    assert.deepEqual(lkErrors(rec), [], 'the session emitted no error');
});

// ------------------------------------------------------------ openai SDK: function calling

// OpenAIRealtimeWS only dials wss://: it goes through nginx (TLS) to the
// trace proxy to voxray.
async function openaiRealtime(ctx, tr) {
    const tls = await TlsProxy.start(tr.port);
    ctx.cleanup(() => tls.stop());
    const client = new OpenAI({ apiKey: 'test-key', baseURL: `https://127.0.0.1:${tls.port}/v1`, maxRetries: 0 });
    const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: tls.ca } }, client);
    rt.on('error', () => {}); // errors are read from the trace
    ctx.cleanup(async () => rt.close());
    await withTimeout(new Promise((resolve, reject) => {
        rt.socket.once('open', resolve);
        rt.socket.once('error', reject);
    }), 10000, 'OpenAIRealtimeWS open');
    await tr.waitFor({ dir: 'recv', type: 'session.created' });
    return rt;
}

const WEATHER_FN = {
    type: 'function',
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

// session.update with the tool, then a user question and response.create;
// resolves with the function call's output_item.done.
async function askForCall(rt, tr) {
    rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], tools: [WEATHER_FN], tool_choice: 'auto' } });
    const { got } = await updateAnswer(tr);
    assert.equal(got.type, 'session.updated', `session.update with tools refused: ${JSON.stringify(got.error ?? null)}`);
    rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris?' }] } });
    rt.send({ type: 'response.create' });
    const done = await tr.waitFor({ dir: 'recv', type: 'response.done' }, { timeout: 15000 });
    return done;
}

ctest('openai SDK: session.update with tools is echoed in session.updated', async (t, ctx) => {
    const tr = await ctx.trace();
    const rt = await openaiRealtime(ctx, tr);
    rt.send({ type: 'session.update', session: { type: 'realtime', tools: [WEATHER_FN], tool_choice: 'required' } });
    const { got } = await updateAnswer(tr);
    assert.equal(got.type, 'session.updated', `refused: ${JSON.stringify(got.error ?? null)}`);
    assert.deepEqual(got.session.tools, [WEATHER_FN]);
    assert.equal(got.session.tool_choice, 'required');
});

ctest('openai SDK: the model calls the function (function_call_arguments delta/done, a function_call item)', async (t, ctx) => {
    const td = await Daemon.start(simConfig({ ms_per_char: 5, ...TOOL_SIM }));
    const tr = await ctx.trace(td);
    const rt = await openaiRealtime(ctx, tr);
    const done = await askForCall(rt, tr);
    const r = done.ev.response;
    assert.equal(r.status, 'completed');
    assert.equal(r.output.length, 1, `one output item: ${JSON.stringify(r.output)}`);
    const item = r.output[0];
    assert.equal(item.type, 'function_call');
    assert.equal(item.name, 'get_weather');
    assert.equal(item.status, 'completed');
    assert.ok(item.call_id, 'the call has a call_id');
    assert.deepEqual(JSON.parse(item.arguments), TOOL_ARGS);
    const added = tr.received('response.output_item.added')[0];
    assert.equal(added?.item?.type, 'function_call');
    assert.equal(added.item.call_id, item.call_id);
    const deltas = tr.received('response.function_call_arguments.delta');
    assert.ok(deltas.length >= 1, 'arguments arrive as deltas');
    assert.ok(deltas.every((e) => e.call_id === item.call_id && e.item_id === item.id && e.response_id === r.id));
    assert.equal(deltas.map((e) => e.delta).join(''), item.arguments);
    const argsDone = tr.received('response.function_call_arguments.done')[0];
    assert.ok(argsDone, 'response.function_call_arguments.done');
    assert.equal(argsDone.arguments, item.arguments);
    assert.equal(argsDone.name, 'get_weather');
    assert.equal(argsDone.call_id, item.call_id);
    const odone = tr.received('response.output_item.done')[0];
    assert.equal(odone?.item?.arguments, item.arguments);
    // the order the Realtime API sends them in
    const order = tr.find({ dir: 'recv' }).map((e) => e.type).filter((x) => /^response\.(output_item|function_call_arguments)|^response\.done/.test(x));
    assert.deepEqual([...new Set(order)], ['response.output_item.added', 'response.function_call_arguments.delta',
        'response.function_call_arguments.done', 'response.output_item.done', 'response.done']);
    assert.deepEqual(errorsIn(tr), []);
});

ctest('openai SDK: a function_call_output item and response.create give the final answer', async (t, ctx) => {
    const td = await Daemon.start(simConfig({ ms_per_char: 5, ...TOOL_SIM }));
    const tr = await ctx.trace(td);
    const rt = await openaiRealtime(ctx, tr);
    const done = await askForCall(rt, tr);
    const call = done.ev.response.output.find((o) => o.type === 'function_call');
    assert.ok(call, `the model called the function: ${JSON.stringify(done.ev.response.output)}`);
    const mark = tr.log.length;
    rt.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: call.call_id, output: '{"forecast":"sunny","celsius":21}' } });
    const added = await tr.waitFor({ dir: 'recv', type: /^(conversation\.item\.added|error)$/, from: mark });
    assert.equal(added.type, 'conversation.item.added', `function_call_output refused: ${JSON.stringify(added.ev.error ?? null)}`);
    assert.equal(added.ev.item.type, 'function_call_output');
    assert.equal(added.ev.item.call_id, call.call_id);
    assert.equal(added.ev.previous_item_id, call.id, 'the output follows the call in the conversation');
    rt.send({ type: 'response.create' });
    const final = await tr.waitFor({ dir: 'recv', type: 'response.done', from: mark }, { timeout: 15000 });
    const r = final.ev.response;
    assert.equal(r.status, 'completed');
    const msg = r.output.find((o) => o.type === 'message');
    assert.ok(msg, `the final answer is a message: ${JSON.stringify(r.output)}`);
    assert.ok(msg.content.map((c) => c.text ?? c.transcript ?? '').join('').length > 0, 'with text');
    assert.deepEqual(errorsIn(tr), []);
});
