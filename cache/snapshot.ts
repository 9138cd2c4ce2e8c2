// One immutable, validated copy of the bucket's objects under the configured prefix: what the cache
// serves. Pure: building and checking a snapshot does no I/O, so a candidate is checked whole and
// swapped in whole, or not at all.
import { loadAll } from 'js-yaml';
import type { DocumentValidator } from '../exporter/schema.ts';
import type { ListedObject } from './s3-api.ts';

export interface CachedObject extends ListedObject {
  body: Buffer;
  contentType: string;
}

export interface Snapshot {
  /** Objects by full key (prefix included), sorted by key for listing. */
  readonly objects: ReadonlyMap<string, CachedObject>;
  readonly sorted: readonly CachedObject[];
  /** A digest of every key and ETag: changes whenever anything served changes. */
  readonly version: string;
  /** When the upstream state it copies was read (ms since epoch). */
  readonly readAt: number;
  readonly flags: number;
  readonly bytes: number;
}

export const INDEX_FILE = '.flipt.yml';

/**
 * Whether Flipt would read this object as flag state. With no index file, Flipt's default index
 * includes `**features.yml`, `**features.yaml` (the `.features.*` forms included); with one, this
 * cache does not evaluate its globs and checks every YAML/JSON object instead (stricter, never
 * laxer than Flipt).
 */
export function isFlagDocument(relativeKey: string, hasIndex: boolean): boolean {
  if (relativeKey === INDEX_FILE) return false;
  if (!hasIndex) return relativeKey.endsWith('features.yml') || relativeKey.endsWith('features.yaml');
  return /\.(ya?ml|json)$/.test(relativeKey);
}

/**
 * Reads one object as Flipt would (a YAML stream, or JSON) and hands each document to `visit`.
 * Returns a problem, or undefined.
 */
export function forEachDocument(
  key: string,
  body: Buffer,
  visit: (document: unknown) => void,
): string | undefined {
  const text = body.toString('utf8');
  if (key.endsWith('.json')) {
    try {
      visit(JSON.parse(text));
      return undefined;
    } catch (err) {
      return `${key}: not valid JSON (${(err as Error).message})`;
    }
  }
  let documents: unknown[];
  try {
    // js-yaml: YAML 1.2 core schema and duplicate keys refused, like Go's yaml.v3 in Flipt; about
    // 8x faster than the `yaml` package on a 6 MB state (1.7 s against 13 s for 10,000 flags).
    documents = loadAll(text);
  } catch (err) {
    return `${key}: not valid YAML (${(err as Error).message.split('\n')[0]})`;
  }
  // An empty document (a trailing `---`) is skipped by Flipt's decoder too.
  for (const value of documents) if (value !== null && value !== undefined) visit(value);
  return undefined;
}

function countFlags(document: unknown): number {
  const flags = (document as { flags?: unknown } | null)?.flags;
  return Array.isArray(flags) ? flags.length : 0;
}

export type SnapshotResult = { ok: true; snapshot: Snapshot } | { ok: false; problems: string[] };

/**
 * Checks a complete candidate (every object under the prefix, bodies read) and builds the
 * snapshot. Refused: no flag document at all (an empty or wrongly-prefixed bucket would make every
 * sidecar serve nothing), an unreadable document, or one Flipt's schema refuses.
 */
export function buildSnapshot(
  prefix: string,
  objects: readonly CachedObject[],
  validate: DocumentValidator | undefined,
  readAt: number,
): SnapshotResult {
  const problems: string[] = [];
  const hasIndex = objects.some((o) => o.key === prefix + INDEX_FILE);
  let flags = 0;
  let documentsSeen = 0;
  for (const o of objects) {
    const relative = o.key.slice(prefix.length);
    if (!isFlagDocument(relative, hasIndex)) continue;
    const problem = forEachDocument(o.key, o.body, (document) => {
      if (validate) for (const p of validate([document])) problems.push(`${o.key}: ${p}`);
      flags += countFlags(document);
    });
    if (problem) problems.push(problem);
    else documentsSeen++;
    // Bounded: a broken state is refused on its first problems, not all of them.
    if (problems.length >= 50) break;
  }
  if (documentsSeen === 0 && problems.length === 0) {
    problems.push(
      `no flag document under the prefix "${prefix}" (Flipt reads objects named *features.yml or *features.yaml)`,
    );
  }
  if (problems.length > 0) return { ok: false, problems };
  const sorted = [...objects].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const version = sorted.map((o) => `${o.key}\u0000${o.etag}`).join('\u0001');
  return {
    ok: true,
    snapshot: {
      objects: new Map(sorted.map((o) => [o.key, o])),
      sorted,
      version,
      readAt,
      flags,
      bytes: sorted.reduce((n, o) => n + o.body.byteLength, 0),
    },
  };
}

/** A short, stable label for the snapshot's version (metrics, logs, /readyz). */
export function versionLabel(snapshot: Snapshot): string {
  if (snapshot.sorted.length === 1) return (snapshot.sorted[0] as CachedObject).etag.replaceAll('"', '');
  let h = 0x811c9dc5;
  for (let i = 0; i < snapshot.version.length; i++) {
    h ^= snapshot.version.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${snapshot.sorted.length}-objects-${h.toString(16).padStart(8, '0')}`;
}
