// Test support: renders and lints charts/parley with the real helm binary (pinned and built by
// scripts/install-helm.sh), and parses what `helm template` prints.
//
// The nats subchart is not vendored and its repository is not reachable where the tests run, so helm
// works on a temporary copy of the chart whose Chart.yaml leaves the dependency out: exactly the
// chart's own templates, values and schema, as a release with `nats.enabled=false` renders them.

import { execFileSync } from 'node:child_process';
import { accessSync, constants, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';
import { REPO } from './harness.js';

export interface RenderedChart {
  /** Every object `helm template` prints, in its order (helm sorts by kind for install). */
  objects: Record<string, any>[];
  /** templates/NOTES.txt as helm renders it for the same release. */
  notes: string;
}

export interface RenderOptions {
  /** Overrides merged over values.yaml the way `helm --values` merges them (null deletes a key). */
  values?: Record<string, unknown>;
  releaseName?: string;
  namespace?: string;
}

const isExecutable = (p: string) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** $HELM_BIN, else the pinned build in .tools/bin, else helm on PATH; undefined when none is there. */
export function findHelm(): string | undefined {
  if (process.env.HELM_BIN) return isExecutable(process.env.HELM_BIN) ? process.env.HELM_BIN : undefined;
  const candidates = [join(REPO, '.tools/bin/helm'), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'helm'))];
  return candidates.find(isExecutable);
}

/**
 * The helm binary for a test file, or undefined after a warning saying why the file's helm tests skip.
 * Throws under CI=true, where a missing helm is a broken setup, not a reason to skip.
 */
export function helmOrSkip(): string | undefined {
  const helm = findHelm();
  if (helm) return helm;
  const msg = `no helm binary (looked at $HELM_BIN, ${join(REPO, '.tools/bin/helm')} and PATH): run scripts/install-helm.sh`;
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(`skipping the tests that render the chart with helm: ${msg}`);
  return undefined;
}

/** Runs helm; throws an Error carrying helm's own message (its stderr) when it exits non-zero. */
function runHelm(helm: string, args: string[]): string {
  try {
    return execFileSync(helm, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args[0]} failed: ${(err.stderr || err.stdout || err.message).trim()}`);
  }
}

// A template added to the copy only: it renders NOTES.txt (which `helm template` leaves out) with the
// same engine and values, inside a ConfigMap the helper takes back out of the objects.
const NOTES_NAME = 'rendered-notes-for-tests';
const notesTemplate = (chart: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NOTES_NAME}\ndata:\n  notes: {{ include "${chart}/templates/NOTES.txt" . | toJson }}\n`;

/** Calls `use` with a temporary copy of the chart at `dir` without its dependencies; removes the copy after. */
function withChartCopy<T>(dir: string, use: (copy: string, chartName: string) => T): T {
  const tmp = mkdtempSync(join(tmpdir(), 'parley-chart-'));
  try {
    const copy = join(tmp, 'chart');
    cpSync(dir, copy, { recursive: true });
    const chartYaml = parseDocument(readFileSync(join(copy, 'Chart.yaml'), 'utf8'));
    chartYaml.delete('dependencies');
    writeFileSync(join(copy, 'Chart.yaml'), chartYaml.toString());
    return use(copy, String(chartYaml.get('name')));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * `helm template` of the chart at `dir`. Throws (with helm's message) when the merged values fail
 * values.schema.json, when a template fails to render, or when the output is not YAML.
 */
export function renderChart(helm: string, dir: string, opts: RenderOptions = {}): RenderedChart {
  return withChartCopy(dir, (copy, chartName) => {
    writeFileSync(join(copy, 'templates', `${NOTES_NAME}.yaml`), notesTemplate(chartName));
    const valuesFile = join(copy, '..', 'overrides.json');
    writeFileSync(valuesFile, JSON.stringify(opts.values ?? {}));
    const out = runHelm(helm, ['template', opts.releaseName ?? 'parley', copy, '--namespace', opts.namespace ?? 'parley', '--values', valuesFile]);
    const objects: Record<string, any>[] = [];
    for (const doc of parseAllDocuments(out)) {
      if (doc.errors.length) throw new Error(`helm template printed invalid YAML: ${doc.errors[0]!.message}\n${out}`);
      const obj = doc.toJS();
      if (obj) objects.push(obj);
    }
    const notes = objects.find((o) => o.metadata?.name === NOTES_NAME);
    if (!notes) throw new Error('helm template did not render NOTES.txt');
    return { objects: objects.filter((o) => o !== notes), notes: notes.data.notes };
  });
}

/** `helm lint --strict` of the chart at `dir` (warnings fail too); returns helm's report, throws with it on failure. */
export function lintChart(helm: string, dir: string): string {
  return withChartCopy(dir, (copy) => runHelm(helm, ['lint', copy, '--strict']));
}
