import { createHash, randomBytes } from 'node:crypto';
import {
  auth,
  extractWWWAuthenticateParams,
  type AuthProvider,
  type FetchLike,
  type OAuthClientInformationMixed,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type OAuthTokens,
} from '@modelcontextprotocol/client';
import type { Logger } from 'pino';
import type { OAuthConfig, ServerRecord } from '../config/serverRecord.js';
import { expandRefs } from '../config/expand.js';
import type { EgressPolicy } from '../mcp/egress.js';
import type { SecretValues } from '../obs/logger.js';
import { labelKey } from '../registry/store.js';
import { InvalidRequestError } from '../errors/index.js';
import { OAuthAuthorizationRequiredError, OAuthTokenError } from './errors.js';
import { scrub } from '../util/scrub.js';
import type { SecretStore } from './store.js';

/** How long an authorization request (its `state`, PKCE verifier) stays valid. */
export const STATE_TTL_MS = 10 * 60_000;
/** Renew this long before expiry at most; short-lived tokens renew at a quarter of their life. */
const MAX_RENEW_MARGIN_MS = 60_000;
/** After a renewal, a 401 within this window is taken as the old token's, not a reason to renew again. */
const RENEW_DEBOUNCE_MS = 2_000;

export interface OAuthStatus {
  state: 'connected' | 'needs_authorization' | 'error';
  /** Unix seconds; null when unknown or not connected. */
  expires_at: number | null;
  scope: string | null;
  error?: string;
}

interface TokenEntry {
  /** The record's oauth config (and URL) the tokens were obtained for: an edited record starts over. */
  config?: string;
  tokens: OAuthTokens;
  obtained_at: number;
  expires_at: number | null;
}

interface StoredClient {
  client_id: string;
  client_secret?: string;
  issuer?: string;
  token_endpoint_auth_method?: string;
  /** The pre-registered client_id this stamp belongs to (none for a registered client). */
  preregistered?: boolean;
}

interface PendingAuthorization {
  label: string;
  /** Fingerprint of the record's oauth config when it started: a changed record voids it. */
  config: string;
  code_verifier: string;
  discovery?: OAuthDiscoveryState;
  scope?: string;
}

export interface OAuthManagerOptions {
  store: SecretStore;
  /** Tokens and secrets persist (BROKER_SECRET_KEY set); else they live in memory only. */
  persistent: boolean;
  publicUrl: string;
  /** The egress-guarded fetch for a record's policy (metadata, registration, token URLs). */
  fetchFor: (policy: EgressPolicy) => FetchLike;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  secrets: SecretValues;
  /** Validity of an authorization request's state [10 min]; shorter only in tests. */
  stateTtlMs?: number;
}

const keys = {
  tokens: (label: string) => `srv:${labelKey(label)}:tokens`,
  client: (label: string) => `srv:${labelKey(label)}:client`,
  server: (label: string) => `srv:${labelKey(label)}:`,
  // Hashed: the stored key (visible in the file or to SCAN) never reveals a live state.
  state: (state: string) => `state:${createHash('sha256').update(state).digest('base64url')}`,
};

function fingerprint(cfg: OAuthConfig, url: string): string {
  return JSON.stringify([url, cfg.grant, cfg.client_id ?? null, cfg.client_secret ?? null, cfg.scope ?? null]);
}

/**
 * Only https (http only for a record whose own server_url is http, which an admin chose), and
 * through the record's egress guard: metadata cannot send the broker — and its client secret
 * and tokens — to file:, data:, plain-http or private hosts.
 */
export function schemeGuard(inner: FetchLike, allowHttp: boolean): FetchLike {
  return async (url, init) => {
    const u = typeof url === 'string' ? new URL(url) : url instanceof URL ? url : new URL((url as Request).url);
    if (u.protocol !== 'https:' && !(allowHttp && u.protocol === 'http:')) throw new OAuthTokenError('?', `refusing a ${u.protocol} URL in OAuth metadata`);
    if (u.username || u.password) throw new OAuthTokenError('?', 'refusing a URL with credentials in OAuth metadata');
    return inner(u, { ...init, redirect: 'manual' });
  };
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; name?: string; cause?: unknown };
  for (let c: unknown = err, i = 0; c && i < 6; c = (c as { cause?: unknown }).cause, i++) {
    if ((c as { code?: string }).code === 'EGRESS_DENIED') return 'an OAuth URL was refused by the egress policy';
  }
  // URLs as their origins: metadata and token endpoint paths can name tenants (SPEC §10: origins, not URLs).
  const msg = (e?.message ?? String(err)).replace(/\s+/g, ' ').replace(/\bhttps?:\/\/[^\s"'<>]+/gi, originOf).slice(0, 300);
  return msg || e?.name || 'unknown error';
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '<url>';
  }
}

/**
 * The broker as an OAuth 2.1 client (SPEC §12), one `ServerAuth` per registered server, built on
 * the SDK's `auth()` orchestration (discovery, DCR, PKCE, token and refresh requests).
 */
export class OAuthManager {
  private readonly servers = new Map<string, ServerAuth>();

  constructor(readonly o: OAuthManagerOptions) {}

  get callbackUrl(): string {
    return `${this.o.publicUrl}/oauth/callback`;
  }

  /** A client ID metadata document can only be an https URL the authorization server fetches. */
  get clientMetadataUrl(): string | undefined {
    return this.o.publicUrl.startsWith('https://') ? `${this.o.publicUrl}/oauth/client-metadata.json` : undefined;
  }

  clientMetadataDocument(): OAuthClientMetadata & { client_id?: string } {
    return {
      client_id: this.clientMetadataUrl,
      client_name: 'mcp-broker',
      redirect_uris: [this.callbackUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  /** An admin write: authorization_code tokens must be storable encrypted (SPEC §12). */
  admit(record: ServerRecord): void {
    if (record.oauth?.grant === 'authorization_code' && !this.o.persistent) {
      throw new InvalidRequestError('invalid_value', 'oauth.grant "authorization_code" needs BROKER_SECRET_KEY (32 bytes, base64) so tokens are stored encrypted.', {
        param: 'oauth.grant',
      });
    }
  }

  /** The AuthProvider a transport uses for this record (undefined without `oauth`). */
  authProviderFor(record: ServerRecord, egress: EgressPolicy): AuthProvider | undefined {
    if (!record.oauth) return undefined;
    return this.server(record, egress).authProvider;
  }

  server(record: ServerRecord, egress: EgressPolicy = { allowPrivate: record.allow_private_network, allowCidrs: [] }): ServerAuth {
    const lk = labelKey(record.server_label);
    const fp = fingerprint(record.oauth!, record.server_url) + `|${egress.allowPrivate}`;
    let s = this.servers.get(lk);
    if (!s || s.fingerprint !== fp) {
      s = new ServerAuth(this, record, fp, schemeGuard(this.o.fetchFor(egress), new URL(record.server_url).protocol === 'http:'));
      this.servers.set(lk, s);
    }
    return s;
  }

  async status(record: ServerRecord): Promise<OAuthStatus | undefined> {
    if (!record.oauth) return undefined;
    return this.server(record).status();
  }

  /** Starts the authorization-code flow: the URL an admin opens (PKCE S256, single-use state). */
  async authorize(record: ServerRecord): Promise<string> {
    return this.server(record).startAuthorization();
  }

  /** The callback: takes the state (single use), redeems the code. Returns the server label. */
  async complete(state: string, code: string, iss: string | undefined, recordOf: (label: string) => Promise<ServerRecord | undefined>): Promise<string | undefined> {
    const pending = await this.o.store.take<PendingAuthorization>(keys.state(state));
    if (!pending) return undefined;
    const record = await recordOf(pending.label);
    if (!record?.oauth || record.oauth.grant !== 'authorization_code' || fingerprint(record.oauth, record.server_url) !== pending.config) return undefined;
    await this.server(record).finishAuthorization(pending, code, iss);
    return record.server_label;
  }

  /** A record changed or went away: forget its in-memory state; a deleted one loses its secrets. */
  async forget(label: string, deleted: boolean): Promise<void> {
    this.servers.delete(labelKey(label));
    if (deleted) await this.o.store.deletePrefix(keys.server(label));
  }

  async close(): Promise<void> {
    this.servers.clear();
    await this.o.store.close();
  }

  /** @internal */ keys = keys;
}

type FlowMode = { kind: 'background' } | { kind: 'authorize'; state: string; verifier?: string; url?: URL } | { kind: 'callback'; pending: PendingAuthorization };

/** One registered server's OAuth client state on this instance. */
export class ServerAuth {
  readonly label: string;
  readonly cfg: OAuthConfig;
  readonly serverUrl: URL;
  private cached: TokenEntry | undefined;
  private discovery: OAuthDiscoveryState | undefined;
  private resourceMetadataUrl: URL | undefined;
  private challengedScope: string | undefined;
  private renewing: Promise<void> | undefined;
  private lastRenewAt = 0;
  private lastError: string | undefined;
  readonly authProvider: AuthProvider;

  constructor(
    private readonly m: OAuthManager,
    record: ServerRecord,
    readonly fingerprint: string,
    private readonly fetchFn: FetchLike,
  ) {
    this.label = record.server_label;
    this.cfg = record.oauth!;
    this.serverUrl = new URL(record.server_url);
    this.authProvider = {
      token: () => this.token(),
      onUnauthorized: async (ctx) => {
        const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(ctx.response);
        if (resourceMetadataUrl) this.resourceMetadataUrl = resourceMetadataUrl;
        if (scope) this.challengedScope = scope;
        await this.renew(true);
      },
    };
  }

  private get store() {
    return this.m.o.store;
  }

  /** Scope: the record's, else the 401's `WWW-Authenticate`, else (inside the SDK) `scopes_supported`. */
  private get scope(): string | undefined {
    return this.cfg.scope ?? this.challengedScope;
  }

  async status(): Promise<OAuthStatus> {
    const e = await this.current().catch(() => undefined);
    const expires_at = e?.expires_at ? Math.floor(e.expires_at / 1000) : null;
    const scope = e?.tokens.scope ?? this.scope ?? null;
    if (this.lastError) return { state: 'error', expires_at, scope, error: this.lastError };
    if (e) return { state: 'connected', expires_at, scope };
    if (this.cfg.grant === 'authorization_code') return { state: 'needs_authorization', expires_at: null, scope };
    // client_credentials: fetched on the first request.
    return { state: 'connected', expires_at: null, scope };
  }

  /** The tokens in use; without any, the shared store is asked again (another instance may have them). */
  private async current(): Promise<TokenEntry | undefined> {
    if (this.cached) return this.cached;
    const stored = await this.stored();
    if (stored) this.adopt(stored);
    return stored;
  }

  /** Tokens in the store, if obtained for this very config. */
  private async stored(): Promise<TokenEntry | undefined> {
    const e = await this.store.get<TokenEntry>(keys.tokens(this.label));
    return e && e.config === this.config ? e : undefined;
  }

  private get config(): string {
    return fingerprint(this.cfg, this.serverUrl.href);
  }

  private adopt(e: TokenEntry) {
    this.cached = e;
    this.remember(e);
  }

  private remember(e: TokenEntry) {
    // One slot per server: a renewed token replaces the old one in the scrubber (no growth per renewal).
    this.m.o.secrets.setSlot(`oauth-tokens:${this.label}`, e.tokens.access_token, e.tokens.refresh_token, e.tokens.id_token);
  }

  /** An error's text as status and 424s show it: this server's secrets (and every known one) scrubbed. */
  private describe(err: unknown): string {
    return scrub(describe(err), this.m.o.secrets.all());
  }

  private nearExpiry(e: TokenEntry, now = Date.now()): boolean {
    if (e.expires_at === null) return false;
    const life = Math.max(0, e.expires_at - e.obtained_at);
    return e.expires_at - now <= Math.min(MAX_RENEW_MARGIN_MS, life / 4);
  }

  /** Per request: the current access token, renewed first when it is about to expire. */
  private async token(): Promise<string | undefined> {
    let e = await this.current();
    if (!e) {
      // Let the server's 401 carry WWW-Authenticate (resource metadata, scope): authorization_code
      // remembers it for the admin's authorization and answers "needs authorization".
      if (this.cfg.grant === 'authorization_code' || !this.discovery) return undefined;
      await this.renew(false);
      e = this.cached;
    } else if (this.nearExpiry(e)) {
      await this.renew(false);
      e = this.cached;
    }
    return e?.tokens.access_token;
  }

  /** Single flight per instance; another instance's fresher token (in the shared store) wins. */
  private renew(after401: boolean): Promise<void> {
    if (this.renewing) return this.renewing;
    if (after401 && Date.now() - this.lastRenewAt < RENEW_DEBOUNCE_MS) return Promise.resolve();
    const before = this.cached?.tokens.access_token;
    this.renewing = (async () => {
      const stored = await this.stored();
      if (stored && stored.tokens.access_token !== before && !this.nearExpiry(stored)) {
        this.adopt(stored);
        return;
      }
      if (after401 && this.cfg.grant === 'authorization_code' && !stored?.tokens.refresh_token) {
        // Nothing to refresh with: the access token (if any) was refused, only an admin can fix it.
        if (stored || this.cached) await this.dropTokens();
        throw new OAuthAuthorizationRequiredError(this.label);
      }
      let result: string;
      try {
        result = await auth(this.flow({ kind: 'background' }), {
          serverUrl: this.serverUrl,
          resourceMetadataUrl: this.resourceMetadataUrl,
          scope: this.scope,
          fetchFn: this.fetchFn,
        });
      } catch (err) {
        if (err instanceof OAuthAuthorizationRequiredError) throw err;
        // Not logged here: the request it was for fails with it, and that failure is logged once (SPEC §10).
        this.lastError = this.describe(err);
        throw new OAuthTokenError(this.label, this.lastError);
      }
      if (result !== 'AUTHORIZED') {
        if (stored || this.cached) await this.dropTokens();
        throw new OAuthAuthorizationRequiredError(this.label);
      }
      this.lastError = undefined;
      this.lastRenewAt = Date.now();
    })().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async dropTokens() {
    this.cached = undefined;
    await this.store.deletePrefix(keys.tokens(this.label));
  }

  async startAuthorization(): Promise<string> {
    const mode: FlowMode & { kind: 'authorize' } = { kind: 'authorize', state: randomBytes(32).toString('base64url') };
    try {
      // A fresh authorization: never a refresh, whatever tokens exist.
      await auth(this.flow(mode), {
        serverUrl: this.serverUrl,
        resourceMetadataUrl: this.resourceMetadataUrl,
        scope: this.scope,
        fetchFn: this.fetchFn,
        forceReauthorization: true,
      });
    } catch (err) {
      this.lastError = this.describe(err);
      throw new OAuthTokenError(this.label, this.lastError);
    }
    if (!mode.url || !mode.verifier) throw new OAuthTokenError(this.label, 'the authorization server did not start an authorization');
    const pending: PendingAuthorization = {
      label: this.label,
      config: fingerprint(this.cfg, this.serverUrl.href),
      code_verifier: mode.verifier,
      discovery: this.discovery,
      scope: this.scope,
    };
    await this.store.set(keys.state(mode.state), pending, this.m.o.stateTtlMs ?? STATE_TTL_MS);
    return mode.url.href;
  }

  async finishAuthorization(pending: PendingAuthorization, code: string, iss: string | undefined): Promise<void> {
    if (pending.discovery) this.discovery = pending.discovery;
    try {
      const r = await auth(this.flow({ kind: 'callback', pending }), {
        serverUrl: this.serverUrl,
        authorizationCode: code,
        iss,
        scope: pending.scope,
        fetchFn: this.fetchFn,
      });
      if (r !== 'AUTHORIZED') throw new Error('authorization did not complete');
    } catch (err) {
      this.lastError = this.describe(err);
      throw new OAuthTokenError(this.label, this.lastError);
    }
    this.lastError = undefined;
    this.lastRenewAt = Date.now();
  }

  /** The SDK-facing provider for one flow; storage is shared, the per-flow bits are in `mode`. */
  private flow(mode: FlowMode): OAuthClientProvider {
    const self = this;
    const cfg = this.cfg;
    const interactive = cfg.grant === 'authorization_code';
    const preregistered = cfg.client_id !== undefined;
    const secretOf = () => (cfg.client_secret === undefined ? undefined : expandRefs(cfg.client_secret, this.m.o.env, `oauth.client_secret of server '${this.label}'`));
    const provider: OAuthClientProvider = {
      get redirectUrl() {
        return interactive ? self.m.callbackUrl : undefined;
      },
      clientMetadataUrl: interactive && !preregistered ? this.m.clientMetadataUrl : undefined,
      get clientMetadata(): OAuthClientMetadata {
        return interactive
          ? {
              client_name: 'mcp-broker',
              redirect_uris: [self.m.callbackUrl],
              grant_types: ['authorization_code', 'refresh_token'],
              response_types: ['code'],
              token_endpoint_auth_method: 'client_secret_basic',
              ...(cfg.scope ? { scope: cfg.scope } : {}),
            }
          : { client_name: 'mcp-broker', redirect_uris: [], grant_types: ['client_credentials'], ...(cfg.scope ? { scope: cfg.scope } : {}) };
      },
      state: () => (mode.kind === 'authorize' ? mode.state : randomBytes(16).toString('base64url')),
      async clientInformation() {
        const stored = await self.store.get<StoredClient>(keys.client(self.label));
        if (preregistered) {
          const secret = secretOf();
          if (secret) self.m.o.secrets.addPermanent(secret);
          const issuer = stored?.preregistered && stored.client_id === cfg.client_id ? stored.issuer : undefined;
          return { client_id: cfg.client_id!, ...(secret ? { client_secret: secret } : {}), ...(issuer ? { issuer } : {}) } as OAuthClientInformationMixed;
        }
        if (stored?.client_secret) self.m.o.secrets.addPermanent(stored.client_secret);
        return stored && !stored.preregistered ? (stored as OAuthClientInformationMixed) : undefined;
      },
      async saveClientInformation(info) {
        const i = info as StoredClient & Record<string, unknown>;
        if (preregistered) {
          // Only the issuer stamp: the secret stays a ${NAME} reference in the record.
          await self.store.set(keys.client(self.label), { client_id: cfg.client_id!, issuer: i.issuer, preregistered: true } satisfies StoredClient);
          return;
        }
        if (i.client_secret) self.m.o.secrets.addPermanent(String(i.client_secret));
        const kept: StoredClient = { client_id: String(i.client_id), issuer: i.issuer as string | undefined };
        if (i.client_secret) kept.client_secret = String(i.client_secret);
        if (i.token_endpoint_auth_method) kept.token_endpoint_auth_method = String(i.token_endpoint_auth_method);
        await self.store.set(keys.client(self.label), kept);
      },
      async tokens() {
        return (await self.current())?.tokens;
      },
      async saveTokens(tokens) {
        const now = Date.now();
        const entry: TokenEntry = { config: self.config, tokens: tokens as OAuthTokens, obtained_at: now, expires_at: tokens.expires_in ? now + tokens.expires_in * 1000 : null };
        // Keep a refresh token the server did not rotate.
        if (!entry.tokens.refresh_token && self.cached?.tokens.refresh_token) entry.tokens = { ...entry.tokens, refresh_token: self.cached.tokens.refresh_token };
        await self.store.set(keys.tokens(self.label), entry);
        self.adopt(entry);
      },
      redirectToAuthorization(url) {
        if (mode.kind === 'authorize') mode.url = url;
      },
      saveCodeVerifier(v) {
        if (mode.kind === 'authorize') mode.verifier = v;
      },
      codeVerifier() {
        if (mode.kind === 'callback') return mode.pending.code_verifier;
        throw new Error('no authorization in progress');
      },
      discoveryState: () => (mode.kind === 'callback' ? (mode.pending.discovery ?? self.discovery) : self.discovery),
      saveDiscoveryState: (s) => {
        self.discovery = s;
        if (s.resourceMetadataUrl) self.resourceMetadataUrl ??= new URL(s.resourceMetadataUrl);
      },
      async invalidateCredentials(scope) {
        if (scope === 'all' || scope === 'tokens') {
          // A refused refresh token may only mean another instance rotated it first: adopt theirs.
          const stored = await self.stored();
          if (scope === 'tokens' && stored?.tokens.refresh_token && stored.tokens.refresh_token !== self.cached?.tokens.refresh_token) self.adopt(stored);
          else await self.dropTokens();
        }
        if ((scope === 'all' || scope === 'client') && !preregistered) await self.store.deletePrefix(keys.client(self.label));
        if (scope === 'all' || scope === 'discovery') self.discovery = undefined;
      },
    };
    if (!interactive) {
      provider.prepareTokenRequest = (scope?: string) => {
        const p = new URLSearchParams({ grant_type: 'client_credentials' });
        if (scope) p.set('scope', scope);
        return p;
      };
    }
    return provider;
  }
}
