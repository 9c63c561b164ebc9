// Prometheus metrics of the policy service (parley_policy_*): latency, tokens, in-flight requests,
// backend retries, token-in-token-out drift, prefix-cache use, errors by code and weight sync.

import { Counter, Gauge, Histogram, getOrCreate, metricsRegistry, type Registry } from '../core/index.js';

export interface PolicyMetrics {
  requestSeconds: Histogram<'method' | 'code'>;
  backendSeconds: Histogram<'code'>;
  promptTokens: Counter;
  completionTokens: Counter;
  inFlight: Gauge;
  retries: Counter<'code'>;
  driftTokens: Histogram;
  driftTokensTotal: Counter;
  driftExpectedTokensTotal: Counter;
  prefixCache: Counter<'result'>;
  errors: Counter<'method' | 'code'>;
  policyVersion: Gauge;
  toolCalls: Counter<'result'>;
  weightLoadSeconds: Histogram;
  weightLoadFailures: Counter<'code'>;
}

/** The policy metrics in `registry` (the process registry by default); repeated calls return the same metrics. */
export function policyMetrics(registry: Registry = metricsRegistry()): PolicyMetrics {
  const reg = { registers: [] as Registry[] };
  return {
    requestSeconds: getOrCreate(registry, 'parley_policy_request_duration_seconds', () =>
      new Histogram({ name: 'parley_policy_request_duration_seconds', help: 'Policy RPC latency by method and result code.', labelNames: ['method', 'code'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], ...reg }),
    ),
    backendSeconds: getOrCreate(registry, 'parley_policy_backend_duration_seconds', () =>
      new Histogram({ name: 'parley_policy_backend_duration_seconds', help: 'Backend generate latency, retries included.', labelNames: ['code'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], ...reg }),
    ),
    promptTokens: getOrCreate(registry, 'parley_policy_prompt_tokens_total', () =>
      new Counter({ name: 'parley_policy_prompt_tokens_total', help: 'Prompt tokens sent to the backend.', ...reg }),
    ),
    completionTokens: getOrCreate(registry, 'parley_policy_completion_tokens_total', () =>
      new Counter({ name: 'parley_policy_completion_tokens_total', help: 'Completion tokens sampled (rate() gives tokens/s).', ...reg }),
    ),
    inFlight: getOrCreate(registry, 'parley_policy_requests_in_flight', () =>
      new Gauge({ name: 'parley_policy_requests_in_flight', help: 'Generate requests being served.', ...reg }),
    ),
    retries: getOrCreate(registry, 'parley_policy_backend_retries_total', () =>
      new Counter({ name: 'parley_policy_backend_retries_total', help: 'Backend requests retried, by the error code retried.', labelNames: ['code'], ...reg }),
    ),
    driftTokens: getOrCreate(registry, 'parley_policy_drift_tokens', () =>
      new Histogram({ name: 'parley_policy_drift_tokens', help: 'Tokens (diff/LCS) by which a full re-render differs from the token-in-token-out prompt beyond what the template strips by design, per checked request.', buckets: [0, 1, 4, 16, 64, 256, 1024, 4096], ...reg }),
    ),
    driftTokensTotal: getOrCreate(registry, 'parley_policy_drift_tokens_total', () =>
      new Counter({ name: 'parley_policy_drift_tokens_total', help: 'Sum of drift tokens over checked requests.', ...reg }),
    ),
    driftExpectedTokensTotal: getOrCreate(registry, 'parley_policy_drift_expected_tokens_total', () =>
      new Counter({ name: 'parley_policy_drift_expected_tokens_total', help: 'Tokens a full re-render drops by design (think blocks of earlier turns), over checked requests; not drift.', ...reg }),
    ),
    prefixCache: getOrCreate(registry, 'parley_policy_prefix_cache_lookups_total', () =>
      new Counter({ name: 'parley_policy_prefix_cache_lookups_total', help: 'Prefix-state lookups: hit, miss (no state) or reset (the conversation changed).', labelNames: ['result'], ...reg }),
    ),
    errors: getOrCreate(registry, 'parley_policy_errors_total', () =>
      new Counter({ name: 'parley_policy_errors_total', help: 'Failed policy RPCs by method and error code.', labelNames: ['method', 'code'], ...reg }),
    ),
    policyVersion: getOrCreate(registry, 'parley_policy_weights_version', () =>
      new Gauge({ name: 'parley_policy_weights_version', help: 'Policy version (weights) now served.', ...reg }),
    ),
    toolCalls: getOrCreate(registry, 'parley_policy_tool_calls_total', () =>
      new Counter({ name: 'parley_policy_tool_calls_total', help: 'Completions by tool-call parse result: none, ok, malformed.', labelNames: ['result'], ...reg }),
    ),
    weightLoadSeconds: getOrCreate(registry, 'parley_policy_weight_load_seconds', () =>
      new Histogram({ name: 'parley_policy_weight_load_seconds', help: 'Time to fetch and load a published weights version (download included).', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600], ...reg }),
    ),
    weightLoadFailures: getOrCreate(registry, 'parley_policy_weight_load_failures_total', () =>
      new Counter({ name: 'parley_policy_weight_load_failures_total', help: 'Failed attempts to fetch or load published weights, by error code.', labelNames: ['code'], ...reg }),
    ),
  };
}
