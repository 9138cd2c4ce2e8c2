// The S3 cost and request-rate model of a fleet of sidecars, from the requests one sidecar makes per
// poll (counted by bench/sidecar.ts through a recording proxy, not assumed). Pure arithmetic.
//
// Prices: public S3 Standard request prices (us-east-1): GET/HEAD $0.0004 per 1,000; LIST (like
// PUT/COPY/POST) $0.005 per 1,000. Rate limits: AWS documents at least 5,500 GET/HEAD and 3,500
// PUT/COPY/POST/DELETE requests per second per partitioned prefix. It does not name LIST; a
// ListObjectsV2 is an HTTP GET on the bucket, so the model counts it in the GET/HEAD class (an
// assumption, said so in the output). Every sidecar reads the same keys, so sharding by prefix
// does not help: all of it lands on one prefix.

import { table } from './lab.ts';

export const PRICE_PER_1000 = { get: 0.0004, list: 0.005 } as const;
export const PREFIX_LIMIT_GET_PER_S = 5_500;

export interface PollRequests {
  /** GET/HEAD requests per poll (index file, objects). */
  get: number;
  /** LIST requests per poll. */
  list: number;
}

export interface FleetCost {
  pods: number;
  intervalS: number;
  getPerS: number;
  listPerS: number;
  dollarsPerDay: number;
  /** GET + LIST per second over the per-prefix GET/HEAD limit. */
  overPrefixLimit: boolean;
}

export function dollarsPerPoll(poll: PollRequests): number {
  return (poll.get * PRICE_PER_1000.get + poll.list * PRICE_PER_1000.list) / 1000;
}

export function fleetCost(poll: PollRequests, pods: number, intervalS: number): FleetCost {
  const pollsPerS = pods / intervalS;
  const getPerS = pollsPerS * poll.get;
  const listPerS = pollsPerS * poll.list;
  return {
    pods,
    intervalS,
    getPerS,
    listPerS,
    dollarsPerDay: pollsPerS * 86_400 * dollarsPerPoll(poll),
    overPrefixLimit: getPerS + listPerS > PREFIX_LIMIT_GET_PER_S,
  };
}

/** Pods at which a fleet polling every `intervalS` reaches the per-prefix GET/HEAD limit. */
export function podsAtPrefixLimit(poll: PollRequests, intervalS: number): number {
  return Math.floor((PREFIX_LIMIT_GET_PER_S * intervalS) / (poll.get + poll.list));
}

export function costReport(poll: PollRequests): string {
  const out: string[] = [];
  out.push(
    `Cost model: ${poll.get.toFixed(0)} GET + ${poll.list.toFixed(0)} LIST per poll = $${dollarsPerPoll(poll).toFixed(7)} per poll per pod ` +
      '(S3 Standard: GET $0.0004/1,000, LIST $0.005/1,000)\n',
  );
  const rows: string[][] = [];
  for (const pods of [100, 1_000, 10_000]) {
    for (const interval of [2, 30, 60]) {
      const c = fleetCost(poll, pods, interval);
      rows.push([
        String(pods),
        `${interval} s`,
        c.getPerS.toFixed(c.getPerS < 10 ? 1 : 0),
        c.listPerS.toFixed(c.listPerS < 10 ? 1 : 0),
        `$${c.dollarsPerDay < 10 ? c.dollarsPerDay.toFixed(2) : c.dollarsPerDay.toFixed(0)}`,
        `$${(c.dollarsPerDay * 30).toFixed(0)}`,
        c.overPrefixLimit
          ? `over (${((c.getPerS + c.listPerS) / PREFIX_LIMIT_GET_PER_S).toFixed(1)}x)`
          : 'under',
      ]);
    }
  }
  out.push(
    table(
      [
        'pods',
        'poll',
        'GET/s',
        'LIST/s',
        '$/day',
        '$/30 days',
        `vs ${PREFIX_LIMIT_GET_PER_S} GET/s per prefix`,
      ],
      rows,
    ),
  );
  out.push(
    `\nThe per-prefix limit is reached at ${[2, 30, 60].map((i) => `${podsAtPrefixLimit(poll, i)} pods (${i} s)`).join(', ')}` +
      ' (LIST counted in the GET/HEAD class: AWS names no LIST rate; a ListObjectsV2 is an HTTP GET on the bucket).',
  );
  return out.join('\n');
}

// `node bench/s3-cost.ts GETS LISTS`: the model for other per-poll counts (e.g. a layout of several
// objects: one more GET per object).
if (import.meta.main) {
  const [get = '2', list = '1'] = process.argv.slice(2);
  console.log(costReport({ get: Number(get), list: Number(list) }));
}
