// Real Flipt v1.61.1 processes for the end-to-end suites (binary built by test/e2e/servers/build.sh):
//
// - a master: database storage (SQLite in a temporary directory), on free loopback ports;
// - a sidecar run exactly as injected: its environment is the `flipt-sidecar` container's env from
//   the injector's real output (`injectPod` on a labelled pod), with the Secret references resolved
//   to the test's MinIO credentials and only these rewritten for this machine:
//     FLIPT_STORAGE_OBJECT_S3_ENDPOINT → the loopback MinIO (or a proxy in front of it);
//     FLIPT_SERVER_HTTP_PORT / FLIPT_SERVER_GRPC_PORT → free loopback ports, plus
//     FLIPT_SERVER_HOST=127.0.0.1 (added: the tests listen on loopback only; Flipt's default is 0.0.0.0);
//     every value naming the emptyDir's mount path (/var/run/flipt: FLIPT_META_STATE_DIRECTORY, TMPDIR)
//     → a temporary directory owned by the injected uid/gid, the only writable path.
//   It runs with the injected securityContext's runAsUser/runAsGroup (100/1000) through `setpriv`
//   (no supplementary groups, no capabilities, no_new_privs), in a private mount namespace
//   (`unshare --mount`) in which every mount is read-only except the state directory (what
//   readOnlyRootFilesystem + an emptyDir give a pod), with a root-owned 0555 HOME and cwd. If that
//   configuration cannot start a working Flipt, starting the sidecar fails: nothing is skipped.
//
// FLIPT_E2E_KEEP=1 keeps the directories (SQLite database, logs) after the run.
import { spawn } from 'node:child_process';
import { chmod, chown, copyFile, link, mkdir } from 'node:fs/promises';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import fastJsonPatch from 'fast-json-patch';
import { parseConfig } from '../../../src/core/config.ts';
import { injectPod } from '../../../src/core/inject.ts';
import type { Container, Pod } from '../../../src/core/k8s.ts';
import { SIDECAR_NAME } from '../../../src/core/sidecar.ts';
import {
  freePort,
  keepRequested,
  releaseDir,
  serverBinary,
  startProcess,
  tempDir,
  trackDir,
  waitFor,
  type ManagedProcess,
  type TeardownHost,
} from '../../support/process.ts';

/** A port taken between choosing it and Flipt binding it: try again on fresh ports. */
const BIND_ERROR = /address already in use|bind:/i;

async function answers200(url: string): Promise<boolean> {
  const answer = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await answer.body?.cancel();
  return answer.status === 200;
}

// ---------------------------------------------------------------------------------------------
// The master

export interface FliptMaster {
  /** http://127.0.0.1:PORT: REST API, evaluation API, /health. */
  url: string;
  grpcPort: number;
  /** Temporary directory: flipt.db, state/, flipt.log. */
  dir: string;
  /** Stops the process; database and ports stay for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same database and ports. */
  start(): Promise<void>;
  readonly running: boolean;
  /** Last lines of its log. */
  tail(lines?: number): string;
  /** Stops it and removes its directory (unless kept). */
  dispose(options?: { keep?: boolean }): Promise<void>;
}

export interface FliptMasterOptions {
  /** Flipt's log level (default warn: at info it logs every evaluation). */
  logLevel?: string;
  /** Require authentication, with this static token (Flipt's token method, bootstrap token). */
  token?: string;
}

export async function startFliptMaster(opts: FliptMasterOptions = {}): Promise<FliptMaster> {
  const binary = serverBinary('flipt');
  const tmp = await tempDir('flipt-e2e-master');
  trackDir(tmp.path);
  const stateDir = join(tmp.path, 'state');
  await mkdir(stateDir);
  let httpPort = 0;
  let grpcPort = 0;
  let proc: ManagedProcess | undefined;

  const launch = () =>
    startProcess({
      name: 'flipt-master',
      command: binary,
      args: [],
      cwd: tmp.path,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        // No ~/.config/flipt/config.yml of the machine's user: defaults plus these variables only.
        HOME: tmp.path,
        FLIPT_DB_URL: `file:${join(tmp.path, 'flipt.db')}`,
        FLIPT_SERVER_HOST: '127.0.0.1',
        FLIPT_SERVER_HTTP_PORT: String(httpPort),
        FLIPT_SERVER_GRPC_PORT: String(grpcPort),
        // At info Flipt logs every evaluation: thousands of lines per suite.
        FLIPT_LOG_LEVEL: opts.logLevel ?? 'warn',
        FLIPT_LOG_ENCODING: 'json',
        FLIPT_META_TELEMETRY_ENABLED: 'false',
        FLIPT_META_CHECK_FOR_UPDATES: 'false',
        FLIPT_META_STATE_DIRECTORY: stateDir,
        ...(opts.token === undefined
          ? {}
          : {
              FLIPT_AUTHENTICATION_REQUIRED: 'true',
              FLIPT_AUTHENTICATION_METHODS_TOKEN_ENABLED: 'true',
              FLIPT_AUTHENTICATION_METHODS_TOKEN_BOOTSTRAP_TOKEN: opts.token,
            }),
      },
      logFile: join(tmp.path, 'flipt.log'),
      ready: () => answers200(`http://127.0.0.1:${httpPort}/health`),
      readyTimeoutMs: 60_000,
    });

  for (let attempt = 1; ; attempt++) {
    httpPort = await freePort();
    do grpcPort = await freePort();
    while (grpcPort === httpPort);
    try {
      proc = await launch();
      break;
    } catch (err) {
      if (attempt >= 3 || !BIND_ERROR.test(err instanceof Error ? err.message : String(err))) {
        trackDir(tmp.path, true);
        throw err;
      }
    }
  }

  const master: FliptMaster = {
    url: `http://127.0.0.1:${httpPort}`,
    grpcPort,
    dir: tmp.path,
    async stop() {
      await proc?.stop(10_000);
      proc = undefined;
    },
    async start() {
      if (!proc) proc = await launch();
    },
    get running() {
      return proc !== undefined;
    },
    tail(lines) {
      return proc?.tail(lines) ?? '';
    },
    async dispose({ keep = false } = {}) {
      await master.stop();
      releaseDir(tmp.path);
      if (keep || keepRequested()) console.error(`e2e: kept Flipt master directory ${tmp.path}`);
      else await tmp.remove();
    },
  };
  return master;
}

/** A master for a tap test, disposed of in teardown (its directory kept when the test failed). */
export async function useFliptMaster(t: TeardownHost, opts?: FliptMasterOptions): Promise<FliptMaster> {
  const master = await startFliptMaster(opts);
  t.teardown(() => master.dispose({ keep: !t.passing() }));
  return master;
}

// ---------------------------------------------------------------------------------------------
// The sidecar, as injected

export interface InjectedSidecarOptions {
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** flipt.io/* annotations on the pod (e.g. flipt.io/poll-interval). */
  annotations?: Record<string, string>;
  /** The injector's configuration file content (defaults when omitted). */
  config?: unknown;
}

export interface InjectedSidecar {
  /** The flipt-sidecar container from the injector's patch, untouched. */
  container: Container;
  /** Its env with every Secret reference resolved; nothing else changed. */
  env: Record<string, string>;
  /** The emptyDir's mount path (the only writable path in the container). */
  stateDir: string;
  runAsUser: number;
  runAsGroup: number;
  /** The injected startup probe's HTTP path (the export marker namespace, or /health). */
  startupPath: string;
}

/**
 * Runs the injector's real core on a pod labelled flipt.io/inject=true (bucket given as the
 * flipt.io/bucket annotation unless the annotations name one) and returns the flipt-sidecar
 * container with its env resolved: `valueFrom.secretKeyRef` → the given credentials, by the
 * config's key names. Any other `valueFrom` is an error (this harness cannot resolve it).
 */
export function injectedSidecar(opts: InjectedSidecarOptions): InjectedSidecar {
  const parsed = parseConfig(opts.config ?? {});
  if (!parsed.ok) throw new Error(`invalid injector config: ${parsed.errors.join('; ')}`);
  const { config } = parsed;
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'e2e-app',
      namespace: 'e2e',
      labels: { 'flipt.io/inject': 'true' },
      annotations: { 'flipt.io/bucket': opts.bucket, ...opts.annotations },
    },
    spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
  };
  const result = injectPod(pod, { config, namespace: 'e2e', namespaceEnabled: false });
  if (result.outcome !== 'injected') {
    const detail = result.outcome === 'rejected' ? result.errors.join('; ') : result.decision.message;
    throw new Error(`the injector did not inject the pod (${result.outcome}): ${detail}`);
  }
  const { newDocument } = fastJsonPatch.applyPatch(structuredClone(pod), result.patch, true, false);
  const spec = newDocument.spec as { initContainers?: Container[]; containers?: Container[] };
  const container = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find(
    (c) => c.name === SIDECAR_NAME,
  );
  if (!container) throw new Error(`the injected pod has no ${SIDECAR_NAME} container`);

  const secretData: Record<string, string> = {
    [config.credentials.accessKeyIdKey]: opts.accessKeyId,
    [config.credentials.secretAccessKeyKey]: opts.secretAccessKey,
  };
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env[variable.name] = variable.value;
      continue;
    }
    const ref = variable.valueFrom?.secretKeyRef;
    const value = ref && ref.name === config.credentials.secretName ? secretData[ref.key] : undefined;
    if (value === undefined) {
      throw new Error(`cannot resolve env ${variable.name}: ${JSON.stringify(variable.valueFrom)}`);
    }
    env[variable.name] = value;
  }
  const mount = container.volumeMounts?.[0];
  if (!mount || container.volumeMounts?.length !== 1) {
    throw new Error(
      `expected one volume mount (the emptyDir), got ${JSON.stringify(container.volumeMounts)}`,
    );
  }
  const security = container.securityContext ?? {};
  const { runAsUser, runAsGroup } = security as { runAsUser?: unknown; runAsGroup?: unknown };
  if (typeof runAsUser !== 'number' || typeof runAsGroup !== 'number' || runAsUser === 0) {
    throw new Error(
      `the injected securityContext has no non-root numeric uid/gid: ${JSON.stringify(security)}`,
    );
  }
  if (security['readOnlyRootFilesystem'] !== true) {
    throw new Error(
      'the injected securityContext no longer sets readOnlyRootFilesystem: update this harness',
    );
  }
  const startupPath = container.startupProbe?.httpGet?.path;
  if (typeof startupPath !== 'string') {
    throw new Error(
      `the injected container has no HTTP startup probe: ${JSON.stringify(container.startupProbe)}`,
    );
  }
  return { container, env, stateDir: mount.mountPath, runAsUser, runAsGroup, startupPath };
}

/** The env the injector's real output puts in the flipt-sidecar container, Secrets resolved. */
export function injectedSidecarEnv(opts: InjectedSidecarOptions): Record<string, string> {
  return injectedSidecar(opts).env;
}

/**
 * The injected env for this machine: only the S3 endpoint, the ports (and their host, loopback)
 * and the state directory's path change. Pure, so tests can assert what changed.
 */
export function loopbackSidecarEnv(
  injected: Record<string, string>,
  where: { s3Endpoint: string; httpPort: number; grpcPort: number; stateDir: string; mountPath: string },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(injected)) {
    env[name] =
      value === where.mountPath || value.startsWith(`${where.mountPath}/`)
        ? where.stateDir + value.slice(where.mountPath.length)
        : value;
  }
  if (env['FLIPT_STORAGE_OBJECT_S3_ENDPOINT'] === undefined) {
    throw new Error(
      'the injected env has no FLIPT_STORAGE_OBJECT_S3_ENDPOINT to point at the loopback store',
    );
  }
  for (const name of ['FLIPT_SERVER_HTTP_PORT', 'FLIPT_SERVER_GRPC_PORT']) {
    if (env[name] === undefined) throw new Error(`the injected env has no ${name}`);
  }
  env['FLIPT_STORAGE_OBJECT_S3_ENDPOINT'] = where.s3Endpoint;
  env['FLIPT_SERVER_HTTP_PORT'] = String(where.httpPort);
  env['FLIPT_SERVER_GRPC_PORT'] = String(where.grpcPort);
  env['FLIPT_SERVER_HOST'] = '127.0.0.1';
  return env;
}

// uid 100 cannot traverse root's 0700 home, where the binary cache lives: a 0755 directory holds a
// hard link to the binary (or a copy across filesystems), shared by every sidecar of this process.
let sidecarBinary: Promise<string> | undefined;

async function binaryForSidecar(): Promise<string> {
  sidecarBinary ??= (async () => {
    // The cache entry is a relative symlink: link the file it names, not the link.
    const source = realpathSync(serverBinary('flipt'));
    const dir = await tempDir('flipt-e2e-sidecar-bin');
    trackDir(dir.path, false);
    await chmod(dir.path, 0o755);
    const target = join(dir.path, 'flipt');
    try {
      await link(source, target);
    } catch {
      await copyFile(source, target);
    }
    await chmod(target, 0o755);
    return target;
  })();
  return sidecarBinary;
}

// Inside the new mount namespace only (unshare runs the script after unshare(CLONE_NEWNS) succeeded;
// mounts are private, so nothing propagates to the machine): the state directory becomes its own
// mount, then every other mount is remounted read-only, then Flipt runs as the injected uid/gid.
const SANDBOX_SCRIPT = `
set -eu
mount --make-rprivate /
mount --bind "$STATE" "$STATE"
awk '{ print $5 }' /proc/self/mountinfo | while read -r m; do
  [ "$m" = "$STATE" ] && continue
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
cd "$WORKDIR"
exec setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- env -i "$@"
`;

export interface Sidecar {
  /** http://127.0.0.1:PORT */
  url: string;
  grpcPort: number;
  /** The environment Flipt runs with (injected, with the loopback rewrites). */
  env: Record<string, string>;
  /** The injected env before the rewrites (Secrets resolved). */
  injectedEnv: Record<string, string>;
  /** The injected startup probe's HTTP path. */
  startupPath: string;
  /** Everything Flipt has logged so far. */
  logs(): string;
  stop(): Promise<void>;
  /** Exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** The Flipt process (unshare, sh and setpriv exec into it: one pid). */
  pid: number;
  readonly dir: string;
}

export interface StartSidecarOptions extends InjectedSidecarOptions {
  s3Endpoint: string;
  /**
   * Wait for the injected startup probe's path to answer 200, as the kubelet does (default true); a
   * process that exits first fails the start.
   */
  waitHealthy?: boolean;
  readyTimeoutMs?: number;
}

export async function startInjectedSidecar(opts: StartSidecarOptions): Promise<Sidecar> {
  const injected = injectedSidecar(opts);
  const binary = await binaryForSidecar();
  const tmp = await tempDir('flipt-e2e-sidecar');
  trackDir(tmp.path);
  await chmod(tmp.path, 0o755);
  // The emptyDir: owned by the pod's uid/gid, nothing else writable.
  const stateDir = join(tmp.path, 'state');
  await mkdir(stateDir, { mode: 0o770 });
  await chown(stateDir, injected.runAsUser, injected.runAsGroup);
  // HOME and cwd: read-only for the sidecar (root-owned, 0555).
  const home = join(tmp.path, 'home');
  await mkdir(home);
  await chmod(home, 0o555);
  const logFile = join(tmp.path, 'flipt.log');

  let httpPort = 0;
  let grpcPort = 0;
  let env: Record<string, string> = {};
  let proc: ManagedProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  const launch = async () => {
    env = loopbackSidecarEnv(injected.env, {
      s3Endpoint: opts.s3Endpoint,
      httpPort,
      grpcPort,
      stateDir,
      mountPath: injected.stateDir,
    });
    const url = `http://127.0.0.1:${httpPort}`;
    const fullEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, ...env };
    proc = await startProcess({
      name: 'flipt-sidecar',
      command: 'unshare',
      args: [
        '--mount',
        '--propagation',
        'private',
        '--',
        '/bin/sh',
        '-c',
        SANDBOX_SCRIPT,
        'sandbox',
        ...Object.entries(fullEnv).map(([k, v]) => `${k}=${v}`),
        binary,
      ],
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        STATE: stateDir,
        WORKDIR: home,
        RUN_UID: String(injected.runAsUser),
        RUN_GID: String(injected.runAsGroup),
      },
      logFile,
      ready:
        opts.waitHealthy === false ? async () => true : () => answers200(`${url}${injected.startupPath}`),
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
    });
    const child = proc.child;
    exited = new Promise((resolveExit) => {
      if (child.exitCode !== null || child.signalCode !== null) resolveExit(child.exitCode);
      else child.once('exit', (code) => resolveExit(code));
    });
  };

  for (let attempt = 1; ; attempt++) {
    httpPort = await freePort();
    do grpcPort = await freePort();
    while (grpcPort === httpPort);
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3 || !BIND_ERROR.test(err instanceof Error ? err.message : String(err))) {
        trackDir(tmp.path, true);
        throw err;
      }
    }
  }

  let stopped = false;
  return {
    url: `http://127.0.0.1:${httpPort}`,
    grpcPort,
    env,
    injectedEnv: injected.env,
    startupPath: injected.startupPath,
    pid: proc?.child.pid ?? -1,
    dir: tmp.path,
    logs() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    exited,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc?.stop(10_000);
      releaseDir(tmp.path);
      if (keepRequested()) console.error(`e2e: kept Flipt sidecar directory ${tmp.path}`);
      else await tmp.remove();
    },
  };
}

/** A sidecar for a tap test, stopped in teardown. */
export async function useInjectedSidecar(t: TeardownHost, opts: StartSidecarOptions): Promise<Sidecar> {
  const sidecar = await startInjectedSidecar(opts);
  t.teardown(() => sidecar.stop());
  return sidecar;
}

/** Runs a flipt CLI command (validate, export) to completion, bounded; never throws on exit code. */
export async function runFliptCli(
  args: string[],
  opts: { cwd: string; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(serverBinary('flipt'), args, {
    cwd: opts.cwd,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: opts.cwd,
      FLIPT_META_TELEMETRY_ENABLED: 'false',
      FLIPT_META_CHECK_FOR_UPDATES: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolveCode, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolveCode(c));
  });
  clearTimeout(timer);
  if (child.signalCode === 'SIGKILL')
    throw new Error(`flipt ${args.join(' ')}: killed after ${timeoutMs} ms`);
  return { code, stdout, stderr };
}

export { waitFor };
