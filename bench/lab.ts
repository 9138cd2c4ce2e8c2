// Shared pieces of the data-path benchmarks (bench/propagation.ts, bench/sidecar.ts,
// bench/datapath.ts): synthetic flag state in Flipt's declarative format, a real Flipt v1.61.1
// master seeded by `flipt import` straight into its SQLite file (the REST API is far too slow for
// 10,000 flags), the injected sidecar (both from the e2e harness), our exporter as a process,
// process sampling from /proc, and percentiles. Not part of the tests: nothing here asserts on time.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { exportTarget } from '../test/e2e/harness/exporter.ts';
import {
  startFliptMaster,
  startInjectedSidecar,
  type FliptMaster,
  type Sidecar,
} from '../test/e2e/harness/flipt.ts';
import { freePort, serverBinary, startProcess, type ManagedProcess } from '../test/support/process.ts';

export type { Sidecar };

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Synthetic flag state: the shape of test/exporter/flipt-replay.ts's synthetic master (20
// segments with two constraints each; two thirds variant flags with 2-3 variants, attachments and
// a rule; one third boolean flags with a threshold and a segment rollout).

export interface FeatureOptions {
  flags: number;
  namespaces?: number;
  /** Split each namespace into documents of this many flags, as the exporter's --flags-per-document. */
  flagsPerDocument?: number;
}

type Doc = Record<string, unknown>;

function flag(ns: string, f: number): Doc {
  const key = `flag-${String(f).padStart(5, '0')}`;
  const base = {
    key,
    name: `Flag ${f}`,
    description: f % 4 === 0 ? `Controls feature number ${f}` : '',
    enabled: f % 5 !== 0,
  };
  if (f % 3 === 2) {
    return {
      ...base,
      type: 'BOOLEAN_FLAG_TYPE',
      rollouts: [
        { segment: { key: `segment-${f % 20}`, value: true } },
        { threshold: { percentage: 50, value: f % 2 === 0 } },
      ],
    };
  }
  const variants = Array.from({ length: 2 + (f % 2) }, (_, v) => ({
    key: `variant-${v}`,
    name: `Variant ${v}`,
    description: v === 0 ? 'control group' : '',
    ...(v === 0
      ? {}
      : { attachment: { color: v === 1 ? 'blue' : 'green', weight: v * 10, tags: ['a', 'b'] } }),
  }));
  const share = Math.floor(100 / variants.length);
  return {
    ...base,
    type: 'VARIANT_FLAG_TYPE',
    variants,
    rules: [
      {
        segment: `segment-${f % 20}`,
        distributions: variants.map((v, i) => ({
          variant: v.key,
          rollout: i === variants.length - 1 ? 100 - share * (variants.length - 1) : share,
        })),
      },
    ],
    ...(ns === 'default' ? {} : { metadata: { team: ns } }),
  };
}

function segments(): Doc[] {
  return Array.from({ length: 20 }, (_, s) => ({
    key: `segment-${s}`,
    name: `Segment ${s}`,
    description: s % 2 === 0 ? `Users in cohort ${s}` : '',
    match_type: s % 3 === 0 ? 'ANY_MATCH_TYPE' : 'ALL_MATCH_TYPE',
    constraints: [
      { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'eq', value: `plan-${s}` },
      { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'gte', value: String(18 + s) },
    ],
  }));
}

export const namespaceKey = (n: number) => (n === 0 ? 'default' : `team-${String(n).padStart(3, '0')}`);

/** The documents of a synthetic state, in order (a YAML stream when joined with `---`). */
export function featureDocuments({ flags, namespaces = 1, flagsPerDocument }: FeatureOptions): Doc[] {
  const docs: Doc[] = [];
  for (let n = 0; n < namespaces; n++) {
    const ns = namespaceKey(n);
    const share = Math.floor(flags / namespaces) + (n < flags % namespaces ? 1 : 0);
    const all = Array.from({ length: share }, (_, f) => flag(ns, f));
    const size = flagsPerDocument ?? Math.max(share, 1);
    // The exporter's layout (exporter/layout.ts): every document repeats the namespace block and
    // carries the segments its own flags use; the first also those no flag uses.
    for (let start = 0; start === 0 || start < share; start += size) {
      const chunk = all.slice(start, start + size);
      const used = new Set(chunk.map((f) => JSON.stringify(f).match(/segment-\d+/g) ?? []).flat());
      docs.push({
        version: '1.4',
        namespace: { key: ns, name: n === 0 ? 'Default' : `Team ${n}` },
        flags: chunk,
        segments: segments().filter((s) => start === 0 || used.has(s['key'] as string)),
      });
    }
  }
  return docs;
}

export function featuresYaml(options: FeatureOptions): string {
  return featureDocuments(options)
    .map((d) => stringify(d, { lineWidth: 0 }))
    .join('---\n');
}

// ---------------------------------------------------------------------------------------------
// Real Flipt processes from the e2e harness (test/e2e/harness/flipt.ts): a master on SQLite, and a
// sidecar run exactly as injected (the injector's real output, uid 100, read-only root). The
// master is seeded by `flipt import` into its database file while it is stopped.

export function fliptBinary(): string {
  return serverBinary('flipt');
}

/** Environment that points the `flipt` CLI (import, direct-DB export) at a SQLite file. */
export function dbEnv(dir: string, dbPath: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: dir,
    FLIPT_DB_URL: `file:${dbPath}`,
    FLIPT_LOG_LEVEL: 'error',
    FLIPT_META_TELEMETRY_ENABLED: 'false',
    FLIPT_META_CHECK_FOR_UPDATES: 'false',
    FLIPT_META_STATE_DIRECTORY: dir,
  };
}

export interface SeededMaster {
  master: FliptMaster;
  url: string;
  port: number;
  /** For `flipt export` straight from the master's database. */
  dbEnv: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

/** A master with this declarative state imported into its database (`flipt import`). */
export async function startSeededMaster(yamlText: string, logLevel = 'warn'): Promise<SeededMaster> {
  const master = await startFliptMaster({ logLevel });
  try {
    await master.stop();
    const file = join(master.dir, 'seed.yml');
    await writeFile(file, yamlText);
    const env = dbEnv(master.dir, join(master.dir, 'flipt.db'));
    await run(fliptBinary(), ['import', file], { env, maxBuffer: 64 * 1024 * 1024 });
    await master.start();
  } catch (err) {
    await master.dispose();
    throw err;
  }
  return {
    master,
    url: master.url,
    port: Number(new URL(master.url).port),
    dbEnv: dbEnv(master.dir, join(master.dir, 'flipt.db')),
    dispose: () => master.dispose(),
  };
}

export interface SidecarOptions {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** flipt.io/* annotations of the pod. */
  annotations?: Record<string, string>;
  /** Extra variables through the injector's own `sidecar.extraEnv` (GOMEMLIMIT, profiling). */
  extraEnv?: Record<string, string>;
  readyTimeoutMs?: number;
}

/** The injected sidecar, started through the e2e harness. */
export function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const extraEnv = Object.entries(options.extraEnv ?? {}).map(([name, value]) => ({ name, value }));
  return startInjectedSidecar({
    s3Endpoint: options.endpoint,
    bucket: options.bucket,
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    annotations: options.annotations ?? {},
    config: extraEnv.length > 0 ? { sidecar: { extraEnv } } : {},
    readyTimeoutMs: options.readyTimeoutMs ?? 180_000,
  });
}

// ---------------------------------------------------------------------------------------------
// /proc sampling.

const PAGE_TICKS = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux.

export interface ProcSample {
  rssBytes: number;
  hwmBytes: number;
  /** Anonymous memory (Go's heap, stacks, runtime): what the kernel cannot reclaim. */
  anonBytes: number;
  /** Mapped file pages (the binary's text and data): page cache, reclaimable under pressure. */
  fileBytes: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
}

export function procSample(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at index 2 = state.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return {
      rssBytes: kb('VmRSS') * 1024,
      hwmBytes: kb('VmHWM') * 1024,
      anonBytes: kb('RssAnon') * 1024,
      fileBytes: kb('RssFile') * 1024,
      cpuSeconds: ticks / PAGE_TICKS,
    };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Small statistics and formatting helpers.

/** Nearest-rank percentile of an unsorted list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const median = (values: number[]) => percentile(values, 50);
export const MiB = 1024 * 1024;
export const mib = (bytes: number) => (bytes / MiB).toFixed(0);

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number (got ${text})`);
  return value;
}

export function envList(name: string, fallback: number[]): number[] {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const values = text.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v) || v <= 0))
    throw new Error(`${name} must be a comma-separated list of positive numbers (got ${text})`);
  return values;
}

// ---------------------------------------------------------------------------------------------
// Our exporter, from the source tree, as a child process (watch mode serves /healthz).

export interface ExporterProcess {
  proc: ManagedProcess;
  /** The JSON log lines it has written so far. */
  lines(): Record<string, unknown>[];
  stop(): Promise<void>;
}

const repoRoot = join(import.meta.dirname, '..');

export function exporterArgs(options: {
  masterUrl: string;
  endpoint: string;
  bucket: string;
  prefix?: string;
  extra?: string[];
}): string[] {
  return [
    join(repoRoot, 'exporter/main.ts'),
    ...exportTarget({
      fliptUrl: options.masterUrl,
      bucket: options.bucket,
      endpoint: options.endpoint,
      prefix: options.prefix,
    }),
    ...(options.extra ?? []),
  ];
}

export async function startExporterWatch(options: {
  dir: string;
  masterUrl: string;
  endpoint: string;
  bucket: string;
  prefix?: string;
  credentials: Record<string, string>;
  intervalS: number;
  extra?: string[];
}): Promise<ExporterProcess> {
  const port = await freePort();
  const logFile = join(options.dir, `exporter-${port}.log`);
  const proc = await startProcess({
    name: 'flipt-exporter',
    command: process.execPath,
    args: [
      ...exporterArgs({
        ...options,
        extra: [
          '--watch',
          '--interval',
          `${options.intervalS}s`,
          '--listen',
          `127.0.0.1:${port}`,
          '--timeout',
          '60s',
          ...(options.extra ?? []),
        ],
      }),
    ],
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      AWS_EC2_METADATA_DISABLED: 'true',
      ...options.credentials,
    },
    logFile,
    ready: async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
    readyTimeoutMs: 300_000,
  });
  return {
    proc,
    lines: () =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: () => proc.stop(10_000),
  };
}
