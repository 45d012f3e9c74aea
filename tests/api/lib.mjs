// Shared helpers of the `sov serve` API tests: start/stop a server on a free
// port, an OpenAI client for it, raw HTTP, the expected `sov run` text.
// Every connection goes to 127.0.0.1 and every wait is bounded.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

export { OpenAI };

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
// relative values are taken relative to the repository root (tests/test_api.sh
// passes absolute paths)
export const SOV_BIN = path.resolve(ROOT, process.env.SOV_BIN || 'build/sov');
export const SOV_SHARED = path.resolve(ROOT, process.env.SOV_SHARED || '../shared');
export const MODELS_DIR = path.join(SOV_SHARED, 'models');
export const MODEL = path.join(MODELS_DIR, 'stories260K.gguf');
export const MODEL_ID = 'stories260K';

const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;
const STDERR_KEEP = 256 * 1024;

// ---------------------------------------------------------------- servers

const live = new Set(); // servers not yet known to have exited

function killAll() {
    for (const s of live) {
        try { s.proc.kill('SIGKILL'); } catch { /* gone */ }
    }
    live.clear();
}
// Whatever happens to this test process, its servers go with it.
process.on('exit', killAll);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.once(sig, () => { killAll(); process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[sig]); });
}

function tail(s, n = 1500) { return s.length > n ? '...' + s.slice(-n) : s; }

/**
 * Starts `$SOV_BIN serve -m MODEL --port 0 ...extraArgs` and waits (at most
 * 20 s) for the stderr line "listening on http://HOST:PORT" and then a line
 * containing "ready". Returns {baseURL, url, port, host, listenLine, proc,
 * stderr(), exited, stop()}. stop() sends SIGTERM, waits at most 10 s, then
 * SIGKILL; it resolves to {code, signal, killed}.
 *
 * With model: null the arguments are raw: `$SOV_BIN serve ...extraArgs`
 * (e.g. ['--config', path]), plus `--port 0` unless they hold --port, and no
 * --kv-type of its own (a config file sets it per backend).
 */
let startHung = null; // the first start in this process that timed out: later ones fail at once

export async function startServer(extraArgs = [], { model = MODEL, env = {}, timeoutMs = START_TIMEOUT_MS } = {}) {
    if (startHung) throw new Error(`not started: an earlier sov serve in this file never became ready (${startHung})`);
    if (!fs.existsSync(SOV_BIN)) throw new Error(`sov binary not found: ${SOV_BIN} (build it, or set SOV_BIN)`);
    if (model !== null && !fs.existsSync(model)) throw new Error(`model not found: ${model} (set SOV_SHARED)`);
    // f32 KV unless a test asks for a type: the exact-text comparisons
    // (sov run, the oracle files) are defined on f32 (sov run's default)
    const extra = extraArgs.map(String);
    const args = model === null
        ? ['serve', ...extra, ...(extra.includes('--port') ? [] : ['--port', '0'])]
        : ['serve', '-m', model, '--port', '0', ...(extra.includes('--kv-type') ? [] : ['--kv-type', 'f32']), ...extra];
    const cmdline = `${SOV_BIN} ${args.join(' ')}`;
    const proc = spawn(SOV_BIN, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
    });
    let err = '';
    let out = '';
    let exitInfo = null;
    const exited = new Promise((resolve) => {
        // 'close', not 'exit': stderr is drained by then (sanitizer reports come last)
        proc.once('close', (code, signal) => { exitInfo = { code, signal }; live.delete(srv); resolve(exitInfo); });
        // a process that could not be spawned never emits 'exit'
        proc.once('error', (e) => { if (proc.pid === undefined) { exitInfo = { code: null, signal: null, error: e.message }; live.delete(srv); resolve(exitInfo); } });
    });
    const srv = {
        proc, exited, cmdline,
        stderr: () => err,
        stdout: () => out,
        exitInfo: () => exitInfo,
        alive: () => exitInfo === null,
        stop: () => stopServer(srv),
    };
    live.add(srv);
    // forgotten servers must not keep this process alive (the exit hook kills them)
    proc.unref();
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (c) => { out += c; if (out.length > STDERR_KEEP) out = out.slice(-STDERR_KEEP); });
    proc.stdout.unref?.();
    proc.stderr.unref?.();
    proc.stderr.setEncoding('utf8');

    try {
        await new Promise((resolve, reject) => {
            let listen = null;
            let buf = ''; // stderr not yet split into lines
            const timer = setTimeout(() => {
                startHung = cmdline;
                fail(`did not print "listening on" and "ready" within ${timeoutMs / 1000} s`);
            }, timeoutMs);
            function done(v) { clearTimeout(timer); cleanup(); resolve(v); }
            function fail(why) {
                clearTimeout(timer); cleanup();
                reject(new Error(`sov serve ${why} (${cmdline}); stderr: ${tail(err).trim() || '(empty)'}`));
            }
            function onData(c) {
                err += c; buf += c;
                if (err.length > STDERR_KEEP) err = err.slice(-STDERR_KEEP);
                let nl;
                while ((nl = buf.indexOf('\n')) >= 0) {
                    const line = buf.slice(0, nl);
                    buf = buf.slice(nl + 1);
                    if (!listen) {
                        const m = /listening on (http:\/\/\S+)/.exec(line);
                        if (m) {
                            listen = { url: m[1], line };
                            // "ready" on the same line, after the address, counts too
                            if (/ready/.test(line.slice(m.index + m[0].length))) return done(listen);
                        }
                    } else if (/ready/.test(line)) {
                        return done(listen);
                    }
                }
            }
            function onExit(code, signal) { fail(`exited (code ${code}, signal ${signal}) before it was ready`); }
            function onError(e) { fail(`could not be started: ${e.message}`); }
            function cleanup() {
                proc.stderr.off('data', onData);
                proc.off('exit', onExit);
                proc.off('error', onError);
                // keep collecting stderr for stderr()
                proc.stderr.on('data', (c) => { err += c; if (err.length > STDERR_KEEP) err = err.slice(-STDERR_KEEP); });
            }
            proc.stderr.on('data', onData);
            proc.once('exit', onExit);
            proc.once('error', onError);
        }).then((listen) => {
            let u;
            try { u = new URL(listen.url.replace(/[.,;:)\]'"]+$/, '')); } catch { throw new Error(`sov serve printed an unparsable address: ${listen.line}`); }
            srv.listenLine = listen.line;
            srv.listenHost = u.hostname;
            srv.port = Number(u.port);
            if (!srv.port) throw new Error(`sov serve printed no port: ${listen.line}`);
            // connect to 127.0.0.1 whatever the line says (tests check the line itself)
            srv.url = `http://127.0.0.1:${srv.port}`;
            srv.baseURL = srv.url + '/v1';
        });
    } catch (e) {
        await stopServer(srv);
        throw e;
    }
    return srv;
}

async function stopServer(srv) {
    const { proc } = srv;
    if (srv.exitInfo()) return { ...srv.exitInfo(), killed: false };
    try { proc.kill('SIGTERM'); } catch { /* already gone */ }
    let timer;
    const t = new Promise((r) => { timer = setTimeout(() => r(null), STOP_TIMEOUT_MS); });
    let info = await Promise.race([srv.exited, t]);
    clearTimeout(timer);
    if (info) return { ...info, killed: false };
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    const t2 = new Promise((r) => { timer = setTimeout(() => r(null), 3000); });
    info = await Promise.race([srv.exited, t2]);
    clearTimeout(timer);
    live.delete(srv);
    return { ...(info ?? { code: null, signal: 'SIGKILL' }), killed: true };
}

/** Stops every server given (ignoring undefined ones), in parallel, and
 * throws (failing the suite's after() hook) unless each one drained and
 * exited 0 on SIGTERM without a sanitizer report on stderr: under
 * `make check` that is where AddressSanitizer / LeakSanitizer / UBSan speak. */
export async function stopAll(...servers) {
    const list = servers.flat().filter(Boolean);
    const infos = await Promise.all(list.map((s) => s.stop()));
    const bad = [];
    list.forEach((s, i) => {
        const info = infos[i];
        const err = s.stderr();
        const san = err.match(/(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)[^\n]*/);
        if (info.killed || info.code !== 0 || san)
            bad.push(`${s.cmdline ?? 'sov serve'}: exit ${info.code} signal ${info.signal}${info.killed ? ' (killed)' : ''}` +
                (san ? `; ${san[0]}` : '') + `; stderr tail: ${err.slice(-600).replace(/\n/g, ' | ')}`);
    });
    if (bad.length) throw new Error(`server did not stop cleanly: ${bad.join(' ;; ')}`);
    return infos;
}

// ---------------------------------------------------------------- clients

/** The official OpenAI client for a server: no retries, 30 s timeout. */
export function client(srv, opts = {}) {
    const { apiKey, timeout, ...rest } = opts;
    return new OpenAI({
        baseURL: srv.baseURL,
        apiKey: apiKey ?? 'none',
        maxRetries: 0,
        timeout: timeout ?? 30000,
        ...rest,
    });
}

/**
 * Raw HTTP request to the server (fetch, 127.0.0.1 only). body: string,
 * Buffer/Uint8Array or an object (sent as JSON). Resolves to {status,
 * headers, text, json} (json undefined when the body is not JSON).
 */
export async function http(srv, method, urlPath, { body, headers = {}, timeoutMs = 30000 } = {}) {
    const h = { ...headers };
    let b = body;
    if (b !== undefined && typeof b === 'object' && !(b instanceof Uint8Array)) {
        b = JSON.stringify(b);
    }
    if (b !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    const res = await fetch(srv.url + urlPath, { method, headers: h, body: b, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, headers: res.headers, text, json };
}

// ---------------------------------------------------------------- expectations

/** The text `sov run` generates greedily for prompt and n tokens (--ignore-eos). */
export function sovRunText(prompt, n, { model = MODEL, extra = [] } = {}) {
    return execFileSync(SOV_BIN, ['run', '-m', model, '-p', prompt, '--temp', '0', '-n', String(n), '--ignore-eos', ...extra], {
        encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20,
    });
}

/** An expected-greedy file: {ids: [...], text} (text: after the '---' line, minus the final newline). */
export function readExpected(name) {
    const s = fs.readFileSync(path.join(MODELS_DIR, name), 'utf8');
    const i = s.indexOf('\n---\n');
    if (i < 0) throw new Error(`${name}: no '---' line`);
    const ids = s.slice(0, i).trim().split(/\s+/).map(Number);
    let text = s.slice(i + 5);
    if (text.endsWith('\n')) text = text.slice(0, -1);
    return { ids, text };
}

/** Checks an OpenAI error body {error:{message,type,param,code}}; returns the error object. */
export function checkErrorBody(assert, json, { type } = {}) {
    assert.ok(json && typeof json === 'object', `error body is not JSON: ${JSON.stringify(json)}`);
    const e = json.error;
    assert.ok(e && typeof e === 'object', `no "error" object in ${JSON.stringify(json)}`);
    assert.equal(typeof e.message, 'string', 'error.message is a string');
    assert.ok(e.message.length > 0, 'error.message is not empty');
    assert.equal(typeof e.type, 'string', 'error.type is a string');
    if (type) assert.equal(e.type, type);
    assert.ok('param' in e, 'error.param is present');
    assert.ok(e.param === null || typeof e.param === 'string', 'error.param is null or a string');
    assert.ok('code' in e, 'error.code is present');
    assert.ok(e.code === null || typeof e.code === 'string', `error.code is null or a string, not ${JSON.stringify(e.code)}`);
    return e;
}

/** Expects promise (or fn()) to reject with an instance of cls; returns the error. */
export async function rejectsWith(assert, p, cls, what = '') {
    try {
        await (typeof p === 'function' ? p() : p);
    } catch (e) {
        assert.ok(e instanceof cls, `${what ? what + ': ' : ''}expected ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
        return e;
    }
    assert.fail(`${what ? what + ': ' : ''}expected ${cls.name}, but the request succeeded`);
}

/** Reads a whole SDK stream: {chunks, text} (text: concatenated choices[0].text or delta.content). */
export async function collectStream(stream) {
    const chunks = [];
    let text = '';
    for await (const c of stream) {
        chunks.push(c);
        const ch = c.choices?.[0];
        if (ch) text += ch.text ?? ch.delta?.content ?? '';
    }
    return { chunks, text };
}

/** Polls fn() every intervalMs until it returns a truthy value or timeoutMs passes; returns the last value. */
export async function poll(fn, { timeoutMs = 5000, intervalMs = 100 } = {}) {
    const end = Date.now() + timeoutMs;
    let v;
    for (;;) {
        try { v = await fn(); } catch (e) { v = undefined; }
        if (v || Date.now() >= end) return v;
        await sleep(intervalMs);
    }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Sum of the samples of one Prometheus metric (any labels) in a text exposition; undefined if absent. */
export function metricValue(text, name) {
    let sum;
    const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm');
    for (const m of text.matchAll(re)) sum = (sum ?? 0) + Number(m[1]);
    return sum;
}

/** Small deterministic PRNG (mulberry32). */
export function rng(seed) {
    let a = seed >>> 0;
    const next = () => {
        a = (a + 0x6D2B79F5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    next.int = (n) => Math.floor(next() * n);
    next.pick = (arr) => arr[Math.floor(next() * arr.length)];
    return next;
}

/** Runs fns (functions returning promises) with at most `limit` in flight; resolves to their settled results in order. */
export async function pool(fns, limit) {
    const results = new Array(fns.length);
    let next = 0;
    async function worker() {
        while (next < fns.length) {
            const i = next++;
            try { results[i] = { status: 'fulfilled', value: await fns[i]() }; } catch (e) { results[i] = { status: 'rejected', reason: e }; }
        }
    }
    await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, worker));
    return results;
}
