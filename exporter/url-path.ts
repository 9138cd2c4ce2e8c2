// Path segments built from keys the master hands out. encodeURIComponent leaves `.` alone, and a
// segment that is `.` or `..` is a dot segment: URL parsers (WHATWG's, Go's path cleaning, proxies)
// remove it, so a flag listed as `..` would turn `/flags/../rules` into `/rules`, another endpoint.
// Such a segment is written with its dots percent-encoded, which no parser collapses; `%2e%2e`
// itself arrives as `%252e%252e` because `%` is encoded.

/** One path segment, percent-encoded so that it can never act as a dot segment or a separator. */
export function pathSegment(value: string): string {
  if (value === '.' || value === '..') return value.replaceAll('.', '%2E');
  return encodeURIComponent(value);
}
