// Threads do not grow with sessions: 200 sessions talk at once to sim
// providers slow enough that every session has a live provider stream for
// seconds, and the daemon's thread count (/proc/PID/status) stays small.
// A stream that cost a thread (as sim streams once did) would put it above
// 200.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Daemon, simConfig, vtest, stopAll, turnAudio, sleep } from './lib.mjs';

after(stopAll);

const SESSIONS = 200;
const MAX_THREADS = 40; // lws, mhd, defer, health, recording, 4+ workers...

function threads(pid) {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

vtest(`${SESSIONS} sessions with live provider streams run on fewer than ${MAX_THREADS} threads`, { timeout: 180000 }, async () => {
    const d = await Daemon.start(
        simConfig({
            latency: '1500ms',
            token_delay: '100ms',
            reply: 'one two three four five six seven eight nine ten',
            ms_per_char: 20,
            realtime: 'true',
        }),
    );
    const idle = threads(d.pid);
    const clients = [];
    for (let i = 0; i < SESSIONS; i++) clients.push(await d.connect());
    let max = threads(d.pid);
    let sampling = true;
    const sampler = (async () => {
        while (sampling) {
            max = Math.max(max, threads(d.pid));
            await sleep(50);
        }
    })();
    const done = await Promise.all(
        clients.map(async (c) => {
            await c.sendAudio(turnAudio());
            return c.next('response.done', { timeout: 120000 });
        }),
    );
    sampling = false;
    await sampler;
    for (const e of done) assert.equal(e.response.status, 'completed');
    assert.ok(max < MAX_THREADS, `${max} threads at ${SESSIONS} talking sessions (${idle} idle)`);
    await Promise.all(clients.map((c) => c.close()));
});
