/**
 * `${NAME}` references in admin records, expanded from the environment when used. One
 * error for a name that is not set and a name `BROKER_EXPAND_ENV` does not allow, so an
 * admin cannot learn which variables exist (no existence oracle).
 */
export class MissingEnvVarError extends Error {
  constructor(readonly variable: string, where: string) {
    super(`environment variable ${variable} referenced by ${where} is not set or not allowed by BROKER_EXPAND_ENV`);
  }
}

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The broker's own configuration: never expandable unless BROKER_EXPAND_ENV names it. */
const OWN = ['BROKER_*', 'UPSTREAM_*', 'APPROVAL_*', 'OTEL_*'];

const matches = (name: string, pattern: string) => (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern);

function parseAllow(allow: string | undefined): (name: string) => boolean {
  const patterns = (allow ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (patterns.length === 0) return (name) => !OWN.some((p) => matches(name, p));
  return (name) => patterns.some((p) => matches(name, p));
}

/**
 * May `${name}` expand? `allow` is BROKER_EXPAND_ENV: comma-separated names, `*` as a
 * trailing wildcard (`CRM_*,GITHUB_TOKEN`). Unset (or empty): every name except the broker's
 * own `BROKER_*`, `UPSTREAM_*`, `APPROVAL_*`, `OTEL_*`.
 */
export const isExpandable = (name: string, allow: string | undefined): boolean => parseAllow(allow)(name);

/**
 * The environment as `${NAME}` expansion may see it: a live view of `source` in which names
 * not allowed by `allow` read as unset. Hand this (never `process.env`) to expandRefs.
 */
export function expansionEnv(source: NodeJS.ProcessEnv, allow: string | undefined): NodeJS.ProcessEnv {
  const ok = parseAllow(allow);
  return new Proxy({} as NodeJS.ProcessEnv, {
    get: (_t, name) => (typeof name === 'string' && ok(name) ? source[name] : undefined),
    has: (_t, name) => typeof name === 'string' && ok(name) && name in source,
  });
}

export function expandRefs(value: string, env: NodeJS.ProcessEnv, where: string): string {
  return value.replace(REF, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new MissingEnvVarError(name, where);
    return v;
  });
}
