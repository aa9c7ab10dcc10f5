// What one abusive client can cost: peak resident memory of voxray (default
// limits) while clients attack it, one attack per fresh daemon. Prints
// figures; never fails on them. Run through tests/bench/abuse.sh.
import { readFileSync } from 'node:fs';
import { Daemon, simConfig, stopAll, toBase64, silence } from '../node/lib.mjs';

const peakKb = (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const rssKb = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

const attacks = {
    // 60 s appends of 3.84 MB as fast as the socket takes them
    appends: async (c) => { // 50 minutes of audio: under max_audio_ahead
        const audio = toBase64(silence(60000));
        for (let i = 0; i < 50; i++) c.send({ type: 'input_audio_buffer.append', audio });
        c.send({ type: 'input_audio_buffer.append', event_id: 'end', audio: 'x' });
        await c.next('error', { timeout: 600000, where: (e) => e.error.event_id === 'end' });
    },
    // conversation items of 1.5 MB
    items: async (c) => {
        const text = 'y'.repeat(1500000);
        for (let i = 0; i < 100; i++) {
            c.send({ type: 'conversation.item.create', item: { id: `item_a${i}`, type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
        }
        await c.next('conversation.item.done', { timeout: 600000, where: (e) => e.item.id === 'item_a99' });
    },
    // 3.9 MB events of 2 million JSON values
    values: async (c) => {
        const ev = `{"type":"session.update","session":{"tools":[${'0,'.repeat(1950000)}0]}}`;
        for (let i = 0; i < 20; i++) c.sendRaw(ev);
        for (let i = 0; i < 20; i++) await c.next('error', { timeout: 600000 });
    },
};

const clients = Number(process.env.ABUSE_CLIENTS || 1);
console.log(`one fresh voxray per attack, default [session] limits but max_audio_ahead = 3600s, ${clients} attacking client(s)`);
console.log('attack    sent_MB  peak_growth_MB  per_client_MB  rss_after_MB');
for (const [name, run] of Object.entries(attacks)) {
    // max_audio_ahead is raised so that the appends are bounded by
    // max_input_buffer alone (at the default 60 s they are read at real time)
    const d = await Daemon.start(simConfig({}, { session: { max_messages_per_second: 100000, max_audio_ahead: '3600s' } }));
    const base = peakKb(d.pid);
    const cs = [];
    for (let i = 0; i < clients; i++) cs.push(await d.connect());
    await Promise.all(cs.map(run));
    const grown = (peakKb(d.pid) - base) / 1024;
    const sent = { appends: 192, items: 150, values: 78 }[name] * clients;
    console.log(`${name.padEnd(9)} ${String(sent).padStart(7)}  ${grown.toFixed(1).padStart(14)}  ${(grown / clients).toFixed(1).padStart(13)}  ${(rssKb(d.pid) / 1024).toFixed(1).padStart(12)}`);
    for (const c of cs) await c.close();
    await d.stop();
}
await stopAll();
