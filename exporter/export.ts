// One export: read the master → build and check the documents → render → compare with the bucket
// → guard → upload. Every step that can fail ends the run with a value saying which step and why;
// nothing is written unless every earlier step succeeded.
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { readFliptState, type FliptClient } from './flipt.ts';
import { checkShrink, type ShrinkPolicy } from './guard.ts';
import { buildDocuments, DOCUMENT_VERSION, renderYaml } from './render.ts';
import type { ObjectStore } from './s3.ts';
import type { DocumentValidator } from './schema.ts';

export type FailureStage = 'flipt' | 'render' | 'schema' | 's3' | 'guard';

export interface ExportSummary {
  namespaces: number;
  flags: number;
  segments: number;
  bytes: number;
  sha256: string;
  fliptRequests: number;
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

export interface ExportOptions {
  namespaces?: readonly string[] | undefined;
  concurrency: number;
  shrink: ShrinkPolicy;
  signal?: AbortSignal | undefined;
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
  const fail = (stage: FailureStage, message: string, problems: string[] = []): ExportOutcome => ({
    status: 'failed',
    stage,
    message,
    problems,
    fliptRequests: deps.flipt.requests - requestsBefore,
    durationMs: now() - started,
  });

  let state;
  try {
    state = await readFliptState(deps.flipt, {
      namespaces: options.namespaces,
      concurrency: options.concurrency,
      signal: options.signal,
    });
  } catch (err) {
    return fail('flipt', `reading the Flipt master failed: ${messageOf(err)}`);
  }

  const built = buildDocuments(state);
  if (!built.ok) {
    return fail(
      'render',
      `the master's state cannot be exported: ${listProblems(built.errors)}`,
      built.errors,
    );
  }
  if (deps.validate) {
    const problems = deps.validate(built.documents);
    if (problems.length > 0) {
      return fail(
        'schema',
        `the export breaks Flipt's document schema, so every sidecar would refuse it: ${listProblems(problems)}`,
        problems,
      );
    }
  }

  const body = Buffer.from(renderYaml(built.documents), 'utf8');
  const sha256 = createHash('sha256').update(body).digest('hex');
  const summary = (): ExportSummary => ({
    ...built.stats,
    bytes: body.byteLength,
    sha256,
    fliptRequests: deps.flipt.requests - requestsBefore,
    durationMs: now() - started,
  });

  let previousFlags: number | undefined;
  try {
    const current = await deps.store.head(options.signal);
    if (current) {
      if (current.metadata[META.sha256] === sha256) return { status: 'unchanged', ...summary() };
      const counted = Number(current.metadata[META.flags]);
      if (current.metadata[META.sha256] !== undefined && Number.isInteger(counted) && counted >= 0) {
        previousFlags = counted;
      } else {
        // Not written by this exporter (or metadata lost): look at the content itself.
        const previous = await deps.store.get(options.signal);
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

  const decision = checkShrink(previousFlags, built.stats.flags, options.shrink);
  if (!decision.ok)
    return fail('guard', `export refused, ${deps.store.location} left as it is: ${decision.reason}`);

  try {
    await deps.store.put(
      body,
      {
        [META.sha256]: sha256,
        [META.flags]: String(built.stats.flags),
        [META.segments]: String(built.stats.segments),
        [META.namespaces]: String(built.stats.namespaces),
        [META.format]: `flipt-declarative-${DOCUMENT_VERSION}`,
      },
      options.signal,
    );
  } catch (err) {
    return fail('s3', messageOf(err));
  }
  return { status: 'uploaded', previousFlags, ...summary() };
}
