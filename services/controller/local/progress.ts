// The live progress display of `parley run`: one status line rewritten in place on a terminal, and log
// lines above it; without a terminal, status lines are printed at most every few seconds.

export class Progress {
  private last = '';
  private lastPrinted = 0;

  constructor(
    private readonly tty: boolean = Boolean(process.stderr.isTTY),
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly everyMs = 5000,
  ) {}

  /** Replaces the status line. */
  status(line: string): void {
    this.last = line;
    if (this.tty) {
      this.out.write(`\r\x1b[2K${line}`);
    } else if (Date.now() - this.lastPrinted >= this.everyMs) {
      this.lastPrinted = Date.now();
      this.out.write(`${line}\n`);
    }
  }

  /** Prints a permanent line (above the status line on a terminal). */
  log(line: string): void {
    const stamp = new Date().toISOString().slice(11, 19);
    if (this.tty) this.out.write(`\r\x1b[2K[${stamp}] ${line}\n${this.last ? this.last : ''}`);
    else this.out.write(`[${stamp}] ${line}\n`);
  }

  done(): void {
    if (this.tty && this.last) this.out.write('\n');
    this.last = '';
  }
}
