// A stand-in for a Flipt v1.61.1 master: a loopback HTTP server that replays REST API answers.
// Flipt cannot be built on this machine (the Go module proxy refuses go.flipt.io), so the answers
// are fixtures written from Flipt v1.61.1's REST API definitions (rpc/flipt/flipt.proto through
// its grpc-gateway with jsonpb EmitDefaults: lowerCamelCase, enums by name, default values
// written, unset messages as null), not recordings of a running master. Paging copies Flipt's
// storage: `limit` defaults to 25 and is clamped to 100, `pageToken` is opaque, `nextPageToken`
// is empty on the last page and `totalCount` counts the whole list.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeFlag,
  decodeNamespace,
  decodeRollout,
  decodeRule,
  decodeSegment,
  type FliptState,
} from '../../exporter/api.ts';

type Json = Record<string, unknown>;

/** The master's data, in API JSON shape; lists per namespace and per `namespace/flag`. */
export interface MasterData {
  namespaces: Json[];
  flags: Record<string, Json[]>;
  segments: Record<string, Json[]>;
  rules: Record<string, Json[]>;
  rollouts: Record<string, Json[]>;
}

export interface ReplayRequest {
  method: string;
  /** The decoded-URL path as a URL parser sees it (dot segments resolved). */
  path: string;
  /** The path exactly as it arrived on the wire, before any parsing. */
  rawPath: string;
  ifNoneMatch: string | undefined;
  query: URLSearchParams;
  authorization: string | undefined;
}

export interface ReplayAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
  /** Send the body in pieces without Content-Length (chunked). */
  chunked?: boolean;
  /** Wait this long before answering (to provoke timeouts). */
  delayMs?: number;
  /** Answer only once this settles (lets a test hold requests until it has seen enough). */
  hold?: Promise<unknown>;
  /** Close the connection without an answer. */
  destroy?: boolean;
}

/** Decides an answer; `normal()` is what the master would answer. */
export type ReplayHandler = (request: ReplayRequest, normal: () => ReplayAnswer) => ReplayAnswer;

export interface ReplayMaster {
  readonly url: string;
  readonly requests: ReplayRequest[];
  data: MasterData;
  handler: ReplayHandler;
  close(): Promise<void>;
}

export const DEFAULT_LIMIT = 25;
export const MAX_LIMIT = 100;

const fixtureDir = join(import.meta.dirname, 'fixtures');

/** The hand-written fixture covering every shape (see fixtures/README.md). */
export function loadFixture(name = 'flipt-v1.61.1-api.json'): MasterData {
  const raw = JSON.parse(readFileSync(join(fixtureDir, name), 'utf8')) as MasterData & { _comment?: unknown };
  return {
    namespaces: raw.namespaces,
    flags: raw.flags,
    segments: raw.segments,
    rules: raw.rules,
    rollouts: raw.rollouts,
  };
}

function json(status: number, value: unknown): ReplayAnswer {
  return { status, body: JSON.stringify(value) };
}

function notFound(message: string): ReplayAnswer {
  return json(404, { code: 5, message, details: [] });
}

function page(list: Json[], field: string, query: URLSearchParams): ReplayAnswer {
  const requested = Number(query.get('limit') ?? '0');
  const limit =
    !Number.isInteger(requested) || requested <= 0 ? DEFAULT_LIMIT : Math.min(requested, MAX_LIMIT);
  let offset = 0;
  const token = query.get('pageToken');
  if (token) {
    try {
      offset = (JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { offset: number }).offset;
    } catch {
      return json(400, { code: 3, message: 'pageToken is not valid', details: [] });
    }
  }
  const items = list.slice(offset, offset + limit);
  const next = offset + limit < list.length;
  return json(200, {
    [field]: items,
    nextPageToken: next ? Buffer.from(JSON.stringify({ offset: offset + limit })).toString('base64') : '',
    totalCount: list.length,
  });
}

/**
 * The namespace's version ETag as Flipt's evaluation snapshot endpoint sends it: a SHA-1 that
 * changes with every write to the namespace (here: with its data).
 */
export function namespaceEtag(data: MasterData, ns: string): string {
  const of = (lists: Record<string, Json[]>) =>
    Object.entries(lists).filter(([key]) => key === ns || key.startsWith(`${ns}/`));
  const state = [data.flags[ns], data.segments[ns], of(data.rules), of(data.rollouts)];
  return createHash('sha1').update(JSON.stringify(state)).digest('hex');
}

/** What a Flipt v1 master answers for the read endpoints the exporter uses. */
export function answer(data: MasterData, request: ReplayRequest): ReplayAnswer {
  // Routed like grpc-gateway: on the raw path's segments, each decoded on its own.
  const parts = request.rawPath
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  if (parts.slice(0, 5).join('/') === 'internal/v1/evaluation/snapshot/namespace' && parts.length === 6) {
    const ns = parts[5] as string;
    if (!data.namespaces.some((n) => n['key'] === ns)) return notFound(`namespace "${ns}" not found`);
    // Flipt answers 304 without reading when If-None-Match is current; the body is not used.
    const etag = namespaceEtag(data, ns);
    if (request.ifNoneMatch === etag) return { status: 304, body: '', headers: { etag } };
    return { status: 200, body: JSON.stringify({ namespace: { key: ns }, flags: [] }), headers: { etag } };
  }
  if (request.method !== 'GET' || parts[0] !== 'api' || parts[1] !== 'v1' || parts[2] !== 'namespaces') {
    return notFound(`no route for ${request.method} ${request.path}`);
  }
  if (parts.length === 3) return page(data.namespaces, 'namespaces', request.query);
  const ns = parts[3] as string;
  const namespace = data.namespaces.find((n) => n['key'] === ns);
  if (!namespace) return notFound(`namespace "${ns}" not found`);
  if (parts.length === 4) return json(200, namespace);
  if (parts.length === 5 && parts[4] === 'flags') return page(data.flags[ns] ?? [], 'flags', request.query);
  if (parts.length === 5 && parts[4] === 'segments')
    return page(data.segments[ns] ?? [], 'segments', request.query);
  if (parts.length === 7 && parts[4] === 'flags') {
    const key = `${ns}/${parts[5]}`;
    // The rollouts list is also called "rules" in Flipt's RolloutList message.
    if (parts[6] === 'rules') return page(data.rules[key] ?? [], 'rules', request.query);
    if (parts[6] === 'rollouts') return page(data.rollouts[key] ?? [], 'rules', request.query);
  }
  return notFound(`no route for ${request.path}`);
}

export interface StartOptions {
  data: MasterData;
  /** When set, requests without `Authorization: Bearer <token>` get 401 as from Flipt. */
  token?: string;
}

export async function startReplayMaster(options: StartOptions): Promise<ReplayMaster> {
  const requests: ReplayRequest[] = [];
  const master: ReplayMaster & { url: string } = {
    url: '',
    requests,
    data: options.data,
    handler: (_request, normal) => normal(),
    close: async () => undefined,
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://replay');
    const request: ReplayRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      rawPath: (req.url ?? '/').split('?')[0] as string,
      ifNoneMatch: req.headers['if-none-match'],
      query: url.searchParams,
      authorization: req.headers.authorization,
    };
    requests.push(request);
    const normal = (): ReplayAnswer => {
      if (options.token !== undefined && request.authorization !== `Bearer ${options.token}`) {
        return json(401, { code: 16, message: 'request was not authenticated', details: [] });
      }
      return answer(master.data, request);
    };
    const reply = master.handler(request, normal);
    const send = () => {
      if (reply.destroy) {
        req.socket.destroy();
        return;
      }
      if (!reply.chunked) {
        res.writeHead(reply.status, {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(reply.body)),
          ...reply.headers,
        });
        res.end(reply.body);
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      const piece = 64 * 1024;
      for (let i = 0; i < reply.body.length; i += piece) res.write(reply.body.slice(i, i + piece));
      res.end();
    };
    if (reply.hold) void reply.hold.then(send, send);
    else if (reply.delayMs) setTimeout(send, reply.delayMs);
    else send();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  master.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  master.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return master;
}

/** Requests to one list endpoint, e.g. `/api/v1/namespaces/default/flags`. */
export function requestsTo(master: ReplayMaster, path: string): ReplayRequest[] {
  return master.requests.filter((r) => r.path === path);
}

/** The state the exporter would read from `data`, without HTTP: for the pure renderer's tests. */
export function stateOf(data: MasterData): FliptState {
  return {
    namespaces: data.namespaces.map((raw, i) => {
      const namespace = decodeNamespace(raw, `namespaces[${i}]`);
      const ns = namespace.key;
      return {
        namespace,
        segments: (data.segments[ns] ?? []).map((s, j) => decodeSegment(s, `${ns}.segments[${j}]`)),
        flags: (data.flags[ns] ?? []).map((f, j) => {
          const flag = decodeFlag(f, `${ns}.flags[${j}]`);
          const key = `${ns}/${flag.key}`;
          const boolean = flag.type === 'BOOLEAN_FLAG_TYPE';
          return {
            flag,
            rules: boolean ? [] : (data.rules[key] ?? []).map((r, k) => decodeRule(r, `${key}.rules[${k}]`)),
            rollouts: boolean
              ? (data.rollouts[key] ?? []).map((r, k) => decodeRollout(r, `${key}.rollouts[${k}]`))
              : [],
          };
        }),
      };
    }),
  };
}

const TS = '2026-03-01T10:00:00.000000Z';

/**
 * A synthetic master of realistic shape for paging tests and the benchmark: `flags` flags spread
 * over `namespaces` namespaces, two thirds variant flags (2-3 variants with attachments, 2 rules
 * with distributions, one multi-segment) and one third boolean flags (a segment and a threshold
 * rollout), 20 segments per namespace with 2 constraints each.
 */
export function syntheticData(flags: number, namespaces = 1): MasterData {
  const data: MasterData = { namespaces: [], flags: {}, segments: {}, rules: {}, rollouts: {} };
  let id = 0;
  const nextId = () => `00000000-0000-4000-8000-${(id++).toString(16).padStart(12, '0')}`;
  for (let n = 0; n < namespaces; n++) {
    const ns = n === 0 ? 'default' : `team-${String(n).padStart(3, '0')}`;
    data.namespaces.push({
      key: ns,
      name: n === 0 ? 'Default' : `Team ${n}`,
      description: n === 0 ? 'Default namespace' : '',
      protected: n === 0,
      createdAt: TS,
      updatedAt: TS,
    });
    const segments: Json[] = [];
    for (let s = 0; s < 20; s++) {
      segments.push({
        key: `segment-${s}`,
        name: `Segment ${s}`,
        description: s % 2 === 0 ? `Users in cohort ${s}` : '',
        createdAt: TS,
        updatedAt: TS,
        constraints: [
          {
            id: nextId(),
            segmentKey: `segment-${s}`,
            type: 'STRING_COMPARISON_TYPE',
            property: 'plan',
            operator: 'eq',
            value: `plan-${s}`,
            createdAt: TS,
            updatedAt: TS,
            namespaceKey: ns,
            description: '',
          },
          {
            id: nextId(),
            segmentKey: `segment-${s}`,
            type: 'NUMBER_COMPARISON_TYPE',
            property: 'age',
            operator: 'gte',
            value: String(18 + s),
            createdAt: TS,
            updatedAt: TS,
            namespaceKey: ns,
            description: 'adults only',
          },
        ],
        matchType: s % 3 === 0 ? 'ANY_MATCH_TYPE' : 'ALL_MATCH_TYPE',
        namespaceKey: ns,
      });
    }
    data.segments[ns] = segments;
    const list: Json[] = [];
    const share = Math.floor(flags / namespaces) + (n < flags % namespaces ? 1 : 0);
    for (let f = 0; f < share; f++) {
      const key = `flag-${String(f).padStart(5, '0')}`;
      const boolean = f % 3 === 2;
      const variants = boolean
        ? []
        : Array.from({ length: 2 + (f % 2) }, (_, v) => ({
            id: nextId(),
            flagKey: key,
            key: `variant-${v}`,
            name: `Variant ${v}`,
            description: v === 0 ? 'control group' : '',
            createdAt: TS,
            updatedAt: TS,
            attachment:
              v === 0
                ? ''
                : JSON.stringify({ color: v === 1 ? 'blue' : 'green', weight: v * 10, tags: ['a', 'b'] }),
            namespaceKey: ns,
          }));
      list.push({
        key,
        name: `Flag ${f}`,
        description: f % 4 === 0 ? `Controls feature number ${f}` : '',
        enabled: f % 5 !== 0,
        createdAt: TS,
        updatedAt: TS,
        variants,
        namespaceKey: ns,
        type: boolean ? 'BOOLEAN_FLAG_TYPE' : 'VARIANT_FLAG_TYPE',
        defaultVariant: boolean ? null : variants[0],
        metadata: f % 2 === 0 ? { team: `team-${f % 7}`, tier: f % 3 } : null,
      });
      if (boolean) {
        data.rollouts[`${ns}/${key}`] = [
          {
            id: nextId(),
            namespaceKey: ns,
            flagKey: key,
            type: 'SEGMENT_ROLLOUT_TYPE',
            rank: 1,
            description: 'cohort first',
            createdAt: TS,
            updatedAt: TS,
            segment: {
              segmentKey: `segment-${f % 20}`,
              value: true,
              segmentKeys: [],
              segmentOperator: 'OR_SEGMENT_OPERATOR',
            },
          },
          {
            id: nextId(),
            namespaceKey: ns,
            flagKey: key,
            type: 'THRESHOLD_ROLLOUT_TYPE',
            rank: 2,
            description: '',
            createdAt: TS,
            updatedAt: TS,
            threshold: { percentage: (f % 100) + 0.5, value: true },
          },
        ];
      } else {
        const [first, second] = variants as unknown as [Json, Json];
        data.rules[`${ns}/${key}`] = [
          {
            id: nextId(),
            flagKey: key,
            segmentKey: `segment-${f % 20}`,
            distributions: [
              { id: nextId(), ruleId: '', variantId: first['id'], rollout: 50, createdAt: TS, updatedAt: TS },
              {
                id: nextId(),
                ruleId: '',
                variantId: second['id'],
                rollout: 50,
                createdAt: TS,
                updatedAt: TS,
              },
            ],
            rank: 1,
            createdAt: TS,
            updatedAt: TS,
            namespaceKey: ns,
            segmentKeys: [],
            segmentOperator: 'OR_SEGMENT_OPERATOR',
          },
          {
            id: nextId(),
            flagKey: key,
            segmentKey: '',
            distributions: [
              {
                id: nextId(),
                ruleId: '',
                variantId: second['id'],
                rollout: 100,
                createdAt: TS,
                updatedAt: TS,
              },
            ],
            rank: 2,
            createdAt: TS,
            updatedAt: TS,
            namespaceKey: ns,
            segmentKeys: [`segment-${(f + 1) % 20}`, `segment-${(f + 2) % 20}`],
            segmentOperator: 'AND_SEGMENT_OPERATOR',
          },
        ];
      }
    }
    data.flags[ns] = list;
  }
  return data;
}
