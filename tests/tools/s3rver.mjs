#!/usr/bin/env node
/*
 * s3rver.mjs: a local S3 server that verifies SigV4 signatures, for tests.
 *
 *   node tests/tools/s3rver.mjs --port P --dir D --bucket B --key ID --secret S
 *                               [--bucket B2 ...] [--address A] [--log FILE]
 *                               [--modules DIR]
 *
 *   --port P       TCP port to listen on (required; 0 picks a free one, which
 *                  is then only visible in --log lines: prefer a real port)
 *   --dir D        storage directory, created if missing; an object K of
 *                  bucket B is the file D/B/K._S3rver_object
 *   --bucket B     a bucket to create at start (repeatable; none: no bucket)
 *   --key ID       the one access key id the server accepts
 *   --secret S     its secret access key
 *   --address A    address to bind (default 127.0.0.1)
 *   --log FILE     append one line per answered request: "METHOD URL STATUS"
 *                  (URL is the path and query as sent, e.g.
 *                  "PUT /b/k?partNumber=1&uploadId=... 200"), written
 *                  before the answer is sent
 *   --modules DIR  the node_modules holding @20minutes/s3rver (default:
 *                  ../node/node_modules next to this file)
 *
 * Prints exactly one line, "ready", on stdout once it listens; everything
 * else goes to stderr. Stop it with SIGTERM or SIGINT (it exits 0).
 *
 * It runs @20minutes/s3rver 5.0.0 (tests/node/package.json), which declares
 * Node >= 24 but runs on Node 20 when started this way (its own CLI is not
 * used). What that server does and does not check, measured here:
 *   - A request signed with the wrong secret (or an unknown key id) gets
 *     403 SignatureDoesNotMatch (InvalidAccessKeyId); the built-in
 *     S3RVER/S3RVER key pair is revoked so only --key/--secret work.
 *   - A request with no Authorization header at all is ACCEPTED
 *     (anonymous), so "no credentials" cannot be tested against it.
 *   - x-amz-content-sha256 must be present and well formed; the payload is
 *     not checked against it.
 *   - Virtual-host requests (bucket.s3.localhost) are signed over
 *     "/bucket/key" instead of "/key", so correct SigV4 clients fail there:
 *     use path-style URLs.
 *   - Multipart: CreateMultipartUpload, UploadPart and
 *     CompleteMultipartUpload work; AbortMultipartUpload answers 405
 *     MethodNotAllowed, and the 5 MiB minimum part size is not enforced.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function usage(msg) {
    process.stderr.write(`s3rver.mjs: ${msg}\n` +
        'usage: node s3rver.mjs --port P --dir D --bucket B --key ID --secret S ' +
        '[--address A] [--log FILE] [--modules DIR]\n');
    process.exit(2);
}

const opts = { buckets: [], address: '127.0.0.1' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (!flag.startsWith('--') || value === undefined) usage(`bad argument '${flag}'`);
    i++;
    switch (flag) {
    case '--port': opts.port = Number(value); break;
    case '--dir': opts.dir = value; break;
    case '--bucket': opts.buckets.push(value); break;
    case '--key': opts.key = value; break;
    case '--secret': opts.secret = value; break;
    case '--address': opts.address = value; break;
    case '--log': opts.log = value; break;
    case '--modules': opts.modules = value; break;
    default: usage(`unknown option '${flag}'`);
    }
}
if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port wants 0..65535');
if (!opts.dir) usage('--dir is required');
if (!opts.key || !opts.secret) usage('--key and --secret are required');

const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(opts.modules ?? join(here, '..', 'node', 'node_modules'));
const require = createRequire(join(modules, 'noop.js'));
let S3rver, AWSAccount;
try {
    S3rver = require('@20minutes/s3rver');
    AWSAccount = require('@20minutes/s3rver/lib/models/account');
} catch (e) {
    process.stderr.write(`s3rver.mjs: cannot load @20minutes/s3rver from ${modules} ` +
        `(${e.code ?? e.message}); run: cd tests/node && npm ci\n`);
    process.exit(3);
}

mkdirSync(opts.dir, { recursive: true });
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
new AWSAccount(123456789012, 'voxray-test').createKeyPair(opts.key, opts.secret);

const server = new S3rver({
    address: opts.address,
    port: opts.port,
    directory: opts.dir,
    silent: true,
    // Lets bucket.s3.localhost name a bucket (see the header about vhosts).
    serviceEndpoint: 'localhost',
    configureBuckets: opts.buckets.map((name) => ({ name })),
});

try {
    await server.run();
} catch (e) {
    process.stderr.write(`s3rver.mjs: cannot listen on ${opts.address}:${opts.port}: ${e.message}\n`);
    process.exit(1);
}
if (opts.log) {
    // Written when the status line is, before any byte of the answer goes
    // out: a client that has its answer finds the line already there.
    server.httpServer.prependListener('request', (req, res) => {
        const url = req.url;
        const writeHead = res.writeHead;
        res.writeHead = function (status, ...rest) {
            try {
                appendFileSync(opts.log, `${req.method} ${url} ${status}\n`);
            } catch (e) {
                process.stderr.write(`s3rver.mjs: --log ${opts.log}: ${e.message}\n`);
            }
            return writeHead.call(this, status, ...rest);
        };
    });
}
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        server.httpServer.closeAllConnections();
        server.close().finally(() => process.exit(0));
        setTimeout(() => process.exit(0), 1000).unref();
    });
}
process.stdout.write('ready\n');
