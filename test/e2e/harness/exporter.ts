// The exporter's bin (`node exporter/main.ts`, what `flipt-exporter` runs) as a child process of a
// test, run with Node 24 from node_modules/.bin/node and only the environment given (no AWS_* from
// the test process). Its JSON log lines are parsed as they arrive, so a test can wait for one.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..', '..', '..');
const mainTs = resolve(repoRoot, 'exporter', 'main.ts');
const localNode = resolve(repoRoot, 'node_modules', '.bin', 'node');

export type LogLine = Record<string, unknown> & { level?: string; msg?: string };

export interface ExporterRun {
  child: ChildProcess;
  logs: LogLine[];
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  done: Promise<{ code: number | null; logs: LogLine[]; stderr: string }>;
  /** SIGTERM, then SIGKILL after 10 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export function startExporter(
  args: string[],
  env: Record<string, string> = {},
  home = tmpdir(),
): ExporterRun {
  const child = spawn(existsSync(localNode) ? localNode : process.execPath, [mainTs, ...args], {
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: home,
      // No instance-metadata lookups when credentials are missing: fail at once.
      AWS_EC2_METADATA_DISABLED: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 'not-json', msg: text };
      }
      logs.push(line);
      for (const w of waiters.filter((w) => w.match(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<{ code: number | null; logs: LogLine[]; stderr: string }>((resolveDone) =>
    child.once('close', (code) => resolveDone({ code, logs, stderr })),
  );
  return {
    child,
    logs,
    done,
    waitForLog(match, timeoutMs = 30_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no matching log line within ${timeoutMs} ms; got:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\n${stderr}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolveLine(l);
          },
        });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  };
}

/** The options every run names: the master it reads and the bucket (and prefix) it writes. */
export function exportTarget(target: {
  fliptUrl: string;
  bucket: string;
  endpoint: string;
  prefix?: string | undefined;
}): string[] {
  return [
    '--flipt-url',
    target.fliptUrl,
    '--bucket',
    target.bucket,
    ...(target.prefix ? ['--prefix', target.prefix] : []),
    '--endpoint',
    target.endpoint,
  ];
}

/** Runs the exporter to completion, killing it after `timeoutMs` (a bounded wait). */
export async function runExporter(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<{ code: number | null; logs: LogLine[]; stderr: string }> {
  const run = startExporter(args, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

/** The one result line each run logs. */
export function resultLine(logs: LogLine[]): LogLine {
  const line = logs.find((l) => typeof l['result'] === 'string');
  if (!line) throw new Error(`no result line in ${JSON.stringify(logs)}`);
  return line;
}
