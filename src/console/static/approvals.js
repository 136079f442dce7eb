// Pending approvals (SPEC §4), for the approver token: polled, so new requests appear
// without a reload; Approve / Deny with an optional reason.
import { useEffect, useState } from './vendor/hooks.mjs';
import { api, enc } from './api.js';
import { fmtRelative, fmtTime, html, LiveStatus, Notice, prettyJson, usePoll } from './ui.js';

const POLL_MS = 1500;

function useNow(ms) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

function Approval({ a, now, busy, reason, onReason, onDecide }) {
  const base = `apr-${a.id}`;
  const expired = typeof a.expires_at === 'number' && a.expires_at * 1000 <= now;
  return html`<li class="approval card" aria-labelledby=${`${base}-title`}>
    <div class="approval-head">
      <h3 id=${`${base}-title`}><span class="mono">${a.name}</span> <span class="muted">on</span> <span class="mono">${a.server_label}</span></h3>
      <span class=${`expiry${expired ? ' expired' : ''}`} title=${fmtTime(a.expires_at)}>
        ${expired ? 'expired' : `expires ${fmtRelative(a.expires_at, now)}`}
      </span>
    </div>
    <dl class="facts" id=${`${base}-facts`}>
      <div><dt>Server</dt><dd class="mono">${a.server_label}</dd></div>
      <div><dt>Tool</dt><dd class="mono">${a.name}</dd></div>
      <div><dt>Requested</dt><dd>${fmtTime(a.created_at)}</dd></div>
      <div><dt>Expires</dt><dd>${fmtTime(a.expires_at)}</dd></div>
      <div><dt>Request</dt><dd class="mono small">${a.id}</dd></div>
    </dl>
    <p class="args-label" id=${`${base}-args-label`}>Arguments</p>
    <pre class="args" aria-labelledby=${`${base}-args-label`} tabindex="0">${prettyJson(a.arguments)}</pre>
    <div class="decide">
      <div class="field">
        <label for=${`${base}-reason`}>Reason <span class="muted">(optional)</span></label>
        <input id=${`${base}-reason`} type="text" maxlength="4096" autocomplete="off" value=${reason ?? ''}
          onInput=${(e) => onReason(e.currentTarget.value)} />
      </div>
      <div class="decide-buttons">
        <button type="button" class="primary" aria-describedby=${`${base}-title`} disabled=${busy} onClick=${() => onDecide(true)}>Approve</button>
        <button type="button" class="danger" aria-describedby=${`${base}-title`} disabled=${busy} onClick=${() => onDecide(false)}>Deny</button>
      </div>
    </div>
  </li>`;
}

export function ApprovalsView({ token, onUnauthorized }) {
  const [items, setItems] = useState(null);
  const [notice, setNotice] = useState(null);
  const [reasons, setReasons] = useState({});
  const [busy, setBusy] = useState({});
  const [live, setLive] = useState('');
  const [lastOk, setLastOk] = useState(null);
  const [more, setMore] = useState(false);
  const now = useNow(1000);

  const load = async () => {
    try {
      const r = await api(token, 'GET', '/v1/mcp/approvals?status=pending&limit=100');
      const data = (Array.isArray(r?.data) ? r.data : []).filter((a) => a.status === 'pending' || a.status === undefined);
      data.sort((x, y) => (x.created_at ?? 0) - (y.created_at ?? 0));
      setItems((old) => {
        const added = data.filter((a) => !(old ?? []).some((o) => o.id === a.id)).length;
        if (old && added) setLive(`${added} new approval request${added === 1 ? '' : 's'}`);
        return data;
      });
      setMore(r?.has_more === true);
      setLastOk(Date.now());
      setNotice((n) => (n?.stale ? null : n));
    } catch (e) {
      if (e.status === 401) return onUnauthorized();
      setNotice({ kind: 'error', text: `Could not update the list: ${e.message}`, stale: true });
    }
  };
  usePoll(load, POLL_MS, [token]);

  const decide = async (a, approve) => {
    setBusy((b) => ({ ...b, [a.id]: true }));
    setNotice(null);
    const reason = (reasons[a.id] ?? '').trim();
    try {
      await api(token, 'POST', `/v1/mcp/approvals/${enc(a.id)}/decision`, reason ? { approve, reason } : { approve });
      setItems((list) => (list ?? []).filter((x) => x.id !== a.id));
      const text = `${approve ? 'Approved' : 'Denied'} ${a.name} on ${a.server_label}.`;
      setNotice({ kind: 'info', text });
      setLive(text);
    } catch (e) {
      if (e.status === 401) return onUnauthorized();
      setNotice({ kind: 'error', text: e.message });
      if (e.status === 409 || e.status === 410 || e.status === 404) await load();
    } finally {
      setBusy((b) => {
        const n = { ...b };
        delete n[a.id];
        return n;
      });
    }
  };

  return html`<section aria-labelledby="approvals-title">
    <div class="view-head">
      <h1 id="approvals-title">Approvals</h1>
      <p class="muted small">${lastOk ? `Updated live · last checked ${new Date(lastOk).toLocaleTimeString()}` : 'Connecting…'}</p>
    </div>
    <${Notice} notice=${notice} onClose=${() => setNotice(null)} />
    <${LiveStatus} text=${live} />
    <section class="pending" aria-labelledby="pending-title">
      <h2><span id="pending-title">Pending approvals</span>${items?.length ? html` <span class="count">${items.length}</span>` : null}</h2>
      ${items === null
        ? html`<p class="muted">Loading…</p>`
        : items.length === 0
          ? html`<p class="empty card">Nothing is waiting for a decision. New requests appear here by themselves.</p>`
          : html`<ul class="approvals">
              ${items.map((a) => html`<${Approval} key=${a.id} a=${a} now=${now} busy=${Boolean(busy[a.id])} reason=${reasons[a.id]}
                onReason=${(v) => setReasons((r) => ({ ...r, [a.id]: v }))} onDecide=${(ok) => decide(a, ok)} />`)}
            </ul>`}
      ${more ? html`<p class="muted small">More requests are pending than shown here; they appear as these are decided.</p>` : null}
    </section>
  </section>`;
}
