// The pod-independent part of an admission, done once per distinct sidecar instead of once per pod.
// Where the injector's extra CPU per admission went (issue 11; bench/webhook-steps.ts in-process,
// bench/webhook.ts A/B of whole servers; 3-container pod):
//   resolveSettings 8 µs, buildSidecar 2 µs, checks + planPatch 2 µs, JSON.stringify(patch) +
//   base64 15 µs, JSON.stringify of the answer 11 µs, metrics 3 µs, one log line 5 µs in-process
//   (about 40 µs in the server, with its write to stdout), and the garbage of all of it.
// Only the settings, the sidecar and its bytes are the same from pod to pod: kept here, they leave
// about 4 µs (decide, the checks, planPatch, a lookup); the answer is then fixed text around the
// kept base64 (src/webhook/admission.ts). Every check still runs for every pod.
//
// Two small LRU maps, both bounded whatever the pods carry:
// - sidecars, keyed by the resolved settings (their JSON: every field, including ones added later),
//   each holding the frozen container and volume and the base64 of the few patch shapes seen with
//   them (first init container or a new list, volume appended or a new list, ...): the patch of a
//   pod like an earlier one is looked up, not serialized and encoded again;
// - the pod's flipt.io/* annotations → the sidecar they resolve to, so that a pod like the last one
//   skips resolveSettings. Only successful resolutions are kept: a refusal is computed afresh, with
//   the exact messages of the uncached path.
// The cache is owned by one config object (sidecarCacheFor): a reloaded config is a new object and
// starts empty, and no entry can outlive the config it was built from.
import { ANNOTATION_PREFIX, resolveSettings } from './annotations.ts';
import type { SidecarSettings } from './settings.ts';
import type { InjectorConfig } from './config.ts';
import type { PatchOperation } from './k8s.ts';
import { buildSidecar, type SidecarParts } from './sidecar.ts';

/** Distinct sidecars kept (each some 10-20 KB of heap with its patch shapes). */
export const MAX_SIDECARS = 256;
/** Distinct flipt.io/* annotation sets remembered. */
export const MAX_ANNOTATION_SETS = 512;
/** An annotation set longer than this (as a key) is resolved every time, never remembered. */
export const MAX_ANNOTATION_KEY_CHARS = 1024;
/** Patch shapes (which ops, at which paths) whose base64 is kept per sidecar. */
export const MAX_PATCH_SHAPES = 4;

/** A Map that forgets its least recently used entry beyond `max`. */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K);
  }

  get size(): number {
    return this.#map.size;
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  clear(): void {
    this.#map.clear();
  }
}

/**
 * A patch seen with one sidecar, and its base64. Another patch is the same bytes when it has the
 * same operations and paths, this sidecar's own container or volume objects where this one has
 * them, and other values with the same JSON.
 */
interface PatchShape {
  ops: { op: string; path: string; value: unknown; json: string | undefined }[];
  encoded: string;
}

/** One distinct sidecar: built, frozen and encoded once. */
export interface SidecarEntry {
  readonly settings: SidecarSettings;
  readonly sidecar: SidecarParts;
  /** The last MAX_PATCH_SHAPES patch shapes, most recent first. */
  readonly patches: PatchShape[];
}

/** A flipt.io/* annotation set, compared pair by pair before any key is built. */
interface RecentSet {
  names: string[];
  values: string[];
  entry: SidecarEntry;
}
/** Annotation sets checked by comparison before the keyed lookup (most pods repeat the last few). */
const RECENT_SETS = 4;

/** What injectPod gets from a cache: the same answer as resolveSettings, plus the built sidecar. */
export type CachedSettings =
  { ok: true; settings: SidecarSettings; sidecar: SidecarParts } | { ok: false; errors: string[] };

// Cached objects are shared by every request that uses them: frozen, so that a mutation anywhere
// throws instead of silently changing the sidecar of later pods.
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

// Which entry a shared container or volume belongs to, by identity: lets the patch encoder find the
// entry's encoded patches while the patch stays plain operations.
const owner = new WeakMap<object, SidecarEntry>();

export class SidecarCache {
  readonly config: InjectorConfig;
  readonly #sidecars = new Lru<string, SidecarEntry>(MAX_SIDECARS);
  readonly #byAnnotations = new Lru<string, SidecarEntry>(MAX_ANNOTATION_SETS);
  #recent: RecentSet[] = [];

  constructor(config: InjectorConfig) {
    this.config = config;
  }

  /** resolveSettings(config, annotations) and buildSidecar of the result, each done once per distinct input. */
  resolve(annotations: Record<string, string> = {}): CachedSettings {
    // resolveSettings reads only the flipt.io/* keys: they are the whole input besides the config.
    const recent = this.#recentEntry(annotations);
    if (recent) return { ok: true, settings: recent.settings, sidecar: recent.sidecar };
    const names: string[] = [];
    const values: string[] = [];
    let key = '';
    for (const name in annotations) {
      if (!name.startsWith(ANNOTATION_PREFIX)) continue;
      const value = annotations[name] as string;
      names.push(name);
      values.push(value);
      key += `${JSON.stringify(name)}:${JSON.stringify(value)},`;
      if (key.length > MAX_ANNOTATION_KEY_CHARS) break;
    }
    const remember = key.length <= MAX_ANNOTATION_KEY_CHARS;
    let entry = remember ? this.#byAnnotations.get(key) : undefined;
    if (!entry) {
      const resolved = resolveSettings(this.config, annotations);
      if (!resolved.ok) return resolved;
      entry = this.#entry(resolved.settings);
      if (remember) this.#byAnnotations.set(key, entry);
    }
    if (remember) {
      this.#recent.unshift({ names, values, entry });
      if (this.#recent.length > RECENT_SETS) this.#recent.pop();
    }
    return { ok: true, settings: entry.settings, sidecar: entry.sidecar };
  }

  #recentEntry(annotations: Record<string, string>): SidecarEntry | undefined {
    next: for (const set of this.#recent) {
      let i = 0;
      for (const name in annotations) {
        if (!name.startsWith(ANNOTATION_PREFIX)) continue;
        if (set.names[i] !== name || set.values[i] !== annotations[name]) continue next;
        i++;
      }
      if (i === set.names.length) return set.entry;
    }
    return undefined;
  }

  #entry(settings: SidecarSettings): SidecarEntry {
    const key = JSON.stringify(settings);
    const known = this.#sidecars.get(key);
    if (known) return known;
    const sidecar = deepFreeze(buildSidecar(settings));
    const entry: SidecarEntry = {
      settings: deepFreeze(settings),
      sidecar,
      patches: [],
    };
    owner.set(sidecar.container, entry);
    owner.set(sidecar.volume, entry);
    this.#sidecars.set(key, entry);
    return entry;
  }

  /** How much the cache holds, for tests and metrics. */
  get size(): { sidecars: number; annotationSets: number; patchShapes: number } {
    let patchShapes = 0;
    for (const entry of this.#sidecars.values()) patchShapes += entry.patches.length;
    return { sidecars: this.#sidecars.size, annotationSets: this.#byAnnotations.size, patchShapes };
  }

  clear(): void {
    this.#sidecars.clear();
    this.#byAnnotations.clear();
    this.#recent = [];
  }
}

const caches = new WeakMap<InjectorConfig, SidecarCache>();

/** The cache belonging to `config` (created on first use, dropped with the config). */
export function sidecarCacheFor(config: InjectorConfig): SidecarCache {
  let cache = caches.get(config);
  if (!cache) {
    cache = new SidecarCache(config);
    caches.set(config, cache);
  }
  return cache;
}

/** The cached sidecar a patch carries (as a value, or as the one item of a new list), if any. */
function ownerOf(value: unknown): SidecarEntry | undefined {
  const single = Array.isArray(value) && value.length === 1 ? (value[0] as unknown) : value;
  return typeof single === 'object' && single !== null ? owner.get(single) : undefined;
}

function sameValue(value: unknown, shape: PatchShape['ops'][number]): boolean {
  if (shape.json === undefined) {
    // This sidecar's own object, or a new list holding only it.
    if (value === shape.value) return true;
    return (
      Array.isArray(value) &&
      Array.isArray(shape.value) &&
      value.length === 1 &&
      shape.value.length === 1 &&
      value[0] === shape.value[0]
    );
  }
  // Equal strings have equal JSON (the status annotation): no need to serialize it per admission.
  if (typeof value === 'string') return value === shape.value;
  return JSON.stringify(value) === shape.json;
}

function matches(ops: readonly PatchOperation[], shape: PatchShape): boolean {
  if (ops.length !== shape.ops.length) return false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as PatchOperation;
    const seen = shape.ops[i] as PatchShape['ops'][number];
    if (op.op !== seen.op || op.path !== seen.path) return false;
    if (!sameValue('value' in op ? op.value : undefined, seen)) return false;
  }
  return true;
}

/** Patches longer than this (as paths and small values) are encoded every time, never kept. */
const MAX_SHAPE_CHARS = 1024;

/**
 * base64 of JSON.stringify(ops), the AdmissionReview's patch. For a cached sidecar each patch shape
 * (first init container or a new list, volume appended or a new list, ...) is encoded once; a
 * patch with no cached sidecar in it, or with another's, is encoded as it comes.
 */
export function encodePatch(ops: readonly PatchOperation[]): string {
  let entry: SidecarEntry | undefined;
  for (const op of ops) {
    const of = 'value' in op ? ownerOf(op.value) : undefined;
    if (of && entry && of !== entry) return Buffer.from(JSON.stringify(ops)).toString('base64');
    entry ??= of;
  }
  if (!entry) return Buffer.from(JSON.stringify(ops)).toString('base64');
  const { patches } = entry;
  for (let i = 0; i < patches.length; i++) {
    const shape = patches[i] as PatchShape;
    if (!matches(ops, shape)) continue;
    if (i > 0) patches.unshift(...patches.splice(i, 1));
    return shape.encoded;
  }
  // The reference serialization: what is kept is exactly what the uncached path sends. The PatchOperation
  // type (op, path, value) is every key an operation has, so equal ops, paths and values are equal JSON.
  const encoded = Buffer.from(JSON.stringify(ops)).toString('base64');
  let size = 0;
  const shapeOps = ops.map((op) => {
    const value = 'value' in op ? op.value : undefined;
    const json = ownerOf(value) ? undefined : JSON.stringify(value);
    size += op.path.length + (json?.length ?? 0);
    return { op: op.op, path: op.path, value, json };
  });
  if (size <= MAX_SHAPE_CHARS) {
    patches.unshift({ ops: shapeOps, encoded });
    if (patches.length > MAX_PATCH_SHAPES) patches.pop();
  }
  return encoded;
}
