// The router of `sov serve --config`: a "workstation" (local backend plus a
// remote openai backend) in front of a "box" (another sov serve), as in
// examples/hybrid.ini. Privacy (local-only never reaches the box, checked on
// the box's own /metrics), overflow, failover when the box dies, the SSE
// error event of a stream that broke, the breaker closing when the box
// returns, streaming through the router, two local models under one memory
// budget, config errors, --check-config and the audit log.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import nodeHttp from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
    startServer, stopAll, client, http, collectStream, poll, sleep, checkErrorBody,
    SOV_BIN, MODEL, MODELS_DIR, MODEL_ID,
} from './lib.mjs';

const T = { timeout: 40000 };
const TINY = path.join(MODELS_DIR, 'llama-2-tiny-random.gguf');
const KEY_LAPTOP = 'rt-laptop-3f9c1d7e2a';
const KEY_HR = 'rt-hr-8b41e6c05d';
// never sent anywhere: only to check that secrets stay out of --check-config
const KEY_BOX = 'rt-box-secret-77a2c9';
const MARK = 'Zebra quilt marker';          // a prompt the audit log must not show
const LONG = 600;                          // tokens of a request that keeps a slot busy a while

// ---------------------------------------------------------------- helpers

function tmpDir() {
    return fs.mkdtempSync(path.join(os.tmpdir(), 'sov-router-'));
}
const rmDir = (d) => { if (d) fs.rmSync(d, { recursive: true, force: true }); };

/** A TCP port free right now on 127.0.0.1. */
function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

const auth = (key = KEY_LAPTOP) => ({ authorization: `Bearer ${key}` });

// X-Request-Id of every generation request a server answered, by its URL
// (for the audit log: one line per request, none more)
const requestIds = new Map();
function gotId(srv, id) {
    if (!id) return;
    if (!requestIds.has(srv.url)) requestIds.set(srv.url, []);
    requestIds.get(srv.url).push(id);
}

/** POST /v1/completions; {status, headers, json, text, backend, reason, id}. */
async function complete(srv, body, { key = KEY_LAPTOP, headers = {}, timeoutMs = 30000 } = {}) {
    const r = await http(srv, 'POST', '/v1/completions', {
        body, headers: { ...(key ? auth(key) : {}), ...headers }, timeoutMs,
    });
    r.backend = r.headers.get('x-sov-backend');
    r.reason = r.headers.get('x-sov-route-reason') ?? '';
    r.id = r.headers.get('x-request-id');
    gotId(srv, r.id);
    return r;
}
const short = (model, extra = {}) => ({ model, prompt: 'Once upon a time', max_tokens: 8, temperature: 0, ...extra });
const long = (model, n = LONG) => ({ model, prompt: 'Once upon a time', max_tokens: n, temperature: 0, ignore_eos: true });

/** Sum of sov_requests_total over the generation endpoints of srv's own /metrics. */
async function genCount(srv, key) {
    const r = await http(srv, 'GET', '/metrics', { headers: key ? auth(key) : {} });
    assert.equal(r.status, 200, `/metrics of ${srv.url}: ${r.status}`);
    let n = 0;
    for (const m of r.text.matchAll(/^sov_requests_total\{([^}]*)\}\s+(\S+)/gm)) {
        const ep = /endpoint="([^"]*)"/.exec(m[1])?.[1];
        if (ep === '/v1/completions' || ep === '/v1/chat/completions') n += Number(m[2]);
    }
    return n;
}

// A server counts a request once its answer is sent, a moment after the
// client has it: reads wait for the expected count, or for a count that
// holds still.
/** Waits (at most 5 s) until srv's generation count is at least want; returns the count. */
async function genCountAtLeast(srv, want) {
    let n;
    await poll(async () => (n = await genCount(srv)) >= want, { timeoutMs: 5000, intervalMs: 50 });
    return n;
}
/** srv's generation count once it has not moved for 300 ms. */
async function genCountSettled(srv) {
    let n = await genCount(srv);
    for (let i = 0; i < 20; i++) {
        await sleep(300);
        const m = await genCount(srv);
        if (m === n) return n;
        n = m;
    }
    return n;
}

async function backends(srv, key = KEY_LAPTOP) {
    const r = await http(srv, 'GET', '/v1/backends', { headers: key ? auth(key) : {} });
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(r.json.data.map((b) => [b.name, b]));
}

/** Keeps `workers` long local-only requests queued on the workstation's
 * parallel = 1 backend until stop(); resolves to their statuses. */
function saturate(srv, alias, workers = 3) {
    let stopped = false;
    const statuses = [];
    const loops = Array.from({ length: workers }, async () => {
        while (!stopped) {
            const r = await complete(srv, long(alias), { timeoutMs: 60000 });
            statuses.push(r.status);
        }
    });
    return {
        statuses,
        stop: async () => { stopped = true; await Promise.all(loops); return statuses; },
    };
}

/** Waits until the local backend name of srv has requests waiting. */
async function waitQueued(srv, name) {
    const ok = await poll(async () => (await backends(srv))[name].queued >= 1, { timeoutMs: 15000, intervalMs: 50 });
    assert.ok(ok, `${name} never had a request waiting: ${JSON.stringify((await backends(srv))[name])}`);
}

/** A streamed POST read as raw SSE text. onText(textSoFar) after each piece. */
async function rawStream(srv, urlPath, body, { headers = {}, timeoutMs = 30000, onText } = {}) {
    const res = await fetch(srv.url + urlPath, {
        method: 'POST', headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
    });
    const dec = new TextDecoder();
    let text = '';
    for await (const piece of res.body) {
        text += dec.decode(piece, { stream: true });
        onText?.(text);
    }
    return { status: res.status, headers: res.headers, text };
}
/** The data: payloads of SSE text, in order. */
const sseData = (text) => text.split(/\r?\n\r?\n/).map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trimStart()).join('\n')).filter((d) => d.length);

/** `sov serve ARGS` expected to fail without starting: {code, signal, stderr, stdout, ms}. */
function runFail(args, { env = {}, timeoutMs = 10000 } = {}) {
    return new Promise((resolve) => {
        const t0 = Date.now();
        const p = spawn(SOV_BIN, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
        let stderr = '', stdout = '';
        p.stderr.setEncoding('utf8').on('data', (c) => { stderr += c; });
        p.stdout.setEncoding('utf8').on('data', (c) => { stdout += c; });
        const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
        p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stderr, stdout, ms: Date.now() - t0 }); });
    });
}

function lineOf(text, needle) {
    const i = text.split('\n').findIndex((l) => l.includes(needle));
    assert.ok(i >= 0, `no line with ${needle}`);
    return i + 1;
}

function workstationIni({ boxPort, audit, spare, budget }) {
    return `; the workstation of tests/api/router.test.mjs
[server]
host = 127.0.0.1
health_interval = 500ms
breaker_failures = 2
breaker_cooldown = 1s
${audit ? `audit_log = ${audit}` : ''}
${budget ? `memory_budget = ${budget}` : ''}

[backend.ws]
type = local
model = ${MODEL}
parallel = 1
ctx_size = 4096
threads = 1
kv_type = f32
keep_alive = 10m

${spare ? `[backend.spare]
type = local
model = ${spare}
parallel = 1
ctx_size = 512
threads = 1
kv_type = f32
` : ''}
[backend.box]
type = openai
url = http://127.0.0.1:${boxPort}/v1
connect_timeout = 1s
first_byte_timeout = 30s
idle_timeout = 10s
health = /health

[model.stories]
backends = ws, box
remote_model = ${MODEL_ID}
overflow_queue = 0

[model.private]
backends = ws
privacy = local-only

[model.big]
backends = box
remote_model = ${MODEL_ID}

[model.mixed]
backends = ws, box
remote_model = ${MODEL_ID}

${spare ? `[model.spare]
backends = spare, box
remote_model = ${MODEL_ID}
` : ''}
[key.laptop]
key_env = RT_KEY_LAPTOP

[key.hr]
key_env = RT_KEY_HR
privacy = local-only
`;
}
const KEY_ENV = { RT_KEY_LAPTOP: KEY_LAPTOP, RT_KEY_HR: KEY_HR };

// ---------------------------------------------------------------- workstation + box

describe('router: workstation and box', { timeout: 150000 }, () => {
    let dir, boxPort, box, box2, ws, ws2, audit, spare;
    const seen = new Map(); // X-Request-Id -> what the client got, for the audit log
    const note = (r, model, key = 'laptop') => { if (r.id) seen.set(r.id, { status: r.status, backend: r.backend, model, key }); return r; };

    before(async () => {
        dir = tmpDir();
        boxPort = await freePort();
        // the box: long contexts, so that one stream can outlast a kill
        box = await startServer(['--port', boxPort, '-c', '65536', '-np', '4', '-t', '1']);
        assert.equal(box.port, boxPort);
        audit = path.join(dir, 'audit.jsonl');
        spare = path.join(dir, 'spare.gguf');
        fs.copyFileSync(MODEL, spare);
        const ini = path.join(dir, 'ws.ini');
        fs.writeFileSync(ini, workstationIni({ boxPort, audit, spare }));
        ws = await startServer(['--config', ini], { model: null, env: KEY_ENV });
        // the same, but its local backend cannot load: a budget of 1 MiB
        const ini2 = path.join(dir, 'ws2.ini');
        fs.writeFileSync(ini2, workstationIni({ boxPort, budget: '1M' }));
        ws2 = await startServer(['--config', ini2], { model: null, env: KEY_ENV });
        // the box is seen up before the tests begin
        assert.ok(await poll(async () => (await backends(ws)).box.health === 'up', { timeoutMs: 10000 }), 'box never up');
    }, T);
    after(async () => {
        try {
            await stopAll(ws, ws2, box2, box?.alive() ? box : undefined);
        } finally {
            rmDir(dir);
        }
    }, T);

    test('models.list() through the router lists every alias with its location', T, async () => {
        const page = await client(ws, { apiKey: KEY_LAPTOP }).models.list();
        const loc = Object.fromEntries(page.data.map((m) => [m.id, m.location]));
        assert.deepEqual(loc, { stories: 'hybrid', private: 'local', big: 'remote', mixed: 'hybrid', spare: 'hybrid' });
        for (const m of page.data) assert.equal(m.object, 'model');
        // answers of the router's own say so
        const r = await http(ws, 'GET', '/v1/models', { headers: auth() });
        assert.equal(r.headers.get('x-sov-backend'), 'router');
        assert.ok(r.headers.get('x-sov-route-reason'), 'X-Sov-Route-Reason');
    });

    test('a request without a key is 401; with one it is routed', T, async () => {
        const r = await complete(ws, short('stories'), { key: null });
        assert.equal(r.status, 401, r.text);
        checkErrorBody(assert, r.json);
        const ok = note(await complete(ws, short('stories')), 'stories');
        assert.equal(ok.status, 200, ok.text);
        assert.equal(ok.backend, 'ws', ok.reason);
        assert.match(ok.id ?? '', /\S/, 'X-Request-Id');
    });

    test('the remote-only alias big reaches the box (X-Sov-Backend box, the box counts it)', T, async () => {
        const before = await genCountSettled(box);
        const r = note(await complete(ws, short('big')), 'big');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.backend, 'box', r.reason);
        assert.ok(r.json.choices[0].text.length > 0, 'some text');
        assert.equal(await genCountAtLeast(box, before + 1), before + 1, 'the box counted one more generation request');
    });

    test('streaming through the router carries what the box streams directly (openai client)', T, async () => {
        const req = { prompt: 'Once upon a time, there was a little', max_tokens: 24, temperature: 0, stream: true };
        const direct = await collectStream(await client(box).completions.create({ ...req, model: MODEL_ID }));
        const viaRouter = async (model) => {
            const { data, response } = await client(ws, { apiKey: KEY_LAPTOP }).completions.create({ ...req, model }).withResponse();
            gotId(ws, response.headers.get('x-request-id'));
            return { ...(await collectStream(data)), backend: response.headers.get('x-sov-backend') };
        };
        const routed = await viaRouter('big');
        assert.equal(routed.backend, 'box');
        const fin = (s) => s.chunks.map((c) => c.choices?.[0]?.finish_reason).filter(Boolean);
        assert.ok(direct.text.length > 0, 'the box streamed some text');
        assert.equal(routed.text, direct.text, 'the same text through the router');
        assert.deepEqual(fin(routed), fin(direct), 'the same finish_reason');
        assert.equal(fin(direct).length, 1, `one finish_reason: ${JSON.stringify(fin(direct))}`);
        // and the local backend (same model, same KV type) streams the same through the router too
        const local = await viaRouter('private');
        assert.equal(local.backend, 'ws');
        assert.equal(local.text, direct.text, 'the local backend streams the same greedy text');
    });

    test('local-only requests never reach the box: alias private, header, key of class local-only', T, async () => {
        const before = await genCountSettled(box);
        const rs = [
            note(await complete(ws, short('private')), 'private'),
            note(await complete(ws, short('stories'), { headers: { 'x-sov-privacy': 'local-only' } }), 'stories'),
            note(await complete(ws, short('stories'), { key: KEY_HR }), 'stories', 'hr'),
        ];
        for (const r of rs) {
            assert.equal(r.status, 200, r.text);
            assert.equal(r.backend, 'ws', r.reason);
            assert.match(r.reason, /privacy/, r.reason);
        }
        // remote-only alias asked to stay local: a 503, not the box
        for (const opt of [{ headers: { 'x-sov-privacy': 'local-only' } }, { key: KEY_HR }]) {
            const r = note(await complete(ws, short('big'), opt), 'big', opt.key ? 'hr' : 'laptop');
            assert.equal(r.status, 503, r.text);
            checkErrorBody(assert, r.json);
        }
        const bad = await complete(ws, short('stories'), { headers: { 'x-sov-privacy': 'nowhere' } });
        assert.equal(bad.status, 400, bad.text);
        assert.equal(await genCountSettled(box), before, 'the box saw none of them');
    });

    test('local-only requests wait for the saturated local backend and still never reach the box', T, async () => {
        const before = await genCountSettled(box);
        const sat = saturate(ws, 'private');
        try {
            await waitQueued(ws, 'ws');
            const rs = await Promise.all([
                complete(ws, short('private')).then((r) => note(r, 'private')),
                complete(ws, short('stories'), { headers: { 'x-sov-privacy': 'local-only' } }).then((r) => note(r, 'stories')),
                complete(ws, short('stories'), { key: KEY_HR }).then((r) => note(r, 'stories', 'hr')),
                complete(ws, short('mixed'), { key: KEY_HR }).then((r) => note(r, 'mixed', 'hr')),
            ]);
            for (const r of rs) {
                assert.ok(r.status === 200 || r.status === 503, `${r.status} ${r.text}`);
                if (r.status === 200) assert.equal(r.backend, 'ws', r.reason);
                assert.match(r.reason, /privacy/, r.reason);
            }
        } finally {
            const st = await sat.stop();
            assert.ok(st.length > 0 && st.every((s) => s === 200), `saturating requests: ${st}`);
        }
        assert.equal(await genCountSettled(box), before, 'the box saw none of them');
    });

    test('saturating the local backend sends eligible requests (stories) to the box: overflow', T, async () => {
        const before = await genCountSettled(box);
        const sat = saturate(ws, 'private');
        let rs;
        try {
            await waitQueued(ws, 'ws');
            rs = await Promise.all(Array.from({ length: 6 }, () => complete(ws, short('stories')).then((r) => note(r, 'stories'))));
        } finally {
            await sat.stop();
        }
        for (const r of rs) assert.equal(r.status, 200, r.text);
        const toBox = rs.filter((r) => r.backend === 'box');
        assert.ok(toBox.length >= 1, `none went to the box: ${rs.map((r) => `${r.backend}: ${r.reason}`).join(' | ')}`);
        for (const r of toBox) assert.match(r.reason, /overflow/, r.reason);
        assert.equal(await genCountAtLeast(box, before + toBox.length), before + toBox.length, 'the box counted each one it answered');
    });

    test('a local backend that cannot load (budget 1M): local-only gets 503, never the box', T, async () => {
        const before = await genCountSettled(box);
        const first = await complete(ws2, short('private'));
        assert.equal(first.status, 503, first.text);
        assert.equal(checkErrorBody(assert, first.json).code, 'model_too_large', first.text);
        const rs = [
            await complete(ws2, short('private')),
            await complete(ws2, short('stories'), { headers: { 'x-sov-privacy': 'local-only' } }),
            await complete(ws2, short('stories'), { key: KEY_HR }),
        ];
        for (const r of rs) {
            assert.equal(r.status, 503, r.text);
            checkErrorBody(assert, r.json);
            assert.notEqual(r.backend, 'box');
        }
        assert.equal(await genCountSettled(box), before, 'the box saw none of them');
        // an eligible request on the same alias does go to the box
        const any = await complete(ws2, short('stories'));
        assert.equal(any.status, 200, any.text);
        assert.equal(any.backend, 'box', any.reason);
        assert.equal(await genCountAtLeast(box, before + 1), before + 1);
    });

    test('a local backend whose model file went away: local-only gets 503, never the box', T, async () => {
        fs.rmSync(spare);
        const ok = await poll(async () => (await backends(ws)).spare.health === 'down', { timeoutMs: 10000 });
        assert.ok(ok, `spare not seen down: ${JSON.stringify((await backends(ws)).spare)}`);
        const before = await genCountSettled(box);
        for (const opt of [{ headers: { 'x-sov-privacy': 'local-only' } }, { key: KEY_HR }, { key: KEY_HR }]) {
            const r = note(await complete(ws, short('spare'), opt), 'spare', opt.key ? 'hr' : 'laptop');
            assert.equal(r.status, 503, r.text);
            checkErrorBody(assert, r.json);
        }
        assert.equal(await genCountSettled(box), before, 'the box saw none of them');
        const any = note(await complete(ws, short('spare')), 'spare');
        assert.equal(any.status, 200, any.text);
        assert.equal(any.backend, 'box', any.reason);
    });

    test('the audit log: one JSON line per request, with the id the client got, and no prompt text', T, async () => {
        const r = note(await complete(ws, { ...short('stories'), prompt: MARK }), 'stories');
        assert.equal(r.status, 200, r.text);
        // lines are written when a request ends, which may be just after the client has its answer
        let lines = [];
        const all = await poll(() => {
            lines = fs.readFileSync(audit, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
            const ids = new Set(lines.map((l) => l.id));
            return [...seen.keys()].every((id) => ids.has(id));
        }, { timeoutMs: 5000 });
        assert.ok(all, `ids missing from the audit log: ${[...seen.keys()].filter((id) => !lines.some((l) => l.id === id))}`);
        const byId = new Map();
        for (const l of lines) {
            for (const f of ['time', 'id', 'key', 'model', 'backend', 'reason', 'status', 'tokens_in', 'tokens_out', 'latency_ms'])
                assert.ok(f in l, `field ${f} missing in ${JSON.stringify(l)}`);
            assert.ok(!Number.isNaN(Date.parse(l.time)), `time ${l.time}`);
            assert.equal(typeof l.latency_ms, 'number');
            assert.ok(!byId.has(l.id), `id ${l.id} on two lines`);
            byId.set(l.id, l);
        }
        for (const [id, want] of seen) {
            const l = byId.get(id);
            assert.equal(l.status, want.status, `status of ${id}`);
            assert.equal(l.model, want.model, `model of ${id}`);
            assert.equal(l.backend, want.backend, `backend of ${id}`);
            assert.equal(l.key, want.key, `key of ${id}`);
            if (want.status === 200) {
                assert.ok(l.tokens_in > 0, `tokens_in of ${id}: ${l.tokens_in}`);
                assert.ok(l.tokens_out > 0, `tokens_out of ${id}: ${l.tokens_out}`);
            }
        }
        // one line per request the workstation answered, and none more
        const got = requestIds.get(ws.url) ?? [];
        assert.equal(new Set(got).size, got.length, 'X-Request-Id values are unique');
        assert.deepEqual([...byId.keys()].sort(), [...got].sort(), 'the audit ids are the ids the clients got');
        const text = fs.readFileSync(audit, 'utf8');
        assert.ok(!text.includes(MARK), 'the prompt text is not in the audit log');
        assert.ok(!text.includes(KEY_LAPTOP) && !text.includes(KEY_HR), 'no key secret in the audit log');
    });

    test('killing the box mid-run: failover to local, a clean SSE error event, 502/503 for big, breaker open', T, async () => {
        const sat = saturate(ws, 'private');
        let stream, pending, after, rs;
        try {
            await waitQueued(ws, 'ws');
            // a long stream on big, and long non-streamed requests on stories (overflowing to the box)
            let events = 0;
            stream = rawStream(ws, '/v1/completions', { ...long('big', 12000), stream: true }, {
                headers: auth(), timeoutMs: 30000, onText: (t) => { events = sseData(t).length; },
            });
            pending = Array.from({ length: 2 }, () => complete(ws, long('stories', 1500), { timeoutMs: 60000 }));
            const ready = await poll(async () => events >= 3 && (await backends(ws)).box.in_flight >= 3, { timeoutMs: 15000, intervalMs: 25 });
            assert.ok(ready, `not under way: ${events} events, box ${JSON.stringify((await backends(ws)).box)}`);
            box.proc.kill('SIGKILL');
            await box.exited;
            // new eligible requests while the local backend is still saturated: the box is tried (or skipped) and ws answers
            const afterP = Promise.all(Array.from({ length: 3 }, () => complete(ws, short('stories'))));

            // the stream that had begun ends with an error event, then [DONE]
            const s = await stream;
            assert.equal(s.status, 200);
            assert.equal(s.headers.get('x-sov-backend'), 'box');
            const data = sseData(s.text);
            assert.ok(data.length >= 5, `${data.length} events`);
            assert.equal(data.at(-1), '[DONE]', `last event: ${data.at(-1)}`);
            const errEv = JSON.parse(data.at(-2));
            checkErrorBody(assert, errEv);
            for (const d of data.slice(0, -2)) assert.ok(JSON.parse(d).choices, `a completion chunk: ${d.slice(0, 200)}`);
            assert.ok(!data.slice(0, -2).some((d) => d.includes('"finish_reason":"length"')), 'it had not finished');
            after = await afterP;
        } finally {
            await sat.stop();
            // the non-streamed ones the box was working on fail over (nothing was sent yet)
            rs = await Promise.all(pending ?? []);
        }
        for (const r of rs) {
            assert.equal(r.status, 200, r.text);
            assert.equal(r.backend, 'ws', r.reason);
            assert.match(r.reason, /failover|box failed/, r.reason);
        }
        for (const r of after) {
            assert.equal(r.status, 200, r.text);
            assert.equal(r.backend, 'ws', r.reason);
            assert.match(r.reason, /failover|box failed|skipped box/, r.reason);
        }
        // big has no other backend: a clear error
        for (let i = 0; i < 3; i++) {
            const r = await complete(ws, short('big'));
            assert.ok(r.status === 502 || r.status === 503, `${r.status} ${r.text}`);
            checkErrorBody(assert, r.json);
        }
        const down = await poll(async () => { const b = (await backends(ws)).box; return b.health === 'down' && b.breaker !== 'closed'; },
            { timeoutMs: 10000 });
        assert.ok(down, `box not seen down with an open breaker: ${JSON.stringify((await backends(ws)).box)}`);
        assert.ok((await backends(ws)).box.breaker_opens >= 1, 'the breaker opened');
    });

    test('the box returns on the same port: the breaker closes and big reaches it again', T, async () => {
        box2 = await startServer(['--port', boxPort, '-t', '1']);
        const before = await genCountSettled(box2);
        let last;
        const ok = await poll(async () => {
            last = await complete(ws, short('big'));
            return last.status === 200 && last.backend === 'box';
        }, { timeoutMs: 20000, intervalMs: 250 });
        assert.ok(ok, `big never reached the new box: ${last?.status} ${last?.backend} ${last?.reason} ${last?.text}`);
        assert.ok(await genCountAtLeast(box2, before + 1) > before, 'the new box counted it');
        const closed = await poll(async () => { const b = (await backends(ws)).box; return b.breaker === 'closed' && b.health === 'up'; },
            { timeoutMs: 5000 });
        assert.ok(closed, `breaker not closed: ${JSON.stringify((await backends(ws)).box)}`);
    });

    // the only way to stop the local backend is to stop the whole server (a drain)
    test('a draining workstation: new local-only requests get 503, never the box; the running one ends; exit 0', T, async () => {
        const before = await genCountSettled(box2);
        const running = complete(ws, long('private', 2000), { timeoutMs: 60000 });
        const busy = await poll(async () => (await backends(ws)).ws.running >= 1, { timeoutMs: 10000, intervalMs: 50 });
        assert.ok(busy, 'the long request never ran');
        ws.proc.kill('SIGTERM');
        const draining = await poll(async () => (await http(ws, 'GET', '/health')).status === 503, { timeoutMs: 5000, intervalMs: 50 });
        assert.ok(draining, '/health never said draining');
        const rs = [
            await complete(ws, short('private')),
            await complete(ws, short('stories'), { headers: { 'x-sov-privacy': 'local-only' } }),
            await complete(ws, short('stories'), { key: KEY_HR }),
        ];
        for (const r of rs) {
            assert.equal(r.status, 503, r.text);
            assert.equal(checkErrorBody(assert, r.json).code, 'shutting_down', r.text);
        }
        const r = await running;
        assert.equal(r.status, 200, r.text);
        assert.equal(r.backend, 'ws');
        let timer;
        const info = await Promise.race([ws.exited, new Promise((res) => { timer = setTimeout(() => res(null), 15000); })]);
        clearTimeout(timer);
        assert.ok(info, 'the workstation did not exit within 15 s of SIGTERM');
        assert.equal(info.code, 0, ws.stderr().slice(-500));
        assert.equal(await genCountSettled(box2), before, 'the box saw none of them');
    });
});

// ---------------------------------------------------------------- two local models, one budget

describe('router: two local models under a budget that holds one', { timeout: 90000 }, () => {
    let dir, srv;
    const ini = (budget) => `[server]
${budget ? `memory_budget = ${budget}` : ''}
health_interval = 1s

[backend.a]
type = local
model = ${MODEL}
parallel = 2
threads = 1
keep_alive = 10m

[backend.b]
type = local
model = ${TINY}
parallel = 2
threads = 1
keep_alive = 10m

[model.a]
backends = a

[model.b]
backends = b
`;
    before(() => { dir = tmpDir(); });
    after(async () => { try { await stopAll(srv); } finally { rmDir(dir); } }, T);

    test('alternating a, b, a, b, a, b: all 200, each load unloads the other', T, async () => {
        // what each needs, from a server with room for both
        const f1 = path.join(dir, 'room.ini');
        fs.writeFileSync(f1, ini(null));
        let s1 = await startServer(['--config', f1], { model: null });
        let need;
        try {
            for (const m of ['a', 'b']) assert.equal((await complete(s1, short(m), { key: null })).status, 200);
            const bs = await backends(s1, null);
            assert.ok(bs.a.loaded && bs.b.loaded, 'both loaded with room for both');
            need = { a: bs.a.memory_bytes, b: bs.b.memory_bytes };
        } finally {
            await stopAll(s1);
        }
        assert.ok(need.a > 0 && need.b > 0, `memory_bytes: ${JSON.stringify(need)}`);
        const big = Math.max(need.a, need.b), small = Math.min(need.a, need.b);
        const budget = Math.min(Math.round(big * 1.3), big + Math.floor(small / 2));
        assert.ok(budget >= big && budget < need.a + need.b, `budget ${budget} for ${JSON.stringify(need)}`);

        const f2 = path.join(dir, 'tight.ini');
        fs.writeFileSync(f2, ini(String(budget)));
        srv = await startServer(['--config', f2], { model: null });
        const order = ['a', 'b', 'a', 'b', 'a', 'b'];
        for (const m of order) {
            const r = await complete(srv, short(m), { key: null });
            assert.equal(r.status, 200, `${m}: ${r.text}`);
            assert.equal(r.backend, m);
            const bs = await backends(srv, null);
            const other = m === 'a' ? 'b' : 'a';
            assert.equal(bs[m].loaded, true, `${m} loaded after its request`);
            assert.equal(bs[other].loaded, false, `${other} unloaded to make room for ${m}`);
        }
        const metrics = (await http(srv, 'GET', '/metrics')).text;
        assert.match(metrics, /^sov_backend_loaded\{backend="b"[^}]*\} 1$/m);
        assert.match(metrics, /^sov_backend_loaded\{backend="a"[^}]*\} 0$/m);
        const unloads = (srv.stderr().match(/\[(a|b)\] unloaded/g) ?? []).length;
        assert.equal(unloads, order.length - 1, `unloaded lines: ${unloads}`);
    });
});

// ---------------------------------------------------------------- config files

describe('router: config files', { timeout: 60000 }, () => {
    // made here, not in before(): the cases below name files in it
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'not.gguf'), 'this is not a GGUF file\n');
    after(() => rmDir(dir));

    const local = (name, model = MODEL) => `[backend.${name}]\ntype = local\nmodel = ${model}\n`;
    const cases = [
        { what: 'a backend without type', key: 'type', at: '[backend.a]',
            ini: `[backend.a]\nmodel = ${MODEL}\n\n[model.x]\nbackends = a\n` },
        { what: 'a model without backends', key: 'backends', at: '[model.x]',
            ini: `${local('a')}\n[model.x]\nprivacy = local-only\n` },
        { what: 'an unknown backend in backends =', key: 'backends', at: 'backends = a, nope', also: 'nope',
            ini: `${local('a')}\n[model.x]\nbackends = a, nope\n` },
        { what: 'a duplicate alias', key: 'model.x', at: '[model.x]', nth: 2,
            ini: `${local('a')}\n[model.x]\nbackends = a\n\n[model.x]\nbackends = a\n` },
        { what: 'a GGUF path that does not exist', key: 'model', at: 'model =', also: 'nonexistent',
            ini: `${local('a', path.join(dir, 'nonexistent.gguf'))}\n[model.x]\nbackends = a\n` },
        { what: 'a model file that is not a GGUF', key: 'model', at: 'model =', also: 'not.gguf',
            ini: `${local('a', path.join(dir, 'not.gguf'))}\n[model.x]\nbackends = a\n` },
        { what: 'url = ftp://x', key: 'url', at: 'url =', also: 'ftp://x',
            ini: `[backend.r]\ntype = openai\nurl = ftp://x\n\n[model.x]\nbackends = r\n` },
        { what: 'url = not a url', key: 'url', at: 'url =', also: 'not a url',
            ini: `[backend.r]\ntype = openai\nurl = not a url\n\n[model.x]\nbackends = r\n` },
    ];

    for (const [i, c] of cases.entries()) {
        test(`bad config: ${c.what}: one error line (file, line, key), non-zero exit, nothing started`, T, async () => {
            const f = path.join(dir, `bad${i}.ini`);
            fs.writeFileSync(f, c.ini);
            const lines = c.ini.split('\n');
            let line = 0;
            for (let k = 0, hits = 0; k < lines.length; k++) {
                if (lines[k].startsWith(c.at) && ++hits === (c.nth ?? 1)) { line = k + 1; break; }
            }
            assert.ok(line > 0);
            for (const args of [['--config', f, '--check-config'], ['--config', f, '--port', '0']]) {
                const r = await runFail(args);
                const what = `sov serve ${args.join(' ')}`;
                assert.equal(r.signal, null, `${what} did not exit by itself within 10 s`);
                assert.notEqual(r.code, 0, `${what} exited 0`);
                assert.ok(r.ms < 5000, `${what} took ${r.ms} ms`);
                const errLines = r.stderr.split('\n').filter((l) => l.trim());
                assert.equal(errLines.length, 1, `${what}: stderr ${JSON.stringify(r.stderr)}`);
                const msg = errLines[0];
                assert.ok(!/listening on/.test(r.stderr + r.stdout), `${what} started listening`);
                assert.ok(msg.includes(`${f}:${line}:`), `${what}: no ${f}:${line}: in ${msg}`);
                assert.ok(msg.includes(c.key), `${what}: no ${c.key} in ${msg}`);
                if (c.also) assert.ok(msg.includes(c.also), `${what}: no ${c.also} in ${msg}`);
            }
        });
    }

    test('--check-config on a good file prints the routing table, exits 0, shows no secret', T, async () => {
        const f = path.join(dir, 'good.ini');
        const text = workstationIni({ boxPort: 9, audit: path.join(dir, 'a.jsonl') })
            .replace('health = /health', 'health = /health\napi_key_env = RT_KEY_BOX');
        fs.writeFileSync(f, text);
        const r = await runFail(['--config', f, '--check-config'], { env: { ...KEY_ENV, RT_KEY_BOX: KEY_BOX } });
        assert.equal(r.code, 0, r.stderr);
        const out = r.stdout + r.stderr;
        assert.ok(!/listening on/.test(out), 'nothing started');
        for (const s of [KEY_LAPTOP, KEY_HR, KEY_BOX]) assert.ok(!out.includes(s), 'a secret value was printed');
        // every alias, followed by its backends in order
        const table = { stories: ['ws', 'box'], private: ['ws'], big: ['box'], mixed: ['ws', 'box'] };
        const lines = r.stdout.split('\n');
        for (const [alias, bs] of Object.entries(table)) {
            const at = lines.findIndex((l) => new RegExp(`^\\S*\\s*${alias}\\b`).test(l) && !/^\s/.test(l));
            assert.ok(at >= 0, `no line for alias ${alias} in:\n${r.stdout}`);
            const rest = lines.slice(at + 1);
            const end = rest.findIndex((l) => !/^\s/.test(l));
            const block = rest.slice(0, end < 0 ? rest.length : end);
            assert.deepEqual(block.map((l) => bs.find((b) => new RegExp(`\\b${b}\\b`).test(l))), bs,
                `backends of ${alias}: ${JSON.stringify(block)}`);
        }
        // the keys by name and class, never their values
        assert.match(r.stdout, /\blaptop\b/);
        assert.match(r.stdout, /\bhr\b.*local-only/);
    });
});

// ---------------------------------------------------------------- --log-prompts

describe('router: audit log with --log-prompts', { timeout: 60000 }, () => {
    let dir, srv, logf, port;
    before(async () => {
        dir = tmpDir();
        logf = path.join(dir, 'audit.jsonl');
        const f = path.join(dir, 'one.ini');
        port = await freePort();
        fs.writeFileSync(f, `[server]\nport = ${port}\n\n[backend.l]\ntype = local\nmodel = ${MODEL}\nparallel = 1\nthreads = 1\n\n[model.m]\nbackends = l\n`);
        srv = await startServer(['--config', f, '--audit-log', logf, '--log-prompts'], { model: null });
    }, T);
    after(async () => { try { await stopAll(srv); } finally { rmDir(dir); } }, T);

    test('--port on the command line wins over [server] port', T, () => {
        assert.notEqual(srv.port, port);
    });

    test('with --log-prompts the request is in its audit line', T, async () => {
        const r = await complete(srv, { ...short('m'), prompt: MARK }, { key: null });
        assert.equal(r.status, 200, r.text);
        let line;
        const ok = await poll(() => {
            line = fs.readFileSync(logf, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.id === r.id);
            return line;
        }, { timeoutMs: 5000 });
        assert.ok(ok, 'no audit line for the request');
        assert.equal(line.key, '-');
        assert.equal(line.backend, 'l');
        assert.ok(JSON.stringify(line).includes(MARK), `the prompt in ${JSON.stringify(line)}`);
    });
});

// ---------------------------------------------------------------- an upstream that breaks inside an event

describe('router: an upstream stream that breaks inside an event', { timeout: 60000 }, () => {
    let dir, srv, up;
    const chunk = (text) => JSON.stringify({ id: 'cmpl-fake', object: 'text_completion', created: 1, model: 'fake',
        choices: [{ text, index: 0, logprobs: null, finish_reason: null }] });
    before(async () => {
        dir = tmpDir();
        // a fake OpenAI server: two whole events, then (prompt "half") half of a
        // third and the connection drops, or (prompt "end") the answer ends
        // there, cleanly, without its last chunk or [DONE]
        up = nodeHttp.createServer((req, res) => {
            if (req.method === 'GET') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"ok"}'); return; }
            let body = '';
            req.on('data', (c) => { body += c; });
            req.on('end', () => {
                const { prompt } = JSON.parse(body);
                res.writeHead(200, { 'content-type': 'text/event-stream' });
                res.write(`data: ${chunk('Once')}\n\ndata: ${chunk(' upon')}\n\n`);
                if (prompt === 'end') res.end();
                else res.write(`data: ${chunk(' a time').slice(0, 40)}`, () => setTimeout(() => res.socket.destroy(), 100));
            });
        });
        await new Promise((r) => up.listen(0, '127.0.0.1', r));
        const f = path.join(dir, 'fake.ini');
        fs.writeFileSync(f, `[backend.fake]\ntype = openai\nurl = http://127.0.0.1:${up.address().port}/v1\n\n[model.f]\nbackends = fake\n`);
        srv = await startServer(['--config', f], { model: null });
    }, T);
    after(async () => {
        try { await stopAll(srv); } finally { up?.closeAllConnections?.(); up?.close(); rmDir(dir); }
    }, T);

    test('the client gets the whole events, then an error event and [DONE]: no broken event', T, async () => {
        const s = await rawStream(srv, '/v1/completions', { model: 'f', prompt: 'half', stream: true });
        assert.equal(s.status, 200);
        assert.equal(s.headers.get('x-sov-backend'), 'fake');
        const data = sseData(s.text);
        assert.equal(data.at(-1), '[DONE]', s.text);
        checkErrorBody(assert, JSON.parse(data.at(-2)));
        const texts = data.slice(0, -2).map((d) => {
            let o;
            assert.doesNotThrow(() => { o = JSON.parse(d); }, `an event that is not JSON: ${JSON.stringify(d)}`);
            return o.choices[0].text;
        });
        assert.deepEqual(texts, ['Once', ' upon']);
    });

    test('the openai client sees the error the router sent, not a parse failure', T, async () => {
        const oa = client(srv);
        let text = '', err;
        try {
            for await (const c of await oa.completions.create({ model: 'f', prompt: 'half', stream: true })) text += c.choices?.[0]?.text ?? '';
        } catch (e) { err = e; }
        assert.equal(text, 'Once upon');
        assert.ok(err, 'the stream ended in an error');
        assert.ok(!(err instanceof SyntaxError), `a JSON parse error: ${err?.message}`);
        assert.match(String(err?.message), /fake/, `the router's message: ${err?.message}`);
    });

    test('an answer that ends without its end (no finish_reason, no [DONE]) is not a silent truncation', T, async () => {
        const s = await rawStream(srv, '/v1/completions', { model: 'f', prompt: 'end', stream: true });
        assert.equal(s.status, 200);
        const data = sseData(s.text);
        assert.deepEqual(data.slice(0, 2).map((d) => JSON.parse(d).choices[0].text), ['Once', ' upon']);
        assert.equal(data.length, 4, s.text);
        checkErrorBody(assert, JSON.parse(data[2]));
        assert.equal(data[3], '[DONE]');
    });
});
