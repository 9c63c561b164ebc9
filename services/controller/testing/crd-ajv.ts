// Test support: a CRD's OpenAPI v3 schema as Ajv (draft-07) reads it, so tests can check objects the way
// the API server would before the controller sees them.

type Schema = Record<string, any>;

/**
 * `s` for Ajv: boolean exclusive bounds become numbers; x-kubernetes-* and format are dropped. With
 * `unknownFields: 'reject'` an object node that lists its properties (and does not preserve unknown
 * fields) refuses others, as the API server's strict field validation (kubectl apply's default) does;
 * by default they pass, as they would when the server prunes them.
 */
export function crdSchemaForAjv(s: Schema, opts: { unknownFields?: 'reject' | 'prune' } = {}): Schema {
  if (Array.isArray(s)) return s.map((x) => crdSchemaForAjv(x, opts));
  if (!s || typeof s !== 'object') return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-') || k === 'format') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, x]) => [p, crdSchemaForAjv(x, opts)])) : typeof v === 'object' ? crdSchemaForAjv(v, opts) : v;
  }
  if (out.exclusiveMinimum === true) [out.exclusiveMinimum, out.minimum] = [out.minimum, undefined];
  if (out.exclusiveMaximum === true) [out.exclusiveMaximum, out.maximum] = [out.maximum, undefined];
  if (opts.unknownFields === 'reject' && s.properties && !s['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}
