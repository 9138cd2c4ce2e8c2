// The sidecar's resource defaults and the GOMEMLIMIT derived from its memory limit (the values come
// from bench/sidecar.ts; README "Sizing the sidecar" has the measurements).
import t from 'tap';
import { resolveSettings } from '../../src/core/annotations.ts';
import { defaultConfig, parseConfig } from '../../src/core/config.ts';
import { parseQuantity } from '../../src/core/formats.ts';
import { buildSidecar, goMemLimit, GOMEMLIMIT_SHARE } from '../../src/core/sidecar.ts';

const envOf = (annotations: Record<string, string> = {}, config = defaultConfig()) => {
  const settings = resolveSettings(config, annotations);
  if (!settings.ok) throw new Error(settings.errors.join('; '));
  return Object.fromEntries(
    (buildSidecar(settings.settings).container.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]),
  );
};

t.test('goMemLimit takes a share of the limit in whole MiB', async (t) => {
  t.equal(goMemLimit('256Mi'), `${Math.floor(256 * GOMEMLIMIT_SHARE)}MiB`);
  t.equal(goMemLimit('1Gi'), `${Math.floor(1024 * GOMEMLIMIT_SHARE)}MiB`);
  t.equal(goMemLimit('500M'), `${Math.floor((500e6 * GOMEMLIMIT_SHARE) / 2 ** 20)}MiB`, 'decimal suffixes');
  t.equal(goMemLimit('1k'), undefined, 'below 1 MiB: no soft limit rather than a nonsense one');
  t.equal(goMemLimit('not a quantity'), undefined);
});

t.test('the injected GOMEMLIMIT follows the memory limit, from the config or the annotation', async (t) => {
  const config = defaultConfig();
  t.equal(envOf()['GOMEMLIMIT'], goMemLimit(config.sidecar.resources.limits.memory));
  t.equal(envOf({ 'flipt.io/memory-limit': '1Gi' })['GOMEMLIMIT'], goMemLimit('1Gi'));
  const parsed = parseConfig({ sidecar: { resources: { limits: { memory: '512Mi' } } } });
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  t.equal(envOf({}, parsed.config)['GOMEMLIMIT'], goMemLimit('512Mi'));
});

t.test('a GOMEMLIMIT in sidecar.extraEnv replaces the derived one (no duplicate variable)', async (t) => {
  const parsed = parseConfig({ sidecar: { extraEnv: [{ name: 'GOMEMLIMIT', value: 'off' }] } });
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const settings = resolveSettings(parsed.config, {});
  if (!settings.ok) throw new Error(settings.errors.join('; '));
  const env = buildSidecar(settings.settings).container.env ?? [];
  t.same(
    env.filter((e) => e.name === 'GOMEMLIMIT'),
    [{ name: 'GOMEMLIMIT', value: 'off' }],
  );
});

t.test('the defaults hold what bench/sidecar.ts measured', async (t) => {
  const { sidecar } = defaultConfig();
  t.equal(sidecar.logLevel, 'warn', 'info logs every evaluation; failed polls are logged at warn');
  // Measured peaks of anonymous memory (RssAnon) while a poll rebuilds 1,000 flags: ~85 MB in
  // documents of 100 (the exporter's default), ~210 MB in one document; ~55 MB steady at 100 flags.
  const MB = 1024 * 1024;
  t.ok(
    (parseQuantity(sidecar.resources.limits.memory) as number) >= 230 * MB,
    'limit above the one-document peak',
  );
  t.ok(
    (parseQuantity(sidecar.resources.requests.memory) as number) >= 55 * MB,
    'request above the steady state',
  );
});
