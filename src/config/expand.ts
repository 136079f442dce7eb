/** `${NAME}` references in admin records, expanded from the environment when used. */
export class MissingEnvVarError extends Error {
  constructor(readonly variable: string, where: string) {
    super(`environment variable ${variable} referenced by ${where} is not set`);
  }
}

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function expandRefs(value: string, env: NodeJS.ProcessEnv, where: string): string {
  return value.replace(REF, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new MissingEnvVarError(name, where);
    return v;
  });
}
