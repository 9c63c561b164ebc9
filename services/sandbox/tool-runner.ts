// Executes one tool call the way tau2's environment does: arguments are validated against the tool's
// JSON schema, the tool runs against the session's copy-on-write state, and the result is serialized
// exactly as tau2 shows it to the agent (`Error: <message>` on a tool error).

import { Ajv, type ValidateFunction } from 'ajv';
import type { Domain, DomainState, ToolDef } from './domain.js';
import { ToolError } from './domain.js';
import { PyFloat, PyInt, pyDumps } from './pyjson.js';

/** Argument problems found before the tool runs (the caller maps this to INVALID_ARGUMENT). */
export class ToolArgumentError extends Error {
  override name = 'ToolArgumentError';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

export interface ToolOutput {
  output: string;
  error: boolean;
}

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = new WeakMap<ToolDef, ValidateFunction>();

// Ajv sees tagged numbers as objects; validate a view where they are plain numbers.
function plain(v: unknown): unknown {
  if (v instanceof PyFloat || v instanceof PyInt) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') {
    // fromEntries defines own properties: a "__proto__" argument stays a key (assignment would set the prototype and hide it from the schema).
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

/**
 * Validates `args` against the tool's schema. Throws ToolArgumentError naming the field and what is
 * accepted (missing required argument, wrong type, unexpected argument).
 */
export function validateToolArguments(tool: ToolDef, args: unknown): asserts args is Record<string, unknown> {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new ToolArgumentError(`arguments of ${tool.name} must be a JSON object`, 'arguments');
  }
  let validate = validators.get(tool);
  if (!validate) {
    validate = ajv.compile({ additionalProperties: false, ...tool.parameters });
    validators.set(tool, validate);
  }
  if (validate(plain(args))) return;
  const err = validate.errors?.[0];
  if (!err) throw new ToolArgumentError(`invalid arguments for ${tool.name}`, 'arguments');
  const at = err.instancePath ? err.instancePath.slice(1).replace(/\//g, '.') : '';
  if (err.keyword === 'required') {
    const field = (err.params as { missingProperty: string }).missingProperty;
    throw new ToolArgumentError(`${tool.name}: missing required argument '${at ? at + '.' : ''}${field}'`, field);
  }
  if (err.keyword === 'additionalProperties') {
    const field = (err.params as { additionalProperty: string }).additionalProperty;
    const accepted = Object.keys(tool.parameters.properties).join(', ');
    throw new ToolArgumentError(
      `${tool.name}: unexpected argument '${at ? at + '.' : ''}${field}' (accepted: ${accepted})`,
      field,
    );
  }
  throw new ToolArgumentError(`${tool.name}: argument '${at || 'arguments'}' ${err.message ?? 'is invalid'}`, at || 'arguments');
}

/**
 * Runs a tool whose arguments already passed validation and serializes the result like tau2.
 * Never throws for tool-level failures: they become `{ output: "Error: ...", error: true }`.
 */
export function runTool(domain: Domain, state: DomainState, tool: ToolDef, args: Record<string, unknown>): ToolOutput {
  let result: unknown;
  try {
    result = tool.run(state, args);
  } catch (e) {
    const message = e instanceof ToolError ? e.message : e instanceof Error ? e.message : String(e);
    return { output: `Error: ${message}`, error: true };
  }
  if (typeof result === 'string') return { output: result, error: false };
  return { output: pyDumps(result, { isFloatField: domain.isFloatField }), error: false };
}

/** UTF-8 bytes of every string in parsed arguments, keys included: what a WRITE tool may store. */
export function argumentStringBytes(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (v === null || typeof v !== 'object') return 0;
  let n = 0;
  for (const [k, x] of Object.entries(v)) n += (Array.isArray(v) ? 0 : Buffer.byteLength(k, 'utf8')) + argumentStringBytes(x);
  return n;
}

/** Looks up a tool by name; undefined when the domain has none of that name. */
export function findTool(domain: Domain, name: string): ToolDef | undefined {
  return domain.tools.find((t) => t.name === name);
}
