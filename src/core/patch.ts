// JSON Patch (RFC 6902) operations for the pod, with RFC 6901 pointer escaping, and correct `add`
// operations whether or not the target array or map exists yet.
import type { PatchOperation } from './k8s.ts';

/** Escapes one reference token: "~" → "~0", "/" → "~1" (in that order, per RFC 6901). */
export function escapePointerToken(token: string): string {
  // Most tokens (spec, containers, 0) need no escaping; skip the two scans for them.
  if (!token.includes('~') && !token.includes('/')) return token;
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

// The tokens of every patch are the same few names (spec, initContainers, flipt.io/status, ...):
// escaped once. Bounded, so that tokens from elsewhere cannot grow it.
const escaped = new Map<string, string>();
const MAX_ESCAPED = 64;

function escapeKnown(token: string): string {
  let result = escaped.get(token);
  if (result === undefined) {
    result = escapePointerToken(token);
    if (escaped.size < MAX_ESCAPED) escaped.set(token, result);
  }
  return result;
}

// A loop, not map/join, and no spread of token lists: this runs for every patch operation of every
// admission.
function joinTokens(tokens: readonly (string | number)[]): string {
  let path = '';
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string | number;
    path += `/${typeof token === 'number' ? token : escapeKnown(token)}`;
  }
  return path;
}

/** A JSON Pointer from unescaped tokens. */
export function pointer(...tokens: (string | number)[]): string {
  return joinTokens(tokens);
}

/**
 * Adds `item` to the array at `arrayPath` (tokens), at `index` or at the end: creating the array
 * when it is absent or null, since `add` into a missing array is an error.
 */
export function addToArray(
  current: unknown[] | null | undefined,
  arrayPath: string[],
  item: unknown,
  position: 'first' | 'last',
): PatchOperation {
  const path = joinTokens(arrayPath);
  if (!Array.isArray(current)) return { op: 'add', path, value: [item] };
  return { op: 'add', path: position === 'first' ? `${path}/0` : `${path}/-`, value: item };
}

/** Sets `key` in the string map at `mapPath`, creating the map when absent (add replaces an existing member). */
export function setInMap(
  current: Record<string, string> | null | undefined,
  mapPath: string[],
  key: string,
  value: string,
): PatchOperation {
  const path = joinTokens(mapPath);
  if (current === null || current === undefined || typeof current !== 'object') {
    return { op: 'add', path, value: { [key]: value } };
  }
  return { op: 'add', path: `${path}/${escapeKnown(key)}`, value };
}
