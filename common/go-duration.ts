// Go's time.ParseDuration grammar (without a sign), shared by every program's options: Flipt reads
// the sidecar's poll interval with it, so the injector must accept exactly what Flipt accepts, and
// the exporter's and the cache's flags then read the same way.

/** JSON Schema / RegExp source of a Go duration such as "1m30s" or "500ms". */
export const GO_DURATION_PATTERN = '^(\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h))+$';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};
const WHOLE = new RegExp(GO_DURATION_PATTERN, 'u');
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gu;

/** Milliseconds of a Go duration string, or undefined when it is not one. */
export function parseGoDuration(value: string): number | undefined {
  if (!WHOLE.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(PART))
    total += Number(amount) * (UNIT_MS[unit as string] as number);
  return total;
}
