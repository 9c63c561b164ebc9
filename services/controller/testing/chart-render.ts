// Test support: renders charts/parley like `helm template` (values.yaml merged with overrides and
// checked against values.schema.json, every template through the Go-template subset), without helm.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { collectDefines, renderTemplate, type RenderContext } from './go-template.js';

export interface RenderedChart {
  /** Rendered text per template path (templates/…), NOTES.txt included. */
  files: Record<string, string>;
  /** Every non-empty YAML document of the rendered templates, in file order. */
  objects: Record<string, any>[];
  values: Record<string, unknown>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** Helm's coalescing: maps merge key by key, anything else in `over` replaces `base`; null deletes. */
export function mergeValues(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = isObj(v) && isObj(out[k]) ? mergeValues(out[k] as Obj, v) : v;
  }
  return out;
}

/**
 * Renders the chart at `dir`. Throws when the merged values fail values.schema.json (as helm install
 * would), when a template uses something outside the supported subset, or when output is not YAML.
 */
export function renderChart(dir: string, opts: { values?: Obj; releaseName?: string; namespace?: string } = {}): RenderedChart {
  const chart = parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Obj;
  const values = mergeValues(parse(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Obj, opts.values ?? {});
  const schemaPath = join(dir, 'values.schema.json');
  if (existsSync(schemaPath)) {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
    if (!validate(values)) throw new Error(`values don't meet the specifications of the schema: ${JSON.stringify(validate.errors)}`);
  }
  const ctx: RenderContext = { defines: new Map(), readFile: (p) => readFileSync(join(dir, p), 'utf8') };
  const tdir = join(dir, 'templates');
  const names = readdirSync(tdir).sort();
  for (const n of names.filter((x) => x.startsWith('_'))) collectDefines(readFileSync(join(tdir, n), 'utf8'), ctx.defines);
  const data = {
    Values: values,
    Release: { Name: opts.releaseName ?? 'parley', Namespace: opts.namespace ?? 'parley', Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion, Description: chart.description },
    Capabilities: { KubeVersion: { Version: 'v1.31.0', Major: '1', Minor: '31' } },
  };
  const files: Record<string, string> = {};
  const objects: Record<string, any>[] = [];
  for (const n of names.filter((x) => !x.startsWith('_'))) {
    const text = renderTemplate(readFileSync(join(tdir, n), 'utf8'), data, ctx);
    files[`templates/${n}`] = text;
    if (!/\.ya?ml$/.test(n)) continue;
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) throw new Error(`templates/${n}: ${doc.errors[0]!.message}\n${text}`);
      const obj = doc.toJS();
      if (obj) objects.push(obj);
    }
  }
  return { files, objects, values };
}
