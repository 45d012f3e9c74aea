// /v1/completions: exact greedy text (= `sov run`), response shape, usage,
// streaming, legacy logprobs, seeds, context overflow.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, stopAll, client, http, sovRunText, readExpected, rejectsWith, collectStream, OpenAI, MODEL_ID,
} from './lib.mjs';

const T = { timeout: 30000 };
const PROMPT = 'Once upon a time';
const N = 200;
const greedyReq = { model: MODEL_ID, prompt: PROMPT, max_tokens: N, temperature: 0, ignore_eos: true };

describe('completions', { timeout: 120000 }, () => {
    let srv, oa, res, expected, runText;
    before(async () => {
        expected = readExpected('stories260K.expected-greedy-prompt.txt');
        runText = sovRunText(PROMPT, N);
        srv = await startServer();
        oa = client(srv);
        res = await oa.completions.create(greedyReq);
    }, T);
    after(() => stopAll(srv), T);

    test('greedy completion equals the `sov run` text', T, () => {
        assert.equal(res.choices[0].text, runText);
    });

    test('prompt + greedy completion equals the expected-greedy-prompt file', T, () => {
        assert.equal(PROMPT + res.choices[0].text, expected.text);
    });

    test('response shape: text_completion, id, created, model, system_fingerprint, finish_reason length', T, () => {
        assert.equal(res.object, 'text_completion');
        assert.equal(typeof res.id, 'string');
        assert.ok(res.id.length > 0);
        assert.ok(Number.isInteger(res.created), `created ${res.created}`);
        assert.ok(Math.abs(res.created - Date.now() / 1000) < 3600, `created ${res.created} is not a current unix time`);
        assert.equal(res.model, MODEL_ID);
        assert.equal(typeof res.system_fingerprint, 'string');
        assert.equal(res.choices.length, 1);
        assert.equal(res.choices[0].index, 0);
        assert.equal(res.choices[0].finish_reason, 'length');
    });

    test('usage: completion_tokens 200, prompt_tokens from the expected ids, total', T, () => {
        assert.ok(res.usage, 'usage present');
        assert.equal(res.usage.completion_tokens, N);
        assert.equal(res.usage.prompt_tokens, expected.ids.length - N);
        assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
    });

    test('stream: text equals the non-stream text, shared id/created, last finish_reason length, no usage', T, async () => {
        const { chunks, text } = await collectStream(await oa.completions.create({ ...greedyReq, stream: true }));
        assert.ok(chunks.length > 1, `${chunks.length} chunks`);
        assert.equal(text, res.choices[0].text);
        const ids = new Set(chunks.map((c) => c.id));
        const created = new Set(chunks.map((c) => c.created));
        assert.equal(ids.size, 1, `ids ${[...ids]}`);
        assert.equal(typeof [...ids][0], 'string');
        assert.equal(created.size, 1, `created ${[...created]}`);
        for (const c of chunks) assert.equal(c.object, 'text_completion');
        const withChoices = chunks.filter((c) => c.choices && c.choices.length > 0);
        assert.equal(withChoices.at(-1).choices[0].finish_reason, 'length');
        for (const c of withChoices.slice(0, -1)) {
            assert.ok(c.choices[0].finish_reason == null, `finish_reason before the last chunk: ${JSON.stringify(c)}`);
        }
        const withUsage = chunks.filter((c) => c.usage != null);
        assert.equal(withUsage.length, 0, `usage without include_usage: ${JSON.stringify(withUsage[0])}`);
    });

    test('stream with include_usage: exactly one final chunk with choices [] and usage', T, async () => {
        const { chunks, text } = await collectStream(await oa.completions.create({
            ...greedyReq, stream: true, stream_options: { include_usage: true },
        }));
        assert.equal(text, res.choices[0].text);
        const empty = chunks.filter((c) => Array.isArray(c.choices) && c.choices.length === 0);
        assert.equal(empty.length, 1, `chunks with choices []: ${empty.length}`);
        const last = chunks.at(-1);
        assert.equal(last, empty[0], 'the usage chunk is the last one');
        assert.ok(last.usage, 'usage in the final chunk');
        assert.equal(last.usage.prompt_tokens, res.usage.prompt_tokens);
        assert.equal(last.usage.completion_tokens, N);
        assert.equal(last.usage.total_tokens, res.usage.prompt_tokens + N);
        for (const c of chunks.slice(0, -1)) assert.ok(c.usage == null, `usage before the final chunk: ${JSON.stringify(c)}`);
        assert.equal(last.id, chunks[0].id);
    });

    test('raw SSE stream: data lines, text/event-stream, ends with data: [DONE]', T, async () => {
        const r = await http(srv, 'POST', '/v1/completions', { body: { ...greedyReq, max_tokens: 8, stream: true } });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
        const events = r.text.split(/\r?\n\r?\n/).map((e) => e.trim()).filter(Boolean);
        assert.ok(events.length >= 2, r.text.slice(0, 300));
        assert.equal(events.at(-1), 'data: [DONE]');
        for (const e of events.slice(0, -1)) {
            const data = e.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
            assert.doesNotThrow(() => JSON.parse(data), `event is not JSON: ${e}`);
        }
    });

    test('legacy logprobs: 2 gives tokens, token_logprobs, top_logprobs (2 each), text_offset', T, async () => {
        const n = 20;
        const r = await oa.completions.create({ ...greedyReq, max_tokens: n, logprobs: 2 });
        const lp = r.choices[0].logprobs;
        assert.ok(lp, 'choices[0].logprobs present');
        assert.equal(r.usage.completion_tokens, n);
        assert.ok(Array.isArray(lp.tokens) && lp.tokens.length === n, `tokens: ${JSON.stringify(lp.tokens)}`);
        for (const t of lp.tokens) assert.equal(typeof t, 'string');
        assert.equal(lp.tokens.join(''), r.choices[0].text, 'tokens concatenate to the text');
        assert.ok(Array.isArray(lp.token_logprobs) && lp.token_logprobs.length === n);
        for (const v of lp.token_logprobs) assert.ok(typeof v === 'number' && Number.isFinite(v) && v <= 0, `token_logprob ${v}`);
        assert.ok(Array.isArray(lp.top_logprobs) && lp.top_logprobs.length === n);
        lp.top_logprobs.forEach((o, i) => {
            assert.ok(o && typeof o === 'object' && !Array.isArray(o), `top_logprobs[${i}] is an object`);
            const vals = Object.values(o);
            assert.equal(vals.length, 2, `top_logprobs[${i}]: ${JSON.stringify(o)}`);
            for (const v of vals) assert.ok(typeof v === 'number' && v <= 0, `top logprob ${v}`);
            // greedy: the chosen token is the most likely one
            assert.ok(Math.abs(Math.max(...vals) - lp.token_logprobs[i]) < 1e-4,
                `token ${i}: logprob ${lp.token_logprobs[i]} vs top ${JSON.stringify(o)}`);
        });
        assert.ok(Array.isArray(lp.text_offset) && lp.text_offset.length === n);
        for (let i = 0; i < n; i++) {
            assert.ok(Number.isInteger(lp.text_offset[i]), `text_offset[${i}] ${lp.text_offset[i]}`);
            if (i) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1], 'text_offset does not decrease');
        }
        // the greedy text does not depend on logprobs being asked for
        assert.equal(r.choices[0].text, res.choices[0].text.slice(0, r.choices[0].text.length));
    });

    test('seed: temperature 1, seed 42 twice gives the same text, seed 43 another', T, async () => {
        const req = { model: MODEL_ID, prompt: PROMPT, max_tokens: 40, temperature: 1, ignore_eos: true };
        const a = await oa.completions.create({ ...req, seed: 42 });
        const b = await oa.completions.create({ ...req, seed: 42 });
        const c = await oa.completions.create({ ...req, seed: 43 });
        assert.equal(a.choices[0].text, b.choices[0].text);
        assert.notEqual(a.choices[0].text, c.choices[0].text);
    });

    test('max_tokens beyond the context (100000) is a 400 that mentions the context', T, async () => {
        const e = await rejectsWith(assert, oa.completions.create({ ...greedyReq, max_tokens: 100000 }), OpenAI.BadRequestError);
        assert.equal(e.status, 400);
        assert.match(e.message, /context/i);
    });
});
