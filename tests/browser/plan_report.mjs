// Renders the `sov plan --html` report in headless Chromium and checks it:
// no network request, no page error, the page parses as XML, the three
// charts are <svg> elements with enough drawn elements on screen and the
// text they must show, screenshots (full page and one per chart) that are
// not blank. Prints "PASS name" / "FAIL name: why" lines.
//   node plan_report.mjs REPORT.html SCREENSHOT_DIR CHROMIUM PROFILE_DIR
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';
import { decodePng, pixelStats } from './png.mjs';

const [htmlPath, shotDir, chromium, profile] = process.argv.slice(2);
let failed = 0;
const check = (ok, name, why) => {
  if (ok) console.log(`PASS ${name}`);
  else { failed++; console.log(`FAIL ${name}: ${why}`); }
  return ok;
};

// what each chart must hold: drawn elements on screen, and texts
const CHARTS = {
  'chart-speed': { min: 60, texts: ['roofline x efficiency', 'llama-3.1-8b', 'llama-3.1-405b'] },
  'chart-fit': { min: 30, texts: ['weights', 'KV cache', 'llama-3.1-70b'] },
  'chart-cost': { min: 8, texts: ['payback', 'days'] },
};

const pageUrl = pathToFileURL(path.resolve(htmlPath)).href;
const source = fs.readFileSync(htmlPath, 'utf8');
let browser;
try {
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars'],
    timeout: 30000,
  });
} catch (e) {
  check(false, 'chromium starts', String(e.message || e).split('\n')[0]);
  process.exit(1);
}
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1180, height: 900, deviceScaleFactor: 1 });
  const requests = [], errors = [];
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (r.url() !== pageUrl) { requests.push(r.url()); r.abort(); } else r.continue();
  });
  page.on('pageerror', (e) => errors.push(String(e.message || e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const resp = await page.goto(pageUrl, { waitUntil: 'load', timeout: 20000 });
  check(resp && resp.ok(), 'the report loads', resp ? `status ${resp.status()}` : 'no response');
  check(requests.length === 0, 'the report loads nothing else (no network, no other file)',
    requests.slice(0, 5).join(' '));
  check(errors.length === 0, 'no page or console error', errors.slice(0, 3).join(' | '));

  const xmlErr = await page.evaluate((src) => {
    const doc = new DOMParser().parseFromString(src, 'application/xml');
    const e = doc.getElementsByTagName('parsererror')[0];
    return e ? e.textContent.slice(0, 300) : null;
  }, source);
  check(xmlErr === null, 'the report parses as XML (every element closed, every & escaped)', xmlErr);

  const title = await page.title();
  check(title.length > 0 && title.startsWith('sov plan'), 'page title', JSON.stringify(title));
  for (const sec of ['settings', 'hardware', 'speed', 'fit', 'cost', 'options', 'claims']) {
    const n = await page.$$eval(`section#${sec}`, (e) => e.length);
    check(n === 1, `section #${sec}`, `found ${n}`);
  }
  const rows = await page.$$eval('section#options table tr', (e) => e.length);
  check(rows >= 3, 'options table has rows', `${rows} rows`);
  const claims = await page.$$eval('section#claims table tr', (e) => e.length);
  check(claims >= 2, 'claims table has rows (--report fills the claims)', `${claims} rows`);
  const fitCells = await page.$$eval('table.fit td.yes, table.fit td.no', (e) => e.length);
  check(fitCells >= 10, 'fit table has a tick or a cross per model and machine', `${fitCells} cells`);

  fs.mkdirSync(shotDir, { recursive: true });
  for (const [id, want] of Object.entries(CHARTS)) {
    const info = await page.evaluate((id) => {
      const el = document.getElementById(id);
      if (!el) return null;
      const box = el.getBoundingClientRect();
      let drawn = 0;
      for (const e of el.querySelectorAll('line, polyline, path, rect, circle, text')) {
        const b = e.getBoundingClientRect();
        if ((b.width > 0 || b.height > 0) && b.right >= box.left && b.left <= box.right &&
            b.bottom >= box.top && b.top <= box.bottom) drawn++;
      }
      return { tag: el.tagName.toLowerCase(), w: box.width, h: box.height, drawn,
        text: el.textContent, title: (el.querySelector('title') || {}).textContent || '' };
    }, id);
    if (!check(info !== null, `${id}: present`, 'no element with this id')) continue;
    check(info.tag === 'svg', `${id}: is an <svg>`, `<${info.tag}>`);
    check(info.w >= 600 && info.h >= 300, `${id}: rendered at a readable size`, `${info.w} x ${info.h} px`);
    check(info.drawn >= want.min, `${id}: at least ${want.min} drawn elements on screen`, `${info.drawn}`);
    check(info.title.length > 20, `${id}: has a <title> saying what it shows`, JSON.stringify(info.title));
    const missing = want.texts.filter((t) => !info.text.includes(t));
    check(missing.length === 0, `${id}: shows ${want.texts.join(', ')}`, `missing: ${missing.join(', ')}`);

    const file = path.join(shotDir, `plan-${id}.png`);
    const el = await page.$(`#${id}`);
    await el.screenshot({ path: file });
    blank(file, `${id} screenshot`, 0.03, 16);
  }
  const full = path.join(shotDir, 'plan-report.png');
  await page.screenshot({ path: full, fullPage: true });
  blank(full, 'full-page screenshot', 0.03, 32);
} catch (e) {
  check(false, 'browser checks', String(e.stack || e).split('\n').slice(0, 3).join(' '));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

// The PNG at file is not blank: at least minShare of its pixels differ
// from its background colour, it has at least minColours colours, some of
// them not grey (the charts' colours).
function blank(file, name, minShare, minColours) {
  let s;
  try {
    const img = decodePng(fs.readFileSync(file));
    s = pixelStats(img);
    s.size = `${img.width}x${img.height}`;
  } catch (e) {
    check(false, `${name}: decodes`, e.message);
    return;
  }
  const why = `${s.size}, ${(s.nonBackground * 100).toFixed(2)} % not background ` +
    `#${s.background.toString(16).padStart(6, '0')}, ${s.distinct} colours, ${(s.coloured * 100).toFixed(2)} % coloured`;
  check(s.nonBackground >= minShare && s.distinct >= minColours && s.coloured >= 0.002,
    `${name} is not blank (${path.basename(file)})`, why);
  console.log(`INFO ${name}: ${why}`);
}
