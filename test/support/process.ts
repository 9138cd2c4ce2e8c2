// Starting and stopping the real servers the tests talk to (etcd, kube-apiserver, MinIO, our own
// binaries): free loopback ports, readiness polling, log capture, and cleanup that also runs when
// a test fails or the run is interrupted.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const repoRoot = resolve(import.meta.dirname, '..', '..');

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

/** Polls `probe` until it returns true or `timeoutMs` passes; probe errors count as "not yet". */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  {
    timeoutMs = 60_000,
    intervalMs = 200,
    signal,
  }: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && !signal?.aborted) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Set FLIPT_E2E_KEEP=1 to keep the servers' temporary directories (data, logs) for debugging. */
/** The subset of a tap Test that the `use*` helpers need: teardown, and whether it passed (to keep logs). */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
  passing(): boolean;
}

export const KEEP_ENV_VAR = 'FLIPT_E2E_KEEP';

export function keepRequested(): boolean {
  const value = process.env[KEEP_ENV_VAR];
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

// Servers' directories not yet released: removed (or reported, when kept) if the process exits
// without stopping the server (a test crash or Ctrl-C); the processes themselves are killed below.
const liveDirs = new Map<string, boolean>();
let dirExitHookInstalled = false;

/** Tracks a server's directory until `releaseDir`; `keep` decides whether an exit removes it. */
export function trackDir(dir: string, keep = keepRequested()): void {
  if (!dirExitHookInstalled) {
    dirExitHookInstalled = true;
    process.on('exit', () => {
      for (const [path, kept] of liveDirs) {
        if (kept) console.error(`e2e: kept ${path}`);
        else rmSync(path, { recursive: true, force: true });
      }
    });
  }
  liveDirs.set(dir, keep);
}

/** Stops tracking a directory (its owner removes or keeps it). */
export function releaseDir(dir: string): void {
  liveDirs.delete(dir);
}

/** The directory build.sh puts the end-to-end server binaries in. */
export function serverBinDir(): string {
  return execFileSync(join(repoRoot, 'test/e2e/servers/build.sh'), ['--print-dir'], {
    encoding: 'utf8',
  }).trim();
}

/**
 * The path of a server binary built by test/e2e/servers/build.sh. Missing binaries are an error
 * with the command that builds them, never a silent skip.
 */
export function serverBinary(name: string): string {
  const path = join(serverBinDir(), name);
  if (!existsSync(path)) {
    throw new Error(`${name} is not built: run test/e2e/servers/build.sh ${name} (needs Go >= 1.26)`);
  }
  return path;
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** The last lines the process wrote (stdout and stderr), for error messages. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ManagedProcess>();
let exitHookInstalled = false;

// A test that throws, or a run interrupted with Ctrl-C, must not leave servers behind.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const p of running) p.child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout and stderr go. */
  logFile: string;
  /** Resolves true once the process serves. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

/** Spawns a server, waits until `ready` answers true, and fails with its log tail otherwise. */
export async function startProcess(options: StartOptions): Promise<ManagedProcess> {
  installExitHook();
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => {
    exitInfo = `exited with code ${code ?? 'null'} signal ${signal ?? 'null'}`;
  });
  child.once('error', (err) => {
    exitInfo = `failed to start: ${err.message}`;
  });

  const managed: ManagedProcess = {
    name: options.name,
    child,
    logFile: options.logFile,
    tail(lines = 30) {
      try {
        return readFileSync(options.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    async stop(graceMs = 5_000) {
      running.delete(managed);
      if (child.exitCode === null && child.signalCode === null && exitInfo === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((done) => log.end(done));
    },
  };
  running.add(managed);

  // Exiting before ready is a failure at once, not after the whole readiness timeout.
  const died = new Promise<never>((_, reject) => {
    const fail = () => reject(new Error(`${options.name} ${exitInfo ?? 'exited'} before becoming ready`));
    child.once('exit', fail);
    child.once('error', fail);
  });
  died.catch(() => undefined);
  const stopPolling = new AbortController();
  try {
    await Promise.race([
      waitFor(`${options.name} to become ready`, options.ready, {
        timeoutMs: options.readyTimeoutMs ?? 60_000,
        signal: stopPolling.signal,
      }),
      died,
    ]);
  } catch (err) {
    await managed.stop(1_000);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${message}\n--- last lines of ${options.logFile} ---\n${managed.tail()}`, {
      cause: err,
    });
  } finally {
    stopPolling.abort();
  }
  return managed;
}
