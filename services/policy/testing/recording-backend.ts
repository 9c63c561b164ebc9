// A PolicyBackend test double for weight-sync tests: samples nothing useful, records every weights
// load in order, and can hold a version's load open (gate) to stand in for a slow or crashing load.

import { ParleyError } from '../../core/errors.js';
import type { BackendGenerateOutput, PolicyBackend } from '../backend.js';

export interface RecordedLoad {
  version: number;
  /** The folder handed to the backend. */
  uri: string;
  kind: 'full' | 'lora';
}

export class RecordingBackend implements PolicyBackend {
  readonly kind = 'recording';
  readonly loads: RecordedLoad[] = [];
  /** Called before a load is recorded; a test holds a load open by returning a pending promise. */
  gate: ((version: number) => Promise<void>) | undefined;
  /** Loads of these versions fail once with this error code, then succeed. */
  readonly failOnce = new Map<number, 'unavailable' | 'not_found'>();

  constructor(opts: { adapters?: boolean } = {}) {
    if (opts.adapters === false) this.loadAdapter = undefined;
  }

  async generate(): Promise<BackendGenerateOutput> {
    return { tokenIds: [], logprobs: [], finishReason: 'stop' };
  }

  async loadFullWeights(version: number, uri: string): Promise<void> {
    await this.load(version, uri, 'full');
  }

  loadAdapter: ((name: string, path: string) => Promise<void>) | undefined = async (name, path) => {
    await this.load(Number(/-v(\d+)$/.exec(name)?.[1]), path, 'lora');
  };

  /** The versions loaded, in order. */
  get versions(): number[] {
    return this.loads.map((l) => l.version);
  }

  private async load(version: number, uri: string, kind: RecordedLoad['kind']): Promise<void> {
    const failure = this.failOnce.get(version);
    if (failure) {
      this.failOnce.delete(version);
      throw new ParleyError(failure, `test double: load of version ${version} fails once`);
    }
    await this.gate?.(version);
    this.loads.push({ version, uri, kind });
  }
}
