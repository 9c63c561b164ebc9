// The Helm chart under the real helm (pinned in scripts/install-helm.sh): `helm lint --strict`, values
// against values.schema.json, every rendered object against the upstream schemas, RBAC scopes, NATS
// wiring and dashboards. test/chart-objects.test.ts compares the default objects whole.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ChartValuesSchema } from '../services/controller/chart-values.js';
import { ControllerConfigSchema, resolveControllerConfig } from '../services/controller/config.js';
import { helmOrSkip, lintChart, renderChart, type RenderOptions } from '../services/controller/testing/chart-render.js';
import { REPO } from '../services/controller/testing/harness.js';
import { restrictedViolations } from '../services/controller/testing/pod-security-check.js';
import { validateObject } from '../services/controller/testing/validate-objects.js';

const CHART = join(REPO, 'charts/parley');
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const kinds = (objs: Record<string, any>[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
const helm = helmOrSkip();

/** `helm template` with `opts`; every object must meet its upstream schema. */
function render(opts: RenderOptions = {}) {
  const rendered = renderChart(helm!, CHART, opts);
  for (const o of rendered.objects) validateObject(o);
  return rendered;
}

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

  it('configures NATS as a dependency with JetStream on file storage', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
    expect(chart.dependencies).toEqual([expect.objectContaining({ name: 'nats', repository: 'https://nats-io.github.io/k8s/helm/charts/', condition: 'nats.enabled' })]);
    expect(values.nats.config.jetstream).toMatchObject({ enabled: true, fileStore: { enabled: true, pvc: { enabled: true } } });
  });
});

describe.skipIf(!helm)('with helm', () => {
  it('helm lint --strict passes', () => {
    expect(lintChart(helm!, CHART)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('rejects typos and out-of-range values, as helm install does', () => {
    expect(() => renderChart(helm!, CHART, { values: { controller: { replicas: 0 } } })).toThrow(/schema/);
    expect(() => renderChart(helm!, CHART, { values: { contoller: {} } })).toThrow(/schema/);
    expect(() => renderChart(helm!, CHART, { values: { metrics: { serviceMonitor: { interval: 'often' } } } })).toThrow(/schema/);
  });

  it('renders valid objects with the defaults', () => {
    const { objects, notes } = render();
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
    expect(notes).toContain('kubectl get trainingruns');
  });

  it('runs the controller as a restricted pod whose environment is the controller config', () => {
    const deployment = render().objects.find((o) => o.kind === 'Deployment')!;
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
    const { objects } = render({
      values: { controller: { watchNamespace: 'ml' }, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus' } }, podMonitor: { enabled: true } } },
    });
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
    const { objects, notes } = render({ values: { natsUrlSecret: { name: 'nats-creds', key: 'url' } } });
    const env: { name: string; value?: string; valueFrom?: unknown }[] = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env;
    expect(env.find((e) => e.name === 'PARLEY_BUS_URL')).toEqual({ name: 'PARLEY_BUS_URL', valueFrom: { secretKeyRef: { name: 'nats-creds', key: 'url' } } });
    expect(env.find((e) => e.name === 'PARLEY_BUS_URL_SECRET')!.value).toBe('nats-creds/url');
    expect(notes).toContain('Secret nats-creds');
  });

  it('labels dashboards for the Grafana sidecar and ships them unchanged', () => {
    const maps = render({ releaseName: 'ml-platform' }).objects.filter((o) => o.kind === 'ConfigMap');
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
