// The pod-independent part of an admission, done once per distinct sidecar instead of once per pod.
// Profiled on the webhook benchmark (README "Benchmarks", issue 11): resolving the settings,
// building the sidecar (19 env entries, probes, security context) and serializing it into the JSON
// Patch and its base64 were a third of the injector's own CPU per admission, yet depend only on the
// config and the pod's flipt.io/* annotations, and most pods resolve to the same few sidecars.
//
// Two small LRU maps, both bounded whatever the pods carry:
// - sidecars, keyed by the resolved settings (their JSON: every field, including ones added later),
//   each holding the frozen container and volume, their JSON, and the base64 of the few patch
//   shapes seen with them (first container or new list, volume appended or new list, ...);
// - the pod's flipt.io/* annotations → the sidecar they resolve to, so that a pod like the last one
//   skips resolveSettings. Only successful resolutions are kept: a refusal is computed afresh, with
//   the exact messages of the uncached path.
// The cache is owned by one config object (sidecarCacheFor): a reloaded config is a new object and
// starts empty, and no entry can outlive the config it was built from.
import { ANNOTATION_PREFIX, resolveSettings, type SidecarSettings } from './annotations.ts';
import type { InjectorConfig } from './config.ts';
import type { PatchOperation } from './k8s.ts';
import { buildSidecar, type SidecarParts } from './sidecar.ts';

/** Distinct sidecars kept (each about 10 KB with its patch shapes). */
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

/** One distinct sidecar: built, frozen and serialized once. */
export interface SidecarEntry {
  readonly settings: SidecarSettings;
  readonly sidecar: SidecarParts;
  readonly containerJson: string;
  readonly volumeJson: string;
  /** Patch shape (the patch with this sidecar's values left out) → base64 of the whole patch. */
  readonly patches: Lru<string, string>;
}

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

// Which entry a shared container or volume belongs to, by identity: lets the patch encoder use the
// precomputed JSON without the patch carrying anything but plain operations.
const owner = new WeakMap<object, SidecarEntry>();

export class SidecarCache {
  readonly config: InjectorConfig;
  readonly #sidecars = new Lru<string, SidecarEntry>(MAX_SIDECARS);
  readonly #byAnnotations = new Lru<string, SidecarEntry>(MAX_ANNOTATION_SETS);

  constructor(config: InjectorConfig) {
    this.config = config;
  }

  /** resolveSettings(config, annotations) and buildSidecar of the result, each done once per distinct input. */
  resolve(annotations: Record<string, string> = {}): CachedSettings {
    // resolveSettings reads only the flipt.io/* keys: they are the whole input besides the config.
    let key = '';
    for (const name in annotations) {
      if (name.startsWith(ANNOTATION_PREFIX))
        key += `${JSON.stringify(name)}:${JSON.stringify(annotations[name])},`;
      if (key.length > MAX_ANNOTATION_KEY_CHARS) break;
    }
    const remember = key.length <= MAX_ANNOTATION_KEY_CHARS;
    const known = remember ? this.#byAnnotations.get(key) : undefined;
    if (known) return { ok: true, settings: known.settings, sidecar: known.sidecar };
    const resolved = resolveSettings(this.config, annotations);
    if (!resolved.ok) return resolved;
    const entry = this.#entry(resolved.settings);
    if (remember) this.#byAnnotations.set(key, entry);
    return { ok: true, settings: entry.settings, sidecar: entry.sidecar };
  }

  #entry(settings: SidecarSettings): SidecarEntry {
    const key = JSON.stringify(settings);
    const known = this.#sidecars.get(key);
    if (known) return known;
    const sidecar = deepFreeze(buildSidecar(settings));
    const entry: SidecarEntry = {
      settings: deepFreeze(settings),
      sidecar,
      containerJson: JSON.stringify(sidecar.container),
      volumeJson: JSON.stringify(sidecar.volume),
      patches: new Lru(MAX_PATCH_SHAPES),
    };
    owner.set(sidecar.container, entry);
    owner.set(sidecar.volume, entry);
    this.#sidecars.set(key, entry);
    return entry;
  }

  /** How much the cache holds, for tests and metrics. */
  get size(): { sidecars: number; annotationSets: number; patchShapes: number } {
    let patchShapes = 0;
    for (const entry of this.#sidecars.values()) patchShapes += entry.patches.size;
    return { sidecars: this.#sidecars.size, annotationSets: this.#byAnnotations.size, patchShapes };
  }

  clear(): void {
    this.#sidecars.clear();
    this.#byAnnotations.clear();
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

/**
 * The JSON of a patch, byte for byte what JSON.stringify(ops) gives, with this sidecar's container
 * and volume spliced in from their precomputed JSON. `shape` receives the same text with those
 * values left out: the part that depends on the pod.
 */
function patchJson(ops: readonly PatchOperation[]): {
  json: string;
  shape: string;
  entry: SidecarEntry | undefined;
} {
  let entry: SidecarEntry | undefined;
  let mixed = false;
  // A value's JSON, or a marker when it is (a one-item list of) this sidecar's container or volume.
  const known = (value: unknown): [string, string] | undefined => {
    const single = Array.isArray(value) && value.length === 1 ? (value[0] as unknown) : value;
    if (typeof single !== 'object' || single === null) return undefined;
    const of = owner.get(single);
    if (!of) return undefined;
    if (entry && entry !== of) mixed = true;
    entry = of;
    const [json, marker] =
      single === of.sidecar.container ? [of.containerJson, '\u0000C'] : [of.volumeJson, '\u0000V'];
    return single === value ? [json, marker] : [`[${json}]`, `[${marker}]`];
  };
  let json = '[';
  let shape = '[';
  for (const [i, op] of ops.entries()) {
    const sep = i === 0 ? '{' : ',{';
    json += sep;
    shape += sep;
    let first = true;
    for (const [name, value] of Object.entries(op)) {
      if (value === undefined) continue;
      const head = `${first ? '' : ','}${JSON.stringify(name)}:`;
      first = false;
      const splice = name === 'value' ? known(value) : undefined;
      if (splice) {
        json += head + splice[0];
        shape += head + splice[1];
      } else {
        const text = JSON.stringify(value);
        json += head + text;
        shape += head + text;
      }
    }
    json += '}';
    shape += '}';
  }
  json += ']';
  shape += ']';
  return { json, shape, entry: mixed ? undefined : entry };
}

/** Shapes longer than this are pod data rather than a shape: encoded every time, never kept. */
const MAX_SHAPE_CHARS = 1024;

/**
 * base64 of JSON.stringify(ops), the AdmissionReview's patch. For a cached sidecar the bytes of each
 * patch shape are encoded once; anything else is encoded as it comes.
 */
export function encodePatch(ops: readonly PatchOperation[]): string {
  const { json, shape, entry } = patchJson(ops);
  const cacheable = entry !== undefined && shape.length <= MAX_SHAPE_CHARS;
  const known = cacheable ? entry.patches.get(shape) : undefined;
  if (known !== undefined) return known;
  const encoded = Buffer.from(json).toString('base64');
  if (cacheable) entry.patches.set(shape, encoded);
  return encoded;
}
