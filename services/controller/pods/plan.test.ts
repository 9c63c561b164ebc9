// The pods plan is the controller's rendering expanded into named pods; a pod runs its containers with
// Kubernetes' $(VAR) expansion, its own address and its volumes as folders.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveControllerConfig } from '../config.js';
import { exampleRun } from '../testing/harness.js';
import { LocalPod, expandVars } from './local-pod.js';
import { planPods, toTrainingRun } from './plan.js';

const config = resolveControllerConfig({ leaderElect: false }, {});
const dir = mkdtempSync(join(tmpdir(), 'parley-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('planPods', () => {
  it("names every replica's pod as its workload would", () => {
    const plan = planPods(toTrainingRun(exampleRun('cpu-small')), config);
    const names = plan.pods.map((p) => p.name);
    expect(names.filter((n) => n.startsWith('cpu-small-policy-'))).toHaveLength(2);
    expect(names).toContain('cpu-small-learner-0');
    for (const n of names.filter((x) => !x.endsWith('-0'))) expect(n).toMatch(/^cpu-small-[a-z]+-[0-9a-f]{10}-[0-9a-z]{5}$/);
    expect(plan.configMaps.get('cpu-small-config')?.data?.['learner.yaml']).toContain('engineConfigJson');
  });

  it('takes a bare run spec and refuses what the controller refuses, with its message', () => {
    expect(toTrainingRun({ name: 'r1', data: { domain: 'local' } }).metadata.name).toBe('r1');
    expect(() => toTrainingRun({ data: { domain: 'local' } })).toThrow(/name/);
    expect(() => toTrainingRun({ kind: 'Deployment' })).toThrow(/kind/);
    expect(() => planPods(toTrainingRun({ name: 'r1', data: { domain: 'mock' } }), config)).toThrow(/InvalidSpec: spec\.data\.domain/);
  });
});

describe('a local pod', () => {
  it('expands $(VAR) as Kubernetes does', () => {
    expect(expandVars('--nats $(URL) --x $(MISSING) $$(URL)', { URL: 'nats://a:1' })).toBe('--nats nats://a:1 --x $(MISSING) $(URL)');
  });

  it('writes ConfigMaps with mount paths, loopback and Service names rewritten for the pod, and refuses an image it cannot run', async () => {
    const plan = planPods(toTrainingRun(exampleRun('cpu-small')), config);
    const learner = plan.pods.find((p) => p.name === 'cpu-small-learner-0')!;
    const podDir = join(dir, learner.name);
    const pod = new LocalPod(
      { ...learner, spec: { ...learner.spec, initContainers: [], containers: learner.spec.containers.map((c) => ({ ...c, image: 'elsewhere/unknown:1' })) } },
      {
        dir: podDir,
        claimsDir: join(dir, 'claims'),
        podIp: '127.0.1.9',
        namespace: 'default',
        configMaps: plan.configMaps,
        image: (image, where) => {
          throw new Error(`${where}: no local command for ${image}`);
        },
        rewriteHosts: (t) => t,
        backoffBaseMs: 10,
        backoffMaxMs: 10,
        inheritedEnv: {},
      },
    );
    await expect(pod.start()).rejects.toThrow(/cpu-small-learner-0\/engine: no local command for elsewhere\/unknown:1/);
    const learnerYaml = readFileSync(join(podDir, 'volumes/run-config/learner.yaml'), 'utf8');
    expect(learnerYaml).toContain(`checkpointDir: ${join(podDir, 'volumes/data')}/cpu-small/checkpoints`);
    expect(pod.pids()).toEqual([]);
  });
});
