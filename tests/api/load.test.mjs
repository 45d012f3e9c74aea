// Load: 32 concurrent clients for ~20 s against one server (-np 4): most
// stream completions whose text must equal the same request's text computed
// beforehand one at a time; the rest abort mid-stream, send malformed JSON,
// oversize bodies or garbage bytes over a raw socket. Afterwards the server
// is healthy and idle (no active slot, empty queue).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
    startServer, stopAll, client, http, poll, metricValue, rng, OpenAI, MODEL_ID,
} from './lib.mjs';

const CLIENTS = 32;
const DURATION_MS = Number(process.env.SOV_LOAD_SECONDS || 20) * 1000;
const MAX_BODY = 65536;
const SEED = Number(process.env.SOV_LOAD_SEED || 1234);

const PROMPTS = ['Once upon a time', 'Lily and Ben', 'The sun was', 'One day a little', 'Tim had a red',
    'The cat sat', 'Mom said', 'A big dog', 'In the park', 'Sara liked to'];
// completions and chat requests, their expected text computed before the load
const REQS = [];
PROMPTS.forEach((p, i) => {
    REQS.push({ kind: 'completion', body: { model: MODEL_ID, prompt: p, max_tokens: 24 + 8 * (i % 4), temperature: 0, ignore_eos: true } });
    if (i % 2 === 0) {
        REQS.push({ kind: 'chat', body: { model: MODEL_ID, messages: [{ role: 'user', content: p }], max_tokens: 32, temperature: 0, ignore_eos: true } });
    }
    if (i % 3 === 0) {
        REQS.push({ kind: 'completion', body: { model: MODEL_ID, prompt: p, max_tokens: 32, temperature: 0.8, seed: 100 + i, ignore_eos: true } });
    }
});

async function once(oa, r) {
    if (r.kind === 'chat') return (await oa.chat.completions.create(r.body)).choices[0].message.content;
    return (await oa.completions.create(r.body)).choices[0].text;
}

function garbage(rand) {
    const pick = rand.int(4);
    if (pick === 0) return Buffer.from(Array.from({ length: 1 + rand.int(600) }, () => rand.int(256)));
    if (pick === 1) return Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999\r\n\r\n{"model":');
    if (pick === 2) return Buffer.from('GET /\x00\xff HTTP/9.9\r\n\r\n', 'latin1');
    return Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${'A'.repeat(rand.int(2000))}`);
}

function rawSocket(port, bytes, waitMs) {
    return new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        let settled = false;
        const finish = (how) => { if (!settled) { settled = true; clearTimeout(timer); s.destroy(); resolve(how); } };
        const timer = setTimeout(() => finish('timeout'), waitMs + 2000);
        s.on('connect', () => { s.write(bytes); setTimeout(() => finish('closed by us'), waitMs); });
        s.on('data', () => {});
        s.on('error', (e) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'error'));
        s.on('close', () => finish('closed by server'));
    });
}

describe('load', { timeout: 100000 }, () => {
    let srv, oa, expected;
    before(async () => {
        srv = await startServer(['-np', '4', '--max-body', String(MAX_BODY), '--chat-template', 'llama2']);
        oa = client(srv);
        expected = [];
        for (const r of REQS) expected.push(await once(oa, r));
    }, { timeout: 45000 });
    after(() => stopAll(srv), { timeout: 30000 });

    test('32 concurrent clients for ~20 s: streams match, aborts/garbage/oversize handled, server idle after', { timeout: 80000 }, async (t) => {
        const rand = rng(SEED);
        const counts = {};
        const problems = [];
        const bump = (k) => { counts[k] = (counts[k] ?? 0) + 1; };
        const problem = (what) => { if (problems.length < 20) problems.push(what); bump('problem'); };
        const deadline = Date.now() + DURATION_MS;

        async function streamOne(ri, abortAfter) {
            const r = REQS[ri];
            const ac = new AbortController();
            let text = '';
            let n = 0;
            let finish = null;
            try {
                const s = r.kind === 'chat'
                    ? await oa.chat.completions.create({ ...r.body, stream: true }, { signal: ac.signal })
                    : await oa.completions.create({ ...r.body, stream: true }, { signal: ac.signal });
                for await (const c of s) {
                    const ch = c.choices?.[0];
                    if (ch) { text += (r.kind === 'chat' ? ch.delta?.content : ch.text) ?? ''; if (ch.finish_reason) finish = ch.finish_reason; }
                    n++;
                    if (abortAfter && n >= abortAfter) { ac.abort(); break; }
                }
            } catch (e) {
                if (abortAfter && (e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError')) { bump('aborted'); return; }
                if (e instanceof OpenAI.RateLimitError) { bump('429'); return; }
                problem(`${r.kind} #${ri}${abortAfter ? ' (abort)' : ''}: ${e?.constructor?.name}: ${e?.message}`);
                return;
            }
            if (abortAfter) { bump('aborted'); return; }
            if (text !== expected[ri]) problem(`${r.kind} #${ri}: streamed ${JSON.stringify(text)} != ${JSON.stringify(expected[ri])}`);
            else if (finish !== 'length') problem(`${r.kind} #${ri}: finish_reason ${finish}`);
            else bump('ok');
        }

        async function malformed() {
            const bodies = ['{"model":"stories260K","prompt":', '{not json', '{"model": "stories260K", "prompt": "x",}', '\u0000\u0001', '[1,2'];
            const r = await http(srv, 'POST', rand() < 0.5 ? '/v1/completions' : '/v1/chat/completions', { body: rand.pick(bodies) });
            if (r.status === 400) bump('malformed 400');
            else problem(`malformed JSON: status ${r.status} ${r.text.slice(0, 100)}`);
        }

        async function oversize() {
            const prompt = 'x'.repeat(MAX_BODY + 1 + rand.int(MAX_BODY));
            try {
                const r = await http(srv, 'POST', '/v1/completions', { body: { model: MODEL_ID, prompt, max_tokens: 2 } });
                if (r.status === 413) bump('oversize 413');
                else problem(`oversize body: status ${r.status} ${r.text.slice(0, 100)}`);
            } catch (e) {
                // the server may answer 413 and close before it has read the whole body
                bump('oversize reset');
            }
        }

        async function worker(w) {
            while (Date.now() < deadline) {
                const x = rand();
                try {
                    if (x < 0.70) await streamOne(rand.int(REQS.length), 0);
                    else if (x < 0.80) await streamOne(rand.int(REQS.length), 1 + rand.int(3));
                    else if (x < 0.87) await malformed();
                    else if (x < 0.93) await oversize();
                    else {
                        const how = await rawSocket(srv.port, garbage(rand), 50 + rand.int(200));
                        if (how === 'refused') problem('raw socket: connection refused');
                        else bump(`raw ${how}`);
                    }
                } catch (e) {
                    problem(`worker ${w}: ${e?.constructor?.name}: ${e?.message}`);
                }
            }
        }

        await Promise.all(Array.from({ length: CLIENTS }, (_, w) => worker(w)));
        t.diagnostic(`load: ${JSON.stringify(counts)}`);
        assert.ok(srv.alive(), `the server exited: ${JSON.stringify(srv.exitInfo())}; stderr: ${srv.stderr().slice(-500)}`);
        assert.equal(problems.length, 0, problems.join(' || '));
        const streams = (counts.ok ?? 0) + (counts['429'] ?? 0);
        assert.ok((counts.ok ?? 0) >= 20, `only ${counts.ok ?? 0} streams completed`);
        assert.ok((counts.ok ?? 0) > 0.8 * streams, `${counts['429']} of ${streams} streams refused with 429`);

        const h = await http(srv, 'GET', '/health', { timeoutMs: 5000 });
        assert.equal(h.status, 200, h.text);
        let last = '';
        const idle = await poll(async () => {
            last = (await http(srv, 'GET', '/metrics', { timeoutMs: 2000 })).text;
            return metricValue(last, 'sov_slots_active') === 0 && metricValue(last, 'sov_queue_depth') === 0;
        }, { timeoutMs: 5000, intervalMs: 100 });
        assert.ok(idle, `not idle within 5 s: sov_slots_active ${metricValue(last, 'sov_slots_active')}, sov_queue_depth ${metricValue(last, 'sov_queue_depth')}`);
        // and it still serves
        assert.equal(await once(oa, REQS[0]), expected[0]);
    });
});
