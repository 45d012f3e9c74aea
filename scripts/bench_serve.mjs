// Serving concurrency sweep against a running `sov serve` (called by
// scripts/bench_serve.sh; node >= 18, no npm dependencies: global fetch, the
// SSE body stream read by hand).
//
// For each wave of N concurrent clients every client sends one streaming
// /v1/completions request with its own short prompt (max_tokens, temperature
// 0, ignore_eos, stream_options.include_usage) and records, with
// performance.now():
//   TTFT   request start -> first chunk with non-empty text
//   ITL    per chunk: gaps between successive chunks with text (a chunk may
//          carry more than one token, e.g. when the server holds back an
//          incomplete UTF-8 sequence); per token: (t_last - t_first) /
//          (completion_tokens - 1), completion_tokens from the usage chunk
//   aggregate tok/s = generated tokens of the wave / wall time of the wave
// The server's own TTFT/ITL histograms (/metrics, _sum/_count before and
// after each wave) are recorded next to the client's numbers as a check that
// the client is not what is being measured.
//
// usage: node bench_serve.mjs --url URL [--model ID] [--clients 1,2,4,8,16]
//        [--max-tokens 64] [--bench-json FILE] [--out FILE] [--threads N]
//        [--slots N] [--ctx N] [--server-pid PID] [--bench-other-pct P]
//        [--pairs FILE]
// --pairs: JSON list of {bench: sov bench --json, serve: this script's --out
// of a 1-client wave} measured back to back; the single-client target is the
// median over the pairs of (client decode t/s / sov bench tg t/s).
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import os from 'node:os';

const args = { clients: '1,2,4,8,16', 'max-tokens': '64' };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (!a.startsWith('--') || i + 1 >= process.argv.length) {
        console.error(`bench_serve: bad argument '${a}'`);
        process.exit(2);
    }
    args[a.slice(2)] = process.argv[++i];
}
if (!args.url) {
    console.error('bench_serve: --url is required');
    process.exit(2);
}
const URL_ = args.url.replace(/\/$/, '');
const WAVES = args.clients.split(',').map(Number);
const MAX_TOKENS = Number(args['max-tokens']);
const REQ_TIMEOUT_MS = 600_000;

// Distinct short prompts: no client shares more than a token or two of prefix
// with another (the server reuses the longest cached prefix of a slot).
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

async function scrape() {
    try {
        const r = await fetch(`${URL_}/metrics`);
        const text = await r.text();
        const m = {};
        for (const line of text.split('\n')) {
            const g = /^(sov_(?:time_to_first_token_seconds|inter_token_latency_seconds)_(?:sum|count))\{[^}]*\} (\S+)$/.exec(line);
            if (g) m[g[1]] = Number(g[2]);
        }
        return m;
    } catch {
        return null;
    }
}

// One streaming request; all times in ms relative to its own start.
async function oneRequest(model, prompt) {
    const body = JSON.stringify({
        model, prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, stream: true,
        stream_options: { include_usage: true },
    });
    const t0 = performance.now();
    const res = await fetch(`${URL_}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body,
        signal: AbortSignal.timeout(REQ_TIMEOUT_MS),
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const textTimes = []; // arrival time of every chunk with non-empty text
    // maxTextPerRead > 1 would mean text chunks reached the client together
    // (the client, or the network, coalescing them): their gaps would read 0
    let usage = null, done = false, reads = 0, maxTextPerRead = 0, finish = null, nText = 0;
    while (!done) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        const t = performance.now() - t0;
        reads++;
        buf += dec.decode(value, { stream: true });
        let textEvents = 0, sep;
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
                nText += c.text.length;
                textEvents++;
            }
        }
        if (textEvents > maxTextPerRead) maxTextPerRead = textEvents;
    }
    const tEnd = performance.now() - t0;
    if (!done) throw new Error('stream ended without [DONE]');
    if (!usage) throw new Error('no usage chunk (stream_options.include_usage ignored?)');
    if (textTimes.length === 0) throw new Error('no chunk with text');
    const tokens = usage.completion_tokens;
    const gaps = [];
    for (let i = 1; i < textTimes.length; i++) gaps.push(textTimes[i] - textTimes[i - 1]);
    const tFirst = textTimes[0], tLast = textTimes[textTimes.length - 1];
    return {
        prompt, tokens, prompt_tokens: usage.prompt_tokens,
        cached_tokens: usage.prompt_tokens_details ? usage.prompt_tokens_details.cached_tokens : null,
        finish_reason: finish, text_chars: nText,
        ttft_ms: tFirst, t_last_ms: tLast, t_end_ms: tEnd,
        text_chunks: textTimes.length, reads, max_text_chunks_per_read: maxTextPerRead,
        itl_per_token_ms: tokens > 1 ? (tLast - tFirst) / (tokens - 1) : null,
        tok_s: tokens / (tEnd / 1000),
        chunk_gaps_ms: gaps,
        t_start_abs: t0, // for the wave's wall time
    };
}

function pct(xs, p) {
    if (xs.length === 0) return NaN;
    const s = [...xs].sort((a, b) => a - b);
    const r = (p / 100) * (s.length - 1); // linear interpolation between closest ranks
    const lo = Math.floor(r), hi = Math.ceil(r);
    return s[lo] + (s[hi] - s[lo]) * (r - lo);
}
// CPU accounting (Linux /proc): all CPUs' busy time, the server's and this
// client's own, so a wave can say how much of the machine went to the client
// and how much to other processes (which skew everything on a small machine)
const HZ = 100; // USER_HZ, the unit of /proc/stat and /proc/PID/stat
function cpuSnap() {
    const s = { t: performance.now(), node: process.cpuUsage(), busy: null, server: null };
    try {
        const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
        // user nice system idle iowait irq softirq steal
        s.busy = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / HZ;
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
    const r = { wall_s: wall, n_cpus: ncpu, client_cpu_s: client, client_pct_of_machine: (100 * client) / (wall * ncpu) };
    if (a.server !== null && b.server !== null) {
        r.server_cpu_s = b.server - a.server;
        r.server_pct_of_machine = (100 * r.server_cpu_s) / (wall * ncpu);
    }
    if (a.busy !== null && b.busy !== null) {
        r.machine_busy_pct = (100 * (b.busy - a.busy)) / (wall * ncpu);
        if (r.server_cpu_s !== undefined)
            r.other_pct_of_machine = Math.max(0, r.machine_busy_pct - r.server_pct_of_machine - r.client_pct_of_machine);
    }
    return r;
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function wave(model, n) {
    const prompts = Array.from({ length: n }, nextPrompt);
    const m0 = await scrape();
    const c0 = cpuSnap();
    const w0 = performance.now();
    const reqs = await Promise.all(prompts.map((p) => oneRequest(model, p)));
    const wall = (performance.now() - w0) / 1000;
    const cpu = cpuDiff(c0, cpuSnap());
    const m1 = await scrape();
    const tokens = reqs.reduce((a, r) => a + r.tokens, 0);
    const ttft = reqs.map((r) => r.ttft_ms);
    const gaps = reqs.flatMap((r) => r.chunk_gaps_ms);
    const itlTok = reqs.map((r) => r.itl_per_token_ms).filter((x) => x !== null);
    let server = null;
    if (m0 && m1) {
        const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
        const tn = d('sov_time_to_first_token_seconds_count'), in_ = d('sov_inter_token_latency_seconds_count');
        server = {
            ttft_mean_ms: tn > 0 ? (d('sov_time_to_first_token_seconds_sum') / tn) * 1000 : null,
            itl_mean_ms: in_ > 0 ? (d('sov_inter_token_latency_seconds_sum') / in_) * 1000 : null,
            itl_count: in_,
        };
    }
    for (const r of reqs) delete r.t_start_abs;
    return {
        clients: n,
        wall_s: wall,
        tokens,
        agg_tok_s: tokens / wall,
        per_client_tok_s: mean(reqs.map((r) => r.tok_s)),
        ttft_ms: { p50: pct(ttft, 50), p95: pct(ttft, 95), max: Math.max(...ttft) },
        itl_chunk_ms: { p50: pct(gaps, 50), p95: pct(gaps, 95), max: Math.max(...gaps), n: gaps.length },
        itl_token_ms: { p50: pct(itlTok, 50), p95: pct(itlTok, 95), mean: mean(itlTok) },
        tokens_per_text_chunk: tokens / reqs.reduce((a, r) => a + r.text_chunks, 0),
        max_text_chunks_per_read: Math.max(...reqs.map((r) => r.max_text_chunks_per_read)),
        cpu,
        server_metrics: server,
        requests: reqs,
    };
}

function benchTg() {
    if (!args['bench-json']) return null;
    try {
        const j = JSON.parse(readFileSync(args['bench-json'], 'utf8'));
        const r = j.results.find((x) => x.kind === 'tg');
        const o = args['bench-other-pct'] !== undefined ? Number(args['bench-other-pct']) : null;
        return r ? { tps_mean: r.tps_mean, tps_stddev: r.tps_stddev, runs_tps: r.runs_tps, threads: r.threads, test: r.test,
            other_pct_of_machine: o } : null;
    } catch (e) {
        console.error(`bench_serve: cannot read ${args['bench-json']}: ${e.message}`);
        return null;
    }
}

const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pad = (s, w) => String(s).padStart(w);

async function main() {
    const load0 = os.loadavg();
    const model = await getModel();
    const tg = benchTg();
    console.error(`bench_serve: model ${model}, waves ${WAVES.join(',')}, max_tokens ${MAX_TOKENS}; warm-up request`);
    const warm = await oneRequest(model, nextPrompt());
    console.error(`bench_serve: warm-up: ${warm.tokens} tokens in ${f(warm.t_end_ms, 0)} ms`);
    const waves = [];
    for (const n of WAVES) {
        const w = await wave(model, n);
        waves.push(w);
        const s = w.server_metrics, c = w.cpu;
        console.error(`bench_serve: ${n} client(s): ${w.tokens} tokens in ${f(w.wall_s, 2)} s` +
            (s ? `; server /metrics: mean TTFT ${f(s.ttft_mean_ms)} ms, mean ITL ${f(s.itl_mean_ms)} ms` : '') +
            `; CPU (% of machine): client ${f(c.client_pct_of_machine)}` +
            (c.server_pct_of_machine !== undefined ? `, server ${f(c.server_pct_of_machine)}` : '') +
            (c.other_pct_of_machine !== undefined ? `, other processes ${f(c.other_pct_of_machine)}` : ''));
        if (c.other_pct_of_machine > 10)
            console.error(`bench_serve: warning: other processes used ${f(c.other_pct_of_machine)} % of the machine during this wave`);
        for (const r of w.requests)
            if (r.tokens !== MAX_TOKENS || r.finish_reason !== 'length')
                console.error(`bench_serve: warning: request got ${r.tokens} tokens, finish_reason ${r.finish_reason}`);
    }
    const base = waves.find((w) => w.clients === 1) || waves[0];
    for (const w of waves) w.speedup = w.agg_tok_s / base.agg_tok_s;

    const cols = [
        ['clients', 7], ['agg tok/s', 9], ['client tok/s', 12], ['TTFT p50', 8], ['TTFT p95', 8],
        ['ITL p50', 7], ['ITL p95', 7], ['ITL/tok p50', 11], ['speedup', 7], ['client CPU%', 11], ['other CPU%', 10],
    ];
    const line = (vals) => vals.map((v, i) => pad(v, cols[i][1])).join('  ');
    const out = [];
    out.push('sov serve concurrency sweep: ' + `${args.slots ?? '?'} slots, -c ${args.ctx ?? '?'}, ` +
        `${args.threads ?? '?'} threads, ${MAX_TOKENS} tokens per request, temperature 0, ignore_eos`);
    out.push(line(cols.map((c) => c[0])));
    for (const w of waves)
        out.push(line([w.clients, f(w.agg_tok_s), f(w.per_client_tok_s), f(w.ttft_ms.p50, 0), f(w.ttft_ms.p95, 0),
            f(w.itl_chunk_ms.p50), f(w.itl_chunk_ms.p95), f(w.itl_token_ms.p50), f(w.speedup, 2) + 'x',
            f(w.cpu.client_pct_of_machine), f(w.cpu.other_pct_of_machine)]));
    out.push('TTFT and ITL in ms. ITL p50/p95: per-chunk gaps between successive text chunks (all requests of the wave);');
    out.push('ITL/tok p50: median over requests of (t_last - t_first) / (completion_tokens - 1).');
    out.push('client tok/s: mean over requests of completion_tokens / request time; agg tok/s: tokens of the wave / its wall time.');
    out.push('client CPU% / other CPU%: share of all CPUs used by this node client / by processes other than it and sov serve.');

    const ratios = [];
    const w8 = waves.find((w) => w.clients === 8);
    let pairs = null;
    if (args.pairs) {
        try {
            pairs = JSON.parse(readFileSync(args.pairs, 'utf8')).map((p) => {
                const b = p.bench.results.find((x) => x.kind === 'tg');
                const w = p.serve.waves[0];
                const dec = 1000 / w.itl_token_ms.p50;
                return { bench_tg: b.tps_mean, client_decode_tps: dec, client_tps: w.per_client_tok_s, ratio: dec / b.tps_mean };
            });
        } catch (e) {
            console.error(`bench_serve: cannot read ${args.pairs}: ${e.message}`);
        }
    }
    if (pairs && pairs.length) {
        const rs = pairs.map((p) => p.ratio).sort((a, b) => a - b);
        ratios.push({ name: '1 client decode / sov bench tg', value: rs[(rs.length - 1) >> 1], target: 0.95, cmp: '>=', pct: true,
            detail: `median of ${pairs.length} interleaved pairs: ` +
                pairs.map((p) => `${f(p.client_decode_tps)}/${f(p.bench_tg)}`).join(', ') +
                ' t/s (decode = 1000 / ITL per token; sov bench tg64 excludes the prompt too)' });
    }
    if (tg) ratios.push({ name: '1 client / sov bench tg', value: base.agg_tok_s / tg.tps_mean, target: pairs ? null : 0.95, cmp: '>=', pct: true,
        detail: `${f(base.agg_tok_s)} / ${f(tg.tps_mean)} t/s (${tg.test}, ${tg.threads} threads); ` +
            `decode only (1000 / ITL per token): ${f(1000 / base.itl_token_ms.p50)} t/s = ${f(100000 / base.itl_token_ms.p50 / tg.tps_mean)} %` +
            (tg.other_pct_of_machine !== null ? `; other CPU% during sov bench ${f(tg.other_pct_of_machine)}` : '') });
    if (w8) {
        ratios.push({ name: '8 clients / 1 client aggregate', value: w8.agg_tok_s / base.agg_tok_s, target: 3, cmp: '>=',
            detail: `${f(w8.agg_tok_s)} / ${f(base.agg_tok_s)} t/s` });
        ratios.push({ name: 'p95 ITL at 8 clients / at 1 client', value: w8.itl_chunk_ms.p95 / base.itl_chunk_ms.p95, target: 3, cmp: '<=',
            detail: `${f(w8.itl_chunk_ms.p95)} / ${f(base.itl_chunk_ms.p95)} ms, per-chunk` });
    }
    out.push('');
    for (const r of ratios) {
        const v = r.pct ? `${f(r.value * 100)} %` : `${f(r.value, 2)}x`;
        if (r.target === null) { /* shown for reference: the pairs carry the target */
            r.pass = null;
            out.push(`${r.name.padEnd(36)} ${pad(v, 8)}  (with TTFT, bench run minutes apart)   ${r.detail}`);
            continue;
        }
        r.pass = r.cmp === '>=' ? r.value >= r.target : r.value <= r.target;
        const t = r.pct ? `${r.cmp} ${f(r.target * 100, 0)} %` : `${r.cmp} ${r.target}x`;
        out.push(`${r.name.padEnd(36)} ${pad(v, 8)}  (target ${t})  ${r.pass ? 'PASS' : 'MISS'}   ${r.detail}`);
    }
    if (!args.quiet) console.log(out.join('\n'));

    const result = {
        url: URL_, model, max_tokens: MAX_TOKENS, threads: Number(args.threads) || null,
        slots: Number(args.slots) || null, ctx: Number(args.ctx) || null,
        node: process.version, date: new Date().toISOString(), loadavg_start: load0,
        itl_note: 'itl_chunk_ms: gaps between successive chunks with non-empty text; itl_token_ms: per request (t_last - t_first) / (completion_tokens - 1)',
        sov_bench_tg: tg, pairs, warmup: warm,
        waves,
        ratios: ratios.map(({ name, value, target, cmp, pass, detail }) => ({ name, value, target, cmp, pass, detail })),
    };
    if (args.out) {
        writeFileSync(args.out, JSON.stringify(result, null, 2) + '\n');
        console.error(`bench_serve: JSON written to ${args.out}`);
    }
}

main().catch((e) => {
    console.error(`bench_serve: ${e.stack || e}`);
    process.exit(1);
});
