// Structured JSON logs (pino) for every service; level from PARLEY_LOG_LEVEL, never secrets.

import { pino, type Logger } from 'pino';

export type { Logger };

/** A logger for one component. Logs go to stderr so stdout stays free for command output. */
export function createLogger(component: string, level = process.env.PARLEY_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    { name: component, level, redact: { paths: ['*.apiKey', '*.api_key', '*.authorization', 'apiKey'], censor: '[redacted]' } },
    pino.destination(2),
  );
}
