// Small DOM and formatting helpers shared by the console modules.
//
// Everything user-supplied reaches the page through text nodes or attribute
// values set with setAttribute; nothing here ever assigns innerHTML.

/**
 * Build an element. props: `class`, `text`, `on<event>` handlers, boolean
 * attributes (true → present, false/null/undefined → absent), the DOM
 * properties `value`, `checked`, `disabled`, `selected`, and any other
 * attribute (`data-*`, `title`, `aria-*`, ...). Children may be nodes,
 * strings, numbers, arrays or null.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Remove every child of el. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace el's children with the given ones (same rules as h). */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** Shorthand for document.getElementById. */
export const $ = (id) => document.getElementById(id);

/**
 * Make parent's children exactly `nodes`, in order, moving only what is out
 * of place, so scroll position, focus and running animations survive.
 */
export function syncChildren(parent, nodes) {
  let cur = parent.firstChild;
  for (const n of nodes) {
    if (n === cur) {
      cur = cur.nextSibling;
    } else {
      parent.insertBefore(n, cur);
    }
  }
  while (cur) {
    const next = cur.nextSibling;
    parent.removeChild(cur);
    cur = next;
  }
}

/**
 * A random id usable as a client message id. crypto.randomUUID only exists
 * in secure contexts; getRandomValues works on plain http too.
 */
export function uid(prefix = '') {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return prefix + s;
}

export function debounce(fn, ms) {
  let t = null;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => { t = null; fn(...args); }, ms);
  };
  d.cancel = () => { clearTimeout(t); t = null; };
  return d;
}

/** Parse an ISO time; null for anything unusable. */
export function toDate(v) {
  if (!v) return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) || d.getFullYear() < 1971 ? null : d;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** "14:05" today, "Nov 20, 14:05" otherwise. */
export function fmtTime(v) {
  const d = toDate(v);
  if (!d) return '';
  const now = new Date();
  return d.toDateString() === now.toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
}

/** Full date and time, for tooltips. */
export function fmtFull(v) {
  const d = toDate(v);
  return d ? fullFmt.format(d) : '';
}

/** Seconds as "0:42", "12:05" or "1:02:03". */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || !Number.isFinite(sec)) return '—';
  sec = Math.max(0, Math.floor(sec));
  const hh = Math.floor(sec / 3600);
  const mm = Math.floor((sec % 3600) / 60);
  const ss = sec % 60;
  const p = (n) => String(n).padStart(2, '0');
  return hh > 0 ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}

/** Seconds elapsed since an ISO time, or null. */
export function secondsSince(v) {
  const d = toDate(v);
  return d ? (Date.now() - d.getTime()) / 1000 : null;
}

const CHANNELS = {
  webchat: 'Web chat',
  appim: 'In-app',
  whatsapp: 'WhatsApp',
  wechat: 'WeChat',
  wechat_oa: 'WeChat',
  wecomkf: 'WeCom',
  wecom_kf: 'WeCom',
  sms: 'SMS',
};

/** Human name of a channel type. */
export function channelLabel(c) {
  if (!c) return '';
  return CHANNELS[c] || c.charAt(0).toUpperCase() + c.slice(1);
}

/** A stable hue for an avatar, from any string. */
export function hueOf(s) {
  let x = 0;
  for (const ch of String(s || '')) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 360;
}

/** One or two initials for an avatar. */
export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  const first = [...parts[0]][0] || '?';
  const second = parts.length > 1 ? [...parts[parts.length - 1]][0] : '';
  return (first + (second || '')).toUpperCase();
}

/** The text of a message body, whatever its type. */
export function messageText(m) {
  const b = m && m.body;
  if (b === null || b === undefined) return '';
  if (typeof b === 'string') return b;
  if (typeof b.text === 'string') return b.text;
  if (typeof b.caption === 'string') return b.caption;
  if (typeof b.name === 'string') return b.name;
  if (typeof b.title === 'string') return b.title;
  return '';
}

/** Who a console message is from, as a CSS suffix: in | out | bot | system. */
export function messageKind(m) {
  if (m.sender_kind === 'system' || m.type === 'event') return 'system';
  if (m.sender_kind === 'bot') return 'bot';
  if (m.direction === 'in' || m.sender_kind === 'contact') return 'in';
  return 'out';
}

/** Only http(s) links are ever rendered as hrefs. */
export function safeUrl(u) {
  if (typeof u !== 'string') return null;
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}
