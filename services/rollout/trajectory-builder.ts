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

export class TrajectoryBuilder {
  private tokens: number[] = [];
  private mask: number[] = [];
  private lps: number[] = [];
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
    for (let i = 0; extends_ && i < n; i++) if (promptIds[i] !== this.tokens[i]) extends_ = false;
    if (!extends_) {
      this.violations++;
      this.tokens = [];
      this.mask = [];
      this.lps = [];
      this.spans.length = 0;
    }
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
    completionIds.forEach((id, i) => {
      this.tokens.push(id);
      this.mask.push(1);
      this.lps.push(logprobs[i] ?? 0);
    });
    if (completionIds.length) this.spans.push({ role: 'assistant', start: cStart, end: this.tokens.length });
  }

  get length(): number {
    return this.tokens.length;
  }

  build(): BuiltTokens {
    return { tokenIds: [...this.tokens], lossMask: [...this.mask], logprobs: [...this.lps], spans: this.spans.map((s) => ({ ...s })), prefixViolations: this.violations };
  }
}
