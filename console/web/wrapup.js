// Wrap-up: the contact-reason tree (GET /api/v1/reason-tree) as nested
// checkboxes where only leaves can be chosen, and
// POST /api/v1/sessions/{id}/wrapup {"reason_codes": [...]}.

import { ApiError } from './api.js';
import { $, h, clear, fill, fmtDuration, toDate } from './util.js';

const enc = encodeURIComponent;

export class Wrapup {
  /** ws is the Workspace: the selected session, the API, toasts. */
  constructor(ws) {
    this.ws = ws;
    this.tree = null; // {version, mandatory, nodes}
    this.promise = null;
    this.builtFor = null; // the session the checkboxes were built for
    $('wrapup-submit').addEventListener('click', () => this.submit());
    $('wrapup-filter').addEventListener('input', () => this.filter());
  }

  reset() {
    this.tree = null;
    this.promise = null;
    this.builtFor = null;
  }

  load(force = false) {
    if (this.promise && !force) return this.promise;
    this.promise = this.ws.api.get('/reason-tree').then((res) => {
      const tree = {
        version: res && res.version,
        mandatory: !!(res && res.mandatory),
        nodes: (res && (res.nodes || (res.tree && res.tree.nodes) || res.tree)) || [],
      };
      if (!Array.isArray(tree.nodes)) tree.nodes = [];
      const changed = !this.tree || this.tree.version !== tree.version
        || JSON.stringify(this.tree.nodes) !== JSON.stringify(tree.nodes);
      this.tree = tree;
      if (changed) this.builtFor = null;
      const s = this.ws.selected();
      if (s && s.data.state === 'wrapup') this.render(s);
      return tree;
    }).catch((e) => {
      this.promise = null;
      const s = this.ws.selected();
      if (s && s.data.state === 'wrapup' && !(e instanceof ApiError && e.status === 401)) {
        $('wrapup-error').textContent = `Could not load contact reasons: ${e.message}`;
      }
      return null;
    });
    return this.promise;
  }

  render(s) {
    const panel = $('wrapup-panel');
    const show = s.data.state === 'wrapup';
    panel.hidden = !show;
    if (!show) return;
    this.renderDeadline(s);
    const tree = this.tree;
    const box = $('reason-tree');
    if (!tree) {
      fill(box, h('p', { class: 'muted small', text: 'Loading contact reasons…' }));
      this.load();
      return;
    }
    $('wrapup-hint').textContent = tree.mandatory
      ? 'Choose at least one contact reason to finish this conversation.'
      : 'Choose the contact reasons that fit (optional), then submit.';
    if (this.builtFor === s.id) return;
    this.builtFor = s.id;
    // Refresh the tree when a wrap-up starts: an admin may have edited it.
    this.load(true);
    clear(box);
    $('wrapup-filter').value = '';
    if (!tree.nodes.length) {
      box.append(h('p', { class: 'muted small', text: 'No contact reasons are configured.' }));
    } else {
      box.append(this.list(tree.nodes, 0));
    }
    this.updateCount();
  }

  list(nodes, depth) {
    return h('ul', { class: `reason-list depth-${Math.min(depth, 4)}` }, nodes.map((n) => {
      const kids = Array.isArray(n.children) ? n.children : [];
      const label = n.label || n.name || n.code;
      if (!kids.length) {
        return h('li', { class: 'reason-leaf-item', 'data-filter': `${label} ${n.code}`.toLowerCase() },
          h('label', { class: 'reason-option' },
            h('input', { type: 'checkbox', class: 'reason-leaf', value: n.code, 'data-testid': 'reason-leaf', onchange: () => this.updateCount() }),
            h('span', { class: 'reason-label', text: label }),
            h('span', { class: 'reason-code', text: n.code })));
      }
      return h('li', { class: 'reason-branch' },
        h('div', { class: 'reason-branch-label', text: label }),
        this.list(kids, depth + 1));
    }));
  }

  filter() {
    const q = $('wrapup-filter').value.trim().toLowerCase();
    const box = $('reason-tree');
    for (const li of box.querySelectorAll('.reason-leaf-item')) {
      li.hidden = !!q && !li.dataset.filter.includes(q) && !li.querySelector('input').checked;
    }
    // A branch hides when none of its leaves shows; deepest first.
    const branches = [...box.querySelectorAll('.reason-branch')].reverse();
    for (const b of branches) {
      b.hidden = !!q && !b.querySelector('.reason-leaf-item:not([hidden])');
    }
  }

  updateCount() {
    const n = $('reason-tree').querySelectorAll('input.reason-leaf:checked').length;
    $('wrapup-selected').textContent = n ? `${n} selected` : '';
    if (n) $('wrapup-error').textContent = '';
  }

  renderDeadline(s) {
    const el = $('wrapup-deadline');
    const d = toDate(s.data.deadline_at);
    if (!d) { el.textContent = ''; return; }
    const left = (d.getTime() - Date.now()) / 1000;
    el.textContent = left > 0 ? `closes automatically in ${fmtDuration(left)}` : 'closing…';
    el.classList.toggle('urgent', left < 30);
  }

  async submit() {
    const s = this.ws.selected();
    if (!s || s.data.state !== 'wrapup') return;
    const err = $('wrapup-error');
    const codes = [...$('reason-tree').querySelectorAll('input.reason-leaf:checked')].map((i) => i.value);
    if (this.tree && this.tree.mandatory && this.tree.nodes.length && !codes.length) {
      err.textContent = 'Contact reasons are mandatory: choose at least one.';
      return;
    }
    err.textContent = '';
    const btn = $('wrapup-submit');
    btn.disabled = true;
    this.ws.leaving.add(s.id);
    try {
      await this.ws.api.post(`/sessions/${enc(s.id)}/wrapup`, { reason_codes: codes });
      this.ws.toast(`Wrap-up saved for ${this.ws.contactName(s)}.`, 'success');
      this.ws.removeSession(s.id);
    } catch (e) {
      this.ws.leaving.delete(s.id);
      err.textContent = e.message;
      if (!(e instanceof ApiError && e.status === 401)) this.ws.toast(e.message);
      if (e instanceof ApiError && e.status === 409 && e.details && e.details.state === 'closed') {
        s.data = { ...s.data, state: 'closed' };
        this.ws.renderList();
        this.ws.renderConversation();
      }
    } finally {
      btn.disabled = false;
    }
  }
}
