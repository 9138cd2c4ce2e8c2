// What self-managed TLS needs from the API server, as interfaces (src/tls/kube.ts implements them
// with @kubernetes/client-node; the unit tests with an in-memory stand-in), and the errors.

/** Another replica wrote first (HTTP 409): re-read and decide again. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

export interface RawSecret {
  resourceVersion: string;
  /** Decoded values (PEM text). */
  data: Record<string, string>;
  annotations: Record<string, string>;
}

export interface SecretStore {
  /** The Secret, or undefined when it does not exist. */
  read(): Promise<RawSecret | undefined>;
  /** Creates it; ConflictError when it exists. */
  create(content: { data: Record<string, string>; annotations: Record<string, string> }): Promise<void>;
  /** Replaces it if still at `resourceVersion`; ConflictError otherwise. */
  update(
    resourceVersion: string,
    content: { data: Record<string, string>; annotations: Record<string, string> },
  ): Promise<void>;
}

export interface WebhookBundles {
  resourceVersion: string;
  /** Each entry's name and decoded caBundle (PEM text, "" when unset). */
  entries: { name: string; caBundle: string }[];
}

export interface WebhookTarget {
  /** The configuration, or undefined when it does not exist (yet). */
  read(): Promise<WebhookBundles | undefined>;
  /** Sets every entry's caBundle if still at `resourceVersion`; ConflictError otherwise. */
  patchBundle(current: WebhookBundles, bundlePem: string): Promise<void>;
}

/** A short description of a failed API call: status code and the API server's message. */
export function describeApiError(err: unknown): string {
  // Duck-typed (client-node's ApiException has code and body) so that this module, loaded in every
  // mode, does not load client-node (about 85 MiB of RSS) where nothing calls the API server.
  const api = err as { code?: unknown; body?: unknown };
  if (err instanceof Error && typeof api.code === 'number' && 'body' in err) {
    const code = api.code;
    const body = api.body;
    let message = typeof body === 'string' ? body : '';
    try {
      const parsed = JSON.parse(message) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // not JSON: keep the text
    }
    return `HTTP ${code}${message ? `: ${message.slice(0, 300)}` : ''}`;
  }
  if (err instanceof Error) {
    // fetch's own message ("fetch failed") says nothing; the cause says what (ECONNREFUSED, TLS).
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
