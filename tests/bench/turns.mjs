// Turn-taking on the offline default (conf/voxray.ini: pocketsphinx ->
// ELIZA -> flite): how soon the bot answers a finished sentence, and how
// often it answers at a pause in the middle of one (a false cut-off).
// Prints figures; never fails on them. Run through tests/bench/latency.sh.
//
// Every turn is flite speech streamed in real time (20 ms chunks) then
// silence. "fast" turns are whole sentences: end of speech (the last sample
// above |64|, as voxray-client counts it) -> first reply audio delta, and
// input_audio_buffer.speech_stopped -> that delta. "pause" turns are a
// sentence cut after a word that says it goes on ("I would like to"),
// 400-700 ms of silence, then the rest: any response.created or a second
// input_audio_buffer.committed before the rest was spoken is a cut-off.
// Each reply is cancelled at its first audio (the next turn need not wait
// for it to play), so the figures do not depend on the reply's length.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Daemon, stopAll, tempDir, toBase64, silence, sumMetric, TOP_SRCDIR } from '../node/lib.mjs';

const RATE = 24000;
const CHUNK = (RATE * 20) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const FAST = [
    'hello how are you', 'please tell me a story', 'my mother does not understand me',
    'i would like a cup of coffee', 'what time is it', 'thank you very much', 'i feel sad today',
    'can you help me', 'my name is john smith', 'i need a doctor',
];
const PAUSED = [
    ['i would like to', 'order a pizza', 400], ['my number is', 'five five five one two three', 500],
    ['i want to', 'go home', 600], ['i am looking for', 'a good restaurant', 700],
    ['my mother and', 'my father', 400], ['i think that', 'you are right', 500],
    ['it is because', 'i was tired', 600], ['the weather is', 'very nice today', 700],
    ['i would like a cup of', 'coffee', 400], ['please give me the', 'red one', 500],
    ['i was born in', 'nineteen eighty', 600], ['can you tell me about', 'your family', 700],
];

// The shipped configuration's sections, but [server] (the test daemon's own).
function shippedSections() {
    const out = {};
    let sec = null;
    for (const raw of readFileSync(path.join(TOP_SRCDIR, 'conf', 'voxray.ini'), 'utf8').split('\n')) {
        const line = raw.replace(/(^|\s);.*$/, '').trim();
        if (!line) continue;
        const m = /^\[(.+)\]$/.exec(line);
        if (m) {
            sec = m[1] === 'server' ? null : m[1];
            if (sec) out[sec] = {};
            continue;
        }
        const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
        if (kv && sec) out[sec][kv[1]] = kv[2];
    }
    return out;
}

const dir = tempDir('voxray-turns-');
let n = 0;
// flite speech at RATE: parts joined by silences of gaps[i] ms.
function synth(parts, gaps = []) {
    const wavs = parts.map((t) => {
        const raw = path.join(dir, `p${n++}.wav`);
        execFileSync('flite', ['-voice', process.env.TURNS_VOICE || 'slt', '-t', t, '-o', raw]);
        return raw;
    });
    const joined = [];
    joined.push(silence(300, RATE));
    wavs.forEach((w, i) => {
        const out = path.join(dir, `p${n++}.raw`);
        // flite's own leading and trailing silence is cut: a pause is the gap
        execFileSync('sox', [w, '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', out,
            'silence', '1', '0.01', '0.2%', 'reverse', 'silence', '1', '0.01', '0.2%', 'reverse']);
        const b = readFileSync(out);
        joined.push(new Int16Array(b.buffer, b.byteOffset, b.length / 2));
        if (i < wavs.length - 1) joined.push(silence(gaps[i] || 0, RATE));
    });
    const len = joined.reduce((a, p) => a + p.length, 0);
    const pcm = new Int16Array(len);
    let o = 0;
    const ends = [];
    for (const p of joined) {
        pcm.set(p, o);
        o += p.length;
        ends.push(o);
    }
    let last = pcm.length - 1;
    while (last > 0 && Math.abs(pcm[last]) <= 64) last--;
    return { pcm, eos: last + 1 };
}

// Stream one turn in real time; returns its figures.
async function turn(c, { pcm, eos }) {
    const from = c.events.length;
    const t0 = Date.now();
    let tEos = null;
    for (let k = 0; k * CHUNK < pcm.length + RATE * 1.5; k++) {
        const due = t0 + (k + 1) * 20;
        const a = k * CHUNK;
        const chunk = a < pcm.length ? pcm.subarray(a, Math.min(a + CHUNK, pcm.length)) : silence(20, RATE);
        if (a < pcm.length && chunk.length < CHUNK) {
            const pad = new Int16Array(CHUNK);
            pad.set(chunk);
            c.send({ type: 'input_audio_buffer.append', audio: toBase64(pad) });
        } else {
            c.send({ type: 'input_audio_buffer.append', audio: toBase64(chunk) });
        }
        if (tEos === null && a + CHUNK >= eos) tEos = Date.now();
        if (tEos !== null && a >= pcm.length && c.events.slice(from).some((e) => e.type === 'response.output_audio.delta' && e._t >= tEos)) break;
        const w = due - Date.now();
        if (w > 0) await sleep(w);
    }
    const answered = (e) => e.type === 'response.output_audio.delta' && e._t >= tEos;
    const deadline = Date.now() + 8000;
    let evs;
    for (;;) {
        evs = c.events.slice(from);
        if (evs.some(answered) || Date.now() > deadline) break;
        await sleep(10);
    }
    const audio = evs.find(answered);
    const stopped = evs.filter((e) => e.type === 'input_audio_buffer.speech_stopped' && (!audio || e._t <= audio._t)).pop();
    const early = evs.filter((e) => e._t < tEos);
    const cut = early.some((e) => e.type === 'response.created') ||
        evs.filter((e) => e.type === 'input_audio_buffer.committed').length > 1;
    // let the turn settle: cancel a reply still going, wait for quiet
    for (let quiet = 0; quiet < 3;) {
        const all = c.events.slice(from);
        const created = all.filter((e) => e.type === 'response.created').length;
        const done = all.filter((e) => e.type === 'response.done').length;
        if (created > done) c.send({ type: 'response.cancel' });
        const len = c.events.length;
        await sleep(250);
        quiet = c.events.length === len && created === done ? quiet + 1 : 0;
    }
    const transcript = c.events.slice(from).filter((e) => e.type === 'conversation.item.input_audio_transcription.completed')
        .map((e) => e.transcript).join(' | ');
    c.pos = c.events.length;
    return {
        ttfa: audio ? audio._t - tEos : null,
        stopToAudio: audio && stopped ? audio._t - stopped._t : null,
        cut, transcript,
    };
}

const pct = (xs, p) => {
    const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN;
};
const median = (xs) => {
    const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

try {
    const d = await Daemon.start(shippedSections(), { env: process.env });
    for (let i = 0; i < 100 && (await fetch(`${d.base}/ready`)).status !== 200; i++) await sleep(100);
    const rounds = Number(process.env.TURNS_ROUNDS || 2);
    const fast = [], paused = [];
    const c = await d.connect();
    for (let r = 0; r < rounds; r++) {
        for (const s of FAST) fast.push({ s, ...(await turn(c, synth([s]))) });
        for (const [a, b, gap] of PAUSED) paused.push({ s: `${a} ... ${b}`, ...(await turn(c, synth([a, b], [gap]))) });
    }
    await c.close();
    const m = await d.metrics();
    const all = [...fast, ...paused];
    if (process.env.TURNS_VERBOSE) for (const t of all) console.log(JSON.stringify(t));
    const cuts = paused.filter((t) => t.cut).length;
    const ttfa = fast.map((t) => t.ttfa), sta = fast.map((t) => t.stopToAudio);
    console.log(`fast turns: ${fast.length}, answered ${ttfa.filter((x) => x !== null).length}`);
    console.log(`  end of speech -> first reply audio: median ${median(ttfa)} ms, p95 ${pct(ttfa, 0.95)} ms`);
    console.log(`  speech_stopped -> first reply audio: median ${median(sta)} ms, p95 ${pct(sta, 0.95)} ms`);
    const pt = paused.map((t) => t.ttfa);
    console.log(`paused turns: ${paused.length}, false cut-offs ${cuts} (${((100 * cuts) / paused.length).toFixed(1)}%); ` +
        `end of speech -> first reply audio median ${median(pt)} ms, p95 ${pct(pt, 0.95)} ms`);
    for (const t of paused.filter((t) => t.cut)) console.log(`  cut: "${t.s}" heard as "${t.transcript}"`);
    console.log(`speculative turns: used ${sumMetric(m, 'voxray_speculative_turns_total', { outcome: 'used' })}, ` +
        `discarded ${sumMetric(m, 'voxray_speculative_turns_total', { outcome: 'discarded' })}`);
    const hist = (name) => {
        const sum = sumMetric(m, `${name}_sum`), cnt = sumMetric(m, `${name}_count`);
        return cnt ? `${((1000 * sum) / cnt).toFixed(1)} ms mean over ${cnt}` : 'none';
    };
    for (const h of ['stt_transcription_latency_seconds', 'llm_time_to_first_token_seconds',
        'tts_time_to_first_audio_chunk_seconds', 'voxray_turn_latency_seconds'])
        console.log(`  ${h}: ${hist(h)}`);
    for (const step of ['stt_final_to_llm', 'llm_sentence_to_tts', 'tts_chunk_to_client']) {
        const sum = sumMetric(m, 'voxray_host_latency_seconds_sum', { step });
        const cnt = sumMetric(m, 'voxray_host_latency_seconds_count', { step });
        console.log(`  voxray_host_latency_seconds{step="${step}"}: ${cnt ? `${((1000 * sum) / cnt).toFixed(2)} ms mean over ${cnt}` : 'none'}`);
    }
} finally {
    await stopAll();
}
