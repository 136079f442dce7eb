// Servers (SPEC §2 records and their status), the add/edit form, and a server's tools.
import { useEffect, useRef, useState } from './vendor/hooks.mjs';
import { api, enc } from './api.js';
import { Badge, DASH, fmtShort, fmtTime, html, rowsFor, LiveStatus, Notice, originOf, prettyJson, safeHttpUrl, show, usePoll } from './ui.js';

const REDACTED = '<redacted>';
/** How often, and how long, the table watches a server being authorized in another page. */
const CONNECT_POLL_MS = 2000;
const CONNECT_WATCH_MS = 10 * 60 * 1000;

/** Turns failures into a notice, and a refused token into a sign-out of that role. */
function useRunner(onUnauthorized, setNotice) {
  return async (fn) => {
    try {
      return await fn();
    } catch (e) {
      if (e.status === 401) onUnauthorized();
      else setNotice({ kind: 'error', text: e.message });
      return undefined;
    }
  };
}

function breakerText(b) {
  if (b === undefined || b === null) return DASH;
  if (typeof b === 'string') return b;
  if (typeof b === 'object' && typeof b.state === 'string') return b.state;
  return show(b);
}

function OAuthCell({ record, status }) {
  const o = status?.oauth;
  if (!o) return record.oauth ? html`<span class="muted">${show(record.oauth.grant)}</span>` : DASH;
  const tone = o.state === 'connected' ? 'ok' : o.state === 'error' ? 'bad' : 'warn';
  return html`<span><${Badge} tone=${tone}>${show(o.state)}</${Badge}>${o.error ? html`<span class="cell-note">${o.error}</span>` : null}</span>`;
}

function ServerRow({ row, busy, onTools, onEdit, onRefresh, onConnect, onDelete, connectUrl }) {
  const { record, status, statusError } = row;
  const label = record.server_label;
  const changed = status?.changed_tools ?? [];
  return html`<tr>
    <th scope="row" data-label="Server">
      <span class="server-label">${label}</span>
      ${record.server_description ? html`<span class="cell-note">${record.server_description}</span>` : null}
    </th>
    <td data-label="Origin"><span class="mono">${originOf(record.server_url)}</span></td>
    <td data-label="Protocol">${show(status?.protocol_in_use)}${record.protocol && record.protocol !== 'auto' ? html`<span class="cell-note">set: ${record.protocol}</span>` : null}</td>
    <td data-label="Transport">${show(status?.transport_in_use)}<span class="cell-note">set: ${show(record.transport)}</span></td>
    <td data-label="Tools cached">
      ${status ? (status.tools_cached ? html`<${Badge} tone="ok">yes</${Badge}>` : html`<${Badge}>no</${Badge}>`) : DASH}
      ${status?.cached_at ? html`<span class="cell-note" title=${fmtTime(status.cached_at)}>at ${fmtShort(status.cached_at)}</span>` : null}
      ${changed.length ? html`<span class="cell-note"><${Badge} tone="warn">${changed.length} changed</${Badge}></span>` : null}
    </td>
    <td data-label="Last error" class=${statusError || status?.last_error ? 'cell-error' : 'none'}>${statusError ?? show(status?.last_error)}</td>
    <td data-label="Breaker">${status?.breaker === 'open' || status?.breaker === 'half_open'
      ? html`<${Badge} tone=${status.breaker === 'open' ? 'bad' : 'warn'}>${status.breaker}</${Badge}>`
      : breakerText(status?.breaker)}</td>
    <td data-label="OAuth"><${OAuthCell} record=${record} status=${status} /></td>
    <td data-label="Actions" class="actions">
      <button type="button" aria-label=${`Tools ${label}`} onClick=${onTools}>Tools</button>
      <button type="button" aria-label=${`Edit ${label}`} onClick=${onEdit}>Edit</button>
      <button type="button" aria-label=${`Refresh ${label}`} onClick=${onRefresh} disabled=${busy}>Refresh</button>
      ${record.oauth && record.oauth.grant !== 'client_credentials' ? html`<button type="button" aria-label=${`Connect ${label}`} onClick=${onConnect} disabled=${busy}>Connect</button>` : null}
      <button type="button" class="danger" aria-label=${`Delete ${label}`} onClick=${onDelete} disabled=${busy}>Delete</button>
      ${connectUrl ? html`<a class="connect-link" href=${connectUrl} target="_blank" rel="noopener noreferrer">Open the authorization page for ${label}</a>` : null}
    </td>
  </tr>`;
}

export function ServersView({ token, onUnauthorized }) {
  const [rows, setRows] = useState(null);
  const [notice, setNotice] = useState(null);
  const [form, setForm] = useState(null);
  const [busy, setBusy] = useState({});
  const [connect, setConnect] = useState({});
  // Labels being authorized in another page → until when to watch for "connected".
  const [waiting, setWaiting] = useState({});
  const [live, setLive] = useState('');
  const run = useRunner(onUnauthorized, setNotice);

  const load = async () => {
    await run(async () => {
      const list = await api(token, 'GET', '/admin/servers');
      const data = Array.isArray(list?.data) ? list.data : [];
      const withStatus = await Promise.all(
        data.map(async (record) => {
          try {
            const v = await api(token, 'GET', `/admin/servers/${enc(record.server_label)}`);
            return { record: v, status: v?.status ?? null, statusError: null };
          } catch (e) {
            if (e.status === 401) throw e;
            return { record, status: null, statusError: e.message };
          }
        }),
      );
      setRows(withStatus);
    });
  };
  usePoll(load, 10000, [token]);

  const act = async (label, what, fn) => {
    setBusy((b) => ({ ...b, [label]: what }));
    setNotice(null);
    try {
      await run(fn);
    } finally {
      setBusy((b) => {
        const n = { ...b };
        delete n[label];
        return n;
      });
    }
  };

  const refresh = (label) =>
    act(label, 'refresh', async () => {
      const was = rows?.find((r) => r.record.server_label === label)?.status?.changed_tools ?? [];
      const item = await api(token, 'POST', `/admin/servers/${enc(label)}/refresh`);
      const n = Array.isArray(item?.tools) ? item.tools.length : 0;
      const accepted = was.length ? ` Changed definitions accepted: ${was.join(', ')}.` : '';
      setNotice({ kind: 'info', text: `Refreshed ${label}: ${n} tool${n === 1 ? '' : 's'} listed and pinned.${accepted}` });
      await load();
    });
  const remove = (label) =>
    act(label, 'delete', async () => {
      await api(token, 'DELETE', `/admin/servers/${enc(label)}`);
      setRows((r) => (r ?? []).filter((x) => x.record.server_label !== label));
      if (form?.record?.server_label === label) setForm(null);
      setNotice({ kind: 'info', text: `Deleted ${label}.` });
      setLive(`Deleted ${label}`);
    });
  const connectOAuth = (label) =>
    act(label, 'connect', async () => {
      const r = await api(token, 'POST', `/admin/servers/${enc(label)}/oauth/authorize`);
      const url = safeHttpUrl(r?.authorization_url);
      if (!url) throw new Error('The broker returned no usable authorization URL.');
      setConnect((c) => ({ ...c, [label]: url }));
      window.open(url, '_blank', 'noopener,noreferrer');
      setWaiting((w) => ({ ...w, [label]: Date.now() + CONNECT_WATCH_MS }));
      setNotice({ kind: 'info', text: `Authorize ${label} in the page that opened (or use its link in the table); this table updates when it is connected.` });
    });

  // While an authorization is under way elsewhere, its server's state is checked every few
  // seconds (bounded) so the table shows "connected" without a reload.
  useEffect(() => {
    const labels = Object.keys(waiting);
    if (!labels.length) return undefined;
    const stop = (label) =>
      setWaiting((w) => {
        const n = { ...w };
        delete n[label];
        return n;
      });
    const timer = setInterval(async () => {
      for (const label of labels) {
        let state;
        try {
          state = (await api(token, 'GET', `/admin/servers/${enc(label)}`))?.status?.oauth?.state;
        } catch (e) {
          if (e.status === 401) return onUnauthorized();
          if (e.status === 404) stop(label);
          continue;
        }
        if (state === 'connected') {
          stop(label);
          setConnect((c) => {
            const n = { ...c };
            delete n[label];
            return n;
          });
          setNotice({ kind: 'info', text: `${label} is connected.` });
          setLive(`${label} connected`);
          await load();
        } else if (Date.now() > waiting[label]) stop(label);
      }
    }, CONNECT_POLL_MS);
    return () => clearInterval(timer);
  }, [waiting, token]);

  const headingRef = useRef(null);
  const closeForm = () => {
    setForm(null);
    // Focus goes back to the view instead of being lost with the form.
    setTimeout(() => headingRef.current?.focus(), 0);
  };
  const saved = async (record, created) => {
    closeForm();
    setNotice({ kind: 'info', text: `${created ? 'Added' : 'Saved'} ${record.server_label}.` });
    await load();
  };

  return html`<section aria-labelledby="servers-title">
    <div class="view-head">
      <h1 id="servers-title" tabindex="-1" ref=${headingRef}>Servers</h1>
      <div class="view-actions">
        <button type="button" class="ghost" onClick=${load}>Reload list</button>
        ${form ? null : html`<button type="button" class="primary" onClick=${() => (setNotice(null), setForm({ record: null }))}>Add server</button>`}
      </div>
    </div>
    <${Notice} notice=${notice} onClose=${() => setNotice(null)} />
    <${LiveStatus} text=${live} />
    ${form ? html`<${ServerForm} key=${form.record?.server_label ?? '+new'} token=${token} record=${form.record} onSaved=${saved}
      onCancel=${closeForm} onUnauthorized=${onUnauthorized} />` : null}
    ${rows === null
      ? html`<p class="muted">Loading servers…</p>`
      : rows.length === 0
        ? html`<p class="empty card">No servers are registered yet. Use “Add server” to register one.</p>`
        : html`<div class="table-wrap"><table class="servers">
            <caption class="visually-hidden">Registered MCP servers and their status</caption>
            <thead><tr>
              <th scope="col">Server</th><th scope="col">Origin</th><th scope="col">Protocol</th><th scope="col">Transport</th>
              <th scope="col">Tools cached</th><th scope="col">Last error</th><th scope="col">Breaker</th><th scope="col">OAuth</th>
              <th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr></thead>
            <tbody>
              ${rows.map((row) => {
                const label = row.record.server_label;
                return html`<${ServerRow} key=${label} row=${row} busy=${Boolean(busy[label])} connectUrl=${connect[label]}
                  onTools=${() => (location.hash = `#/servers/${enc(label)}/tools`)}
                  onEdit=${() => (setNotice(null), setForm({ record: row.record }))}
                  onRefresh=${() => refresh(label)} onConnect=${() => connectOAuth(label)} onDelete=${() => remove(label)} />`;
              })}
            </tbody>
          </table></div>`}
  </section>`;
}

// ---- the form -------------------------------------------------------------------------

const DEFAULT_APPROVAL = JSON.stringify({ mode: 'caller', wait_ms: 0 });

const FIELDS = [
  { name: 'server_label', kind: 'text', hint: 'Letters, digits, “_” and “-”, up to 64.', required: true },
  { name: 'server_url', kind: 'text', hint: 'The MCP endpoint, http: or https:.', required: true, inputmode: 'url', placeholder: 'https://mcp.example.com/mcp' },
  { name: 'server_description', kind: 'text', hint: 'Shown to models beside the tools.' },
  { name: 'transport', kind: 'select', options: ['auto', 'streamable_http', 'sse'], hint: 'auto tries Streamable HTTP, then legacy SSE.' },
  { name: 'protocol', kind: 'select', options: ['auto', '2026-07-28', '2025-11-25'], hint: 'MCP revision; auto negotiates.', omitDefault: 'auto' },
  { name: 'require_approval', kind: 'policy', hint: '“always”, “never”, or the OpenAI filter as JSON, e.g. {"never": {"read_only": true}}. Empty means always.', placeholder: 'always' },
  { name: 'allowed_tools', kind: 'list', hint: 'Empty for every tool; names separated by commas, or the OpenAI filter as JSON.', placeholder: 'echo, add' },
  { name: 'headers', kind: 'json', wide: true, hint: `A JSON object; values may be \${NAME} references. Stored values show as "${REDACTED}": leave that to keep the stored value (same origin only), or type a new one.`, placeholder: '{"Authorization": "Bearer ${CRM_MCP_TOKEN}"}' },
  { name: 'approval', kind: 'json', wide: true, hint: `Optional JSON: mode (caller or webhook), webhook_url, webhook_secret, wait_ms. A "${REDACTED}" secret is kept as stored.`, placeholder: '{"mode": "webhook", "wait_ms": 30000}' },
  { name: 'oauth', kind: 'json', wide: true, hint: `Optional JSON for servers behind OAuth: grant, client_id, client_secret, scope. A "${REDACTED}" secret is kept as stored.`, placeholder: '{"grant": "authorization_code"}' },
  { name: 'tool_cache_ttl_s', kind: 'number', hint: 'Seconds a listing is cached (default 300).', placeholder: '300' },
  { name: 'call_timeout_ms', kind: 'number', hint: 'Per-request timeout in ms (default 30000).', placeholder: '30000' },
  { name: 'allow_private_network', kind: 'checkbox', hint: 'Allow loopback and private addresses for this server.' },
];
const FIELD_NAMES = new Set(FIELDS.map((f) => f.name));

function toForm(record) {
  const v = {};
  for (const f of FIELDS) {
    const x = record ? record[f.name] : undefined;
    if (f.kind === 'checkbox') v[f.name] = x === true;
    else if (f.kind === 'select') v[f.name] = typeof x === 'string' ? x : f.options[0];
    else if (f.kind === 'number') v[f.name] = typeof x === 'number' ? String(x) : '';
    else if (f.kind === 'policy') v[f.name] = x === undefined || x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x);
    else if (f.kind === 'list') v[f.name] = x === undefined || x === null ? '' : Array.isArray(x) ? x.join(', ') : JSON.stringify(x);
    else if (f.kind === 'json') {
      const empty = x === undefined || x === null || (f.name === 'headers' && Object.keys(x).length === 0) || (f.name === 'approval' && JSON.stringify(x) === DEFAULT_APPROVAL);
      v[f.name] = empty ? '' : JSON.stringify(x, null, 2);
    } else v[f.name] = typeof x === 'string' ? x : '';
  }
  return v;
}

/** The record to send, or the field errors found before asking the API. */
function fromForm(v, original) {
  const body = {};
  const errors = {};
  const json = (name, text) => {
    try {
      return JSON.parse(text);
    } catch {
      errors[name] = `${name} is not valid JSON.`;
      return undefined;
    }
  };
  for (const f of FIELDS) {
    const raw = v[f.name];
    const text = typeof raw === 'string' ? raw.trim() : raw;
    if (f.kind === 'checkbox') body[f.name] = raw === true;
    else if (f.kind === 'select') {
      if (!(f.omitDefault === text && !(original && f.name in original))) body[f.name] = text;
    } else if (f.kind === 'number') {
      if (text === '') continue;
      const n = Number(text);
      if (!Number.isInteger(n)) errors[f.name] = `${f.name} must be a whole number.`;
      else body[f.name] = n;
    } else if (f.kind === 'policy') {
      if (text === '') continue;
      body[f.name] = text.startsWith('{') ? json(f.name, text) : text;
    } else if (f.kind === 'list') {
      if (text === '') body[f.name] = null;
      else if (text.startsWith('[') || text.startsWith('{')) body[f.name] = json(f.name, text);
      else body[f.name] = text.split(/[\s,]+/).filter(Boolean);
    } else if (f.kind === 'json') {
      if (text === '') {
        if (f.name === 'headers') body.headers = {};
        continue;
      }
      const o = json(f.name, text);
      if (o === undefined) continue;
      if (o === null || typeof o !== 'object' || Array.isArray(o)) errors[f.name] = `${f.name} must be a JSON object.`;
      else body[f.name] = o;
    } else if (text !== '') body[f.name] = text;
  }
  return { body, errors };
}

function fieldOf(param) {
  if (!param) return null;
  const top = param.split(/[.[]/)[0];
  return FIELD_NAMES.has(top) ? top : null;
}

function Field({ f, value, error, onChange, disabled }) {
  const id = `f-${f.name}`;
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const describedBy = [error ? errId : null, f.hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  const common = { id, name: f.name, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': describedBy, 'aria-required': f.required ? 'true' : undefined, disabled };
  let control;
  if (f.kind === 'checkbox') {
    control = html`<input type="checkbox" ...${common} checked=${value} onChange=${(e) => onChange(e.currentTarget.checked)} />`;
  } else if (f.kind === 'select') {
    control = html`<select ...${common} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${f.options.map((o) => html`<option value=${o}>${o}</option>`)}
    </select>`;
  } else if (f.kind === 'json') {
    control = html`<textarea ...${common} rows=${rowsFor(value)} spellcheck="false" placeholder=${f.placeholder} value=${value}
      onInput=${(e) => onChange(e.currentTarget.value)}></textarea>`;
  } else {
    control = html`<input type="text" ...${common} inputmode=${f.kind === 'number' ? 'numeric' : f.inputmode}
      autocomplete="off" spellcheck="false" placeholder=${f.placeholder} value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  }
  const cls = `field field-${f.kind}${f.wide ? ' field-wide' : ''}${error ? ' has-error' : ''}`;
  if (f.kind === 'checkbox') {
    return html`<div class=${cls}>
      <div class="check">${control}<label for=${id}>${f.name}</label></div>
      ${error ? html`<p id=${errId} class="field-error">${error}</p>` : null}
      ${f.hint ? html`<p id=${hintId} class="hint">${f.hint}</p>` : null}
    </div>`;
  }
  return html`<div class=${cls}>
    <div class="label-row"><label for=${id}>${f.name}</label>${f.required ? html`<span class="req" aria-hidden="true">*</span>` : null}</div>
    ${control}
    ${error ? html`<p id=${errId} class="field-error">${error}</p>` : null}
    ${f.hint ? html`<p id=${hintId} class="hint">${f.hint}</p>` : null}
  </div>`;
}

function ServerForm({ token, record, onSaved, onCancel, onUnauthorized }) {
  const editing = Boolean(record);
  const [values, setValues] = useState(() => toForm(record));
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const formRef = useRef(null);

  useEffect(() => {
    const first = formRef.current?.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
    else if (attempt === 0) formRef.current?.querySelector('input:not([disabled]), select, textarea')?.focus();
  }, [attempt]);

  const set = (name) => (x) => setValues((v) => ({ ...v, [name]: x }));

  const submit = async (ev) => {
    ev.preventDefault();
    const { body, errors: local } = fromForm(values, record);
    setAttempt((n) => n + 1);
    if (Object.keys(local).length) {
      setErrors(local);
      setFormError('The server was not saved: correct the marked fields.');
      return;
    }
    setBusy(true);
    setErrors({});
    setFormError(null);
    try {
      if (editing) {
        // Keep the current tool pins (read now, not when the form opened): an edit must not
        // silently accept changed definitions. A new URL is a new server: it is pinned afresh.
        const cur = await api(token, 'GET', `/admin/servers/${enc(record.server_label)}`);
        if (cur?.pinned_tools && cur.server_url === body.server_url) body.pinned_tools = cur.pinned_tools;
        else delete body.pinned_tools;
      }
      const saved = editing
        ? await api(token, 'PUT', `/admin/servers/${enc(record.server_label)}`, body)
        : await api(token, 'POST', '/admin/servers', body);
      onSaved(saved ?? body, !editing);
    } catch (e) {
      if (e.status === 401) return onUnauthorized();
      const field = fieldOf(e.param);
      if (field) {
        setErrors({ [field]: e.message });
        setFormError(`The server was not saved: see ${field}.`);
      } else setFormError(e.message);
    } finally {
      setBusy(false);
    }
  };

  const title = editing ? `Edit ${record.server_label}` : 'New server';
  const onKeyDown = (e) => {
    if (e.key === 'Escape') onCancel();
  };
  return html`<section class="card form-card" aria-labelledby="server-form-title" onKeyDown=${onKeyDown}>
    <h2 id="server-form-title">${title}</h2>
    <form ref=${formRef} onSubmit=${submit} novalidate>
      ${formError ? html`<p class="notice notice-error" role="alert">${formError}</p>` : null}
      <div class="form-grid">
        ${FIELDS.map((f) => html`<${Field} key=${f.name} f=${f} value=${values[f.name]} error=${errors[f.name]}
          onChange=${set(f.name)} disabled=${editing && f.name === 'server_label'} />`)}
      </div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy}>Save server</button>
        <button type="button" class="ghost" onClick=${onCancel}>Cancel</button>
      </div>
    </form>
  </section>`;
}

// ---- tools of one server ---------------------------------------------------------------

export function ToolsView({ token, label, onUnauthorized }) {
  const [tools, setTools] = useState(null);
  const [server, setServer] = useState(null);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(false);
  const [live, setLive] = useState('');
  const run = useRunner(onUnauthorized, setNotice);

  const load = async () => {
    await run(async () => {
      const [s, t] = await Promise.all([
        api(token, 'GET', `/admin/servers/${enc(label)}`),
        api(token, 'GET', `/admin/servers/${enc(label)}/tools`).catch((e) => {
          if (e.status === 401) throw e;
          setNotice({ kind: 'error', text: e.message });
          return null;
        }),
      ]);
      setServer(s);
      setTools(Array.isArray(t?.data) ? t.data : 'failed');
    });
  };
  usePoll(load, 10000, [token, label]);

  const accept = async () => {
    setBusy(true);
    setNotice(null);
    await run(async () => {
      await api(token, 'POST', `/admin/servers/${enc(label)}/refresh`);
      await load();
      setNotice({ kind: 'info', text: 'Changes accepted: the current tool definitions are pinned.' });
      setLive('Changes accepted');
    });
    setBusy(false);
  };

  const list = Array.isArray(tools) ? tools : [];
  const changed = list.filter((t) => t.changed);
  const unsupported = Array.isArray(server?.status?.unsupported_tools) ? server.status.unsupported_tools : [];
  return html`<section aria-labelledby="tools-title">
    <p class="crumbs"><a href="#/servers">← Back</a></p>
    <div class="view-head">
      <h1 id="tools-title">Tools of <span class="mono">${label}</span></h1>
      <div class="view-actions"><button type="button" class="ghost" onClick=${load}>Reload tools</button></div>
    </div>
    ${server ? html`<p class="muted">${server.server_description ? html`${server.server_description} · ` : null}<span class="mono">${originOf(server.server_url)}</span></p>` : null}
    <${Notice} notice=${notice} onClose=${() => setNotice(null)} />
    <${LiveStatus} text=${live} />
    ${changed.length
      ? html`<div class="warning card" role="region" aria-label="Changed tools">
          <p><strong>${changed.length} tool definition${changed.length === 1 ? ' has' : 's have'} changed</strong> since ${changed.length === 1 ? 'it was' : 'they were'} pinned:${' '}
            ${changed.map((t, i) => html`${i ? ', ' : ''}<span class="mono">${t.name}</span>`)}.
            Callers cannot list or call ${changed.length === 1 ? 'it' : 'them'} until you accept the new definitions.</p>
          <button type="button" class="primary" onClick=${accept} disabled=${busy}>Accept changes</button>
        </div>`
      : null}
    ${unsupported.length
      ? html`<div class="card unsupported" role="region" aria-label="Withheld tools">
          <p><strong>Withheld from callers</strong> (they need a client feature the broker does not offer):</p>
          <ul>${unsupported.map((u) => html`<li key=${u.name}><span class="mono">${u.name}</span>: ${u.reason}</li>`)}</ul>
        </div>`
      : null}
    ${tools === null
      ? html`<p class="muted">Loading tools…</p>`
      : tools === 'failed'
        ? html`<p class="empty card">The tools could not be listed (see the message above); “Reload tools” tries again.</p>`
        : tools.length === 0
        ? html`<p class="empty card">No tools listed.</p>`
        : html`<div class="table-wrap"><table class="tools">
            <caption class="visually-hidden">Tools of ${label}</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Description</th><th scope="col">Read-only</th><th scope="col">Pin</th><th scope="col">Allowed</th></tr></thead>
            <tbody>
              ${tools.map((t) => html`<tr key=${t.name} class=${t.changed ? 'row-changed' : ''}>
                <th scope="row" data-label="Name"><span class="mono">${t.name}</span>${t.title ? html`<span class="cell-note">${t.title}</span>` : null}</th>
                <td data-label="Description" class="desc">
                  ${t.description ? html`<span class="pre-line">${t.description}</span>` : DASH}
                  ${t.input_schema ? html`<details><summary>Input schema</summary><pre>${prettyJson(t.input_schema)}</pre></details>` : null}
                </td>
                <td data-label="Read-only">${t.read_only ? 'yes' : 'no'}</td>
                <td data-label="Pin">${t.changed ? html`<${Badge} tone="bad">changed</${Badge}>` : t.pinned_sha256 ? html`<${Badge} tone="ok">pinned</${Badge}>` : html`<${Badge}>not pinned</${Badge}>`}</td>
                <td data-label="Allowed">${t.unsupported
                  ? html`<${Badge} tone="warn">withheld</${Badge}><span class="cell-note">${typeof t.unsupported === 'string' ? t.unsupported : show(t.unsupported)}</span>`
                  : t.allowed === null || t.allowed === undefined ? DASH : t.allowed ? 'yes' : 'no'}</td>
              </tr>`)}
            </tbody>
          </table></div>`}
  </section>`;
}
