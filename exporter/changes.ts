// Watch mode's memory between ticks: per namespace, the master's version ETag and the part of the
// object rendered from it, so a tick re-reads only the namespaces that changed.
//
// Flipt v1.61.1's evaluation snapshot endpoint (GET /internal/v1/evaluation/snapshot/namespace/
// {ns}, internal/server/evaluation/data/server.go) sends `Etag`: the SHA-1 of the namespace's
// stored version, which every SQL write path bumps (namespaces.state_modified_at). With a matching
// `If-None-Match` it answers 304 before reading anything: cheap at any size. Without a match it
// builds the whole snapshot (seconds at 10,000 flags), which the exporter does not read: only its
// ETag. Its body is no substitute for the REST reads (it has no rollout descriptions and repeats a
// rule once per segment).
//
// A read is consistent when the ETag taken before it (computed by the master before it reads) is
// still current after it: then no write happened in between. Otherwise the namespace is read
// again, a bounded number of times. A master that sends no ETag (no version yet, another storage
// backend, an older Flipt) gets a full read of that namespace on every tick.
import type { ApiNamespace } from './api.ts';
import { FliptReadError, type FliptClient } from './flipt-client.ts';
import { mapLimit } from './task-pool.ts';

interface Entry<T> {
  etag: string;
  /** The namespace's name and description as listed: not covered by the version ETag. */
  fingerprint: string;
  value: T;
}

/** What one namespace's read produced, and whether it may be kept for the next tick. */
export interface FreshRead<T> {
  value: T;
  keep: boolean;
}

export interface TickReport<T> {
  values: T[];
  /** Keys of the namespaces read from the master this tick (changed, new, or without an ETag). */
  reread: string[];
  /** Requests spent on ETags this tick. */
  probes: number;
}

export const DEFAULT_MAX_REREADS = 3;

function fingerprintOf(ns: ApiNamespace): string {
  return JSON.stringify([ns.name, ns.description]);
}

export class NamespaceChangeTracker<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #maxRereads: number;

  constructor(options: { maxRereads?: number } = {}) {
    this.#maxRereads = options.maxRereads ?? DEFAULT_MAX_REREADS;
  }

  /** Namespaces currently remembered (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  /** Forgets everything: the next tick reads every namespace. */
  clear(): void {
    this.#entries.clear();
  }

  /**
   * One tick: asks every namespace's ETag (in parallel, at most `concurrency` at once), keeps the
   * values of unchanged namespaces, and reads the others one after another with `fresh`. The
   * values come back in the order of `namespaces`. Namespaces not listed any more are forgotten.
   */
  async tick(
    client: FliptClient,
    namespaces: readonly ApiNamespace[],
    fresh: (namespace: ApiNamespace) => Promise<FreshRead<T>>,
    options: { concurrency: number; signal?: AbortSignal | undefined },
  ): Promise<TickReport<T>> {
    const { signal } = options;
    const listed = new Set(namespaces.map((n) => n.key));
    for (const key of this.#entries.keys()) if (!listed.has(key)) this.#entries.delete(key);

    let probes = 0;
    const probe = async (key: string, ifNoneMatch: string | undefined, s?: AbortSignal) => {
      probes++;
      return client.probeSnapshot(key, ifNoneMatch, s);
    };
    const first = await mapLimit(
      namespaces,
      options.concurrency,
      (ns, s) => probe(ns.key, this.#entries.get(ns.key)?.etag, s),
      signal,
    );

    const values: T[] = [];
    const reread: string[] = [];
    for (const [i, ns] of namespaces.entries()) {
      const found = first[i];
      const entry = this.#entries.get(ns.key);
      const fingerprint = fingerprintOf(ns);
      if (entry && found?.notModified && entry.fingerprint === fingerprint) {
        values.push(entry.value);
        continue;
      }
      reread.push(ns.key);
      this.#entries.delete(ns.key);
      let before = found?.etag;
      for (let attempt = 1; ; attempt++) {
        const read = await fresh(ns);
        if (before === undefined) {
          values.push(read.value); // no ETag: nothing to check against, nothing to keep
          break;
        }
        const after = await probe(ns.key, before, signal);
        if (after?.notModified) {
          if (read.keep) this.#entries.set(ns.key, { etag: before, fingerprint, value: read.value });
          values.push(read.value);
          break;
        }
        if (attempt > this.#maxRereads) {
          throw new FliptReadError(
            `namespace ${ns.key} changed while it was read, ${attempt} times in a row; ` +
              'the next tick tries again',
          );
        }
        before = after?.etag;
      }
    }
    return { values, reread, probes };
  }
}
