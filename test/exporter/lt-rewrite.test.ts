// The `lt` → `lte` rewrite's boundary maths. Each case checks the property that makes the rewrite
// exact, not a stored answer: for every probe value n, `n < v` ⇔ `n <= rewritten` as Flipt's
// evaluator compares (float64 for numbers, nanosecond instants for date-times). The e2e suite
// proves the same against real Flipt v1.61.1 binaries.
import t, { type Test } from 'tap';
import {
  formatRfc3339Nano,
  nextDown,
  parseDecimalFloat64,
  parseFliptDateTime,
  rewriteLessThan,
} from '../../exporter/lt-rewrite.ts';

const view = new DataView(new ArrayBuffer(8));
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, x > 0 ? bits + 1n : bits - 1n);
  return view.getFloat64(0);
}

function rewrittenNumber(t: Test, value: string): number {
  const r = rewriteLessThan('NUMBER_COMPARISON_TYPE', value);
  if (!r.ok) {
    t.fail(`${value}: ${r.reason}`);
    return NaN;
  }
  t.equal(r.operator, 'lte');
  return Number(r.value);
}

t.test('numbers: lt v ⇔ lte nextDown(v), at and around the boundary', async (t) => {
  const values = [
    '30',
    '0',
    '-0',
    '1',
    '-1',
    '0.1',
    '-0.1',
    '18',
    '1e21',
    '123456789012345678',
    '9007199254740993',
    '2.5',
    '-2.5',
    '1e-300',
    '5e-324',
    '-5e-324',
    '1.7976931348623157e308',
    '-1.7976931348623157e308',
    '0.30000000000000004',
    '.5',
    '7.',
    '+3',
    '1E5',
    '00012',
    '2.2250738585072014e-308',
    '1e-400',
  ];
  for (const text of values) {
    const v = Number(text);
    const w = rewrittenNumber(t, text);
    // The rewritten text reads back as one float64 below v, and nothing lies between.
    t.ok(w < v, `${text}: ${w} < ${v}`);
    t.equal(nextUp(w), v === 0 ? 0 : v, `${text}: nothing between ${w} and ${v}`);
    const probes = [v, w, nextUp(v), -Infinity, Infinity, NaN, 0, -0];
    if (w !== -Infinity) probes.push(nextDown(w));
    if (Number.isFinite(nextUp(v))) probes.push(nextUp(nextUp(v)));
    for (const n of probes) t.equal(n < v, n <= w, `${text}: ${n} < v ⇔ ${n} <= ${w}`);
  }
});

t.test('numbers: the written text is the shortest that round-trips', async (t) => {
  const r = rewriteLessThan('NUMBER_COMPARISON_TYPE', '30');
  t.same(r, { ok: true, operator: 'lte', value: '29.999999999999996' });
  t.same(rewriteLessThan('NUMBER_COMPARISON_TYPE', '0'), { ok: true, operator: 'lte', value: '-5e-324' });
  // Below the most negative float64 lies only -Inf, which Go's ParseFloat reads from "-Infinity".
  t.same(rewriteLessThan('NUMBER_COMPARISON_TYPE', '-1.7976931348623157e308'), {
    ok: true,
    operator: 'lte',
    value: '-Infinity',
  });
  t.same(rewriteLessThan('NUMBER_COMPARISON_TYPE', '1'), {
    ok: true,
    operator: 'lte',
    value: '0.9999999999999999',
  });
  for (const v of ['0.1', '-7.25', '1e21', '1e-7']) {
    const w = rewriteLessThan('NUMBER_COMPARISON_TYPE', v);
    if (w.ok) t.equal(String(Number(w.value)), w.value, `${w.value} reads back as itself`);
  }
});

t.test('numbers Flipt cannot compare with, or reads in forms not rewritten, are refused', async (t) => {
  for (const text of [
    '',
    'abc',
    ' 1',
    '1 ',
    '1e',
    '1e309',
    '-1e309',
    'NaN',
    'Inf',
    '+Inf',
    '-Inf',
    'infinity',
    '0x1p-2',
    '1_000',
    '1,5',
    '--1',
    '.',
    'e5',
  ]) {
    const r = rewriteLessThan('NUMBER_COMPARISON_TYPE', text);
    t.equal(r.ok, false, JSON.stringify(text));
    t.equal(parseDecimalFloat64(text), undefined, JSON.stringify(text));
  }
  t.throws(() => nextDown(-Infinity));
  t.throws(() => nextDown(NaN));
  t.equal(nextDown(Infinity), Number.MAX_VALUE);
});

const S = 1_000_000_000n;

t.test('date-times: lt t ⇔ lte t-1ns, in several time zones and forms', async (t) => {
  const cases: [string, string][] = [
    ['2025-01-01T00:00:00Z', '2024-12-31T23:59:59.999999999Z'],
    ['2025-01-01', '2024-12-31T23:59:59.999999999Z'],
    ['2024-03-01', '2024-02-29T23:59:59.999999999Z'],
    ['2023-03-01', '2023-02-28T23:59:59.999999999Z'],
    ['2025-06-15T12:30:45+02:00', '2025-06-15T10:30:44.999999999Z'],
    ['2025-06-15T12:30:45-07:00', '2025-06-15T19:30:44.999999999Z'],
    ['2025-06-15T00:00:00+05:30', '2025-06-14T18:29:59.999999999Z'],
    ['2025-06-15T23:59:59-11:45', '2025-06-16T11:44:58.999999999Z'],
    ['2025-06-15T12:00:00.5Z', '2025-06-15T12:00:00.499999999Z'],
    ['2025-06-15T12:00:00,000000001Z', '2025-06-15T12:00:00.000000000Z'],
    ['2025-06-15T12:00:00.1234567891234Z', '2025-06-15T12:00:00.123456788Z'],
    ['1970-01-01T00:00:00Z', '1969-12-31T23:59:59.999999999Z'],
    ['0001-01-01T00:00:00Z', '0000-12-31T23:59:59.999999999Z'],
    ['9999-12-31T23:59:59Z', '9999-12-31T23:59:58.999999999Z'],
  ];
  for (const [value, expected] of cases) {
    const r = rewriteLessThan('DATETIME_COMPARISON_TYPE', value);
    t.same(r, { ok: true, operator: 'lte', value: expected }, value);
    if (!r.ok) continue;
    const v = parseFliptDateTime(value) as bigint;
    const w = parseFliptDateTime(r.value) as bigint;
    t.equal(w, v - 1n, `${value}: one nanosecond earlier`);
    for (const d of [v - S, v - 2n, v - 1n, v, v + 1n, v + S]) {
      t.equal(d < v, d <= w, `${value}: ${d} < v ⇔ ${d} <= w`);
    }
  }
});

t.test('date-times are read as Go reads them: offsets, dates, nanoseconds', async (t) => {
  t.equal(parseFliptDateTime('1970-01-01T00:00:00Z'), 0n);
  t.equal(parseFliptDateTime('1970-01-01'), 0n);
  t.equal(parseFliptDateTime('1970-01-01T01:00:00+01:00'), 0n);
  t.equal(parseFliptDateTime('1969-12-31T19:00:00-05:00'), 0n);
  t.equal(parseFliptDateTime('1970-01-01T00:00:01.000000001Z'), S + 1n);
  t.equal(parseFliptDateTime('2000-01-01T00:00:00Z'), 946_684_800n * S);
  t.equal(formatRfc3339Nano(0n), '1970-01-01T00:00:00.000000000Z');
  t.equal(formatRfc3339Nano(-1n), '1969-12-31T23:59:59.999999999Z');
});

t.test('date-times Flipt cannot read, or only in forms not rewritten, are refused', async (t) => {
  for (const value of [
    '',
    'yesterday',
    '2025-02-30',
    '2025-13-01',
    '2025-01-01T24:00:00Z',
    '2025-01-01T23:60:00Z',
    '2025-01-01T23:59:60Z',
    '2025-01-01t00:00:00z',
    '2025-01-01 00:00:00Z',
    '2025-1-01T00:00:00Z',
    '2025-01-01T00:00:00',
    '2025-01-01T00:00:00.Z',
    '2025-01-01T00:00:00+2400',
    '2025-01-01T00:00:00+24:00',
    '0000-01-01T00:00:00Z',
    '0000-01-01',
  ]) {
    t.equal(rewriteLessThan('DATETIME_COMPARISON_TYPE', value).ok, false, value);
  }
  t.equal(rewriteLessThan('STRING_COMPARISON_TYPE', 'a').ok, false);
});
