// The export marker: a namespace without flags that the exporter writes at the end of every object
// it uploads. Flipt v1.61.1 always has a `default` namespace and answers /health as soon as its
// first read of the bucket succeeds, even when the bucket holds nothing, so neither can tell a
// sidecar with flag state from one without. The marker can: the injected startup probe asks for
// it, so a sidecar on an empty bucket (or one written by something else) fails its startup probe
// instead of serving 404 for every flag.

/** The marker namespace's key unless configured otherwise (exporter and injector must agree). */
export const DEFAULT_MARKER_NAMESPACE = 'flipt-export';

/** What Flipt's namespace keys allow (core/validation/flipt.cue), so the marker is a valid key. */
const KEY_CHARACTERS = '[-_,A-Za-z0-9]';
export const MARKER_NAMESPACE_PATTERN = `^${KEY_CHARACTERS}+$`;
/** The same, or "" (no marker: the startup probe asks for /health). */
export const MARKER_NAMESPACE_OR_NONE_PATTERN = `^${KEY_CHARACTERS}*$`;

/** The sidecar's REST path that answers 200 only once the marker namespace is loaded. */
export function markerProbePath(namespace: string): string {
  return `/api/v1/namespaces/${namespace}`;
}
