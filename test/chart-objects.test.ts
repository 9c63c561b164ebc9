// `helm template` with the defaults, object for object and field for field: the RBAC objects and the
// ServiceAccount against the project's own rendering of them (services/controller/rbac.ts, which also
// writes k8s/rbac/), the dashboards against their files, the controller Deployment and metrics Service
// against the code and values they must agree with. Every object also meets its upstream schema.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { containerSecurityContext, podSecurityContext, scratchMounts, scratchVolumes } from '../services/controller/pod-security.js';
import { rbacManifests } from '../services/controller/rbac.js';
import { helmOrSkip, renderChart } from '../services/controller/testing/chart-render.js';
import { REPO } from '../services/controller/testing/harness.js';
import { validateObject } from '../services/controller/testing/validate-objects.js';

const CHART = join(REPO, 'charts/parley');
const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
const helm = helmOrSkip();

// Helm's standard labels, on every object of the release `parley`; the controller's objects add their component.
const labels = {
  'helm.sh/chart': `${chart.name}-${chart.version}`,
  'app.kubernetes.io/name': 'parley',
  'app.kubernetes.io/instance': 'parley',
  'app.kubernetes.io/version': chart.appVersion,
  'app.kubernetes.io/managed-by': 'Helm',
  'app.kubernetes.io/part-of': 'parley',
};
const controllerLabels = { ...labels, 'app.kubernetes.io/component': 'controller' };
const selector = { 'app.kubernetes.io/name': 'parley', 'app.kubernetes.io/instance': 'parley', 'app.kubernetes.io/component': 'controller' };

const pick = <T extends object, K extends keyof T>(o: T, keys: K[]) => Object.fromEntries(keys.map((k) => [k, o[k]]));
const omit = <T extends object>(o: T, keys: (keyof T)[]) => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k as keyof T)));

describe.skipIf(!helm)('helm template with the defaults', () => {
  let objects: Record<string, any>[] = [];
  beforeAll(() => {
    objects = renderChart(helm!, CHART).objects;
  });
  const find = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`helm template rendered no ${kind} ${name}`);
    return found;
  };

  it('renders only objects that meet their upstream schemas', () => {
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) validateObject(o);
  });

  it('renders the RBAC objects and the ServiceAccount of k8s/rbac, with the chart labels', () => {
    // The one name the two renderings spell differently (rbac.ts: `${name}-leader-election`; the chart:
    // `<fullname>-leader-election`); the Role is only ever referred to by its RoleBinding.
    const chartName = (n: string) => (n === 'parley-controller-leader-election' ? 'parley-leader-election' : n);
    for (const own of rbacManifests('parley', 'parley-controller') as Record<string, any>[]) {
      const name = chartName(own.metadata.name);
      const expected: Record<string, any> = { ...own, metadata: { ...own.metadata, name, labels: own.kind === 'ServiceAccount' ? controllerLabels : labels } };
      if (own.roleRef) expected.roleRef = { ...own.roleRef, name: chartName(own.roleRef.name) };
      // The standalone ServiceAccount spells out the API's default; the chart leaves it to the API.
      if (own.kind === 'ServiceAccount') delete expected.automountServiceAccountToken;
      expect(find(own.kind, name)).toEqual(expected);
    }
  });

  it('ships each dashboard file byte for byte in a ConfigMap labelled for the Grafana sidecar', () => {
    for (const name of ['run-overview', 'rollout', 'learner', 'actors']) {
      const file = readFileSync(join(CHART, 'dashboards', `${name}.json`), 'utf8');
      expect(find('ConfigMap', `parley-dashboard-${name}`)).toEqual({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `parley-dashboard-${name}`, namespace: 'parley', labels: { ...labels, ...values.dashboards.labels } },
        // A `|-` block scalar: the file without its final newline.
        data: { [`parley-${name}.json`]: file.replace(/\n$/, '') },
      });
    }
  });

  it('runs the controller with the pod-security, scratch volume and values the code and values.yaml give', () => {
    const deployment = find('Deployment', 'parley-controller');
    const image = `${values.image.repository}:${chart.appVersion}`;
    const probe = { httpGet: { path: '/healthz', port: 'metrics' } };
    expect(deployment).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'parley-controller', namespace: 'parley', labels: controllerLabels },
      spec: {
        replicas: values.controller.replicas,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: selector },
          spec: {
            serviceAccountName: 'parley-controller',
            // The actors' pod settings less fsGroup: the controller mounts nothing that needs a group owner.
            securityContext: pick(podSecurityContext(), ['runAsNonRoot', 'runAsUser', 'runAsGroup', 'seccompProfile']),
            containers: [
              {
                name: 'controller',
                image,
                imagePullPolicy: values.imagePullPolicy,
                args: ['serve', 'controller'],
                // Compared with the controller's own configuration in test/chart-render.test.ts.
                env: expect.arrayContaining([{ name: 'PARLEY_PARLEY_IMAGE', value: image }]),
                ports: [{ name: 'metrics', containerPort: values.metrics.port, protocol: 'TCP' }],
                readinessProbe: { ...probe, periodSeconds: 10 },
                livenessProbe: { ...probe, periodSeconds: 20, failureThreshold: 3 },
                resources: values.controller.resources,
                // The actors' container settings less what the pod already sets for every container.
                securityContext: omit(containerSecurityContext(), ['runAsNonRoot', 'seccompProfile']),
                volumeMounts: scratchMounts(false),
              },
            ],
            volumes: scratchVolumes(false),
          },
        },
      },
    });
  });

  it('serves the controller metrics port through a Service that selects the controller pods', () => {
    const service = find('Service', 'parley-controller-metrics');
    expect(service).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'parley-controller-metrics', namespace: 'parley', labels: controllerLabels },
      spec: { selector, ports: [{ name: 'metrics', port: values.metrics.port, targetPort: 'metrics', protocol: 'TCP' }] },
    });
    expect(find('Deployment', 'parley-controller').spec.template.metadata.labels).toMatchObject(service.spec.selector);
  });
});
