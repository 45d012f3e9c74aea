// The chat page: models from GET /v1/models, the answer streamed from
// POST /v1/chat/completions (stream: true) read with fetch + ReadableStream
// and parsed as server-sent events, Stop through an AbortController, and
// what the router said about it: X-Sov-Backend, X-Sov-Route-Reason,
// X-Request-Id, tokens, tok/s, time to the first token, finish reason.
'use strict';

(() => {
  const { $, el } = sov;
  const MODEL_KEY = 'sov.model';
  let history = [];        // the conversation: {role, content}
  let ctl = null;          // the AbortController of the answer streaming now

  function setInfo(id, v, cls) {
    const d = $(id);
    d.textContent = v === undefined || v === null || v === '' ? '\u2013' : String(v);
    d.className = cls || '';
  }

  async function loadModels() {
    const sel = $('model');
    try {
      const j = await sov.json('/v1/models');
      const want = sel.value || sov.load(MODEL_KEY);
      sel.textContent = '';
      for (const m of j.data || []) {
        const o = el('option', '', m.location && m.location !== 'local' ? `${m.id} (${m.location})` : m.id);
        o.value = m.id;
        if (m.privacy === 'local-only') o.textContent += ' \u2013 local only';
        sel.appendChild(o);
      }
      if ([...sel.options].some((o) => o.value === want)) sel.value = want;
      $('send').disabled = ctl !== null || sel.options.length === 0;
      if (!sel.options.length) sov.notice('This server has no model.', 'error');
      else sov.notice('');
    } catch (e) {
      $('send').disabled = true;
      sov.report('Cannot list the models (GET /v1/models)', e);
    }
  }

  function bubble(role, text) {
    $('empty').hidden = true;
    const b = el('div', 'msg ' + role);
    b.appendChild(el('div', 'who', role === 'user' ? 'You' : role));
    const body = el('div', 'body', text);
    b.appendChild(body);
    $('messages').appendChild(b);
    b.scrollIntoView({ block: 'end' });
    return { box: b, body };
  }

  // The end of the first whole event in buf ("\n\n"), or -1.
  const eventEnd = (buf) => buf.indexOf('\n\n');

  async function send() {
    const text = $('prompt').value.trim();
    const model = $('model').value;
    if (!text || !model || ctl) return;
    const maxTokens = parseInt($('max-tokens').value, 10);
    const temperature = parseFloat($('temperature').value);
    const system = $('system').value.trim();
    const messages = [...(system ? [{ role: 'system', content: system }] : []), ...history,
      { role: 'user', content: text }];
    const req = { model, messages, stream: true, stream_options: { include_usage: true } };
    if (Number.isFinite(maxTokens) && maxTokens > 0) req.max_tokens = maxTokens;
    if (Number.isFinite(temperature) && temperature >= 0) req.temperature = temperature;
    sov.store(MODEL_KEY, model);

    bubble('user', text);
    $('prompt').value = '';
    const out = bubble('assistant', '');
    out.box.classList.add('streaming');
    for (const id of ['i-backend', 'i-reason', 'i-tokens', 'i-rate', 'i-ttft', 'i-finish', 'i-id']) setInfo(id, '');
    setInfo('i-finish', 'waiting');
    ctl = new AbortController();
    $('send').disabled = true;
    $('stop').disabled = false;

    const t0 = performance.now();
    let tFirst = null, tLast = null, chunks = 0, usage = null, finish = null, answer = '', failed = null;
    const stats = () => {
      const n = usage ? usage.completion_tokens : chunks;
      setInfo('i-tokens', usage ? `${n} (prompt ${usage.prompt_tokens})` : n);
      if (tFirst !== null) setInfo('i-ttft', `${Math.round(tFirst - t0)} ms`);
      // decode rate: the tokens after the first over the time they took
      if (tFirst !== null && tLast > tFirst && n > 1) setInfo('i-rate', ((n - 1) / ((tLast - tFirst) / 1000)).toFixed(1));
    };
    try {
      const r = await sov.api('/v1/chat/completions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req), signal: ctl.signal,
      });
      setInfo('i-backend', r.headers.get('X-Sov-Backend'));
      setInfo('i-reason', r.headers.get('X-Sov-Route-Reason'));
      setInfo('i-id', r.headers.get('X-Request-Id'));
      if (!r.ok) throw await sov.errorOf(r);
      setInfo('i-finish', 'streaming');
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '', done = false;
      while (!done) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
        let i;
        while (!done && (i = eventEnd(buf)) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (!data) continue; // a comment (keep-alive)
          if (data === '[DONE]') { done = true; break; }
          const obj = JSON.parse(data);
          if (obj.error) { failed = obj.error.message || 'the stream broke'; continue; }
          if (obj.usage) usage = obj.usage;
          const c = obj.choices && obj.choices[0];
          if (!c) continue;
          const piece = c.delta && typeof c.delta.content === 'string' ? c.delta.content : '';
          if (piece) {
            const now = performance.now();
            if (tFirst === null) tFirst = now;
            tLast = now;
            chunks++;
            answer += piece;
            out.body.textContent = answer;
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
        stats();
      }
      // after [DONE] the server ends the response: read to its end (cancelling
      // it would abort the request)
      if (done) while (!(await reader.read()).done) { /* nothing more is expected */ }
    } catch (e) {
      if (e.name === 'AbortError') finish = 'stopped';
      else if (e instanceof sov.ApiError) {
        failed = e.message;
        if (e.status === 401) sov.needKey(e);
      } else failed = String(e.message || e);
    } finally {
      ctl = null;
      $('stop').disabled = true;
      $('send').disabled = $('model').options.length === 0;
      out.box.classList.remove('streaming');
      stats();
      if (failed) {
        out.box.classList.add('error');
        out.body.appendChild(el('div', 'err', failed));
        setInfo('i-finish', finish || 'error', 'bad');
      } else {
        setInfo('i-finish', finish || 'ended', finish === 'stopped' ? 'warn' : '');
      }
      if (answer) history.push({ role: 'user', content: text }, { role: 'assistant', content: answer });
    }
  }

  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
  });
  $('stop').addEventListener('click', () => { if (ctl) ctl.abort(); });
  $('new-chat').addEventListener('click', () => {
    if (ctl) ctl.abort();
    history = [];
    for (const m of [...$('messages').querySelectorAll('.msg')]) m.remove();
    $('empty').hidden = false;
  });
  sov.keyForm(loadModels);
  sov.health();
  loadModels();
})();
