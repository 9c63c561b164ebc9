// The Grafana dashboards: well-formed (variables, unique panel ids, queries on the data source), and
// every parley_* metric a query names is registered somewhere in services/ (the code exports it).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../services/controller/testing/harness.js';

const DIR = join(REPO, 'charts/parley/dashboards');
const dashboards = readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => ({ file: f, json: JSON.parse(readFileSync(join(DIR, f), 'utf8')) }));

/** Every PromQL expression of a dashboard. */
function dashboardExprs(json: { panels: { targets?: { expr: string }[] }[] }): string[] {
  return json.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

/** Metric names in a PromQL expression (label matchers and `by (…)` label lists removed first). */
function metricNames(expr: string): string[] {
  return expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without)\s*\([^)]*\)/g, '').match(/parley_[a-z0-9_]+/g) ?? [];
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'gen' || f === 'node_modules' ? [] : sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [readFileSync(p, 'utf8')] : [];
  });
}

describe('dashboards', () => {
  it('are the four the chart ships', () => {
    expect(dashboards.map((d) => d.file).sort()).toEqual(['actors.json', 'learner.json', 'rollout.json', 'run-overview.json']);
  });

  it.each(dashboards)('$file is well formed', ({ json }) => {
    expect(json.uid).toMatch(/^parley-/);
    expect(json.templating.list.map((v: { name: string }) => v.name)).toEqual(['datasource', 'namespace', 'run']);
    const ids = json.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of json.panels) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length).toBeGreaterThan(0);
      for (const t of p.targets) expect(t.expr).toMatch(/parley_/);
    }
  });

  it('query only metrics the code registers', () => {
    const code = sources(join(REPO, 'services')).join('\n');
    const registered = (name: string) => code.includes(`'${name}'`);
    const missing: string[] = [];
    for (const { file, json } of dashboards) {
      for (const expr of dashboardExprs(json)) {
        for (const name of metricNames(expr)) {
          const base = name.replace(/_(bucket|sum|count)$/, '');
          if (!registered(name) && !registered(base)) missing.push(`${file}: ${name}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
