// Which admissions get a log line of their own. A rollout of 500 replicas sent 500 info lines that
// differed only in their uid, and that line was the largest cost of an admission after the HTTP work
// every server shares (issue 11: ~20-37 µs of ~100 µs). So, at info, the first admission of a
// workload (namespace/generateName*) with a given outcome and reason in each window is logged in
// full, the rest are counted, and the count is written as one line when the window ends, like
// syslog's "message repeated N times". Refusals are always logged in full (they are what someone is
// looking for), and at debug every admission is. Metrics count every admission either way.
import type { FastifyBaseLogger } from 'fastify';

/** How long repeats are counted before their summary line is written. */
export const REPEAT_WINDOW_MS = 10_000;
/** Workloads counted per window; beyond it an admission is logged in full (memory stays bounded). */
export const MAX_REPEAT_GROUPS = 1_000;

interface Repeats {
  pod: string;
  outcome: string;
  reason: string;
  dryRun: boolean;
  message: string;
  count: number;
}

export interface AdmissionLogOptions {
  /** Log every admission in full (the logger is at debug or below). */
  everyAdmission: boolean;
  windowMs?: number;
  maxGroups?: number;
}

export class AdmissionLog {
  readonly #log: FastifyBaseLogger;
  readonly #everyAdmission: boolean;
  readonly #windowMs: number;
  readonly #maxGroups: number;
  #groups = new Map<string, Repeats>();
  /** The group of the previous admission: during a rollout most admissions repeat it. */
  #last: Repeats | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(log: FastifyBaseLogger, options: AdmissionLogOptions) {
    this.#log = log;
    this.#everyAdmission = options.everyAdmission;
    this.#windowMs = options.windowMs ?? REPEAT_WINDOW_MS;
    this.#maxGroups = options.maxGroups ?? MAX_REPEAT_GROUPS;
  }

  /**
   * Whether this admission gets its own line; false when it repeats one logged in this window (it
   * is then counted for the summary line).
   */
  first(pod: string, outcome: string, reason: string, dryRun: boolean, message: string): boolean {
    if (this.#everyAdmission) return true;
    // Compared field by field before a key is built and hashed.
    const last = this.#last;
    if (
      last !== undefined &&
      last.pod === pod &&
      last.outcome === outcome &&
      last.reason === reason &&
      last.dryRun === dryRun
    ) {
      last.count++;
      return false;
    }
    const key = `${outcome}\n${reason}\n${dryRun ? 'd' : ''}\n${pod}`;
    const seen = this.#groups.get(key);
    if (seen) {
      seen.count++;
      this.#last = seen;
      return false;
    }
    if (this.#groups.size >= this.#maxGroups) return true;
    const group = { pod, outcome, reason, dryRun, message, count: 0 };
    this.#groups.set(key, group);
    this.#last = group;
    // One timer for all groups, started by the first admission of a window: an idle webhook has none.
    this.#timer ??= setTimeout(() => this.flush(), this.#windowMs).unref();
    return true;
  }

  /** Writes the summary lines of the window and starts a new one. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const seconds = this.#windowMs / 1000;
    for (const group of this.#groups.values()) {
      if (group.count === 0) continue;
      this.#log.info(
        {
          pod: group.pod,
          dryRun: group.dryRun,
          outcome: group.outcome,
          reason: group.reason,
          repeats: group.count,
        },
        `${group.message} (${group.count} more like it in the last ${seconds}s)`,
      );
    }
    this.#groups = new Map();
    this.#last = undefined;
  }
}
