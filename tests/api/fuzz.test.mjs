// Fuzz: 1,000 mutated request bodies (from valid completions/chat bodies
// with max_tokens <= 4) POSTed with fetch, 8 at a time. A mutant that is
// still a JSON object also gets one known field poisoned (wrong type or
// range), so every body is a bad request. No connection error, no 5xx, no
// 2xx: a body that is not valid JSON gets exactly 400, every other one a
// 4xx; every 4xx carries an OpenAI error body. The server is
// alive at the end (-c 1024 over 4 slots bounds what a body without
// max_tokens generates). SOV_FUZZ_SEED / SOV_FUZZ_N change the seed / count.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopAll, http, rng, pool, MODEL_ID } from './lib.mjs';

const N = Number(process.env.SOV_FUZZ_N || 1000);
const SEED = Number(process.env.SOV_FUZZ_SEED || 20240601);
const CONCURRENCY = 8;
const MAX_LEN = 8000; // well under any default body limit: a 413 would hide the 400 the test wants

const BASES = [
    ['/v1/completions', { model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 }],
    ['/v1/completions', { model: MODEL_ID, prompt: 'Hi', max_tokens: 2, temperature: 0.7, top_p: 0.9, seed: 1, stop: ['.'], logprobs: 1 }],
    ['/v1/completions', { model: MODEL_ID, prompt: 'The cat', max_tokens: 3, stream: true, stream_options: { include_usage: true }, ignore_eos: true }],
    ['/v1/completions', { model: MODEL_ID, prompt: ['Lily'], max_tokens: 1, frequency_penalty: 0.5, presence_penalty: 0.1, logit_bias: { 261: 2 } }],
    ['/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 3 }],
    ['/v1/chat/completions', {
        model: MODEL_ID,
        messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi there' }] }],
        max_completion_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2,
    }],
    ['/v1/chat/completions', {
        model: MODEL_ID,
        messages: [{ role: 'user', content: 'Tell me' }, { role: 'assistant', content: 'A story?' }, { role: 'user', content: 'Yes' }],
        max_tokens: 2, stream: true, stop: 'x', seed: 7,
    }],
];

const JUNK = ['{', '}', '[', ']', ',', ':', '"', '\\', 'null', 'true', '-', '1e999', '\u0000', '\\u', '\\ud800', '\n', ' ', '0x1F', 'NaN', '//', '/*', "'"];
const VALUES = [null, true, false, 0, -1, 1.5, -0.5, 'str', '', [], {}, [1, 'a'], { a: 1 }, 1e308, -1e308, 2 ** 53 + 1, 5e-324, 4, 'stories260K', ['x', 'y'], [{ role: 'user', content: 'x' }]];
const HUGE_LITERALS = ['1' + '9'.repeat(400), '-' + '9'.repeat(40), '1e400', '-1e400', '1e-400', '9223372036854775808', '-9223372036854775809', '18446744073709551616', '0.' + '0'.repeat(300) + '1', '1E+99999'];

function randomUnicode(rand) {
    const ranges = [[0x20, 0x7e], [0xa0, 0x2ff], [0x300, 0x36f], [0x590, 0x6ff], [0x3040, 0x30ff], [0x4e00, 0x9fff],
        [0xfe00, 0xfeff], [0xfff0, 0xffff], [0x1f300, 0x1faff], [0x10000, 0x10ffff], [0xd800, 0xdfff], [0, 0x1f]];
    const [lo, hi] = rand.pick(ranges);
    let s = '';
    for (let k = 1 + rand.int(6); k > 0; k--) s += String.fromCodePoint(lo + rand.int(hi - lo + 1));
    return s; // lone surrogates become U+FFFD in UTF-8 (Buffer.from)
}

// all paths into a JSON value (arrays of keys)
function paths(v, p = [], out = []) {
    if (p.length) out.push(p);
    if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k], [...p, Array.isArray(v) ? Number(k) : k], out);
    return out;
}
function setPath(obj, p, val) {
    let o = obj;
    for (let i = 0; i < p.length - 1; i++) o = o[p[i]];
    o[p[p.length - 1]] = val;
}
function delPath(obj, p) {
    let o = obj;
    for (let i = 0; i < p.length - 1; i++) o = o[p[i]];
    if (Array.isArray(o)) o.splice(p[p.length - 1], 1); else delete o[p[p.length - 1]];
}

const RAW = '\u0001RAW\u0001';
const PLACEHOLDER = JSON.stringify(RAW); // where a raw literal goes in the serialized body

// structural mutations: on the object, serialized with possibly a raw literal spliced in
function mutateStructure(rand, obj, kinds) {
    const o = structuredClone(obj);
    const ps = paths(o);
    const p = rand.pick(ps);
    let raw = null;
    const k = rand.int(5);
    if (k === 0) { kinds.push('type swap'); setPath(o, p, structuredClone(rand.pick(VALUES))); }
    else if (k === 1) { kinds.push('huge number'); setPath(o, p, RAW); raw = rand.pick(HUGE_LITERALS); }
    else if (k === 2) {
        kinds.push('deep nesting');
        const arr = rand() < 0.6;
        const depth = arr ? 10 + rand.int(3000) : 10 + rand.int(1200);
        raw = arr ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
        if (rand() < 0.2) { return arr ? `[${'['.repeat(depth)}${JSON.stringify(o)}${']'.repeat(depth)}]` : '{"a":'.repeat(depth) + JSON.stringify(o) + '}'.repeat(depth); }
        setPath(o, p, RAW);
    } else if (k === 3) { kinds.push('delete field'); delPath(o, p); }
    else { kinds.push('unicode value'); setPath(o, p, randomUnicode(rand) + (rand() < 0.5 ? 'x'.repeat(rand.int(50)) : '')); }
    let s = JSON.stringify(o);
    if (raw !== null) s = s.replace(PLACEHOLDER, raw);
    return s;
}

// byte-level mutations
function mutateBytes(rand, buf, kinds) {
    const k = rand.int(5);
    const at = rand.int(buf.length + 1);
    if (k === 0) {
        kinds.push('byte flip');
        const b = Buffer.from(buf);
        for (let n = 1 + rand.int(3); n > 0 && b.length; n--) b[rand.int(b.length)] = rand() < 0.5 ? rand.int(256) : b[rand.int(b.length)] ^ (1 << rand.int(8));
        return b;
    }
    if (k === 1) { kinds.push('truncate'); return buf.subarray(0, rand.int(buf.length)); }
    if (k === 2) {
        kinds.push('insert junk');
        const j = rand() < 0.3 ? Buffer.from(Array.from({ length: 1 + rand.int(8) }, () => rand.int(256))) : Buffer.from(rand.pick(JUNK));
        return Buffer.concat([buf.subarray(0, at), j, buf.subarray(at)]);
    }
    if (k === 3) {
        kinds.push('delete chars');
        const n = 1 + rand.int(5);
        return Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + n))]);
    }
    kinds.push('insert unicode');
    return Buffer.concat([buf.subarray(0, at), Buffer.from(randomUnicode(rand), 'utf8'), buf.subarray(at)]);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// a known field with a value of the wrong type or out of range (each one a 400)
const POISON = [
    ['max_tokens', 'x'], ['max_tokens', 0], ['temperature', 5], ['temperature', 'hot'], ['n', 3], ['top_p', -1],
    ['stream', 'yes'], ['stop', 5], ['stop', ['a', 'b', 'c', 'd', 'e']], ['seed', 'a'], ['logit_bias', [1]],
    ['logit_bias', { 999999: 1 }], ['model', 42], ['presence_penalty', 3], ['frequency_penalty', {}],
    ['logprobs', 'many'], ['user', 7], ['stream_options', 1],
];
const POISON_CHAT = [['messages', 7], ['messages', []], ['top_logprobs', 99], ['max_completion_tokens', -2]];
const POISON_COMPLETIONS = [['prompt', {}], ['prompt', [1e9]], ['logprobs', 9]];
function isJson(buf) {
    try { JSON.parse(strictUtf8.decode(buf)); return true; } catch { return false; }
}

function makeCase(rand, i) {
    let [path, base] = BASES[i % BASES.length];
    if (rand() < 0.1) path = path === '/v1/completions' ? '/v1/chat/completions' : '/v1/completions';
    const kinds = [];
    let body;
    const mode = rand.int(3); // 0: structure only, 1: bytes only, 2: both
    if (mode !== 1) body = Buffer.from(mutateStructure(rand, base, kinds), 'utf8');
    else body = Buffer.from(JSON.stringify(base), 'utf8');
    if (mode !== 0) for (let n = 1 + rand.int(2); n > 0; n--) body = mutateBytes(rand, body, kinds);
    if (body.length > MAX_LEN) { body = body.subarray(0, MAX_LEN); kinds.push('capped'); }
    // a mutant that is still a JSON object may still be a valid request:
    // one known field then gets a value of the wrong type or range, so every
    // body is a bad request and must get a 4xx
    if (isJson(body)) {
        const o = JSON.parse(strictUtf8.decode(body));
        if (o && typeof o === 'object' && !Array.isArray(o)) {
            const [k, v] = rand.pick([...POISON, ...(path === '/v1/chat/completions' ? POISON_CHAT : POISON_COMPLETIONS)]);
            o[k] = structuredClone(v);
            kinds.push(`poison ${k}`);
            body = Buffer.from(JSON.stringify(o), 'utf8');
        }
    }
    return { i, path, body, kinds, json: isJson(body) };
}

const show = (c) => `#${c.i} ${c.path} [${c.kinds.join(', ')}] ${JSON.stringify(c.body.toString('latin1').slice(0, 160))}`;

describe('fuzz', { timeout: 150000 }, () => {
    let srv;
    before(async () => { srv = await startServer(['-np', '4', '-c', '1024', '--chat-template', 'llama2']); }, { timeout: 30000 });
    after(() => stopAll(srv), { timeout: 30000 });

    test(`${N} mutated bodies: 4xx answers only (invalid JSON is 400), each an OpenAI error; no connection error`, { timeout: 140000 }, async (t) => {
        const rand = rng(SEED);
        const cases = Array.from({ length: N }, (_, i) => makeCase(rand, i));
        const failures = [];
        const fail = (c, why) => failures.push(`${why}: ${show(c)}`);
        const status = { invalid: {}, valid: {} };
        const results = await pool(cases.map((c) => async () => {
            let r;
            try {
                r = await http(srv, 'POST', c.path, { body: c.body, timeoutMs: 30000 });
            } catch (e) {
                fail(c, `connection error ${e?.cause?.code ?? ''} ${e?.message}`);
                return;
            }
            const bucket = c.json ? status.valid : status.invalid;
            bucket[r.status] = (bucket[r.status] ?? 0) + 1;
            if (r.status >= 500) fail(c, `status ${r.status} ${r.text.slice(0, 120)}`);
            else if (!c.json && r.status !== 400) fail(c, `not JSON, yet status ${r.status}`);
            else if (!(r.status >= 400 && r.status < 500)) fail(c, `a bad request, yet status ${r.status}`);
            if (r.status >= 400 && r.status < 500 && !(r.json?.error && typeof r.json.error.message === 'string')) {
                fail(c, `status ${r.status} without an OpenAI error body: ${r.text.slice(0, 120)}`);
            }
        }), CONCURRENCY);
        assert.equal(results.length, N);
        const nInvalid = cases.filter((c) => !c.json).length;
        t.diagnostic(`fuzz seed ${SEED}: ${N} bodies, ${nInvalid} not JSON -> ${JSON.stringify(status.invalid)}, ${N - nInvalid} JSON -> ${JSON.stringify(status.valid)}`);
        assert.ok(nInvalid > N / 5 && N - nInvalid > N / 5, `${nInvalid} invalid of ${N}: the mutations are unbalanced`);
        assert.ok(srv.alive(), `the server exited: ${JSON.stringify(srv.exitInfo())}; stderr: ${srv.stderr().slice(-500)}`);
        assert.equal(failures.length, 0, `${failures.length} failures (seed ${SEED}); first: ${failures.slice(0, 3).join(' || ')}`);
        const h = await http(srv, 'GET', '/health', { timeoutMs: 5000 });
        assert.equal(h.status, 200);
    });
});
