// The first reconcile step's check: the TrainingRun's name and spec against RunSpecSchema and the rules
// only a cluster adds (name length, an LLM user simulator needs a model, learner and coordinator settings).

import { formatIssues } from '../core/config.js';
import { ParleyError } from '../core/errors.js';
import type { ControllerConfig } from './config.js';
import { MAX_RUN_NAME } from './labels.js';
import { renderRunConfig, type RenderedRunConfig } from './run-config.js';
import { RunSpecSchema, type RunSpec } from './run-spec.js';
import type { TrainingRun } from './training-run.js';

export type SpecCheck =
  | { ok: true; spec: RunSpec; rendered: RenderedRunConfig }
  | { ok: false; reason: 'InvalidSpec' | 'InvalidName'; message: string };

/** Checks a run; never throws (every problem becomes a SpecCheck with a message naming the field). */
export function checkRun(run: TrainingRun, config: ControllerConfig): SpecCheck {
  const name = run.metadata.name;
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > MAX_RUN_NAME) {
    return { ok: false, reason: 'InvalidName', message: `metadata.name: '${name}' must start with a letter, hold only a-z, 0-9 and '-', and be at most ${MAX_RUN_NAME} characters (it prefixes every object and stream of the run)` };
  }
  const raw = (run.spec ?? {}) as Record<string, unknown>;
  if (raw.name !== undefined && raw.name !== name) {
    return { ok: false, reason: 'InvalidSpec', message: `spec.name: '${String(raw.name)}' differs from metadata.name '${name}'; leave it out` };
  }
  const parsed = RunSpecSchema.safeParse({ ...raw, name });
  if (!parsed.success) return { ok: false, reason: 'InvalidSpec', message: formatIssues(parsed.error, 'spec.') };
  const spec = parsed.data;
  if (spec.userSimulator.mode === 'llm' && !spec.userSimulator.model) {
    return { ok: false, reason: 'InvalidSpec', message: 'spec.userSimulator.model: required in llm mode (the endpoint\'s model, or the model a vLLM in the run serves when baseUrl is left out)' };
  }
  if (spec.model.name === 'builtin' && spec.data.domain !== 'local') {
    return { ok: false, reason: 'InvalidSpec', message: `spec.data.domain: the builtin model has a word vocabulary generated for the 'local' domain only, got '${spec.data.domain}'; use data.domain: local, or a Hugging Face model for τ² domains` };
  }
  try {
    return { ok: true, spec, rendered: renderRunConfig(spec, config) };
  } catch (e) {
    return { ok: false, reason: 'InvalidSpec', message: `spec maps to settings an actor rejects: ${ParleyError.from(e).message}` };
  }
}
