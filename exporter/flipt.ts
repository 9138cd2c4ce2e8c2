// Reads the whole flag state of a Flipt v1 master over its REST API: namespaces, flags with their
// variants, segments with their constraints, and per flag its rules (variant flags) or rollouts
// (boolean flags). Every list is paged to the end, and every failure is an error: a partial read
// must never be mistaken for the master's state.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { BodyTooLargeError, readBounded } from './bounded-body.ts';
import { retry } from '../common/retry.ts';
import { TaskPool } from './task-pool.ts';
import { pathSegment as seg } from './url-path.ts';
import {
  decodeFlag,
  decodeNamespace,
  decodePage,
  decodeRollout,
  decodeRule,
  decodeSegment,
  DecodeError,
  type ApiFlag,
  type ApiNamespace,
  type ApiSegment,
  type FlagState,
  type FliptState,
  type NamespaceState,
  type Page,
} from './api.ts';

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

/** Where a GET goes. The path is sent exactly as given: no URL parser normalises it on the way. */
export interface RequestTarget {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: string;
  /** Path and query, already encoded. */
  path: string;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body; '' when only the headers were asked for. */
  body: string;
}

export interface TransportOptions {
  maxBytes: number;
  /** Resolve on the status line and headers and drop the body unread. */
  headersOnly?: boolean;
}

/** Sends one GET and resolves with the answer, or rejects on a network error or a body too large. */
export type Transport = (
  target: RequestTarget,
  headers: Record<string, string>,
  signal: AbortSignal,
  options: TransportOptions,
) => Promise<HttpAnswer>;

/**
 * GET over node:http(s) with keep-alive sockets. Used rather than fetch(): an export makes one
 * request per flag, and on loopback this is about a third faster and allocates less per request;
 * and fetch() would parse the URL and collapse dot segments.
 */
export function nodeTransport(maxSockets: number): Transport & { destroy(): void } {
  const agents = {
    'http:': new HttpAgent({ keepAlive: true, maxSockets }),
    'https:': new HttpsAgent({ keepAlive: true, maxSockets }),
  };
  const transport: Transport = (target, headers, signal, options) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const secure = target.protocol === 'https:';
      const send = secure ? httpsRequest : httpRequest;
      const req = send(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          method: 'GET',
          headers,
          signal,
          agent: secure ? agents['https:'] : agents['http:'],
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (options.headersOnly) {
            // A 304 has no body: drain it and keep the socket. Any other body (a whole snapshot)
            // is dropped with its connection rather than downloaded.
            if (status === 304) res.resume();
            else res.destroy();
            resolve({ status, headers: res.headers, body: '' });
            return;
          }
          readBounded(res, options.maxBytes, res.headers['content-length']).then(
            (body) => resolve({ status, headers: res.headers, body: body.toString('utf8') }),
            reject,
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  return Object.assign(transport, {
    destroy() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  });
}

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

/**
 * Reads every item of a paged list. The result is checked against the master's `totalCount`, so
 * a page that went missing, or a list that changed while it was paged, is an error.
 */
export async function listAll<T>(
  client: FliptClient,
  path: string,
  listField: string,
  decodeItem: (item: unknown, path: string) => T,
  what: string,
  signal?: AbortSignal,
  /** Called with each page's items as it arrives (before the whole list is checked). */
  onPage?: (items: T[]) => void,
): Promise<T[]> {
  const items: T[] = [];
  const seenTokens = new Set<string>();
  let token = '';
  let last: Page<T> | undefined;
  let pages = 0;
  do {
    if (pages >= client.maxPages) {
      throw new FliptReadError(
        `${what}: still not at the end after ${pages} pages (--max-pages ${client.maxPages}); ` +
          'a master that keeps handing out page tokens is broken',
      );
    }
    const query: Record<string, string> = { limit: String(client.pageLimit) };
    if (token) query['pageToken'] = token;
    const json = await client.getJson(path, query, signal);
    pages++;
    try {
      last = decodePage(json, listField, decodeItem, `${what} (page ${pages})`);
    } catch (err) {
      if (err instanceof DecodeError) throw new FliptReadError(`GET ${path}: ${err.message}`);
      throw err;
    }
    items.push(...last.items);
    onPage?.(last.items);
    token = last.nextPageToken;
    if (token && seenTokens.has(token)) {
      throw new FliptReadError(`${what}: the master returned page token ${JSON.stringify(token)} twice`);
    }
    seenTokens.add(token);
  } while (token);
  // Every list of Flipt v1.61.1 counts (internal/server: ListNamespaces, ListFlags,
  // ListSegments, ListRules, ListRollouts set totalCount from the store's Count*), and the
  // gateway writes it even when 0: a page without it, or with another count, is not the master's.
  const total = last?.totalCount;
  if (total === undefined) {
    throw new FliptReadError(
      `${what}: the master's answer has no totalCount, which every Flipt v1 list reports; ` +
        `refusing ${items.length} items that cannot be checked`,
    );
  }
  if (total !== items.length) {
    throw new FliptReadError(
      `${what}: read ${items.length} items in ${pages} pages but the master counts ${total}; ` +
        'a page is missing or the list changed while it was read',
    );
  }
  return items;
}

function requireUnique<T>(items: T[], keyOf: (item: T) => string, what: string): void {
  const seen = new Set<string>();
  for (const item of items) {
    const key = keyOf(item);
    if (seen.has(key)) {
      throw new FliptReadError(
        `${what}: ${JSON.stringify(key)} appears twice (the list changed while it was read)`,
      );
    }
    seen.add(key);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure stops the rest. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const stop = new AbortController();
  const combined = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let next = 0;
  let failure: { error: unknown } | undefined;
  async function worker(): Promise<void> {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, combined);
      } catch (error) {
        if (failure === undefined) failure = { error };
        stop.abort(error);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

async function readFlag(
  client: FliptClient,
  namespace: string,
  flag: ApiFlag,
  signal: AbortSignal,
): Promise<FlagState> {
  const base = `/api/v1/namespaces/${seg(namespace)}/flags/${seg(flag.key)}`;
  const where = `namespace ${namespace} flag ${flag.key}`;
  // A variant flag is evaluated by its rules, a boolean flag by its rollouts; the other list is
  // never consulted (and Flipt's schema only allows rollouts on boolean flags), so skip the call.
  if (flag.type === 'BOOLEAN_FLAG_TYPE') {
    const rollouts = await listAll(
      client,
      `${base}/rollouts`,
      'rules',
      decodeRollout,
      `${where} rollouts`,
      signal,
    );
    return { flag, rules: [], rollouts };
  }
  const rules = await listAll(client, `${base}/rules`, 'rules', decodeRule, `${where} rules`, signal);
  requireUnique(rules, (r) => r.id, `${where} rules`);
  return { flag, rules, rollouts: [] };
}

export async function readNamespace(
  client: FliptClient,
  namespace: ApiNamespace,
  concurrency: number,
  signal?: AbortSignal,
): Promise<NamespaceState> {
  const ns = seg(namespace.key);
  // Each flag's rules or rollouts are asked for as soon as its page of the flag list arrives.
  const reads = new TaskPool<FlagState>(concurrency, signal);
  let flags: ApiFlag[];
  let segments: ApiSegment[];
  try {
    [flags, segments] = await Promise.all([
      listAll(
        client,
        `/api/v1/namespaces/${ns}/flags`,
        'flags',
        decodeFlag,
        `namespace ${namespace.key} flags`,
        signal,
        (page) => {
          for (const flag of page) reads.add((s) => readFlag(client, namespace.key, flag, s));
        },
      ),
      listAll(
        client,
        `/api/v1/namespaces/${ns}/segments`,
        'segments',
        decodeSegment,
        `namespace ${namespace.key} segments`,
        signal,
      ),
    ]);
    requireUnique(flags, (f) => f.key, `namespace ${namespace.key} flags`);
    requireUnique(segments, (s) => s.key, `namespace ${namespace.key} segments`);
  } catch (err) {
    reads.fail(err);
    await reads.done().catch(() => undefined);
    throw err;
  }
  return { namespace, flags: await reads.done(), segments };
}

export interface ReadOptions {
  /** Namespace keys to export; every namespace when absent. */
  namespaces?: readonly string[] | undefined;
  /** Per-flag calls in flight at once. */
  concurrency: number;
  signal?: AbortSignal | undefined;
}

/**
 * The namespaces to export: every namespace the master lists, or the chosen ones. A master listing
 * none is broken (Flipt always has `default`, and refuses to delete it): an error, never an empty
 * export.
 */
export async function listNamespaces(client: FliptClient, options: ReadOptions): Promise<ApiNamespace[]> {
  const { signal } = options;
  let namespaces: ApiNamespace[];
  if (options.namespaces === undefined) {
    namespaces = await listAll(
      client,
      '/api/v1/namespaces',
      'namespaces',
      decodeNamespace,
      'namespaces',
      signal,
    );
    if (namespaces.length === 0) {
      throw new FliptReadError(
        'the master lists no namespaces; a Flipt master always has "default", so it is broken or ' +
          'not a Flipt master: refusing to export',
      );
    }
  } else {
    namespaces = await mapLimit(
      options.namespaces,
      options.concurrency,
      async (key, s) => {
        const json = await client.getJson(`/api/v1/namespaces/${seg(key)}`, {}, s);
        try {
          return decodeNamespace(json, `namespace ${key}`);
        } catch (err) {
          if (err instanceof DecodeError) throw new FliptReadError(err.message);
          throw err;
        }
      },
      signal,
    );
  }
  requireUnique(namespaces, (n) => n.key, 'namespaces');
  return namespaces;
}

/** Reads the master's whole state (or the chosen namespaces); throws on any failed or odd read. */
export async function readFliptState(client: FliptClient, options: ReadOptions): Promise<FliptState> {
  const namespaces = await listNamespaces(client, options);
  const result: NamespaceState[] = [];
  // Namespaces one after another, flags within each in parallel: the bound stays `concurrency`.
  for (const namespace of namespaces) {
    result.push(await readNamespace(client, namespace, options.concurrency, options.signal));
  }
  return { namespaces: result };
}
