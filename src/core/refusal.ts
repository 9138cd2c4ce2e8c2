// The one wording of a refusal.
import { capMessage } from './bounded.ts';

/** The one wording of a refusal, used by the webhook's denial and the CLI's error output alike. */
export function rejectionMessage(subject: string, errors: string[]): string {
  return capMessage(`flipt-sidecar-injector refused ${subject}: ${errors.join('; ')}`);
}
