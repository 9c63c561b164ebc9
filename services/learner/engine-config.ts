// The trainer engine's Init settings as a run spec spells them, derived from the engine's own declaration
// (engine/parley_engine/config.schema.json): zod schemas with camelCase names, and the one mapping back
// to the engine's snake_case config_json.

import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** The subset of JSON Schema config.schema.json uses (its description lists the keywords). */
export interface EngineFieldSchema {
  type: string | string[];
  description: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: string[];
  pattern?: string;
  minLength?: number;
  items?: EngineFieldSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, EngineFieldSchema>;
  additionalProperties?: boolean;
  /** The run spec's name when it is not the camelCase of the engine's (lora.r is model.lora.rank). */
  'x-run-spec-name'?: string;
}

type ObjectSchema = EngineFieldSchema & { properties: Record<string, EngineFieldSchema> };

/** The engine's declaration, as shipped beside the engine (the TS image carries this one file of it). */
export const ENGINE_CONFIG_SCHEMA: ObjectSchema = JSON.parse(readFileSync(new URL('./engine/parley_engine/config.schema.json', import.meta.url), 'utf8'));

const LORA_SCHEMA = ENGINE_CONFIG_SCHEMA.properties.lora as ObjectSchema;

/** A field's name in the run spec: its x-run-spec-name, else the camelCase of the engine's name (d_model → dModel). */
export function runSpecName(engineName: string, field: EngineFieldSchema): string {
  return field['x-run-spec-name'] ?? engineName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A zod schema with the field's type, range, pattern or choices. Throws on a construct this file does not translate. */
function fieldSchema(name: string, f: EngineFieldSchema): z.ZodType {
  switch (f.type) {
    case 'integer':
    case 'number': {
      let n = f.type === 'integer' ? z.number().int() : z.number();
      if (f.minimum !== undefined) n = n.min(f.minimum);
      if (f.exclusiveMinimum !== undefined) n = n.gt(f.exclusiveMinimum);
      if (f.maximum !== undefined) n = n.max(f.maximum);
      if (f.exclusiveMaximum !== undefined) n = n.lt(f.exclusiveMaximum);
      return n;
    }
    case 'boolean':
      return z.boolean();
    case 'string': {
      if (f.enum) return z.enum(f.enum as [string, ...string[]]);
      let s = z.string();
      if (f.minLength !== undefined) s = s.min(f.minLength);
      if (f.pattern !== undefined) s = s.regex(new RegExp(f.pattern));
      return s;
    }
    case 'array': {
      let a = z.array(fieldSchema(`${name}[]`, f.items!));
      if (f.minItems !== undefined) a = a.min(f.minItems);
      if (f.maxItems !== undefined) a = a.max(f.maxItems);
      return a;
    }
    default:
      throw new Error(`config.schema.json: ${name} has type ${JSON.stringify(f.type)}, which the run spec does not translate`);
  }
}

/**
 * The run spec's `model.engine`: every engine field except `omit` (those the run spec sets elsewhere),
 * optional (left out = the engine's default, named in the description), unknown keys refused, and the
 * engine's cross-field rule (d_model divisible by heads) checked.
 */
export function engineSettingsSchema(omit: readonly string[]) {
  const fields = Object.entries(ENGINE_CONFIG_SCHEMA.properties).filter(([name]) => !omit.includes(name));
  const shape = Object.fromEntries(
    fields.map(([name, f]) => [runSpecName(name, f), fieldSchema(name, f).optional().meta({ description: `${f.description} Engine default: ${JSON.stringify(f.default)}.` })]),
  );
  const dflt = (name: string) => ENGINE_CONFIG_SCHEMA.properties[name]!.default as number;
  return z
    .object(shape)
    .strict()
    .superRefine((s, ctx) => {
      const dModel = (s.dModel as number | undefined) ?? dflt('d_model');
      const heads = (s.heads as number | undefined) ?? dflt('heads');
      if (dModel % heads) ctx.addIssue({ code: 'custom', path: ['dModel'], message: `must be divisible by heads (${heads})` });
    });
}

/** LoRA settings as the run spec holds them (defaults filled). */
export interface LoraSettings {
  rank: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
}

/** The run spec's `model.lora`: the engine's lora fields under their run-spec names, with the engine's defaults. */
export function loraSettingsSchema(): z.ZodType<LoraSettings, Partial<LoraSettings>> {
  const shape = Object.fromEntries(
    Object.entries(LORA_SCHEMA.properties).map(([name, f]) => [runSpecName(name, f), fieldSchema(name, f).default(f.default as never).meta({ description: f.description })]),
  );
  return z.object(shape).strict() as unknown as z.ZodType<LoraSettings, Partial<LoraSettings>>;
}

function toEngineNames(values: Record<string, unknown>, schema: ObjectSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(schema.properties)) {
    const v = values[runSpecName(name, f)];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/**
 * The engine's config_json fields for run-spec engine settings and LoRA settings (camelCase → snake_case,
 * in the engine's field order; fields left out stay out, so the engine applies its defaults).
 */
export function engineConfigFields(engine: Record<string, unknown>, lora?: LoraSettings): Record<string, unknown> {
  const out = toEngineNames(engine, ENGINE_CONFIG_SCHEMA);
  if (lora) out.lora = toEngineNames(lora as unknown as Record<string, unknown>, LORA_SCHEMA);
  return out;
}
