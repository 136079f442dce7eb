import { Router, type Request } from 'express';
import { ExternalConnectorError, InvalidRequestError } from '../../errors/index.js';
import type { OAuthManager } from '../../oauth/manager.js';
import { OAuthTokenError } from '../../oauth/errors.js';
import { unknownLabel } from '../../registry/fileStore.js';
import type { RegistryStore } from '../../registry/store.js';

const SUCCESS_PAGE = (label: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mcp-broker: connected</title></head>` +
  `<body><h1>Connected</h1><p>The MCP server <strong>${escapeHtml(label)}</strong> is connected to mcp-broker. You can close this page.</p></body></html>`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const one = (req: Request, name: string): string | undefined => {
  const v = req.query[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 4096 ? v : undefined;
};

/** `POST /admin/servers/{label}/oauth/authorize` (admin auth is applied by the mount). */
export function adminOAuthRoutes(registry: RegistryStore, oauth: OAuthManager): Router {
  const r = Router();
  r.post('/servers/:label/oauth/authorize', async (req, res) => {
    const record = await registry.get(req.params.label);
    if (!record) throw unknownLabel(req.params.label, null);
    if (record.oauth?.grant !== 'authorization_code') {
      throw new InvalidRequestError('invalid_value', `Server '${record.server_label}' has no oauth.grant "authorization_code" to authorize.`, { param: 'oauth.grant' });
    }
    try {
      res.json({ authorization_url: await oauth.authorize(record) });
    } catch (e) {
      if (e instanceof OAuthTokenError) throw new ExternalConnectorError('http_error', e.message, { cause: e });
      throw e;
    }
  });
  return r;
}

/** `GET /oauth/callback` (no auth: the state is the credential) and the client ID metadata document. */
export function oauthPublicRoutes(registry: RegistryStore, oauth: OAuthManager): Router {
  const r = Router();
  r.get('/callback', async (req, res) => {
    const state = one(req, 'state');
    const code = one(req, 'code');
    if (!state) throw new InvalidRequestError('missing_required_parameter', "Missing required parameter: 'state'.", { param: 'state' });
    if (!code) {
      // The authorization server refused (error=access_denied…): the state is used up all the same.
      await oauth.complete(state, '', undefined, async () => undefined).catch(() => undefined);
      const reason = one(req, 'error');
      throw new InvalidRequestError('missing_required_parameter', reason ? `The authorization was not granted (${reason.slice(0, 64).replace(/[^\w.-]/g, '')}).` : "Missing required parameter: 'code'.", { param: 'code' });
    }
    let label: string | undefined;
    try {
      label = await oauth.complete(state, code, one(req, 'iss'), (l) => registry.get(l));
    } catch (e) {
      if (e instanceof OAuthTokenError) throw new ExternalConnectorError('http_error', e.message, { cause: e });
      throw e;
    }
    if (!label) throw new InvalidRequestError('invalid_value', 'Unknown, expired or already used OAuth state.', { param: 'state' });
    res.setHeader('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cache-control', 'no-store');
    res.type('html').send(SUCCESS_PAGE(label));
  });
  r.get('/client-metadata.json', (_req, res) => {
    if (!oauth.clientMetadataUrl) {
      throw new InvalidRequestError('invalid_value', 'A client ID metadata document needs an https BROKER_PUBLIC_URL.', { param: null });
    }
    res.json(oauth.clientMetadataDocument());
  });
  return r;
}
