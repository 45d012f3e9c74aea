// Error handling: malformed JSON, bad parameters, unknown model, API keys,
// body size limit, queue overflow (429), SIGTERM drain.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, stopAll, client, http, checkErrorBody, rejectsWith, collectStream, OpenAI, MODEL_ID,
} from './lib.mjs';

const T = { timeout: 30000 };
const comp = (extra = {}) => ({ model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 4, temperature: 0, ...extra });
const chat = (extra = {}) => ({ model: MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0, ...extra });

describe('request errors', { timeout: 60000 }, () => {
    let srv, oa;
    before(async () => { srv = await startServer(['--chat-template', 'llama2']); oa = client(srv); }, T);
    after(() => stopAll(srv), T);

    test('malformed JSON body is a 400 with an invalid_request_error body', T, async () => {
        for (const p of ['/v1/completions', '/v1/chat/completions']) {
            const r = await http(srv, 'POST', p, { body: '{not json' });
            assert.equal(r.status, 400, `${p}: ${r.text}`);
            checkErrorBody(assert, r.json, { type: 'invalid_request_error' });
        }
    });

    test('temperature "hot" is a BadRequestError naming temperature', T, async () => {
        const e = await rejectsWith(assert, oa.completions.create(comp({ temperature: 'hot' })), OpenAI.BadRequestError);
        assert.ok(e.param === 'temperature' || /temperature/.test(e.message), `param ${e.param}, message ${e.message}`);
        const e2 = await rejectsWith(assert, oa.chat.completions.create(chat({ temperature: 'hot' })), OpenAI.BadRequestError, 'chat');
        assert.ok(e2.param === 'temperature' || /temperature/.test(e2.message), `chat: param ${e2.param}, message ${e2.message}`);
    });

    test('n: 2 is a BadRequestError', T, async () => {
        await rejectsWith(assert, oa.completions.create(comp({ n: 2 })), OpenAI.BadRequestError, 'completions');
        await rejectsWith(assert, oa.chat.completions.create(chat({ n: 2 })), OpenAI.BadRequestError, 'chat');
    });

    test('chat without messages is a BadRequestError', T, async () => {
        const e = await rejectsWith(assert, oa.chat.completions.create({ model: MODEL_ID, max_tokens: 4 }), OpenAI.BadRequestError);
        assert.equal(e.status, 400);
    });

    test('unknown model is a NotFoundError with an error body', T, async () => {
        await rejectsWith(assert, oa.completions.create(comp({ model: 'no-such-model' })), OpenAI.NotFoundError, 'completions');
        await rejectsWith(assert, oa.chat.completions.create(chat({ model: 'no-such-model' })), OpenAI.NotFoundError, 'chat');
        const r = await http(srv, 'POST', '/v1/completions', { body: comp({ model: 'no-such-model' }) });
        assert.equal(r.status, 404);
        checkErrorBody(assert, r.json);
    });

    test('the server still answers after the errors', T, async () => {
        const r = await oa.completions.create(comp());
        assert.equal(r.usage.completion_tokens >= 1, true);
        assert.equal((await http(srv, 'GET', '/health')).status, 200);
    });
});

describe('API keys', { timeout: 60000 }, () => {
    let flag, envSrv;
    before(async () => {
        flag = await startServer(['--api-key', 'sekret']);
        envSrv = await startServer([], { env: { SOV_API_KEY: 'sekret2' } });
    }, T);
    after(() => stopAll(flag, envSrv), T);

    for (const [name, get, key] of [['--api-key sekret', () => flag, 'sekret'], ['SOV_API_KEY=sekret2', () => envSrv, 'sekret2']]) {
        test(`${name}: no key and a wrong key are 401 AuthenticationError, the right key works`, T, async () => {
            const srv = get();
            const raw = await http(srv, 'POST', '/v1/completions', { body: comp() });
            assert.equal(raw.status, 401, `no key: ${raw.text}`);
            checkErrorBody(assert, raw.json);
            await rejectsWith(assert,
                client(srv, { defaultHeaders: { Authorization: null } }).completions.create(comp()),
                OpenAI.AuthenticationError, 'SDK without a key');
            await rejectsWith(assert, client(srv, { apiKey: 'wrong' }).completions.create(comp()), OpenAI.AuthenticationError, 'wrong key');
            await rejectsWith(assert, client(srv, { apiKey: key + 'x' }).completions.create(comp()), OpenAI.AuthenticationError, 'key + x');
            const ok = await client(srv, { apiKey: key }).completions.create(comp());
            assert.equal(typeof ok.choices[0].text, 'string');
            const models = await client(srv, { apiKey: key }).models.list();
            assert.ok(models.data.length >= 1);
        });
    }
});

describe('--max-body 4096', { timeout: 60000 }, () => {
    let srv;
    before(async () => { srv = await startServer(['--max-body', '4096']); }, T);
    after(() => stopAll(srv), T);

    test('--max-body 4096: a 10 kB prompt is an APIError with status 413', T, async () => {
        const prompt = 'Once upon a time there was a cat. '.repeat(300).slice(0, 10240);
        const e = await rejectsWith(assert, client(srv).completions.create(comp({ prompt })), OpenAI.APIError);
        assert.equal(e.status, 413, e.message);
    });

    test('--max-body 4096: a small request still works', T, async () => {
        const r = await client(srv).completions.create(comp());
        assert.equal(typeof r.choices[0].text, 'string');
    });
});

describe('-np 1 --queue 1', { timeout: 60000 }, () => {
    let srv;
    before(async () => { srv = await startServer(['-np', '1', '--queue', '1']); }, T);
    after(() => stopAll(srv), T);

    test('queue full: 6 concurrent long requests, at least one 429 with Retry-After, the others complete', T, async () => {
        const oa = client(srv);
        const req = comp({ max_tokens: 400, ignore_eos: true });
        const results = await Promise.allSettled(Array.from({ length: 6 }, () => oa.completions.create(req)));
        const rejected = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
        const done = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
        for (const e of rejected) {
            assert.ok(e instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${e?.constructor?.name}: ${e?.message}`);
            assert.equal(e.status, 429);
            const ra = e.headers?.get?.('retry-after');
            assert.ok(ra != null && (/^\d+$/.test(ra.trim()) || !Number.isNaN(Date.parse(ra))), `Retry-After: ${ra}`);
        }
        assert.ok(rejected.length >= 1, 'no request was refused with 429');
        assert.ok(done.length >= 1, 'no request completed');
        const texts = new Set(done.map((d) => d.choices[0].text));
        for (const d of done) {
            assert.equal(d.usage.completion_tokens, 400);
            assert.equal(d.choices[0].finish_reason, 'length');
        }
        assert.equal(texts.size, 1, 'the same greedy request gave different texts');
    });

    test('queue full: the 429 body is an OpenAI error with Retry-After', T, async () => {
        // 5 raw requests at once for 1 slot + 1 queue place: at least one must be refused
        const req = comp({ max_tokens: 400, ignore_eos: true });
        const raws = await Promise.all([1, 2, 3, 4, 5].map(() => http(srv, 'POST', '/v1/completions', { body: req })));
        const refused = raws.filter((r) => r.status === 429);
        assert.ok(refused.length >= 1, `statuses ${raws.map((r) => r.status)}`);
        for (const r of refused) {
            checkErrorBody(assert, r.json);
            assert.ok(r.headers.get('retry-after') != null, 'Retry-After header');
        }
        for (const r of raws) assert.ok(r.status === 200 || r.status === 429, `status ${r.status}: ${r.text.slice(0, 200)}`);
    });
});

describe('SIGTERM drain', { timeout: 60000 }, () => {
    let srv;
    before(async () => { srv = await startServer(); }, T);
    after(() => stopAll(srv), T);

    test('SIGTERM during a stream: the stream completes normally and the server exits 0', T, async (t) => {
        const oa = client(srv);
        const req = comp({ max_tokens: 400, ignore_eos: true });
        const expected = (await oa.completions.create(req)).choices[0].text;
        const stream = await oa.completions.create({ ...req, stream: true });
        const chunks = [];
        let text = '';
        let afterSignal = 0;
        let signalled = false;
        for await (const c of stream) {
            chunks.push(c);
            if (c.choices?.[0]) text += c.choices[0].text ?? '';
            if (signalled) afterSignal++;
            if (!signalled) { srv.proc.kill('SIGTERM'); signalled = true; }
        }
        t.diagnostic(`${chunks.length} chunks, ${afterSignal} after SIGTERM`);
        assert.ok(signalled);
        assert.equal(text, expected);
        assert.equal(chunks.filter((c) => c.choices?.length).at(-1).choices[0].finish_reason, 'length');
        let timer;
        const info = await Promise.race([srv.exited, new Promise((r) => { timer = setTimeout(() => r(null), 10000); })]);
        clearTimeout(timer);
        assert.ok(info, 'the server did not exit within 10 s of SIGTERM');
        assert.equal(info.code, 0, `exit ${JSON.stringify(info)}; stderr: ${srv.stderr().slice(-500)}`);
    });
});

describe('draining and a second signal', { timeout: 60000 }, () => {
    let srv;
    before(async () => { srv = await startServer(['-t', '1']); }, T);
    after(async () => { if (srv?.alive()) await srv.stop(); }, T); // it is meant to exit 130 here

    test('after SIGTERM new requests get 503 while a stream runs; a second signal exits at once', T, async () => {
        const oa = client(srv);
        const stream = await oa.completions.create(comp({ max_tokens: 1900, ignore_eos: true, stream: true }));
        let n = 0, status = null, streamErr = null;
        try {
            for await (const c of stream) {
                if (++n === 1) {
                    srv.proc.kill('SIGTERM');
                    await new Promise((r) => setTimeout(r, 50));
                    const r = await http(srv, 'POST', '/v1/completions', { body: JSON.stringify(comp()) });
                    status = r.status;
                    checkErrorBody(assert, r.json, {});
                    const h = await http(srv, 'GET', '/health');
                    assert.equal(h.status, 503, `/health while draining: ${h.status}`);
                    srv.proc.kill('SIGINT');
                }
            }
        } catch (e) {
            streamErr = e; // the connection goes with the process
        }
        assert.equal(status, 503, 'a request while draining');
        let timer;
        const info = await Promise.race([srv.exited, new Promise((r) => { timer = setTimeout(() => r(null), 3000); })]);
        clearTimeout(timer);
        assert.ok(info, 'the server did not exit within 3 s of the second signal');
        assert.notEqual(info.code, 0, `exit ${JSON.stringify(info)} (a second signal exits at once, not after draining)`);
        assert.ok(n < 1900, `the stream ran to its end (${n} chunks): the second signal did not stop it (${streamErr?.message ?? 'no error'})`);
    });
});

describe('SIGTERM drain, not streamed', { timeout: 60000 }, () => {
    let srv;
    before(async () => { srv = await startServer(['-t', '1']); }, T);
    after(() => stopAll(srv), T);

    test('SIGTERM while a non-streamed request runs: its whole response arrives, then exit 0', T, async () => {
        const oa = client(srv);
        const req = comp({ max_tokens: 1500, ignore_eos: true });
        const expected = (await oa.completions.create(req)).choices[0].text;
        const pending = oa.completions.create(req);
        await new Promise((r) => setTimeout(r, 30));
        srv.proc.kill('SIGTERM');
        const got = await pending;
        assert.equal(got.choices[0].text, expected);
        assert.equal(got.choices[0].finish_reason, 'length');
        let timer;
        const info = await Promise.race([srv.exited, new Promise((r) => { timer = setTimeout(() => r(null), 10000); })]);
        clearTimeout(timer);
        assert.ok(info, 'the server did not exit within 10 s of SIGTERM');
        assert.equal(info.code, 0, `exit ${JSON.stringify(info)}; stderr: ${srv.stderr().slice(-500)}`);
    });
});
