import type { Browser, Locator, Page } from 'playwright-core';
import { ADMIN, APPROVER, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFaultServer } from './fixtures/faultServer.js';
import { axeSerious, launchBrowser, openConsole, signIn, type ConsolePage } from './fixtures/browser.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';

jest.setTimeout(90_000);

const HOSTILE_TOOL = '<img src=x onerror=window.__xss=1><script>window.__xss=2</script>';
const HOSTILE_SERVER = '<img src=x onerror=window.__xss=3>Hostile';
const HOSTILE_ARG = '<img src=x onerror=window.__xss=4>';

let mcp: McpFixture;
let hostile: McpFixture;
let b: TestBroker;
let browser: Browser;
const open: ConsolePage[] = [];

beforeAll(async () => {
  mcp = await startMcpFixture();
  hostile = await startMcpFixture();
  hostile.addTool('evil', HOSTILE_TOOL);
  b = await startBroker({
    servers: [
      // A 1 s TTL: the changed-tool test sees the new definition even if no list_changed arrives.
      record('crm', mcp.url, { server_description: 'Customer records', tool_cache_ttl_s: 1 }),
      record('hostile', hostile.url, { server_description: HOSTILE_SERVER }),
      record('gated', mcp.url, { require_approval: 'always', server_description: 'Every call needs an approver' }),
    ],
  });
  browser = await launchBrowser();
});

afterEach(async () => {
  for (const c of open.splice(0)) await c.close().catch(() => undefined);
});

afterAll(async () => {
  await browser?.close();
  await b?.close();
  await mcp?.close();
  await hostile?.close();
});

async function consoleAs(token: string | null, o: { width?: number; height?: number; bypassCSP?: boolean } = {}): Promise<ConsolePage> {
  const c = await openConsole(browser, b.url, o);
  open.push(c);
  if (token) await signIn(c.page, token);
  return c;
}

/** SPEC §13: the token only ever travels in the Authorization header. */
async function expectNoTokenLeak(c: ConsolePage, token: string) {
  expect(c.requests.length).toBeGreaterThan(0);
  for (const r of c.requests) expect(r.url).not.toContain(token);
  for (const r of c.requests) expect(r.headers.cookie ?? '').not.toContain(token);
  const api = c.requests.filter((r) => /\/(admin|v1)\//.test(new URL(r.url).pathname));
  expect(api.length).toBeGreaterThan(0);
  for (const r of api) expect(r.headers.authorization).toMatch(/^Bearer \S+$/);
  expect(await c.context.cookies()).toEqual([]);
  const stores = await c.page.evaluate(() => ({ local: JSON.stringify(localStorage), session: JSON.stringify(sessionStorage), cookie: document.cookie }));
  expect(stores.local).toBe('{}');
  expect(stores.cookie).toBe('');
  expect(stores.session).toContain(token);
  expect(b.logs.join('')).not.toContain(token);
}

async function expectNoSideEffects(page: Page) {
  const seen = await page.evaluate(() => ({
    xss: (window as unknown as { __xss?: unknown }).__xss ?? null,
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src')),
  }));
  expect(seen).toEqual({ xss: null, imgs: 0, scripts: ['/console/app.js'] });
}

/** Waits (bounded by the default timeout) until the field is marked invalid. */
const invalid = (page: Page, field: Locator) => field.and(page.locator('[aria-invalid="true"]')).waitFor();

const serverRow = (page: Page, label: string) => page.getByRole('row').filter({ has: page.getByRole('rowheader').filter({ hasText: new RegExp(`^${label}`) }) });

describe('console page', () => {
  test('is served from the package with a strict CSP and no inline script', async () => {
    const res = await fetch(`${b.url}/console`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const page = await res.text();
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(page).not.toMatch(/https?:\/\//);
    // The vendor files come through a fixed allow-list, never a node_modules passthrough.
    const vendor = await fetch(`${b.url}/console/vendor/hooks.mjs`);
    expect(vendor.status).toBe(200);
    expect(vendor.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await vendor.text()).toContain('from"./preact.mjs"');
    for (const p of ['/console/vendor/compat.mjs', '/console/node_modules/preact/package.json', '/console/..%2fpackage.json', '/console/vendor/..%2f..%2fpackage.json']) {
      expect((await fetch(b.url + p)).status).toBe(404);
    }
  });

  test('GET /admin/servers/{label}/tools: the whole listing with pin state, admin only', async () => {
    expect((await b.call('GET', '/admin/servers/crm/tools', { token: KEY_A })).status).toBe(401);
    expect((await b.call('GET', '/admin/servers/crm/tools', { token: APPROVER })).status).toBe(401);
    const missing = await b.call('GET', '/admin/servers/nope/tools', { token: ADMIN });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('unknown_server_label');
    const r = await b.call('GET', '/admin/servers/hostile/tools', { token: ADMIN });
    expect(r.status).toBe(200);
    expect(r.body.object).toBe('list');
    const evil = r.body.data.find((t: { name: string }) => t.name === 'evil');
    expect(evil).toMatchObject({ description: HOSTILE_TOOL, read_only: false, changed: false, allowed: true });
    expect(evil.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.body.data.find((t: { name: string }) => t.name === 'add')).toMatchObject({ read_only: true });
  });

  test('sign in refuses an API key, then lists servers for the admin token', async () => {
    const c = await consoleAs(null);
    await c.shot('01-sign-in');
    await signIn(c.page, KEY_A);
    await c.page.getByText('neither the admin token nor the approver token').waitFor();
    await signIn(c.page, ADMIN);
    await c.page.getByRole('heading', { name: 'Servers' }).waitFor();
    for (const label of ['crm', 'hostile', 'gated']) await serverRow(c.page, label).waitFor();
    await expect(serverRow(c.page, 'crm').textContent()).resolves.toContain('http://127.0.0.1:');
    for (const name of ['Servers', 'Keys', 'Approvals']) await c.page.getByRole('link', { name }).waitFor();
    // The status each row shows comes from GET /admin/servers/{label}.
    await c.page.getByRole('button', { name: 'Refresh crm' }).click();
    await c.page.getByText('Refreshed crm: 6 tools listed and pinned.').waitFor();
    await serverRow(c.page, 'crm').getByText('streamable_http').first().waitFor();
    await c.shot('02-servers');
    // The CSP is enforced: a script element added at run time does not run (Trusted Types
    // refuse the assignment outright).
    const inline = await c.page.evaluate(() => {
      let refused = false;
      try {
        const el = document.createElement('script');
        el.textContent = 'window.__inline = 1';
        document.body.append(el);
      } catch {
        refused = true;
      }
      return { refused, ran: (window as unknown as { __inline?: number }).__inline ?? null };
    });
    expect(inline).toEqual({ refused: true, ran: null });
    const tt = (e: string) => /requires 'TrustedScript' assignment/.test(e);
    for (let i = 0; i < 40 && !c.errors.some(tt); i++) await c.page.waitForTimeout(50);
    expect(c.errors.filter(tt)).toHaveLength(1);
    c.errors.splice(0);
    await expectNoTokenLeak(c, ADMIN);
    expect(c.errors).toEqual([]);
  });

  test('adds a server through the form; the API field error shows at the field', async () => {
    const c = await consoleAs(ADMIN);
    const page = c.page;
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.getByLabel('server_label', { exact: true }).fill('fresh');
    await page.getByLabel('server_url', { exact: true }).fill('not a url');
    await page.getByRole('button', { name: 'Save server' }).click();
    // The message is the API's own, next to the field named by `param`.
    const api = await b.call('POST', '/admin/servers', { token: ADMIN, body: { server_label: 'x', server_url: 'not a url', transport: 'auto', headers: {}, allowed_tools: null, allow_private_network: false } });
    expect(api.status).toBe(400);
    expect(api.body.error.param).toBe('server_url');
    const url = page.getByLabel('server_url', { exact: true });
    await invalid(page, url);
    const errId = (await url.getAttribute('aria-describedby'))!.split(' ')[0]!;
    await expect(page.locator(`#${errId}`).textContent()).resolves.toBe(api.body.error.message);
    await expect(page.locator('.field', { has: url }).textContent()).resolves.toContain(api.body.error.message);
    await c.shot('03-form-field-error');

    await url.fill(mcp.url);
    await page.getByLabel('server_description', { exact: true }).fill('Fresh from the form');
    await page.getByLabel('require_approval', { exact: true }).fill('never');
    await page.getByLabel('allowed_tools', { exact: true }).fill('echo, add');
    await page.getByLabel('allow_private_network', { exact: true }).check();
    await page.getByLabel('tool_cache_ttl_s', { exact: true }).fill('60');
    await page.getByRole('button', { name: 'Save server' }).click();
    await page.getByText('Added fresh.').waitFor();
    await serverRow(page, 'fresh').waitFor();
    const got = await b.call('GET', '/admin/servers/fresh', { token: ADMIN });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      server_label: 'fresh',
      server_url: mcp.url,
      server_description: 'Fresh from the form',
      require_approval: 'never',
      allowed_tools: ['echo', 'add'],
      allow_private_network: true,
      tool_cache_ttl_s: 60,
    });

    // Edit keeps the pins and changes what was edited.
    await b.call('POST', '/admin/servers/fresh/refresh', { token: ADMIN });
    const pins = (await b.call('GET', '/admin/servers/fresh', { token: ADMIN })).body.pinned_tools;
    expect(Object.keys(pins).sort()).toEqual(['add', 'echo', 'fail', 'picture', 'slow', 'whoami']);
    await page.getByRole('button', { name: 'Edit fresh' }).click();
    await expect(page.getByLabel('server_label', { exact: true }).isDisabled()).resolves.toBe(true);
    await expect(page.getByLabel('server_url', { exact: true }).inputValue()).resolves.toBe(mcp.url);
    await page.getByLabel('server_description', { exact: true }).fill('Edited');
    // A field the page can check itself (JSON) is marked the same way, and nothing is sent.
    const puts = () => c.requests.filter((r) => r.method === 'PUT').length;
    await page.getByLabel('headers', { exact: true }).fill('{"X-Team": ');
    await page.getByRole('button', { name: 'Save server' }).click();
    await invalid(page, page.getByLabel('headers', { exact: true }));
    await page.getByText('headers is not valid JSON.').waitFor();
    expect(puts()).toBe(0);
    await page.getByLabel('headers', { exact: true }).fill('{"X-Team": "blue"}');
    await page.getByLabel('require_approval', { exact: true }).fill('{"never": {"read_only": true}}');
    await page.getByRole('button', { name: 'Save server' }).click();
    await page.getByText('Saved fresh.').waitFor();
    expect(puts()).toBe(1);
    const edited = (await b.call('GET', '/admin/servers/fresh', { token: ADMIN })).body;
    expect(edited.server_description).toBe('Edited');
    expect(edited.pinned_tools).toEqual(pins);
    expect(edited.allowed_tools).toEqual(['echo', 'add']);
    expect(edited.require_approval).toEqual({ never: { read_only: true } });
    expect(edited.headers).toEqual({ 'X-Team': '<redacted>' });
    // Editing again: stored header values are never shown; saving "<redacted>" back keeps them.
    await page.getByRole('button', { name: 'Edit fresh' }).click();
    await expect(page.getByLabel('headers', { exact: true }).inputValue()).resolves.toContain('<redacted>');
    expect(await page.content()).not.toContain('blue');
    await page.getByLabel('server_description', { exact: true }).fill('Edited twice');
    const putDone = page.waitForResponse((r) => r.request().method() === 'PUT');
    await page.getByRole('button', { name: 'Save server' }).click();
    expect((await putDone).status()).toBe(200);
    await page.getByRole('button', { name: 'Save server' }).waitFor({ state: 'detached' });
    await page.getByText('Saved fresh.').waitFor();
    expect(puts()).toBe(2);
    expect((await b.call('GET', '/admin/servers/fresh', { token: ADMIN })).body.server_description).toBe('Edited twice');
    expect(readFileSync(b.configPath, 'utf8')).not.toContain('<redacted>');
    const seen = mcp.counters.headers.length;
    const add = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fresh' }, name: 'add', arguments: { a: 2, b: 3 } } });
    expect(add.body.status).toBe('completed');
    expect(mcp.counters.headers.length).toBeGreaterThan(seen);
    expect(mcp.counters.headers.at(-1)?.['x-team']).toBe('blue');
    // A kept value is not sent to another origin: the API's message shows at the field.
    await page.getByRole('button', { name: 'Edit fresh' }).click();
    await page.getByLabel('server_url', { exact: true }).fill(mcp.url.replace('127.0.0.1', 'localhost'));
    await page.getByRole('button', { name: 'Save server' }).click();
    await invalid(page, page.getByLabel('headers', { exact: true }));
    await page.getByText(/server_url now has another origin/).waitFor();
    await c.shot('17-form-kept-secret-other-origin');
    expect(puts()).toBe(3);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expectNoTokenLeak(c, ADMIN);
    expect(c.errors).toEqual([]);
  });

  test('tools view: a changed tool is marked "changed", then "Accept changes" re-pins it', async () => {
    const c = await consoleAs(ADMIN);
    const page = c.page;
    await page.getByRole('button', { name: 'Tools crm' }).click();
    await page.getByRole('heading', { name: 'Tools of crm' }).waitFor();
    const echo = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'echo' }) });
    await echo.getByText('pinned').waitFor();
    await expect(echo.textContent()).resolves.toContain('Echo text back');
    const add = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'add' }) });
    await expect(add.getByRole('cell').nth(1).textContent()).resolves.toBe('yes'); // read-only

    mcp.redescribe('echo', 'Echo text back, and send it elsewhere');
    // list_changed drops the listing; "Reload tools" lists again. Bounded: at most 20 tries.
    for (let i = 0; i < 20 && !(await echo.getByText('changed').count()); i++) {
      await page.getByRole('button', { name: 'Reload tools' }).click();
      await page.waitForTimeout(250);
    }
    await echo.getByText('changed', { exact: true }).waitFor();
    await expect(echo.textContent()).resolves.toContain('send it elsewhere');
    // The broker withholds it from callers meanwhile.
    const before = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'crm' } } });
    expect(before.body.tools.map((t: { name: string }) => t.name)).not.toContain('echo');
    await c.shot('04-tools-changed');

    await page.getByRole('button', { name: 'Accept changes' }).click();
    await page.getByText('Changes accepted').first().waitFor();
    await echo.getByText('pinned').waitFor();
    expect(await echo.getByText('changed', { exact: true }).count()).toBe(0);
    const after = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'crm' } } });
    expect(after.body.tools.find((t: { name: string }) => t.name === 'echo')?.description).toBe('Echo text back, and send it elsewhere');
    await c.shot('05-tools-accepted');
    await expectNoTokenLeak(c, ADMIN);
    expect(c.errors).toEqual([]);
  });

  test("a hostile server's metadata is rendered as text and does nothing", async () => {
    const c = await consoleAs(ADMIN);
    const page = c.page;
    await serverRow(page, 'hostile').getByText(HOSTILE_SERVER).waitFor();
    await page.getByRole('button', { name: 'Tools hostile' }).click();
    const evil = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'evil' }) });
    await evil.getByText(HOSTILE_TOOL).waitFor();
    await page.waitForTimeout(300);
    await expectNoSideEffects(page);
    await c.shot('06-hostile-tool');
    expect(c.errors).toEqual([]);
  });

  test('approvals appear without a reload and are approved and denied', async () => {
    const c = await consoleAs(APPROVER);
    const page = c.page;
    const region = page.getByRole('region', { name: 'Pending approvals' });
    await region.getByText('Nothing is waiting').waitFor();
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await c.shot('07-approvals-empty');

    const ask = async (args: object) => {
      const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', arguments: JSON.stringify(args) } });
      expect(r.status).toBe(200);
      expect(r.body.type).toBe('mcp_approval_request');
      return r.body.id as string;
    };
    const first = await ask({ text: 'ship it' });
    const second = await ask({ text: HOSTILE_ARG });
    const items = region.getByRole('listitem');
    const item1 = items.filter({ hasText: 'ship it' });
    const item2 = items.filter({ hasText: HOSTILE_ARG });
    await item1.waitFor();
    await item2.waitFor();
    await expect(item1.textContent()).resolves.toMatch(/gated/);
    await expect(item1.textContent()).resolves.toMatch(/echo/);
    await expect(item1.textContent()).resolves.toMatch(/expires in/);
    expect(navigations).toBe(0);
    await expectNoSideEffects(page);
    await c.shot('08-approvals-pending');

    await item1.getByLabel('Reason').fill('looks fine');
    await item1.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Approved echo on gated.').first().waitFor();
    await item1.waitFor({ state: 'detached' });
    const a1 = await b.call('GET', `/v1/mcp/approvals/${first}`, { token: APPROVER });
    expect(a1.body).toMatchObject({ status: 'approved', reason: 'looks fine' });

    await item2.getByLabel('Reason').fill('no markup, please');
    await item2.getByRole('button', { name: 'Deny' }).click();
    await item2.waitFor({ state: 'detached' });
    const a2 = await b.call('GET', `/v1/mcp/approvals/${second}`, { token: APPROVER });
    expect(a2.body).toMatchObject({ status: 'denied', reason: 'no markup, please' });

    // The approved request runs its stored arguments.
    const run = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', approval_request_id: first } });
    expect(run.body).toMatchObject({ type: 'mcp_call', output: 'echo: ship it' });
    await region.getByText('Nothing is waiting').waitFor();
    expect(navigations).toBe(0);
    await expectNoTokenLeak(c, APPROVER);
    expect(c.errors).toEqual([]);
  });

  test('the approver token cannot manage servers; both tokens can be held in one tab', async () => {
    const c = await consoleAs(APPROVER);
    const page = c.page;
    await page.getByRole('region', { name: 'Pending approvals' }).waitFor();
    await page.getByRole('link', { name: 'Servers' }).click();
    await page.getByText('This view needs the admin token').waitFor();
    await page.getByRole('heading', { name: 'Sign in as admin' }).waitFor();
    await signIn(page, ADMIN);
    await serverRow(page, 'crm').waitFor();
    await page.getByRole('link', { name: 'Approvals' }).click();
    await page.getByRole('region', { name: 'Pending approvals' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token', { exact: true }).waitFor();
    await expect(page.evaluate(() => sessionStorage.length)).resolves.toBe(0);
    expect(c.errors).toEqual([]);
  });

  test("an unreachable server: the API's 424 message in the tools view, last error in the table", async () => {
    await b.call('POST', '/admin/servers', { token: ADMIN, body: record('down', 'http://127.0.0.1:9/mcp', { call_timeout_ms: 2000 }) });
    const c = await consoleAs(ADMIN);
    await c.page.getByRole('button', { name: 'Tools down' }).click();
    await c.page.getByRole('alert').getByText("Error retrieving tool list from MCP server: 'down'", { exact: false }).waitFor();
    await c.page.getByText('The tools could not be listed').waitFor();
    await c.page.getByRole('link', { name: 'Back' }).click();
    const row = serverRow(c.page, 'down');
    await row.waitFor();
    const lastError = (await b.call('GET', '/admin/servers/down', { token: ADMIN })).body.status.last_error;
    expect(typeof lastError).toBe('string');
    await row.getByText(lastError).waitFor();
    await b.call('DELETE', '/admin/servers/down', { token: ADMIN });
    expect(c.errors).toEqual([]);
  });

  test('a failing server\'s open breaker shows in its row', async () => {
    const fs = await startFaultServer({ call: 'status_500' });
    try {
      await b.call('POST', '/admin/servers', { token: ADMIN, body: record('flaky', fs.url, { transport: 'streamable_http' }) });
      const tool = { type: 'mcp', server_label: 'flaky' };
      expect((await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).status).toBe(200);
      // The default threshold: five consecutive server faults.
      for (let i = 0; i < 5; i++) expect((await b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } })).body.error.code).toBe(500);
      expect((await b.call('GET', '/admin/servers/flaky', { token: ADMIN })).body.status.breaker).toBe('open');
      const c = await consoleAs(ADMIN);
      const cell = serverRow(c.page, 'flaky').locator('td[data-label="Breaker"]');
      await cell.locator('.badge').getByText('open', { exact: true }).waitFor();
      await expect(serverRow(c.page, 'crm').locator('td[data-label="Breaker"]').textContent()).resolves.toBe('closed');
      await c.shot('19-breaker-open');
      expect(c.errors).toEqual([]);
    } finally {
      await b.call('DELETE', '/admin/servers/flaky', { token: ADMIN });
      await fs.close();
    }
  });

  test('deletes a server', async () => {
    await b.call('POST', '/admin/servers', { token: ADMIN, body: record('doomed', mcp.url) });
    const c = await consoleAs(ADMIN);
    await serverRow(c.page, 'doomed').waitFor();
    await c.page.getByRole('button', { name: 'Delete doomed' }).click();
    await c.page.getByText('Deleted doomed.').waitFor();
    await serverRow(c.page, 'doomed').waitFor({ state: 'detached' });
    expect((await b.call('GET', '/admin/servers/doomed', { token: ADMIN })).status).toBe(404);
    await c.page.reload();
    await serverRow(c.page, 'crm').waitFor();
    expect(await serverRow(c.page, 'doomed').count()).toBe(0);
    await expectNoTokenLeak(c, ADMIN);
    expect(c.errors).toEqual([]);
  });

  test('keys: create (shown once), field error, grants, rotate, delete', async () => {
    const c = await consoleAs(ADMIN);
    const page = c.page;
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('heading', { name: 'Keys', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('name', { exact: true }).fill('bad name!');
    await page.getByLabel('grants', { exact: true }).fill('[{"server_label": "crm"}]');
    await page.getByRole('button', { name: 'Save key' }).click();
    const nameField = page.getByLabel('name', { exact: true });
    await invalid(page, nameField);
    await page.locator('.field', { has: nameField }).getByText(/name/).first().waitFor();
    await nameField.fill('team-a');
    await page.getByLabel('rate_limit_per_min', { exact: true }).fill('600');
    await page.getByRole('button', { name: 'Save key' }).click();
    const shown = page.getByRole('region', { name: /Key for team-a/ });
    await shown.waitFor();
    const key = (await shown.locator('code').textContent())!;
    expect(key).toMatch(/^mcpb_[A-Za-z0-9_-]{20,}$/);
    await c.shot('14-key-shown-once');
    const list = (t: string, label: string) => b.call('POST', '/v1/mcp/list_tools', { token: t, body: { tool: { type: 'mcp', server_label: label } } });
    expect((await list(key, 'crm')).status).toBe(200);
    expect((await list(key, 'gated')).status).toBe(404);
    await shown.getByRole('button', { name: 'Done' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'team-a' }) });
    await expect(row.textContent()).resolves.toContain('600/min');
    expect(await page.content()).not.toContain(key);

    await page.getByRole('button', { name: 'Edit team-a' }).click();
    await page.getByLabel('grants', { exact: true }).fill('"*"');
    await page.getByRole('button', { name: 'Save key' }).click();
    await page.getByText('Saved key team-a.').waitFor();
    await row.getByText('every server').waitFor();
    expect((await list(key, 'gated')).status).toBe(200);

    await page.getByRole('button', { name: 'Rotate team-a' }).click();
    const rotatedKey = (await page.getByRole('region', { name: /New key for team-a/ }).locator('code').textContent())!;
    expect(rotatedKey).toMatch(/^mcpb_/);
    expect(rotatedKey).not.toBe(key);
    expect((await list(key, 'crm')).status).toBe(401);
    expect((await list(rotatedKey, 'crm')).status).toBe(200);

    await page.getByRole('button', { name: 'Delete team-a' }).click();
    await page.getByText('Deleted key team-a').waitFor();
    await row.waitFor({ state: 'detached' });
    expect((await list(rotatedKey, 'crm')).status).toBe(401);
    for (const r of c.requests) expect(r.url).not.toContain('mcpb_');
    await expectNoTokenLeak(c, ADMIN);
    expect(c.errors).toEqual([]);
  });

  test('works at 390 px wide without sideways scrolling', async () => {
    const c = await consoleAs(null, { width: 390, height: 844 });
    await c.shot('09-sign-in-390');
    await signIn(c.page, ADMIN);
    await serverRow(c.page, 'crm').waitFor();
    const width = async () => c.page.evaluate(() => document.documentElement.scrollWidth);
    expect(await width()).toBeLessThanOrEqual(390);
    await c.shot('10-servers-390');
    await c.page.getByRole('button', { name: 'Add server' }).click();
    await c.page.getByLabel('server_url', { exact: true }).waitFor();
    expect(await width()).toBeLessThanOrEqual(390);
    await c.shot('11-form-390');
    await c.page.getByRole('button', { name: 'Tools hostile' }).click();
    await c.page.getByRole('heading', { name: 'Tools of hostile' }).waitFor();
    await c.page.getByText(HOSTILE_TOOL).waitFor();
    expect(await width()).toBeLessThanOrEqual(390);
    await c.shot('12-tools-390');
    const a = await consoleAs(APPROVER, { width: 390, height: 844 });
    await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'add', arguments: '{"a":1,"b":2}' } });
    await a.page.getByRole('region', { name: 'Pending approvals' }).getByRole('listitem').first().waitFor();
    expect(await a.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await a.shot('13-approvals-390');
    expect([...c.errors, ...a.errors]).toEqual([]);
  });

  test('axe-core finds no serious or critical violation on any view', async () => {
    const report: Record<string, unknown> = {};
    const c = await consoleAs(null, { bypassCSP: true });
    const page = c.page;
    await page.getByLabel('Token', { exact: true }).waitFor();
    report.signIn = await axeSerious(page);
    await signIn(page, ADMIN);
    await serverRow(page, 'crm').waitFor();
    report.servers = await axeSerious(page);
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.getByLabel('server_url', { exact: true }).fill('ftp://nope');
    await page.getByRole('button', { name: 'Save server' }).click();
    await page.locator('.field-error').first().waitFor();
    report.form = await axeSerious(page);
    await page.getByRole('button', { name: 'Tools crm' }).click();
    await page.getByRole('rowheader', { name: 'echo' }).waitFor();
    report.tools = await axeSerious(page);
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('heading', { name: 'Keys' }).waitFor();
    await page.waitForTimeout(300);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('grants', { exact: true }).waitFor();
    report.keys = await axeSerious(page);
    await page.getByRole('link', { name: 'Approvals' }).click();
    await signIn(page, APPROVER);
    await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', arguments: '{"text":"axe"}' } });
    await page.getByRole('region', { name: 'Pending approvals' }).getByText('"axe"').waitFor();
    report.approvals = await axeSerious(page);
    expect(report).toEqual({ signIn: [], servers: [], form: [], tools: [], keys: [], approvals: [] });
    // The scan does see problems: a button without a name is reported.
    await page.evaluate(() => document.querySelector('main')!.append(document.createElement('button')));
    expect((await axeSerious(page)).map((v) => v.id)).toContain('button-name');
  });
});

describe('OAuth "Connect" in the console (authorization_code)', () => {
  /** The broker's public URL as the authorization server sees it; the browser is routed to the real broker. */
  const PUBLIC = 'http://127.0.0.1:1';
  let as: AuthServer;
  let omcp: OAuthMcpServer;
  let ob: TestBroker;
  beforeAll(async () => {
    as = await startAuthServer();
    omcp = await startOAuthMcpServer({ issuer: as.issuer });
    ob = await startBroker({
      env: { BROKER_SECRET_KEY: randomBytes(32).toString('base64'), BROKER_PUBLIC_URL: PUBLIC },
      servers: [record('saas', omcp.url, { oauth: { grant: 'authorization_code' } })],
    });
  });
  afterAll(async () => {
    await ob?.close();
    await omcp?.close();
    await as?.close();
  });

  test('"Connect saas" opens the authorization page, which ends at the callback; the row turns connected', async () => {
    const c = await openConsole(browser, ob.url);
    open.push(c);
    await c.context.route(`${PUBLIC}/**`, async (route) => {
      const u = new URL(route.request().url());
      await route.fulfill({ response: await route.fetch({ url: `${ob.url}${u.pathname}${u.search}` }) });
    });
    await signIn(c.page, ADMIN);
    const row = serverRow(c.page, 'saas');
    await row.getByText('needs_authorization').waitFor();
    await c.shot('15-oauth-needs-authorization');
    const authorizations = (await as.stats()).authorizations;

    const opened = c.context.waitForEvent('page');
    await c.page.getByRole('button', { name: 'Connect saas' }).click();
    const popup = await opened;
    await popup.waitForURL((u) => u.href.startsWith(`${PUBLIC}/oauth/callback?`), { timeout: 20_000 });
    await popup.getByRole('heading', { name: 'Connected' }).waitFor();
    expect((await popup.locator('body').textContent())!.toLowerCase()).toContain('saas is connected');
    expect((await as.stats()).authorizations).toBe(authorizations + 1);

    // Back in the console: the table shows the new state without a reload.
    await row.getByText('connected', { exact: true }).waitFor({ timeout: 15_000 });
    await c.page.getByText('saas is connected.').waitFor();
    expect(await row.getByRole('link', { name: /authorization page/ }).count()).toBe(0);
    await c.shot('16-oauth-connected');
    // Row buttons start with the words of SPEC §13; the breaker is shown.
    for (const word of ['Refresh', 'Delete', 'Connect']) expect(await row.getByRole('button', { name: new RegExp(`^${word} saas$`) }).count()).toBe(1);
    await row.locator('td[data-label="Breaker"]').getByText('closed').waitFor();
    await c.page.setViewportSize({ width: 390, height: 844 });
    await row.getByRole('button', { name: 'Connect saas' }).waitFor();
    expect(await c.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await c.shot('18-oauth-connected-390');
    const view = await ob.call('GET', '/admin/servers/saas', { token: ADMIN });
    expect(view.body.status.oauth.state).toBe('connected');
    const call = await ob.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'saas' }, name: 'echo', arguments: { text: 'via console' } } });
    expect(call.status).toBe(200);
    expect(JSON.stringify(call.body)).toContain('echo: via console');
    expect(c.errors).toEqual([]);
    await popup.close();
  });
});
