// The golden cases shared by the CLI and webhook tests (and the e2e suite): test/golden/NAME.yaml is
// the input, NAME.injected.yaml the expected `flipt-injector inject` output, or NAME.error.txt the
// expected rejection. A first-line comment `# args: ...` gives CLI flags (--namespace-enabled,
// --config FILE relative to test/golden/configs). UPDATE_GOLDEN=1 rewrites the expectations.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const GOLDEN_DIR = resolve(import.meta.dirname, '..', 'golden');
export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';
// CI compares, never rewrites (.ci/run exports CI=true): a rewrite there would make every golden test pass.
if (UPDATE_GOLDEN && process.env.CI)
  throw new Error('UPDATE_GOLDEN=1 is refused under CI: golden files are compared there, never rewritten');

export interface GoldenCase {
  name: string;
  inputFile: string;
  input: string;
  /** CLI arguments after `inject -f FILE`. */
  args: string[];
  namespaceEnabled: boolean;
  configFile: string | undefined;
  expectedFile: string;
  kind: 'injected' | 'error';
}

function parseArgsLine(input: string): string[] {
  for (const line of input.split('\n')) {
    if (!line.startsWith('#')) break;
    const match = /^#\s*args:\s*(.*)$/.exec(line);
    if (match) return (match[1] ?? '').trim().split(/\s+/).filter(Boolean);
  }
  return [];
}

export function goldenCases(): GoldenCase[] {
  const inputs = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'));
  return inputs.sort().map((file) => {
    const name = file.replace(/\.yaml$/, '');
    const input = readFileSync(join(GOLDEN_DIR, file), 'utf8');
    const raw = parseArgsLine(input);
    const args: string[] = [];
    let configFile: string | undefined;
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === '--config') {
        configFile = join(GOLDEN_DIR, 'configs', raw[++i] ?? '');
        args.push('--config', configFile);
      } else args.push(raw[i] as string);
    }
    const errorFile = join(GOLDEN_DIR, `${name}.error.txt`);
    const kind = name.startsWith('reject-') ? 'error' : 'injected';
    return {
      name,
      inputFile: join(GOLDEN_DIR, file),
      input,
      args,
      namespaceEnabled: args.includes('--namespace-enabled'),
      configFile,
      expectedFile: kind === 'error' ? errorFile : join(GOLDEN_DIR, `${name}.injected.yaml`),
      kind,
    };
  });
}

/** Expected files with no input beside them: a renamed or deleted case left its golden file behind. */
export function orphanedGoldenFiles(): string[] {
  const names = new Set(goldenCases().map((c) => c.name));
  return readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.injected.yaml') || f.endsWith('.error.txt'))
    .filter((f) => !names.has(f.replace(/\.(injected\.yaml|error\.txt)$/, '')));
}

/** The expected text, or (with UPDATE_GOLDEN=1) writes `actual` as the new expectation and returns it. */
export function expected(goldenCase: GoldenCase, actual: string): string | undefined {
  if (UPDATE_GOLDEN) {
    writeFileSync(goldenCase.expectedFile, actual);
    return actual;
  }
  return existsSync(goldenCase.expectedFile) ? readFileSync(goldenCase.expectedFile, 'utf8') : undefined;
}
