// Prometheus metrics: one registry per process, served on /metrics; names are parley_<component>_<noun>_<unit>.

import { listenHost } from './listen-host.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

const METRIC_NAME = /^parley_[a-z0-9]+_[a-z0-9_]+$/;

let defaultRegistry: Registry | undefined;

/** The process-wide registry (with Node process metrics). */
export function metricsRegistry(): Registry {
  if (!defaultRegistry) {
    defaultRegistry = new Registry();
    collectDefaultMetrics({ register: defaultRegistry, prefix: 'parley_process_' });
  }
  return defaultRegistry;
}

/** Throws when a metric name does not follow parley_<component>_<noun>_<unit>. */
export function checkMetricName(name: string): string {
  if (!METRIC_NAME.test(name)) throw new Error(`metric name '${name}' must match parley_<component>_<noun>_<unit>`);
  return name;
}

/** Returns the existing metric of that name in the registry, or creates it (safe across repeated service construction). */
export function getOrCreate<T extends Counter | Gauge | Histogram>(
  registry: Registry,
  name: string,
  make: () => T,
): T {
  const existing = registry.getSingleMetric(checkMetricName(name));
  if (existing) return existing as T;
  const m = make();
  registry.registerMetric(m);
  return m;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the registry on http://host:port/metrics, with /healthz (always 200: the process is alive) and
 * /readyz (200 when `opts.ready` says so or is absent, else 503). Rejects when the port cannot be bound.
 */
export function serveMetrics(registry: Registry, port: number, host = '0.0.0.0', opts: { ready?: () => boolean } = {}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        },
        (e: unknown) => {
          res.writeHead(500);
          res.end(String(e));
        },
      );
    } else if (req.url === '/healthz') {
      res.writeHead(200);
      res.end('ok');
    } else if (req.url === '/readyz') {
      const ready = opts.ready?.() ?? true;
      res.writeHead(ready ? 200 : 503);
      res.end(ready ? 'ok' : 'not ready');
    } else {
      res.writeHead(404);
      res.end('not found: try /metrics');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, listenHost(host), () => {
      const addr = server.address() as AddressInfo;
      resolve({
        port: addr.port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
