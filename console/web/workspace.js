// The agent workspace: my sessions, the transcript and composer, pins,
// notes, transfer, wrap-up and knowledge-base suggestions.
//
// Messages are kept per session and keyed by server id; an optimistic
// message is keyed by its client_msg_id until the API answer or the
// message.created event (whichever comes first) gives it an id, so a message
// is never shown twice.

import { ApiError, unwrap } from './api.js';
import { Wrapup } from './wrapup.js';
import { KnowledgePanel } from './kb.js';
import {
  $, h, clear, fill, syncChildren, uid, fmtTime, fmtFull, fmtDuration,
  secondsSince, channelLabel, hueOf, initials, messageText, messageKind, safeUrl, toDate,
} from './util.js';

const MAX_TEXT = 4000;
const STATE_RANK = { offered: 0, active: 1, bot: 2, queued: 2, wrapup: 3, closed: 4 };
const STATUS_RANK = { sending: 0, queued: 1, sent: 2, delivered: 3, read: 4 };
const STATUS_LABEL = { queued: 'Queued', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Failed' };
const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;

const enc = encodeURIComponent;

export class Workspace {
  constructor({ api, rt, toast, getMe, onUnread }) {
    this.api = api;
    this.rt = rt;
    this.toast = toast;
    this.getMe = getMe;
    this.onUnread = onUnread || (() => {});
    this.sessions = new Map(); // id → session record (see newRecord)
    this.listNodes = new Map(); // id → <li>
    this.msgNodes = new Map(); // message _key → element, for the selected session
    this.selectedId = null;
    this.leaving = new Set(); // sessions this agent is handing off; no "removed" notice for them
    this.groups = [];
    this.agents = [];
    this.agentsForbidden = false;
    this.typing = { on: false, sentAt: 0, sessionId: null, stopTimer: null };
    this.ticker = null;
    this.running = false;
    this.wrapup = new Wrapup(this);
    this.kb = new KnowledgePanel(this);
    this.bind();
  }

  get me() { return this.getMe() || {}; }

  // ---------------------------------------------------------------- lifecycle

  start() {
    this.running = true;
    this.loadSessions({ initial: true });
    this.loadTargets();
    this.wrapup.load();
    this.kb.probe();
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  stop() {
    this.running = false;
    clearInterval(this.ticker);
    this.stopTyping();
    this.sessions.clear();
    this.listNodes.clear();
    this.msgNodes.clear();
    this.selectedId = null;
    this.leaving.clear();
    this.wrapup.reset();
    this.kb.reset();
    clear($('session-list'));
    clear($('transcript'));
    clear($('notes-list'));
    clear($('pinned-list'));
    $('composer-input').value = '';
    $('note-input').value = '';
    const dlg = $('transfer-dialog');
    if (dlg.open) dlg.close();
    this.renderList();
    this.renderConversation();
  }

  /** After the realtime connection came back: fetch what may have been missed. */
  resync() {
    if (!this.running) return;
    this.loadSessions({ initial: false });
  }

  // ---------------------------------------------------------------- records

  newRecord(sessionJson) {
    return {
      id: sessionJson.id,
      data: sessionJson,
      contact: sessionJson.contact || null,
      msgs: [],
      byId: new Map(),
      byCid: new Map(),
      sorted: true,
      loaded: false,
      loading: null,
      unread: 0,
      fresh: false,
      typing: false,
      typingTimer: null,
      readSeq: 0, // the customer's read watermark
      sentReadSeq: 0, // what we told the server we have read
      notes: null,
      notesLoading: false,
      draft: '',
    };
  }

  upsertSession(sj, contact) {
    let s = this.sessions.get(sj.id);
    if (!s) {
      s = this.newRecord(sj);
      this.sessions.set(sj.id, s);
    } else {
      // Older snapshots (lower version) never overwrite newer ones.
      const oldV = Number(s.data.version || 0);
      const newV = Number(sj.version || 0);
      if (!(newV && oldV && newV < oldV)) s.data = { ...s.data, ...sj };
    }
    if (contact) s.contact = contact;
    else if (sj.contact) s.contact = sj.contact;
    return s;
  }

  removeSession(id) {
    const s = this.sessions.get(id);
    if (!s) return;
    setTimeout(() => this.leaving.delete(id), 5000); // the POST answer or the event may still come
    clearTimeout(s.typingTimer);
    this.sessions.delete(id);
    const li = this.listNodes.get(id);
    if (li) li.remove();
    this.listNodes.delete(id);
    if (this.selectedId === id) {
      this.stopTyping();
      this.selectedId = null;
      this.msgNodes.clear();
      clear($('transcript'));
      const dlg = $('transfer-dialog');
      if (dlg.open) dlg.close();
    }
    this.renderList();
    this.renderConversation();
  }

  contactName(s) {
    const c = s.contact || {};
    const name = c.display_name || c.name || s.data.contact_name;
    if (name) return name;
    const id = s.data.contact_id || s.id || '';
    return `Visitor ${id.replace(/^[a-z]+_/i, '').slice(-4) || ''}`.trim();
  }

  agentName(id) {
    if (!id) return 'Agent';
    if (id === this.me.id) return 'You';
    const a = this.agents.find((x) => x.id === id);
    return (a && (a.display_name || a.username)) || 'Agent';
  }

  groupName(id) {
    const g = this.groups.find((x) => x.id === id);
    return g ? g.name : id;
  }

  // ---------------------------------------------------------------- messages

  /** Merge a server or optimistic message; returns {msg, isNew}. */
  mergeMessage(s, m) {
    if (!m) return { msg: null, isNew: false };
    if (s.window && m.direction === 'in' && m.created_at) {
      // The customer wrote: the reply window runs again from this message.
      const end = Date.parse(m.created_at) + s.window.hours * 3600e3;
      if (!s.window.ends_at || end > Date.parse(s.window.ends_at)) {
        s.window = { ...s.window, open: Date.now() < end, ends_at: new Date(end).toISOString() };
      }
    }
    let cur = m.id ? s.byId.get(m.id) : undefined;
    if (!cur && m.client_msg_id) cur = s.byCid.get(m.client_msg_id);
    if (cur) {
      const keepStatus = betterStatus(cur.status, m.status);
      Object.assign(cur, m);
      cur.status = keepStatus;
      cur._pending = false;
      cur._failed = null;
      if (m.id) s.byId.set(m.id, cur);
      s.sorted = false;
      return { msg: cur, isNew: false };
    }
    const msg = { ...m, _key: m.id || `c:${m.client_msg_id || uid()}`, _t: Date.now() };
    s.msgs.push(msg);
    if (m.id) s.byId.set(m.id, msg);
    if (m.client_msg_id) s.byCid.set(m.client_msg_id, msg);
    s.sorted = false;
    return { msg, isNew: true };
  }

  sortedMsgs(s) {
    if (!s.sorted) {
      s.msgs.sort((a, b) => {
        const sa = Number.isFinite(a.seq) && a.seq > 0 ? a.seq : Infinity;
        const sb = Number.isFinite(b.seq) && b.seq > 0 ? b.seq : Infinity;
        return sa !== sb ? sa - sb : a._t - b._t;
      });
      s.sorted = true;
    }
    return s.msgs;
  }

  lastSeq(s) {
    let max = 0;
    for (const m of s.msgs) if (Number.isFinite(m.seq) && m.seq > max) max = m.seq;
    return max;
  }

  lastMessage(s) {
    const list = this.sortedMsgs(s);
    return list.length ? list[list.length - 1] : null;
  }

  async loadMessages(s) {
    if (s.loading) return s.loading;
    s.loading = (async () => {
      try {
        const res = await this.api.get(`/sessions/${enc(s.id)}/messages?after=0&limit=500`);
        if (!this.sessions.has(s.id)) return;
        if (s.data.channel && s.data.channel !== 'webchat') {
          // Provider channels: the customer-service window (docs/channels.md).
          const view = await this.api.get(`/sessions/${enc(s.id)}`);
          s.window = (view && view.window) || null;
        }
        for (const m of (res && res.messages) || []) this.mergeMessage(s, m);
        s.loaded = true;
        this.changed(s);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) {
          if (e instanceof ApiError && e.status === 404) this.removeSession(s.id);
          else if (this.selectedId === s.id) this.toast(e.message);
        }
      } finally {
        s.loading = null;
      }
    })();
    return s.loading;
  }

  async loadSessions({ initial }) {
    let res;
    try {
      res = await this.api.get('/me/sessions');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
      return;
    }
    if (!this.running) return;
    const list = (res && res.sessions) || [];
    const seen = new Set();
    for (const sj of list) {
      if (!sj || !sj.id) continue;
      seen.add(sj.id);
      this.upsertSession(sj);
    }
    for (const [id, s] of this.sessions) {
      if (!seen.has(id) && s.data.state !== 'closed') this.removeSession(id);
    }
    this.renderList();
    this.renderConversation();
    // Reload transcripts: all on start, and after a reconnect too, since
    // anything may have happened while we were away. Agents hold few sessions.
    await Promise.all([...this.sessions.values()].map((s) => this.loadMessages(s)));
    if (!initial) {
      this.retryFailed();
      const sel = this.selected();
      if (sel && sel.notes !== null) this.loadNotes(sel);
    }
  }

  selected() {
    return this.selectedId ? this.sessions.get(this.selectedId) || null : null;
  }

  /** Re-render whatever shows session s. */
  changed(s, { scroll = false } = {}) {
    this.renderListItem(s);
    this.renderUnread();
    if (s.id === this.selectedId) {
      this.renderTranscript({ scroll });
      this.renderPins();
      this.maybeSendRead();
    }
  }

  // ---------------------------------------------------------------- realtime

  onFrame(type, data) {
    if (!this.running) return;
    switch (type) {
      case 'session.assigned': {
        const sj = data.session;
        if (!sj || !sj.id) return;
        const s = this.upsertSession(sj, data.contact);
        s.fresh = s.id !== this.selectedId;
        if (Array.isArray(data.messages)) {
          for (const m of data.messages) this.mergeMessage(s, m);
          s.loaded = true;
        } else {
          this.loadMessages(s);
        }
        this.renderList();
        this.changed(s);
        if (s.id === this.selectedId) this.renderConversation();
        break;
      }
      case 'session.updated': {
        const sj = data.session;
        if (!sj || !sj.id) return;
        const known = this.sessions.get(sj.id);
        const mine = sj.agent_id === this.me.id;
        if (!known) {
          // Supervisors see every session's updates; only adopt my own.
          if (mine && ['offered', 'active', 'wrapup'].includes(sj.state)) {
            const s = this.upsertSession(sj);
            s.fresh = true;
            this.renderList();
            this.loadMessages(s);
          }
          return;
        }
        if (sj.agent_id && !mine && sj.state !== 'closed') {
          this.removeSession(sj.id);
          return;
        }
        this.upsertSession(sj);
        this.renderList();
        if (sj.id === this.selectedId) this.renderConversation();
        break;
      }
      case 'session.removed': {
        const id = data.session_id;
        const s = this.sessions.get(id);
        if (!s) return;
        if (id === this.selectedId && !this.leaving.has(id)) {
          const why = { transferred: 'was transferred', closed: 'was closed', requeued: 'went back to the queue' }[data.reason] || 'was removed';
          this.toast(`The conversation with ${this.contactName(s)} ${why}.`, 'info');
        }
        this.removeSession(id);
        break;
      }
      case 'message.created':
      case 'message.updated': {
        const m = data.message;
        if (!m) return;
        const s = this.sessions.get(m.session_id);
        if (!s) return;
        const { msg, isNew } = this.mergeMessage(s, m);
        if (!msg) return;
        const inbound = msg.direction === 'in' || msg.sender_kind === 'contact';
        if (isNew && type === 'message.created' && inbound) {
          if (s.id !== this.selectedId || document.visibilityState !== 'visible') s.unread++;
          s.typing = false;
          if (s.id === this.selectedId) this.renderTyping();
          // KB suggestions for it arrive as a kb.suggestions push.
        }
        const own = msg.sender_kind === 'agent' && msg.sender_id === this.me.id;
        this.changed(s, { scroll: isNew && own });
        break;
      }
      case 'kb.suggestions': {
        if (data.session_id && data.session_id === this.selectedId) this.kb.pushed(data);
        else if (data.session_id && this.sessions.has(data.session_id)) this.sessions.get(data.session_id).kbPushed = data;
        break;
      }
      case 'typing': {
        const s = this.sessions.get(data.session_id);
        if (!s) return;
        s.typing = !!data.on;
        clearTimeout(s.typingTimer);
        if (s.typing) {
          s.typingTimer = setTimeout(() => {
            s.typing = false;
            this.renderListItem(s);
            if (s.id === this.selectedId) this.renderTyping();
          }, 6000);
        }
        this.renderListItem(s);
        if (s.id === this.selectedId) this.renderTyping();
        break;
      }
      case 'read': {
        const s = this.sessions.get(data.session_id);
        if (!s || !Number.isFinite(data.seq)) return;
        if (data.seq > s.readSeq) {
          s.readSeq = data.seq;
          if (s.id === this.selectedId) this.renderTranscript({});
        }
        break;
      }
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- session list

  renderList() {
    const list = [...this.sessions.values()].sort((a, b) => {
      const ra = STATE_RANK[a.data.state] ?? 2;
      const rb = STATE_RANK[b.data.state] ?? 2;
      if (ra !== rb) return ra - rb;
      const ta = toDate(a.data.assigned_at || a.data.created_at);
      const tb = toDate(b.data.assigned_at || b.data.created_at);
      return (ta ? ta.getTime() : 0) - (tb ? tb.getTime() : 0);
    });
    const nodes = list.map((s) => this.renderListItem(s));
    syncChildren($('session-list'), nodes);
    $('session-count').textContent = String(list.filter((s) => s.data.state !== 'closed').length);
    $('session-empty').hidden = list.length > 0;
    this.renderUnread();
  }

  renderListItem(s) {
    let li = this.listNodes.get(s.id);
    if (!li) {
      li = h('li', {
        class: 'session-item',
        'data-session-id': s.id,
        'data-testid': 'session-item',
        tabindex: '0',
        role: 'button',
        onclick: () => this.select(s.id),
        onkeydown: (ev) => this.onListKey(ev, s.id),
      });
      this.listNodes.set(s.id, li);
    }
    const state = s.data.state || '';
    li.dataset.state = state;
    li.classList.toggle('selected', s.id === this.selectedId);
    li.classList.toggle('fresh', !!s.fresh);
    li.classList.toggle('closed', state === 'closed');
    li.classList.toggle('has-unread', s.unread > 0);
    li.setAttribute('aria-current', s.id === this.selectedId ? 'true' : 'false');

    const name = this.contactName(s);
    const last = this.lastMessage(s);
    let preview = '';
    if (s.typing) preview = 'typing…';
    else if (last) {
      const who = last.sender_kind === 'agent' ? (last.sender_id === this.me.id ? 'You: ' : 'Agent: ')
        : last.sender_kind === 'bot' ? 'Bot: ' : '';
      preview = who + (messageText(last) || `[${last.type || 'message'}]`);
    } else if (!s.loaded) preview = 'Loading…';
    const when = last ? last.created_at : s.data.last_contact_at || s.data.assigned_at || s.data.created_at;

    fill(li, 
      avatar(name),
      h('div', { class: 'si-main' },
        h('div', { class: 'si-row' },
          h('span', { class: 'si-name', text: name }),
          h('span', { class: 'si-time', text: fmtTime(when), title: fmtFull(when) })),
        h('div', { class: 'si-row' },
          h('span', { class: `si-preview${s.typing ? ' is-typing' : ''}`, text: preview }),
          s.unread > 0 ? h('span', { class: 'unread-badge', 'aria-label': `${s.unread} unread`, text: s.unread > 99 ? '99+' : s.unread }) : null),
        h('div', { class: 'si-tags' },
          h('span', { class: 'channel-tag', 'data-channel': s.data.channel || '', text: channelLabel(s.data.channel) || 'chat' }),
          h('span', { class: 'state-pill', 'data-state': state, text: state }),
          s.data.priority > 0 ? h('span', { class: 'vip-tag', text: 'VIP' }) : null)),
    );
    return li;
  }

  onListKey(ev, id) {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      this.select(id);
    } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      const li = ev.currentTarget;
      const next = ev.key === 'ArrowDown' ? li.nextElementSibling : li.previousElementSibling;
      if (next) next.focus();
    }
  }

  renderUnread() {
    let n = 0;
    for (const s of this.sessions.values()) n += s.unread;
    this.onUnread(n);
  }

  select(id) {
    const s = this.sessions.get(id);
    if (!s) return;
    const prev = this.selected();
    if (prev && prev.id !== id) prev.draft = $('composer-input').value;
    if (prev && prev.id !== id) this.stopTyping();
    const changedSel = this.selectedId !== id;
    this.selectedId = id;
    s.unread = 0;
    s.fresh = false;
    if (changedSel) {
      this.msgNodes.clear();
      clear($('transcript'));
      $('composer-input').value = s.draft || '';
      this.updateCount();
      this.wrapup.builtFor = null;
      $('wrapup-error').textContent = '';
      $('note-input').value = '';
    }
    for (const other of this.sessions.values()) this.renderListItem(other);
    this.renderUnread();
    this.renderConversation({ scroll: true });
    if (!s.loaded) this.loadMessages(s);
    if (s.notes === null) this.loadNotes(s);
    if (changedSel) this.kb.suggest();
    if (s.data.state === 'active' && changedSel) setTimeout(() => $('composer-input').focus(), 0);
  }

  // ---------------------------------------------------------------- conversation

  renderConversation({ scroll = false } = {}) {
    const s = this.selected();
    $('conversation-empty').hidden = !!s;
    $('conversation').hidden = !s;
    $('context-pane').hidden = !s;
    if (!s) return;
    const name = this.contactName(s);
    const state = s.data.state || '';
    $('conv-title').textContent = name;
    const av = $('conv-avatar');
    av.textContent = initials(name);
    av.style.setProperty('--h', String(hueOf(name)));
    this.renderSub(s);

    const active = state === 'active';
    $('accept-btn').hidden = state !== 'offered';
    $('transfer-btn').disabled = !active;
    $('close-btn').disabled = !active;
    $('close-btn').hidden = state === 'wrapup' || state === 'closed';
    $('transfer-btn').hidden = state === 'wrapup' || state === 'closed';
    $('dismiss-btn').hidden = state !== 'closed';

    const composerOn = active;
    $('composer').hidden = !(active || state === 'offered');
    $('composer-input').disabled = !composerOn;
    $('composer-send').disabled = !composerOn;
    $('composer-input').placeholder = state === 'offered'
      ? 'Accept the conversation to reply'
      : `Reply to ${name}…`;
    const locked = $('composer-locked');
    const lockText = state === 'closed' ? 'This conversation is closed.'
      : (state === 'queued' || state === 'bot') ? 'This conversation is not assigned to you.' : '';
    locked.hidden = !lockText;
    locked.textContent = lockText;
    const win = $('window-note');
    const closed = active && windowClosed(s.window);
    win.hidden = !closed;
    win.textContent = closed
      ? `The ${s.window.hours}-hour reply window of this channel has closed: the customer has to write first. Replies now fail, or go by SMS where the account has a fallback.`
      : '';

    this.renderTranscript({ scroll });
    this.renderTyping();
    this.wrapup.render(s);
    this.renderContact(s);
    this.renderPins();
    this.renderNotes();
  }

  renderSub(s) {
    const state = s.data.state || '';
    const sub = $('conv-sub');
    let timer = '';
    if (state === 'active') {
      const t = secondsSince(s.data.assigned_at);
      if (t !== null) timer = `handling ${fmtDuration(t)}`;
    } else if (state === 'wrapup') {
      const t = secondsSince(s.data.wrapup_at);
      if (t !== null) timer = `wrap-up ${fmtDuration(t)}`;
    }
    fill(sub, 
      h('span', { class: 'channel-tag', 'data-channel': s.data.channel || '', text: channelLabel(s.data.channel) || 'chat' }),
      h('span', { class: 'state-pill', 'data-state': state, text: state }),
      s.data.group_id ? h('span', { class: 'muted', text: this.groupName(s.data.group_id) }) : null,
      timer ? h('span', { class: 'muted tnum', text: timer }) : null,
    );
  }

  tick() {
    const s = this.selected();
    if (!s) return;
    this.renderSub(s);
    if (s.data.state === 'wrapup') this.wrapup.renderDeadline(s);
  }

  renderTranscript({ scroll = false } = {}) {
    const s = this.selected();
    const box = $('transcript');
    if (!s) return;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const before = box.childElementCount;
    const nodes = [];
    const list = this.sortedMsgs(s);
    // Only the newest outbound message read by the customer shows "Read".
    let lastRead = null;
    for (const m of list) {
      if (isOutbound(m) && m.seq && s.readSeq >= m.seq) lastRead = m;
    }
    if (!s.loaded && list.length === 0) {
      nodes.push(h('div', { class: 'transcript-note', text: 'Loading conversation…' }));
    }
    for (const m of list) nodes.push(this.msgNode(s, m, m === lastRead));
    syncChildren(box, nodes);
    if (scroll || atBottom) {
      box.scrollTop = box.scrollHeight;
      $('jump-latest').hidden = true;
    } else if (box.childElementCount > before) {
      $('jump-latest').hidden = false;
    }
  }

  msgNode(s, m, isLastRead) {
    const read = isOutbound(m) && m.seq && s.readSeq >= m.seq;
    const sig = [m.id, m.seq, m.status, m.pinned, m._pending, m._failed, read, isLastRead, messageText(m)].join('|');
    let el = this.msgNodes.get(m._key);
    if (el && el._sig === sig) return el;
    const kind = messageKind(m);
    if (!el) {
      el = h('div', { 'data-key': m._key });
      this.msgNodes.set(m._key, el);
    }
    el._sig = sig;
    el.className = `msg msg-${kind}${m.pinned ? ' pinned' : ''}${m._pending ? ' pending' : ''}${m._failed ? ' failed' : ''}`;
    el.dataset.seq = m.seq ? String(m.seq) : '';
    el.dataset.messageId = m.id || '';
    el.dataset.testid = 'msg';
    if (m.client_msg_id) el.dataset.clientMsgId = m.client_msg_id;

    const pin = h('button', {
      class: 'pin-btn',
      type: 'button',
      'data-testid': 'pin-btn',
      title: m.pinned ? 'Unpin' : 'Pin',
      'aria-label': m.pinned ? 'Unpin message' : 'Pin message',
      'aria-pressed': m.pinned ? 'true' : 'false',
      disabled: !m.id,
      onclick: () => this.togglePin(s, m),
    }, m.pinned ? '★' : '☆');

    const time = h('time', { datetime: m.created_at || '', title: fmtFull(m.created_at), text: fmtTime(m.created_at) });
    const body = renderBody(m);

    if (kind === 'system') {
      fill(el, h('div', { class: 'msg-system-line' }, body, time, pin));
      return el;
    }
    let sender;
    if (kind === 'in') sender = this.contactName(s);
    else if (kind === 'bot') sender = 'Bot';
    else sender = m.sender_name || this.agentName(m.sender_id);

    let status = null;
    if (kind === 'out') {
      if (m._failed) {
        status = h('span', { class: 'msg-status status-failed', title: m._failed },
          'Not sent · ',
          h('button', { class: 'link-btn', type: 'button', onclick: () => this.resend(s, m) }, 'Retry'));
      } else if (m._pending) {
        status = h('span', { class: 'msg-status', text: 'Sending…' });
      } else if (m.status === 'failed') {
        status = h('span', { class: 'msg-status status-failed', title: m.error || '', text: 'Failed' });
      } else if (read) {
        status = isLastRead ? h('span', { class: 'msg-status status-read', text: 'Read' }) : null;
      } else if (m.status && STATUS_LABEL[m.status]) {
        status = h('span', { class: 'msg-status', text: STATUS_LABEL[m.status] });
      }
    }
    fill(el, 
      h('div', { class: 'msg-bubble' }, body),
      h('div', { class: 'msg-meta' },
        h('span', { class: 'msg-sender', text: sender }),
        time,
        status,
        pin),
    );
    return el;
  }

  renderTyping() {
    const s = this.selected();
    const el = $('typing-indicator');
    const on = !!(s && s.typing && s.data.state !== 'closed');
    el.hidden = !on;
    if (on) $('typing-text').textContent = `${this.contactName(s)} is typing…`;
  }

  maybeSendRead() {
    const s = this.selected();
    if (!s || document.visibilityState !== 'visible') return;
    const seq = this.lastSeq(s);
    if (seq > s.sentReadSeq && this.rt.send({ type: 'read', session_id: s.id, seq })) s.sentReadSeq = seq;
  }

  // ---------------------------------------------------------------- composer

  async send() {
    const s = this.selected();
    if (!s || s.data.state !== 'active') return;
    const input = $('composer-input');
    const text = input.value.replace(/\s+$/, '').replace(/^\n+/, '');
    if (!text.trim()) return;
    if ([...text].length > MAX_TEXT) {
      this.toast(`A message can have at most ${MAX_TEXT} characters.`);
      return;
    }
    const cid = uid('m-');
    const me = this.me;
    const { msg } = this.mergeMessage(s, {
      session_id: s.id,
      client_msg_id: cid,
      direction: 'out',
      sender_kind: 'agent',
      sender_id: me.id,
      type: 'text',
      body: { text },
      status: 'sending',
      pinned: false,
      created_at: new Date().toISOString(),
    });
    msg._pending = true;
    input.value = '';
    s.draft = '';
    this.updateCount();
    this.stopTyping();
    this.changed(s, { scroll: true });
    await this.post(s, msg);
  }

  async post(s, msg) {
    try {
      const res = await this.api.post(`/sessions/${enc(s.id)}/messages`, { text: messageText(msg), client_msg_id: msg.client_msg_id });
      const m = unwrap(res, 'message');
      if (m && (m.id || m.seq)) this.mergeMessage(s, { ...m, client_msg_id: m.client_msg_id || msg.client_msg_id });
      else msg._pending = false;
    } catch (e) {
      msg._pending = false;
      msg._failed = e.message || 'Not sent';
      msg._retryable = e instanceof ApiError && (e.status === 0 || e.status >= 500 || e.status === 429);
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
    }
    if (this.sessions.has(s.id)) this.changed(s);
  }

  resend(s, msg) {
    msg._failed = null;
    msg._pending = true;
    this.changed(s);
    this.post(s, msg);
  }

  /** After a reconnect, messages that failed on the network go out again (same client_msg_id). */
  retryFailed() {
    for (const s of this.sessions.values()) {
      if (s.data.state !== 'active') continue;
      for (const m of s.msgs) if (m._failed && m._retryable) this.resend(s, m);
    }
  }

  onComposerInput() {
    this.updateCount();
    const s = this.selected();
    if (!s || s.data.state !== 'active') return;
    const now = Date.now();
    const t = this.typing;
    if (!$('composer-input').value) {
      this.stopTyping();
      return;
    }
    if (!t.on || t.sessionId !== s.id || now - t.sentAt > 3000) {
      if (this.rt.send({ type: 'typing', session_id: s.id, on: true })) {
        t.on = true;
        t.sentAt = now;
        t.sessionId = s.id;
      }
    }
    clearTimeout(t.stopTimer);
    t.stopTimer = setTimeout(() => this.stopTyping(), 4000);
  }

  stopTyping() {
    const t = this.typing;
    clearTimeout(t.stopTimer);
    if (t.on && t.sessionId) this.rt.send({ type: 'typing', session_id: t.sessionId, on: false });
    t.on = false;
    t.sessionId = null;
  }

  updateCount() {
    const n = [...$('composer-input').value].length;
    const el = $('composer-count');
    el.textContent = n > MAX_TEXT - 500 ? `${n} / ${MAX_TEXT}` : '';
    el.classList.toggle('over', n > MAX_TEXT);
  }

  // ---------------------------------------------------------------- pins

  async togglePin(s, m) {
    if (!m.id) return;
    const want = !m.pinned;
    m.pinned = want;
    this.changed(s);
    const path = `/sessions/${enc(s.id)}/messages/${enc(m.id)}/pin`;
    try {
      const res = want ? await this.api.post(path, {}) : await this.api.del(path);
      const upd = unwrap(res, 'message');
      if (upd && upd.id === m.id) this.mergeMessage(s, upd);
    } catch (e) {
      m.pinned = !want;
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
    }
    if (this.sessions.has(s.id)) this.changed(s);
  }

  renderPins() {
    const s = this.selected();
    const ul = $('pinned-list');
    if (!s) { clear(ul); return; }
    const pinned = this.sortedMsgs(s).filter((m) => m.pinned);
    clear(ul);
    for (const m of pinned) {
      const kind = messageKind(m);
      const who = kind === 'in' ? this.contactName(s) : kind === 'bot' ? 'Bot' : kind === 'system' ? 'System' : this.agentName(m.sender_id);
      ul.append(h('li', { class: 'pinned-item', 'data-message-id': m.id || '', 'data-seq': m.seq || '' },
        h('button', { class: 'pinned-jump', type: 'button', title: 'Show in conversation', onclick: () => this.jumpTo(m) },
          h('span', { class: 'pinned-who', text: `${who} · ${fmtTime(m.created_at)}` }),
          h('span', { class: 'pinned-text', text: messageText(m) || `[${m.type || 'message'}]` })),
        h('button', { class: 'unpin-btn', type: 'button', title: 'Unpin', 'aria-label': 'Unpin', onclick: () => this.togglePin(s, m) }, '×')));
    }
    $('pinned-empty').hidden = pinned.length > 0;
    const c = $('pinned-count');
    c.hidden = pinned.length === 0;
    c.textContent = String(pinned.length);
  }

  jumpTo(m) {
    const el = this.msgNodes.get(m._key);
    if (!el) return;
    el.scrollIntoView({ block: 'center', behavior: 'smooth' });
    el.classList.remove('flash');
    void el.offsetWidth; // restart the animation
    el.classList.add('flash');
  }

  // ---------------------------------------------------------------- contact panel

  renderContact(s) {
    const dl = clear($('contact-info'));
    const c = s.contact || {};
    const row = (k, v, title) => {
      if (v === undefined || v === null || v === '') return;
      dl.append(h('dt', { text: k }), h('dd', { text: v, title: title || null }));
    };
    row('Name', this.contactName(s));
    if (c.vip_level > 0) row('VIP level', String(c.vip_level));
    row('Channel', channelLabel(s.data.channel));
    row('Contact ID', s.data.contact_id);
    if (s.data.group_id) row('Group', this.groupName(s.data.group_id));
    row('Session', shortId(s.id), s.id);
    row('Started', fmtTime(s.data.created_at), fmtFull(s.data.created_at));
    const q = toDate(s.data.queued_at);
    const a = toDate(s.data.assigned_at);
    if (a) row('Assigned', fmtTime(a), fmtFull(a));
    if (q && a && a >= q) row('Waited', fmtDuration((a - q) / 1000));
    if (Array.isArray(s.data.reason_codes) && s.data.reason_codes.length) row('Reasons', s.data.reason_codes.join(', '));
  }

  // ---------------------------------------------------------------- notes

  async loadNotes(s) {
    if (s.notesLoading) return;
    s.notesLoading = true;
    try {
      const res = await this.api.get(`/sessions/${enc(s.id)}/notes`);
      s.notes = (res && res.notes) || [];
    } catch (e) {
      if (s.notes === null) s.notes = [];
      if (!(e instanceof ApiError && (e.status === 401 || e.status === 404))) this.toast(e.message);
    } finally {
      s.notesLoading = false;
    }
    if (s.id === this.selectedId) this.renderNotes();
  }

  renderNotes() {
    const s = this.selected();
    const ul = clear($('notes-list'));
    if (!s) return;
    if (s.notes === null) {
      ul.append(h('li', { class: 'muted small', text: 'Loading notes…' }));
      return;
    }
    for (const n of s.notes) {
      ul.append(h('li', { class: 'note', 'data-note-id': n.id || '' },
        h('div', { class: 'note-body', text: n.body || '' }),
        h('div', { class: 'note-meta' },
          h('span', { text: this.agentName(n.agent_id) }),
          h('time', { datetime: n.created_at || '', title: fmtFull(n.created_at), text: fmtTime(n.created_at) }))));
    }
  }

  async addNote() {
    const s = this.selected();
    if (!s) return;
    const input = $('note-input');
    const body = input.value.trim();
    if (!body) { input.focus(); return; }
    const btn = $('note-add');
    btn.disabled = true;
    try {
      const res = await this.api.post(`/sessions/${enc(s.id)}/notes`, { body });
      const note = unwrap(res, 'note') || {};
      if (!s.notes) s.notes = [];
      s.notes.push({ agent_id: this.me.id, created_at: new Date().toISOString(), body, ...note });
      if (s.id === this.selectedId) input.value = '';
      if (s.id === this.selectedId) this.renderNotes();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- actions

  async accept() {
    const s = this.selected();
    if (!s) return;
    $('accept-btn').disabled = true;
    try {
      const res = await this.api.post(`/sessions/${enc(s.id)}/accept`, {});
      const sj = unwrap(res, 'session');
      if (sj && sj.id === s.id && sj.state) this.upsertSession(sj);
      this.renderList();
      this.renderConversation();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
    } finally {
      $('accept-btn').disabled = false;
    }
  }

  async closeSession() {
    const s = this.selected();
    if (!s || s.data.state !== 'active') return;
    const btn = $('close-btn');
    btn.disabled = true;
    this.stopTyping();
    try {
      const res = await this.api.post(`/sessions/${enc(s.id)}/close`, {});
      const sj = unwrap(res, 'session');
      if (sj && sj.id === s.id && sj.state) this.upsertSession(sj);
      else if (s.data.state === 'active') s.data = { ...s.data, state: 'wrapup', wrapup_at: new Date().toISOString() };
      this.renderList();
      if (s.id === this.selectedId) this.renderConversation();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
      if (e instanceof ApiError && e.status === 409 && e.details && e.details.state) {
        s.data = { ...s.data, state: e.details.state };
        this.renderList();
        this.renderConversation();
      }
    } finally {
      btn.disabled = s.data.state !== 'active';
    }
  }

  // ---------------------------------------------------------------- transfer

  async loadTargets() {
    const [g, a] = await Promise.allSettled([this.api.get('/groups'), this.api.get('/agents')]);
    if (g.status === 'fulfilled') this.groups = (g.value && g.value.groups) || [];
    if (a.status === 'fulfilled') {
      this.agents = (a.value && a.value.agents) || [];
      this.agentsForbidden = false;
    } else if (a.reason instanceof ApiError && (a.reason.status === 403 || a.reason.status === 404)) {
      this.agents = [];
      this.agentsForbidden = true;
    }
  }

  openTransfer() {
    const s = this.selected();
    if (!s || s.data.state !== 'active') return;
    $('transfer-error').textContent = '';
    this.fillTargets();
    const dlg = $('transfer-dialog');
    if (!dlg.open) dlg.showModal();
    $('transfer-target').focus();
    // Refresh in the background: agents' states change all the time.
    this.loadTargets().then(() => { if (dlg.open) this.fillTargets(); });
  }

  fillTargets() {
    const s = this.selected();
    const sel = $('transfer-target');
    const keep = sel.value;
    clear(sel);
    const groups = this.groups.filter((g) => g && g.id);
    const agents = this.agents.filter((a) => a && a.id && a.id !== this.me.id && a.state === 'ready');
    if (groups.length) {
      sel.append(h('optgroup', { label: 'Skill groups' },
        groups.map((g) => h('option', { value: `group:${g.id}` },
          g.name + (s && s.data.group_id === g.id ? ' (current)' : '')))));
    }
    if (agents.length) {
      sel.append(h('optgroup', { label: 'Agents ready' },
        agents.map((a) => h('option', { value: `agent:${a.id}` }, a.display_name || a.username || a.id))));
    }
    const none = !groups.length && !agents.length;
    if (none) sel.append(h('option', { value: '', disabled: true, selected: true }, 'No transfer targets available'));
    else if (keep && [...sel.options].some((o) => o.value === keep)) sel.value = keep;
    $('transfer-confirm').disabled = none;
    $('transfer-hint').textContent = this.agentsForbidden
      ? 'You can transfer to a skill group; the conversation goes to the head of its queue.'
      : agents.length ? '' : 'No other agent is ready right now; pick a skill group.';
  }

  async confirmTransfer(ev) {
    ev.preventDefault();
    const s = this.selected();
    const value = $('transfer-target').value;
    if (!s || !value) return;
    const [kind, ...rest] = value.split(':');
    const target = rest.join(':');
    const body = kind === 'agent' ? { agent_id: target } : { group_id: target };
    const label = $('transfer-target').selectedOptions[0]?.textContent || target;
    const btn = $('transfer-confirm');
    btn.disabled = true;
    $('transfer-error').textContent = '';
    this.leaving.add(s.id);
    try {
      await this.api.post(`/sessions/${enc(s.id)}/transfer`, body);
      $('transfer-dialog').close();
      this.toast(`Transferred ${this.contactName(s)} to ${label.replace(/ \(current\)$/, '')}.`, 'success');
      this.removeSession(s.id);
    } catch (e) {
      this.leaving.delete(s.id);
      $('transfer-error').textContent = e.message;
      if (!(e instanceof ApiError && e.status === 401)) this.toast(e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- DOM wiring

  bind() {
    const input = $('composer-input');
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.altKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        this.send();
      }
    });
    input.addEventListener('input', () => this.onComposerInput());
    input.addEventListener('blur', () => this.stopTyping());
    $('composer-send').addEventListener('click', () => this.send());

    const box = $('transcript');
    box.addEventListener('scroll', () => {
      if (box.scrollHeight - box.scrollTop - box.clientHeight < 80) $('jump-latest').hidden = true;
    });
    $('jump-latest').addEventListener('click', () => {
      box.scrollTop = box.scrollHeight;
      $('jump-latest').hidden = true;
    });

    $('accept-btn').addEventListener('click', () => this.accept());
    $('close-btn').addEventListener('click', () => this.closeSession());
    $('dismiss-btn').addEventListener('click', () => { if (this.selectedId) this.removeSession(this.selectedId); });

    $('transfer-btn').addEventListener('click', () => this.openTransfer());
    $('transfer-form').addEventListener('submit', (ev) => this.confirmTransfer(ev));
    $('transfer-cancel').addEventListener('click', () => $('transfer-dialog').close());


    $('note-add').addEventListener('click', () => this.addNote());
    $('note-input').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        this.addNote();
      }
    });


    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      const s = this.selected();
      if (s && s.unread) {
        s.unread = 0;
        this.renderListItem(s);
        this.renderUnread();
      }
      this.maybeSendRead();
    });
  }
}

// ---------------------------------------------------------------- helpers

function isOutbound(m) {
  return m.sender_kind === 'agent' || (m.direction === 'out' && m.sender_kind !== 'bot' && m.sender_kind !== 'system');
}

function betterStatus(a, b) {
  if (b === 'failed' || !a) return b || a;
  if (a === 'failed') return b || a;
  return (STATUS_RANK[b] ?? -1) >= (STATUS_RANK[a] ?? -1) ? b : a;
}

function shortId(id) {
  return id && id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

function avatar(name) {
  const el = h('div', { class: 'avatar', 'aria-hidden': 'true', text: initials(name) });
  el.style.setProperty('--h', String(hueOf(name))); // CSSOM, allowed under a strict CSP
  return el;
}

/** Text with clickable http(s) links, built from text nodes only. */
function linkify(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const href = safeUrl(m[0]);
    out.push(href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, m[0]) : m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const BOT_OUTCOME = {
  answer: 'answered', suggest: 'asked "did you mean"', rule: 'keyword rule', choice: 'menu choice',
  miss: 'not understood', handoff: 'handed off',
};

/** What the bot understood, shown under its reply for the agent who takes over. */
function botNote(n) {
  const parts = [BOT_OUTCOME[n.outcome] || n.outcome || 'bot'];
  if (n.question) parts.push(`“${n.question}”`);
  if (n.keyword) parts.push(`keyword “${n.keyword}”`);
  if (typeof n.confidence === 'number' && n.confidence > 0) parts.push(`${Math.round(n.confidence * 100)}%`);
  return h('div', { class: `bot-note bot-${n.outcome || 'none'}`, 'data-testid': 'bot-note', text: parts.join(' · ') });
}

/** Whether a session's customer-service window is known to be closed. */
function windowClosed(w) {
  if (!w) return false;
  if (!w.ends_at) return !w.open;
  return Date.now() >= Date.parse(w.ends_at);
}

function renderBody(m) {
  const text = messageText(m);
  const b = (m.body && typeof m.body === 'object') ? m.body : {};
  if (!m.type || m.type === 'text') {
    const note = b.bot && typeof b.bot === 'object' ? botNote(b.bot) : null;
    const reply = b.reply_to ? h('span', { class: 'msg-type', text: 'reply' }) : null;
    return h('div', { class: 'msg-text' }, reply, reply ? ' ' : null, linkify(text), note);
  }
  if (m.type === 'event') {
    const ev = b.event && typeof b.event === 'object' ? b.event : null;
    if (!ev) return h('div', { class: 'msg-text' }, linkify(text));
    const what = { subscribe: 'Followed the account', scan: 'Scanned a QR code', click: 'Menu', enter_session: 'Opened the chat', location: 'Reported a location' }[ev.kind] || ev.name || ev.kind;
    const detail = ev.scene ? ` (scene ${ev.scene})` : ev.key ? ` ${ev.key}` : '';
    return h('div', { class: 'msg-text' }, `${what}${detail}`, text ? ` · ${text}` : '');
  }
  // Provider messages: {text, media: {url|id, mime_type, filename}, location, choice, reaction, ...}.
  const media = b.media && typeof b.media === 'object' ? b.media : {};
  const loc = b.location && typeof b.location === 'object' ? b.location : b;
  const url = safeUrl(media.url || b.url || b.link || b.media_url);
  const parts = [h('span', { class: 'msg-type', text: m.type })];
  if (m.type === 'location' && (loc.latitude !== undefined || loc.lat !== undefined)) {
    parts.push(` ${loc.name || ''} (${loc.latitude ?? loc.lat}, ${loc.longitude ?? loc.lng ?? loc.lon})`);
  } else if (m.type === 'reaction' && b.reaction && typeof b.reaction === 'object') {
    parts.push(` ${b.reaction.emoji || '(removed)'}`);
  } else if (text) {
    parts.push(' ', ...linkify(text));
  }
  if (media.filename) parts.push(` · ${media.filename}`);
  if (url) parts.push(' ', h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, 'Open'));
  return h('div', { class: 'msg-text' }, parts);
}
