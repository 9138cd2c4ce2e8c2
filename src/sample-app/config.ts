// The sample app's settings, from environment variables, validated once at start-up: every problem
// at once, each naming its variable. Pure: the environment is passed in.

export interface SampleAppConfig {
  host: string;
  port: number;
  /** The injected sidecar, on localhost. */
  sidecarUrl: string;
  /** flipt-master, across the network. */
  masterUrl: string;
  namespace: string;
  flags: string[];
  /** Per request to either Flipt. */
  timeoutMs: number;
}

export type SampleAppConfigResult = { ok: true; config: SampleAppConfig } | { ok: false; errors: string[] };

export const DEMO_FLAGS = ['color-theme', 'recommendation-engine', 'new-checkout', 'maintenance-banner'];
/** Bounds one page's work: each flag is one evaluation on each side. */
export const MAX_FLAGS = 50;
const KEY = /^[-_a-zA-Z0-9]{1,100}$/;

export const ENV = {
  host: 'SAMPLE_APP_HOST',
  port: 'SAMPLE_APP_PORT',
  sidecarUrl: 'SAMPLE_APP_SIDECAR_URL',
  masterUrl: 'SAMPLE_APP_MASTER_URL',
  namespace: 'SAMPLE_APP_NAMESPACE',
  flags: 'SAMPLE_APP_FLAGS',
  timeoutMs: 'SAMPLE_APP_TIMEOUT_MS',
} as const;

function baseUrl(name: string, value: string, errors: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    errors.push(
      `${name}: must be an http(s) URL such as http://127.0.0.1:8080 (got ${JSON.stringify(value)})`,
    );
    return value;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username) {
    errors.push(
      `${name}: must be an http(s) base URL without query, fragment or credentials (got ${JSON.stringify(value)})`,
    );
  }
  return value.replace(/\/+$/, '');
}

function integer(name: string, value: string, min: number, max: number, errors: string[]): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    errors.push(`${name}: must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return n;
}

export function parseSampleAppConfig(env: Record<string, string | undefined>): SampleAppConfigResult {
  const errors: string[] = [];
  const get = (name: string, fallback: string) => {
    const value = env[name];
    return value === undefined || value === '' ? fallback : value.trim();
  };
  // 0 picks a free port (tests).
  const port = integer(ENV.port, get(ENV.port, '3000'), 0, 65535, errors);
  const sidecarUrl = baseUrl(ENV.sidecarUrl, get(ENV.sidecarUrl, 'http://127.0.0.1:8080'), errors);
  const masterUrl = baseUrl(
    ENV.masterUrl,
    get(ENV.masterUrl, 'http://flipt-master.default.svc.cluster.local:8080'),
    errors,
  );
  const namespace = get(ENV.namespace, 'default');
  if (!KEY.test(namespace))
    errors.push(`${ENV.namespace}: must be a Flipt namespace key (got ${JSON.stringify(namespace)})`);
  const flags = get(ENV.flags, DEMO_FLAGS.join(','))
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  if (flags.length === 0 || flags.length > MAX_FLAGS) {
    errors.push(`${ENV.flags}: must list 1 to ${MAX_FLAGS} flag keys, comma-separated (got ${flags.length})`);
  }
  const badFlags = flags.filter((f) => !KEY.test(f));
  if (badFlags.length > 0)
    errors.push(`${ENV.flags}: not flag keys: ${badFlags.map((f) => JSON.stringify(f)).join(', ')}`);
  const timeoutMs = integer(ENV.timeoutMs, get(ENV.timeoutMs, '2000'), 50, 60_000, errors);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    config: {
      host: get(ENV.host, '0.0.0.0'),
      port,
      sidecarUrl,
      masterUrl,
      namespace,
      flags: [...new Set(flags)],
      timeoutMs,
    },
  };
}
