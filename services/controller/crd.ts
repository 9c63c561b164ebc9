// The TrainingRun CustomResourceDefinition: spec schema generated from RunSpecSchema, a hand-written
// status schema matching training-run.ts, printer columns and the status subresource.

import { z } from 'zod';
import { RunSpecSchema } from './run-spec.js';
import { toStructural } from './structural-schema.js';
import { CONDITION_REASONS, CONDITION_TYPES, GROUP, KIND, PHASES, PLURAL, SINGULAR, VERSION } from './training-run.js';

type Schema = Record<string, unknown>;

const int = (description: string, minimum = 0): Schema => ({ type: 'integer', format: 'int64', minimum, description });
const num = (description: string): Schema => ({ type: 'number', description });
const time = (description: string): Schema => ({ type: 'string', format: 'date-time', description });

/** The spec schema: RunSpecSchema's input shape, structural, with `name` optional (it defaults to metadata.name). */
export function specSchema(): Schema {
  const json = z.toJSONSchema(RunSpecSchema, { io: 'input', target: 'openapi-3.0', unrepresentable: 'throw' });
  const spec = toStructural(json, 'spec');
  spec.required = ((spec.required as string[] | undefined) ?? []).filter((k) => k !== 'name');
  spec.description = 'The run spec (services/controller/run-spec.ts). name may be left out: it is the object name.';
  return spec;
}

/** The status schema; kept in step with TrainingRunStatus by a test that validates computed statuses against it. */
export function statusSchema(): Schema {
  const reasons = [...new Set(Object.values(CONDITION_REASONS).flat())];
  return {
    type: 'object',
    description: 'Observed state, written by the controller.',
    properties: {
      phase: { type: 'string', enum: [...PHASES], description: 'Summary of the conditions.' },
      observedGeneration: int('The metadata.generation this status was computed for.'),
      conditions: {
        type: 'array',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        items: {
          type: 'object',
          required: ['type', 'status', 'reason', 'lastTransitionTime'],
          properties: {
            type: { type: 'string', enum: CONDITION_TYPES },
            status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
            reason: { type: 'string', enum: reasons },
            message: { type: 'string', maxLength: 32768 },
            lastTransitionTime: time('When status last changed.'),
            observedGeneration: int('The generation the condition was set for.'),
          },
        },
      },
      step: int('Learner steps completed.'),
      policyVersion: int('Version of the newest published weights.'),
      evaluatedStep: int('The latest step whose held-out evaluation was published (the run succeeds once it reaches the last step).'),
      metrics: {
        type: 'object',
        description: 'Latest run metrics from the run events.',
        properties: {
          rewardMean: num('Mean reward of the latest step.'),
          passRate: num('Share of episodes with full reward in the latest step or evaluation.'),
          episodes: int('Episodes trained on so far.'),
          tokensPerSecond: num('Learner throughput of the latest step.'),
          stalenessMean: num('Mean policy-version lag of the latest step.'),
          weightSyncSeconds: num('Seconds from weights_published to the last weights_loaded.'),
          updatedAt: time('When the metrics last changed.'),
        },
      },
      actors: {
        type: 'array',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['group'],
        items: {
          type: 'object',
          required: ['group', 'desired', 'ready', 'restarts', 'retiredRestarts'],
          properties: {
            group: { type: 'string' },
            desired: int('Replicas wanted now.'),
            ready: int('Ready pods.'),
            restarts: int('Failures counted against maxRestarts.'),
            retiredRestarts: int('Restarts of pods the controller replaced.'),
            lastFailureTime: time('Last failure seen.'),
            nextRestartTime: time('Earliest replacement of a failed pod.'),
            initFailure: { type: 'string', description: 'Why a pod of the group cannot start: a failed init container and its message.' },
          },
        },
      },
      startTime: time('When the actors were first created.'),
      completionTime: time('When the run succeeded or failed.'),
      message: { type: 'string', maxLength: 32768 },
    },
  };
}

/** The complete CRD object (apiextensions.k8s.io/v1). */
export function trainingRunCrd(): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'parley', 'app.kubernetes.io/part-of': 'parley' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: ['tr'], categories: ['parley'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Step', type: 'integer', jsonPath: '.status.step' },
            { name: 'Policy', type: 'integer', jsonPath: '.status.policyVersion', description: 'Policy (weights) version' },
            { name: 'Reward', type: 'number', jsonPath: '.status.metrics.rewardMean' },
            { name: 'Pass-Rate', type: 'number', jsonPath: '.status.metrics.passRate' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A Parley training run: its actors, streams and progress.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema(),
                status: statusSchema(),
              },
            },
          },
        },
      ],
    },
  };
}
