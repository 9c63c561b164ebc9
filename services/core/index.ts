// Public surface of services/core: what other services may import.

export * from './errors.js';
export * from './config.js';
export * from './grpc.js';
export * from './lifecycle.js';
export * from './logger.js';
export * from './metrics.js';
export * from './retry.js';
export * from './run-subjects.js';
export * from './local-client.js';
export * from './seed.js';
