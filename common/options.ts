// Option values the long-running programs share (exporter, bucket cache): sizes with binary units
// and listen addresses, parsed the same way wherever a flag or an environment variable gives them.

export interface ListenAddress {
  host: string;
  port: number;
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A size such as 1048576, 512KiB, 64MiB or 1GiB in bytes, or undefined. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/.exec(text.trim());
  if (!m) return undefined;
  const bytes = Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] as number);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:(\[[^\]]+\]|[^:]*):)?(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}
