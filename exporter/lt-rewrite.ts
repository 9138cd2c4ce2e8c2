// Pure: Flipt v1.61.1's document schema (core/validation/flipt.cue) spells the less-than operator
// of NUMBER and DATETIME constraints `le` instead of `lt`, so a master's `lt` constraint cannot be
// exported as it is: `flipt validate` and every sidecar refuse the file. `gt`, `gte` and `lte` are
// spelled right. This module finds the `lte` constraint that matches exactly the same contexts.
//
// How the evaluator compares (internal/server/evaluation/legacy_evaluator.go):
// - NUMBER: both sides through strconv.ParseFloat(s, 64); `lt` is `n < v`, `lte` is `n <= v`. Over
//   float64 (±Inf included), `n < v` ⇔ `n <= nextDown(v)`, and NaN fails both. JavaScript's
//   Number() rounds decimal text to the nearest float64 exactly as ParseFloat does, and
//   Number#toString writes the shortest text that reads back as the same float64.
// - DATETIME: both sides through time.Parse(RFC3339) (or DateOnly), which keeps nanoseconds (digits
//   past the ninth are dropped, on both sides alike); `lt` is d.Before(v). Instants are whole
//   nanoseconds, so `d < v` ⇔ `d <= v - 1ns`. The master stores the value normalised to
//   RFC3339 in UTC at whole seconds, or as a date (rpc/flipt/validation.go), so the rewritten
//   value is always `…:SS.999999999Z` one second before, or the day before at 23:59:59.999999999Z.
// A value Flipt would not parse (the master answers an error for it) is not rewritten: refused.

export type LtRewrite = { ok: true; operator: 'lte'; value: string } | { ok: false; reason: string };

/** The comparison types whose `lt` Flipt v1.61.1's schema refuses. */
export const LT_REWRITTEN_TYPES = new Set(['NUMBER_COMPARISON_TYPE', 'DATETIME_COMPARISON_TYPE']);

// Go's decimal float syntax without its hex, underscore, Inf and NaN forms: those are refused
// rather than emulated (the master never normalises number values, but no real rule uses them).
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A float64 as Flipt's ParseFloat reads `text`, for plain decimal text; undefined otherwise. */
export function parseDecimalFloat64(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const n = Number(text);
  // ParseFloat reports overflow to ±Inf as an error; underflow to 0 is not one (in Go nor here).
  return Number.isFinite(n) ? n : undefined;
}

const view = new DataView(new ArrayBuffer(8));

/** The largest float64 below x (x finite or +Inf). */
export function nextDown(x: number): number {
  if (Number.isNaN(x) || x === -Infinity) throw new RangeError(`no float64 below ${x}`);
  if (x === 0) return -Number.MIN_VALUE; // both +0 and -0
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, x > 0 ? bits - 1n : bits + 1n);
  return view.getFloat64(0);
}

const NS_PER_SECOND = 1_000_000_000n;
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Days from 1970-01-01 to the given civil date (proleptic Gregorian, any year 0..9999). */
function daysFromCivil(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return Math.round(d.getTime() / 86_400_000);
}

/**
 * The instant Flipt reads from `text`, in nanoseconds since the Unix epoch, for RFC3339 text with an
 * offset of at most ±23:59 and for dates; undefined for anything else (refused, not guessed).
 */
export function parseFliptDateTime(text: string): bigint | undefined {
  const m = RFC3339.exec(text) ?? DATE_ONLY.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  let seconds = BigInt(daysFromCivil(year, month, day)) * 86_400n;
  let nanos = 0n;
  if (m[4] !== undefined) {
    const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
    if (hour > 23 || minute > 59 || second > 59) return undefined;
    seconds += BigInt(hour * 3600 + minute * 60 + second);
    // Go keeps nine digits and drops the rest.
    if (m[7] !== undefined) nanos = BigInt(m[7].slice(0, 9).padEnd(9, '0'));
    if (m[8] === undefined) {
      const [oh, om] = [Number(m[10]), Number(m[11])];
      if (oh > 23 || om > 59) return undefined;
      const offset = BigInt(oh * 3600 + om * 60);
      seconds += m[9] === '+' ? -offset : offset;
    }
  }
  return seconds * NS_PER_SECOND + nanos;
}

const MIN_NS = BigInt(daysFromCivil(0, 1, 1)) * 86_400n * NS_PER_SECOND;
const MAX_NS = BigInt(daysFromCivil(10000, 1, 1)) * 86_400n * NS_PER_SECOND - 1n;

/** An instant as RFC3339 in UTC with nine fraction digits, or undefined outside years 0000-9999. */
export function formatRfc3339Nano(ns: bigint): string | undefined {
  if (ns < MIN_NS || ns > MAX_NS) return undefined;
  let seconds = ns / NS_PER_SECOND;
  let nanos = ns % NS_PER_SECOND;
  if (nanos < 0n) {
    nanos += NS_PER_SECOND;
    seconds -= 1n;
  }
  const d = new Date(Number(seconds) * 1000);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `.${String(nanos).padStart(9, '0')}Z`
  );
}

/** The exactly equivalent `lte` constraint for `lt <value>` of the given comparison type. */
export function rewriteLessThan(type: string, value: string): LtRewrite {
  if (type === 'NUMBER_COMPARISON_TYPE') {
    const v = parseDecimalFloat64(value);
    if (v === undefined) {
      return {
        ok: false,
        reason: `its value ${JSON.stringify(value)} is not a finite decimal number (Flipt cannot compare with it, or reads it in a form the exporter does not rewrite)`,
      };
    }
    return { ok: true, operator: 'lte', value: String(nextDown(v)) };
  }
  if (type === 'DATETIME_COMPARISON_TYPE') {
    const t = parseFliptDateTime(value);
    if (t === undefined) {
      return {
        ok: false,
        reason: `its value ${JSON.stringify(value)} is not an RFC3339 date-time or a date Flipt reads the same way`,
      };
    }
    const earlier = formatRfc3339Nano(t - 1n);
    if (earlier === undefined) {
      return { ok: false, reason: `one nanosecond before ${value} cannot be written as RFC3339` };
    }
    return { ok: true, operator: 'lte', value: earlier };
  }
  return { ok: false, reason: `"lt" is not an operator of ${type}` };
}
