// Prometheus metrics of the bucket cache, in a registry of their own (no global state).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { UpstreamOperation, UpstreamResult } from './upstream.ts';

export type ServedKind = 'get' | 'head' | 'list' | 'not_modified' | 'not_found' | 'error';
export type RefreshResult = 'updated' | 'unchanged' | 'refused' | 'failed';

export interface CacheMetrics {
  readonly registry: Registry;
  served(kind: ServedKind): void;
  upstream(operation: UpstreamOperation, result: UpstreamResult): void;
  refresh(result: RefreshResult, trigger: 'interval' | 'push'): void;
  snapshot(info: { version: string; objects: number; bytes: number; flags: number }): void;
}

export function createCacheMetrics(options: {
  processMetrics?: boolean;
  /** Unix seconds at which the upstream last confirmed the served snapshot; undefined before one. */
  confirmedAt: () => number | undefined;
}): CacheMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'flipt_bucket_cache_' });
  const registers = [registry];
  const served = new Counter({
    name: 'flipt_bucket_cache_requests_total',
    help: 'S3 requests served to sidecars, by kind (get, head, list, not_modified, not_found, error).',
    labelNames: ['kind'],
    registers,
  });
  for (const k of ['get', 'head', 'list', 'not_modified', 'not_found', 'error']) served.labels(k).inc(0);
  const upstream = new Counter({
    name: 'flipt_bucket_cache_upstream_requests_total',
    help: 'Requests to the real bucket, by operation and result (ok, not_found, precondition_failed, error).',
    labelNames: ['operation', 'result'],
    registers,
  });
  const refreshes = new Counter({
    name: 'flipt_bucket_cache_refreshes_total',
    help: 'Refreshes from the bucket, by result (updated, unchanged, refused: invalid or too large, failed: unreachable) and trigger (interval, push).',
    labelNames: ['result', 'trigger'],
    registers,
  });
  new Gauge({
    name: 'flipt_bucket_cache_snapshot_age_seconds',
    help: 'Seconds since the bucket last confirmed the served snapshot (a refresh that found it unchanged or replaced it); -1 before the first snapshot.',
    registers,
    collect() {
      const at = options.confirmedAt();
      this.set(at === undefined ? -1 : Math.max(0, Date.now() / 1000 - at));
    },
  });
  const info = new Gauge({
    name: 'flipt_bucket_cache_snapshot_info',
    help: 'The served snapshot: etag label is the object ETag (one object) or a digest of every key and ETag.',
    labelNames: ['etag'],
    registers,
  });
  const objects = new Gauge({
    name: 'flipt_bucket_cache_snapshot_objects',
    help: 'Objects in the served snapshot.',
    registers,
  });
  const bytes = new Gauge({
    name: 'flipt_bucket_cache_snapshot_bytes',
    help: 'Bytes of the served snapshot.',
    registers,
  });
  const flags = new Gauge({
    name: 'flipt_bucket_cache_snapshot_flags',
    help: 'Flags in the served snapshot.',
    registers,
  });
  return {
    registry,
    served: (kind) => served.labels(kind).inc(),
    upstream: (operation, result) => upstream.labels(operation, result).inc(),
    refresh: (result, trigger) => refreshes.labels(result, trigger).inc(),
    snapshot(s) {
      info.reset();
      info.labels(s.version).set(1);
      objects.set(s.objects);
      bytes.set(s.bytes);
      flags.set(s.flags);
    },
  };
}
