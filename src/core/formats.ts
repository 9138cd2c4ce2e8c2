// Value formats shared by the config file schema and the per-pod annotations, so that a value
// accepted in one place is accepted in the other, with the same wording when it is not.
import { MARKER_NAMESPACE_OR_NONE_PATTERN } from '../../common/export-marker.ts';
import { GO_DURATION_PATTERN, parseGoDuration } from '../../common/go-duration.ts';
import { S3_BUCKET_ALLOWED, S3_BUCKET_PATTERN } from '../../common/s3-bucket.ts';

export interface Format {
  /** A regular expression the whole value must match (also used as a JSON Schema `pattern`). */
  readonly pattern: string;
  /** What is allowed, in words, for error messages. */
  readonly allowed: string;
  /** Extra check beyond the pattern; returns an error text or undefined. */
  readonly check?: (value: string) => string | undefined;
  /** Longest valid value: longer ones are refused before the pattern runs over them. */
  readonly maxLength?: number;
}

// Patterns compiled once; formats are checked for every annotation of every admitted pod.
const compiled = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    compiled.set(pattern, re);
  }
  return re;
}

export const DURATION: Format = {
  pattern: GO_DURATION_PATTERN,
  allowed: 'a Go duration of at least 1s, such as 30s, 1m or 1m30s',
  check: (value) => {
    const ms = parseGoDuration(value);
    return ms !== undefined && ms < 1_000 ? 'it is shorter than 1s' : undefined;
  },
};

/** The export marker's namespace key (see common/export-marker.ts), or "" for a /health-only startup probe. */
export const MARKER_NAMESPACE: Format = {
  pattern: MARKER_NAMESPACE_OR_NONE_PATTERN,
  allowed: 'a Flipt namespace key (letters, digits, "-", "_", ","), or "" to start on /health alone',
  maxLength: 253,
};

// Kubernetes resource.Quantity: a non-negative decimal with an optional SI, binary or exponent suffix.
const QUANTITY_SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

export const QUANTITY: Format = {
  pattern: '^(\\d+(\\.\\d*)?|\\.\\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\\d+)?$',
  allowed: 'a Kubernetes quantity such as 100m, 0.5, 64Mi or 1Gi',
};

/** The numeric value of a quantity (cores or bytes), or undefined when it is not one. */
export function parseQuantity(value: string): number | undefined {
  const match = regex(QUANTITY.pattern).exec(value);
  if (!match) return undefined;
  const number = Number(match[1]);
  const suffix = match[3] ?? '';
  if (/^[eE]/.test(suffix)) return number * 10 ** Number(suffix.slice(1));
  return number * (QUANTITY_SUFFIX[suffix] as number);
}

export const PORT: Format = {
  pattern: '^\\d{1,5}$',
  allowed: 'a port number from 1 to 65535',
  check: (value) => (Number(value) < 1 || Number(value) > 65535 ? 'it is out of range' : undefined),
};

export const BOOLEAN: Format = { pattern: '^(true|false)$', allowed: '"true" or "false"' };

// S3 bucket naming rules (general purpose buckets).
export const BUCKET: Format = { pattern: S3_BUCKET_PATTERN, allowed: S3_BUCKET_ALLOWED };

export const PREFIX: Format = {
  pattern: '^[^\\s/][^\\s]{0,511}$|^$',
  allowed: 'an S3 key prefix without spaces that does not start with "/", such as "flags/" (empty for none)',
};

export const REGION: Format = {
  pattern: '^[a-z0-9-]{2,32}$',
  allowed: 'an AWS region name such as us-east-1',
};

export const ENDPOINT: Format = {
  pattern: '^https?://[^\\s/?#]+/?$|^$',
  allowed:
    'an http:// or https:// URL of an S3-compatible server without a path, such as http://minio:9000 (empty for AWS S3)',
};

// A Kubernetes Secret name is a DNS subdomain; empty means "no Secret" (ambient AWS credentials).
export const SECRET_NAME: Format = {
  pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$',
  allowed:
    'a Secret name (lowercase DNS subdomain, at most 253 characters), or "" to use the ambient AWS credential chain (IRSA, workload identity)',
  maxLength: 253,
};

export const SECRET_KEY: Format = {
  pattern: '^[-._a-zA-Z0-9]{1,253}$',
  allowed: 'a Secret data key (letters, digits, "-", "_" or ".")',
};

// An OCI image reference: [registry[:port]/]path[:tag][@digest]. Loose on purpose: the kubelet is
// the authority, we only refuse what can never be valid (spaces, upper case paths, empty).
export const IMAGE: Format = {
  pattern:
    '^([a-zA-Z0-9.-]+(:\\d+)?/)?[a-z0-9]+([._-]{1,2}[a-z0-9]+)*(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*(:[\\w][\\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$',
  allowed: 'an image reference such as docker.flipt.io/flipt/flipt:v1.61.1',
  // A reference's name is at most 255 characters, its tag 128 and a digest 71; this leaves room.
  maxLength: 1024,
};

/** Checks a value against a format: undefined when valid; else a detail ('' when it simply has the wrong form). */
export function checkFormat(format: Format, value: string): { detail: string } | undefined {
  if (format.maxLength !== undefined && value.length > format.maxLength)
    return { detail: `it is longer than ${format.maxLength} characters` };
  if (!regex(format.pattern).test(value)) return { detail: '' };
  const detail = format.check?.(value);
  return detail === undefined ? undefined : { detail };
}

/** " (detail)" or nothing, for messages. */
export function detailSuffix(problem: { detail: string }): string {
  return problem.detail ? ` (${problem.detail})` : '';
}
