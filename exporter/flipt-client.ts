// A client of one Flipt v1 master's REST API: authenticated GETs with the shared retry policy,
// every answer checked (status, size, JSON) and counted. What to read is in flipt-read.ts.
import { BodyTooLargeError } from './bounded-body.ts';
import { retry } from '../common/retry.ts';
import { nodeTransport, type HttpAnswer, type Transport } from './flipt-transport.ts';
import { pathSegment as seg } from './url-path.ts';

/** Flipt v1's storage clamps `limit` to 100 (its default is 25): ask for the maximum. */
export const MAX_PAGE_LIMIT = 100;
/** Pages read of one list before giving up: 100,000 items at 100 a page. */
export const DEFAULT_MAX_PAGES = 1_000;
/** The largest answer read from the master (a page of 100 flags with large attachments fits). */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class FliptReadError extends Error {
  override name = 'FliptReadError';
  /** Whether asking again may help (no answer, 429, 502, 503, 504). */
  readonly retryable: boolean;
  constructor(message: string, retryable = false) {
    super(message);
    this.retryable = retryable;
  }
}

export interface FliptClientOptions {
  /** Base URL of the master, e.g. `http://flipt-master:8080` (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when set. */
  token?: string | undefined;
  /** Per-request deadline, body included. */
  timeoutMs: number;
  /** Extra attempts after a connection failure, 429, 502, 503 or 504. */
  retries: number;
  pageLimit?: number;
  /** Pages of one list read at most (a master handing out tokens forever must not hold the run). */
  maxPages?: number;
  /** Bytes of one answer read at most. */
  maxResponseBytes?: number;
  /** Sockets kept open to the master; at least the per-flag concurrency. */
  maxSockets?: number;
  /** For tests: how a GET is sent. */
  transport?: Transport;
  /** For tests: the wait between retries (common/wait.ts). */
  wait?: (ms: number, signal?: AbortSignal) => Promise<boolean>;
}

/** Retries of the master: the shared policy, from 100 ms doubling up to 2 s, with jitter. */
const FLIPT_RETRY = { baseMs: 100, maxMs: 2_000 };

/** What a conditional read of a namespace's evaluation snapshot found. */
export interface SnapshotProbe {
  /** 304: the namespace's version still has the ETag sent. */
  notModified: boolean;
  /** The namespace's current ETag; undefined when the master sends none. */
  etag: string | undefined;
}

export interface FliptClient {
  /** GETs `path` (relative to the base URL, already encoded) and returns the parsed JSON. */
  getJson(path: string, query: Record<string, string>, signal?: AbortSignal): Promise<unknown>;
  /**
   * Asks for the namespace's evaluation snapshot with `If-None-Match` and reads only the status and
   * the ETag (the body is dropped unread). Undefined when the master has no such endpoint.
   */
  probeSnapshot(
    namespace: string,
    ifNoneMatch: string | undefined,
    signal?: AbortSignal,
  ): Promise<SnapshotProbe | undefined>;
  readonly pageLimit: number;
  readonly maxPages: number;
  /** HTTP requests sent so far, retries included. */
  readonly requests: number;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

/** The message of a Flipt error answer (`{code, message}`), or the start of the body. */
function errorDetail(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'message' in parsed) {
      return String((parsed as { message: unknown }).message);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.slice(0, 200).trim();
}

export function createFliptClient(options: FliptClientOptions): FliptClient {
  const base = new URL(options.baseUrl);
  const origin = {
    protocol: base.protocol as 'http:' | 'https:',
    // node:http wants an IPv6 address without its brackets.
    hostname: base.hostname.replace(/^\[|\]$/g, ''),
    port: base.port,
  };
  const basePath = base.pathname.replace(/\/+$/, '');
  const display = `${base.origin}${basePath}`;
  const own = options.transport ? undefined : nodeTransport(options.maxSockets ?? 16);
  const transport = options.transport ?? (own as Transport);
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  let requests = 0;

  async function attempt(
    path: string,
    signal: AbortSignal | undefined,
    extraHeaders: Record<string, string> | undefined,
    headersOnly: boolean,
  ): Promise<HttpAnswer> {
    const url = `${display}${path}`;
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    requests++;
    let response: HttpAnswer;
    try {
      response = await transport(
        { ...origin, path: `${basePath}${path}` },
        extraHeaders ? { ...headers, ...extraHeaders } : headers,
        combined,
        { maxBytes, headersOnly },
      );
    } catch (err) {
      if (err instanceof BodyTooLargeError) throw new FliptReadError(`GET ${url}: ${err.message}`);
      if (timeout.aborted && !signal?.aborted) {
        throw new FliptReadError(`GET ${url}: no complete answer within ${options.timeoutMs} ms`);
      }
      if (signal?.aborted) throw signal.reason;
      const code = (err as { code?: unknown }).code;
      const detail = err instanceof Error ? err.message : String(err);
      const prefix = typeof code === 'string' && !detail.includes(code) ? `${code}: ` : '';
      throw new FliptReadError(`GET ${url}: ${prefix}${detail}`, true);
    }
    if (response.status !== 200 && !(headersOnly && response.status === 304)) {
      const hint =
        response.status === 401 || response.status === 403
          ? ' (check the Flipt token: --flipt-token / FLIPT_EXPORTER_FLIPT_TOKEN)'
          : '';
      throw Object.assign(
        new FliptReadError(
          `GET ${url}: HTTP ${response.status}: ${errorDetail(response.body)}${hint}`,
          RETRYABLE_STATUS.has(response.status),
        ),
        { status: response.status },
      );
    }
    return response;
  }

  function withRetries<T>(signal: AbortSignal | undefined, once: () => Promise<T>): Promise<T> {
    return retry(
      once,
      { ...FLIPT_RETRY, retries: options.retries, wait: options.wait },
      {
        retryable: (err): err is FliptReadError => err instanceof FliptReadError && err.retryable,
        signal,
      },
    );
  }

  return {
    pageLimit: options.pageLimit ?? MAX_PAGE_LIMIT,
    maxPages: options.maxPages ?? DEFAULT_MAX_PAGES,
    get requests() {
      return requests;
    },
    close() {
      own?.destroy();
    },
    getJson(path, query, signal) {
      const qs = new URLSearchParams(query).toString();
      const full = `${path}${qs ? `?${qs}` : ''}`;
      return withRetries(signal, async () => {
        const { body } = await attempt(full, signal, undefined, false);
        try {
          return JSON.parse(body) as unknown;
        } catch (err) {
          throw new FliptReadError(
            `GET ${display}${full}: the answer is not valid JSON (${err instanceof Error ? err.message : String(err)})`,
          );
        }
      });
    },
    probeSnapshot(namespace, ifNoneMatch, signal) {
      const path = `/internal/v1/evaluation/snapshot/namespace/${seg(namespace)}`;
      return withRetries(signal, async () => {
        let answer: HttpAnswer;
        try {
          answer = await attempt(
            path,
            signal,
            ifNoneMatch === undefined ? undefined : { 'if-none-match': ifNoneMatch },
            true,
          );
        } catch (err) {
          // A master without the endpoint (or a proxy hiding it): no change detection, full reads.
          const status = (err as { status?: unknown }).status;
          if (status === 404 || status === 405 || status === 501) return undefined;
          throw err;
        }
        const etag = answer.headers['etag'];
        return {
          notModified: answer.status === 304,
          etag: typeof etag === 'string' && etag !== '' ? etag : undefined,
        };
      });
    },
  };
}
