// nginx terminating TLS in front of voxray, for clients that only speak
// wss:// (the openai SDK), with a throw-away self-signed certificate. It is
// started on a free loopback port and stopped by its PID.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, openSync, closeSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { tempDir, freePort, sleep } from './lib.mjs';

const NGINX = '/usr/sbin/nginx';

// nginx as a TLS-terminating WebSocket proxy in front of voxray.
export class Proxy {
    static async start(upstreamPort) {
        const dir = tempDir('voxray-nginx-');
        const port = await freePort();
        mkdirSync(path.join(dir, 'tmp'));
        execFileSync('openssl', [
            'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
            '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
            '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        ], { stdio: ['ignore', 'ignore', 'pipe'] });
        const conf = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    server {
        listen 127.0.0.1:${port} ssl;
        ssl_certificate ${dir}/cert.pem;
        ssl_certificate_key ${dir}/key.pem;
        location / {
            proxy_pass http://127.0.0.1:${upstreamPort};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 60s;
        }
    }
}
`;
        writeFileSync(path.join(dir, 'nginx.conf'), conf);
        const fd = openSync(path.join(dir, 'nginx.out'), 'a');
        const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')],
            { stdio: ['ignore', fd, fd] });
        closeSync(fd);
        const p = new Proxy(dir, port, child);
        process.on('exit', () => p.exit || p.kill('SIGKILL'));
        const ca = p.ca;
        const deadline = Date.now() + 10000;
        for (;;) {
            if (p.exit) throw new Error(`nginx exited: ${p.log()}`);
            const status = await new Promise((resolve) => {
                const req = https.get({ host: '127.0.0.1', port, path: '/health', ca, timeout: 1000 }, (res) => {
                    res.resume();
                    resolve(res.statusCode);
                });
                req.on('error', () => resolve(0));
                req.on('timeout', () => req.destroy());
            });
            if (status === 200) return p;
            if (Date.now() > deadline) {
                await p.stop();
                throw new Error(`nginx did not proxy /health within 10 s: ${p.log()}`);
            }
            await sleep(50);
        }
    }

    constructor(dir, port, child) {
        this.dir = dir;
        this.port = port;
        this.child = child;
        this.pid = child.pid;
        this.ca = readFileSync(path.join(dir, 'cert.pem'));
        this.exit = null;
        this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((this.exit = { code, signal }))));
    }

    log() {
        try {
            return readFileSync(path.join(this.dir, 'error.log'), 'utf8');
        } catch {
            return '';
        }
    }

    kill(sig) {
        try {
            process.kill(this.pid, sig);
        } catch {
            /* gone */
        }
    }

    // SIGQUIT (graceful) by PID, SIGKILL after 5 s.
    async stop() {
        if (this.exit) return this.exit;
        this.kill('SIGQUIT');
        const t = setTimeout(() => this.kill('SIGKILL'), 5000);
        const e = await this.exited;
        clearTimeout(t);
        return e;
    }
}
