// The bucket side: read the current object's metadata (and, rarely, its body), and replace the
// object with one PUT, so a reader sees either the old or the new file, never half of one.
// Transient failures (no answer, 5xx, throttling) are retried with exponential backoff; permanent
// ones (credentials, missing bucket) are reported at once with what to check.
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { retry, type RetryPolicy } from '../common/retry.ts';

export interface RemoteObject {
  /** User metadata, keys lower-case, without the x-amz-meta- prefix. */
  metadata: Record<string, string>;
  etag: string | undefined;
  size: number | undefined;
}

export interface ObjectStore {
  /** `s3://bucket/key`, for messages. */
  readonly location: string;
  /** The object's metadata, or undefined when there is no object. */
  head(signal?: AbortSignal): Promise<RemoteObject | undefined>;
  /** The object's body, or undefined when there is no object. */
  get(signal?: AbortSignal): Promise<Uint8Array | undefined>;
  /** Replaces the object in one request. */
  put(body: Uint8Array, metadata: Record<string, string>, signal?: AbortSignal): Promise<void>;
  destroy(): void;
}

export interface RetryInfo {
  operation: string;
  attempt: number;
  delayMs: number;
  error: S3StoreError;
}

export interface RetryOptions extends RetryPolicy {
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

export interface S3StoreOptions extends RetryOptions {
  bucket: string;
  /** The full key, prefix included. */
  key: string;
  endpoint?: string | undefined;
  region?: string | undefined;
  pathStyle: boolean;
  /** Per-request deadline. */
  timeoutMs: number;
  /** For tests: a ready client instead of one built from the options. */
  client?: S3Client;
}

export class S3StoreError extends Error {
  override name = 'S3StoreError';
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, retryable: boolean, status?: number, code?: string) {
    super(message);
    this.retryable = retryable;
    this.status = status;
    this.code = code;
  }
}

const RETRYABLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'XMinioServerNotInitialized',
]);
const CREDENTIAL_CODES = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'CredentialsProviderError',
]);

const CREDENTIALS_HINT =
  'check the credentials the AWS default chain finds (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ' +
  'AWS_PROFILE, web identity/IRSA, instance role) and that they may read and write the object';

// Errors of a connection that failed or broke: the store may answer again in a moment.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'AbortError', 'NetworkingError']);

/** Turns an SDK or network error into a message with a cause, and whether a retry may help. */
export function classifyS3Error(err: unknown, operation: string, location: string): S3StoreError {
  if (err instanceof S3StoreError) return err;
  const e = (err ?? {}) as {
    name?: string;
    code?: string;
    Code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  const named = e.name && e.name !== 'Error' && e.name !== 'S3ServiceException' ? e.name : undefined;
  const code = e.Code ?? named ?? e.code;
  const what = `${operation} ${location}`;
  const head = [status !== undefined ? `HTTP ${status}` : '', code ?? ''].filter((p) => p !== '').join(' ');
  const detail = [head, e.message ?? ''].filter((p) => p !== '').join(': ') || 'unknown error';
  if (code === 'NoSuchBucket') {
    return new S3StoreError(`${what}: the bucket does not exist (${detail})`, false, status, code);
  }
  if ((code !== undefined && CREDENTIAL_CODES.has(code)) || status === 401 || status === 403) {
    return new S3StoreError(`${what}: access denied (${detail}); ${CREDENTIALS_HINT}`, false, status, code);
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301) {
    return new S3StoreError(
      `${what}: wrong region or endpoint for this bucket (${detail})`,
      false,
      status,
      code,
    );
  }
  if (status === undefined) {
    const network =
      (e.code !== undefined && NETWORK_CODES.has(e.code)) ||
      (e.name !== undefined && NETWORK_NAMES.has(e.name)) ||
      /socket hang up|ECONNRE(SET|FUSED)|ETIMEDOUT|EPIPE/.test(e.message ?? '');
    if (network) {
      // No HTTP answer at all: refused, reset, timed out. The store may be back in a moment.
      return new S3StoreError(`${what}: no answer from the store (${detail})`, true, status, code);
    }
    // Failed before a request was sent (configuration, no region): retrying cannot help.
    const hint = /region is missing/i.test(e.message ?? '') ? '; set --region or AWS_REGION' : '';
    return new S3StoreError(`${what}: the S3 client failed (${detail})${hint}`, false, status, code);
  }
  const retryable = status >= 500 || status === 429 || (code !== undefined && RETRYABLE_CODES.has(code));
  return new S3StoreError(`${what}: ${detail}`, retryable, status, code);
}

/** Runs `op`, retrying retryable S3StoreErrors with the shared policy (common/retry.ts). */
export function withRetry<T>(
  operation: string,
  op: () => Promise<T>,
  options: RetryOptions,
  signal?: AbortSignal,
): Promise<T> {
  return retry(op, options, {
    retryable: (err): err is S3StoreError => err instanceof S3StoreError && err.retryable,
    onRetry: ({ attempt, delayMs, error }) => options.onRetry?.({ operation, attempt, delayMs, error }),
    signal,
  });
}

export function buildS3Client(options: {
  endpoint?: string | undefined;
  region?: string | undefined;
  pathStyle: boolean;
  timeoutMs: number;
}): S3Client {
  return new S3Client({
    // MinIO and most S3-compatible stores accept any region; the SDK still needs one to sign.
    region: options.region ?? (options.endpoint ? 'us-east-1' : undefined),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.pathStyle,
    // Stores other than AWS often reject or ignore the SDK's default CRC checksums.
    ...(options.endpoint
      ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
      : {}),
    // Retries are ours (withRetry), so they are counted, logged and bounded in one place.
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: options.timeoutMs,
      connectionTimeout: Math.min(options.timeoutMs, 5_000),
    },
  });
}

export function createS3Store(options: S3StoreOptions): ObjectStore {
  const client = options.client ?? buildS3Client(options);
  const location = `s3://${options.bucket}/${options.key}`;
  const target = { Bucket: options.bucket, Key: options.key };

  function run<T>(operation: string, signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
    return withRetry(
      operation,
      async () => {
        try {
          return await op();
        } catch (err) {
          throw classifyS3Error(err, operation, location);
        }
      },
      options,
      signal,
    );
  }

  function isMissing(err: unknown): boolean {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    // HEAD has no body, so a missing object is only a 404; NoSuchBucket must stay an error.
    return (
      e.name === 'NotFound' ||
      e.name === 'NoSuchKey' ||
      (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket')
    );
  }

  return {
    location,
    head(signal) {
      return run('HeadObject', signal, async () => {
        try {
          const out = await client.send(new HeadObjectCommand(target), { abortSignal: signal });
          return { metadata: out.Metadata ?? {}, etag: out.ETag, size: out.ContentLength };
        } catch (err) {
          if (isMissing(err)) return undefined;
          throw err;
        }
      });
    },
    get(signal) {
      return run('GetObject', signal, async () => {
        try {
          const out = await client.send(new GetObjectCommand(target), { abortSignal: signal });
          return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
        } catch (err) {
          if (isMissing(err)) return undefined;
          throw err;
        }
      });
    },
    put(body, metadata, signal) {
      // Content-MD5 makes the store reject a body damaged on the way instead of storing it.
      const md5 = createHash('md5').update(body).digest('base64');
      return run('PutObject', signal, async () => {
        await client.send(
          new PutObjectCommand({
            ...target,
            Body: body,
            ContentLength: body.byteLength,
            ContentMD5: md5,
            ContentType: 'application/yaml',
            Metadata: metadata,
          }),
          { abortSignal: signal },
        );
      });
    },
    destroy() {
      if (!options.client) client.destroy();
    },
  };
}
