// An in-memory object store that counts requests: the bucket side of the exporter's unit tests
// (the same behaviours against a real S3 server, MinIO, are in test/e2e/exporter-*.test.ts).
import type { ObjectStore, RemoteObject } from '../../exporter/s3.ts';

export class MemoryStore implements ObjectStore {
  readonly location = 's3://memory/features.yml';
  object: { body: Uint8Array; metadata: Record<string, string> } | undefined;
  puts = 0;
  heads = 0;
  gets = 0;
  failPuts = false;
  head(): Promise<RemoteObject | undefined> {
    this.heads++;
    const o = this.object;
    return Promise.resolve(
      o ? { metadata: { ...o.metadata }, etag: undefined, size: o.body.byteLength } : undefined,
    );
  }
  get(): Promise<Uint8Array | undefined> {
    this.gets++;
    return Promise.resolve(this.object?.body);
  }
  put(body: Uint8Array, metadata: Record<string, string>): Promise<void> {
    this.puts++;
    if (this.failPuts)
      return Promise.reject(new Error('PutObject s3://memory/features.yml: HTTP 503 SlowDown'));
    this.object = { body: Uint8Array.from(body), metadata };
    return Promise.resolve();
  }
  destroy(): void {}
  text(): string {
    return Buffer.from(this.object?.body ?? new Uint8Array()).toString('utf8');
  }
}
