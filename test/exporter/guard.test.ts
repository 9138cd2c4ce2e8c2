// The shrink guard: an export that would empty the bucket, or remove more than the allowed share of
// its flags, is refused unless --allow-shrink says otherwise.
import t from 'tap';
import { checkShrink } from '../../exporter/guard.ts';

const policy = { allowShrink: false, maxShrink: 0.25 };

t.test('nothing to protect: no previous object, or no fewer flags', async (t) => {
  t.same(checkShrink(undefined, 0, policy), { ok: true, removed: 0 });
  t.same(checkShrink(0, 0, policy), { ok: true, removed: 0 });
  t.same(checkShrink(10, 10, policy), { ok: true, removed: 0 });
  t.same(checkShrink(10, 500, policy), { ok: true, removed: 0 });
});

t.test('removing every flag is refused', async (t) => {
  const d = checkShrink(1200, 0, policy);
  t.equal(d.ok, false);
  if (!d.ok)
    t.match(d.reason, /the export has no flags but the object in the bucket has 1200.*--allow-shrink/);
  t.same(checkShrink(1200, 0, { ...policy, maxShrink: 1 }).ok, false, 'even with --max-shrink 1');
});

t.test('removing more than the allowed share is refused, up to it is allowed', async (t) => {
  t.same(checkShrink(100, 75, policy), { ok: true, removed: 25 }, 'exactly 25% is allowed');
  const d = checkShrink(100, 74, policy);
  t.equal(d.ok, false);
  if (!d.ok)
    t.match(d.reason, /remove 26 of the 100 flags in the bucket \(26\.0%, more than the allowed 25\.0%\)/);
  t.same(checkShrink(4, 3, policy), { ok: true, removed: 1 }, 'one of four is 25%');
  t.equal(checkShrink(3, 2, policy).ok, false, 'one of three is 33%');
  t.same(checkShrink(100, 10, { ...policy, maxShrink: 0.95 }), { ok: true, removed: 90 });
});

t.test('--allow-shrink lets any export through', async (t) => {
  t.same(checkShrink(1200, 0, { ...policy, allowShrink: true }), { ok: true, removed: 1200 });
  t.same(checkShrink(100, 1, { ...policy, allowShrink: true }), { ok: true, removed: 99 });
});
