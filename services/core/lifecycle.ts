// Graceful shutdown: SIGTERM/SIGINT run registered closers once, in reverse order, then exit.

import type { Logger } from './logger.js';

type Closer = () => Promise<void> | void;

/**
 * Registers `closers` to run on SIGTERM or SIGINT (reverse order, each awaited, errors logged), then exits 0.
 * A second signal exits at once with status 1. Returns a function that runs the same shutdown on demand.
 */
export function onShutdown(logger: Logger, closers: Closer[]): () => Promise<void> {
  let running: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    running ??= (async () => {
      for (const close of [...closers].reverse()) {
        try {
          await close();
        } catch (e) {
          logger.error({ err: e }, 'error during shutdown');
        }
      }
    })();
    return running;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (running) process.exit(1);
    logger.info({ signal: sig }, 'shutting down');
    void shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return shutdown;
}
