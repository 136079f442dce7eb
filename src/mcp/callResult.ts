import { SdkError, SdkErrorCode, specTypeSchemas, type CallToolResult } from '@modelcontextprotocol/client';

/**
 * A 2025-era tools/call answer as the SDK Client returns it, for the calls the broker's
 * transport answers itself (UndiciTransport.rpc): `resultType` dropped; a contentless result
 * gains `content: []` unless it carries another result family's keys; `structuredContent` an
 * object (the 2025 wire schema); the rest checked by the SDK's CallToolResult schema. Anything
 * invalid is SdkError InvalidResult, as from the Client. Parity with Client.callTool is a table
 * in test/undiciTransport.test.ts.
 */

/** Families a tools/call answer may not borrow (the SDK's 2025 wire rule): with one of these, `content` is required. */
const FOREIGN_RESULT_KEYS = ['task', 'inputRequests', 'requestState'];

const invalid = (why: string) => new SdkError(SdkErrorCode.InvalidResult, `Invalid result for tools/call: ${why}`);

export function callToolResult(raw: unknown): CallToolResult {
  let value = raw;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const { resultType: _dropped, ...rest } = value as Record<string, unknown>;
    if (rest.content === undefined) {
      const foreign = FOREIGN_RESULT_KEYS.find((k) => k in rest);
      if (foreign) throw invalid(`content is required when the body carries '${foreign}'`);
      rest.content = [];
    }
    value = structuredAs2025(rest);
  }
  if (plainTextResult(value)) return value;
  const r = specTypeSchemas.CallToolResult['~standard'].validate(value);
  if (r instanceof Promise) throw new TypeError('CallToolResult validation is synchronous');
  if (r.issues) throw invalid(r.issues.map((i) => i.message).join('; '));
  return r.value as CallToolResult;
}

/**
 * `structuredContent` as the Client's 2025-era wire schema takes it — a record (an object, not
 * an array or null), its own `__proto__` key not kept — where the exported schema (the SDK's
 * wider neutral one) takes any value as it is.
 */
function structuredAs2025(value: Record<string, unknown>): Record<string, unknown> {
  const sc = value.structuredContent;
  if (sc === undefined) return value;
  if (sc === null || typeof sc !== 'object' || Array.isArray(sc)) throw invalid('structuredContent must be an object');
  if (!Object.hasOwn(sc, '__proto__')) return value;
  const { ['__proto__']: _drop, ...rest } = sc as Record<string, unknown>;
  return { ...value, structuredContent: rest };
}

const RESULT_KEYS = new Set(['content', 'structuredContent', 'isError']);

/**
 * The common answer — text blocks only (`{type:'text', text}`), optional `structuredContent`
 * object and `isError` boolean, nothing else — which the schema returns as it is: checked
 * directly. The schema's union of every content block type cost ≈ 70 µs per call in a turn's
 * CPU profile (2026-12-02); this check, under 1 µs. Anything else goes to the schema.
 */
function plainTextResult(v: unknown): v is CallToolResult {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  for (const k in r) if (!RESULT_KEYS.has(k)) return false;
  if (r.isError !== undefined && typeof r.isError !== 'boolean') return false;
  return textBlocksOnly(r.content);
}

const RESULT_KEYS_2026 = new Set(['resultType', 'content', 'structuredContent', 'isError', '_meta']);
const SERVER_INFO_KEY = 'io.modelcontextprotocol/serverInfo';
const SERVER_INFO_STRINGS = new Set(['name', 'version', 'title', 'description', 'websiteUrl']);

/**
 * A 2026-07-28 tools/call answer in its common form — `resultType: "complete"`, text blocks
 * only, `structuredContent` any value and `isError` a boolean if present, `_meta` an object
 * whose serverInfo (if any) is plain strings — as the Client returns it after its wire codec
 * decoded and validated it: `resultType` lifted off, nothing else changed (for these answers
 * the schemas return their input). Undefined for anything else, which goes to the codec itself
 * (modernCall.ts). Parity with Client.callTool is a table in test/undiciTransport.test.ts.
 */
export function plainResult2026(raw: unknown): CallToolResult | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  if (r.resultType !== 'complete') return undefined;
  for (const k in r) if (!RESULT_KEYS_2026.has(k)) return undefined;
  if (r.isError !== undefined && typeof r.isError !== 'boolean') return undefined;
  if (r._meta !== undefined && !plainMeta(r._meta)) return undefined;
  const { resultType: _lifted, ...result } = r;
  return textBlocksOnly(result.content) ? (result as CallToolResult) : undefined;
}

function textBlocksOnly(content: unknown): boolean {
  if (!Array.isArray(content)) return false;
  for (const b of content as unknown[]) {
    if (b === null || typeof b !== 'object') return false;
    const block = b as Record<string, unknown>;
    if (block.type !== 'text' || typeof block.text !== 'string') return false;
    for (const k in block) if (k !== 'type' && k !== 'text') return false;
  }
  return true;
}

/** A loose `_meta` object the schema keeps as it is: no own `__proto__` key, serverInfo (if any) plain strings with name and version. */
function plainMeta(meta: unknown): boolean {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta) || Object.hasOwn(meta, '__proto__')) return false;
  const info = (meta as Record<string, unknown>)[SERVER_INFO_KEY];
  if (info === undefined) return true;
  if (info === null || typeof info !== 'object' || Array.isArray(info)) return false;
  const i = info as Record<string, unknown>;
  if (typeof i.name !== 'string' || typeof i.version !== 'string') return false;
  for (const k in i) if (!SERVER_INFO_STRINGS.has(k) || typeof i[k] !== 'string') return false;
  return true;
}
