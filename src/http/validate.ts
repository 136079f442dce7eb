import type { z } from 'zod';
import { InvalidRequestError } from '../errors/index.js';
import { exceedsDepth } from '../util/depth.js';

/** `tools[2].server_label` from ['tools', 2, 'server_label'] (OpenAI's param notation). */
export function paramPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

type Issue = z.core.$ZodIssue;

/**
 * A union's error names the union; the useful field is inside the branch the caller meant:
 * skip branches whose `type` did not match, prefer the fewest issues, then the deepest path.
 */
function resolveIssue(issue: Issue, base: PropertyKey[]): { issue: Issue; path: PropertyKey[] } {
  const here = [...base, ...(issue.path as PropertyKey[])];
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return { issue, path: here };
  let best: { issue: Issue; path: PropertyKey[]; n: number } | undefined;
  for (const branch of issue.errors) {
    const wrongType = branch.some((i) => i.code === 'invalid_value' && i.path.length === 1 && i.path[0] === 'type');
    if (wrongType && issue.errors.length > 1) continue;
    const r = resolveIssue(branch[0]!, here);
    if (!best || branch.length < best.n || (branch.length === best.n && r.path.length > best.path.length)) best = { ...r, n: branch.length };
  }
  return best ?? { issue, path: here };
}

/**
 * Nesting limits at the edge (issue 10 item 8). JSON.parse is iterative, but everything after
 * it (zod, JSON.stringify, canonical hashing) recurses: 5 000 levels overflowed the stack.
 * A body may nest MAX_BODY_DEPTH containers; `arguments` (object or JSON text) MAX_ARGUMENTS_DEPTH
 * (broker/arguments.ts).
 */
export const MAX_BODY_DEPTH = 100;

/** Parses input with a schema; the first issue becomes a 400 naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.infer<S> {
  if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidRequestError('invalid_json', 'The request body must be a JSON object.');
  }
  if (exceedsDepth(input, MAX_BODY_DEPTH)) {
    throw new InvalidRequestError('invalid_value', `The request body nests deeper than ${MAX_BODY_DEPTH} levels.`, { param: prefix || null });
  }
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const { issue, path: resolved } = resolveIssue(r.error.issues[0]!, []);
  let path = resolved;
  if (issue.code === 'unrecognized_keys') path = [...path, issue.keys[0]!];
  const param = paramPath(path, prefix) || null;
  const missing = issue.code === 'invalid_type' && valueAt(input, path) === undefined;
  if (missing) throw new InvalidRequestError('missing_required_parameter', `Missing required parameter: '${param}'.`, { param });
  if (issue.code === 'unrecognized_keys') throw new InvalidRequestError('invalid_value', `Unknown parameter: '${param}'.`, { param });
  const detail = issue.code === 'invalid_union' ? 'Invalid value' : issue.message;
  throw new InvalidRequestError('invalid_value', `Invalid value for '${param}': ${detail}.`, { param });
}
