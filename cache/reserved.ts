// Paths the cache answers itself; the served bucket cannot be named like them (checked in config),
// so `/metrics` is never mistaken for a ListObjectsV2 of a bucket called "metrics".
export const RESERVED_NAMES: readonly string[] = ['healthz', 'readyz', 'metrics', '-'];
