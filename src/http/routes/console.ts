import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { Router, type RequestHandler, type Response } from 'express';
import type { Broker } from '../../broker/broker.js';
import { UNRESTRICTED } from '../../keys/caller.js';
import { unknownLabel } from '../../registry/fileStore.js';

/**
 * SPEC §13 admin console: a static page served from the package (no CDN), under a strict
 * Content-Security-Policy. The page itself holds no data; it talks to the JSON API with the
 * token the user typed (kept in sessionStorage by the page, never in a URL or cookie).
 */

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONSOLE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  body: Buffer;
  type: string;
}

/** src/console/static when run from TypeScript, dist/console/static (copied by the build) from dist. */
export function staticDir(): string {
  const candidates = [join(__dirname, '..', '..', 'console', 'static'), join(__dirname, '..', '..', '..', 'src', 'console', 'static')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found) throw new Error(`console assets not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** The page's own files: every file of the static folder (flat and nested), nothing else. */
function ownAssets(dir: string, prefix = ''): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      for (const [k, v] of ownAssets(p, `${prefix}${e.name}/`)) out.set(k, v);
      continue;
    }
    const type = TYPES[extname(e.name)];
    if (type) out.set(`${prefix}${e.name}`, { body: readFileSync(p), type });
  }
  return out;
}

/**
 * The UI library, served from node_modules through a fixed allow-list (never a generic
 * passthrough). Bare `preact` imports are rewritten to the sibling file, so no import map
 * (an inline script) is needed.
 */
function vendorAssets(): Map<string, Asset> {
  const preactDist = dirname(require.resolve('preact'));
  const hooksDist = dirname(require.resolve('preact/hooks'));
  const htmDist = dirname(require.resolve('htm'));
  const js = TYPES['.js']!;
  const read = (p: string) => readFileSync(p, 'utf8');
  const rewrite = (src: string, file: string) => {
    const out = src.replaceAll('from"preact"', 'from"./preact.mjs"');
    if (/from\s*"(?!\.\/)[^"]*"/.test(out)) throw new Error(`console vendor file ${file} imports a bare module`);
    return out;
  };
  return new Map<string, Asset>([
    ['vendor/preact.mjs', { body: Buffer.from(rewrite(read(join(preactDist, 'preact.mjs')), 'preact.mjs')), type: js }],
    ['vendor/hooks.mjs', { body: Buffer.from(rewrite(read(join(hooksDist, 'hooks.mjs')), 'hooks.mjs')), type: js }],
    ['vendor/htm.mjs', { body: Buffer.from(rewrite(read(join(htmDist, 'htm.mjs')), 'htm.mjs')), type: js }],
  ]);
}

function send(res: Response, a: Asset, cache: string): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  res.setHeader('Content-Type', a.type);
  res.setHeader('Cache-Control', cache);
  res.send(a.body);
}

/** `GET /console` and its assets; no authentication (the page holds no data). */
export function consoleRoutes(): Router {
  const r = Router({ caseSensitive: true, strict: true });
  let assets: Map<string, Asset> | undefined;
  const load = () => (assets ??= new Map([...ownAssets(staticDir()), ...vendorAssets()]));

  const page: RequestHandler = (_req, res) => send(res, load().get('index.html')!, 'no-store');
  const cacheOf = (path: string) => (path === 'index.html' ? 'no-store' : 'no-cache');
  r.get('/', page);
  r.get('/{*path}', (req, res, next) => {
    const path = (req.params as { path?: string[] }).path?.join('/') ?? '';
    const a = load().get(path);
    if (!a) return next();
    send(res, a, cacheOf(path));
  });
  return r;
}

/**
 * Admin-only helper the console needs beside SPEC §2: a server's whole listing with each
 * tool's pin state (changed tools included, which the broker API withholds).
 */
export function consoleAdminRoutes(broker: Broker): Router {
  const { registry, catalog } = broker.d;
  const r = Router();

  r.get('/servers/:label/tools', async (req, res) => {
    const record = await registry.get(req.params.label);
    if (!record) throw unknownLabel(req.params.label, null);
    const server = await broker.resolve({ type: 'mcp', server_label: record.server_label }, 'tool', UNRESTRICTED);
    // Through the broker first: listing failures become the usual 424 and are counted.
    const { tools: allowed } = await broker.listTools(server);
    const allowedNames = new Set(allowed.map((t) => t.tool.name));
    const { listing } = await catalog.get(server);
    const pins = (await registry.get(record.server_label))?.pinned_tools ?? {};
    res.json({
      object: 'list',
      server_label: record.server_label,
      data: listing.tools.map((t) => ({
        name: t.tool.name,
        title: t.tool.title ?? null,
        description: t.tool.description ?? null,
        read_only: t.readOnly,
        // A changed tool is withheld whatever the policy says; for the others, the record's allowed_tools.
        allowed: t.changed ? null : allowedNames.has(t.tool.name),
        changed: t.changed,
        sha256: t.hash,
        pinned_sha256: pins[t.tool.name] ?? null,
        input_schema: t.tool.inputSchema ?? null,
        annotations: t.tool.annotations ?? null,
        // Set where the catalog withholds a tool that needs a client feature the broker lacks.
        unsupported: (t as { unsupported?: unknown }).unsupported ?? null,
      })),
    });
  });

  return r;
}
