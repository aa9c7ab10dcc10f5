// Memory goes back after load: 200 sessions talk at once (each a turn with
// a spoken reply), then all close, and within a few seconds the daemon's
// resident memory (/proc/PID/status VmRSS) falls back near where it was
// before them. glibc keeps freed chunks that sit below live ones in its
// arenas, so without the trim the daemon runs after sessions end, most of
// the peak stays resident for good.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Daemon, simConfig, vtest, stopAll, turnAudio, sleep } from './lib.mjs';

after(stopAll);

const SESSIONS = 200;

function rssKiB(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

// Under AddressSanitizer freed memory stays resident (its quarantine):
// the return is only asserted on a normal build.
function sanitized(pid) {
    return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libasan');
}

async function talk(d, n) {
    const clients = [];
    for (let i = 0; i < n; i++) clients.push(await d.connect());
    const done = await Promise.all(
        clients.map(async (c) => {
            await c.sendAudio(turnAudio());
            return c.next('response.done', { timeout: 120000 });
        }),
    );
    for (const e of done) assert.equal(e.response.status, 'completed');
    return clients;
}

vtest(`resident memory returns after ${SESSIONS} sessions end`, { timeout: 180000 }, async () => {
    const d = await Daemon.start(simConfig({ latency: '200ms', reply: 'one two three four five six seven eight' }));
    if (sanitized(d.pid)) {
        console.log('# AddressSanitizer build: freed memory stays in its quarantine, nothing to assert');
        return;
    }
    // One session first, so what every process keeps once it served one
    // (libraries' tables, the first arena, thread stacks) is in the baseline.
    await Promise.all((await talk(d, 1)).map((c) => c.close()));
    await sleep(6000);
    const base = rssKiB(d.pid);
    const clients = await talk(d, SESSIONS);
    const peak = rssKiB(d.pid);
    const growth = peak - base;
    assert.ok(growth > 8 * 1024, `${SESSIONS} live sessions should take memory: base ${base} kB, peak ${peak} kB`);
    await Promise.all(clients.map((c) => c.close()));
    // Back to within a quarter of the growth (or 8 MiB) of the baseline.
    const limit = base + Math.max(8 * 1024, growth / 4);
    let now = rssKiB(d.pid);
    for (const end = Date.now() + 20000; now > limit && Date.now() < end; ) {
        await sleep(250);
        now = rssKiB(d.pid);
    }
    assert.ok(now <= limit, `RSS ${now} kB after the sessions ended: base ${base} kB, peak ${peak} kB, limit ${Math.round(limit)} kB`);
});
