// REST and WebSocket client for the agent console (docs/console-protocol.md).

const TOKEN_KEY = 'sb_token';
const BASE = '/api/v1';

/** An API failure: HTTP status plus the server's {"error":{code,message,details}}. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.details = details || null;
  }
}

export class Api {
  /** onUnauthorized is called when an authenticated request answers 401. */
  constructor({ onUnauthorized } = {}) {
    this.onUnauthorized = onUnauthorized || (() => {});
  }

  get token() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
  }

  set token(v) {
    try {
      if (v) localStorage.setItem(TOKEN_KEY, v);
      else localStorage.removeItem(TOKEN_KEY);
    } catch { /* storage disabled: the token lives for this page only */ }
    this._memToken = v || '';
  }

  _token() { return this.token || this._memToken || ''; }

  /**
   * Send a request; resolve with the decoded JSON (null for an empty body),
   * reject with an ApiError. auth=false skips the token and the 401 hook.
   */
  async request(method, path, body, { auth = true, signal } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const tok = this._token();
    if (auth && tok) headers.Authorization = `Bearer ${tok}`;
    let res;
    try {
      res = await fetch(BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: 'no-store',
      });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
    }
    const text = await res.text().catch(() => '');
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const e = new ApiError(res.status, err.code, err.message || defaultMessage(res.status), err.details);
      if (res.status === 401 && auth) this.onUnauthorized(e);
      throw e;
    }
    return data;
  }

  get(path, opts) { return this.request('GET', path, undefined, opts); }
  post(path, body = {}, opts) { return this.request('POST', path, body, opts); }
  put(path, body = {}, opts) { return this.request('PUT', path, body, opts); }
  del(path, opts) { return this.request('DELETE', path, undefined, opts); }

  /** The WebSocket URL for the console stream. */
  wsUrl() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${BASE}/ws?token=${encodeURIComponent(this._token())}`;
  }
}

function defaultMessage(status) {
  switch (status) {
    case 400: return 'The request was not valid.';
    case 401: return 'Please sign in again.';
    case 403: return 'You are not allowed to do this.';
    case 404: return 'Not found.';
    case 409: return 'This changed in the meantime; please try again.';
    case 413: return 'Too large.';
    case 429: return 'Too many requests; slow down a little.';
    case 502: case 503: case 504: return 'The server is unavailable; retrying may help.';
    default: return `The server answered ${status}.`;
  }
}

/**
 * Realtime keeps one console WebSocket open, reconnecting with exponential
 * backoff and jitter. Every server frame {"type","data"} goes to onFrame;
 * onStatus gets 'connecting' | 'open' | 'waiting' | 'closed'; onReconnect
 * runs when a connection opens after an earlier one was lost, so the caller
 * can fetch what it may have missed.
 */
export class Realtime {
  constructor(api, { onFrame, onStatus, onReconnect, onRetry } = {}) {
    this.api = api;
    this.onFrame = onFrame || (() => {});
    this.onStatus = onStatus || (() => {});
    this.onReconnect = onReconnect || (() => {});
    this.onRetry = onRetry || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.everOpened = false;
    this.stopped = true;
    this.timer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
    this.retryAt = 0;
    this._online = () => { if (!this.stopped && !this.ws) this._connectNow(); };
    this._visible = () => {
      if (document.visibilityState === 'visible' && !this.stopped && !this.ws) this._connectNow();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.everOpened = false;
    this.attempt = 0;
    window.addEventListener('online', this._online);
    document.addEventListener('visibilitychange', this._visible);
    this._connectNow();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this._online);
    document.removeEventListener('visibilitychange', this._visible);
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      try { ws.close(1000, 'bye'); } catch { /* already closed */ }
    }
    this.onStatus('closed');
  }

  get isOpen() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  /** Send a client frame; dropped silently while disconnected. */
  send(frame) {
    if (!this.isOpen) return false;
    try { this.ws.send(JSON.stringify(frame)); return true; } catch { return false; }
  }

  _connectNow() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.onStatus('connecting');
    let ws;
    try {
      ws = new WebSocket(this.api.wsUrl());
    } catch {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastFrameAt = Date.now();
      this.onStatus('open');
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this._keepAlive(), 20000);
      const again = this.everOpened;
      this.everOpened = true;
      if (again) this.onReconnect();
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (!f || typeof f.type !== 'string') return;
      if (f.type === 'hello') this.attempt = 0; // a healthy connection resets the backoff
      if (f.type === 'pong') return;
      try { this.onFrame(f.type, f.data || {}); } catch (e) { console.error('frame handler', f.type, e); }
    };
    ws.onclose = () => {
      clearInterval(this.pingTimer);
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (!opened) this.onRetry(this.attempt);
      this._scheduleRetry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  _keepAlive() {
    if (!this.isOpen) return;
    // A socket that stayed silent through two pings is half-open: drop it.
    if (Date.now() - this.lastFrameAt > 50000) {
      try { this.ws.close(4000, 'stale'); } catch { /* ignore */ }
      return;
    }
    this.send({ type: 'ping' });
  }

  _scheduleRetry() {
    const base = Math.min(15000, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.7 + Math.random() * 0.6));
    this.attempt++;
    this.retryAt = Date.now() + delay;
    this.onStatus('waiting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connectNow(), delay);
  }
}

/** Accept either a bare object or one wrapped in {key: object}. */
export function unwrap(res, key) {
  if (res && typeof res === 'object' && res[key] && typeof res[key] === 'object') return res[key];
  return res;
}
