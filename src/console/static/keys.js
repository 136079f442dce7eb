// API keys and grants (SPEC §11): create (the key is shown once), edit grants, rotate, delete.
import { useEffect, useRef, useState } from './vendor/hooks.mjs';
import { api, enc } from './api.js';
import { DASH, fmtTime, html, LiveStatus, Notice, rowsFor } from './ui.js';

const FIELDS = [
  { name: 'name', kind: 'text', hint: 'Letters, digits, “_” and “-”, up to 64.', required: true },
  { name: 'grants', kind: 'json', hint: '"*" for every server, or a JSON list of {"server_label", "allowed_tools"?, "require_approval"?}.', placeholder: '[{"server_label": "crm", "allowed_tools": ["search"]}]', required: true, wide: true },
  { name: 'rate_limit_per_min', kind: 'number', hint: 'Requests per minute; empty for unlimited.', placeholder: 'unlimited' },
  { name: 'max_pending_approvals', kind: 'number', hint: 'Pending approval requests this key may hold; empty for the default.', placeholder: 'default' },
  { name: 'allow_inline_servers', kind: 'checkbox', hint: 'Let this key use servers by URL (behind the egress guard).' },
];
const FIELD_NAMES = new Set(FIELDS.map((f) => f.name));

function grantsText(g) {
  if (g === '*') return 'every server';
  if (!Array.isArray(g) || g.length === 0) return 'no server';
  return g
    .map((x) => {
      const extra = [];
      if (x.allowed_tools != null) extra.push(`tools ${Array.isArray(x.allowed_tools) ? x.allowed_tools.join(', ') : JSON.stringify(x.allowed_tools)}`);
      if (x.require_approval != null) extra.push(`approval ${typeof x.require_approval === 'string' ? x.require_approval : JSON.stringify(x.require_approval)}`);
      return extra.length ? `${x.server_label} (${extra.join('; ')})` : String(x.server_label);
    })
    .join(', ');
}

function toForm(k) {
  return {
    name: k?.name ?? '',
    grants: k ? (k.grants === '*' ? '"*"' : JSON.stringify(k.grants, null, 2)) : '',
    rate_limit_per_min: typeof k?.rate_limit_per_min === 'number' ? String(k.rate_limit_per_min) : '',
    max_pending_approvals: typeof k?.max_pending_approvals === 'number' ? String(k.max_pending_approvals) : '',
    allow_inline_servers: k?.allow_inline_servers === true,
  };
}

function fromForm(v) {
  const body = {};
  const errors = {};
  if (v.name.trim()) body.name = v.name.trim();
  const g = v.grants.trim();
  if (g === '*' || g === '"*"') body.grants = '*';
  else if (g) {
    try {
      body.grants = JSON.parse(g);
    } catch {
      errors.grants = 'grants is not valid JSON (use "*" or a JSON list).';
    }
  }
  for (const n of ['rate_limit_per_min', 'max_pending_approvals']) {
    const t = v[n].trim();
    if (t === '') continue;
    const x = Number(t);
    if (!Number.isInteger(x)) errors[n] = `${n} must be a whole number.`;
    else body[n] = x;
  }
  body.allow_inline_servers = v.allow_inline_servers;
  return { body, errors };
}

function KeyForm({ token, keyView, onSaved, onCancel, onUnauthorized }) {
  const editing = Boolean(keyView);
  const [values, setValues] = useState(() => toForm(keyView));
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const ref = useRef(null);
  useEffect(() => {
    const first = ref.current?.querySelector('[aria-invalid="true"]') ?? (attempt === 0 ? ref.current?.querySelector('input:not([disabled]), textarea') : null);
    first?.focus();
  }, [attempt]);

  const submit = async (ev) => {
    ev.preventDefault();
    setAttempt((n) => n + 1);
    const { body, errors: local } = fromForm(values);
    if (Object.keys(local).length) {
      setErrors(local);
      setFormError('The key was not saved: correct the marked fields.');
      return;
    }
    setBusy(true);
    setErrors({});
    setFormError(null);
    try {
      const r = editing ? await api(token, 'PUT', `/admin/keys/${enc(keyView.name)}`, body) : await api(token, 'POST', '/admin/keys', body);
      onSaved(r, !editing);
    } catch (e) {
      if (e.status === 401) return onUnauthorized();
      const top = e.param ? e.param.split(/[.[]/)[0] : null;
      if (top && FIELD_NAMES.has(top)) {
        setErrors({ [top]: e.message });
        setFormError(`The key was not saved: see ${top}.`);
      } else setFormError(e.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="card form-card" aria-labelledby="key-form-title">
    <h2 id="key-form-title">${editing ? `Edit key ${keyView.name}` : 'New key'}</h2>
    <form ref=${ref} onSubmit=${submit} novalidate>
      ${formError ? html`<p class="notice notice-error" role="alert">${formError}</p>` : null}
      <div class="form-grid">
        ${FIELDS.map((f) => {
          const id = `k-${f.name}`;
          const err = errors[f.name];
          const desc = [err ? `${id}-error` : null, `${id}-hint`].filter(Boolean).join(' ');
          const common = { id, name: f.name, 'aria-invalid': err ? 'true' : undefined, 'aria-describedby': desc, 'aria-required': f.required ? 'true' : undefined };
          const on = (e) => {
            const x = f.kind === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value;
            setValues((v) => ({ ...v, [f.name]: x }));
          };
          const control =
            f.kind === 'checkbox'
              ? html`<input type="checkbox" ...${common} checked=${values[f.name]} onChange=${on} />`
              : f.kind === 'json'
                ? html`<textarea ...${common} rows=${rowsFor(values[f.name])} spellcheck="false" placeholder=${f.placeholder} value=${values[f.name]} onInput=${on}></textarea>`
                : html`<input type="text" ...${common} inputmode=${f.kind === 'number' ? 'numeric' : undefined} autocomplete="off" spellcheck="false"
                    placeholder=${f.placeholder} value=${values[f.name]} onInput=${on} disabled=${editing && f.name === 'name'} />`;
          const label = f.kind === 'checkbox' ? html`<label for=${id}>${f.name}</label>` : html`<div class="label-row"><label for=${id}>${f.name}</label>${f.required ? html`<span class="req" aria-hidden="true">*</span>` : null}</div>`;
          return html`<div key=${f.name} class=${`field field-${f.kind}${f.wide ? ' field-wide' : ''}${err ? ' has-error' : ''}`}>
            ${f.kind === 'checkbox' ? html`<div class="check">${control}${label}</div>` : html`${label}${control}`}
            ${err ? html`<p id=${`${id}-error`} class="field-error">${err}</p>` : null}
            <p id=${`${id}-hint`} class="hint">${f.hint}</p>
          </div>`;
        })}
      </div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy}>Save key</button>
        <button type="button" class="ghost" onClick=${onCancel}>Cancel</button>
      </div>
    </form>
  </section>`;
}

function ShownOnce({ secret, onDone }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret.key);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return html`<section class="card shown-once" aria-labelledby="shown-once-title">
    <h2 id="shown-once-title">${secret.rotated ? 'New key for' : 'Key for'} <span class="mono">${secret.name}</span></h2>
    <p>Copy it now: the broker keeps only its hash and will not show it again.${secret.rotated && secret.grace ? ` The old key keeps working for ${secret.grace} s.` : ''}</p>
    <p class="secret"><code>${secret.key}</code></p>
    <div class="form-actions">
      <button type="button" class="primary" onClick=${copy}>${copied ? 'Copied' : 'Copy key'}</button>
      <button type="button" class="ghost" onClick=${onDone}>Done</button>
    </div>
  </section>`;
}

export function KeysView({ token, onUnauthorized }) {
  const [keys, setKeys] = useState(null);
  const [missing, setMissing] = useState(false);
  const [notice, setNotice] = useState(null);
  const [form, setForm] = useState(null);
  const [secret, setSecret] = useState(null);
  const [grace, setGrace] = useState('0');
  const [busy, setBusy] = useState({});
  const [live, setLive] = useState('');

  const fail = (e) => {
    if (e.status === 401) onUnauthorized();
    else setNotice({ kind: 'error', text: e.message });
  };
  const load = async () => {
    try {
      const r = await api(token, 'GET', '/admin/keys');
      setKeys(Array.isArray(r?.data) ? r.data : []);
      setMissing(false);
    } catch (e) {
      if (e.status === 404) setMissing(true);
      else fail(e);
    }
  };
  useEffect(() => {
    load();
  }, [token]);

  const act = async (name, fn) => {
    setBusy((b) => ({ ...b, [name]: true }));
    setNotice(null);
    try {
      await fn();
    } catch (e) {
      fail(e);
    } finally {
      setBusy((b) => {
        const n = { ...b };
        delete n[name];
        return n;
      });
    }
  };
  const rotate = (name) =>
    act(name, async () => {
      const g = Number(grace.trim() || '0');
      if (!Number.isInteger(g) || g < 0) throw new Error('grace_s must be a whole number of seconds.');
      const r = await api(token, 'POST', `/admin/keys/${enc(name)}/rotate`, g ? { grace_s: g } : {});
      setSecret({ name, key: String(r?.key ?? ''), rotated: true, grace: g });
      setLive(`Rotated ${name}`);
      await load();
    });
  const remove = (name) =>
    act(name, async () => {
      await api(token, 'DELETE', `/admin/keys/${enc(name)}`);
      setKeys((k) => (k ?? []).filter((x) => x.name !== name));
      setNotice({ kind: 'info', text: `Deleted key ${name}; it stopped working at once.` });
      setLive(`Deleted ${name}`);
    });
  const saved = async (r, created) => {
    setForm(null);
    if (created && typeof r?.key === 'string') setSecret({ name: r.name, key: r.key, rotated: false });
    else setNotice({ kind: 'info', text: `Saved key ${r?.name ?? ''}.` });
    await load();
  };

  return html`<section aria-labelledby="keys-title">
    <div class="view-head">
      <h1 id="keys-title">Keys</h1>
      <div class="view-actions">
        <button type="button" class="ghost" onClick=${load}>Reload list</button>
        ${form || missing ? null : html`<button type="button" class="primary" onClick=${() => (setSecret(null), setForm({ key: null }))}>Create key</button>`}
      </div>
    </div>
    <${Notice} notice=${notice} onClose=${() => setNotice(null)} />
    <${LiveStatus} text=${live} />
    ${secret ? html`<${ShownOnce} secret=${secret} onDone=${() => setSecret(null)} />` : null}
    ${form ? html`<${KeyForm} key=${form.key?.name ?? '+new'} token=${token} keyView=${form.key} onSaved=${saved} onCancel=${() => setForm(null)} onUnauthorized=${onUnauthorized} />` : null}
    ${missing
      ? html`<p class="empty card">This broker has no named keys API (SPEC §11); only BROKER_API_KEYS are in use.</p>`
      : keys === null
        ? html`<p class="muted">Loading keys…</p>`
        : keys.length === 0
          ? html`<p class="empty card">No named keys yet. Keys from BROKER_API_KEYS are not listed here.</p>`
          : html`<div class="grace field"><label for="grace_s">grace_s</label>
                <input id="grace_s" type="text" inputmode="numeric" value=${grace} onInput=${(e) => setGrace(e.currentTarget.value)} aria-describedby="grace_s-hint" />
                <p id="grace_s-hint" class="hint">Seconds the old key keeps working after “Rotate”.</p></div>
              <div class="table-wrap"><table class="keys">
              <caption class="visually-hidden">Named API keys</caption>
              <thead><tr><th scope="col">Name</th><th scope="col">Grants</th><th scope="col">Inline servers</th><th scope="col">Rate limit</th>
                <th scope="col">Max pending</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
              <tbody>
                ${keys.map((k) => html`<tr key=${k.name}>
                  <th scope="row" data-label="Name"><span class="mono">${k.name}</span></th>
                  <td data-label="Grants">${grantsText(k.grants)}</td>
                  <td data-label="Inline">${k.allow_inline_servers ? 'allowed' : 'no'}</td>
                  <td data-label="Rate limit">${k.rate_limit_per_min == null ? 'unlimited' : `${k.rate_limit_per_min}/min`}</td>
                  <td data-label="Max pending">${k.max_pending_approvals == null ? 'default' : String(k.max_pending_approvals)}</td>
                  <td data-label="Created">${typeof k.created_at === 'number' ? fmtTime(k.created_at) : DASH}</td>
                  <td data-label="Actions" class="actions">
                    <button type="button" aria-label=${`Edit ${k.name}`} onClick=${() => (setSecret(null), setForm({ key: k }))}>Edit</button>
                    <button type="button" aria-label=${`Rotate ${k.name}`} disabled=${Boolean(busy[k.name])} onClick=${() => rotate(k.name)}>Rotate</button>
                    <button type="button" class="danger" aria-label=${`Delete ${k.name}`} disabled=${Boolean(busy[k.name])} onClick=${() => remove(k.name)}>Delete</button>
                  </td>
                </tr>`)}
              </tbody>
            </table></div>`}
  </section>`;
}
