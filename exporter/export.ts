// One export: list the namespaces → read each (in watch mode only those whose version changed) →
// prepare each (render, lay out, check) → join → compare with the bucket → guard → upload. Every
// step that can fail ends the run with a value saying which step and why; nothing is written unless
// every earlier step succeeded, and nothing after the run's deadline.
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import type { ApiNamespace } from './api.ts';
import type { NamespaceChangeTracker } from './changes.ts';
import type { FliptClient } from './flipt-client.ts';
import { listNamespaces, readNamespace } from './flipt-read.ts';
import { markerYaml } from './marker.ts';
import { checkShrink, type ShrinkPolicy } from './guard.ts';
import { prepareNamespace, type PreparedNamespace, type PrepareResult } from './prepare.ts';
import { DOCUMENT_VERSION, type ConstraintRewrite } from './render.ts';
import type { ObjectStore } from './s3.ts';
import type { DocumentValidator } from './schema.ts';

export type FailureStage = 'flipt' | 'render' | 'schema' | 's3' | 'guard' | 'deadline';

export interface ExportSummary {
  namespaces: number;
  flags: number;
  segments: number;
  /** YAML documents in the object (namespaces split by --flags-per-document). */
  documents: number;
  bytes: number;
  sha256: string;
  fliptRequests: number;
  /** Namespaces read from the master this run (all of them, except in watch mode). */
  namespacesRead: number;
  /** `lt` constraints written as their exact `lte` equivalent. */
  rewrites: ConstraintRewrite[];
  durationMs: number;
}

export type ExportOutcome =
  | ({ status: 'uploaded'; previousFlags: number | undefined } & ExportSummary)
  | ({ status: 'unchanged' } & ExportSummary)
  | {
      status: 'failed';
      stage: FailureStage;
      message: string;
      /** Every problem found, when there are several (render and schema). */
      problems: string[];
      fliptRequests: number;
      durationMs: number;
    };

/** Object metadata the exporter writes and reads back (x-amz-meta-*). */
export const META = {
  sha256: 'sha256',
  flags: 'flags',
  segments: 'segments',
  namespaces: 'namespaces',
  format: 'format',
} as const;

export interface ExportDeps {
  flipt: FliptClient;
  store: ObjectStore;
  /** Flipt's schema check; undefined skips it (--skip-schema-check). */
  validate: DocumentValidator | undefined;
  now?: () => number;
}

/** What watch mode keeps between runs: prepared namespaces by their version ETag. */
export type ExportChangeTracker = NamespaceChangeTracker<PrepareResult>;

export interface ExportOptions {
  namespaces?: readonly string[] | undefined;
  concurrency: number;
  shrink: ShrinkPolicy;
  /** Flags per YAML document (0: one document per namespace). */
  flagsPerDocument: number;
  /** The whole run, reads and upload, must end within this; undefined: no deadline. */
  deadlineMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Watch mode: re-read only namespaces whose version changed since the last run. */
  changes?: ExportChangeTracker | undefined;
  /** The export marker namespace written after the master's namespaces; "" or undefined: none. */
  markerNamespace?: string | undefined;
}

const MAX_LISTED_PROBLEMS = 10;

function listProblems(problems: string[]): string {
  const shown = problems.slice(0, MAX_LISTED_PROBLEMS).join('; ');
  const more =
    problems.length > MAX_LISTED_PROBLEMS ? `; and ${problems.length - MAX_LISTED_PROBLEMS} more` : '';
  return `${shown}${more}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Flags in an object written by someone else (no metadata): parse it; undefined if unreadable. */
export function countFlagsInBody(body: Uint8Array): number | undefined {
  try {
    let flags = 0;
    for (const doc of parseAllDocuments(Buffer.from(body).toString('utf8'))) {
      if (doc.errors.length > 0) return undefined;
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      const list = (value as { flags?: unknown } | null)?.flags;
      if (Array.isArray(list)) flags += list.length;
    }
    return flags;
  } catch {
    return undefined;
  }
}

export async function runExport(deps: ExportDeps, options: ExportOptions): Promise<ExportOutcome> {
  const now = deps.now ?? (() => performance.now());
  const started = now();
  const requestsBefore = deps.flipt.requests;
  const deadline = options.deadlineMs === undefined ? undefined : AbortSignal.timeout(options.deadlineMs);
  const signals = [options.signal, deadline].filter((s): s is AbortSignal => s !== undefined);
  const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
  const fail = (stage: FailureStage, message: string, problems: string[] = []): ExportOutcome => {
    if (deadline?.aborted && !options.signal?.aborted) {
      stage = 'deadline';
      message = `the run did not finish within its deadline of ${options.deadlineMs} ms (--deadline); nothing was written`;
      problems = [];
    }
    return {
      status: 'failed',
      stage,
      message,
      problems,
      fliptRequests: deps.flipt.requests - requestsBefore,
      durationMs: now() - started,
    };
  };
  const prepareOptions = { flagsPerDocument: options.flagsPerDocument, validate: deps.validate };
  const readOne = async (namespace: ApiNamespace): Promise<PrepareResult> =>
    prepareNamespace(await readNamespace(deps.flipt, namespace, options.concurrency, signal), prepareOptions);

  let results: PrepareResult[];
  let namespacesRead: number;
  try {
    const namespaces = await listNamespaces(deps.flipt, { ...options, signal });
    const marker = options.markerNamespace;
    if (marker && namespaces.some((n) => n.key === marker)) {
      return fail(
        'render',
        `the master has a namespace ${marker}, which is the export marker's key: rename it, or choose another --marker-namespace (and the injector's storage.markerNamespace)`,
      );
    }
    if (options.changes) {
      const tick = await options.changes.tick(
        deps.flipt,
        namespaces,
        // A namespace that cannot be exported is kept too: rendering and checking are pure, so
        // until its version moves it would fail the same way, and reading it again each tick
        // would cost the master a snapshot build and a full read for nothing.
        async (ns) => ({ value: await readOne(ns), keep: true }),
        { concurrency: options.concurrency, signal },
      );
      results = tick.values;
      namespacesRead = tick.reread.length;
    } else {
      results = [];
      for (const namespace of namespaces) results.push(await readOne(namespace));
      namespacesRead = namespaces.length;
    }
  } catch (err) {
    return fail('flipt', `reading the Flipt master failed: ${messageOf(err)}`);
  }

  const renderProblems = results.flatMap((r) => (!r.ok && r.stage === 'render' ? r.problems : []));
  if (renderProblems.length > 0) {
    return fail(
      'render',
      `the master's state cannot be exported: ${listProblems(renderProblems)}`,
      renderProblems,
    );
  }
  const schemaProblems = results.flatMap((r) => (!r.ok && r.stage === 'schema' ? r.problems : []));
  if (schemaProblems.length > 0) {
    return fail(
      'schema',
      `the export breaks Flipt's document schema, so every sidecar would refuse it: ${listProblems(schemaProblems)}`,
      schemaProblems,
    );
  }
  const parts = results
    .flatMap((r) => (r.ok ? [r.prepared] : []))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const stats = {
    namespaces: parts.length,
    flags: sum(parts, (p) => p.flags),
    segments: sum(parts, (p) => p.segments),
    documents: sum(parts, (p) => p.documents),
  };

  const marker = options.markerNamespace ? markerYaml(options.markerNamespace) : '';
  const body = Buffer.from(parts.map((p) => p.yaml).join('') + marker, 'utf8');
  // listNamespaces refuses a master without namespaces; this keeps an empty PUT impossible.
  if (body.byteLength === 0) return fail('render', 'the export is empty: refusing to write 0 bytes');
  const sha256 = createHash('sha256').update(body).digest('hex');
  const summary = (): ExportSummary => ({
    ...stats,
    bytes: body.byteLength,
    sha256,
    fliptRequests: deps.flipt.requests - requestsBefore,
    namespacesRead,
    rewrites: parts.flatMap((p) => p.rewrites),
    durationMs: now() - started,
  });

  let previousFlags: number | undefined;
  try {
    const current = await deps.store.head(signal);
    if (current) {
      if (current.metadata[META.sha256] === sha256) return { status: 'unchanged', ...summary() };
      const counted = Number(current.metadata[META.flags]);
      if (current.metadata[META.sha256] !== undefined && Number.isInteger(counted) && counted >= 0) {
        previousFlags = counted;
      } else {
        // Not written by this exporter (or metadata lost): look at the content itself.
        const previous = await deps.store.get(signal);
        if (previous) {
          if (createHash('sha256').update(previous).digest('hex') === sha256) {
            return { status: 'unchanged', ...summary() };
          }
          previousFlags = countFlagsInBody(previous);
        }
      }
    }
  } catch (err) {
    return fail('s3', messageOf(err));
  }

  const decision = checkShrink(previousFlags, stats.flags, options.shrink);
  if (!decision.ok)
    return fail('guard', `export refused, ${deps.store.location} left as it is: ${decision.reason}`);

  // Past the deadline nothing is started; a PUT it interrupts leaves the old or the new object
  // (S3 replaces an object whole), never a part.
  if (signal?.aborted) return fail('s3', 'stopped before the upload');
  try {
    await deps.store.put(
      body,
      {
        [META.sha256]: sha256,
        [META.flags]: String(stats.flags),
        [META.segments]: String(stats.segments),
        [META.namespaces]: String(stats.namespaces),
        [META.format]: `flipt-declarative-${DOCUMENT_VERSION}`,
      },
      signal,
    );
  } catch (err) {
    return fail('s3', messageOf(err));
  }
  return { status: 'uploaded', previousFlags, ...summary() };
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  return items.reduce((total, item) => total + of(item), 0);
}

export type { PreparedNamespace };
