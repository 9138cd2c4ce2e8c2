// "Did you mean" for a mistyped annotation key, with bounded work: only keys of plausible length are
// compared, a known key whose length alone differs too much is skipped, and each comparison stops as
// soon as the distance exceeds the threshold. An attacker-sized key costs one length check.

/** Edits (insert, delete, substitute) a typo may be away from the key it meant. */
export const MAX_SUGGESTION_DISTANCE = 3;

/**
 * Levenshtein distance between a and b when it is at most `max`, else `max + 1`. Rows stop early
 * once every entry exceeds `max`.
 */
export function boundedEditDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      const value = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
      current[j] = value;
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return max + 1;
    previous = current;
  }
  return Math.min(previous[b.length] as number, max + 1);
}

/** The known key closest to `key` within MAX_SUGGESTION_DISTANCE edits (the first on ties), if any. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const longest = Math.max(...known.map((k) => k.length));
  if (key.length > longest + MAX_SUGGESTION_DISTANCE) return undefined;
  let best: string | undefined;
  let bestDistance = MAX_SUGGESTION_DISTANCE + 1;
  for (const candidate of known) {
    const distance = boundedEditDistance(key, candidate, MAX_SUGGESTION_DISTANCE);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
