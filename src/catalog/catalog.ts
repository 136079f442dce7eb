import { LRUCache } from 'lru-cache';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ServerRecord } from '../config/serverRecord.js';
import type { RegistryStore } from '../registry/store.js';
import type { Upstreams, UpstreamTarget } from '../mcp/upstreams.js';
import { canonicalSha256 } from '../util/ids.js';

export interface CatalogTool {
  tool: Tool;
  /** SHA-256 of the canonical definition: what pins and approvals bind to. */
  hash: string;
  readOnly: boolean;
  /** Differs from the admin's pin: withheld and refused until an admin refresh. */
  changed: boolean;
}

export interface Listing {
  tools: CatalogTool[];
  fetchedAt: number;
}

export interface CatalogServer extends UpstreamTarget {
  server_label: string;
  record: ServerRecord | undefined;
  serverKey: string;
  cacheTtlMs: number;
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
  changed_tools: string[];
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

/**
 * Tool listings cached per (server, credential set) with the server's TTL; concurrent
 * misses share one upstream tools/list. Registered servers' tools are checked against pins.
 */
export class Catalog {
  private readonly cache: LRUCache<string, Listing, Ctx>;
  // Keyed by server, and inline servers are caller-chosen: bounded like the listings.
  private readonly status = new LRUCache<string, { cached_at: number | null; last_error: string | null; changed: Set<string> }>({ max: 10_000 });
  private readonly notified = new LRUCache<string, true>({ max: 10_000 });

  constructor(
    private readonly upstreams: Upstreams,
    private readonly registry: RegistryStore,
    private readonly onDefinitionChanged: (e: DefinitionChanged) => void,
    private readonly onPinWriteFailed: (label: string, err: Error) => void = () => undefined,
    max = 10_000,
  ) {
    this.cache = new LRUCache<string, Listing, Ctx>({
      max,
      ttl: 300_000,
      fetchMethod: (_key, _stale, { context }) => this.load(context),
    });
  }

  async get(server: CatalogServer, o: { signal?: AbortSignal; force?: boolean } = {}): Promise<{ listing: Listing; cache: 'hit' | 'miss' }> {
    for (let attempt = 0; ; attempt++) {
      const st: LRUCache.Status<string, Listing, Ctx> = {};
      const listing = await this.cache.fetch(server.sessionKey, {
        ttl: Math.max(1, server.cacheTtlMs),
        context: { server, signal: o.signal },
        forceRefresh: o.force,
        status: st,
      });
      // An entry invalidated mid-fetch resolves to undefined: fetch it again once.
      if (listing) return { listing, cache: st.fetch === 'hit' ? 'hit' : 'miss' };
      if (attempt > 0) throw new Error('tool listing was invalidated while it was fetched');
    }
  }

  /** `notifications/tools/list_changed` on one session. */
  invalidateSession(sessionKey: string): void {
    this.cache.delete(sessionKey);
  }

  /** PUT, DELETE, refresh: every credential set of the server. */
  invalidateServer(serverKey: string): void {
    for (const k of [...this.cache.keys()]) if (k.startsWith(`${serverKey}|`)) this.cache.delete(k);
    this.status.delete(serverKey);
    for (const n of [...this.notified.keys()]) if (n.startsWith(`${serverKey}|`)) this.notified.delete(n);
  }

  /** Admin refresh: a fresh listing, and the current definitions become the pins. */
  async refresh(server: CatalogServer): Promise<Listing> {
    this.invalidateServer(server.serverKey);
    // Emptied pins: the fresh listing pins every definition it sees.
    if (server.record) await this.registry.setPins(server.server_label, {});
    return (await this.get(server, { force: true })).listing;
  }

  serverStatus(server: { serverKey: string; sessionKey: string }, transport: string | null): ServerStatus {
    const s = this.status.get(server.serverKey);
    return {
      tools_cached: [...this.cache.keys()].some((k) => k.startsWith(`${server.serverKey}|`)),
      cached_at: s?.cached_at ?? null,
      last_error: s?.last_error ?? null,
      transport_in_use: transport,
      changed_tools: [...(s?.changed ?? [])].sort(),
    };
  }

  private statusOf(serverKey: string) {
    let s = this.status.get(serverKey);
    if (!s) this.status.set(serverKey, (s = { cached_at: null, last_error: null, changed: new Set() }));
    return s;
  }

  private async load({ server, signal }: Ctx): Promise<Listing> {
    const st = this.statusOf(server.serverKey);
    let raw: Tool[];
    try {
      raw = await this.upstreams.listTools(server, signal);
    } catch (err) {
      st.last_error = err instanceof Error ? err.message.slice(0, 300) : String(err);
      throw err;
    }
    const tools = raw.map((tool) => ({ tool, hash: toolHash(tool), readOnly: tool.annotations?.readOnlyHint === true, changed: false }));
    if (server.record) await this.checkPins(server, tools, st.changed);
    st.cached_at = Math.floor(Date.now() / 1000);
    st.last_error = null;
    return { tools, fetchedAt: Date.now() };
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
