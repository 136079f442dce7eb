import type { z } from 'zod';
import { InvalidRequestError } from '../errors/index.js';

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

/** Parses input with a schema; the first issue becomes a 400 naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.infer<S> {
  if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidRequestError('invalid_json', 'The request body must be a JSON object.');
  }
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let path = issue.path as PropertyKey[];
  if (issue.code === 'unrecognized_keys') path = [...path, issue.keys[0]!];
  const param = paramPath(path, prefix) || null;
  const missing = issue.code === 'invalid_type' && valueAt(input, issue.path as PropertyKey[]) === undefined;
  if (missing) throw new InvalidRequestError('missing_required_parameter', `Missing required parameter: '${param}'.`, { param });
  if (issue.code === 'unrecognized_keys') throw new InvalidRequestError('invalid_value', `Unknown parameter: '${param}'.`, { param });
  const detail = issue.code === 'invalid_union' ? 'Invalid value' : issue.message;
  throw new InvalidRequestError('invalid_value', `Invalid value for '${param}': ${detail}.`, { param });
}
