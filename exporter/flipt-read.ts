// Reads the whole flag state of a Flipt v1 master over its REST API: namespaces, flags with their
// variants, segments with their constraints, and per flag its rules (variant flags) or rollouts
// (boolean flags). Every list is paged to the end, and every failure is an error: a partial read
// must never be mistaken for the master's state.
import { FliptReadError, type FliptClient } from './flipt-client.ts';
import { mapLimit, TaskPool } from './task-pool.ts';
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
