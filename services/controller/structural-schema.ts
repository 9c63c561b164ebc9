// Turns the JSON Schema zod writes (OpenAPI 3.0 flavour) into a Kubernetes *structural* schema: every
// node typed, no unions except int-or-string, open maps as preserve-unknown-fields, no `$schema`.

type Schema = Record<string, unknown>;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const DROPPED = new Set(['$schema', 'title', 'id', '$id']);

function isNumeric(s: unknown): boolean {
  return !!s && typeof s === 'object' && ((s as Schema).type === 'integer' || (s as Schema).type === 'number');
}

function isString(s: unknown): boolean {
  return !!s && typeof s === 'object' && (s as Schema).type === 'string';
}

/** A string-or-number union becomes Kubernetes' int-or-string with the branches' value checks hoisted. */
function intOrString(branches: Schema[], path: string): Schema {
  const num = branches.find(isNumeric);
  const str = branches.find(isString);
  if (branches.length !== 2 || !num || !str) {
    throw new Error(`${path}: a union of ${JSON.stringify(branches.map((b) => b.type))} has no structural form; only string | number (int-or-string) is supported`);
  }
  const out: Schema = { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
  for (const [k, v] of Object.entries({ ...str, ...num })) {
    if (k === 'type' || DROPPED.has(k)) continue;
    if (k === 'maximum' && v === MAX_SAFE) continue;
    if (k === 'minimum' && v === -MAX_SAFE) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Converts `schema` (and everything below it) to a structural schema for a CRD.
 * Throws an Error naming the path of any construct Kubernetes cannot express structurally
 * (unions other than string | number, untyped nodes, tuple arrays).
 */
export function toStructural(schema: unknown, path = 'spec'): Schema {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw new Error(`${path}: expected a schema object`);
  const src = schema as Schema;
  if (Array.isArray(src.anyOf) || Array.isArray(src.oneOf)) {
    const branches = (src.anyOf ?? src.oneOf) as Schema[];
    const out = intOrString(branches, path);
    for (const k of ['default', 'description'] as const) if (src[k] !== undefined) out[k] = src[k];
    return out;
  }
  if (src.allOf !== undefined || src.not !== undefined) throw new Error(`${path}: allOf/not have no structural form`);
  const out: Schema = {};
  for (const [k, v] of Object.entries(src)) {
    if (DROPPED.has(k)) continue;
    if (k === 'maximum' && v === MAX_SAFE) continue;
    if (k === 'minimum' && v === -MAX_SAFE) continue;
    if (k === 'const') {
      out.enum = [v];
      continue;
    }
    if (k === 'properties' || k === 'additionalProperties' || k === 'items') continue;
    out[k] = v;
  }
  if (src.const !== undefined && out.type === undefined) out.type = typeof src.const === 'number' ? 'number' : typeof src.const;
  if (out.type === undefined) throw new Error(`${path}: every node of a structural schema needs a type`);
  if (out.type === 'object') {
    if (src.properties && typeof src.properties === 'object') {
      out.properties = Object.fromEntries(Object.entries(src.properties as Schema).map(([k, v]) => [k, toStructural(v, `${path}.${k}`)]));
    }
    const ap = src.additionalProperties;
    if (ap === true || (ap && typeof ap === 'object' && Object.keys(ap).length === 0)) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    } else if (ap && typeof ap === 'object') {
      if (out.properties) throw new Error(`${path}: properties and additionalProperties cannot be combined in a structural schema`);
      out.additionalProperties = toStructural(ap, `${path}.*`);
    }
    // additionalProperties: false is left out: the API server prunes unknown fields instead.
  }
  if (out.type === 'array') {
    if (!src.items || Array.isArray(src.items)) throw new Error(`${path}: arrays need a single items schema`);
    out.items = toStructural(src.items, `${path}[]`);
  }
  // type first, default last: the generated YAML reads like hand-written CRDs.
  const { type, default: dflt, ...rest } = out;
  return dflt === undefined ? { type, ...rest } : { type, ...rest, default: dflt };
}
