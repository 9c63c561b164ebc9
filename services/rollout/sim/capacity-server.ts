// A model of a continuous-batching inference server (a test double of vLLM's scheduling, not of its API):
// a fixed decode capacity in tokens/s shared by the requests in flight (processor sharing), each request
// capped at a per-sequence speed. It measures how busy the server was, for efficiency figures.

export interface CapacityServerOptions {
  /** Total decode throughput when enough requests run at once. */
  capacityTokensPerS: number;
  /** Fastest a single sequence decodes (so low concurrency cannot saturate the server). */
  maxSequenceTokensPerS: number;
}

interface Job {
  remaining: number;
  resolve: () => void;
}

export class CapacityServer {
  private readonly jobs = new Set<Job>();
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private decoded = 0;
  private busyStart: number | undefined;
  private firstStart: number | undefined;
  private lastEnd = 0;

  constructor(readonly opts: CapacityServerOptions) {
    if (!(opts.capacityTokensPerS > 0) || !(opts.maxSequenceTokensPerS > 0)) throw new Error('capacity server: rates must be positive');
  }

  private rate(): number {
    const n = this.jobs.size;
    return n === 0 ? 0 : Math.min(this.opts.maxSequenceTokensPerS, this.opts.capacityTokensPerS / n);
  }

  /** Advances every job by the time since the last event. */
  private advance(): void {
    const now = performance.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    if (dt <= 0 || this.jobs.size === 0) return;
    const r = this.rate();
    for (const j of this.jobs) {
      const done = Math.min(j.remaining, r * dt);
      j.remaining -= done;
      this.decoded += done;
    }
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const j of [...this.jobs]) {
      if (j.remaining <= 1e-9) {
        this.jobs.delete(j);
        j.resolve();
      }
    }
    if (this.jobs.size === 0) {
      this.lastEnd = performance.now();
      return;
    }
    const r = this.rate();
    const soonest = Math.min(...[...this.jobs].map((j) => j.remaining));
    this.timer = setTimeout(() => {
      this.advance();
      this.schedule();
    }, Math.max(0, (soonest / r) * 1000));
  }

  /** Decodes `tokens` tokens; resolves when they are done at the shared rate. */
  decode(tokens: number): Promise<void> {
    this.advance();
    const now = performance.now();
    this.firstStart ??= now;
    this.busyStart ??= now;
    return new Promise((resolve) => {
      this.jobs.add({ remaining: Math.max(0, tokens), resolve });
      this.schedule();
    });
  }

  /** Tokens decoded so far. */
  get tokensDecoded(): number {
    this.advance();
    return this.decoded;
  }

  /** Resets the counters (between measured phases). */
  resetCounters(): void {
    this.advance();
    this.decoded = 0;
    this.firstStart = undefined;
  }
}
