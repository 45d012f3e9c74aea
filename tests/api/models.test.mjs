// /v1/models, /health, /metrics, unknown routes, the model alias (-a).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopAll, client, http, checkErrorBody, rejectsWith, OpenAI, MODEL_ID } from './lib.mjs';

const T = { timeout: 30000 };

describe('models and service routes', { timeout: 90000 }, () => {
    let srv, oa;
    before(async () => {
        srv = await startServer();
        oa = client(srv);
    }, T);
    after(() => stopAll(srv), T);

    test('the listening line shows 127.0.0.1 and a real port', T, () => {
        assert.equal(srv.listenHost, '127.0.0.1', `listening line: ${srv.listenLine}`);
        assert.ok(srv.port > 0 && srv.port < 65536, `port ${srv.port}`);
    });

    test('GET /health is 200 with status "ok"', T, async () => {
        const r = await http(srv, 'GET', '/health');
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json, `not JSON: ${r.text}`);
        assert.equal(r.json.status, 'ok');
    });

    test('models.list() includes stories260K', T, async () => {
        const page = await oa.models.list();
        const ids = page.data.map((m) => m.id);
        assert.ok(ids.includes(MODEL_ID), `ids: ${JSON.stringify(ids)}`);
        for (const m of page.data) assert.equal(m.object, 'model');
    });

    test('models.retrieve(stories260K) returns an object "model"', T, async () => {
        const m = await oa.models.retrieve(MODEL_ID);
        assert.equal(m.object, 'model');
        assert.equal(m.id, MODEL_ID);
    });

    test('models.retrieve(nope) throws NotFoundError', T, async () => {
        const e = await rejectsWith(assert, oa.models.retrieve('nope'), OpenAI.NotFoundError);
        assert.equal(e.status, 404);
    });

    test('GET /metrics is text with sov_requests_total and sov_time_to_first_token_seconds_bucket', T, async () => {
        // one request first, so that every series has had something to count
        await oa.completions.create({ model: MODEL_ID, prompt: 'Hi', max_tokens: 2, temperature: 0 });
        const r = await http(srv, 'GET', '/metrics');
        assert.equal(r.status, 200, r.text.slice(0, 300));
        const ct = r.headers.get('content-type') ?? '';
        assert.match(ct, /^text\//, `content-type ${ct}`);
        assert.match(r.text, /^sov_requests_total(\{[^}]*\})? /m, 'sov_requests_total sample');
        assert.match(r.text, /^sov_time_to_first_token_seconds_bucket\{/m, 'sov_time_to_first_token_seconds_bucket sample');
    });

    test('unknown route GET /v1/nope is 404 with an OpenAI error body', T, async () => {
        const r = await http(srv, 'GET', '/v1/nope');
        assert.equal(r.status, 404, r.text);
        checkErrorBody(assert, r.json);
    });
});

describe('model alias -a tiny', { timeout: 90000 }, () => {
    let srv, oa;
    before(async () => {
        srv = await startServer(['-a', 'tiny']);
        oa = client(srv);
    }, T);
    after(() => stopAll(srv), T);

    test('alias: models.list() lists id "tiny" (and not stories260K)', T, async () => {
        const ids = (await oa.models.list()).data.map((m) => m.id);
        assert.ok(ids.includes('tiny'), `ids: ${JSON.stringify(ids)}`);
        assert.ok(!ids.includes(MODEL_ID), `ids: ${JSON.stringify(ids)}`);
        const m = await oa.models.retrieve('tiny');
        assert.equal(m.object, 'model');
        assert.equal(m.id, 'tiny');
    });

    test('alias: completions naming "tiny" work', T, async () => {
        const r = await oa.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
        assert.equal(r.model, 'tiny');
        assert.equal(typeof r.choices[0].text, 'string');
    });

    test('alias: requests naming stories260K are 404', T, async () => {
        await rejectsWith(assert, oa.models.retrieve(MODEL_ID), OpenAI.NotFoundError, 'models.retrieve');
        const e = await rejectsWith(assert,
            oa.completions.create({ model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 }),
            OpenAI.NotFoundError, 'completions.create');
        assert.equal(e.status, 404);
    });
});
