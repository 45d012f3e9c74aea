// The status page, every 2 s: backends with health and breaker
// (GET /v1/backends), queue, slots, KV cache, latency and tokens served
// (GET /metrics, Prometheus text), the routing log (GET /v1/routes?after=N,
// newest first), and the tokens served valued at the planner's cloud prices
// (GET /v1/plan); the plan report (GET /v1/plan/report) in a frame.
'use strict';

(() => {
  const { $, el, num } = sov;
  const POLL_MS = 2000, KEEP_ROUTES = 200, SHOW_ROUTES = 60;
  let prices = null, sources = [], lastSeq = 0, routes = [], timer = null, reportUrl = null, stopped = false;

  function set(id, v) { $(id).textContent = v; }

  function pill(text, cls) { return el('span', 'pill ' + cls, text); }

  function row(cells) {
    const tr = el('tr');
    for (const c of cells) {
      const td = el('td', c.cls || '');
      if (c.node) td.appendChild(c.node); else td.textContent = c.text === undefined ? '' : String(c.text);
      if (c.title) td.title = c.title;
      tr.appendChild(td);
    }
    return tr;
  }

  function showBackends(list, models) {
    const body = $('backend-rows');
    body.textContent = '';
    if (!list.length) body.appendChild(row([{ text: 'no backend', cls: 'muted' }]));
    for (const b of list) {
      const hcls = b.health === 'up' ? 'good' : b.health === 'down' ? 'bad' : 'warn';
      const bcls = b.breaker === 'closed' ? 'good' : b.breaker === 'open' ? 'bad' : 'warn';
      const health = pill(b.health, hcls);
      body.appendChild(row([
        { text: b.name, cls: 'strong' },
        { text: b.type === b.location ? b.type : `${b.type} (${b.location})` },
        { node: health, title: b.health_error || `checked in ${num(b.health_check_ms, 1)} ms` },
        { node: pill(b.breaker, bcls), title: `${b.consecutive_failures} consecutive failures, opened ${b.breaker_opens} times` },
        { text: b.in_flight, cls: 'n' },
        { text: b.queued < 0 ? '\u2013' : b.queued, cls: 'n' },
        { text: b.slots > 0 ? `${b.running} / ${b.slots}` : '\u2013', cls: 'n' },
        { text: b.loaded ? 'yes' : 'no' },
        { text: b.memory_bytes > 0 ? sov.bytes(b.memory_bytes) : '\u2013', cls: 'n' },
        { text: `${b.requests_ok} / ${b.requests_failed} / ${b.requests_client_gone}`, cls: 'n' },
        { text: b.where + (b.health_error ? ` (${b.health_error})` : ''), cls: 'where' },
      ]));
    }
    const single = models.length === 1 && list.length === 1 && models[0].id === list[0].name;
    set('t-mode', single ? 'one model' : 'router');
    set('t-mode-sub', single ? `sov serve -m: ${list[0].name}`
      : `${models.length} model${models.length === 1 ? '' : 's'}, ${list.length} backend${list.length === 1 ? '' : 's'} ` +
        `(${list.filter((b) => b.health === 'up').length} up)`);
  }

  function showMetrics(text) {
    const m = sov.parseMetrics(text);
    const sum = (name, match) => sov.metricSum(m, name, match);
    const gen = (sum('sov_requests_total', { endpoint: '/v1/chat/completions' }) || 0) +
      (sum('sov_requests_total', { endpoint: '/v1/completions' }) || 0);
    set('t-requests', num(gen));
    const pt = sum('sov_prompt_tokens_total') || 0, gt = sum('sov_generated_tokens_total') || 0;
    const ct = sum('sov_prompt_cached_tokens_total') || 0;
    set('t-tokens', num(pt + gt));
    set('t-tokens-sub', `${num(pt)} prompt (${num(ct)} from the prefix cache) + ${num(gt)} generated, by this ` +
      'server\'s local models');
    if (prices) {
      const saved = pt * prices.in_per_m / 1e6 + gt * prices.out_per_m / 1e6;
      set('t-saved', sov.money(saved, prices.currency));
      set('t-saved-sub', `the same tokens from a cloud API at ${sov.money(prices.in_per_m, prices.currency)} in / ` +
        `${sov.money(prices.out_per_m, prices.currency)} out per 1M (the plan's prices), before electricity`);
    }
    const q = sum('sov_queue_depth'), sa = sum('sov_slots_active'), st = sum('sov_slots_total');
    set('t-queue', num(q));
    set('t-slots', st ? `${num(sa)} / ${num(st)}` : '\u2013');
    const ku = sum('sov_kv_positions_used'), kt = sum('sov_kv_positions_total');
    const bt = sum('sov_kv_blocks_total'), bu = sum('sov_kv_blocks_used'), bc = sum('sov_kv_blocks_cached');
    const bb = sum('sov_kv_block_bytes');
    if (kt) {
      const share = ku / kt;
      set('t-kv', `${(100 * share).toFixed(1)} %`);
      $('t-kv-bar').style.width = `${Math.min(100, 100 * share).toFixed(1)}%`;
      set('t-kv-sub', `${num(ku)} of ${num(kt)} positions; blocks ${num(bu)} used, ${num(bc)} cached, ` +
        `${num(bt)} in all` + (bb ? ` (${sov.bytes(bb)} each)` : ''));
    } else {
      set('t-kv', '\u2013');
      set('t-kv-sub', 'no local model loaded');
    }
    const tc = sum('sov_time_to_first_token_seconds_count'), ts = sum('sov_time_to_first_token_seconds_sum');
    const ic = sum('sov_inter_token_latency_seconds_count'), is = sum('sov_inter_token_latency_seconds_sum');
    set('t-ttft', tc ? `${num(1000 * ts / tc, 1)} ms` : '\u2013');
    $('t-ttft').title = 'mean time to the first token';
    set('t-itl', ic ? `first token (mean); then ${num(1000 * is / ic, 2)} ms a token, ${num(ic / is, 0)} tok/s a stream`
      : 'mean time to the first token');
  }

  function showRoutes(j) {
    if (j.last_seq < lastSeq) routes = []; // another server answered: start again
    routes = [...(j.data || []), ...routes].slice(0, KEEP_ROUTES);
    lastSeq = j.last_seq;
    const body = $('route-rows');
    body.textContent = '';
    if (!routes.length) body.appendChild(row([{ text: 'no request yet', cls: 'muted' }]));
    for (const r of routes.slice(0, SHOW_ROUTES)) {
      const scls = r.status === 499 ? 'warn' : r.status >= 400 || r.broken ? 'bad' : 'good';
      const status = pill(r.status === 499 ? '499 left' : String(r.status) + (r.broken ? ' broken' : ''), scls);
      const tok = (x) => (x === null || x === undefined ? '\u2013' : num(x));
      body.appendChild(row([
        { text: sov.clock(r.time) },
        { text: r.id, cls: 'mono' },
        { text: r.model + (r.local_only ? ' (local-only)' : '') },
        { text: r.backend, cls: 'strong' },
        { text: r.decision },
        { text: r.reason, cls: 'reason' },
        { node: status, cls: 'n' },
        { text: `${tok(r.tokens_in)} / ${tok(r.tokens_out)}`, cls: 'n' },
        { text: `${num(r.latency_ms, 0)} ms`, cls: 'n' },
      ]));
    }
  }

  async function loadPlan() {
    try {
      const j = await sov.json('/v1/plan');
      prices = j.prices;
      sources = j.sources || [];
      const p = prices;
      set('plan-prices', `Cloud prices per 1M tokens: ${sov.money(p.in_per_m, p.currency)} in, ` +
        `${sov.money(p.out_per_m, p.currency)} out (${p.in_out_ratio} input token${p.in_out_ratio === 1 ? '' : 's'} ` +
        'per output token); ' +
        `electricity ${sov.money(p.tariff_kwh, p.currency)} per kWh; ${Math.round(100 * p.duty)} % of the day ` +
        `generating; hardware written off over ${p.amortize_months} months.`);
      const ul = $('plan-sources');
      ul.textContent = '';
      for (const s of sources) ul.appendChild(el('li', '', s));
    } catch (e) {
      sov.report('Cannot read the plan\'s prices (GET /v1/plan)', e);
      throw e;
    }
  }

  // The report, fetched with the key and shown from a blob.
  async function loadReport() {
    const r = await sov.api('/v1/plan/report');
    if (!r.ok) throw await sov.errorOf(r);
    const blob = new Blob([await r.arrayBuffer()], { type: 'text/html' });
    if (reportUrl) URL.revokeObjectURL(reportUrl);
    reportUrl = URL.createObjectURL(blob);
    $('report-open').href = reportUrl;
    return reportUrl;
  }

  async function poll() {
    timer = null;
    try {
      const [backends, models, metrics, rj] = await Promise.all([
        sov.json('/v1/backends'), sov.json('/v1/models'), sov.text('/metrics'),
        sov.json(`/v1/routes?after=${lastSeq}`),
      ]);
      showBackends(backends.data || [], models.data || []);
      showMetrics(metrics);
      showRoutes(rj);
      set('updated', `updated ${new Date().toLocaleTimeString('en-GB', { hour12: false })}, every ` +
        `${POLL_MS / 1000} s`);
      if (!stopped) sov.notice('');
    } catch (e) {
      sov.report('Cannot read the server\'s state', e);
      if (e instanceof sov.ApiError && e.status === 401) { stopped = true; return; } // until a key is saved
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  async function start() {
    stopped = false;
    if (timer) clearTimeout(timer);
    lastSeq = 0;
    routes = [];
    try {
      await loadPlan();
    } catch (e) {
      if (e instanceof sov.ApiError && e.status === 401) return;
    }
    poll();
    loadReport().catch((e) => sov.report('Cannot make the plan report (GET /v1/plan/report)', e));
  }

  $('report-show').addEventListener('click', async () => {
    const f = $('report');
    if (!f.hidden) {
      f.hidden = true;
      $('report-show').textContent = 'Show the plan report';
      return;
    }
    try {
      f.src = reportUrl || await loadReport();
      f.hidden = false;
      $('report-show').textContent = 'Hide the plan report';
    } catch (e) {
      sov.report('Cannot make the plan report (GET /v1/plan/report)', e);
    }
  });
  sov.keyForm(start);
  sov.health();
  start();
})();
