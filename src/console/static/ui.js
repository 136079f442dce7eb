// Shared bits: the `html` tag (htm bound to preact) and small text formatters.
// Everything from servers and callers is passed as children or attribute values, so
// preact renders it as text; nothing here ever sets innerHTML.
import { h } from './vendor/preact.mjs';
import { useEffect, useRef } from './vendor/hooks.mjs';
import htm from './vendor/htm.mjs';

export const html = htm.bind(h);

export const DASH = '—';

/** Shows a value as text, or a dash when the status does not carry it. */
export function show(v) {
  if (v === undefined || v === null || v === '') return DASH;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return String(url ?? DASH);
  }
}

/** Only http(s) links are ever made clickable (no `javascript:` from a server). */
export function safeHttpUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

export function fmtTime(epochS) {
  if (typeof epochS !== 'number') return DASH;
  return new Date(epochS * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** The time only when it is today, the date and time otherwise. */
export function fmtShort(epochS) {
  if (typeof epochS !== 'number') return DASH;
  const d = new Date(epochS * 1000);
  const today = d.toDateString() === new Date().toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
}

export function fmtRelative(epochS, now = Date.now()) {
  if (typeof epochS !== 'number') return DASH;
  const s = Math.round(epochS - now / 1000);
  const a = Math.abs(s);
  const t = a < 60 ? `${a} s` : a < 3600 ? `${Math.floor(a / 60)} min ${a % 60} s` : `${Math.floor(a / 3600)} h ${Math.floor((a % 3600) / 60)} min`;
  return s >= 0 ? `in ${t}` : `${t} ago`;
}

/** JSON text pretty-printed when it parses, as given otherwise. */
export function prettyJson(v) {
  if (typeof v === 'string') {
    try {
      return JSON.stringify(JSON.parse(v), null, 2);
    } catch {
      return v;
    }
  }
  return JSON.stringify(v, null, 2);
}

/** A message line: kind `error` is announced at once, `info` politely. */
export function Notice({ notice, onClose }) {
  if (!notice) return null;
  const error = notice.kind === 'error';
  return html`<div class=${`notice ${error ? 'notice-error' : 'notice-info'}`} role=${error ? 'alert' : 'status'}>
    <span class="notice-text">${notice.text}</span>
    ${onClose ? html`<button type="button" class="link-button" onClick=${onClose}>Dismiss</button>` : null}
  </div>`;
}

/** A polite live region that is always in the page, so screen readers hear updates. */
export function LiveStatus({ text }) {
  return html`<p class="visually-hidden" role="status" aria-live="polite">${text ?? ''}</p>`;
}

/** Calls `fn` every `ms` while mounted (the next call starts after the previous one ends). */
export function usePoll(fn, ms, deps) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        // A background tab does not poll; it catches up when shown again.
        if (!document.hidden) await saved.current();
      } finally {
        if (!stopped) timer = setTimeout(tick, ms);
      }
    };
    const onShow = () => {
      if (!document.hidden) {
        clearTimeout(timer);
        tick();
      }
    };
    tick();
    document.addEventListener('visibilitychange', onShow);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onShow);
    };
  }, deps);
}

export function Badge({ tone, children }) {
  return html`<span class=${`badge badge-${tone ?? 'plain'}`}>${children}</span>`;
}

/** Rows for a JSON textarea: its lines, between 3 and 14. */
export function rowsFor(text) {
  const n = String(text ?? '').split('\n').length;
  return Math.max(3, Math.min(14, n));
}
