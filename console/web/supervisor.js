// The supervisor page: live queue, agent and session figures from
// GET /api/v1/supervisor/overview, refreshed on load, 300 ms after realtime
// events (coalesced) and every 5 s while the page is shown. Durations tick
// locally between refreshes.

import { ApiError } from './api.js';
import { $, h, clear, debounce, fmtDuration, secondsSince, toDate } from './util.js';

const SESSION_STATES = [
  ['bot', 'With bot'],
  ['queued', 'Queued'],
  ['offered', 'Offered'],
  ['active', 'Active'],
  ['wrapup', 'Wrap-up'],
  ['closed', 'Closed'],
];
const AGENT_ORDER = { ready: 0, busy: 1, not_ready: 2, offline: 3 };

export class Supervisor {
  constructor({ api, toast }) {
    this.api = api;
    this.toast = toast;
    this.visible = false;
    this.poll = null;
    this.ticker = null;
    this.data = null;
    this.fetchedAt = 0;
    this.inflight = false;
    this.again = false;
    this.lastError = '';
    this.refreshSoon = debounce(() => this.load(), 300);
    $('sup-refresh').addEventListener('click', () => this.load());
  }

  show() {
    if (this.visible) return;
    this.visible = true;
    this.load();
    clearInterval(this.poll);
    clearInterval(this.ticker);
    this.poll = setInterval(() => this.load(), 5000);
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  hide() {
    this.visible = false;
    clearInterval(this.poll);
    clearInterval(this.ticker);
    this.refreshSoon.cancel();
  }

  /** A realtime event that changes the figures. */
  onEvent(type) {
    if (!this.visible) return;
    if (type === 'session.updated' || type === 'agent.updated' || type === 'queue.updated') this.refreshSoon();
  }

  async load() {
    if (!this.visible) return;
    if (this.inflight) {
      this.again = true;
      return;
    }
    this.inflight = true;
    try {
      const res = await this.api.get('/supervisor/overview');
      this.data = normalise(res || {});
      this.fetchedAt = Date.now();
      this.lastError = '';
      this.render();
    } catch (e) {
      const msg = e instanceof ApiError ? e.message : String(e);
      // Polling every 5 s must not flood the screen with the same error.
      if (msg !== this.lastError && !(e instanceof ApiError && e.status === 401)) this.toast(msg);
      this.lastError = msg;
      $('sup-updated').textContent = 'Update failed; retrying…';
      $('sup-updated').classList.add('stale');
    } finally {
      this.inflight = false;
      if (this.again) {
        this.again = false;
        this.refreshSoon();
      }
    }
  }

  render() {
    const d = this.data;
    if (!d) return;
    this.renderCounts(d);
    this.renderGroups(d);
    this.renderAgents(d);
    this.tick();
  }

  renderCounts(d) {
    const box = clear($('sup-sessions'));
    // Open states always show (the server leaves zero counts out); closed
    // and anything unknown only when the server reports them.
    const known = new Set(SESSION_STATES.map(([k]) => k));
    const entries = SESSION_STATES.filter(([k]) => k !== 'closed' || k in d.sessions);
    for (const k of Object.keys(d.sessions)) if (!known.has(k)) entries.push([k, k]);
    for (const [k, label] of entries) {
      box.append(h('div', { class: 'sup-count', 'data-state': k, 'data-testid': `sup-count-${k}` },
        h('span', { class: 'sup-count-n', text: String(d.sessions[k] ?? 0) }),
        h('span', { class: 'sup-count-l', text: k === 'closed' && d.closedLabel ? d.closedLabel : label })));
    }
    if (d.bot) {
      // Bot containment over the last 24 hours: resolved / (resolved + handed off + abandoned).
      const c = typeof d.bot.containment === 'number' ? `${Math.round(d.bot.containment * 100)}%` : '–';
      box.append(h('div', {
        class: 'sup-count', 'data-state': 'bot-containment', 'data-testid': 'sup-bot-containment',
        title: `24 h: ${d.bot.resolved} resolved by the bot, ${d.bot.handed_off} handed off, ${d.bot.abandoned} abandoned`,
      },
      h('span', { class: 'sup-count-n', text: c }),
      h('span', { class: 'sup-count-l', text: 'Bot containment (24 h)' })));
    }
  }

  renderGroups(d) {
    const tbody = $('sup-groups').tBodies[0];
    clear(tbody);
    if (!d.groups.length) {
      tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: '6', text: 'No skill groups.' })));
      return;
    }
    for (const g of d.groups) {
      const tr = h('tr', { 'data-group-id': g.id || '' },
        h('td', { class: 'strong', text: g.name || g.id || '' }),
        h('td', { class: `num${g.waiting > 0 ? ' warn' : ''}`, text: fmtN(g.waiting) }),
        h('td', { class: 'num mono', 'data-role': 'longest-wait' }),
        h('td', { class: 'num', text: fmtN(g.ready) }),
        h('td', { class: 'num', text: fmtN(g.busy) }),
        h('td', { class: 'num', text: fmtN(g.active) }));
      tr._g = g;
      tbody.append(tr);
    }
  }

  renderAgents(d) {
    const tbody = $('sup-agents').tBodies[0];
    clear(tbody);
    if (!d.agents.length) {
      tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: '4', text: 'No agents.' })));
      return;
    }
    const agents = [...d.agents].sort((a, b) =>
      (AGENT_ORDER[a.state] ?? 9) - (AGENT_ORDER[b.state] ?? 9) || String(a.name).localeCompare(String(b.name)));
    for (const a of agents) {
      const tr = h('tr', { 'data-agent-id': a.id || '' },
        h('td', { class: 'strong', title: a.username ? `@${a.username}` : null, text: a.name }),
        h('td', {},
          h('span', { class: 'state-pill', 'data-state': a.state, text: a.state }),
          a.reason ? h('span', { class: 'muted small state-reason-cell', text: a.reason }) : null),
        h('td', { class: 'num mono', 'data-role': 'time-in-state' }),
        h('td', { class: 'num', text: a.max ? `${fmtN(a.active)} / ${a.max}` : fmtN(a.active) }));
      tr._a = a;
      tbody.append(tr);
    }
  }

  /** Advance the durations by the time since the last fetch. */
  tick() {
    if (!this.data) return;
    const age = (Date.now() - this.fetchedAt) / 1000;
    for (const tr of $('sup-groups').tBodies[0].rows) {
      const g = tr._g;
      if (!g) continue;
      const cell = tr.querySelector('[data-role="longest-wait"]');
      const w = g.waiting > 0 && g.longestWait !== null ? g.longestWait + age : null;
      cell.textContent = w === null ? '—' : fmtDuration(w);
      cell.classList.toggle('warn', w !== null && g.slThreshold > 0 && w > g.slThreshold);
    }
    for (const tr of $('sup-agents').tBodies[0].rows) {
      const a = tr._a;
      if (!a) continue;
      const cell = tr.querySelector('[data-role="time-in-state"]');
      cell.textContent = a.inState === null ? '—' : fmtDuration(a.inState + age);
    }
    const el = $('sup-updated');
    el.classList.toggle('stale', !!this.lastError || age > 15);
    if (!this.lastError) el.textContent = age < 2 ? 'Updated just now' : `Updated ${Math.round(age)}s ago`;
  }
}

// ---------------------------------------------------------------- parsing

function num(...vals) {
  for (const v of vals) {
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return null;
}

function fmtN(v) {
  return v === null || v === undefined ? '—' : String(v);
}

/**
 * Map the overview to one shape, tolerating the spellings a server might
 * reasonably choose (seconds or milliseconds, counts or arrays).
 */
function normalise(res) {
  const groups = (res.groups || res.queues || []).map((g) => {
    let longest = num(g.longest_wait_sec, g.longest_wait_seconds, g.longest_wait_s, g.oldest_wait_sec);
    if (longest === null) {
      const ms = num(g.longest_wait_ms, g.oldest_wait_ms);
      if (ms !== null) longest = ms / 1000;
    }
    if (longest === null) longest = secondsSince(g.oldest_waiting_since || g.oldest_enqueued_at || g.longest_wait_since);
    const agents = g.agents && typeof g.agents === 'object' && !Array.isArray(g.agents) ? g.agents : {};
    return {
      id: g.id || g.group_id,
      name: g.name || g.group_name,
      waiting: num(g.waiting, g.queued, g.queue_length) ?? 0,
      longestWait: longest,
      ready: num(g.agents_ready, g.ready_agents, agents.ready),
      busy: num(g.agents_busy, g.busy_agents, agents.busy),
      active: num(g.sessions_active, g.active_sessions, g.active),
      slThreshold: num(g.sl_threshold_sec, g.service_level_threshold_sec) ?? 0,
    };
  });
  const agents = (res.agents || []).map((a) => {
    let inState = num(a.time_in_state_sec, a.state_seconds, a.in_state_sec);
    if (inState === null) inState = secondsSince(a.state_since);
    return {
      id: a.id,
      name: a.display_name || a.name || a.username || a.id,
      username: a.username,
      state: a.state || 'offline',
      reason: a.state_reason || a.reason || '',
      inState,
      active: num(a.active_sessions, a.sessions, a.load) ?? 0,
      max: num(a.max_sessions),
    };
  });
  let sessions = res.sessions || res.sessions_by_state || res.session_counts || {};
  if (Array.isArray(sessions)) {
    const m = {};
    for (const x of sessions) if (x && x.state) m[x.state] = num(x.count, x.n) ?? 0;
    sessions = m;
  }
  const counts = {};
  for (const [k, v] of Object.entries(sessions)) {
    const n = num(v);
    if (n !== null) counts[k] = n;
  }
  const closedLabel = res.closed_today !== undefined || counts.closed_today !== undefined ? 'Closed today' : '';
  if (counts.closed_today !== undefined) {
    counts.closed = counts.closed_today;
    delete counts.closed_today;
  } else if (num(res.closed_today) !== null) {
    counts.closed = num(res.closed_today);
  }
  return { groups, agents, sessions: counts, closedLabel, bot: res.bot || null, at: toDate(res.generated_at) };
}
