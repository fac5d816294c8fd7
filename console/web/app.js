// Switchboard console: start-up, sign-in, the header (me, state, connection),
// page routing and the realtime dispatch. The workspace (sessions,
// transcript, wrap-up...) lives in workspace.js, the supervisor page in
// supervisor.js.

import { Api, Realtime, ApiError, unwrap } from './api.js';
import { Workspace } from './workspace.js';
import { Supervisor } from './supervisor.js';
import { $, h, debounce, fmtDuration, secondsSince } from './util.js';

const SUPERVISOR_ROLES = new Set(['supervisor', 'admin']);

// ---------------------------------------------------------------- toasts

/** Show a transient message in #toast. kind: 'error' | 'info' | 'success'. */
export function toast(message, kind = 'error') {
  const area = $('toast');
  const text = String(message || 'Something went wrong.');
  // Collapse repeats of the same message instead of stacking them.
  for (const el of area.children) {
    if (el.dataset.text === text) {
      el.remove();
      break;
    }
  }
  const el = h('div', { class: `toast toast-${kind}`, 'data-text': text, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-text', text }),
    h('button', { class: 'toast-x', type: 'button', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  area.appendChild(el);
  while (area.children.length > 4) area.firstChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

function errorText(e) {
  if (e instanceof ApiError) return e.message;
  return (e && e.message) || 'Something went wrong.';
}

// ---------------------------------------------------------------- state

const app = {
  me: null,
  api: null,
  rt: null,
  workspace: null,
  supervisor: null,
  stateTicker: null,
  pendingState: null, // the last state/reason sent, to skip duplicate PUTs
  selShown: null, // the value #state-select shows by our own doing
  reasonTried: null, // the last reason applied without an input event
};

app.api = new Api({ onUnauthorized: () => expireSession() });

app.rt = new Realtime(app.api, {
  onFrame: (type, data) => onFrame(type, data),
  onStatus: (s) => showConn(s),
  onReconnect: () => app.workspace.resync(),
  onRetry: (attempt) => {
    // A socket that cannot even open may mean the token expired: ask the
    // API, which calls expireSession on a 401.
    if (attempt >= 1) app.api.get('/me').catch(() => {});
  },
});

app.workspace = new Workspace({
  api: app.api,
  rt: app.rt,
  toast,
  getMe: () => app.me,
  onUnread: (n) => showUnread(n),
});

app.supervisor = new Supervisor({ api: app.api, toast });

// ---------------------------------------------------------------- views

function showOnly(view) {
  $('boot-view').hidden = view !== 'boot';
  $('login-view').hidden = view !== 'login';
  $('app-view').hidden = view !== 'app';
}

function showLogin(message = '') {
  showOnly('login');
  $('login-error').textContent = message;
  $('login-password').value = '';
  $('login-submit').disabled = false;
  const first = $('login-username').value ? $('login-password') : $('login-username');
  setTimeout(() => first.focus(), 0);
}

// ---------------------------------------------------------------- sign-in

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const tenant = $('login-tenant').value.trim();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const err = $('login-error');
  if (!username || !password) {
    err.textContent = 'Enter your username and password.';
    return;
  }
  err.textContent = '';
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = 'Signing in…';
  try {
    const body = { username, password };
    if (tenant) body.tenant = tenant;
    const res = await app.api.post('/auth/login', body, { auth: false });
    if (!res || !res.token) throw new ApiError(500, 'internal', 'The server did not return a token.');
    app.api.token = res.token;
    let agent = res.agent;
    if (!agent) agent = unwrap(await app.api.get('/me'), 'agent');
    $('login-password').value = '';
    startApp(agent);
  } catch (e) {
    err.textContent = errorText(e);
  } finally {
    btn.disabled = false;
    btn.textContent = 'Sign in';
  }
});

async function boot() {
  if (!app.api.token) {
    showLogin();
    return;
  }
  try {
    const me = unwrap(await app.api.get('/me'), 'agent');
    startApp(me);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return; // expireSession already showed login
    showLogin(errorText(e));
  }
}

function startApp(agent) {
  app.me = agent || {};
  app.pendingState = null;
  showOnly('app');
  renderMe();
  const sup = SUPERVISOR_ROLES.has(app.me.role);
  $('nav-supervisor').hidden = !sup;
  app.workspace.start(app.me);
  app.rt.start();
  clearInterval(app.stateTicker);
  app.stateTicker = setInterval(() => {
    renderStateTime();
    applyScriptedState();
  }, 1000);
  route();
}

function stopApp() {
  app.rt.stop();
  app.workspace.stop();
  app.supervisor.hide();
  clearInterval(app.stateTicker);
  app.me = null;
  document.title = 'Switchboard';
}

function expireSession() {
  if (!app.me && !$('login-view').hidden) return;
  stopApp();
  app.api.token = '';
  showLogin('Your session has expired. Please sign in again.');
}

$('logout').addEventListener('click', async () => {
  const btn = $('logout');
  btn.disabled = true;
  try {
    await app.api.post('/auth/logout', {});
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      // Signing out locally is still right; the token is dropped below.
      console.warn('logout', e);
    }
  } finally {
    btn.disabled = false;
  }
  stopApp();
  app.api.token = '';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  showLogin();
});

// ---------------------------------------------------------------- header

function renderMe() {
  const me = app.me || {};
  $('me-name').textContent = me.display_name || me.username || '';
  $('me-name').title = me.username ? `@${me.username}` : '';
  $('me-role').textContent = me.role || '';
  $('me-role').dataset.role = me.role || '';
  const state = me.state || 'offline';
  const pill = $('me-state');
  pill.textContent = state;
  pill.dataset.state = state;
  pill.title = me.state_reason ? `${state}: ${me.state_reason}` : state;
  const sel = $('state-select');
  if (document.activeElement !== sel) sel.value = state;
  app.selShown = sel.value;
  const reason = $('state-reason');
  reason.hidden = sel.value !== 'not_ready';
  if (document.activeElement !== reason && state === 'not_ready') reason.value = me.state_reason || '';
  $('session-empty-hint').textContent = state === 'ready'
    ? 'You are ready. New chats will appear here.'
    : 'Set your state to Ready to receive chats.';
  renderStateTime();
}

/**
 * A value set from script (automation, password managers, extensions)
 * fires no change event; apply it anyway so the select never lies.
 */
function applyScriptedState() {
  const sel = $('state-select');
  const reasonEl = $('state-reason');
  if (document.activeElement === sel || document.activeElement === reasonEl) return;
  if (app.selShown !== null && sel.value !== app.selShown) {
    onStateSelect();
    return;
  }
  const reason = reasonEl.value.trim();
  if (sel.value === 'not_ready' && app.me && reason !== (app.me.state_reason || '') && reason !== app.reasonTried) {
    app.reasonTried = reason;
    putState('not_ready', reason);
  }
}

function renderStateTime() {
  const me = app.me;
  const el = $('me-state-time');
  const s = me ? secondsSince(me.state_since) : null;
  el.textContent = s === null ? '' : fmtDuration(s);
}

async function putState(state, reason) {
  const key = `${state}\u0000${reason}`;
  if (app.pendingState === key) return;
  app.pendingState = key;
  const before = { ...app.me };
  // Optimistic: the header follows the choice at once.
  app.me = { ...app.me, state, state_reason: reason };
  if (before.state !== state) app.me.state_since = new Date().toISOString();
  renderMe();
  try {
    const res = await app.api.put('/me/state', { state, reason });
    const agent = unwrap(res, 'agent');
    if (agent && agent.state) {
      app.me = { ...app.me, ...agent };
      renderMe();
    }
  } catch (e) {
    app.pendingState = null;
    app.me = before;
    renderMe();
    $('state-select').value = before.state || 'offline';
    $('state-reason').hidden = $('state-select').value !== 'not_ready';
    toast(errorText(e));
  }
}

function onStateSelect() {
  const sel = $('state-select');
  const reasonEl = $('state-reason');
  const state = sel.value;
  app.selShown = state;
  reasonEl.hidden = state !== 'not_ready';
  const reason = state === 'not_ready' ? reasonEl.value.trim() : '';
  putState(state, reason);
  if (state === 'not_ready') setTimeout(() => reasonEl.focus(), 0);
}

$('state-select').addEventListener('change', onStateSelect);
$('state-select').addEventListener('input', onStateSelect);

const reasonChanged = () => {
  if ($('state-select').value !== 'not_ready') return;
  putState('not_ready', $('state-reason').value.trim());
};
const reasonTyped = debounce(reasonChanged, 700);
$('state-reason').addEventListener('input', reasonTyped);
$('state-reason').addEventListener('change', () => { reasonTyped.cancel(); reasonChanged(); });
$('state-reason').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') {
    ev.preventDefault();
    reasonTyped.cancel();
    reasonChanged();
    ev.target.blur();
  }
});

const CONN_LABELS = {
  connecting: 'connecting…',
  open: 'live',
  waiting: 'reconnecting…',
  closed: 'offline',
};

let connTicker = null;
function showConn(status) {
  const el = $('conn-status');
  el.dataset.state = status;
  const label = $('conn-label');
  clearInterval(connTicker);
  if (status === 'waiting') {
    const tick = () => {
      const s = Math.max(0, Math.ceil((app.rt.retryAt - Date.now()) / 1000));
      label.textContent = navigator.onLine === false ? 'offline' : `reconnecting in ${s}s`;
    };
    tick();
    connTicker = setInterval(tick, 500);
  } else {
    label.textContent = CONN_LABELS[status] || status;
  }
  el.title = status === 'open' ? 'Realtime connection is live' : 'Realtime connection is down; updates may be delayed';
}

function showUnread(n) {
  const b = $('nav-unread');
  b.hidden = n <= 0;
  b.textContent = n > 99 ? '99+' : String(n);
  document.title = n > 0 ? `(${n}) Switchboard` : 'Switchboard';
}

// ---------------------------------------------------------------- routing

function route() {
  if (!app.me) return;
  const wantSup = location.hash.startsWith('#/supervisor');
  const sup = wantSup && SUPERVISOR_ROLES.has(app.me.role);
  if (wantSup && !sup) history.replaceState(null, '', '#/');
  $('workspace-view').hidden = sup;
  $('supervisor-view').hidden = !sup;
  $('nav-workspace').classList.toggle('active', !sup);
  $('nav-supervisor').classList.toggle('active', sup);
  if (sup) app.supervisor.show();
  else app.supervisor.hide();
}

window.addEventListener('hashchange', route);

// ---------------------------------------------------------------- realtime

function onFrame(type, data) {
  switch (type) {
    case 'hello':
      if (data.agent) {
        app.me = { ...app.me, ...data.agent };
        renderMe();
      }
      break;
    case 'agent.updated':
      if (data.agent && app.me && data.agent.id === app.me.id) {
        app.me = { ...app.me, ...data.agent };
        app.pendingState = null;
        renderMe();
      }
      app.supervisor.onEvent(type, data);
      break;
    case 'session.updated':
    case 'queue.updated':
      app.workspace.onFrame(type, data);
      app.supervisor.onEvent(type, data);
      break;
    case 'error':
      if (data && data.message) console.warn('console ws error:', data.code, data.message);
      break;
    default:
      app.workspace.onFrame(type, data);
  }
}

boot();
