// Constrained output through `sov serve`: response_format json_schema /
// json_object. The shared stories260K model has never seen JSON; every
// sampled completion must still parse and validate against its schema, as
// judged by ajv (an independent, maintained JSON Schema validator), not by
// sov's own code.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, stopAll, client, http, checkErrorBody, pool, MODEL_ID, OpenAI } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCHEMA_DIR = path.join(here, 'schemas');
// 50 per schema; 10 under the sanitizer build (make check), whose engine is ~10x slower
const SAMPLES = Number(process.env.SOV_SCHEMA_SAMPLES || (process.env.SOV_SANITIZED ? 10 : 50));
const MAX_TOKENS = 600;
const T = { timeout: 240000 };

function loadSchemas() {
    return fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json')).sort()
        .map((f) => ({ file: f, ...JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, f), 'utf8')) }));
}

function validator(schema) {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    return ajv.compile(schema);
}

describe('JSON Schema constrained completions (stories260K, temperature 1)', { timeout: 600000 }, () => {
    let srv;
    const schemas = loadSchemas();
    before(async () => {
        srv = await startServer(['-np', '8', '-c', '8192']);
    }, T);
    after(() => stopAll(srv), T);

    test(`at least 20 schemas in tests/api/schemas`, () => {
        assert.ok(schemas.length >= 20, `${schemas.length} schemas`);
    });

    for (const sc of schemas) {
        test(`${sc.file}: ${SAMPLES} samples parse and validate (ajv)`, T, async () => {
            const validate = validator(sc.schema);
            const fails = [];
            let tokens = 0;
            await pool(Array.from({ length: SAMPLES }, (_, i) => async () => {
                const r = await http(srv, 'POST', '/v1/completions', {
                    timeoutMs: 120000,
                    body: {
                        model: MODEL_ID, prompt: 'Once upon a time', max_tokens: MAX_TOKENS, temperature: 1,
                        top_k: 0, top_p: 1, min_p: 0, seed: 1000 + i,
                        response_format: { type: 'json_schema', json_schema: { name: sc.name, schema: sc.schema, strict: true } },
                    },
                });
                if (r.status !== 200) { fails.push(`seed ${1000 + i}: HTTP ${r.status} ${r.text.slice(0, 300)}`); return; }
                const ch = r.json.choices[0];
                tokens += r.json.usage.completion_tokens;
                let v;
                try { v = JSON.parse(ch.text); } catch (e) {
                    fails.push(`seed ${1000 + i}: not JSON (finish ${ch.finish_reason}): ${JSON.stringify(ch.text).slice(0, 300)}`);
                    return;
                }
                if (!validate(v)) fails.push(`seed ${1000 + i}: invalid: ${JSON.stringify(validate.errors).slice(0, 300)} in ${ch.text.slice(0, 200)}`);
                if (ch.finish_reason !== 'stop') fails.push(`seed ${1000 + i}: finish_reason ${ch.finish_reason}`);
            }), 8);
            assert.equal(fails.length, 0, `${fails.length} of ${SAMPLES} failed:\n${fails.slice(0, 5).join('\n')}`);
            console.log(`INFO schema.test.mjs: ${sc.file}: ${SAMPLES} valid, ${(tokens / SAMPLES).toFixed(1)} tokens on average`);
        });
    }

    // any object: its strings have no length bound, and this story model
    // writes stories into them, so a sample may run to max_tokens (then it
    // is cut, finish_reason "length", as OpenAI's json_object mode does);
    // every one that ends by itself must be an object (with this model few
    // do: it writes stories into the strings)
    // batch invariance: constrained and free requests share engine steps
    // without changing each other's output (seeded sampling at temperature 1)
    test('constrained and unconstrained requests in one batch: each as alone', T, async () => {
        const sc = schemas.find((x) => x.file.startsWith('08')) ?? schemas[0];
        const reqs = [];
        for (let i = 0; i < 8; i++) {
            const body = { model: MODEL_ID, prompt: i % 2 ? 'Once upon a time' : 'The little dog', max_tokens: 60,
                temperature: 1, seed: 500 + i };
            if (i % 2 === 0) body.response_format = { type: 'json_schema', json_schema: { name: sc.name, schema: sc.schema, strict: true } };
            reqs.push(body);
        }
        const one = async (b) => {
            const r = await http(srv, 'POST', '/v1/completions', { body: b, timeoutMs: 60000 });
            assert.equal(r.status, 200, r.text);
            return r.json.choices[0].text;
        };
        const alone = [];
        for (const b of reqs) alone.push(await one(b));
        for (let rep = 0; rep < 2; rep++) {
            const together = await Promise.all(reqs.map(one));
            for (let i = 0; i < reqs.length; i++)
                assert.equal(together[i], alone[i], `request ${i} (${i % 2 ? 'free' : 'constrained'}) differs in a batch`);
        }
    });

    test('json_object: any JSON object', T, async () => {
        let stopped = 0;
        const N = 20;
        for (let i = 0; i < N; i++) {
            const r = await http(srv, 'POST', '/v1/completions', {
                body: { model: MODEL_ID, prompt: 'Once', max_tokens: MAX_TOKENS, temperature: 1, seed: i, response_format: { type: 'json_object' } },
            });
            assert.equal(r.status, 200, r.text);
            const ch = r.json.choices[0];
            assert.ok(ch.text.startsWith('{'), ch.text.slice(0, 100));
            assert.ok(ch.finish_reason === 'stop' || ch.finish_reason === 'length', ch.finish_reason);
            if (ch.finish_reason !== 'stop') continue;
            stopped++;
            const v = JSON.parse(ch.text);
            assert.ok(v && typeof v === 'object' && !Array.isArray(v), ch.text);
        }
        console.log(`INFO schema.test.mjs: json_object: ${stopped} of ${N} ended by themselves (all objects)`);
    });

    test('an unsupported keyword in a strict schema is a 400 naming it and its path', T, async () => {
        const r = await http(srv, 'POST', '/v1/completions', {
            body: {
                model: MODEL_ID, prompt: 'x', max_tokens: 4,
                response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: { a: { type: 'string', patternProperties: { x: {} } } } } } },
            },
        });
        assert.equal(r.status, 400, r.text);
        const e = checkErrorBody(assert, r.json, { type: 'invalid_request_error' });
        assert.match(e.message, /patternProperties/);
        assert.match(e.message, /properties\/a/);
        assert.equal(e.param, 'response_format.json_schema.schema');
    });

    test('a bad response_format type is a 400', T, async () => {
        const r = await http(srv, 'POST', '/v1/completions', {
            body: { model: MODEL_ID, prompt: 'x', max_tokens: 4, response_format: { type: 'yaml' } },
        });
        assert.equal(r.status, 400, r.text);
        assert.equal(checkErrorBody(assert, r.json).param, 'response_format.type');
    });

    test('a GBNF grammar field (llama-server) constrains the text', T, async () => {
        const r = await http(srv, 'POST', '/v1/completions', {
            body: { model: MODEL_ID, prompt: 'Once', max_tokens: 50, temperature: 1, seed: 3, grammar: 'root ::= ("yes" | "no") "!"' },
        });
        assert.equal(r.status, 200, r.text);
        assert.match(r.json.choices[0].text, /^(yes|no)!$/);
        assert.equal(r.json.choices[0].finish_reason, 'stop');
    });
});

describe('response_format through the openai client (chat, chatml template)', { timeout: 120000 }, () => {
    let srv, oa;
    before(async () => {
        srv = await startServer(['-np', '4', '--chat-template', 'chatml']);
        oa = client(srv);
    }, T);
    after(() => stopAll(srv), T);

    const schema = {
        type: 'object',
        properties: {
            name: { type: 'string', maxLength: 20 },
            age: { type: 'integer', minimum: 0, maximum: 120 },
            tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, maxItems: 3 },
        },
        required: ['name', 'age', 'tags'],
        additionalProperties: false,
    };

    for (const stream of [false, true]) {
        test(`json_schema content parses and validates (stream ${stream})`, T, async () => {
            const validate = validator(schema);
            for (let i = 0; i < 5; i++) {
                const req = {
                    model: MODEL_ID, temperature: 1, seed: 40 + i, max_tokens: MAX_TOKENS,
                    messages: [{ role: 'user', content: 'Describe a person as JSON.' }],
                    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
                };
                let text = '';
                let finish;
                if (stream) {
                    const s = await oa.chat.completions.create({ ...req, stream: true });
                    for await (const ch of s) {
                        text += ch.choices[0]?.delta?.content ?? '';
                        finish = ch.choices[0]?.finish_reason ?? finish;
                    }
                } else {
                    const r = await oa.chat.completions.create(req);
                    text = r.choices[0].message.content;
                    finish = r.choices[0].finish_reason;
                }
                const v = JSON.parse(text);
                assert.ok(validate(v), `${text}: ${JSON.stringify(validate.errors)}`);
                assert.equal(finish, 'stop');
            }
        });
    }

    test('a strict schema with an unsupported keyword: BadRequestError', T, async () => {
        await assert.rejects(oa.chat.completions.create({
            model: MODEL_ID, max_tokens: 4, messages: [{ role: 'user', content: 'x' }],
            response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema: { type: 'string', contentEncoding: 'base64' } } },
        }), (e) => e instanceof OpenAI.BadRequestError && /contentEncoding/.test(e.message));
    });
});
