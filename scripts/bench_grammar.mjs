// Grammar-constrained sampling cost against a running `sov serve` (called by
// scripts/bench_grammar.sh; node >= 18, no npm dependencies: global fetch,
// the SSE body stream read by hand, as scripts/bench_serve.mjs).
//
// Waves of N concurrent streaming /v1/completions requests (short distinct
// prompts, max_tokens, temperature 1, a seed per client, ignore_eos,
// stream_options.include_usage), unconstrained and constrained by SCHEMA
// below (response_format json_schema, strict), --reps of each, alternating
// U C C U U C ... so that drift of the machine's speed hits both kinds alike.
//
// Decode tok/s of a wave (the same for both kinds): the sum over its
// requests of (completion_tokens - 1) / (t_last - t_first), with t_first /
// t_last the arrival of the request's first / last chunk with text and
// completion_tokens from the usage chunk: the tokens actually generated, so
// a constrained request that stops where its grammar is complete counts what
// it made over the time it took (prompt and first token excluded). The
// wall-time figure (all completion tokens / wave wall time, prompt included)
// is recorded next to it.
//
// Server side, /metrics before and after every wave:
//   mask per token = d sov_grammar_mask_seconds_total / d sov_grammar_masks_total
//   step time      = d sov_inter_token_latency_seconds_sum / d ..._count
//                    (with every stream in every step, the gap between two
//                    tokens of one stream is one engine step, masks included)
//   one step's masks = N streams x mask per token
//
// Every constrained output must parse with JSON.parse and satisfy SCHEMA
// (a small validator of the keywords SCHEMA uses); an output cut by
// max_tokens (finish_reason "length") is expected not to parse, any other
// failure is counted as bad. max_tokens (32) is kept below the length of
// almost every whole document (a random-weight model's documents of this
// schema take some 30-80 tokens), so that the 8 constrained streams stay
// together to the end like the unconstrained ones (a stream that ends early
// leaves a smaller, faster batch to the others); after the timed waves, one more
// wave of N constrained requests with --check-max-tokens (256) lets the
// documents end and checks the whole ones (not part of the speed figures).
//
// usage: node bench_grammar.mjs --url URL [--model ID] [--clients 8]
//        [--max-tokens 32] [--reps 3] [--check-max-tokens 256] [--out FILE]
//        [--threads N] [--slots N] [--ctx N] [--server-pid PID]
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import os from 'node:os';

const args = { clients: '8', 'max-tokens': '32', reps: '3', 'check-max-tokens': '256' };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (!a.startsWith('--') || i + 1 >= process.argv.length) {
        console.error(`bench_grammar: bad argument '${a}'`);
        process.exit(2);
    }
    args[a.slice(2)] = process.argv[++i];
}
if (!args.url) {
    console.error('bench_grammar: --url is required');
    process.exit(2);
}
const URL_ = args.url.replace(/\/$/, '');
const CLIENTS = Number(args.clients);
const MAX_TOKENS = Number(args['max-tokens']);
const REPS = Number(args.reps);
const CHECK_MAX_TOKENS = Number(args['check-max-tokens']);
const REQ_TIMEOUT_MS = 600_000;
const TARGET_TPS_RATIO = 0.9; // constrained decode tok/s >= 90 % of unconstrained
const TARGET_MASK_PCT = 5; // mask time per token <= 5 % of the step time

// An object with a string, an integer and an array of objects, each with an
// enum string and a nested object with a boolean and a number. Strict (as
// OpenAI's structured outputs): every property required, no others.
const SCHEMA = {
    type: 'object',
    properties: {
        name: { type: 'string', maxLength: 40 },
        count: { type: 'integer' },
        items: {
            type: 'array',
            maxItems: 6,
            items: {
                type: 'object',
                properties: {
                    kind: { type: 'string', enum: ['alpha', 'beta', 'gamma', 'delta'] },
                    detail: {
                        type: 'object',
                        properties: { ok: { type: 'boolean' }, score: { type: 'number' } },
                        required: ['ok', 'score'],
                        additionalProperties: false,
                    },
                },
                required: ['kind', 'detail'],
                additionalProperties: false,
            },
        },
    },
    required: ['name', 'count', 'items'],
    additionalProperties: false,
};
const RESPONSE_FORMAT = { type: 'json_schema', json_schema: { name: 'bench_record', schema: SCHEMA, strict: true } };

// The keywords SCHEMA uses; returns null or what is wrong.
function validate(v, s, at = '$') {
    const t = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
    switch (s.type) {
    case 'object':
        if (t !== 'object') return `${at}: ${t}, not an object`;
        for (const k of s.required || []) if (!(k in v)) return `${at}: no '${k}'`;
        for (const k of Object.keys(v)) {
            if (!(k in (s.properties || {}))) {
                if (s.additionalProperties === false) return `${at}: extra '${k}'`;
                continue;
            }
            const e = validate(v[k], s.properties[k], `${at}.${k}`);
            if (e) return e;
        }
        return null;
    case 'array':
        if (t !== 'array') return `${at}: ${t}, not an array`;
        if (s.maxItems !== undefined && v.length > s.maxItems) return `${at}: ${v.length} items > ${s.maxItems}`;
        for (let i = 0; i < v.length; i++) {
            const e = validate(v[i], s.items, `${at}[${i}]`);
            if (e) return e;
        }
        return null;
    case 'string':
        if (t !== 'string') return `${at}: ${t}, not a string`;
        if (s.maxLength !== undefined && [...v].length > s.maxLength) return `${at}: ${[...v].length} characters > ${s.maxLength}`;
        if (s.enum && !s.enum.includes(v)) return `${at}: '${v}' not in the enum`;
        return null;
    case 'integer':
        return Number.isInteger(v) ? null : `${at}: ${JSON.stringify(v)}, not an integer`;
    case 'number':
        return t === 'number' ? null : `${at}: ${t}, not a number`;
    case 'boolean':
        return t === 'boolean' ? null : `${at}: ${t}, not a boolean`;
    default:
        return null;
    }
}

// Distinct short prompts (the server reuses the longest cached prefix of a
// slot; prompt time is not part of the decode figures anyway).
const PROMPTS = [
    'Once upon a time', 'The capital of France is', 'In a distant galaxy', 'My favourite recipe for soup',
    'Water boils at', 'A short poem about autumn:', 'How to fix a bicycle chain', 'Yesterday the market',
    'Dear hiring manager,', 'Photosynthesis converts', 'Three reasons to learn Rust', 'The old lighthouse keeper',
    'Quantum computers use', 'Breaking news from Tokyo', 'Instructions: preheat the oven', 'Every morning the cat',
    'Jupiter has many moons', 'Notes from the meeting on', 'Why is the sky blue?', 'Rain fell over the valley',
    'Summary of chapter one', 'Linux kernel modules are', 'Grandma always said', 'Top ten hiking trails in',
    'Mozart composed his first', 'Vectors and matrices', 'Soccer practice starts', 'An email to the landlord',
    'Volcanoes erupt when', 'Sketch of a medieval castle', 'Kubernetes pods restart', 'Lemon trees need sunlight',
    'Ocean currents carry', 'Binary search works by', 'Chess openings for beginners', 'Fresh bread smells like',
];
let promptNext = 0;
const nextPrompt = () => PROMPTS[promptNext++ % PROMPTS.length];

async function getModel() {
    if (args.model) return args.model;
    const r = await fetch(`${URL_}/v1/models`);
    const j = await r.json();
    return j.data[0].id;
}

// The counters and histogram sums this benchmark reads (labels dropped: one
// model per server).
const SERIES = new Set([
    'sov_grammar_masks_total', 'sov_grammar_mask_seconds_total', 'sov_generated_tokens_total',
    'sov_inter_token_latency_seconds_sum', 'sov_inter_token_latency_seconds_count',
]);
async function scrape() {
    const r = await fetch(`${URL_}/metrics`);
    const text = await r.text();
    const m = {};
    for (const line of text.split('\n')) {
        const g = /^(sov_[a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
        if (g && SERIES.has(g[1])) m[g[1]] = Number(g[2]);
    }
    for (const k of SERIES)
        if (!(k in m)) throw new Error(`/metrics has no ${k} (a server without grammar support?)`);
    return m;
}

// One streaming request; all times in ms relative to its own start.
async function oneRequest(model, prompt, seed, constrained, maxTokens = MAX_TOKENS) {
    const req = {
        model, prompt, max_tokens: maxTokens, temperature: 1, seed, ignore_eos: true, stream: true,
        stream_options: { include_usage: true },
    };
    if (constrained) req.response_format = RESPONSE_FORMAT;
    const t0 = performance.now();
    const res = await fetch(`${URL_}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req),
        signal: AbortSignal.timeout(REQ_TIMEOUT_MS),
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '', text = '';
    const textTimes = []; // arrival time of every chunk with non-empty text
    let usage = null, done = false, finish = null;
    while (!done) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        const t = performance.now() - t0;
        buf += dec.decode(value, { stream: true });
        let sep;
        while ((sep = /\r?\n\r?\n/.exec(buf))) {
            const ev = buf.slice(0, sep.index);
            buf = buf.slice(sep.index + sep[0].length);
            let data = '';
            for (const line of ev.split(/\r?\n/)) if (line.startsWith('data:')) data += line.slice(5).trimStart();
            if (!data) continue;
            if (data === '[DONE]') { done = true; break; }
            const j = JSON.parse(data);
            if (j.error) throw new Error(`stream error: ${JSON.stringify(j.error)}`);
            if (j.usage) usage = j.usage;
            const c = j.choices && j.choices[0];
            if (c && c.finish_reason) finish = c.finish_reason;
            if (c && typeof c.text === 'string' && c.text.length > 0) {
                textTimes.push(t);
                text += c.text;
            }
        }
    }
    const tEnd = performance.now() - t0;
    if (!done) throw new Error('stream ended without [DONE]');
    if (!usage) throw new Error('no usage chunk (stream_options.include_usage ignored?)');
    const tokens = usage.completion_tokens;
    const tFirst = textTimes.length ? textTimes[0] : null, tLast = textTimes.length ? textTimes[textTimes.length - 1] : null;
    const r = {
        prompt, seed, constrained, tokens, finish_reason: finish, text_chunks: textTimes.length,
        ttft_ms: tFirst, t_last_ms: tLast, t_end_ms: tEnd,
        decode_ms: tokens > 1 && tLast > tFirst ? tLast - tFirst : null,
        decode_tok_s: tokens > 1 && tLast > tFirst ? (tokens - 1) / ((tLast - tFirst) / 1000) : null,
        text,
    };
    if (constrained) {
        try {
            const v = JSON.parse(text);
            r.json = 'ok';
            r.schema_error = validate(v, SCHEMA);
            if (r.schema_error) r.json = 'schema';
        } catch (e) {
            r.json = finish === 'length' ? 'cut' : 'bad';
            r.parse_error = e.message;
        }
    }
    return r;
}

// CPU accounting (Linux /proc), as bench_serve.mjs: the server's, this
// client's and everything else's share of the machine during a wave
const HZ = 100; // USER_HZ, the unit of /proc/stat and /proc/PID/stat
function cpuSnap() {
    const s = { t: performance.now(), node: process.cpuUsage(), busy: null, server: null };
    try {
        const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
        s.busy = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / HZ; // user nice system irq softirq steal
    } catch { /* not Linux */ }
    if (args['server-pid']) {
        try {
            const st = readFileSync(`/proc/${args['server-pid']}/stat`, 'utf8');
            const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
            s.server = (Number(f[11]) + Number(f[12])) / HZ; // utime stime
        } catch { /* gone */ }
    }
    return s;
}
function cpuDiff(a, b) {
    const wall = (b.t - a.t) / 1000, ncpu = os.cpus().length;
    const client = (b.node.user - a.node.user + b.node.system - a.node.system) / 1e6;
    const r = { wall_s: wall, n_cpus: ncpu, client_pct_of_machine: (100 * client) / (wall * ncpu) };
    if (a.server !== null && b.server !== null) r.server_pct_of_machine = (100 * (b.server - a.server)) / (wall * ncpu);
    if (a.busy !== null && b.busy !== null) {
        r.machine_busy_pct = (100 * (b.busy - a.busy)) / (wall * ncpu);
        if (r.server_pct_of_machine !== undefined)
            r.other_pct_of_machine = Math.max(0, r.machine_busy_pct - r.server_pct_of_machine - r.client_pct_of_machine);
    }
    return r;
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const mean = (xs) => sum(xs) / xs.length;

async function wave(model, idx, rep, constrained, maxTokens = MAX_TOKENS) {
    const prompts = Array.from({ length: CLIENTS }, nextPrompt);
    const m0 = await scrape();
    const c0 = cpuSnap();
    const w0 = performance.now();
    const reqs = await Promise.all(prompts.map((p, i) => oneRequest(model, p, 1000 * rep + i + 1, constrained, maxTokens)));
    const wall = (performance.now() - w0) / 1000;
    const cpu = cpuDiff(c0, cpuSnap());
    const m1 = await scrape();
    const d = (k) => m1[k] - m0[k];
    const tokens = sum(reqs.map((r) => r.tokens));
    const rated = reqs.filter((r) => r.decode_tok_s !== null);
    const masks = d('sov_grammar_masks_total'), maskS = d('sov_grammar_mask_seconds_total');
    const itlN = d('sov_inter_token_latency_seconds_count'), itlS = d('sov_inter_token_latency_seconds_sum');
    const w = {
        wave: idx, rep, kind: constrained ? 'constrained' : 'unconstrained', clients: CLIENTS, max_tokens: maxTokens,
        wall_s: wall, tokens,
        decode_tok_s: sum(rated.map((r) => r.decode_tok_s)), // the figure compared
        decode_rated_requests: rated.length,
        wall_tok_s: tokens / wall,
        tokens_min: Math.min(...reqs.map((r) => r.tokens)), tokens_max: Math.max(...reqs.map((r) => r.tokens)),
        ended_early: reqs.filter((r) => r.tokens < maxTokens).length, // before max_tokens: the grammar ended them
        finish: reqs.reduce((o, r) => ((o[r.finish_reason] = (o[r.finish_reason] || 0) + 1), o), {}),
        server: {
            masks, mask_s: maskS, itl_count: itlN, itl_sum_s: itlS,
            generated_tokens: d('sov_generated_tokens_total'),
            mask_per_token_us: masks > 0 ? (maskS / masks) * 1e6 : null,
            step_ms: itlN > 0 ? (itlS / itlN) * 1e3 : null,
        },
        cpu,
        requests: reqs,
    };
    const s = w.server;
    if (s.mask_per_token_us !== null && s.step_ms !== null) {
        s.mask_pct_of_step = (100 * s.mask_per_token_us) / 1000 / s.step_ms;
        s.step_masks_pct_of_step = CLIENTS * s.mask_pct_of_step;
    }
    if (constrained) {
        w.json = { ok: 0, cut: 0, schema: 0, bad: 0 };
        for (const r of reqs) w.json[r.json]++;
    }
    return w;
}

const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pad = (s, w) => String(s).padStart(w);

async function main() {
    const load0 = os.loadavg();
    const model = await getModel();
    await scrape(); // fails early on a server without the grammar series
    console.error(`bench_grammar: model ${model}, ${CLIENTS} clients, max_tokens ${MAX_TOKENS}, ${REPS} reps of each kind; warm-up`);
    // warm-up: one of each kind; the first constrained request builds the
    // vocabulary's token trie (once per server), which no wave should pay
    const warmU = await oneRequest(model, nextPrompt(), 1, false, 8);
    const warmC = await oneRequest(model, nextPrompt(), 1, true, 8);
    console.error(`bench_grammar: warm-up: unconstrained TTFT ${f(warmU.ttft_ms, 0)} ms, ` +
        `first constrained TTFT ${f(warmC.ttft_ms, 0)} ms (grammar compile + vocabulary trie)`);
    for (const r of [warmU, warmC]) delete r.text;

    const waves = [];
    for (let rep = 1; rep <= REPS; rep++) {
        const order = rep % 2 === 1 ? [false, true] : [true, false];
        for (const c of order) {
            const w = await wave(model, waves.length + 1, rep, c);
            waves.push(w);
            const s = w.server;
            console.error(`bench_grammar: wave ${w.wave} ${w.kind}: ${w.tokens} tokens (${w.tokens_min}-${w.tokens_max} per request) ` +
                `in ${f(w.wall_s, 2)} s, decode ${f(w.decode_tok_s)} tok/s, step ${f(s.step_ms)} ms` +
                (c ? `, mask ${f(s.mask_per_token_us)} us/token (${s.masks} masks), JSON ok ${w.json.ok} cut ${w.json.cut} ` +
                    `schema ${w.json.schema} bad ${w.json.bad}` : '') +
                `; CPU (% of machine): client ${f(w.cpu.client_pct_of_machine)}` +
                (w.cpu.server_pct_of_machine !== undefined ? `, server ${f(w.cpu.server_pct_of_machine)}` : '') +
                (w.cpu.other_pct_of_machine !== undefined ? `, other ${f(w.cpu.other_pct_of_machine)}` : ''));
            if (w.cpu.other_pct_of_machine > 10)
                console.error(`bench_grammar: warning: other processes used ${f(w.cpu.other_pct_of_machine)} % of the machine during this wave`);
            if (!c && s.masks !== 0) console.error(`bench_grammar: warning: an unconstrained wave computed ${s.masks} grammar masks`);
            if (c && s.masks < w.tokens) console.error(`bench_grammar: warning: ${s.masks} masks for ${w.tokens} constrained tokens`);
            for (const r of w.requests) {
                if (!c && (r.tokens !== MAX_TOKENS || r.finish_reason !== 'length'))
                    console.error(`bench_grammar: warning: unconstrained request got ${r.tokens} tokens, finish_reason ${r.finish_reason}`);
                if (c && (r.json === 'bad' || r.json === 'schema'))
                    console.error(`bench_grammar: constrained output (finish_reason ${r.finish_reason}) ` +
                        `${r.json === 'bad' ? 'does not parse: ' + r.parse_error : 'breaks the schema: ' + r.schema_error}: ${JSON.stringify(r.text).slice(0, 300)}`);
            }
        }
    }

    // whole documents: the grammar ends them (finish_reason stop)
    let check = null;
    if (CHECK_MAX_TOKENS > 0) {
        const w = await wave(model, 0, 99, true, CHECK_MAX_TOKENS);
        const stop = w.requests.filter((r) => r.finish_reason === 'stop');
        check = {
            max_tokens: CHECK_MAX_TOKENS, requests: w.requests.length, json: w.json, finish: w.finish,
            tokens_min: w.tokens_min, tokens_max: w.tokens_max,
            tokens_mean_stopped: stop.length ? mean(stop.map((r) => r.tokens)) : null,
            mask_per_token_us: w.server.mask_per_token_us, masks: w.server.masks, step_ms: w.server.step_ms,
            outputs: w.requests.map(({ seed, tokens, finish_reason, json, schema_error, parse_error, text }) =>
                ({ seed, tokens, finish_reason, json, schema_error, parse_error, text })),
        };
        console.error(`bench_grammar: check wave (max_tokens ${CHECK_MAX_TOKENS}): ${stop.length} of ${w.requests.length} ` +
            `documents ended by the grammar (${w.tokens_min}-${w.tokens_max} tokens), JSON ok ${w.json.ok} cut ${w.json.cut} ` +
            `schema ${w.json.schema} bad ${w.json.bad}; mask ${f(w.server.mask_per_token_us)} us/token`);
        for (const r of w.requests)
            if (r.json === 'bad' || r.json === 'schema')
                console.error(`bench_grammar: constrained output (finish_reason ${r.finish_reason}) ` +
                    `${r.json === 'bad' ? 'does not parse: ' + r.parse_error : 'breaks the schema: ' + r.schema_error}: ${JSON.stringify(r.text).slice(0, 300)}`);
        if (stop.length) console.error(`bench_grammar: a whole document: ${stop[0].text}`);
    }

    const U = waves.filter((w) => w.kind === 'unconstrained'), C = waves.filter((w) => w.kind === 'constrained');
    const uTps = mean(U.map((w) => w.decode_tok_s)), cTps = mean(C.map((w) => w.decode_tok_s));
    const tpsRatio = cTps / uTps;
    // pooled over the constrained waves: sums of the deltas
    const pool = (ws) => {
        const masks = sum(ws.map((w) => w.server.masks)), maskS = sum(ws.map((w) => w.server.mask_s));
        const n = sum(ws.map((w) => w.server.itl_count)), s = sum(ws.map((w) => w.server.itl_sum_s));
        return { masks, mask_s: maskS, mask_per_token_us: masks ? (maskS / masks) * 1e6 : null, step_ms: n ? (s / n) * 1e3 : null };
    };
    const pc = pool(C), pu = pool(U);
    const maskPct = (100 * pc.mask_per_token_us) / 1000 / pc.step_ms;
    const stepMasksPct = CLIENTS * maskPct;
    const json = C.reduce((o, w) => { for (const k in w.json) o[k] = (o[k] || 0) + w.json[k]; return o; }, {});
    const nC = sum(C.map((w) => w.requests.length));
    const early = sum(C.map((w) => w.ended_early));

    const cols = [['wave', 4], ['kind', 13], ['decode tok/s', 12], ['wall tok/s', 10], ['tokens', 6], ['step ms', 7],
        ['mask us/tok', 11], ['mask % step', 11], [`${CLIENTS} masks % step`, 14], ['JSON ok/cut/bad', 15], ['other CPU%', 10]];
    const line = (vals) => vals.map((v, i) => pad(v, cols[i][1])).join('  ');
    const out = [];
    out.push(`grammar-constrained sampling: ${args.slots ?? '?'} slots, -c ${args.ctx ?? '?'}, ${args.threads ?? '?'} threads, ` +
        `${CLIENTS} concurrent streaming clients, max_tokens ${MAX_TOKENS}, temperature 1, ignore_eos; ` +
        `${REPS} waves of each kind, alternating`);
    out.push(line(cols.map((c) => c[0])));
    for (const w of waves) {
        const s = w.server;
        const c = w.kind === 'constrained';
        out.push(line([w.wave, w.kind, f(w.decode_tok_s), f(w.wall_tok_s), w.tokens, f(s.step_ms),
            c ? f(s.mask_per_token_us) : '-', c ? f(s.mask_pct_of_step, 2) : '-', c ? f(s.step_masks_pct_of_step, 1) : '-',
            c ? `${w.json.ok}/${w.json.cut}/${w.json.bad + w.json.schema}` : '-', f(w.cpu.other_pct_of_machine)]));
    }
    out.push('decode tok/s: sum over the requests of (completion_tokens - 1) / (t_last_chunk - t_first_chunk), prompt and first');
    out.push('token excluded, the tokens actually generated (a constrained request may stop where its grammar ends);');
    out.push('wall tok/s: completion tokens / wave wall time. step ms: d sov_inter_token_latency_seconds sum/count');
    out.push('(/metrics; one engine step per token of a stream, masks included). mask us/tok: d sov_grammar_mask_seconds_total /');
    out.push(`d sov_grammar_masks_total. ${CLIENTS} masks % step: ${CLIENTS} streams x mask per token / step time. JSON: outputs that parse`);
    out.push('and satisfy the schema / cut by max_tokens (finish_reason length) / any other failure.');
    out.push('');
    const targets = [
        { name: 'constrained / unconstrained decode tok/s', value: 100 * tpsRatio, target: `>= ${100 * TARGET_TPS_RATIO} %`,
            met: tpsRatio >= TARGET_TPS_RATIO,
            detail: `means of ${C.length} and ${U.length} waves: ${f(cTps)} / ${f(uTps)} tok/s (${C.map((w) => f(w.decode_tok_s)).join(', ')} / ` +
                `${U.map((w) => f(w.decode_tok_s)).join(', ')}); "<= 10 % lower"` },
        { name: `mask time per token / step time`, value: maskPct, target: `<= ${TARGET_MASK_PCT} %`, met: maskPct <= TARGET_MASK_PCT,
            detail: `${f(pc.mask_per_token_us)} us / ${f(pc.step_ms)} ms, ${pc.masks} masks of ${C.length} constrained waves pooled, ` +
                `${CLIENTS} concurrent constrained streams` },
        { name: `${CLIENTS} streams' masks / step time`, value: stepMasksPct, target: null, met: null,
            detail: `${CLIENTS} x ${f(pc.mask_per_token_us)} us = ${f((CLIENTS * pc.mask_per_token_us) / 1000, 2)} ms of a ` +
                `${f(pc.step_ms)} ms step; unconstrained step ${f(pu.step_ms)} ms (difference ${f(pc.step_ms - pu.step_ms, 2)} ms)` },
    ];
    for (const t of targets)
        out.push(`${t.name.padEnd(42)} ${pad(f(t.value, t.value < 10 ? 2 : 1) + ' %', 9)}  ` +
            (t.target ? `(target ${t.target})`.padEnd(18) + `  ${t.met ? 'met' : 'NOT met'}`.padEnd(9) : '(for reference)'.padEnd(27)) +
            `  ${t.detail}`);
    out.push(`constrained outputs: ${json.ok} of ${nC} parse and satisfy the schema, ${json.cut} cut by max_tokens, ` +
        `${json.schema} parse but break the schema, ${json.bad} fail otherwise` + (json.schema + json.bad ? '  <- BAD' : '') +
        `; ${early} ended before max_tokens`);
    if (check)
        out.push(`whole documents (one more wave, max_tokens ${check.max_tokens}): ${check.json.ok} of ${check.requests} parse and ` +
            `satisfy the schema, ${check.json.cut} cut, ${check.json.schema + check.json.bad} bad` +
            (check.json.schema + check.json.bad ? '  <- BAD' : '') +
            (check.tokens_mean_stopped !== null ? `; ended by the grammar after ${f(check.tokens_mean_stopped, 0)} tokens on average` : ''));
    console.log(out.join('\n'));

    const result = {
        url: URL_, model, clients: CLIENTS, max_tokens: MAX_TOKENS, reps: REPS, temperature: 1,
        threads: Number(args.threads) || null, slots: Number(args.slots) || null, ctx: Number(args.ctx) || null,
        node: process.version, date: new Date().toISOString(), loadavg_start: load0,
        schema: SCHEMA,
        decode_note: 'decode_tok_s: sum over requests of (completion_tokens - 1) / (t_last - t_first), chunks with text; ' +
            'wall_tok_s: completion tokens / wave wall time',
        warmup: { unconstrained: warmU, constrained: warmC },
        check,
        summary: {
            unconstrained_decode_tok_s: uTps, constrained_decode_tok_s: cTps, tok_s_ratio: tpsRatio,
            mask_per_token_us: pc.mask_per_token_us, constrained_step_ms: pc.step_ms, unconstrained_step_ms: pu.step_ms,
            mask_pct_of_step: maskPct, step_masks_pct_of_step: stepMasksPct, masks: pc.masks, json, constrained_ended_early: early,
        },
        targets: targets.map(({ name, value, target, met, detail }) => ({ name, value_pct: value, target, met, detail })),
        waves,
    };
    if (args.out) {
        writeFileSync(args.out, JSON.stringify(result, null, 2) + '\n');
        console.error(`bench_grammar: JSON written to ${args.out}`);
    }
}

main().catch((e) => {
    console.error(`bench_grammar: ${e.stack || e}`);
    process.exit(1);
});
