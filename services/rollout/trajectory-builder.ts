// Builds a Trajectory's token sequence from the policy's token-in-token-out responses: each turn's prompt
// must extend the previous prompt + completion exactly; sampled tokens get loss mask 1 and their log-probs.

export interface Span {
  role: string;
  start: number;
  end: number;
}

export interface BuiltTokens {
  tokenIds: number[];
  lossMask: number[];
  logprobs: number[];
  spans: Span[];
  /** Turns whose prompt did not extend the previous sequence exactly (should be 0). */
  prefixViolations: number;
}

// Token ids and log-probs live in typed arrays (off the JS heap): an episode's sequence grows for seconds,
// and as plain arrays every young-generation collection would copy it until it was promoted.
const INITIAL_CAPACITY = 1024;

/** A growable typed array: capacity doubles, so a long episode copies its tokens O(log n) times. */
class Growable<T extends Uint32Array | Uint8Array | Float32Array> {
  length = 0;
  private data: T;

  constructor(private readonly make: new (n: number) => T) {
    this.data = new make(INITIAL_CAPACITY);
  }

  reserve(n: number): void {
    if (n <= this.data.length) return;
    const next = new this.make(Math.max(n, this.data.length * 2));
    next.set(this.data.subarray(0, this.length) as never);
    this.data = next;
  }

  push(x: number): void {
    this.data[this.length++] = x;
  }

  at(i: number): number {
    return this.data[i]!;
  }

  toArray(): number[] {
    // An indexed loop: Array.from goes through the iterator protocol, one result object per element.
    const out = new Array<number>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.data[i]!;
    return out;
  }
}

export class TrajectoryBuilder {
  private readonly tokens = new Growable(Uint32Array);
  private readonly mask = new Growable(Uint8Array);
  private readonly lps = new Growable(Float32Array);
  private readonly spans: Span[] = [];
  private violations = 0;

  /**
   * Adds one policy turn. `gapRole` labels the prompt tokens added since the last turn (user, tool; the
   * first turn's prefix is "prompt"). When the prompt does not extend the sequence so far, the sequence is
   * rebuilt from this prompt (earlier sampled tokens lose their mask) and the violation is counted.
   */
  addTurn(promptIds: readonly number[], completionIds: readonly number[], logprobs: readonly number[], gapRole: string): void {
    const n = this.tokens.length;
    let extends_ = promptIds.length >= n;
    for (let i = 0; extends_ && i < n; i++) if (promptIds[i] !== this.tokens.at(i)) extends_ = false;
    if (!extends_) {
      this.violations++;
      this.tokens.length = this.mask.length = this.lps.length = 0;
      this.spans.length = 0;
    }
    const total = Math.max(this.tokens.length, promptIds.length) + completionIds.length;
    for (const g of [this.tokens, this.mask, this.lps]) g.reserve(total);
    const start = this.tokens.length;
    if (promptIds.length > start) {
      this.spans.push({ role: start === 0 ? 'prompt' : gapRole, start, end: promptIds.length });
      for (let i = start; i < promptIds.length; i++) {
        this.tokens.push(promptIds[i]!);
        this.mask.push(0);
        this.lps.push(0);
      }
    }
    const cStart = this.tokens.length;
    for (let i = 0; i < completionIds.length; i++) {
      this.tokens.push(completionIds[i]!);
      this.mask.push(1);
      this.lps.push(logprobs[i] ?? 0);
    }
    if (completionIds.length) this.spans.push({ role: 'assistant', start: cStart, end: this.tokens.length });
  }

  get length(): number {
    return this.tokens.length;
  }

  build(): BuiltTokens {
    return { tokenIds: this.tokens.toArray(), lossMask: this.mask.toArray(), logprobs: this.lps.toArray(), spans: this.spans.map((s) => ({ ...s })), prefixViolations: this.violations };
  }
}
