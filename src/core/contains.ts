// The deep comparison the idempotence check rests on.

/**
 * True when `actual` has every field of `expected` with the same value, and every item of an
 * expected array, in order, among its own. The API server fills in defaults (terminationMessagePath,
 * probe thresholds) and in-tree admission plugins add to our container (the ServiceAccount plugin
 * appends its token volumeMount) after our patch: none of that may make a re-invocation think the
 * sidecar changed.
 */
export function containsAll(expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return false;
    let from = 0;
    for (const item of expected) {
      const at = actual.findIndex((candidate, i) => i >= from && containsAll(item, candidate));
      if (at < 0) return false;
      from = at + 1;
    }
    return true;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    const record = actual as Record<string, unknown>;
    return Object.entries(expected).every(([key, value]) => containsAll(value, record[key]));
  }
  return expected === actual;
}
