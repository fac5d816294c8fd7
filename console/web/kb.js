// Knowledge-base assist: the panel appears only when the server has
// GET /api/v1/kb/search; it searches the customer's latest message by itself
// and lets the agent search by hand and insert an answer into the reply.

import { ApiError } from './api.js';
import { $, h, clear, fill, debounce, messageKind, messageText } from './util.js';

const enc = encodeURIComponent;

export class KnowledgePanel {
  constructor(ws) {
    this.ws = ws;
    this.available = null;
    this.autoQuery = '';
    const search = debounce(() => this.search($('kb-query').value), 350);
    $('kb-query').addEventListener('input', search);
  }

  reset() {
    this.available = null;
    this.autoQuery = '';
    clear($('kb-results'));
    $('kb-query').value = '';
  }

  /** The KB panel only appears when the server has a search endpoint. */
  async probe() {
    try {
      await this.ws.api.get('/kb/search?q=help&limit=1');
      this.available = true;
    } catch (e) {
      this.available = e instanceof ApiError && e.status === 400;
    }
    $('kb-panel').hidden = !this.available;
    if (this.available) this.suggest();
  }

  /** Suggestions the server pushed for a customer message (agent assist). */
  pushed(data) {
    if (!this.available) return;
    const input = $('kb-query');
    if (document.activeElement === input) return; // the agent is searching by hand
    const s = this.ws.selected();
    if (s) s.kbPushed = null;
    this.autoQuery = data.query || '';
    input.value = this.autoQuery.slice(0, 200);
    this.render(data.suggestions || []);
  }

  suggest() {
    if (!this.available) return;
    const s = this.ws.selected();
    if (!s) return;
    if (s.kbPushed) { this.pushed(s.kbPushed); return; }
    const lastIn = [...this.ws.sortedMsgs(s)].reverse().find((m) => messageKind(m) === 'in' && messageText(m));
    const q = lastIn ? messageText(lastIn).slice(0, 200) : '';
    if (!q || q === this.autoQuery) return;
    const input = $('kb-query');
    if (document.activeElement === input) return; // the agent is searching by hand
    this.autoQuery = q;
    input.value = q;
    this.search(q);
  }

  async search(q) {
    const ul = $('kb-results');
    q = q.trim();
    if (!q) { clear(ul); return; }
    let res;
    try {
      res = await this.ws.api.get(`/kb/search?q=${enc(q)}&limit=5`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) fill(ul, h('li', { class: 'muted small', text: e.message }));
      return;
    }
    if ($('kb-query').value.trim() !== q) return; // a newer search is running
    this.render((res && res.results) || []);
  }

  render(items) {
    const ul = $('kb-results');
    clear(ul);
    if (!items.length) {
      ul.append(h('li', { class: 'muted small', text: 'No matching answers.' }));
      return;
    }
    for (const it of items) {
      const question = it.question || '';
      const answer = (it.answer && it.answer.text) || '';
      ul.append(h('li', { class: 'kb-item', 'data-testid': 'kb-item' },
        h('div', { class: 'kb-q', text: question }),
        h('div', { class: 'kb-a', text: answer }),
        h('div', { class: 'row-end' },
          typeof it.score === 'number' ? h('span', { class: 'muted small mono', text: `${Math.round(it.score * 100)}%` }) : null,
          h('button', { class: 'btn btn-sm', type: 'button', disabled: !answer, onclick: () => this.insert(answer) }, 'Insert'))));
    }
  }

  insert(text) {
    const s = this.ws.selected();
    const input = $('composer-input');
    if (!s || input.disabled) return;
    input.value = input.value.trim() ? `${input.value.replace(/\s+$/, '')}\n${text}` : text;
    this.ws.updateCount();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
}
