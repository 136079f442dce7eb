import type { Tool } from '@modelcontextprotocol/client';

/**
 * SEP-2243 (2026-07-28 Streamable HTTP, "Schema Extension"): a tool's `x-mcp-header`
 * declarations and the `Mcp-Param-*` headers of one call, so every 2026-07-28 call stays on the
 * broker's own exchange (callTool2026) instead of Client.callTool — whose answer handling
 * differs (it drops a malformed error and waits out the timeout) and whose mirroring reads a
 * listing cache the broker never fills. The same rules as the SDK Client's scan and encoding
 * (`scanXMcpHeaderDeclarations` / `buildMcpParamHeaders`, not exported): a parity table against
 * Client.callTool's own headers on the wire is in test/undiciTransport.test.ts.
 */

export interface HeaderDeclaration {
  /** Property names from the schema root down to the declared argument. */
  path: readonly string[];
  /** The `x-mcp-header` value: the header is `Mcp-Param-{name}`. */
  name: string;
}

const KEY = 'x-mcp-header';
/** RFC 9110 §5.1 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PRIMITIVE = new Set(['string', 'integer', 'boolean']);
/** Subschemas off the `properties` chain: a declaration under any of them makes the definition invalid. */
const OFF_CHAIN = ['items', 'prefixItems', 'contains', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'propertyNames', 'patternProperties', 'dependentSchemas', 'oneOf', 'anyOf', 'allOf', 'not', 'if', 'then', 'else', '$defs', 'definitions'];
/** Of those, the ones whose value is a name → subschema map. */
const MAPS = new Set(['patternProperties', 'dependentSchemas', '$defs', 'definitions']);
/** Against a hostile listing's stack depth only: the SDK's scan has no limit (and overflows in the thousands). */
const MAX_DEPTH = 512;

/**
 * The tool's declarations: empty when it declares none, undefined when its declarations are
 * invalid (the SDK then mirrors nothing either, and the server decides).
 */
export function headerDeclarations(inputSchema: unknown): HeaderDeclaration[] | undefined {
  const out: HeaderDeclaration[] = [];
  const seen = new Set<string>();
  const visit = (node: unknown, path: string[], onChain: boolean, depth: number): boolean => {
    if (node === null || typeof node !== 'object') return true;
    if (depth > MAX_DEPTH) return false;
    const schema = node as Record<string, unknown>;
    if (Object.hasOwn(schema, KEY)) {
      const name = schema[KEY];
      if (!onChain || path.length === 0 || typeof name !== 'string' || !TOKEN.test(name)) return false;
      if (typeof schema.type !== 'string' || !PRIMITIVE.has(schema.type)) return false;
      const lower = name.toLowerCase();
      if (seen.has(lower)) return false;
      seen.add(lower);
      out.push({ path, name });
    }
    const props = schema.properties;
    if (props !== null && typeof props === 'object') {
      for (const [k, child] of Object.entries(props)) if (!visit(child, [...path, k], onChain, depth + 1)) return false;
    }
    for (const k of OFF_CHAIN) {
      const sub = schema[k];
      if (sub === undefined) continue;
      const branches = Array.isArray(sub) ? sub : sub !== null && typeof sub === 'object' && MAPS.has(k) ? Object.values(sub) : [sub];
      for (const b of branches) if (!visit(b, [...path, `<${k}>`], false, depth + 1)) return false;
    }
    return true;
  };
  return visit(inputSchema, [], true, 0) ? out : undefined;
}

const B64_START = '=?base64?';
const B64_END = '?=';

/** A value that is not a plain ASCII field value (or looks like the Base64 form) goes as `=?base64?…?=` of its UTF-8. */
function encode(s: string): string {
  let plain = s.length > 0 && s === s.trim() && !(s.startsWith(B64_START) && s.endsWith(B64_END));
  for (let i = 0; plain && i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(c === 9 || (c >= 32 && c <= 126))) plain = false;
  }
  return plain ? s : `${B64_START}${Buffer.from(s, 'utf8').toString('base64')}${B64_END}`;
}

function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isFinite(v) && (!Number.isInteger(v) || Number.isSafeInteger(v))) return String(v);
  return undefined;
}

/** The call's `Mcp-Param-*` headers: an argument absent, null or not a primitive has none. */
export function paramHeaders(declarations: readonly HeaderDeclaration[], args: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of declarations) {
    let v: unknown = args;
    for (const k of d.path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    const text = v === undefined || v === null ? undefined : asText(v);
    if (text !== undefined) out[`Mcp-Param-${d.name}`] = encode(text);
  }
  return out;
}

/** One header-declaring tool: its declarations (what callTool2026 mirrors) and, for Client.callTool, its definition. */
export interface Mirrored {
  declarations: HeaderDeclaration[];
  /** Without outputSchema: with one the Client would also check this tool's results (no other call here is). */
  tool: Tool;
}

/** The tools of a listing that declare valid SEP-2243 headers (invalid declarations: none mirrored, as the SDK does). */
export function mirroredOf(tools: readonly Tool[]): Map<string, Mirrored> {
  const m = new Map<string, Mirrored>();
  for (const t of tools) {
    const declarations = headerDeclarations(t.inputSchema);
    if (!declarations?.length) continue;
    const { outputSchema: _checked, ...tool } = t;
    m.set(t.name, { declarations, tool: tool as Tool });
  }
  return m;
}
