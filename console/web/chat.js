// Switchboard web chat widget (docs/webchat-protocol.md).
//
// Reliability, as the protocol asks:
//  * every send carries a cid; unacknowledged sends are kept (also across
//    page reloads, in localStorage) and sent again with the same cid after
//    every reconnect; the server stores each cid once;
//  * after (re)connecting we send `resume` with the highest seq shown
//    without a gap, and drop any message whose seq we already have;
//  * an `ack` turns the optimistic bubble into the stored message (by cid);
//  * a gap in seq is filled by another `resume`.
// When WebSockets cannot get through at all, the HTTP fallback carries the
// same rules.

import { h, syncChildren, uid, fmtTime, fmtFull, safeUrl } from './util.js';

const params = new URLSearchParams(location.search);
const KEY = (params.get('key') || 'wc_demo').trim();
const TOKEN_KEY = `sb_wc_token:${KEY}`;
const PENDING_KEY = `sb_wc_pending:${KEY}`;
const MAX_TEXT = 4000;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;

const $ = (id) => document.getElementById(id);
const els = {
  messages: $('chat-messages'),
  welcome: $('chat-welcome'),
  input: $('chat-input'),
  send: $('chat-send'),
  form: $('chat-form'),
  status: $('chat-status'),
  statusLabel: $('chat-status-label'),
  session: $('chat-session'),
  typing: $('chat-typing'),
  typingText: $('chat-typing-text'),
  banner: $('chat-banner'),
  count: $('chat-count'),
};

const st = {
  token: '',
  conversationId: '',
  // Display items: messages, by seq (or by cid while unacknowledged).
  items: [],
  bySeq: new Map(),
  byCid: new Map(),
  contig: 0, // every seq 1..contig is shown (or known not to exist for us)
  maxSeq: 0,
  pending: loadPending(), // [{cid, text, created_at}] not acknowledged yet
  agentReadSeq: 0,
  sentReadSeq: 0,
  session: null,
  ws: null,
  wsOpen: false,
  replaying: false,
  attempt: 0,
  failedOpens: 0,
  needIdentify: true,
  retryTimer: null,
  retryAt: 0,
  lastFrameAt: 0,
  polling: false,
  pollTimer: null,
  typingOn: false,
  typingSentAt: 0,
  typingStop: null,
  agentTypingTimer: null,
  gapTimer: null,
  bannerTimer: null,
  fatal: false,
  connecting: false,
  everConnected: false,
};

// ---------------------------------------------------------------- storage

function storeGet(k) {
  try { return localStorage.getItem(k); } catch { return null; }
}
function storeSet(k, v) {
  try {
    if (v === null) localStorage.removeItem(k);
    else localStorage.setItem(k, v);
  } catch { /* private mode: memory only */ }
}

function loadIdentity() {
  try { return JSON.parse(storeGet(TOKEN_KEY) || 'null') || {}; } catch { return {}; }
}
function saveIdentity(res) {
  storeSet(TOKEN_KEY, JSON.stringify({
    token: res.token,
    visitor_id: res.visitor_id || '',
    conversation_id: res.conversation_id || '',
    expires_at: res.expires_at || '',
  }));
}

function loadPending() {
  try {
    const v = JSON.parse(storeGet(PENDING_KEY) || '[]');
    return Array.isArray(v) ? v.filter((p) => p && p.cid && typeof p.text === 'string') : [];
  } catch {
    return [];
  }
}
function savePending() {
  storeSet(PENDING_KEY, st.pending.length ? JSON.stringify(st.pending) : null);
}
function dropPending(cid) {
  const n = st.pending.length;
  st.pending = st.pending.filter((p) => p.cid !== cid);
  if (st.pending.length !== n) savePending();
}

// ---------------------------------------------------------------- HTTP

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function http(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new HttpError(0, 'network', 'No connection');
  }
  const text = await res.text().catch(() => '');
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new HttpError(res.status, e.code || '', e.message || `HTTP ${res.status}`);
  }
  return data;
}

/** Get (or refresh) the visitor token for this widget key. */
async function identify() {
  const saved = loadIdentity();
  const body = {};
  if (params.get('user_id') && params.get('signature')) {
    // An app user, signed by the app's own server.
    body.user_id = params.get('user_id');
    body.ts = Number(params.get('ts'));
    body.signature = params.get('signature');
    if (params.get('name')) body.name = params.get('name');
  } else if (saved.token) {
    body.visitor_token = saved.token;
  }
  const url = `/api/v1/webchat/${encodeURIComponent(KEY)}/visitor`;
  let res;
  try {
    res = await http('POST', url, body);
  } catch (e) {
    if (e.status === 401 && body.visitor_token) {
      // The old token is no longer accepted: start as a new visitor.
      res = await http('POST', url, {});
    } else {
      throw e;
    }
  }
  if (!res || !res.token) throw new HttpError(500, 'internal', 'No visitor token');
  saveIdentity(res);
  st.token = res.token;
  if (res.conversation_id) switchConversation(res.conversation_id);
  st.needIdentify = false;
}

// ---------------------------------------------------------------- connection

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/webchat/ws?token=${encodeURIComponent(st.token)}`;
}

async function connect() {
  clearTimeout(st.retryTimer);
  if (st.ws || st.fatal || st.connecting) return;
  if (!st.polling) setStatus(st.everConnected ? 'reconnecting' : 'connecting');
  if (st.needIdentify || !st.token) {
    st.connecting = true;
    try {
      await identify();
    } catch (e) {
      st.connecting = false;
      if (e.status === 404) {
        st.fatal = true;
        setStatus('offline');
        showBanner('This chat is not available right now.', 0);
        setComposer(false);
        return;
      }
      if (e.status === 401) {
        st.fatal = true;
        setStatus('offline');
        showBanner('We could not verify your identity. Please reload the page.', 0);
        return;
      }
      scheduleRetry();
      return;
    }
    st.connecting = false;
  }
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    scheduleRetry();
    return;
  }
  st.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    st.wsOpen = true;
    st.failedOpens = 0;
    st.lastFrameAt = Date.now();
    stopPolling();
    // Rule 2: resume after the highest seq shown; rule 1: resend pending.
    sendResume();
    for (const p of st.pending) wsSend({ type: 'send', cid: p.cid, text: p.text });
    for (const p of st.pending) p.sentAt = Date.now();
  };
  ws.onmessage = (ev) => {
    st.lastFrameAt = Date.now();
    let f;
    try { f = JSON.parse(ev.data); } catch { return; }
    if (f && typeof f.type === 'string') onFrame(f);
  };
  ws.onclose = (ev) => {
    if (st.ws === ws) st.ws = null;
    st.wsOpen = false;
    st.replaying = false;
    setAgentTyping(false);
    if (!opened) {
      st.failedOpens++;
      // A handshake refused over and over may be an expired token.
      if (st.failedOpens >= 2) st.needIdentify = true;
      if (st.failedOpens >= 4) startPolling();
    }
    if (ev.code === 1009) showBanner('That message was too large to send.');
    scheduleRetry();
  };
  ws.onerror = () => { /* onclose follows */ };
}

function scheduleRetry() {
  if (st.fatal) return;
  const base = Math.min(15000, 500 * 2 ** st.attempt);
  const delay = Math.round(base * (0.7 + Math.random() * 0.6));
  st.attempt++;
  st.retryAt = Date.now() + delay;
  if (!st.polling) setStatus(navigator.onLine === false ? 'offline' : 'reconnecting');
  clearTimeout(st.retryTimer);
  st.retryTimer = setTimeout(connect, delay);
}

function reconnectNow() {
  if (st.ws || st.fatal) return;
  st.attempt = 0;
  connect();
}

function wsSend(frame) {
  if (!st.wsOpen || !st.ws) return false;
  try {
    st.ws.send(JSON.stringify(frame));
    return true;
  } catch {
    return false;
  }
}

function sendResume() {
  if (wsSend({ type: 'resume', after: st.contig })) st.replaying = true;
}

// Keep-alive, stale-socket detection and resending long-unacknowledged sends.
setInterval(() => {
  if (st.wsOpen) {
    if (Date.now() - st.lastFrameAt > 45000) {
      try { st.ws.close(4000, 'stale'); } catch { /* ignore */ }
      return;
    }
    wsSend({ type: 'ping' });
  }
}, 20000);

setInterval(() => {
  if (!st.wsOpen) return;
  const now = Date.now();
  for (const p of st.pending) {
    if (!p.sentAt || now - p.sentAt > 10000) {
      wsSend({ type: 'send', cid: p.cid, text: p.text });
      p.sentAt = now;
    }
  }
}, 5000);

window.addEventListener('online', reconnectNow);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') {
    reconnectNow();
    markRead();
  }
});
window.addEventListener('focus', markRead);

// ---------------------------------------------------------------- HTTP fallback

function startPolling() {
  if (st.polling) return;
  st.polling = true;
  setStatus('polling');
  pollOnce();
}

function stopPolling() {
  st.polling = false;
  clearTimeout(st.pollTimer);
}

async function pollOnce() {
  clearTimeout(st.pollTimer);
  if (!st.polling || st.wsOpen) return;
  try {
    for (const p of [...st.pending]) {
      try {
        const res = await http('POST', '/api/v1/webchat/messages', { cid: p.cid, text: p.text }, st.token);
        onAck((res && res.ack) || res || {}, p.cid);
      } catch (e) {
        if (e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 401) onRefused(p.cid, e.message);
        else throw e;
      }
    }
    const res = await http('GET', `/api/v1/webchat/messages?after=${st.contig}&limit=100`, undefined, st.token);
    const msgs = (res && res.messages) || [];
    for (const m of msgs) onMessage(m);
    if (msgs.length < 100) settleAfterReplay(res && res.last_seq);
    setStatus('polling');
    markRead();
  } catch (e) {
    if (e.status === 401) st.needIdentify = true;
    setStatus('reconnecting');
  }
  st.pollTimer = setTimeout(pollOnce, 3000);
}

// ---------------------------------------------------------------- frames

function onFrame(f) {
  switch (f.type) {
    case 'hello':
      st.attempt = 0;
      st.everConnected = true;
      setStatus('connected');
      if (f.conversation_id) {
        if (switchConversation(f.conversation_id)) sendResume();
      }
      if (Number.isFinite(f.last_seq)) {
        if (f.last_seq < st.contig) {
          // The server knows fewer messages than we show: start over.
          resetMessages();
          sendResume();
        }
      }
      if (Number.isFinite(f.agent_read_seq) && f.agent_read_seq > st.agentReadSeq) {
        st.agentReadSeq = f.agent_read_seq;
        render();
      }
      break;
    case 'ack':
      onAck(f, f.cid);
      break;
    case 'message':
      if (f.message) onMessage(f.message);
      break;
    case 'resumed':
      st.replaying = false;
      settleAfterReplay(f.last_seq);
      markRead();
      break;
    case 'typing':
      setAgentTyping(!!f.on, f.name);
      break;
    case 'read':
      if (Number.isFinite(f.seq) && f.seq > st.agentReadSeq) {
        st.agentReadSeq = f.seq;
        render();
      }
      break;
    case 'session':
      onSession(f);
      break;
    case 'error':
      if (f.ref) onRefused(f.ref, f.message || f.code);
      else if (f.message) showBanner(f.message);
      break;
    default:
      break;
  }
}

/** Adopt a conversation id; reports whether it replaced another one. */
function switchConversation(id) {
  if (!id || id === st.conversationId) return false;
  const had = !!st.conversationId;
  st.conversationId = id;
  if (had) resetMessages();
  return had;
}

function resetMessages() {
  // Keep the bubbles still waiting to be sent; they belong to this visitor.
  st.items = st.items.filter((it) => it.kind === 'me' && !it.seq && it.status !== 'sent');
  st.bySeq.clear();
  st.byCid = new Map(st.items.map((it) => [it.cid, it]));
  st.contig = 0;
  st.maxSeq = 0;
  st.sentReadSeq = 0;
  st.agentReadSeq = 0;
  render();
}

function kindOf(m) {
  if (m.sender_kind === 'system' || m.type === 'event') return 'system';
  if (m.sender_kind === 'bot') return 'bot';
  if (m.direction === 'in' || m.sender_kind === 'contact') return 'me';
  return 'agent';
}

function onMessage(m) {
  const seq = Number(m.seq);
  if (!Number.isFinite(seq) || seq <= 0) return;
  // Rule 2: anything we already show is dropped.
  if (st.bySeq.has(seq)) return;
  const kind = kindOf(m);
  let it = kind === 'me' && m.cid ? st.byCid.get(m.cid) : null;
  if (it && it.seq && it.seq !== seq) it = null;
  if (it) {
    it.seq = seq;
    it.id = m.id;
    it.status = 'sent';
    it.created_at = m.created_at || it.created_at;
    dropPending(it.cid);
  } else {
    it = {
      key: m.id || `s${seq}`,
      seq,
      id: m.id,
      cid: m.cid || '',
      kind,
      type: m.type || 'text',
      text: typeof m.text === 'string' ? m.text : (m.body && m.body.text) || '',
      body: m.body,
      name: m.sender_name || '',
      created_at: m.created_at,
      status: 'sent',
    };
    st.items.push(it);
    if (kind === 'me' && it.cid) {
      st.byCid.set(it.cid, it);
      dropPending(it.cid); // sent from another tab, or stored before a reload
    }
  }
  st.bySeq.set(seq, it);
  if (kind === 'agent') setAgentTyping(false);
  advance();
  render({ stick: kind === 'me' });
  markRead();
}

function onAck(a, cid) {
  cid = cid || a.cid;
  if (!cid) return;
  dropPending(cid);
  const it = st.byCid.get(cid);
  const seq = Number(a.seq);
  if (!it || !Number.isFinite(seq) || seq <= 0) {
    if (it) { it.status = 'sent'; render(); }
    return;
  }
  const other = st.bySeq.get(seq);
  if (other && other !== it) {
    // The stored copy arrived first (replay or another tab): keep one.
    st.items = st.items.filter((x) => x !== it);
    st.byCid.set(cid, other);
  } else {
    it.seq = seq;
    it.id = a.id || it.id;
    it.status = 'sent';
    st.bySeq.set(seq, it);
  }
  advance();
  render();
}

function onRefused(cid, message) {
  dropPending(cid);
  const it = st.byCid.get(cid);
  if (it && !it.seq) {
    it.status = 'failed';
    it.error = message || 'Not sent';
    render();
  }
  showBanner(message ? `Message not sent: ${message}` : 'Your message could not be sent.');
}

/** Move contig over every seq we have, and look for gaps. */
function advance() {
  while (st.bySeq.has(st.contig + 1)) st.contig++;
  for (const s of st.bySeq.keys()) if (s > st.maxSeq) st.maxSeq = s;
  if (st.maxSeq > st.contig && !st.replaying) {
    // Rule 3: a gap is filled by resume; give in-flight frames a moment first.
    clearTimeout(st.gapTimer);
    st.gapTimer = setTimeout(() => {
      if (st.maxSeq > st.contig && !st.replaying && st.wsOpen) sendResume();
    }, 1200);
  }
}

/**
 * After a replay everything the server holds for us up to lastSeq is here;
 * seqs still missing are not ours to see, so stop waiting for them.
 */
function settleAfterReplay(lastSeq) {
  const upTo = Math.min(Number.isFinite(lastSeq) ? lastSeq : st.maxSeq, st.maxSeq);
  if (upTo > st.contig) st.contig = upTo;
  advance();
}

function onSession(f) {
  st.session = { state: f.state, agent_name: f.agent_name || '', queue_position: f.queue_position };
  if (f.state !== 'active') setAgentTyping(false);
  renderSession();
}

// ---------------------------------------------------------------- sending

function send(text) {
  const cid = uid('c-');
  const created = new Date().toISOString();
  const it = { key: `c:${cid}`, cid, kind: 'me', type: 'text', text, status: 'pending', created_at: created, t: Date.now() };
  st.items.push(it);
  st.byCid.set(cid, it);
  const p = { cid, text, created_at: created };
  st.pending.push(p);
  savePending();
  if (wsSend({ type: 'send', cid, text })) p.sentAt = Date.now();
  else if (st.polling) pollOnce();
  render({ stick: true });
}

function retry(it) {
  if (!it.cid) return;
  it.status = 'pending';
  it.error = '';
  if (!st.pending.some((p) => p.cid === it.cid)) {
    st.pending.push({ cid: it.cid, text: it.text, created_at: it.created_at });
    savePending();
  }
  const p = st.pending.find((x) => x.cid === it.cid);
  if (wsSend({ type: 'send', cid: it.cid, text: it.text })) p.sentAt = Date.now();
  else if (st.polling) pollOnce();
  render();
}

function submit() {
  const raw = els.input.value;
  const text = raw.replace(/\s+$/, '').replace(/^\n+/, '');
  if (!text.trim()) return;
  if ([...text].length > MAX_TEXT) {
    showBanner(`Messages can be at most ${MAX_TEXT} characters.`);
    return;
  }
  els.input.value = '';
  autosize();
  updateCount();
  stopTyping();
  send(text);
  els.input.focus();
}

els.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  submit();
});

els.input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    submit();
  }
});

els.input.addEventListener('input', () => {
  autosize();
  updateCount();
  if (!els.input.value.trim()) {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (!st.typingOn || now - st.typingSentAt > 2500) {
    if (wsSend({ type: 'typing', on: true })) {
      st.typingOn = true;
      st.typingSentAt = now;
    }
  }
  clearTimeout(st.typingStop);
  st.typingStop = setTimeout(stopTyping, 3500);
});
els.input.addEventListener('blur', stopTyping);

function stopTyping() {
  clearTimeout(st.typingStop);
  if (st.typingOn) wsSend({ type: 'typing', on: false });
  st.typingOn = false;
}

function autosize() {
  els.input.style.height = 'auto';
  els.input.style.height = `${Math.min(els.input.scrollHeight, 140)}px`;
}

function updateCount() {
  const n = [...els.input.value].length;
  els.count.textContent = n > MAX_TEXT - 400 ? `${n} / ${MAX_TEXT}` : '';
  els.count.classList.toggle('over', n > MAX_TEXT);
}

function setComposer(on) {
  els.input.disabled = !on;
  els.send.disabled = !on;
}

// ---------------------------------------------------------------- read receipts

function nearBottom() {
  const b = els.messages;
  return b.scrollHeight - b.scrollTop - b.clientHeight < 60;
}

/** Tell the server what the visitor has seen, when they can see it. */
function markRead() {
  if (document.visibilityState !== 'visible' || !nearBottom()) return;
  const seq = st.contig;
  if (seq <= st.sentReadSeq) return;
  if (wsSend({ type: 'read', seq })) {
    st.sentReadSeq = seq;
  } else if (st.polling && st.token) {
    st.sentReadSeq = seq;
    http('POST', '/api/v1/webchat/read', { seq }, st.token).catch(() => { st.sentReadSeq = 0; });
  }
}

els.messages.addEventListener('scroll', () => {
  if (nearBottom()) markRead();
});

// ---------------------------------------------------------------- rendering

function sortKey(it) {
  if (it.seq) return [it.seq, 0];
  return [Number.MAX_SAFE_INTEGER, it.t || 0];
}

function render({ stick = false } = {}) {
  const wasBottom = nearBottom();
  st.items.sort((a, b) => {
    const [a1, a2] = sortKey(a);
    const [b1, b2] = sortKey(b);
    return a1 - b1 || a2 - b2;
  });
  // The visitor's newest stored message carries the read/sent receipt.
  let lastMine = null;
  for (const it of st.items) if (it.kind === 'me' && it.seq) lastMine = it;
  let prev = null;
  const nodes = [els.welcome];
  for (const it of st.items) {
    nodes.push(renderItem(it, prev, it === lastMine));
    prev = it;
  }
  els.welcome.hidden = st.items.length > 0;
  syncChildren(els.messages, nodes);
  if (stick || wasBottom) els.messages.scrollTop = els.messages.scrollHeight;
}

function renderItem(it, prev, isLastMine) {
  const showName = (it.kind === 'agent' || it.kind === 'bot')
    && !(prev && prev.kind === it.kind && prev.name === it.name);
  const receipt = it.kind !== 'me' ? ''
    : it.status === 'failed' ? 'failed'
      : !it.seq ? 'sending'
        : isLastMine ? (st.agentReadSeq >= it.seq ? 'read' : 'sent') : '';
  const sig = [it.seq, it.status, receipt, showName, it.error].join('|');
  if (it.el && it.sig === sig) return it.el;
  it.sig = sig;

  const el = it.el || h('div', {});
  it.el = el;
  el.className = `chat-msg from-${it.kind}${it.status === 'pending' ? ' pending' : ''}${it.status === 'failed' ? ' failed' : ''}`;
  el.dataset.seq = it.seq ? String(it.seq) : '';
  el.dataset.cid = it.cid || '';
  el.dataset.testid = 'chat-msg';
  while (el.firstChild) el.removeChild(el.firstChild);

  if (it.kind === 'system') {
    el.append(h('div', { class: 'chat-bubble' }, body(it)));
    return el;
  }
  if (showName) {
    el.append(h('div', { class: 'chat-name', text: it.kind === 'bot' ? (it.name || 'Assistant') : (it.name || 'Agent') }));
  }
  el.append(h('div', { class: 'chat-bubble' }, body(it)));
  const meta = h('div', { class: 'chat-meta' },
    h('time', { datetime: it.created_at || '', title: fmtFull(it.created_at), text: fmtTime(it.created_at) }));
  if (receipt === 'failed') {
    meta.append(h('span', { class: 'chat-receipt', 'data-receipt': 'failed', title: it.error || '' }, 'not sent · ',
      h('button', { type: 'button', class: 'wc-link', onclick: () => retry(it) }, 'retry')));
  } else if (receipt) {
    meta.append(h('span', { class: 'chat-receipt', 'data-receipt': receipt, text: receipt === 'sending' ? 'sending…' : receipt }));
  }
  el.append(meta);
  return el;
}

function body(it) {
  const text = it.text || '';
  const parts = [];
  if (it.type && it.type !== 'text' && it.type !== 'event') {
    const b = it.body && typeof it.body === 'object' ? it.body : {};
    const url = safeUrl(b.url || b.link);
    if (url) parts.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, text || b.name || it.type));
    else parts.push(text || `[${it.type}]`);
    return h('div', { class: 'chat-text' }, parts);
  }
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    const href = safeUrl(m[0]);
    parts.push(href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, m[0]) : m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return h('div', { class: 'chat-text' }, parts);
}

function renderSession() {
  const s = st.session;
  let text = '';
  switch (s && s.state) {
    case 'bot':
      text = 'Chatting with our virtual assistant';
      break;
    case 'queued':
      text = s.queue_position > 0 ? `Waiting for an agent — position ${s.queue_position}` : 'Waiting for an agent…';
      break;
    case 'offered':
      text = 'Connecting you to an agent…';
      break;
    case 'active':
      text = s.agent_name ? `${s.agent_name} joined` : 'An agent joined';
      break;
    case 'wrapup':
    case 'closed':
      text = 'Conversation ended — write again any time';
      break;
    default:
      text = 'We usually reply in a few minutes';
  }
  els.session.textContent = text;
  els.session.dataset.state = (s && s.state) || '';
}

function setAgentTyping(on, name) {
  clearTimeout(st.agentTypingTimer);
  els.typing.hidden = !on;
  if (on) {
    const who = name || (st.session && st.session.agent_name) || 'Agent';
    els.typingText.textContent = `${who} is typing…`;
    st.agentTypingTimer = setTimeout(() => setAgentTyping(false), 6000);
    if (nearBottom()) els.messages.scrollTop = els.messages.scrollHeight;
  }
}

const STATUS_TEXT = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  polling: 'connected',
  offline: 'offline',
};

let statusTicker = null;
function setStatus(state) {
  els.status.dataset.state = state;
  clearInterval(statusTicker);
  const label = () => {
    if (state === 'reconnecting' && navigator.onLine === false) return 'offline';
    if (state === 'reconnecting' && st.retryAt > Date.now() && !st.ws) {
      return `reconnecting in ${Math.ceil((st.retryAt - Date.now()) / 1000)}s`;
    }
    return STATUS_TEXT[state] || state;
  };
  els.statusLabel.textContent = label();
  if (state === 'reconnecting') statusTicker = setInterval(() => { els.statusLabel.textContent = label(); }, 500);
  els.status.title = state === 'connected' ? 'Connected'
    : state === 'polling' ? 'Connected (without live updates)'
      : 'Not connected — your messages will be sent when the connection is back';
}

function showBanner(text, ms = 6000) {
  clearTimeout(st.bannerTimer);
  els.banner.textContent = text;
  els.banner.hidden = false;
  if (ms > 0) st.bannerTimer = setTimeout(() => { els.banner.hidden = true; }, ms);
}

// ---------------------------------------------------------------- start

function start() {
  const saved = loadIdentity();
  if (saved.conversation_id) st.conversationId = saved.conversation_id;
  if (params.get('title')) {
    $('chat-title').textContent = params.get('title');
    document.title = params.get('title');
  }
  // Sends that never got an ack before the page closed show up again and go
  // out with the same cid once we are connected.
  for (const p of st.pending) {
    const it = { key: `c:${p.cid}`, cid: p.cid, kind: 'me', type: 'text', text: p.text, status: 'pending', created_at: p.created_at, t: Date.parse(p.created_at) || Date.now() };
    st.items.push(it);
    st.byCid.set(p.cid, it);
  }
  render({ stick: true });
  renderSession();
  connect();
  setTimeout(() => els.input.focus(), 0);
}

start();
