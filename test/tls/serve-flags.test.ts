// `flipt-injector serve`'s TLS flags: every bad combination is a usage error (exit 2) naming the
// flag, before anything listens or calls the API server.
import t from 'tap';
import { runCli } from '../support/cli.ts';

t.test('serve --tls-auto refuses bad flags with a usage error', async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ['--tls-auto', '--tls-cert', 'a', '--tls-key', 'b', '--dns-name', 'x'],
      /leave out --tls-cert and --tls-key/,
    ],
    [['--tls-auto'], /--dns-name NAME/],
    [['--tls-auto', '--dns-name', 'x', '--tls-lifetime', 'forever'], /--tls-lifetime must be a Go duration/],
    [
      ['--tls-auto', '--dns-name', 'x', '--tls-check-interval', '1ms'],
      /--tls-check-interval must be .* at least 100 ms/,
    ],
    [
      ['--tls-auto', '--dns-name', 'x', '--tls-renew-fraction', 'most'],
      /--tls-renew-fraction must be a number/,
    ],
    [['--tls-auto', '--dns-name', 'x', '--tls-renew-fraction', '1.5'], /between 0 and 1/],
    [
      ['--tls-auto', '--dns-name', 'x', '--tls-lifetime', '30s', '--tls-check-interval', '10s'],
      /at least 60000 ms/,
    ],
    [
      ['--tls-cert', 'a', '--tls-key', 'b', '--tls-expiry-warning', 'soon'],
      /--tls-expiry-warning must be a Go duration/,
    ],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(['serve', ...args]);
    t.equal(run.code, 2, args.join(' '));
    t.match(run.stderr, message, args.join(' '));
  }
});

t.test('the usage text names the self-managed TLS flags', async (t) => {
  const help = await runCli(['--help']);
  t.match(help.stdout, /--tls-auto --dns-name NAME/);
  t.match(help.stdout, /--tls-expiry-warning 336h/);
});
