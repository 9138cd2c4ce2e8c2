// Reading the real bucket: one ListObjectsV2 of the prefix per refresh, and a GET only of the
// objects whose ETag the listing shows as new, each with If-Match on that listed ETag so the
// candidate is exactly the listed state (a 412 means the object moved on while we read: this
// refresh fails and the next one reads the newer version). An unchanged bucket costs one LIST per
// refresh, whatever the number of sidecars behind the cache.
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { classifyS3Error } from '../exporter/s3.ts';
import type { CachedObject, Snapshot } from './snapshot.ts';

export type UpstreamOperation = 'ListObjectsV2' | 'GetObject';
export type UpstreamResult = 'ok' | 'not_found' | 'precondition_failed' | 'error';

export interface UpstreamOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  timeoutMs: number;
  maxObjects: number;
  maxObjectBytes: number;
  maxTotalBytes: number;
  onRequest?: (operation: UpstreamOperation, result: UpstreamResult) => void;
}

export type ReadOutcome =
  | { kind: 'unchanged' }
  | { kind: 'read'; objects: CachedObject[]; fetched: number }
  | { kind: 'refused'; problems: string[] }
  | { kind: 'failed'; message: string };

interface Listed {
  key: string;
  etag: string;
  size: number;
  lastModified: Date;
}

const PAGE = 1000;

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** Reads the prefix; `current` lets unchanged objects be reused without a GET. */
export async function readUpstream(
  options: UpstreamOptions,
  current: Snapshot | undefined,
  signal?: AbortSignal,
): Promise<ReadOutcome> {
  const { client, bucket, prefix } = options;
  const location = `s3://${bucket}/${prefix}`;
  const timeout = () =>
    signal
      ? AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)])
      : AbortSignal.timeout(options.timeoutMs);
  const listed: Listed[] = [];
  let token: string | undefined;
  // Bounded: one page more than maxObjects needs tells us there are too many.
  const maxPages = Math.ceil(options.maxObjects / PAGE) + 1;
  for (let page = 0; page < maxPages; page++) {
    let out;
    try {
      out = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix === '' ? undefined : prefix,
          MaxKeys: PAGE,
          ContinuationToken: token,
        }),
        { abortSignal: timeout() },
      );
      options.onRequest?.('ListObjectsV2', 'ok');
    } catch (err) {
      options.onRequest?.('ListObjectsV2', statusOf(err) === 404 ? 'not_found' : 'error');
      return { kind: 'failed', message: classifyS3Error(err, 'ListObjectsV2', location).message };
    }
    for (const o of out.Contents ?? []) {
      if (o.Key === undefined) continue;
      listed.push({
        key: o.Key,
        etag: o.ETag ?? '""',
        size: o.Size ?? 0,
        lastModified: o.LastModified ?? new Date(0),
      });
    }
    if (listed.length > options.maxObjects) {
      return {
        kind: 'refused',
        problems: [`more than ${options.maxObjects} objects under ${location} (FLIPT_CACHE_MAX_OBJECTS)`],
      };
    }
    if (!out.IsTruncated) {
      token = undefined;
      break;
    }
    token = out.NextContinuationToken;
    if (token === undefined)
      return {
        kind: 'failed',
        message: `ListObjectsV2 ${location}: truncated page without a continuation token`,
      };
  }
  if (token !== undefined)
    return { kind: 'failed', message: `ListObjectsV2 ${location}: more pages than allowed` };

  const problems: string[] = [];
  let total = 0;
  for (const o of listed) {
    if (o.size > options.maxObjectBytes) {
      problems.push(
        `${o.key}: ${o.size} bytes, more than ${options.maxObjectBytes} (FLIPT_CACHE_MAX_OBJECT_BYTES)`,
      );
    }
    total += o.size;
  }
  if (total > options.maxTotalBytes) {
    problems.push(
      `${total} bytes under ${location}, more than ${options.maxTotalBytes} (FLIPT_CACHE_MAX_TOTAL_BYTES)`,
    );
  }
  if (problems.length > 0) return { kind: 'refused', problems };

  const same =
    current !== undefined &&
    current.sorted.length === listed.length &&
    listed.every((o) => current.objects.get(o.key)?.etag === o.etag);
  if (same) return { kind: 'unchanged' };

  const objects: CachedObject[] = [];
  let fetched = 0;
  for (const o of listed) {
    const known = current?.objects.get(o.key);
    if (known && known.etag === o.etag) {
      objects.push(known);
      continue;
    }
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.key, IfMatch: o.etag }), {
        abortSignal: timeout(),
      });
      const body = Buffer.from(out.Body ? await out.Body.transformToByteArray() : new Uint8Array());
      options.onRequest?.('GetObject', 'ok');
      fetched++;
      if (body.byteLength > options.maxObjectBytes) {
        return { kind: 'refused', problems: [`${o.key}: larger than ${options.maxObjectBytes} bytes`] };
      }
      objects.push({
        key: o.key,
        etag: out.ETag ?? o.etag,
        size: body.byteLength,
        lastModified: out.LastModified ?? o.lastModified,
        contentType: out.ContentType ?? 'application/octet-stream',
        body,
      });
    } catch (err) {
      const status = statusOf(err);
      if (status === 412) {
        options.onRequest?.('GetObject', 'precondition_failed');
        return {
          kind: 'failed',
          message: `${o.key} changed while it was read; the next refresh reads it again`,
        };
      }
      options.onRequest?.('GetObject', status === 404 ? 'not_found' : 'error');
      if (status === 404) {
        return {
          kind: 'failed',
          message: `${o.key} was deleted while it was read; the next refresh lists again`,
        };
      }
      return {
        kind: 'failed',
        message: classifyS3Error(err, 'GetObject', `s3://${bucket}/${o.key}`).message,
      };
    }
  }
  return { kind: 'read', objects, fetched };
}
