// Concurrent requests give byte-identical results to the same requests sent
// one at a time (greedy and seeded sampling), with -np 4 and -np 16.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopAll, client, sovRunText, MODEL_ID } from './lib.mjs';

const T = { timeout: 45000 };
const SUBJECTS = ['a cat', 'a dog', 'a bird', 'a fish', 'the sun', 'a tree', 'a ball', 'a girl',
    'a boy', 'the moon', 'a car', 'a frog', 'a cake', 'the park', 'a box', 'a bear'];
const PROMPTS = SUBJECTS.map((s, i) => (i % 2 ? `Once upon a time there was ${s}` : `Tom saw ${s}`));
const greedy = (prompt) => ({ model: MODEL_ID, prompt, max_tokens: 64, temperature: 0, ignore_eos: true });
const seeded = (prompt, i) => ({ model: MODEL_ID, prompt, max_tokens: 64, temperature: 0.9, seed: i, ignore_eos: true });

async function sequential(oa, reqs) {
    const out = [];
    for (const r of reqs) out.push((await oa.completions.create(r)).choices[0].text);
    return out;
}
const concurrent = async (oa, reqs) => (await Promise.all(reqs.map((r) => oa.completions.create(r)))).map((r) => r.choices[0].text);

function assertSame(a, b, what) {
    const bad = a.map((x, i) => (x === b[i] ? -1 : i)).filter((i) => i >= 0);
    assert.equal(bad.length, 0, `${what}: ${bad.length} of ${a.length} differ; first: #${bad[0]} ${JSON.stringify(a[bad[0]])} vs ${JSON.stringify(b[bad[0]])}`);
}

for (const np of [4, 16]) {
    describe(`concurrency -np ${np}`, { timeout: 120000 }, () => {
        let srv, oa, seqGreedy;
        before(async () => {
            srv = await startServer(['-np', String(np)]);
            oa = client(srv);
            seqGreedy = await sequential(oa, PROMPTS.map(greedy));
        }, T);
        after(() => stopAll(srv), T);

        if (np === 4) {
            test('-np 4: sequential greedy texts equal `sov run`', T, () => {
                const bad = [];
                PROMPTS.forEach((p, i) => { if (sovRunText(p, 64) !== seqGreedy[i]) bad.push(i); });
                assert.equal(bad.length, 0, `prompts ${bad.map((i) => JSON.stringify(PROMPTS[i])).join(', ')} differ from sov run`);
            });
        }

        test(`-np ${np}: 16 greedy requests at once equal the same sent one at a time`, T, async () => {
            // (two prompts may share a continuation; most must not, or the test would prove little)
            assert.ok(new Set(seqGreedy).size >= PROMPTS.length - 4, `only ${new Set(seqGreedy).size} distinct texts`);
            assertSame(await concurrent(oa, PROMPTS.map(greedy)), seqGreedy, 'concurrent vs sequential');
        });

        test(`-np ${np}: seeded sampling (temperature 0.9, seed i) at once equals one at a time`, T, async () => {
            const reqs = PROMPTS.map(seeded);
            const seq = await sequential(oa, reqs);
            assertSame(await concurrent(oa, reqs), seq, 'concurrent vs sequential');
            assertSame(await concurrent(oa, reqs), seq, 'second concurrent run vs sequential');
        });
    });
}

// A KV pool too small for everything at once: 16 requests of ~100-250
// positions each over 640 positions (20 blocks). The latest admitted ones are
// preempted and resumed; every text equals the one the request gets alone.
describe('concurrency over a small KV pool', { timeout: 120000 }, () => {
    let srv, oa;
    before(async () => { srv = await startServer(['-np', '8', '--kv-size', '640', '-c', '4096']); oa = client(srv); }, T);
    after(() => stopAll(srv), T);

    test('16 requests over a 640-position pool: same texts as one at a time, preemptions in /metrics', T, async () => {
        const reqs = PROMPTS.map((p, i) => ({ model: MODEL_ID, prompt: p, max_tokens: 90 + 10 * i, temperature: 0.9, seed: 100 + i, ignore_eos: true }));
        const seq = await sequential(oa, reqs);
        const total = reqs.reduce((a, r) => a + r.max_tokens, 0);
        assert.ok(total > 640 * 2, `the requests need ${total} positions`);
        assertSame(await concurrent(oa, reqs), seq, 'concurrent over a small pool vs sequential');
        const m = await (await fetch(srv.url + '/metrics')).text();
        const pre = Number((m.match(/^sov_preemptions_total\{[^}]*\} (\d+)/m) ?? [])[1]);
        assert.ok(pre > 0, `sov_preemptions_total ${pre}`);
        const tot = Number((m.match(/^sov_kv_blocks_total\{[^}]*\} (\d+)/m) ?? [])[1]);
        assert.equal(tot, 20, 'sov_kv_blocks_total');
        // stories260K, f32: 2 (K, V) x 5 layers x 4 KV heads x 8 x 4 bytes x 32 positions
        const bb = Number((m.match(/^sov_kv_block_bytes\{[^}]*\} (\d+)/m) ?? [])[1]);
        assert.equal(bb, 2 * 5 * 4 * 8 * 4 * 32, 'sov_kv_block_bytes');
    });
});

// The server's default KV type (f16) against `sov run --kv-type f16`, and
// concurrency on it: the same texts.
describe('concurrency, default f16 KV', { timeout: 120000 }, () => {
    let srv, oa;
    before(async () => { srv = await startServer(['-np', '4', '--kv-type', 'f16']); oa = client(srv); }, T);
    after(() => stopAll(srv), T);

    test('f16 KV: greedy texts equal `sov run --kv-type f16`; 16 at once equal one at a time', T, async () => {
        const seqG = await sequential(oa, PROMPTS.map(greedy));
        const bad = [];
        PROMPTS.forEach((p, i) => { if (sovRunText(p, 64, { extra: ['--kv-type', 'f16'] }) !== seqG[i]) bad.push(i); });
        assert.equal(bad.length, 0, `prompts ${bad.map((i) => JSON.stringify(PROMPTS[i])).join(', ')} differ from sov run --kv-type f16`);
        assertSame(await concurrent(oa, PROMPTS.map(greedy)), seqG, 'f16: concurrent vs sequential');
    });
});
