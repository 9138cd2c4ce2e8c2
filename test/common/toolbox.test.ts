// The shared toolbox (common/): one behaviour for every program that uses it.
import { getEventListeners } from 'node:events';
import t from 'tap';
import {
  DEFAULT_MARKER_NAMESPACE,
  MARKER_NAMESPACE_PATTERN,
  markerProbePath,
} from '../../common/export-marker.ts';
import { parseGoDuration } from '../../common/go-duration.ts';
import { isoTimestamp } from '../../common/log-format.ts';
import { backoffDelay, retry } from '../../common/retry.ts';
import { isS3BucketName } from '../../common/s3-bucket.ts';
import { wait } from '../../common/wait.ts';

t.test('Go durations: the grammar Flipt reads, in milliseconds', async (t) => {
  t.equal(parseGoDuration('1h2m3s'), 3_723_000);
  t.equal(parseGoDuration('1.5s'), 1_500);
  t.equal(parseGoDuration('250ms'), 250);
  t.equal(parseGoDuration('10us'), 0.01);
  for (const bad of ['5', '5 s', '-1s', '', 's', '1d']) t.equal(parseGoDuration(bad), undefined, bad);
});

t.test('log times: the text of toISOString, across seconds and with the clock set back', async (t) => {
  let now = Date.UTC(2026, 10, 30, 23, 59, 59, 998);
  const timestamp = isoTimestamp(() => now);
  const expect = (ms: number) => `,"time":"${new Date(ms).toISOString()}"`;
  // Every millisecond padding (0, 7, 42, 998), a second, a day and a year boundary, then backwards.
  const times = [
    now,
    now + 1,
    now + 2,
    now + 9,
    now + 44,
    now + 1002,
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2027, 0, 1, 0, 0, 0, 0),
    Date.UTC(2027, 0, 1, 0, 0, 0, 7),
    Date.UTC(2026, 11, 31, 23, 59, 59, 5),
    Date.UTC(2025, 0, 1),
  ];
  for (const ms of times) {
    now = ms;
    t.equal(timestamp(), expect(ms), new Date(ms).toISOString());
  }
  t.match(isoTimestamp()(), /^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/, 'the real clock');
});

t.test('S3 bucket names', async (t) => {
  for (const good of ['flipt', 'a.b-c', '123']) t.ok(isS3BucketName(good), good);
  for (const bad of ['ab', 'Flipt', '-flipt', 'flipt-', 'a_b', 'a'.repeat(64)])
    t.notOk(isS3BucketName(bad), bad);
});

t.test('the export marker is a valid Flipt namespace key and a REST path', async (t) => {
  t.match(DEFAULT_MARKER_NAMESPACE, new RegExp(MARKER_NAMESPACE_PATTERN));
  t.equal(markerProbePath('flipt-export'), '/api/v1/namespaces/flipt-export');
});

t.test('wait: true when the time passed, false at once when stopped, no listener left behind', async (t) => {
  t.equal(await wait(1), true);
  const stop = new AbortController();
  const pending = wait(60_000, stop.signal);
  stop.abort(new Error('stop'));
  t.equal(await pending, false);
  t.equal(await wait(60_000, stop.signal), false, 'an aborted signal does not wait at all');
  const live = new AbortController();
  await wait(1, live.signal);
  t.equal(getEventListeners(live.signal, 'abort').length, 0);
});

class Flaky extends Error {
  readonly retryable: boolean;
  constructor(retryable: boolean) {
    super(retryable ? 'try again' : 'give up');
    this.retryable = retryable;
  }
}
const isFlaky = (e: unknown): e is Flaky => e instanceof Flaky && e.retryable;

t.test('retry: doubling delays, capped, with jitter taking up to half off', async (t) => {
  t.same(
    [1, 2, 3, 4, 5].map((n) => backoffDelay(n, { retries: 5, baseMs: 250, maxMs: 2_000 }, () => 1)),
    [250, 500, 1_000, 2_000, 2_000],
  );
  t.equal(
    backoffDelay(1, { retries: 1, baseMs: 100, maxMs: 1_000 }, () => 0),
    50,
  );
  const delays: number[] = [];
  let calls = 0;
  const err = await retry(
    async () => {
      calls++;
      throw new Flaky(true);
    },
    { retries: 3, baseMs: 10, maxMs: 40, random: () => 1, wait: async (ms) => (delays.push(ms), true) },
    { retryable: isFlaky, onRetry: ({ attempt }) => t.ok(attempt <= 3) },
  ).catch((e: unknown) => e);
  t.equal(calls, 4, 'one try and three retries');
  t.same(delays, [10, 20, 40]);
  t.match(err, { message: 'try again' }, 'the last error is thrown');
});

t.test('retry: a permanent error at once; a stop ends the wait with the signal reason', async (t) => {
  let calls = 0;
  const permanent = await retry(
    async () => {
      calls++;
      throw new Flaky(false);
    },
    { retries: 5, baseMs: 1, maxMs: 1 },
    { retryable: isFlaky },
  ).catch((e: unknown) => e);
  t.equal(calls, 1);
  t.match(permanent, { message: 'give up' });

  const stop = new AbortController();
  const stopped = retry(
    async () => {
      throw new Flaky(true);
    },
    { retries: 5, baseMs: 60_000, maxMs: 60_000 },
    { retryable: isFlaky, signal: stop.signal, onRetry: () => stop.abort(new Error('stopping')) },
  ).catch((e: unknown) => e);
  t.match(await stopped, { message: 'stopping' });
  t.equal(await retry(async () => 42, { retries: 0, baseMs: 1, maxMs: 1 }, { retryable: isFlaky }), 42);
});
