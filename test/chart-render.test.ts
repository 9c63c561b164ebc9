// The Helm chart rendered without helm (the Go-template subset in services/controller/testing): values
// against values.schema.json, every object against the upstream schemas, RBAC scopes, NATS wiring and
// dashboards; `helm lint` and `helm template` too when a helm binary is on PATH.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ChartValuesSchema } from '../services/controller/chart-values.js';
import { ControllerConfigSchema, resolveControllerConfig } from '../services/controller/config.js';
import { renderChart } from '../services/controller/testing/chart-render.js';
import { REPO } from '../services/controller/testing/harness.js';
import { restrictedViolations } from '../services/controller/testing/pod-security-check.js';
import { validateObject } from '../services/controller/testing/validate-objects.js';

const CHART = join(REPO, 'charts/parley');
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const kinds = (objs: Record<string, any>[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();

describe('values', () => {
  it('values.yaml meets values.schema.json', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
  });

  it('documents the same defaults as chart-values.ts', () => {
    const { nats: _n, ...fromYaml } = ChartValuesSchema.parse(values);
    const { nats: _d, ...defaults } = ChartValuesSchema.parse({});
    expect(fromYaml).toEqual(defaults);
  });

  it('rejects typos and out-of-range values, as helm install would', () => {
    expect(() => renderChart(CHART, { values: { controller: { replicas: 0 } } })).toThrow(/schema/);
    expect(() => renderChart(CHART, { values: { contoller: {} } })).toThrow(/schema/);
    expect(() => renderChart(CHART, { values: { metrics: { serviceMonitor: { interval: 'often' } } } })).toThrow(/schema/);
  });

  it('configures NATS as a dependency with JetStream on file storage', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
    expect(chart.dependencies).toEqual([expect.objectContaining({ name: 'nats', repository: 'https://nats-io.github.io/k8s/helm/charts/', condition: 'nats.enabled' })]);
    expect(values.nats.config.jetstream).toMatchObject({ enabled: true, fileStore: { enabled: true, pvc: { enabled: true } } });
  });
});

describe('templates', () => {
  it('render valid objects with the defaults', () => {
    const { objects, files } = renderChart(CHART);
    expect(kinds(objects)).toEqual(
      [
        'ClusterRole/parley-controller',
        'ClusterRoleBinding/parley-controller',
        'ConfigMap/parley-dashboard-actors',
        'ConfigMap/parley-dashboard-learner',
        'ConfigMap/parley-dashboard-rollout',
        'ConfigMap/parley-dashboard-run-overview',
        'Deployment/parley-controller',
        'Role/parley-leader-election',
        'RoleBinding/parley-leader-election',
        'Service/parley-controller-metrics',
        'ServiceAccount/parley-controller',
      ].sort(),
    );
    for (const o of objects) validateObject(o);
    expect(files['templates/NOTES.txt']).toContain('kubectl get trainingruns');
  });

  it('runs the controller as a restricted pod whose environment is the controller config', () => {
    const deployment = renderChart(CHART).objects.find((o) => o.kind === 'Deployment')!;
    const pod = deployment.spec.template.spec;
    expect(restrictedViolations(pod)).toEqual([]);
    const env: { name: string; value?: string }[] = pod.containers[0].env;
    const keys = new Set(Object.keys(ControllerConfigSchema.shape).map((k) => 'PARLEY_' + k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()));
    keys.add('PARLEY_LOG_LEVEL'); // read by the logger (services/core/logger.ts)
    for (const e of env) expect(keys, `${e.name} is not a controller setting`).toContain(e.name);
    const plain = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    const config = resolveControllerConfig({}, { ...plain, PARLEY_IDENTITY: 'pod-0', PARLEY_POD_NAMESPACE: 'parley' });
    expect(config).toMatchObject({ busUrl: 'nats://parley-nats.parley.svc:4222', parleyImage: 'ghcr.io/parley-dev/parley:0.1.0', restartMaxMs: 300_000, leaderElect: true });
  });

  it('narrows RBAC to a Role when one namespace is watched, and renders both monitors', () => {
    const { objects } = renderChart(CHART, {
      values: { controller: { watchNamespace: 'ml' }, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus' } }, podMonitor: { enabled: true } } },
    });
    for (const o of objects) validateObject(o);
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'parley-controller')!;
    expect(role.metadata.namespace).toBe('ml');
    expect(objects.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'parley-controller')!.roleRef.kind).toBe('Role');
    expect(objects.some((o) => o.kind === 'ClusterRole')).toBe(false);
    const pm = objects.find((o) => o.kind === 'PodMonitor')!;
    expect(pm.spec.namespaceSelector).toEqual({ matchNames: ['ml'] });
    expect(pm.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/part-of': 'parley', 'app.kubernetes.io/managed-by': 'parley-controller' });
    expect(objects.find((o) => o.kind === 'ServiceMonitor')!.metadata.labels.release).toBe('kube-prometheus');
  });

  it('takes the NATS URL with credentials from a Secret, never in plain text', () => {
    const { objects, files } = renderChart(CHART, { values: { natsUrlSecret: { name: 'nats-creds', key: 'url' } } });
    const env: { name: string; value?: string; valueFrom?: unknown }[] = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env;
    expect(env.find((e) => e.name === 'PARLEY_BUS_URL')).toEqual({ name: 'PARLEY_BUS_URL', valueFrom: { secretKeyRef: { name: 'nats-creds', key: 'url' } } });
    expect(env.find((e) => e.name === 'PARLEY_BUS_URL_SECRET')!.value).toBe('nats-creds/url');
    expect(files['templates/NOTES.txt']).toContain('Secret nats-creds');
  });

  it('labels dashboards for the Grafana sidecar and ships them unchanged', () => {
    const maps = renderChart(CHART, { releaseName: 'ml-platform' }).objects.filter((o) => o.kind === 'ConfigMap');
    expect(maps).toHaveLength(4);
    for (const cm of maps) {
      expect(cm.metadata.labels.grafana_dashboard).toBe('1');
      const [key, json] = Object.entries(cm.data as Record<string, string>)[0]!;
      const file = key.replace(/^parley-/, '');
      expect(JSON.parse(json)).toEqual(JSON.parse(readFileSync(join(CHART, 'dashboards', file), 'utf8')));
    }
    expect(maps[0]!.metadata.name).toMatch(/^ml-platform-parley-dashboard-/);
  });
});

const helm = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
const haveHelm = helm.status === 0;
if (!haveHelm) console.warn('skipping helm lint/template: no helm binary on PATH (the chart is rendered by the Go-template subset above instead)');

describe.skipIf(!haveHelm)('with helm', () => {
  beforeAll(() => {
    // Fetches the nats chart into charts/parley/charts/ (needs the chart repository to be reachable).
    execFileSync('helm', ['dependency', 'build', CHART], { stdio: 'pipe' });
  });

  it('helm lint passes', () => {
    execFileSync('helm', ['lint', CHART, '--strict'], { stdio: 'pipe' });
  });

  it('helm template matches the subset renderer object for object', () => {
    const out = execFileSync('helm', ['template', 'parley', CHART, '--namespace', 'parley', '--set', 'nats.enabled=false'], { encoding: 'utf8' });
    const ours = kinds(renderChart(CHART, { values: { nats: { enabled: false } } }).objects);
    const theirs = out.split(/^---$/m).map((d) => parse(d)).filter(Boolean);
    expect(kinds(theirs)).toEqual(ours);
  });
});
