// Loading the injector's configuration at the edge: the YAML file (mounted from a ConfigMap), then
// environment overrides, validated once. Anything invalid stops start-up naming the field.
import { readFile } from 'node:fs/promises';
import { applyEnvOverrides, defaultConfig, parseConfig, type InjectorConfig } from './core/config.ts';

export class ConfigError extends Error {
  readonly errors: string[];
  constructor(source: string, errors: string[]) {
    super(`invalid configuration (${source}):\n  - ${errors.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.errors = errors;
  }
}

/** The config from `file` (optional) and `env`; throws ConfigError listing every problem. */
export async function loadConfig(
  file: string | undefined,
  env: Record<string, string | undefined> = process.env,
): Promise<InjectorConfig> {
  let raw: unknown = {};
  const source = file ?? 'built-in defaults';
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
    }
    const { parse } = await import('yaml');
    try {
      raw = parse(text);
    } catch (err) {
      throw new ConfigError(file, [`not valid YAML: ${(err as Error).message}`]);
    }
  }
  const result = parseConfig(applyEnvOverrides(raw, env));
  if (!result.ok) throw new ConfigError(`${source} with environment overrides`, result.errors);
  return result.config;
}

export { defaultConfig };
