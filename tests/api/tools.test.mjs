// Tool calling through `sov serve` with the official openai client: the
// shared stories260K model (which has never seen a tool) under the chatml
// (hermes / qwen2.5 calls), llama3 (llama-3.1 JSON calls) and mistral
// ([TOOL_CALLS]) templates and a generic one (phi3). tool_choice "required"
// and a named function are constrained by a grammar, so every call must be
// well-formed and its arguments valid against the function's parameter
// schema, as judged by ajv (an independent JSON Schema validator). Round
// trips: tools -> tool_calls -> tool results -> a final text answer,
// streaming (deltas accumulated as OpenAI clients do, and by the SDK's own
// stream helper) and not.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, stopAll, client, http, checkErrorBody, rejectsWith, pool, OpenAI, MODEL_ID } from './lib.mjs';

const T = { timeout: 90000 };
// no max_tokens for constrained answers: the grammar ends them (a model
// that never saw a tool call rarely ends a parallel answer before the
// grammar's 8 calls, and the strings are bounded)
const MAX_CALLS = 8; // TOOLS_MAX_PARALLEL (src/server/tools.h)
// fewer samples under the sanitizers (make check), where a token costs ~10x
const SEEDS = process.env.SOV_SANITIZED ? 6 : 20;
const NAMED = process.env.SOV_SANITIZED ? 4 : 10;

const TOOLS = [
    {
        type: 'function',
        function: {
            name: 'get_weather',
            description: 'The weather of a city for some days',
            strict: true,
            parameters: {
                type: 'object',
                properties: {
                    city: { type: 'string', enum: ['Paris', 'London', 'Tokyo'] },
                    days: { type: 'integer', minimum: 1, maximum: 7 },
                },
                required: ['city', 'days'],
                additionalProperties: false,
            },
        },
    },
    {
        type: 'function',
        function: {
            name: 'get_time',
            description: 'The time in a zone',
            parameters: {
                type: 'object',
                properties: { zone: { type: 'string', maxLength: 12 }, exact: { type: 'boolean' } },
                required: ['zone'],
                additionalProperties: false,
            },
        },
    },
];
const ajv = new Ajv2020({ strict: false, allErrors: true });
const VALIDATE = Object.fromEntries(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));

const USER = { role: 'user', content: 'What is the weather in Paris?' };
const base = (extra = {}) => ({
    model: MODEL_ID, messages: [USER], tools: TOOLS,
    temperature: 1, top_k: 0, top_p: 1, min_p: 0, ...extra,
});

/** Problems with one tool call of a response (an empty list when it is valid). */
function callProblems(c, { names = Object.keys(VALIDATE) } = {}) {
    const p = [];
    if (typeof c.id !== 'string' || !c.id.startsWith('call_')) p.push(`id ${JSON.stringify(c.id)}`);
    if (c.type !== 'function') p.push(`type ${c.type}`);
    const name = c.function?.name;
    if (!names.includes(name)) p.push(`name ${name}`);
    let args;
    try { args = JSON.parse(c.function.arguments); } catch (e) {
        p.push(`arguments not JSON: ${JSON.stringify(c.function?.arguments)?.slice(0, 200)}`);
        return p;
    }
    const v = VALIDATE[name];
    if (v && !v(args)) p.push(`arguments ${c.function.arguments.slice(0, 200)} invalid: ${JSON.stringify(v.errors).slice(0, 200)}`);
    return p;
}

/** Checks a whole answer with calls; returns the calls. */
function checkCalls(msg, finish, opts = {}) {
    assert.equal(finish, 'tool_calls', `finish_reason ${finish}: ${JSON.stringify(msg).slice(0, 400)}`);
    assert.ok(Array.isArray(msg.tool_calls) && msg.tool_calls.length >= 1 && msg.tool_calls.length <= MAX_CALLS,
        `tool_calls ${JSON.stringify(msg.tool_calls)}`);
    for (const c of msg.tool_calls) {
        const p = callProblems(c, opts);
        assert.equal(p.length, 0, `${p.join('; ')} in ${JSON.stringify(c)}`);
    }
    assert.equal(new Set(msg.tool_calls.map((c) => c.id)).size, msg.tool_calls.length, 'call ids are unique');
    return msg.tool_calls;
}

/**
 * Reads a chat stream and accumulates it as OpenAI clients do: content
 * deltas concatenated, tool_calls deltas by index (the first of each call
 * with id, type, name and arguments "", then argument pieces). Returns
 * {content, tool_calls, finish, chunks, problems}.
 */
async function collectTools(stream) {
    const calls = [];
    const problems = [];
    let content = null;
    let finish = null;
    let chunks = 0;
    let sawRole = false;
    for await (const c of stream) {
        chunks++;
        const ch = c.choices?.[0];
        if (!ch) continue;
        const d = ch.delta ?? {};
        if (d.role === 'assistant') sawRole = true;
        if (typeof d.content === 'string' && d.content.length) content = (content ?? '') + d.content;
        for (const tc of d.tool_calls ?? []) {
            if (!calls[tc.index]) {
                if (tc.index !== calls.length) problems.push(`call index ${tc.index} after ${calls.length} calls`);
                if (typeof tc.id !== 'string' || tc.type !== 'function' || typeof tc.function?.name !== 'string' ||
                    tc.function?.arguments !== '')
                    problems.push(`first delta of call ${tc.index} is ${JSON.stringify(tc)}`);
                calls[tc.index] = { id: tc.id, type: tc.type, function: { name: tc.function?.name, arguments: '' } };
            } else {
                if (tc.id !== undefined || tc.function?.name !== undefined) problems.push(`later delta repeats id/name: ${JSON.stringify(tc)}`);
                calls[tc.index].function.arguments += tc.function?.arguments ?? '';
            }
        }
        if (ch.finish_reason) {
            if (finish) problems.push(`two finish_reasons ${finish}, ${ch.finish_reason}`);
            finish = ch.finish_reason;
        }
    }
    if (!sawRole) problems.push('no delta with role assistant');
    return { content, tool_calls: calls, finish, chunks, problems };
}

/** The history after a response's calls: the assistant message and one tool result per call. */
function withResults(msg, answer = (c) => JSON.stringify({ ok: true, for: c.function.name })) {
    return [
        USER,
        { role: 'assistant', content: msg.content ?? null, tool_calls: msg.tool_calls.map((c) => ({ id: c.id, type: 'function', function: c.function })) },
        ...msg.tool_calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: answer(c) })),
    ];
}

function checkText(r, what) {
    const ch = r.choices[0];
    assert.ok(['stop', 'length'].includes(ch.finish_reason), `${what}: finish_reason ${ch.finish_reason}`);
    assert.equal(typeof ch.message.content, 'string', `${what}: content ${JSON.stringify(ch.message.content)}`);
    assert.ok(!ch.message.tool_calls || ch.message.tool_calls.length === 0, `${what}: tool_calls ${JSON.stringify(ch.message.tool_calls)}`);
}

for (const tmpl of ['chatml', 'llama3', 'mistral', 'phi3']) {
    describe(`tool calls (--chat-template ${tmpl})`, { timeout: 240000 }, () => {
        let srv, oa;
        before(async () => {
            srv = await startServer(['--chat-template', tmpl, '-np', '4']);
            oa = client(srv, { timeout: 60000 });
        }, T);
        after(() => stopAll(srv), T);

        test('round trip: required -> tool_calls -> results -> a text answer (none, auto)', T, async () => {
            const r = await oa.chat.completions.create(base({ tool_choice: 'required', seed: 11, parallel_tool_calls: false }));
            const msg = r.choices[0].message;
            assert.equal(checkCalls(msg, r.choices[0].finish_reason).length, 1, 'one call without parallel_tool_calls');
            assert.equal(msg.role, 'assistant');
            assert.equal(msg.content, null, `content ${JSON.stringify(msg.content)}`);
            const history = withResults(msg);
            for (const choice of ['auto', 'none']) {
                const f = await oa.chat.completions.create({
                    model: MODEL_ID, messages: history, tools: TOOLS, tool_choice: choice, max_tokens: 40, temperature: 0,
                });
                checkText(f, `final answer (${choice})`);
                // with the tools rendered (auto), the history's prompt starts as the first one did: cached
                if (choice === 'auto') {
                    assert.ok(f.usage.prompt_tokens > r.usage.prompt_tokens, 'the history is in the prompt');
                    assert.ok(f.usage.prompt_tokens_details.cached_tokens >= 32, `cached ${JSON.stringify(f.usage)}`);
                }
            }
        });

        test('round trip streaming: call deltas (index, id, name, "" first), then a streamed text answer', T, async () => {
            const s = await collectTools(await oa.chat.completions.create(base({ tool_choice: 'required', seed: 12, stream: true })));
            assert.equal(s.problems.length, 0, s.problems.join('; '));
            assert.equal(s.content, null, `content ${JSON.stringify(s.content)}`);
            const calls = checkCalls({ tool_calls: s.tool_calls }, s.finish);
            // the same seed unstreamed: the same calls (names, arguments)
            const w = await oa.chat.completions.create(base({ tool_choice: 'required', seed: 12 }));
            assert.deepEqual(calls.map((c) => c.function), w.choices[0].message.tool_calls.map((c) => c.function));
            // the history of the first call (the whole history of 8 calls and results may outgrow the context)
            const f = await collectTools(await oa.chat.completions.create({
                model: MODEL_ID, messages: withResults({ content: null, tool_calls: calls.slice(0, 2) }), tools: TOOLS,
                tool_choice: 'none', max_tokens: 30, temperature: 0, stream: true,
            }));
            assert.equal(f.problems.length, 0, f.problems.join('; '));
            assert.equal(f.tool_calls.length, 0);
            assert.equal(typeof f.content, 'string');
            assert.ok(['stop', 'length'].includes(f.finish), `finish ${f.finish}`);
        });

        test('the SDK stream helper accumulates the calls', T, async () => {
            const st = oa.chat.completions.stream(base({ tool_choice: 'required', seed: 5, parallel_tool_calls: false }));
            const done = await st.finalChatCompletion();
            const ch = done.choices[0];
            checkCalls(ch.message, ch.finish_reason);
        });

        test(`tool_choice "required": ${SEEDS} seeds at temperature 1, always a valid call`, T, async () => {
            const fails = [];
            let calls = 0;
            await pool(Array.from({ length: SEEDS }, (_, i) => async () => {
                const r = await http(srv, 'POST', '/v1/chat/completions', { timeoutMs: 60000, body: base({ tool_choice: 'required', seed: 100 + i }) });
                if (r.status !== 200) { fails.push(`seed ${100 + i}: HTTP ${r.status} ${r.text.slice(0, 200)}`); return; }
                const ch = r.json.choices[0];
                if (ch.finish_reason !== 'tool_calls') fails.push(`seed ${100 + i}: finish ${ch.finish_reason}: ${JSON.stringify(ch.message).slice(0, 300)}`);
                const tc = ch.message.tool_calls ?? [];
                if (!tc.length) fails.push(`seed ${100 + i}: no tool_calls`);
                for (const c of tc) {
                    const p = callProblems(c);
                    if (p.length) fails.push(`seed ${100 + i}: ${p.join('; ')}`);
                }
                calls += tc.length;
            }), 4);
            assert.equal(fails.length, 0, fails.slice(0, 5).join('\n'));
            console.log(`INFO tools.test.mjs: ${tmpl}: ${SEEDS} required answers, ${calls} valid calls`);
        });

        test('a named function: always that function; parallel_tool_calls false: exactly one call', T, async () => {
            const fails = [];
            await pool(Array.from({ length: NAMED }, (_, i) => async () => {
                const named = i % 2 ? 'get_time' : 'get_weather';
                const r = await oa.chat.completions.create(base({
                    seed: 200 + i, tool_choice: { type: 'function', function: { name: named } }, parallel_tool_calls: i >= NAMED / 2 ? false : undefined,
                }));
                const ch = r.choices[0];
                try {
                    const calls = checkCalls(ch.message, ch.finish_reason, { names: [named] });
                    if (i >= NAMED / 2 && calls.length !== 1) fails.push(`seed ${200 + i}: ${calls.length} calls without parallel_tool_calls`);
                } catch (e) { fails.push(`seed ${200 + i}: ${e.message}`); }
            }), 4);
            assert.equal(fails.length, 0, fails.slice(0, 5).join('\n'));
        });

        test('tool_choice "auto" and "none" with a model that answers in text: content, stop/length', T, async () => {
            for (const choice of ['auto', 'none']) {
                const r = await oa.chat.completions.create(base({ tool_choice: choice, max_tokens: 30, temperature: 0 }));
                checkText(r, choice);
                const s = await collectTools(await oa.chat.completions.create(base({ tool_choice: choice, max_tokens: 30, temperature: 0, stream: true })));
                assert.equal(s.problems.length, 0, s.problems.join('; '));
                assert.equal(s.content, r.choices[0].message.content, `${choice}: streamed content is the whole content`);
                assert.equal(s.finish, r.choices[0].finish_reason);
            }
        });
    });
}

describe('tool calling: bad requests are 400 naming the param', { timeout: 60000 }, () => {
    let srv, oa;
    before(async () => {
        srv = await startServer(['--chat-template', 'chatml', '-np', '1']);
        oa = client(srv);
    }, T);
    after(() => stopAll(srv), T);

    const cases = [
        ['tools is not an array', { tools: { type: 'function' } }, 'tools'],
        ['a tool without a function', { tools: [{ type: 'function' }] }, 'tools[0].function'],
        ['a bad function name', { tools: [{ type: 'function', function: { name: 'get weather' } }] }, 'tools[0].function.name'],
        ['tool_choice names an unknown function', { tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
        ['an unknown tool_choice', { tools: TOOLS, tool_choice: 'always' }, 'tool_choice'],
        ['tool_choice required without tools', { tool_choice: 'required' }, 'tool_choice'],
        ['parallel_tool_calls not a boolean', { tools: TOOLS, parallel_tool_calls: 'yes' }, 'parallel_tool_calls'],
        ['a tool message without tool_call_id',
            { messages: [USER, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }, { role: 'tool', content: '12:00' }] },
            'messages[2].tool_call_id'],
        ['tool_calls with non-string arguments',
            { messages: [USER, { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_time', arguments: { zone: 'x' } } }] }] },
            'messages[1].tool_calls[0].function.arguments'],
    ];
    for (const [what, extra, param] of cases) {
        test(`${what}: 400, param ${param}`, T, async () => {
            const body = { model: MODEL_ID, messages: [USER], max_tokens: 5, ...extra };
            const r = await http(srv, 'POST', '/v1/chat/completions', { body });
            assert.equal(r.status, 400, r.text);
            const e = checkErrorBody(assert, r.json, { type: 'invalid_request_error' });
            assert.equal(e.param, param, e.message);
            const err = await rejectsWith(assert, oa.chat.completions.create(body), OpenAI.BadRequestError, what);
            assert.equal(err.param, param);
        });
    }
});
