// Configuration through zod schemas: parsed once at start-up; a bad value fails with the field's name
// and what is accepted. Values come from an object (CLI flags, run spec) layered over the environment.

import { z } from 'zod';
import { ParleyError } from './errors.js';

export { z };

/** Formats zod issues as "field: problem" lines. */
export function formatIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(root)';
      return `${prefix}${path}: ${i.message}`;
    })
    .join('; ');
}

/**
 * Parses `input` with `schema`. Throws ParleyError(invalid_argument) naming every bad field,
 * e.g. `invalid config: port: Too big: expected number to be <=65535`.
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what = 'config'): z.infer<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const first = r.error.issues[0]?.path.join('.');
    throw new ParleyError('invalid_argument', `invalid ${what}: ${formatIssues(r.error)}`, { field: first });
  }
  return r.data;
}

/**
 * Reads `PARLEY_<NAME>` environment variables for the given keys (camelCase → UPPER_SNAKE),
 * returning only those that are set, for layering under explicit options.
 */
export function envOverrides(keys: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const name = 'PARLEY_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}
