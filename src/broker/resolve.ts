import type { ApprovalConfig, ServerRecord } from '../config/serverRecord.js';
import { expandRefs, MissingEnvVarError } from '../config/expand.js';
import { authorizationProblem, credentialValueProblem, isValidHeaderValue } from '../config/headers.js';
import { InvalidRequestError, ExternalConnectorError, PermissionError } from '../errors/index.js';
import type { CallerKey } from '../keys/caller.js';
import type { Cidr, EgressPolicy } from '../mcp/egress.js';
import { checkCallerUrl } from '../mcp/callerUrl.js';
import { callerLayer, grantFor, registeredLayers, type PolicyLayer } from '../policy/policy.js';
import type { RegistryStore } from '../registry/store.js';
import { registeredServerKey } from '../registry/store.js';
import { unknownLabel } from '../registry/fileStore.js';
import { canonicalSha256 } from '../util/ids.js';
import { secretsOfHeaders } from '../util/scrub.js';
import type { McpToolParam } from './toolParam.js';

/** Everything the broker needs to talk to one server on behalf of one caller. */
export interface ResolvedServer {
  server_label: string;
  /** Where the caller sent this tool: `tool` or `tools[2]`, for error params. */
  at: string;
  record: ServerRecord | undefined;
  url: URL;
  origin: string;
  /** `reg:<label>` or `inline:<url>`: what PUT/DELETE/list_changed invalidate. */
  serverKey: string;
  /** serverKey + credential-set hash: sessions and listings are never shared across credentials. */
  sessionKey: string;
  headers: Record<string, string>;
  transport: 'auto' | 'streamable_http' | 'sse';
  protocol: 'auto' | '2026-07-28' | '2025-11-25';
  egress: EgressPolicy;
  callTimeoutMs: number;
  cacheTtlMs: number;
  /** Record, the key's grant, caller: a tool must pass every layer (SPEC §3, §11). */
  layers: PolicyLayer[];
  approval: ApprovalConfig;
  /** The calling key's bound on its pending approvals; undefined: the broker-wide one. */
  maxPendingApprovals: number | undefined;
  server_description: string | null;
  /** Credential values, scrubbed from every message that leaves the broker. */
  secrets: string[];
  /** Whose call this is: its grants are looked at again before each call (SPEC §11). */
  caller: CallerKey;
}

export interface ResolveSettings {
  allowInline: boolean;
  allowHttp: boolean;
  allowCidrs: readonly Cidr[];
  env: NodeJS.ProcessEnv;
}

/** Merge caller headers under the record's: a name the record sets keeps the record's value. */
function mergeHeaders(record: Record<string, string>, caller: Record<string, string>): Record<string, string> {
  const taken = new Set(Object.keys(record).map((k) => k.toLowerCase()));
  const out = { ...record };
  for (const [k, v] of Object.entries(caller)) {
    if (taken.has(k.toLowerCase())) continue;
    taken.add(k.toLowerCase());
    out[k] = v;
  }
  return out;
}

function credentialHash(headers: Record<string, string>): string {
  const entries = Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]).sort(([a], [b]) => (a! < b! ? -1 : 1));
  return canonicalSha256(entries).slice(0, 32);
}

/** A record header whose expanded value fetch would refuse (the environment changed since the write). */
export class InvalidExpandedHeaderError extends Error {}

export function expandRecordHeaders(record: ServerRecord, env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record.headers).map(([k, v]) => {
      const value = expandRefs(v, env, `headers.${k} of server '${record.server_label}'`);
      if (!isValidHeaderValue(value)) throw new InvalidExpandedHeaderError(`headers.${k} of server '${record.server_label}' expands to a value with control characters`);
      return [k, value];
    }),
  );
}

/** Caller credentials fetch would refuse or that are too short to scrub: 400 before any I/O. */
function checkCallerCredentials(param: McpToolParam, at: string): void {
  for (const [k, v] of Object.entries(param.headers ?? {})) {
    const problem = credentialValueProblem(k, v);
    if (problem) throw new InvalidRequestError('invalid_value', `Invalid value for '${at}.headers.${k}': ${problem}.`, { param: `${at}.headers.${k}` });
  }
  const problem = param.authorization ? authorizationProblem(param.authorization) : undefined;
  if (problem) throw new InvalidRequestError('invalid_value', `Invalid value for '${at}.authorization': ${problem}.`, { param: `${at}.authorization` });
}

/**
 * Resolves a tool param for one caller. A registered label the caller's key is not granted
 * resolves exactly as a label that does not exist (same errors, same work), so a key never
 * learns that another tenant's server is there.
 */
export async function resolveServer(
  param: McpToolParam,
  at: string,
  registry: RegistryStore,
  s: ResolveSettings,
  caller: CallerKey,
): Promise<ResolvedServer> {
  if (param.connector_id != null || param.tunnel_id != null) {
    const field = param.connector_id != null ? 'connector_id' : 'tunnel_id';
    throw new InvalidRequestError('invalid_value', `${field} is not supported here: register the server and use its server_label.`, {
      param: `${at}.${field}`,
    });
  }
  checkCallerCredentials(param, at);
  const callerHeaders: Record<string, string> = { ...(param.headers ?? {}) };
  if (param.authorization) {
    // The `authorization` field is the caller's explicit token: it replaces a header of that name.
    for (const k of Object.keys(callerHeaders)) if (k.toLowerCase() === 'authorization') delete callerHeaders[k];
    callerHeaders['Authorization'] = `Bearer ${param.authorization}`;
  }
  const found = await registry.get(param.server_label);
  const grant = found ? grantFor(caller.grants, found.server_label) : undefined;
  const record = grant === undefined ? undefined : found;
  const maxPendingApprovals = caller.maxPendingApprovals ?? undefined;

  if (record) {
    if (param.server_url !== undefined) {
      throw new InvalidRequestError(
        'server_label_conflict',
        `server_label '${param.server_label}' is registered; do not send a server_url with it.`,
        { param: `${at}.server_url` },
      );
    }
    let recordHeaders: Record<string, string>;
    try {
      recordHeaders = expandRecordHeaders(record, s.env);
    } catch (e) {
      if (!(e instanceof MissingEnvVarError) && !(e instanceof InvalidExpandedHeaderError)) throw e;
      throw new ExternalConnectorError('http_error', `Error retrieving tool list from MCP server: '${record.server_label}'. ${e.message}.`, {
        param: 'tools',
      });
    }
    const headers = mergeHeaders(recordHeaders, callerHeaders);
    const serverKey = registeredServerKey(record.server_label);
    const url = new URL(record.server_url);
    return {
      server_label: record.server_label,
      at,
      record,
      url,
      origin: url.origin,
      serverKey,
      sessionKey: `${serverKey}|${credentialHash(headers)}`,
      headers,
      transport: record.transport,
      protocol: record.protocol ?? 'auto',
      egress: { allowPrivate: record.allow_private_network, allowCidrs: [] },
      callTimeoutMs: record.call_timeout_ms,
      cacheTtlMs: record.tool_cache_ttl_s * 1000,
      layers: registeredLayers({ allowed_tools: record.allowed_tools, require_approval: record.require_approval }, grant ?? null, callerLayer(param, true)),
      approval: record.approval,
      maxPendingApprovals,
      server_description: param.server_description ?? record.server_description ?? null,
      secrets: secretsOfHeaders(headers),
      caller,
    };
  }

  if (param.server_url === undefined) throw unknownLabel(param.server_label, `${at}.server_label`);
  if (!s.allowInline) {
    throw new InvalidRequestError('inline_servers_disabled', 'Per-request server_url tools are disabled on this broker; use a registered server_label.', {
      param: `${at}.server_url`,
    });
  }
  if (!caller.allowInline) {
    throw new PermissionError('permission_denied', 'This API key may not use per-request server_url tools; use a server_label it is granted.', {
      param: `${at}.server_url`,
    });
  }
  const url = checkCallerUrl(param.server_url, s.allowHttp, `${at}.server_url`);
  const serverKey = `inline:${url.href}`;
  return {
    server_label: param.server_label,
    at,
    record: undefined,
    url,
    origin: url.origin,
    serverKey,
    sessionKey: `${serverKey}|${credentialHash(callerHeaders)}`,
    headers: callerHeaders,
    transport: 'auto',
    protocol: 'auto',
    egress: { allowPrivate: false, allowCidrs: s.allowCidrs },
    callTimeoutMs: 30000,
    cacheTtlMs: 300_000,
    layers: [callerLayer(param, false)],
    approval: { mode: 'caller', wait_ms: 0 },
    maxPendingApprovals,
    server_description: param.server_description ?? null,
    secrets: secretsOfHeaders(callerHeaders),
    caller,
  };
}
