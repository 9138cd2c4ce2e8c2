// What the watch loop reports on /healthz: the result of the last export, and how many failed in a row.
import type { ExportOutcome } from './export.ts';

/** What /healthz reports: the result of the last export. */
export interface HealthState {
  status: 'starting' | 'ok' | 'failing';
  lastResult?: 'uploaded' | 'unchanged' | 'failed';
  lastSuccessAt?: string;
  lastError?: string;
  consecutiveFailures: number;
}

export class HealthTracker {
  #state: HealthState = { status: 'starting', consecutiveFailures: 0 };

  record(outcome: ExportOutcome, at: Date): void {
    if (outcome.status === 'failed') {
      this.#state = {
        ...this.#state,
        status: 'failing',
        lastResult: 'failed',
        lastError: outcome.message,
        consecutiveFailures: this.#state.consecutiveFailures + 1,
      };
      return;
    }
    this.#state = {
      status: 'ok',
      lastResult: outcome.status,
      lastSuccessAt: at.toISOString(),
      consecutiveFailures: 0,
    };
  }

  get state(): HealthState {
    return this.#state;
  }
}
