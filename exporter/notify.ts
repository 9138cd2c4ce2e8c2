// The push to the bucket cache after an upload that changed the object (docs/bucket-cache.md):
// `POST /-/refresh` with a bearer token, to every address each notify URL's host resolves to, so a
// headless Service's name (flipt-bucket-cache-peers) reaches every replica, not one of them.
//
// Best effort by design: the cache's interval refresh is the fallback, so a push that fails is
// logged and counted, never retried and never fails the export. Bounded: one request per address,
// at most MAX_ADDRESSES addresses per URL, each request and the name lookup under the timeout.
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Counter, type Registry } from 'prom-client';

/** Addresses pushed to per URL at most (replicas of one cache); more are logged and skipped. */
export const MAX_ADDRESSES = 64;
/** Bytes of a cache's answer kept for the log; the rest is dropped unread. */
const MAX_ANSWER_BYTES = 4096;
/** The cache's push endpoint, used when a notify URL names no path. */
export const REFRESH_PATH = '/-/refresh';
/** Shorter tokens are refused, as the cache refuses them (FLIPT_CACHE_REFRESH_TOKEN). */
export const MIN_TOKEN_LENGTH = 16;

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}
/** Every A/AAAA record of a name (the system resolver: /etc/hosts, search domains, DNS). */
export type Resolve = (host: string, signal: AbortSignal) => Promise<ResolvedAddress[]>;

export type PushResult =
  | 'updated'
  | 'unchanged'
  | 'pending'
  | 'refused'
  | 'unauthorized'
  | 'http_error'
  | 'timeout'
  | 'unreachable'
  | 'dns_error';
const OK_RESULTS: ReadonlySet<PushResult> = new Set(['updated', 'unchanged', 'pending']);
const RESULTS: readonly PushResult[] = [
  'updated',
  'unchanged',
  'pending',
  'refused',
  'unauthorized',
  'http_error',
  'timeout',
  'unreachable',
  'dns_error',
];

export interface PushOutcome {
  /** The notify URL as configured. */
  url: string;
  /** The address pushed to; undefined when the name did not resolve. */
  address: string | undefined;
  result: PushResult;
  ok: boolean;
  status: number | undefined;
  message: string;
  durationMs: number;
}

export interface NotifyLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface NotifyMetrics {
  record(outcome: PushOutcome): void;
}

/** `flipt_exporter_notify_pushes_total{result}` in the exporter's registry. */
export function createNotifyMetrics(registry: Registry): NotifyMetrics {
  const pushes = new Counter({
    name: 'flipt_exporter_notify_pushes_total',
    help: 'Pushes to bucket cache replicas after an upload, one per resolved address, by result (updated, unchanged, pending succeed; refused, unauthorized, http_error, timeout, unreachable, dns_error fail).',
    labelNames: ['result'],
    registers: [registry],
  });
  for (const r of RESULTS) pushes.labels(r).inc(0);
  return { record: (o) => pushes.labels(o.result).inc() };
}

/** A notify URL as given → the URL pushed to (the cache's path when none is named), or an error. */
export function parseNotifyUrl(text: string): { url: URL } | { error: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { error: `expected an http(s) URL, got ${JSON.stringify(text)}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { error: `expected an http(s) URL, got ${JSON.stringify(text)}` };
  if (url.username !== '' || url.password !== '')
    return { error: 'must not carry credentials: the token comes from FLIPT_EXPORTER_NOTIFY_TOKEN(_FILE)' };
  if (url.hash !== '') return { error: `must not have a #fragment, got ${JSON.stringify(text)}` };
  // A bare http://host:port means the cache's push endpoint.
  if (url.pathname === '/') url.pathname = REFRESH_PATH;
  return { url };
}

/** The system resolver (getaddrinfo), every record, in the resolver's order. */
export const systemResolve: Resolve = async (host, signal) => {
  const lookup = dnsLookup(host, { all: true, order: 'verbatim' });
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  const records = await Promise.race([lookup, aborted]);
  return records.map((r) => ({ address: r.address, family: r.family === 6 ? 6 : 4 }));
};

export interface NotifierOptions {
  urls: readonly URL[];
  /** Read before each round of pushes, so a rotated Secret file is picked up. */
  token: () => Promise<string>;
  /** Per name lookup and per request. */
  timeoutMs: number;
  logger: NotifyLogger;
  metrics?: NotifyMetrics;
  resolve?: Resolve;
}

export interface Notifier {
  /** Pushes to every address of every URL; never throws, resolves within about 2 × timeoutMs. */
  notify(object: string): Promise<PushOutcome[]>;
}

function unique(addresses: ResolvedAddress[]): ResolvedAddress[] {
  const seen = new Set<string>();
  return addresses.filter((a) => !seen.has(a.address) && seen.add(a.address) !== undefined);
}

/** Maps the cache's answer to a result: 200 with its refresh result, 202 pending, else a failure. */
export function classify(status: number, body: string): { result: PushResult; message: string } {
  let parsed: { result?: unknown; message?: unknown; error?: unknown } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not JSON: reported by status alone
  }
  const said = [parsed.message, parsed.error].find((v) => typeof v === 'string') as string | undefined;
  if (status === 200 && (parsed.result === 'updated' || parsed.result === 'unchanged'))
    return { result: parsed.result, message: `cache refreshed: ${parsed.result}` };
  if (status === 202)
    return { result: 'pending', message: 'cache accepted the push; its refresh is still running' };
  if (status === 401 || status === 403)
    return {
      result: 'unauthorized',
      message: `HTTP ${status}: ${said ?? 'refused'} (is the same token set as the cache's FLIPT_CACHE_REFRESH_TOKEN?)`,
    };
  if (status === 502)
    return {
      result: 'refused',
      message: `HTTP 502: the cache's refresh did not take it: ${said ?? body.slice(0, 200)}`,
    };
  return { result: 'http_error', message: `HTTP ${status}: ${said ?? body.slice(0, 200)}` };
}

function post(
  url: URL,
  to: ResolvedAddress,
  token: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  // Connect to this one address while Host and TLS (SNI, certificate check) use the URL's name.
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) callback(null, [{ address: to.address, family: to.family }]);
    else callback(null, to.address, to.family);
  };
  const options: RequestOptions = {
    method: 'POST',
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? undefined : Number(url.port),
    path: `${url.pathname}${url.search}`,
    headers: { authorization: `Bearer ${token}`, 'content-length': '0', 'user-agent': 'flipt-exporter' },
    lookup: pinned,
    signal: AbortSignal.timeout(timeoutMs),
    // One request per address: no pooled socket outlives it.
    agent: false,
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(options, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept < MAX_ANSWER_BYTES) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8', 0, MAX_ANSWER_BYTES),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function failure(err: unknown): { result: PushResult; message: string } {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'ABORT_ERR')
    return { result: 'timeout', message: 'no answer within the timeout' };
  return { result: 'unreachable', message: `${e?.code ?? 'error'}: ${e?.message ?? String(err)}` };
}

export function createNotifier(opts: NotifierOptions): Notifier {
  const resolveName = opts.resolve ?? systemResolve;

  async function addressesOf(url: URL): Promise<ResolvedAddress[]> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const literal = isIP(host);
    if (literal !== 0) return [{ address: host, family: literal === 6 ? 6 : 4 }];
    return unique(await resolveName(host, AbortSignal.timeout(opts.timeoutMs)));
  }

  async function pushOne(url: URL, to: ResolvedAddress, token: string): Promise<PushOutcome> {
    const started = performance.now();
    let verdict: { result: PushResult; message: string; status?: number };
    try {
      const answer = await post(url, to, token, opts.timeoutMs);
      verdict = { ...classify(answer.status, answer.body), status: answer.status };
    } catch (err) {
      verdict = failure(err);
    }
    return {
      url: url.href,
      address: to.address,
      result: verdict.result,
      ok: OK_RESULTS.has(verdict.result),
      status: verdict.status,
      message: verdict.message,
      durationMs: Math.round(performance.now() - started),
    };
  }

  async function pushUrl(url: URL, token: string): Promise<PushOutcome[]> {
    const started = performance.now();
    let addresses: ResolvedAddress[];
    try {
      addresses = await addressesOf(url);
      if (addresses.length === 0) throw new Error('no A or AAAA record');
    } catch (err) {
      const e = err as { code?: string; message?: string; name?: string };
      const timedOut = e?.name === 'TimeoutError' || e?.name === 'AbortError';
      return [
        {
          url: url.href,
          address: undefined,
          result: 'dns_error',
          ok: false,
          status: undefined,
          message: timedOut
            ? `resolving ${url.hostname} took longer than the timeout`
            : `resolving ${url.hostname}: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(),
          durationMs: Math.round(performance.now() - started),
        },
      ];
    }
    if (addresses.length > MAX_ADDRESSES) {
      opts.logger.warn(
        { url: url.href, addresses: addresses.length, pushed: MAX_ADDRESSES },
        `${url.hostname} has more than ${MAX_ADDRESSES} addresses: pushing to the first ${MAX_ADDRESSES}`,
      );
      addresses = addresses.slice(0, MAX_ADDRESSES);
    }
    return Promise.all(addresses.map((a) => pushOne(url, a, token)));
  }

  return {
    async notify(object) {
      const started = performance.now();
      let token: string;
      try {
        token = (await opts.token()).trim();
        if (token.length < MIN_TOKEN_LENGTH) throw new Error(`shorter than ${MIN_TOKEN_LENGTH} characters`);
      } catch (err) {
        const outcomes = opts.urls.map((u): PushOutcome => ({
          url: u.href,
          address: undefined,
          result: 'unauthorized',
          ok: false,
          status: undefined,
          message: `no usable push token: ${err instanceof Error ? err.message : String(err)}`,
          durationMs: 0,
        }));
        for (const o of outcomes) opts.metrics?.record(o);
        opts.logger.warn({ object, pushes: outcomes }, 'cache push not sent: no usable token');
        return outcomes;
      }
      const outcomes = (await Promise.all(opts.urls.map((u) => pushUrl(u, token)))).flat();
      for (const o of outcomes) opts.metrics?.record(o);
      const failed = outcomes.filter((o) => !o.ok);
      const summary = {
        object,
        pushed: outcomes.length,
        failed: failed.length,
        durationMs: Math.round(performance.now() - started),
      };
      if (failed.length > 0) {
        opts.logger.warn(
          {
            ...summary,
            failures: failed.map(({ url, address, result, message }) => ({ url, address, result, message })),
          },
          `cache push failed for ${failed.length} of ${outcomes.length} address(es): those replicas catch up on their refresh interval`,
        );
      } else {
        opts.logger.info(
          { ...summary, results: outcomes.map(({ address, result }) => `${address}: ${result}`) },
          `cache push sent to ${outcomes.length} address(es)`,
        );
      }
      return outcomes;
    },
  };
}
