// The pool that runs per-flag reads while the flag list is still being paged.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskPool } from '../../exporter/task-pool.ts';

t.test('results in the order added, never more than the limit at once', async (t) => {
  const pool = new TaskPool<number>(3);
  let running = 0;
  let most = 0;
  const task = (n: number) => async () => {
    running++;
    most = Math.max(most, running);
    await sleep(5 + ((n * 7) % 11));
    running--;
    return n * 10;
  };
  for (let i = 0; i < 10; i++) pool.add(task(i));
  await sleep(20);
  for (let i = 10; i < 20; i++) pool.add(task(i)); // added while others run
  t.same(
    await pool.done(),
    Array.from({ length: 20 }, (_, i) => i * 10),
  );
  t.equal(most, 3);
});

t.test('the first failure stops the rest and is reported; nothing is left unhandled', async (t) => {
  const pool = new TaskPool<number>(2);
  const started: number[] = [];
  const aborted: number[] = [];
  for (let i = 0; i < 10; i++) {
    pool.add(async (signal) => {
      started.push(i);
      if (i === 2) throw new Error('boom at 2');
      await sleep(30, undefined, { signal }).catch(() => aborted.push(i));
      return i;
    });
  }
  await t.rejects(pool.done(), /boom at 2/);
  t.ok(started.length < 10, `stopped after ${started.length} of 10`);
  t.ok(aborted.length > 0, 'running tasks see their signal aborted');
});

t.test('fail() from outside (the list feeding it failed) stops it', async (t) => {
  const pool = new TaskPool<number>(1);
  pool.add(async (signal) => {
    await sleep(1_000, undefined, { signal }).catch(() => undefined);
    return 1;
  });
  pool.add(async () => 2);
  pool.fail(new Error('the flag list failed'));
  pool.add(async () => 3);
  await t.rejects(pool.done(), /the flag list failed/);
});
