import { LRUCache } from 'lru-cache';
import type { Tool } from '@modelcontextprotocol/client';
import type { ServerRecord } from '../config/serverRecord.js';
import type { RegistryStore } from '../registry/store.js';
import { classifyUpstreamError, MAX_REASON_CHARS, stripQueries } from '../mcp/failure.js';
import type { Upstreams, UpstreamTarget } from '../mcp/upstreams.js';
import { headerDeclarations } from '../mcp/paramHeaders.js';
import type { Era } from '../mcp/session.js';
import { canonicalSha256 } from '../util/ids.js';
import { mergeSecrets, scrub, scrubJson, scrubWith, type Secrets } from '../util/scrub.js';

export interface CatalogTool {
  tool: Tool;
  /** SHA-256 of the canonical definition: what pins and approvals bind to. */
  hash: string;
  readOnly: boolean;
  /** Differs from the admin's pin: withheld and refused until an admin refresh. */
  changed: boolean;
  /** Needs a client feature the broker does not offer: withheld, refused, and why. */
  unsupported?: string;
}

export interface Listing {
  tools: CatalogTool[];
  fetchedAt: number;
  /** Size of the definitions as JSON (what the cache's size bound counts). */
  bytes: number;
  /** The server's `ttlMs` (SEP-2549), when it sent one. */
  ttlMs?: number;
}

export interface CatalogServer extends UpstreamTarget {
  server_label: string;
  record: ServerRecord | undefined;
  serverKey: string;
  cacheTtlMs: number;
  /** Credential values of this server and caller, scrubbed from status texts. */
  secrets?: readonly string[];
}

export interface DefinitionChanged {
  server_label: string;
  name: string;
  old_sha256: string;
  new_sha256: string;
}

export interface ServerStatus {
  tools_cached: boolean;
  cached_at: number | null;
  last_error: string | null;
  transport_in_use: string | null;
  protocol_in_use: string | null;
  changed_tools: string[];
  unsupported_tools: Array<{ name: string; reason: string }>;
}

/**
 * Why a tool cannot be offered through the broker, which declares no client capabilities
 * (no sampling, elicitation, roots) and runs no tasks; undefined when it can.
 */
export function unsupportedReason(t: Tool, era?: Era): string | undefined {
  // SEP-2243: a 2026-07-28 client excludes a tool whose x-mcp-header declarations are invalid.
  if (era === 'modern' && headerDeclarations(t.inputSchema) === undefined) {
    return 'declares invalid x-mcp-header arguments (SEP-2243: a primitive-typed property reached through properties only, a token name, unique regardless of case)';
  }
  const exec = (t as { execution?: { taskSupport?: unknown } }).execution;
  if (exec?.taskSupport === 'required') return 'requires task-based execution (execution.taskSupport "required"), which the broker does not offer';
  const meta = (t as { _meta?: Record<string, unknown> })._meta;
  const needs = meta?.['io.modelcontextprotocol/requiredClientCapabilities'] ?? meta?.requiredClientCapabilities;
  if (needs && typeof needs === 'object') {
    const names = Object.keys(needs).filter((k) => ['sampling', 'elicitation', 'roots', 'tasks'].includes(k));
    if (names.length) return `requires client capabilities the broker does not offer: ${names.join(', ')}`;
  }
  return undefined;
}

/** A failure as admins see it in status.last_error: scrubbed, no query string, ≤ 500 chars. */
export function statusText(err: unknown, secrets: Secrets = []): string {
  const f = classifyUpstreamError(err, secrets);
  const raw = stripQueries(f.kind === 'protocol' ? `MCP error ${f.code}: ${f.message}` : f.message);
  const text = scrubWith(raw, secrets);
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 1)}…` : text;
}

export function toolHash(t: Tool): string {
  return canonicalSha256({
    name: t.name,
    description: t.description ?? null,
    inputSchema: t.inputSchema ?? null,
    outputSchema: t.outputSchema ?? null,
    annotations: t.annotations ?? null,
  });
}

interface Ctx {
  server: CatalogServer;
  signal?: AbortSignal;
}

interface InFlight {
  promise: Promise<Listing>;
  /** A list_changed, PUT or refresh arrived meanwhile: answer the callers, keep nothing. */
  stale: boolean;
  /** The signal of the caller who started it (the upstream listing is aborted with it). */
  signal?: AbortSignal;
}

interface Status {
  cached_at: number | null;
  last_error: string | null;
  changed: Set<string>;
  unsupported: Map<string, string>;
}

export interface CatalogOptions {
  /** Entries at most. */
  max?: number;
  /** Bytes of tool definitions (as JSON) the cache holds at most, over every entry. */
  maxBytes?: number;
  /** The broker-wide scrubber (every credential value it knows), applied to status texts. */
  scrub?: (text: string) => string;
}

/**
 * Tool listings cached per (server, credential set) with the server's TTL (shortened by the
 * server's `ttlMs`); concurrent misses share one upstream listing, which a change
 * notification never aborts. Registered servers' tools are checked against pins. The
 * cache is bounded by entries and by total size.
 */
export class Catalog {
  private readonly cache: LRUCache<string, Listing>;
  private readonly inflight = new Map<string, InFlight>();
  // Keyed by server, and inline servers are caller-chosen: bounded like the listings.
  private readonly status = new LRUCache<string, Status>({ max: 10_000 });
  private readonly notified = new LRUCache<string, true>({ max: 10_000 });
  private readonly scrubText: (text: string) => string;

  constructor(
    private readonly upstreams: Upstreams,
    private readonly registry: RegistryStore,
    private readonly onDefinitionChanged: (e: DefinitionChanged) => void,
    private readonly onPinWriteFailed: (label: string, err: Error) => void = () => undefined,
    o: CatalogOptions | number = {},
  ) {
    const opts: CatalogOptions = typeof o === 'number' ? { max: o } : o;
    this.scrubText = opts.scrub ?? ((t) => t);
    this.cache = new LRUCache<string, Listing>({
      max: opts.max ?? 10_000,
      maxSize: opts.maxBytes ?? 128 * 1024 * 1024,
      sizeCalculation: (l) => Math.max(1, l.bytes),
      ttl: 300_000,
    });
  }

  async get(server: CatalogServer, o: { signal?: AbortSignal; force?: boolean } = {}): Promise<{ listing: Listing; cache: 'hit' | 'miss' }> {
    const key = server.sessionKey;
    if (!o.force) {
      const hit = this.cache.get(key);
      if (hit) return { listing: hit, cache: 'hit' };
      const joined = this.inflight.get(key);
      if (joined) {
        try {
          return { listing: await joined.promise, cache: 'miss' };
        } catch (err) {
          // The caller who started it went away (its abort ended the listing): not our failure.
          if (!joined.signal?.aborted || o.signal?.aborted) throw err;
        }
      }
    }
    const entry: InFlight = { stale: false, signal: o.signal, promise: undefined as unknown as Promise<Listing> };
    const previous = this.inflight.get(key);
    if (previous) previous.stale = true;
    entry.promise = this.load({ server, signal: o.signal }).then(
      (listing) => {
        if (this.inflight.get(key) === entry) this.inflight.delete(key);
        const ttl = Math.min(Math.max(0, server.cacheTtlMs), listing.ttlMs ?? Infinity);
        // ttlMs 0 means "immediately stale": answer, keep nothing.
        if (!entry.stale && ttl >= 1) this.cache.set(key, listing, { ttl });
        return listing;
      },
      (err: unknown) => {
        if (this.inflight.get(key) === entry) this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, entry);
    return { listing: await entry.promise, cache: 'miss' };
  }

  /** `notifications/tools/list_changed` on one session. A listing in flight completes, stale. */
  invalidateSession(sessionKey: string): void {
    this.cache.delete(sessionKey);
    const f = this.inflight.get(sessionKey);
    if (f) f.stale = true;
  }

  /** PUT, DELETE, refresh: every credential set of the server. */
  invalidateServer(serverKey: string): void {
    for (const k of [...this.cache.keys()]) if (k.startsWith(`${serverKey}|`)) this.cache.delete(k);
    for (const [k, f] of this.inflight) if (k.startsWith(`${serverKey}|`)) f.stale = true;
    this.status.delete(serverKey);
    for (const n of [...this.notified.keys()]) if (n.startsWith(`${serverKey}|`)) this.notified.delete(n);
  }

  /** Admin refresh: a fresh listing, and the current definitions become the pins. */
  async refresh(server: CatalogServer): Promise<Listing> {
    this.invalidateServer(server.serverKey);
    // A dead session is not reused: a refused session is set up anew inside the listing.
    // Emptied pins: the fresh listing pins every definition it sees.
    if (server.record) await this.registry.setPins(server.server_label, {});
    return (await this.get(server, { force: true })).listing;
  }

  serverStatus(server: { serverKey: string; sessionKey: string }, transport: string | null): ServerStatus {
    const s = this.status.get(server.serverKey);
    const session = server.sessionKey ? this.upstreams.pool.peek(server.sessionKey) : undefined;
    return {
      tools_cached: [...this.cache.keys()].some((k) => k.startsWith(`${server.serverKey}|`)),
      cached_at: s?.cached_at ?? null,
      last_error: s?.last_error ?? null,
      transport_in_use: transport,
      protocol_in_use: session?.protocolInUse ?? null,
      changed_tools: [...(s?.changed ?? [])].sort(),
      unsupported_tools: [...(s?.unsupported ?? new Map<string, string>())].map(([name, reason]) => ({ name, reason })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    };
  }

  private statusOf(serverKey: string): Status {
    let s = this.status.get(serverKey);
    if (!s) this.status.set(serverKey, (s = { cached_at: null, last_error: null, changed: new Set(), unsupported: new Map() }));
    return s;
  }

  private async load({ server, signal }: Ctx): Promise<Listing> {
    const st = this.statusOf(server.serverKey);
    // This credential set's values and, with upstream OAuth, the tokens sent (one a server may echo, in an answer or an error).
    const secretsNow = () => mergeSecrets(server.secrets ?? [], server.record?.oauth ? this.upstreams.addedSecrets(server) : []);
    let raw;
    try {
      raw = await this.upstreams.listTools(server, signal);
    } catch (err) {
      // This server's secrets and every one the broker knows, scrubbed before the text is clipped.
      const secrets = secretsNow();
      st.last_error = statusText(err, (t) => this.scrubText(scrub(t, secrets)));
      throw err;
    }
    st.unsupported.clear();
    const secrets = secretsNow();
    const tools: CatalogTool[] = raw.tools.map((upstream) => {
      // A server may echo the credentials it was sent into its definitions: what is kept (and
      // shown) is scrubbed for this credential set; the pin is of what the server sent.
      const tool = secrets.length ? scrubJson(upstream, secrets) : upstream;
      const unsupported = unsupportedReason(tool, raw.era);
      if (unsupported) st.unsupported.set(tool.name, unsupported);
      return { tool, hash: toolHash(upstream), readOnly: tool.annotations?.readOnlyHint === true, changed: false, ...(unsupported ? { unsupported } : {}) };
    });
    if (server.record) await this.checkPins(server, tools, st.changed);
    st.cached_at = Math.floor(Date.now() / 1000);
    st.last_error = null;
    return { tools, fetchedAt: Date.now(), bytes: raw.bytes, ttlMs: raw.ttlMs };
  }

  /** Rug-pull defence: a definition that differs from its pin is withheld until refreshed. */
  private async checkPins(server: CatalogServer, tools: CatalogTool[], changed: Set<string>): Promise<void> {
    const current = await this.registry.get(server.server_label);
    const pins = current?.pinned_tools;
    const next: Record<string, string> = { ...(pins ?? {}) };
    let grew = !pins;
    changed.clear();
    for (const t of tools) {
      const pin = pins?.[t.tool.name];
      if (pin === undefined) {
        next[t.tool.name] = t.hash;
        grew = true;
      } else if (pin !== t.hash) {
        t.changed = true;
        changed.add(t.tool.name);
        const once = `${server.serverKey}|${t.tool.name}|${t.hash}`;
        if (!this.notified.has(once)) {
          this.notified.set(once, true);
          this.onDefinitionChanged({ server_label: server.server_label, name: t.tool.name, old_sha256: pin, new_sha256: t.hash });
        }
      }
    }
    // A pin that cannot be written now (shared store down) is written at a later listing;
    // serving the listing does not wait for it.
    if (grew && current) await this.registry.setPins(server.server_label, next).catch((e: Error) => this.onPinWriteFailed(server.server_label, e));
  }
}
