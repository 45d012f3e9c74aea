// The web console of `sov serve` in headless Chromium, against two running
// servers: SINGLE (sov serve -m stories260K, no key) and ROUTER (sov serve
// --config with the backends small, box, offline and the API key KEY).
// Checks that the chat page streams an answer (several chunks, the text
// growing), shows the backend, the reason and tok/s; that Stop aborts a
// long answer and the server stays healthy; that the status page shows the
// backends, the metrics, the routing log, the saved cost and the plan
// report; that without the key the page says it needs one and works once
// it is saved. Any page error, console error, failed request or request to
// another origin fails it. Screenshots go to SHOT_DIR.
// Prints "PASS name" / "FAIL name: why" lines.
//   node console.mjs SINGLE_URL ROUTER_URL KEY SHOT_DIR CHROMIUM PROFILE_DIR
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { decodePng, pixelStats } from './png.mjs';

const [single, router, key, shotDir, chromium, profile] = process.argv.slice(2);
let failed = 0;
const check = (ok, name, why) => {
  if (ok) console.log(`PASS ${name}`);
  else { failed++; console.log(`FAIL ${name}: ${why}`); }
  return ok;
};
const info = (s) => console.log(`INFO ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Watches a page: console errors, page errors, failed requests and
// responses >= 400 are faults unless the phase expects them (w.allow401:
// the 401s of a page without the key; w.abortOk: the one aborted answer).
function watch(page, origin, label) {
  const w = { faults: [], external: [], seen401: 0, aborted: 0, allow401: false, abortOk: false, leaving: false };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    if (w.allow401 && /status of 401/.test(t)) return;
    w.faults.push(`console error: ${t}`);
  });
  page.on('pageerror', (e) => w.faults.push(`page error: ${e.message || e}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('blob:') && !u.startsWith('data:')) w.external.push(u);
  });
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '?';
    if (why === 'net::ERR_ABORTED' && w.abortOk && r.url().endsWith('/v1/chat/completions')) { w.aborted++; return; }
    if (why === 'net::ERR_ABORTED' && w.leaving) return; // a poll cut short by leaving the page
    w.faults.push(`request failed: ${r.method()} ${r.url()}: ${why}`);
  });
  page.on('response', (r) => {
    if (r.status() < 400) return;
    if (r.status() === 401 && w.allow401) { w.seen401++; return; }
    w.faults.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  w.report = (phase) => {
    check(w.faults.length === 0, `${label} ${phase}: no page error, console error or failed request`,
      w.faults.slice(0, 4).join(' | '));
    check(w.external.length === 0, `${label} ${phase}: nothing requested from another origin`,
      w.external.slice(0, 4).join(' '));
    w.faults = [];
    w.external = [];
  };
  return w;
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
const STOP_TOKENS = 1800; // the long answer Stop cuts short
const CHAT_TOKENS = 1500; // the streamed answers: long enough (~0.3 s at 5,000-10,000 tok/s) for many reads

// Sends msg with the chosen model and max tokens; resolves when the answer
// ended, with the lengths the answer had after each change and the info.
async function chat(page, model, msg, maxTokens, timeout = 20000) {
  await page.select('#model', model);
  await page.$eval('#max-tokens', (e, v) => { e.value = String(v); }, maxTokens);
  await page.$eval('#prompt', (e) => { e.value = ''; });
  await page.type('#prompt', msg);
  await page.evaluate(() => {
    window.__lens = [];
    const box = document.getElementById('messages');
    window.__obs && window.__obs.disconnect();
    window.__obs = new MutationObserver(() => {
      const b = [...box.querySelectorAll('.msg.assistant .body')].pop();
      const n = b ? b.textContent.length : 0;
      const l = window.__lens;
      if (n && (!l.length || l[l.length - 1].n !== n)) l.push({ n, t: performance.now() });
    });
    window.__obs.observe(box, { childList: true, subtree: true, characterData: true });
  });
  await page.click('#send');
  await page.waitForFunction(() => !['waiting', 'streaming', '\u2013'].includes(
    document.getElementById('i-finish').textContent.trim()), { timeout });
  return answerInfo(page);
}

async function answerInfo(page) {
  return page.evaluate(() => {
    const g = (id) => document.getElementById(id).textContent.trim();
    const b = [...document.querySelectorAll('.msg.assistant .body')].pop();
    return { lens: window.__lens || [], answer: b ? b.textContent : '', backend: g('i-backend'),
      reason: g('i-reason'), tokens: g('i-tokens'), rate: g('i-rate'), ttft: g('i-ttft'), finish: g('i-finish'),
      id: g('i-id'), error: (document.querySelector('.msg.assistant.error .err') || {}).textContent || null };
  });
}

function checkStreamed(label, r, maxTokens) {
  const lens = r.lens.map((x) => x.n);
  const growing = lens.every((n, i) => i === 0 || n > lens[i - 1]);
  const span = r.lens.length ? r.lens[r.lens.length - 1].t - r.lens[0].t : 0;
  check(r.error === null, `${label}: no error shown`, r.error);
  check(lens.length >= 10 && growing && span >= 30,
    `${label}: the answer grew in ${lens.length} steps over ${span.toFixed(0)} ms (streamed)`,
    `lengths ${lens.slice(0, 12).join(',')} over ${span.toFixed(0)} ms`);
  info(`${label}: ${lens.length} updates over ${span.toFixed(0)} ms, ${r.answer.length} characters, ` +
    `${r.tokens} tokens, ${r.rate} tok/s, first token ${r.ttft}, finish ${r.finish}`);
  check(r.answer.trim().length >= 20, `${label}: the answer has text`, JSON.stringify(r.answer.slice(0, 80)));
  const n = parseInt(r.tokens, 10);
  check(n > 1 && n <= maxTokens, `${label}: tokens shown (${r.tokens})`, r.tokens);
  check(Number(r.rate) > 0, `${label}: tok/s shown (${r.rate})`, r.rate);
  check(/^\d+ ms$/.test(r.ttft), `${label}: time to first token shown (${r.ttft})`, r.ttft);
  check(r.finish === 'length' || r.finish === 'stop', `${label}: finish reason shown (${r.finish})`, r.finish);
  check(/^req-[0-9a-f]+-[0-9a-f]+$/.test(r.id), `${label}: request id shown (${r.id})`, r.id);
}

// The PNG at file is not blank.
function notBlank(file, name) {
  let s;
  try {
    const img = decodePng(fs.readFileSync(file));
    s = pixelStats(img);
    s.size = `${img.width}x${img.height}`;
  } catch (e) {
    check(false, `${name}: decodes`, e.message);
    return;
  }
  const why = `${s.size}, ${(s.nonBackground * 100).toFixed(2)} % not background, ${s.distinct} colours, ` +
    `${(s.coloured * 100).toFixed(2)} % coloured`;
  check(s.nonBackground >= 0.03 && s.distinct >= 16 && s.coloured >= 0.0005, `${name} is not blank`, why);
  info(`${name}: ${why}`);
}

async function shot(page, file, name) {
  const p = path.join(shotDir, file);
  await page.screenshot({ path: p, fullPage: true });
  notBlank(p, name);
}

async function api(base, p, withKey) {
  const r = await fetch(base + p, { headers: withKey ? { Authorization: `Bearer ${key}` } : {} });
  return { status: r.status, json: r.headers.get('content-type')?.startsWith('application/json') ? await r.json() : null };
}

// The status page: waits for it to fill in and checks it.
async function statusPage(page, w, base, label, want) {
  w.leaving = true; // the last page's polls may be cut short
  await page.goto(base + '/status', { waitUntil: 'load', timeout: 10000 });
  w.leaving = false;
  await page.waitForFunction((names) => {
    const rows = [...document.querySelectorAll('#backend-rows tr')].map((r) => r.textContent);
    return names.every((n) => rows.some((t) => t.includes(n))) &&
      document.querySelectorAll('#route-rows tr td.reason').length > 0 &&
      document.getElementById('t-saved').textContent.trim() !== '\u2013';
  }, { timeout: 10000 }, want.backends.map((b) => b.name));
  // health checks of the router run each second: wait for every expected state
  await page.waitForFunction((bs) => bs.every((b) => [...document.querySelectorAll('#backend-rows tr')]
    .some((r) => r.cells[0].textContent === b.name && r.cells[2].textContent === b.health)),
  { timeout: 8000 }, want.backends).catch(() => {});
  const st = await page.evaluate(() => {
    const g = (id) => document.getElementById(id).textContent.trim();
    return {
      backends: [...document.querySelectorAll('#backend-rows tr')].map((r) => [...r.cells].map((c) => c.textContent)),
      routes: [...document.querySelectorAll('#route-rows tr')].map((r) => [...r.cells].map((c) => c.textContent)),
      mode: g('t-mode'), requests: g('t-requests'), tokens: g('t-tokens'), saved: g('t-saved'), queue: g('t-queue'),
      slots: g('t-slots'), kv: g('t-kv'), kvsub: g('t-kv-sub'), ttft: g('t-ttft'), prices: g('plan-prices'),
      sources: document.querySelectorAll('#plan-sources li').length, updated: g('updated'),
      bar: document.getElementById('t-kv-bar').style.width,
    };
  });
  for (const b of want.backends) {
    const r = st.backends.find((c) => c[0] === b.name);
    const brk = b.breaker ? [b.breaker] : ['closed', 'open', 'half-open'];
    check(r && r[2] === b.health && brk.includes(r[3]),
      `${label} status: backend ${b.name} shows health ${b.health}, breaker ${b.breaker || r?.[3]}`, JSON.stringify(r));
  }
  check(st.mode === want.mode, `${label} status: mode ${want.mode}`, st.mode);
  const num = (s) => Number(s.replace(/[^0-9.]/g, ''));
  check(num(st.requests) >= want.minRequests, `${label} status: requests counted (${st.requests})`, st.requests);
  check(num(st.tokens) > 0, `${label} status: tokens served (${st.tokens})`, st.tokens);
  check(/^\$\d/.test(st.saved) && num(st.saved) > 0, `${label} status: cloud cost saved (${st.saved})`, st.saved);
  check(st.queue === '0', `${label} status: queue depth (${st.queue})`, st.queue);
  check(/^\d+ \/ \d+$/.test(st.slots) && num(st.slots.split('/')[1]) === want.slots,
    `${label} status: slots (${st.slots})`, st.slots);
  check(/^\d+(\.\d)? %$/.test(st.kv) && /positions/.test(st.kvsub), `${label} status: KV use (${st.kv}; ${st.kvsub})`,
    `${st.kv}; ${st.kvsub}`);
  check(/ms$/.test(st.ttft), `${label} status: time to first token (${st.ttft})`, st.ttft);
  check(/per 1M/.test(st.prices) && st.sources === 3, `${label} status: the plan's prices and their sources`,
    `${st.prices} (${st.sources} sources)`);
  check(/^updated /.test(st.updated), `${label} status: polled (${st.updated})`, st.updated);
  for (const r of want.routes) {
    const hit = st.routes.find((c) => c[3] === r.backend && c[5].includes(r.reason) && (!r.status || c[6] === r.status));
    check(!!hit, `${label} status: routing log has ${r.backend} / "${r.reason}"${r.status ? ` / ${r.status}` : ''}`,
      JSON.stringify(st.routes.slice(0, 4)));
  }
  info(`${label} status: ${st.backends.length} backends, ${st.routes.length} log rows, requests ${st.requests}, ` +
    `tokens ${st.tokens}, saved ${st.saved}, KV ${st.kv}`);

  // the plan report, fetched with the key, in a frame from a blob
  await page.click('#report-show');
  await page.waitForFunction(() => !document.getElementById('report').hidden, { timeout: 10000 });
  const frame = await (async () => {
    for (let i = 0; i < 100; i++) {
      const f = page.frames().find((x) => x.url().startsWith('blob:'));
      if (f) return f;
      await sleep(50);
    }
    return null;
  })();
  if (check(!!frame, `${label} status: the plan report loads in a frame`, 'no blob: frame')) {
    const ok = await frame.waitForSelector('svg#chart-speed', { timeout: 10000 }).then(() => true, () => false);
    check(ok, `${label} status: the plan report shows its speed chart`, 'no svg#chart-speed');
    const title = await frame.title();
    check(title.startsWith('sov plan'), `${label} status: the report is the plan's (${title.slice(0, 60)})`, title);
  }
  const href = await page.$eval('#report-open', (a) => a.href);
  check(href.startsWith('blob:'), `${label} status: "open it in a new tab" links the fetched report`, href);
}

let browser;
try {
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars',
      '--disable-background-networking', '--disable-component-update'],
    timeout: 30000,
  });
} catch (e) {
  check(false, 'chromium starts', String(e.message || e).split('\n')[0]);
  process.exit(1);
}
try {
  fs.mkdirSync(shotDir, { recursive: true });

  // ---- single model, no key ----
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860, deviceScaleFactor: 1 });
  const w = watch(page, single, 'single');
  const resp = await page.goto(single + '/', { waitUntil: 'load', timeout: 10000 });
  check(resp && resp.status() === 200, 'single: the chat page loads', resp ? resp.status() : 'no response');
  check((await page.title()).startsWith('sov console'), 'single: page title', await page.title());
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0, { timeout: 10000 });
  const models = await page.$$eval('#model option', (o) => o.map((x) => x.value));
  check(models.length === 1 && models[0] === 'stories260K', 'single: the model picker lists stories260K',
    models.join(','));
  const pill = await page.waitForFunction(() => document.getElementById('health').textContent === 'ready',
    { timeout: 8000 }).then(() => true, () => false);
  check(pill, 'single: the health pill says ready', await text(page, '#health'));

  const r1 = await chat(page, 'stories260K', 'Once upon a time', CHAT_TOKENS);
  checkStreamed('single chat', r1, CHAT_TOKENS);
  check(r1.backend === 'stories260K' && r1.reason === 'only backend',
    `single chat: backend and reason shown (${r1.backend}; ${r1.reason})`, `${r1.backend}; ${r1.reason}`);

  // Stop: a long answer (a new chat, so that prompt + max_tokens fit the
  // 2,048-position context), stopped as soon as it starts
  await page.click('#new-chat');
  check(await page.$$eval('.msg', (m) => m.length) === 0, 'new chat: the conversation is cleared', 'messages left');
  w.abortOk = true;
  await page.select('#model', 'stories260K');
  await page.$eval('#max-tokens', (e, n) => { e.value = String(n); }, STOP_TOKENS);
  await page.$eval('#prompt', (e) => { e.value = ''; });
  await page.type('#prompt', 'Tell me a very long story');
  await page.click('#send');
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('.msg.assistant .body')].pop();
    return b && b.textContent.length > 0;
  }, { polling: 'mutation', timeout: 10000 });
  const stopEnabled = await page.$eval('#stop', (b) => !b.disabled);
  check(stopEnabled, 'stop: the Stop button is enabled while streaming', 'disabled');
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('i-finish').textContent.trim() === 'stopped',
    { timeout: 5000 }).catch(() => {});
  const s1 = await answerInfo(page);
  await sleep(600);
  const s2 = await answerInfo(page);
  check(s1.finish === 'stopped', 'stop: the answer ends as stopped', s1.finish);
  check(s2.answer.length === s1.answer.length && s2.answer.length > 0,
    `stop: no text arrives after Stop (${s1.answer.length} characters)`, `${s1.answer.length} then ${s2.answer.length}`);
  check(parseInt(s1.tokens, 10) < STOP_TOKENS, `stop: it stopped early (${s1.tokens} of ${STOP_TOKENS} tokens)`,
    s1.tokens);
  check(w.aborted === 1, 'stop: the request was aborted (one net::ERR_ABORTED)', `${w.aborted}`);
  w.abortOk = false;
  const sendBack = await page.$eval('#send', (b) => !b.disabled);
  check(sendBack, 'stop: Send is enabled again', 'disabled');
  // the server noticed: the request counts as the client's leaving, nothing in flight, healthy
  let gone = null;
  for (let i = 0; i < 40; i++) {
    const rt = await api(single, '/v1/routes');
    gone = (rt.json.data || []).find((e) => e.id === s1.id);
    if (gone) break;
    await sleep(50);
  }
  check(gone && gone.status === 499, `stop: the server logged the request as left by the client (${gone && gone.status})`,
    JSON.stringify(gone));
  const bk = await api(single, '/v1/backends');
  const be = bk.json.data[0];
  check(be.in_flight === 0 && be.requests_client_gone >= 1 && be.breaker === 'closed',
    'stop: the backend has nothing in flight, counts the client gone, breaker closed',
    JSON.stringify({ in_flight: be.in_flight, gone: be.requests_client_gone, breaker: be.breaker }));
  check((await api(single, '/health')).status === 200, 'stop: the server stays healthy', 'GET /health not 200');
  const r2 = await chat(page, 'stories260K', 'And then?', 40);
  check(r2.error === null && r2.finish === 'length' && parseInt(r2.tokens, 10) === 40,
    `stop: the next message is answered (${r2.tokens} tokens, ${r2.finish})`, JSON.stringify(r2).slice(0, 200));
  await shot(page, 'console-chat-single.png', 'single chat screenshot');
  w.report('chat');

  await statusPage(page, w, single, 'single', {
    mode: 'one model', slots: 2, minRequests: 3,
    backends: [{ name: 'stories260K', health: 'up', breaker: 'closed' }],
    routes: [{ backend: 'stories260K', reason: 'only backend', status: '499 left' },
      { backend: 'stories260K', reason: 'only backend', status: '200' }],
  });
  await sleep(100);
  await shot(page, 'console-status-single.png', 'single status screenshot');
  w.report('status');
  w.leaving = true;
  await page.close();

  // ---- the router with an API key ----
  const ctx = await browser.createBrowserContext(); // its own storage: no key saved
  const p2 = await ctx.newPage();
  await p2.setViewport({ width: 1280, height: 860, deviceScaleFactor: 1 });
  const w2 = watch(p2, router, 'router');
  w2.allow401 = true;
  await p2.goto(router + '/', { waitUntil: 'load', timeout: 10000 });
  const asked = await p2.waitForFunction(() => {
    const n = document.getElementById('notice');
    return !n.hidden && /requires an API key/.test(n.textContent);
  }, { timeout: 8000 }).then(() => true, () => false);
  const notice = await text(p2, '#notice');
  check(asked, 'key: without the key the page says the server requires one', notice);
  check(w2.seen401 >= 1, `key: the server answered 401 (${w2.seen401})`, `${w2.seen401}`);
  check(await p2.$eval('#send', (b) => b.disabled), 'key: Send is disabled without the key', 'enabled');
  check(await p2.$eval('#key', (e) => e.classList.contains('wanted') && document.activeElement === e),
    'key: the key field is marked and focused', 'not');
  await p2.type('#key', 'wrong-key');
  await p2.click('#keyform button[type="submit"]');
  const refused = await p2.waitForFunction(() => /refused the API key/.test(document.getElementById('notice').textContent),
    { timeout: 5000 }).then(() => true, () => false);
  check(refused, 'key: a wrong key is said to be refused', await text(p2, '#notice'));
  await p2.$eval('#key', (e) => { e.value = ''; });
  await p2.type('#key', key);
  await p2.click('#keyform button[type="submit"]');
  await p2.waitForFunction(() => document.querySelectorAll('#model option').length >= 3, { timeout: 8000 });
  w2.allow401 = false;
  const m2 = await p2.$$eval('#model option', (o) => o.map((x) => x.value));
  check(['stories', 'big', 'private'].every((m) => m2.includes(m)), `key: with the key the models load (${m2.join(', ')})`,
    m2.join(','));
  check(await p2.$eval('#notice', (n) => n.hidden), 'key: the notice is gone', await text(p2, '#notice'));
  const stored = await p2.evaluate(() => localStorage.getItem('sov.apiKey'));
  check(stored === key, 'key: saved in localStorage', String(stored));

  const r3 = await chat(p2, 'stories', 'Once upon a time', CHAT_TOKENS);
  checkStreamed('router chat', r3, CHAT_TOKENS);
  check(r3.backend === 'small' && r3.reason === 'preference order',
    `router chat: local backend and reason shown (${r3.backend}; ${r3.reason})`, `${r3.backend}; ${r3.reason}`);
  await p2.click('#new-chat');
  const r4 = await chat(p2, 'big', 'The little dog', CHAT_TOKENS);
  checkStreamed('router chat via the box', r4, CHAT_TOKENS);
  check(r4.backend === 'box' && r4.reason === 'only backend',
    `router chat via the box: remote backend shown (${r4.backend}; ${r4.reason})`, `${r4.backend}; ${r4.reason}`);
  await shot(p2, 'console-chat.png', 'router chat screenshot');
  w2.report('chat');

  // another page of the console: the key saved is used
  await statusPage(p2, w2, router, 'router', {
    mode: 'router', slots: 2, minRequests: 1,
    backends: [{ name: 'small', health: 'up', breaker: 'closed' }, { name: 'box', health: 'up', breaker: 'closed' },
      { name: 'offline', health: 'down', breaker: null }], // failed health checks may have opened it
    routes: [{ backend: 'small', reason: 'preference order', status: '200' },
      { backend: 'box', reason: 'only backend', status: '200' }],
  });
  const down = await p2.$$eval('#backend-rows tr', (rs) => rs.filter((r) => r.cells[0].textContent === 'offline')
    .map((r) => r.cells[2].title + ' ' + r.cells[10].textContent)[0] || '');
  check(/connect|refused|couldn|fail/i.test(down), `router status: the offline backend says why (${down.slice(0, 80)})`,
    down);
  await sleep(100);
  await shot(p2, 'console-status.png', 'router status screenshot');
  w2.report('status');
  w2.leaving = true;
  await ctx.close();
} catch (e) {
  check(false, 'browser checks', String(e.stack || e).split('\n').slice(0, 3).join(' '));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
