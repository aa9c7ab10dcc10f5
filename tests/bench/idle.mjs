// What idle sessions cost (prints figures, never fails on them): N
// WebSockets that open a session and then say nothing; the server's CPU
// over SECONDS once they are all open. Run by tests/bench/idle.sh.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../node/package.json', import.meta.url));
const WebSocket = require('ws');
const [url, n, secs, pid] = [process.argv[2], +process.argv[3], +process.argv[4], process.argv[5]];

const cpu = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return +f[11] + +f[12]; // utime + stime, in ticks
};
const threads = () => readFileSync(`/proc/${pid}/status`, 'utf8').match(/Threads:\s+(\d+)/)[1];

const socks = [];
let open = 0, created = 0;
for (let i = 0; i < n; i++) {
    const w = new WebSocket(url, ['realtime']);
    w.on('message', (m) => { if (String(m).includes('"session.created"')) created++; });
    w.on('open', () => open++);
    w.on('error', () => {});
    socks.push(w);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50));
}
for (let i = 0; i < 300 && created < n; i++) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 2000));
const c0 = cpu();
await new Promise((r) => setTimeout(r, secs * 1000));
const ticks = cpu() - c0;
console.log(`${n} idle sessions (${created} created): server CPU ${(ticks / secs).toFixed(1)} % of a core over ${secs} s, ${threads()} threads`);
for (const w of socks) w.terminate();
