// The injector's configuration: parsed once at the edge, defaults filled, every problem named by
// its field (the schema itself is in config-schema.ts), then the cross-field checks that resolving
// a pod without annotations makes.
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { DURATION, SECRET_NAME, checkFormat, detailSuffix, type Format } from './formats.ts';
import { resolveSettings } from './annotations.ts';
import { INJECTOR_CONFIG_SCHEMA, SETTING_META, SETTING_ROWS, type InjectorConfig } from './config-schema.ts';

export { INJECTOR_CONFIG_SCHEMA, type InjectorConfig };

export type ConfigResult = { ok: true; config: InjectorConfig } | { ok: false; errors: string[] };

/** The configuration with every default, as used with no config file. */
export function defaultConfig(): InjectorConfig {
  const result = parseConfig({});
  if (!result.ok) throw new Error(`built-in defaults are invalid: ${result.errors.join('; ')}`);
  return result.config;
}

/** Field path in the dotted form users write in YAML: /sidecar/httpPort → sidecar.httpPort. */
function fieldName(path: string): string {
  return path.replace(/^\//, '').replaceAll('/', '.') || '(top level)';
}

/**
 * Validates a parsed config document (YAML/JSON already decoded; `undefined` or `null` means an
 * empty file), fills defaults, and returns every problem at once, each naming its field.
 */
export function parseConfig(input: unknown): ConfigResult {
  const raw = input === undefined || input === null ? {} : Value.Clone(input);
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      ok: false,
      errors: ['(top level): expected a mapping of sections (sidecar, storage, credentials, injector)'],
    };
  }
  const withDefaults = Value.Default(INJECTOR_CONFIG_SCHEMA, raw);
  const errors: string[] = [];
  for (const error of Value.Errors(INJECTOR_CONFIG_SCHEMA, withDefaults)) {
    const allowed = SETTING_META.get(error.schema as TSchema)?.allowed;
    const unexpected = error.message === 'Unexpected property';
    const got = unexpected ? '' : ` (got ${JSON.stringify(error.value)})`;
    errors.push(
      `${fieldName(error.path)}: ${unexpected ? 'unknown field' : allowed ? `must be ${allowed}` : error.message.toLowerCase()}${got}`,
    );
  }
  if (errors.length > 0) return { ok: false, errors: [...new Set(errors)] };
  const config = withDefaults as InjectorConfig;
  errors.push(...crossFieldErrors(config));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

// What a JSON Schema pattern cannot say (a minimum duration, a length), and conflicts between
// fields, which resolveSettings reports exactly as it does for a pod with no annotations.
function crossFieldErrors(config: InjectorConfig): string[] {
  const errors: string[] = [];
  const checks: [string, Format, string][] = [
    ['storage.pollInterval', DURATION, config.storage.pollInterval],
    ['credentials.secretName', SECRET_NAME, config.credentials.secretName],
  ];
  for (const [field, format, value] of checks) {
    const problem = checkFormat(format, value);
    if (problem) {
      errors.push(
        `${field}: must be ${format.allowed} (got ${JSON.stringify(value)}${detailSuffix(problem)})`,
      );
    }
  }
  if (config.storage.mode === 'cache' && config.storage.cacheEndpoint === '') {
    errors.push('storage.cacheEndpoint: must be the bucket cache URL when storage.mode is "cache" (got "")');
  }
  const resolved = resolveSettings(config);
  if (!resolved.ok) errors.push(...resolved.errors);
  return errors;
}

/**
 * Environment overrides (applied over the config file, before validation), so a Deployment can
 * change a default without editing the ConfigMap: from the settings table (config-schema.ts).
 * Values are strings, converted per field.
 */
export const CONFIG_ENV_OVERRIDES: Readonly<
  Record<string, { path: readonly string[]; type: 'string' | 'integer' | 'boolean' }>
> = Object.fromEntries(
  SETTING_ROWS.flatMap(({ path, meta }) =>
    meta.env ? [[meta.env, { path, type: meta.coerce ?? 'string' }]] : [],
  ),
);

/** Merges environment overrides into a raw config document; unparsable values are left as text so validation names them. */
export function applyEnvOverrides(raw: unknown, env: Record<string, string | undefined>): unknown {
  const base = raw === undefined || raw === null ? {} : Value.Clone(raw);
  if (typeof base !== 'object' || Array.isArray(base)) return base;
  for (const [name, { path, type }] of Object.entries(CONFIG_ENV_OVERRIDES)) {
    const text = env[name];
    if (text === undefined) continue;
    let target: unknown = base;
    for (const key of path.slice(0, -1)) {
      const parent = target as Record<string, unknown>;
      target = parent[key] ??= {};
      if (typeof target !== 'object' || target === null) break;
    }
    // A section that is not a mapping is left for validation to name.
    if (typeof target !== 'object' || target === null) continue;
    let value: unknown = text;
    if (type === 'integer' && /^-?\d+$/.test(text)) value = Number(text);
    if (type === 'boolean' && (text === 'true' || text === 'false')) value = text === 'true';
    (target as Record<string, unknown>)[path.at(-1) as string] = value;
  }
  return base;
}
