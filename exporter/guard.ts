// Pure: whether an export may replace the object in the bucket, judged by how many flags it would
// remove. A master that came up empty, or restored from an old backup, must not empty every
// sidecar in the fleet; a real mass deletion is let through once with --allow-shrink.

export interface ShrinkPolicy {
  /** Let any shrink through (--allow-shrink). */
  allowShrink: boolean;
  /** The largest share of the bucket's flags (0..1) one export may remove without --allow-shrink. */
  maxShrink: number;
}

export type ShrinkDecision = { ok: true; removed: number } | { ok: false; reason: string };

/**
 * @param previousFlags flags in the object now in the bucket; undefined when there is none (or it
 *   cannot be read), which leaves nothing to protect.
 */
export function checkShrink(
  previousFlags: number | undefined,
  nextFlags: number,
  policy: ShrinkPolicy,
): ShrinkDecision {
  if (previousFlags === undefined || nextFlags >= previousFlags) return { ok: true, removed: 0 };
  const removed = previousFlags - nextFlags;
  if (policy.allowShrink) return { ok: true, removed };
  if (nextFlags === 0) {
    return {
      ok: false,
      reason:
        `the export has no flags but the object in the bucket has ${previousFlags}: refusing to remove every flag ` +
        '(a master that came up empty?); pass --allow-shrink to export it anyway',
    };
  }
  const share = removed / previousFlags;
  if (share > policy.maxShrink) {
    return {
      ok: false,
      reason:
        `the export would remove ${removed} of the ${previousFlags} flags in the bucket ` +
        `(${(share * 100).toFixed(1)}%, more than the allowed ${(policy.maxShrink * 100).toFixed(1)}%); ` +
        'pass --allow-shrink to export it anyway, or raise --max-shrink',
    };
  }
  return { ok: true, removed };
}
