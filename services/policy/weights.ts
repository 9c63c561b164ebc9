// Policy versions and LoRA adapters: each LoadWeights names its adapter `<prefix>-v<version>` (never
// reused), versions only grow, a repeated load of the current version is idempotent, old adapters go.

import { ParleyError, invalidArgument, type Logger } from '../core/index.js';
import type { PolicyBackend } from './backend.js';

export interface WeightsOptions {
  adapterPrefix: string;
  keepAdapters: number;
  initialVersion: number;
}

export interface LoadedWeights {
  version: number;
  /** Adapter to sample with; undefined: base model or full weights. */
  adapter?: string;
}

/** Tracks which weights the policy serves; loads are serialized. */
export class WeightsManager {
  private current: LoadedWeights;
  private currentUri = '';
  private readonly adapters: string[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly backend: PolicyBackend,
    private readonly opts: WeightsOptions,
    private readonly logger?: Logger,
  ) {
    this.current = { version: opts.initialVersion };
  }

  get loaded(): LoadedWeights {
    return this.current;
  }

  /** The adapter name for a version, e.g. `policy-v12`. */
  adapterName(version: number): string {
    return `${this.opts.adapterPrefix}-v${version}`;
  }

  /**
   * Loads weights `version` from `uri` (`kind` lora or full; '' means lora). Rejects with ParleyError:
   * invalid_argument for a bad version, uri or kind; failed_precondition for a version below the
   * current one or the current version from another uri; unimplemented when the backend cannot load
   * that kind; or the backend's error (the served version is then unchanged).
   */
  load(version: number, uri: string, kind: string, signal?: AbortSignal): Promise<LoadedWeights> {
    const run = this.queue.then(() => this.loadNow(version, uri, kind, signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async loadNow(version: number, uri: string, kind: string, signal?: AbortSignal): Promise<LoadedWeights> {
    // Version 0 may be loaded once over the initial weights (a learner that starts from a cold start or given weights).
    const initial = version === 0 && this.current.version === 0 && this.currentUri === '';
    if (!Number.isSafeInteger(version) || (version < 1 && !initial)) throw invalidArgument('version', `must be a positive integer (0 only over the initial weights, once), got ${version}`);
    if (uri.trim() === '') throw invalidArgument('uri', 'required: the adapter directory or weights location');
    const k = kind === '' ? 'lora' : kind;
    if (k !== 'lora' && k !== 'full') throw invalidArgument('kind', `unknown kind '${kind}'; accepted: lora, full`);
    if (this.currentUri !== '' && version === this.current.version) {
      if (uri === this.currentUri) return this.current;
      throw new ParleyError('failed_precondition', `version ${version} is already loaded from ${this.currentUri}; versions are immutable, publish a new one`);
    }
    if (version <= this.current.version && !initial) {
      throw new ParleyError('failed_precondition', `version ${version} is not newer than the served version ${this.current.version}; versions only grow`);
    }
    if (k === 'full') {
      if (!this.backend.loadFullWeights) {
        throw new ParleyError('unimplemented', `the ${this.backend.kind} backend cannot load full weights; publish a LoRA adapter (kind=lora)`);
      }
      await this.backend.loadFullWeights(version, uri, signal);
      this.current = { version };
    } else {
      if (!this.backend.loadAdapter) throw new ParleyError('unimplemented', `the ${this.backend.kind} backend cannot load LoRA adapters`);
      const name = this.adapterName(version);
      await this.backend.loadAdapter(name, uri, signal);
      this.current = { version, adapter: name };
      this.adapters.push(name);
    }
    this.currentUri = uri;
    this.logger?.info({ version, kind: k, adapter: this.current.adapter }, 'weights loaded');
    await this.prune();
    return this.current;
  }

  private async prune(): Promise<void> {
    while (this.adapters.length > this.opts.keepAdapters) {
      const old = this.adapters.shift()!;
      try {
        await this.backend.unloadAdapter?.(old);
      } catch (e) {
        const err = ParleyError.from(e);
        if (err.code !== 'not_found') this.logger?.warn({ err, adapter: old }, 'could not unload an old adapter');
      }
    }
  }
}
