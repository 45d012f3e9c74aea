// /v1/chat/completions (server with --chat-template llama2): response shape,
// roles, content parts, max_completion_tokens, streaming, prompt reuse,
// logprobs, stop sequences, penalties, logit_bias; and a server without a
// chat template.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, stopAll, client, readExpected, rejectsWith, collectStream, OpenAI, MODEL_ID,
} from './lib.mjs';

const T = { timeout: 30000 };
const USER = 'Tell me a story about a cat.';
const baseChat = (extra = {}) => ({
    model: MODEL_ID, messages: [{ role: 'user', content: USER }],
    max_tokens: 48, temperature: 0, ignore_eos: true, ...extra,
});

/** The stop string for text t: 2 letters before a space through 3 letters after it, at its first occurrence after character 20. */
function pickStop(t) {
    for (let p = 22; p + 4 <= t.length; p++) {
        if (t[p] !== ' ') continue;
        const s = t.slice(p - 2, p + 4);
        if (!/^[A-Za-z]{2} [A-Za-z]{3}$/.test(s)) continue;
        if (t.indexOf(s) !== p - 2) continue; // must be its first occurrence
        return { stop: s, at: p - 2 };
    }
    return null;
}

describe('chat completions (--chat-template llama2)', { timeout: 150000 }, () => {
    let srv, oa, res;
    before(async () => {
        srv = await startServer(['--chat-template', 'llama2', '-np', '1']);
        oa = client(srv);
        res = await oa.chat.completions.create(baseChat());
    }, T);
    after(() => stopAll(srv), T);

    test('chat response shape', T, () => {
        assert.equal(typeof res.id, 'string');
        assert.ok(res.id.startsWith('chatcmpl-'), `id ${res.id}`);
        assert.equal(res.object, 'chat.completion');
        assert.ok(Number.isInteger(res.created), `created ${res.created}`);
        assert.equal(res.model, MODEL_ID);
        assert.equal(typeof res.system_fingerprint, 'string');
        assert.equal(res.choices.length, 1);
        const c = res.choices[0];
        assert.equal(c.index, 0);
        assert.equal(c.message.role, 'assistant');
        assert.equal(typeof c.message.content, 'string');
        assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
        const u = res.usage;
        assert.ok(u, 'usage present');
        assert.ok(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0, `prompt_tokens ${u.prompt_tokens}`);
        assert.equal(u.completion_tokens, 48);
        assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
        assert.ok(u.prompt_tokens_details, 'usage.prompt_tokens_details present');
        assert.equal(typeof u.prompt_tokens_details.cached_tokens, 'number');
    });

    test('roles system, developer, user, assistant are accepted', T, async () => {
        const r = await oa.chat.completions.create(baseChat({
            max_tokens: 8,
            messages: [
                { role: 'system', content: 'You tell short stories.' },
                { role: 'developer', content: 'Keep it simple.' },
                { role: 'user', content: 'Hello!' },
                { role: 'assistant', content: 'Hi. What story do you want?' },
                { role: 'user', content: USER },
            ],
        }));
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(typeof r.choices[0].message.content, 'string');
        assert.equal(r.usage.completion_tokens, 8);
        assert.ok(r.usage.prompt_tokens > res.usage.prompt_tokens, 'the longer conversation has more prompt tokens');
    });

    test('content as one text part gives the same output as the string', T, async () => {
        const r = await oa.chat.completions.create(baseChat({ messages: [{ role: 'user', content: [{ type: 'text', text: USER }] }] }));
        assert.equal(r.choices[0].message.content, res.choices[0].message.content);
        assert.equal(r.usage.prompt_tokens, res.usage.prompt_tokens);
    });

    test('content as several text parts gives the same output as the joined string', T, async (t) => {
        const parts = ['Tell me a story', ' about a cat.'];
        const r = await oa.chat.completions.create(baseChat({
            messages: [{ role: 'user', content: parts.map((text) => ({ type: 'text', text })) }],
        }));
        // joined without a separator (then USER itself) or, as some servers do, with "\n"
        if (r.choices[0].message.content === res.choices[0].message.content) return;
        const nl = await oa.chat.completions.create(baseChat({ messages: [{ role: 'user', content: parts.join('\n') }] }));
        assert.equal(r.choices[0].message.content, nl.choices[0].message.content,
            'the parts give neither the output of their concatenation nor of their "\\n" join');
        t.diagnostic('text parts are joined with "\\n"');
    });

    test('max_completion_tokens 7 gives 7 tokens and finish_reason length', T, async () => {
        const r = await oa.chat.completions.create(baseChat({ max_tokens: undefined, max_completion_tokens: 7 }));
        assert.equal(r.usage.completion_tokens, 7);
        assert.equal(r.choices[0].finish_reason, 'length');
    });

    test('stream: role first, chunk object, shared id/created, same content, finish_reason last', T, async () => {
        const { chunks, text } = await collectStream(await oa.chat.completions.create(baseChat({ stream: true })));
        assert.ok(chunks.length > 1);
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        for (const c of chunks) {
            assert.equal(c.object, 'chat.completion.chunk');
            assert.equal(c.id, chunks[0].id);
            assert.equal(c.created, chunks[0].created);
        }
        assert.ok(chunks[0].id.startsWith('chatcmpl-'), `id ${chunks[0].id}`);
        assert.equal(text, res.choices[0].message.content);
        const withChoices = chunks.filter((c) => c.choices?.length);
        assert.equal(withChoices.at(-1).choices[0].finish_reason, res.choices[0].finish_reason);
        for (const c of withChoices.slice(0, -1)) assert.ok(c.choices[0].finish_reason == null, JSON.stringify(c));
        assert.equal(chunks.filter((c) => c.usage != null).length, 0, 'no usage without include_usage');
    });

    test('stream with include_usage: final chunk with choices [] and usage', T, async () => {
        const { chunks, text } = await collectStream(await oa.chat.completions.create(baseChat({
            stream: true, stream_options: { include_usage: true },
        })));
        assert.equal(text, res.choices[0].message.content);
        const empty = chunks.filter((c) => Array.isArray(c.choices) && c.choices.length === 0);
        assert.equal(empty.length, 1);
        const last = chunks.at(-1);
        assert.equal(last, empty[0], 'the usage chunk is the last one');
        assert.equal(last.usage.prompt_tokens, res.usage.prompt_tokens);
        assert.equal(last.usage.completion_tokens, res.usage.completion_tokens);
        assert.equal(last.usage.total_tokens, res.usage.total_tokens);
    });

    test('prompt reuse: a long shared system prompt is cached in whole blocks of 32 tokens', T, async () => {
        // the prefix cache keeps full blocks of 32 tokens; a prompt reuses every
        // cached block before the one holding its last token
        const system = 'You are a kind storyteller. You tell short stories about animals, about the sun and the ' +
            'moon, about a little girl named Lily and her dog, and you always end them happily. ';
        const req = (u) => baseChat({ max_tokens: 4, messages: [{ role: 'system', content: system }, { role: 'user', content: u }] });
        const a = await oa.chat.completions.create(req('Once there was a big red dog named Max.'));
        const b = await oa.chat.completions.create(req('Once there was a big red dog named Max.'));
        const c = await oa.chat.completions.create(req('A cat sat on a mat in the sun.'));
        assert.equal(b.choices[0].message.content, a.choices[0].message.content);
        const cb = b.usage.prompt_tokens_details?.cached_tokens, cc = c.usage.prompt_tokens_details?.cached_tokens;
        assert.ok(b.usage.prompt_tokens > 64, `prompt_tokens ${b.usage.prompt_tokens}: the test needs two full blocks`);
        assert.equal(cb, Math.floor((b.usage.prompt_tokens - 1) / 32) * 32, `same request: cached_tokens ${cb} of ${b.usage.prompt_tokens}`);
        assert.ok(cc >= 32 && cc % 32 === 0 && cc < c.usage.prompt_tokens, `shared system prompt only: cached_tokens ${cc}`);
    });

    test('logprobs true, top_logprobs 3: one entry per token, 3 sorted alternatives, greedy = top', T, async () => {
        const r = await oa.chat.completions.create(baseChat({ max_tokens: 12, logprobs: true, top_logprobs: 3 }));
        const content = r.choices[0].logprobs?.content;
        assert.ok(Array.isArray(content), `logprobs: ${JSON.stringify(r.choices[0].logprobs)}`);
        assert.equal(content.length, r.usage.completion_tokens);
        assert.equal(content.map((e) => e.token).join(''), r.choices[0].message.content, 'tokens concatenate to the content');
        for (const e of content) {
            assert.equal(typeof e.token, 'string');
            assert.ok(typeof e.logprob === 'number' && e.logprob <= 0, `logprob ${e.logprob}`);
            assert.ok(Array.isArray(e.bytes) && e.bytes.every((b) => Number.isInteger(b) && b >= 0 && b < 256), `bytes ${JSON.stringify(e.bytes)}`);
            assert.deepEqual(Buffer.from(e.bytes).toString('utf8'), e.token, 'bytes are the token text in UTF-8');
            assert.equal(e.top_logprobs.length, 3, JSON.stringify(e.top_logprobs));
            for (let i = 0; i < 3; i++) {
                const tl = e.top_logprobs[i];
                assert.equal(typeof tl.token, 'string');
                assert.ok(typeof tl.logprob === 'number' && tl.logprob <= 0);
                assert.ok(Array.isArray(tl.bytes));
                if (i) assert.ok(tl.logprob <= e.top_logprobs[i - 1].logprob, `not sorted: ${JSON.stringify(e.top_logprobs)}`);
            }
            assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5, `greedy token ${JSON.stringify(e)}`);
        }
        assert.equal(r.choices[0].message.content, res.choices[0].message.content.slice(0, r.choices[0].message.content.length));
    });

    describe('stop sequences', () => {
        const req = { model: MODEL_ID, prompt: 'The little dog', max_tokens: 120, temperature: 0, ignore_eos: true };
        let full, pick;
        before(async () => {
            full = (await oa.completions.create(req)).choices[0].text;
            pick = pickStop(full);
        }, T);

        test('completions stop: [s] returns the text before its first occurrence, finish_reason stop', T, async () => {
            assert.ok(pick, `no stop string candidate in ${JSON.stringify(full)}`);
            const r = await oa.completions.create({ ...req, stop: [pick.stop] });
            assert.equal(r.choices[0].text, full.slice(0, pick.at), `stop ${JSON.stringify(pick.stop)}`);
            assert.equal(r.choices[0].finish_reason, 'stop');
        });

        test('completions stop as a plain string', T, async () => {
            assert.ok(pick);
            const r = await oa.completions.create({ ...req, stop: pick.stop });
            assert.equal(r.choices[0].text, full.slice(0, pick.at));
            assert.equal(r.choices[0].finish_reason, 'stop');
        });

        test('completions stop, streamed: same text, never contains the stop string', T, async () => {
            assert.ok(pick);
            const { chunks, text } = await collectStream(await oa.completions.create({ ...req, stop: [pick.stop], stream: true }));
            assert.equal(text, full.slice(0, pick.at));
            assert.ok(!text.includes(pick.stop));
            const withChoices = chunks.filter((c) => c.choices?.length);
            assert.equal(withChoices.at(-1).choices[0].finish_reason, 'stop');
        });

        test('chat stop: content before the first occurrence, also streamed', T, async () => {
            const creq = baseChat({ max_tokens: 120 });
            const c = (await oa.chat.completions.create(creq)).choices[0].message.content;
            const p = pickStop(c);
            assert.ok(p, `no stop string candidate in ${JSON.stringify(c)}`);
            const r = await oa.chat.completions.create({ ...creq, stop: [p.stop, 'zzzzqqq'] });
            assert.equal(r.choices[0].message.content, c.slice(0, p.at));
            assert.equal(r.choices[0].finish_reason, 'stop');
            const s = await collectStream(await oa.chat.completions.create({ ...creq, stop: p.stop, stream: true }));
            assert.equal(s.text, c.slice(0, p.at));
            assert.ok(!s.text.includes(p.stop));
        });
    });

    describe('penalties and logit_bias', () => {
        const creq = baseChat({ max_tokens: 100 });
        const prompt = 'Once upon a time';
        let plain, expected, firstId;
        before(async () => {
            expected = readExpected('stories260K.expected-greedy-prompt.txt');
            // the id the greedy run generates first after the prompt (the file: BOS, prompt, 200 generated ids)
            firstId = expected.ids[expected.ids.length - 200];
            plain = (await oa.chat.completions.create(creq)).choices[0].message.content;
        }, T);

        test('presence_penalty 1.5 is accepted', T, async () => {
            const r = await oa.chat.completions.create({ ...creq, presence_penalty: 1.5 });
            assert.equal(typeof r.choices[0].message.content, 'string');
            assert.equal(r.usage.completion_tokens, 100);
        });

        test('frequency_penalty 1.5 is accepted and changes the greedy text', T, async () => {
            const r = await oa.chat.completions.create({ ...creq, frequency_penalty: 1.5 });
            assert.notEqual(r.choices[0].message.content, plain);
        });

        test('logit_bias -100 on the first greedy token is accepted and changes the text', T, async () => {
            const req = { model: MODEL_ID, prompt, max_tokens: 20, temperature: 0, ignore_eos: true };
            const a = await oa.completions.create(req);
            assert.equal(prompt + a.choices[0].text, expected.text.slice(0, prompt.length + a.choices[0].text.length));
            const b = await oa.completions.create({ ...req, logit_bias: { [firstId]: -100 } });
            assert.notEqual(b.choices[0].text, a.choices[0].text, `token ${firstId} banned, yet the same text`);
            const c = await oa.chat.completions.create({ ...creq, logit_bias: { [firstId]: -100 } });
            assert.equal(typeof c.choices[0].message.content, 'string');
        });

        test('logit_bias +100 on one token id makes every generated token that id', T, async () => {
            // 261 is "▁a" in stories260K's vocabulary (`sov tokenize -p "Once upon a time"`: 1 403 407 261 378)
            assert.equal(expected.ids[3], 261);
            const n = 10;
            const r = await oa.completions.create({ model: MODEL_ID, prompt, max_tokens: n, temperature: 0, ignore_eos: true, logit_bias: { 261: 100 } });
            assert.equal(r.usage.completion_tokens, n);
            assert.equal(r.choices[0].text, ' a'.repeat(n));
            const c = await oa.chat.completions.create({ ...creq, max_tokens: n, logit_bias: { 261: 100 } });
            assert.equal(c.usage.completion_tokens, n);
            assert.match(c.choices[0].message.content, /^ ?a( a){9}$/);
        });
    });
});

describe('chat without a chat template', { timeout: 60000 }, () => {
    let srv, oa;
    before(async () => { srv = await startServer(); oa = client(srv); }, T);
    after(() => stopAll(srv), T);

    test('no --chat-template: chat is a 400 that mentions the chat template', T, async () => {
        const e = await rejectsWith(assert, oa.chat.completions.create(baseChat({ max_tokens: 4 })), OpenAI.BadRequestError);
        assert.equal(e.status, 400);
        assert.match(e.message, /chat.?template/i);
    });

    test('no --chat-template: completions still work', T, async () => {
        const r = await oa.completions.create({ model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
        assert.equal(typeof r.choices[0].text, 'string');
        assert.ok(r.usage.completion_tokens >= 1);
    });
});
