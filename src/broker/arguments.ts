import { InvalidRequestError } from '../errors/index.js';
import { canonicalSha256 } from '../util/ids.js';
import { exceedsDepth } from '../util/depth.js';

export const MAX_ARGUMENTS_BYTES = 1024 * 1024;
/** Nesting limit of `arguments` (issue 10 item 8): deeper is a 400, never a stack overflow. */
export const MAX_ARGUMENTS_DEPTH = 64;

export interface ParsedArguments {
  value: Record<string, unknown>;
  /** JSON text, as items carry it. */
  text: string;
  /** RFC 8785 hash: computed on first use (only approvals need it). */
  readonly sha256: string;
}

/** `arguments`: JSON text or an object (≤ 1 MiB); absent means `{}`. */
export function parseArguments(raw: unknown, param = 'arguments'): ParsedArguments {
  let value: unknown = raw ?? {};
  if (typeof raw === 'string') {
    if (Buffer.byteLength(raw) > MAX_ARGUMENTS_BYTES) throw tooBig(param);
    try {
      value = raw.trim() === '' ? {} : JSON.parse(raw);
    } catch {
      throw new InvalidRequestError('invalid_value', `${param} is not valid JSON.`, { param });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRequestError('invalid_value', `${param} must be a JSON object.`, { param });
  }
  if (exceedsDepth(value, MAX_ARGUMENTS_DEPTH)) {
    throw new InvalidRequestError('invalid_value', `${param} nests deeper than ${MAX_ARGUMENTS_DEPTH} levels.`, { param });
  }
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text) > MAX_ARGUMENTS_BYTES) throw tooBig(param);
  let sha: string | undefined;
  return {
    value: value as Record<string, unknown>,
    text,
    get sha256() {
      return (sha ??= canonicalSha256(value));
    },
  };
}

const tooBig = (param: string) => new InvalidRequestError('invalid_value', `${param} is larger than 1 MiB.`, { param });
