// The console's shared part: the API key (kept in localStorage, sent as
// "Authorization: Bearer KEY"), calls to the server's public API, the
// notice line, the health pill in the header, small formatting helpers and
// a parser of the Prometheus text format. Both pages load it first.
'use strict';

const sov = (() => {
  const KEY = 'sov.apiKey';
  const $ = (id) => document.getElementById(id);

  // localStorage, where the browser allows it
  function load(k) {
    try { return localStorage.getItem(k) || ''; } catch (e) { return ''; }
  }
  function store(k, v) {
    try {
      if (v) localStorage.setItem(k, v); else localStorage.removeItem(k);
    } catch (e) { /* storage disabled: kept for this page only */ }
  }
  function key() { return load(KEY); }
  function setKey(k) {
    store(KEY, k);
    memoryKey = k;
  }
  let memoryKey = key();

  // An error answer of the API: status, OpenAI-shaped message and code.
  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code || null;
    }
  }

  // fetch() with the key, when one is set.
  function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const k = memoryKey || key();
    if (k) headers.set('Authorization', 'Bearer ' + k);
    return fetch(path, { ...init, headers, cache: 'no-store' });
  }

  // The ApiError of a response that is not ok.
  async function errorOf(r) {
    let msg = `HTTP ${r.status}`, code = null;
    try {
      const j = await r.json();
      if (j && j.error) { msg = j.error.message || msg; code = j.error.code || null; }
    } catch (e) { /* not JSON */ }
    return new ApiError(r.status, msg, code);
  }

  async function json(path) {
    const r = await api(path);
    if (!r.ok) throw await errorOf(r);
    return r.json();
  }

  async function text(path) {
    const r = await api(path);
    if (!r.ok) throw await errorOf(r);
    return r.text();
  }

  function notice(msg, kind = 'info') {
    const n = $('notice');
    if (!n) return;
    n.textContent = msg;
    n.className = 'notice ' + kind;
    n.hidden = !msg;
  }

  // The server wants a key: say so and point at the field.
  function needKey(err) {
    const k = memoryKey || key();
    notice(k ? `The server refused the API key saved here (${err ? err.message : '401'}). Enter the right key ` +
                 'in the API key field above and press Save.'
             : 'This server requires an API key. Enter it in the API key field above and press Save ' +
                 '(it is kept in this browser\'s local storage and sent as "Authorization: Bearer KEY").',
           'error');
    const f = $('key');
    if (f) { f.classList.add('wanted'); f.focus(); }
  }

  // An error of a call: 401 asks for the key, anything else is shown.
  function report(what, err) {
    if (err instanceof ApiError && err.status === 401) needKey(err);
    else notice(`${what}: ${err.message || err}`, 'error');
  }

  // The key form in the header; onChange runs after Save / Forget.
  function keyForm(onChange) {
    const f = $('keyform'), input = $('key');
    input.value = key();
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      setKey(input.value.trim());
      input.classList.remove('wanted');
      notice('');
      onChange();
    });
    $('keyforget').addEventListener('click', () => {
      input.value = '';
      setKey('');
      notice('');
      onChange();
    });
  }

  // The health pill: GET /health every 5 s.
  function health() {
    const pill = $('health');
    const tick = async () => {
      let state = 'unreachable', cls = 'bad';
      try {
        const r = await fetch('/health', { cache: 'no-store' });
        const j = await r.json().catch(() => ({}));
        state = r.ok ? 'ready' : (j.status || `HTTP ${r.status}`);
        cls = r.ok ? 'good' : 'warn';
      } catch (e) { /* the server is gone */ }
      pill.textContent = state;
      pill.className = 'pill ' + cls;
      setTimeout(tick, 5000);
    };
    tick();
  }

  // ---- formatting ----
  function num(x, digits = 0) {
    if (x === null || x === undefined || !Number.isFinite(x)) return '\u2013';
    return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function bytes(x) {
    if (!Number.isFinite(x) || x < 0) return '\u2013';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return `${x.toFixed(i ? 1 : 0)} ${u[i]}`;
  }
  function money(x, currency) {
    if (!Number.isFinite(x)) return '\u2013';
    // cents, or up to 6 decimals below 1 (the cost of a few tokens)
    const digits = x !== 0 && Math.abs(x) < 1 ? 6 : 2;
    try {
      return x.toLocaleString('en-US', { style: 'currency', currency: currency || 'USD',
        minimumFractionDigits: 2, maximumFractionDigits: digits });
    } catch (e) {
      return `${x.toFixed(digits)} ${currency}`;
    }
  }
  function clock(unixSeconds) {
    const d = new Date(unixSeconds * 1000);
    return d.toLocaleTimeString('en-GB', { hour12: false });
  }
  // A DOM element with class and text.
  function el(tag, cls, textContent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (textContent !== undefined) e.textContent = textContent;
    return e;
  }

  // ---- Prometheus text format 0.0.4 ----
  // [{name, labels: {k: v}, value}] of every sample line.
  function parseMetrics(src) {
    const out = [];
    for (const line of src.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[2]) {
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
        let l;
        while ((l = re.exec(m[2])) !== null)
          labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
      const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
      out.push({ name: m[1], labels, value: v });
    }
    return out;
  }
  // The sum of the samples named name whose labels include match.
  function metricSum(samples, name, match = {}) {
    let s = 0, seen = false;
    for (const x of samples) {
      if (x.name !== name) continue;
      if (Object.entries(match).some(([k, v]) => x.labels[k] !== v)) continue;
      s += x.value;
      seen = true;
    }
    return seen ? s : null;
  }

  return { $, load, store, key, api, json, text, errorOf, ApiError, notice, needKey, report, keyForm, health,
    num, bytes, money, clock, el, parseMetrics, metricSum };
})();
