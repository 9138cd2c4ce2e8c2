// Running flipt-injector from tests: in-process through main() (fast, for output checks), or as a
// real child process (start-up, signals, exit codes).
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { main, type Io } from '../../src/cli.ts';

export async function runCli(
  argv: string[],
  stdin = '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    readStdin: async () => stdin,
    env: {},
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

export interface CliProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  out(): string;
  err(): string;
}

const cli = resolve(import.meta.dirname, '..', '..', 'src', 'cli.ts');

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

/**
 * `count` small Deployments (about 240 bytes each, as in issue 9's 4.8 MB / 20,000 manifest), every
 * one labelled for injection, as one multi-document YAML stream.
 */
export function deploymentsManifest(count: number): string {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    docs.push(
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-${i}\nspec:\n  selector:\n    matchLabels: {app: web-${i}}\n  template:\n    metadata:\n      labels: {app: web-${i}, flipt.io/inject: "true"}\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.27\n`,
    );
  }
  return docs.join('---\n');
}
