// A model of a continuous-batching inference server (a test double of vLLM's scheduling, not of its API):
// a fixed decode capacity in tokens/s shared by the requests in flight (processor sharing), each request
// capped at a per-sequence speed. It measures how busy the server was, for efficiency figures.
//
// The model runs on its own clock: a request finishes at the exact moment its last token is decoded, and
// the capacity it frees goes to the other requests from that moment, however late the caller's event loop
// notices. It polls the clock in the last 1.5 ms before a completion (a few percent of a core), so an idle
// loop resumes the caller within ~0.05 ms, as a reply over a socket would; any further delay is the
// caller's loop being busy, which decode() exposes (finishedMs) so callers can count it as their overhead.

export interface CapacityServerOptions {
  /** Total decode throughput when enough requests run at once. */
  capacityTokensPerS: number;
  /** Fastest a single sequence decodes (so low concurrency cannot saturate the server). */
  maxSequenceTokensPerS: number;
}

/** When a request was decoded, on the server's clock (performance.now() milliseconds). */
export interface DecodeTiming {
  /** The request arrived. */
  arrivedMs: number;
  /** Its last token was decoded. The caller resumes later: the difference is notification lag. */
  finishedMs: number;
}

/** How long before a completion the server stops sleeping on a timer and polls the clock. */
const POLL_WINDOW_MS = 1;

interface Job {
  remaining: number;
  arrivedMs: number;
  finishedMs: number;
  resolve: (t: DecodeTiming) => void;
}

export class CapacityServer {
  private jobs: Job[] = [];
  private readonly finished: Job[] = [];
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private decoded = 0;
  private saturatedMs = 0;
  private busyMs = 0;

  constructor(readonly opts: CapacityServerOptions) {
    if (!(opts.capacityTokensPerS > 0) || !(opts.maxSequenceTokensPerS > 0)) throw new Error('capacity server: rates must be positive');
  }

  private rate(): number {
    const n = this.jobs.length;
    return n === 0 ? 0 : Math.min(this.opts.maxSequenceTokensPerS, this.opts.capacityTokensPerS / n);
  }

  private soonest(): number {
    let soonest = Infinity;
    for (let i = 0; i < this.jobs.length; i++) if (this.jobs[i]!.remaining < soonest) soonest = this.jobs[i]!.remaining;
    return soonest;
  }

  /** Runs the model up to `now`, piece by piece between completions, so freed capacity is never lost. */
  private advance(now = performance.now()): void {
    let t = this.last;
    this.last = now;
    while (this.jobs.length > 0 && t < now) {
      const r = this.rate();
      const soonest = this.soonest();
      const doneAt = t + (soonest / r) * 1000;
      const until = Math.min(now, doneAt);
      // At a completion, advance by exactly the smallest remaining so that job lands on 0.
      const step = doneAt <= now ? soonest : (r * (until - t)) / 1000;
      for (let i = 0; i < this.jobs.length; i++) {
        const j = this.jobs[i]!;
        const d = Math.min(j.remaining, step);
        j.remaining -= d;
        this.decoded += d;
      }
      this.busyMs += until - t;
      if (this.jobs.length * this.opts.maxSequenceTokensPerS >= this.opts.capacityTokensPerS) this.saturatedMs += until - t;
      t = until;
      if (doneAt <= now) {
        for (const j of this.jobs) {
          if (j.remaining > 1e-9) continue;
          j.finishedMs = doneAt;
          this.finished.push(j);
        }
        this.jobs = this.jobs.filter((j) => j.remaining > 1e-9);
      }
    }
  }

  /** Advances the model, then resolves and reschedules (one function, reused: polling must not make garbage). */
  private readonly tick = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.advance();
    this.schedule();
  };

  /** Resolves finished requests and sets a timer for the next completion. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    if (this.finished.length > 0) {
      for (const j of this.finished) j.resolve({ arrivedMs: j.arrivedMs, finishedMs: j.finishedMs });
      this.finished.length = 0;
    }
    if (this.jobs.length === 0) return;
    const delayMs = (this.soonest() / this.rate()) * 1000;
    // Node timers fire on whole milliseconds of the loop's clock, up to ~1.5 ms late; a real server's
    // reply wakes the loop at once. So sleep on a timer until shortly before the completion, then poll.
    if (delayMs > POLL_WINDOW_MS) this.timer = setTimeout(this.tick, delayMs - POLL_WINDOW_MS);
    else this.immediate = setImmediate(this.tick);
  }

  /** Decodes `tokens` tokens; resolves when they are done at the shared rate, with the server-side timing. */
  decode(tokens: number): Promise<DecodeTiming> {
    const now = performance.now();
    this.advance(now);
    return new Promise((resolve) => {
      this.jobs.push({ remaining: Math.max(0, tokens), arrivedMs: now, finishedMs: NaN, resolve });
      this.schedule();
    });
  }

  /** Tokens decoded so far. */
  get tokensDecoded(): number {
    this.advance();
    if (this.finished.length > 0) this.schedule();
    return this.decoded;
  }

  /** Milliseconds so far with at least one request in flight, and with enough of them to use the whole capacity. */
  get busy(): { busyMs: number; saturatedMs: number } {
    this.advance();
    if (this.finished.length > 0) this.schedule();
    return { busyMs: this.busyMs, saturatedMs: this.saturatedMs };
  }

  /** Resets the counters (between measured phases). */
  resetCounters(): void {
    this.advance();
    if (this.finished.length > 0) this.schedule();
    this.decoded = 0;
    this.busyMs = 0;
    this.saturatedMs = 0;
  }
}
