// The Dockerfiles cannot be built here (no Docker engine), so this checks what can be checked without
// one: every COPY source exists, both images run as the UID the pods require, and the entrypoints take
// the arguments the controller gives their containers.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupContainers } from '../services/controller/actor-containers.js';
import { resolveControllerConfig } from '../services/controller/config.js';
import { RUN_AS_USER } from '../services/controller/pod-security.js';
import { RunSpecSchema } from '../services/controller/run-spec.js';
import { REPO } from '../services/controller/testing/harness.js';

const read = (f: string) => readFileSync(join(REPO, 'docker', f), 'utf8');

describe.each(['Dockerfile', 'Dockerfile.engine'])('docker/%s', (file) => {
  const text = read(file);

  it('copies only paths that exist in the repository', () => {
    const sources = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) expect(existsSync(join(REPO, s)), s).toBe(true);
  });

  it(`runs as the non-root user ${RUN_AS_USER}`, () => {
    expect(text).toMatch(new RegExp(`^USER ${RUN_AS_USER}:${RUN_AS_USER}$`, 'm'));
    expect(text).toMatch(/useradd --system --uid 10001/);
  });
});

it('the entrypoints take the arguments the controller passes', () => {
  const spec = RunSpecSchema.parse({ name: 'r', data: { domain: 'mock' } });
  const config = resolveControllerConfig({}, {});
  const learner = groupContainers('learner', spec, config).containers;
  expect(read('Dockerfile.engine')).toContain('ENTRYPOINT ["python", "-m", "parley_engine"]');
  expect(learner.find((c) => c.name === 'engine')!.args!.slice(0, 1)).toEqual(['serve']);
  expect(read('Dockerfile')).toContain('ENTRYPOINT ["node", "--max-semi-space-size=64", "/app/bin/parley.js"]');
  expect(learner.find((c) => c.name === 'learner')!.args!.slice(0, 2)).toEqual(['serve', 'learner']);
  expect(existsSync(join(REPO, 'services/learner/engine/parley_engine/__main__.py'))).toBe(true);
});

it('the engine image has the torch that .venv-engine pins (services/learner/engine/requirements-torch.txt)', () => {
  const base = /^ARG BASE_IMAGE=pytorch\/pytorch:(\d+\.\d+\.\d+)-/m.exec(read('Dockerfile.engine'))?.[1];
  const pinned = /^torch==(\S+)$/m.exec(readFileSync(join(REPO, 'services/learner/engine/requirements-torch.txt'), 'utf8'))?.[1];
  expect(base).toBeDefined();
  expect(pinned).toBe(base);
});
