// Prefix sharing benchmark (part of `make bench`, scripts/bench_serve.sh):
// N concurrent completions whose prompts are the same PREFIX token ids
// followed by SUFFIX distinct ids each (prompts as token arrays, so the
// lengths are exact), max_tokens 4, temperature 0. Reports the prompt tokens
// the server evaluated (delta of sov_prompt_tokens_evaluated_total) and the
// p50 / p95 time to first token, as JSON on stdout.
//
// usage: node bench_prefix.mjs --url URL [--clients 16] [--prefix 1000] [--suffix 32] [--vocab 32000]
const args = { clients: '16', prefix: '1000', suffix: '32', vocab: '32000' };
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const URL_ = args.url.replace(/\/$/, '');
const N = Number(args.clients), P = Number(args.prefix), S = Number(args.suffix), V = Number(args.vocab);

let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed; };
const id = () => 3 + (rnd() % (V - 3)); // past the special ids 0..2
const prefix = Array.from({ length: P }, id);

async function metric(name) {
    const t = await (await fetch(`${URL_}/metrics`)).text();
    const m = t.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)`, 'm'));
    return m ? Number(m[1]) : NaN;
}

async function one(model, prompt) {
    const t0 = performance.now();
    const r = await fetch(`${URL_}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt, max_tokens: 4, temperature: 0, ignore_eos: true, stream: true }),
    });
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
    let ttft = null;
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body) {
        buf += dec.decode(chunk, { stream: true });
        if (ttft === null && /"text":"[^"]/.test(buf)) ttft = performance.now() - t0;
    }
    return ttft ?? performance.now() - t0;
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

const model = (await (await fetch(`${URL_}/v1/models`)).json()).data[0].id;
const e0 = await metric('sov_prompt_tokens_evaluated_total');
const t0 = performance.now();
const ttfts = await Promise.all(Array.from({ length: N }, () => one(model, [...prefix, ...Array.from({ length: S }, id)])));
const wall = (performance.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 300)); // the counters are published after each step
const e1 = await metric('sov_prompt_tokens_evaluated_total');
console.log(JSON.stringify({
    clients: N, prefix: P, suffix: S, prompt_tokens: N * (P + S), evaluated: e1 - e0,
    ttft_p50_ms: q(ttfts, 0.5), ttft_p95_ms: q(ttfts, 0.95), wall_s: wall,
}));
