// mcp-broker console: sign in, navigation, and the views. No bundler: ES modules served
// by the broker itself (SPEC §13).
import { render } from './vendor/preact.mjs';
import { useCallback, useEffect, useState } from './vendor/hooks.mjs';
import { api, ApiError } from './api.js';
import { html, Notice } from './ui.js';
import { ServersView, ToolsView } from './servers.js';
import { KeysView } from './keys.js';
import { ApprovalsView } from './approvals.js';

// Tokens live in sessionStorage only: gone when the tab closes, never in a cookie or URL.
const STORE = 'mcp-broker.console.tokens';

function loadTokens() {
  try {
    const v = JSON.parse(sessionStorage.getItem(STORE) || '{}');
    const out = {};
    if (typeof v.admin === 'string') out.admin = v.admin;
    if (typeof v.approver === 'string') out.approver = v.approver;
    return out;
  } catch {
    return {};
  }
}

function saveTokens(t) {
  if (!t.admin && !t.approver) sessionStorage.removeItem(STORE);
  else sessionStorage.setItem(STORE, JSON.stringify(t));
}

const refused = (e) => e instanceof ApiError && (e.status === 401 || e.status === 403);

/** Which class a token belongs to, by asking the API (admin first, then approver). */
async function probe(token) {
  try {
    await api(token, 'GET', '/admin/servers');
    return 'admin';
  } catch (e) {
    if (!refused(e)) throw e;
  }
  try {
    await api(token, 'GET', '/v1/mcp/approvals?status=pending&limit=1');
    return 'approver';
  } catch (e) {
    if (!refused(e)) throw e;
  }
  return null;
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const [view, label, sub] = parts;
  if (view === 'servers' && label && sub === 'tools') return { view: 'tools', label };
  if (view === 'servers' || view === 'keys' || view === 'approvals') return { view };
  return { view: null };
}

const NEEDS = { servers: 'admin', tools: 'admin', keys: 'admin', approvals: 'approver' };
const ROLE_TEXT = {
  admin: 'the admin token (BROKER_ADMIN_TOKEN)',
  approver: 'the approver token (BROKER_APPROVER_TOKEN)',
};

function SignIn({ need, onSignedIn, tokens }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const submit = async (ev) => {
    ev.preventDefault();
    const t = token.trim();
    if (!t) return setError('Enter a token.');
    setBusy(true);
    setError(null);
    try {
      const role = await probe(t);
      if (!role) setError('This token is neither the admin token nor the approver token.');
      else if (tokens[role] === t && need && role !== need) setError(`That token is already in use here; this view needs ${ROLE_TEXT[need]}.`);
      else {
        setToken('');
        onSignedIn(role, t);
      }
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="signin card" aria-labelledby="signin-title">
    <h1 id="signin-title">${need ? `Sign in as ${need}` : 'Sign in'}</h1>
    <p class="muted">
      ${need
        ? `This view needs ${ROLE_TEXT[need]}.`
        : 'Use the admin token to manage servers and keys, or the approver token to decide pending approvals.'}
      ${' '}The token stays in this browser tab only.
    </p>
    <form onSubmit=${submit} novalidate>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
        value=${token} onInput=${(e) => setToken(e.currentTarget.value)}
        aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? 'token-error' : undefined} />
      ${error ? html`<p id="token-error" class="field-error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </section>`;
}

function App() {
  const [tokens, setTokens] = useState(loadTokens);
  const [route, setRoute] = useState(parseRoute);
  const [notice, setNotice] = useState(null);

  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);

  const signedIn = Boolean(tokens.admin || tokens.approver);
  const view = route.view ?? (tokens.admin ? 'servers' : tokens.approver ? 'approvals' : 'servers');

  useEffect(() => {
    const titles = { servers: 'Servers', tools: `Tools of ${route.label}`, keys: 'Keys', approvals: 'Approvals' };
    document.title = signedIn ? `${titles[view]} · mcp-broker console` : 'Sign in · mcp-broker console';
  }, [view, route.label, signedIn]);

  const onSignedIn = (role, t) => {
    const next = { ...tokens, [role]: t };
    saveTokens(next);
    setTokens(next);
    setNotice(null);
    if (!route.view) location.hash = role === 'admin' ? '#/servers' : '#/approvals';
  };
  const signOut = () => {
    saveTokens({});
    setTokens({});
    setNotice(null);
    location.hash = '';
  };
  // A token the API stops accepting (rotated, restarted broker) is dropped.
  const onUnauthorized = useCallback((role) => {
    setTokens((cur) => {
      const next = { ...cur };
      delete next[role];
      saveTokens(next);
      return next;
    });
    setNotice({ kind: 'error', text: `The broker refused the ${role} token; sign in again.` });
  }, []);

  if (!signedIn) {
    return html`<main id="main" class="center">
      <p class="brand brand-large">mcp-broker <span>console</span></p>
      <${Notice} notice=${notice} />
      <${SignIn} tokens=${tokens} onSignedIn=${onSignedIn} />
    </main>`;
  }

  const need = NEEDS[view];
  const token = tokens[need];
  const link = (id, text) =>
    html`<a href=${`#/${id}`} aria-current=${view === id || (id === 'servers' && view === 'tools') ? 'page' : undefined}>${text}</a>`;
  const roles = [tokens.admin && 'admin', tokens.approver && 'approver'].filter(Boolean).join(' + ');

  let body;
  if (!token) body = html`<${SignIn} need=${need} tokens=${tokens} onSignedIn=${onSignedIn} />`;
  else if (view === 'servers') body = html`<${ServersView} token=${token} onUnauthorized=${() => onUnauthorized('admin')} />`;
  else if (view === 'tools') body = html`<${ToolsView} token=${token} label=${route.label} onUnauthorized=${() => onUnauthorized('admin')} />`;
  else if (view === 'keys') body = html`<${KeysView} token=${token} onUnauthorized=${() => onUnauthorized('admin')} />`;
  else body = html`<${ApprovalsView} token=${token} onUnauthorized=${() => onUnauthorized('approver')} />`;

  return html`<div class="layout">
    <header class="top">
      <p class="brand">mcp-broker <span>console</span></p>
      <nav aria-label="Main">${link('servers', 'Servers')}${link('keys', 'Keys')}${link('approvals', 'Approvals')}</nav>
      <div class="who"><span class="muted"><span class="who-prefix">Signed in: </span>${roles}</span><button type="button" class="ghost" onClick=${signOut}>Sign out</button></div>
    </header>
    <main id="main">
      <${Notice} notice=${notice} onClose=${() => setNotice(null)} />
      ${body}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('root'));
