// Public surface of the message bus: the contract, its error type, both implementations, and
// connectBus, which picks one from a URL.

import { createMemoryBus } from './memory.js';
import { connectNatsBus, type NatsBusOptions } from './nats.js';
import type { Bus } from './types.js';

export type * from './types.js';
export { BUS_ERROR_CODES, BusError, type BusErrorCode, type BusErrorOptions } from './errors.js';
export { createMemoryBus } from './memory.js';
export { HANDLER_ERROR_CODE_HEADER, HANDLER_ERROR_HEADER, MSG_ID_HEADER } from './validate.js';
export { connectNatsBus, type NatsBusOptions } from './nats.js';

/**
 * The bus at `url`: the in-process bus for undefined or 'memory://', NATS JetStream for a
 * `nats://host:port` URL (comma-separated for a cluster). Fails with BusError('unavailable') when
 * the server cannot be reached, 'invalid' for any other scheme.
 */
export async function connectBus(url?: string, opts: Omit<NatsBusOptions, 'servers'> = {}): Promise<Bus> {
  if (url === undefined || url === 'memory://') return createMemoryBus();
  return connectNatsBus({ ...opts, servers: url });
}
