import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createEventStore,
  defineView,
  openView,
  type EnvelopeOf,
  type JetStreamEventStore,
} from '../../src/index.js';
import { ensureStore, startProjector } from '../../src/server.js';
import { DeadLetters } from '../../src/processing/dead-letters.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Bank = { Deposited: { amount: number }; Withdrawn: { amount: number } };
type Balance = { balance: number; count: number };

const balances = (version = 1, poison?: (e: EnvelopeOf<Bank>) => boolean) =>
  defineView<Balance, Bank>({
    name: 'balances',
    version,
    filter: { entityType: 'account' },
    initial: { balance: 0, count: 0 },
    evolve: (s, e) => {
      if (poison?.(e)) throw new Error(`cannot fold #${e.sequence}`);
      const sign = e.type === 'Deposited' ? 1 : -1;
      return { balance: s.balance + sign * e.data.amount * version, count: s.count + 1 };
    },
  });

let t: TestServer;
let nc: NatsConnection;
const stream = 'VIEWS_EVENTS';

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream, prefix: 'v' });
});
afterAll(() => t.close());

function newStore(connection = nc, tenant = unique('tenant')): JetStreamEventStore<Bank> {
  return createEventStore<Bank>({ connection, tenant, prefix: 'v', stream });
}

async function deposits(store: JetStreamEventStore<Bank>, count: number, accounts = 7): Promise<void> {
  for (let i = 0; i < count; i += 100) {
    await store.appendAll(
      Array.from({ length: accounts }, (_, a) => ({
        entity: { type: 'account', id: `acc-${a}` },
        events: Array.from({ length: (Math.min(100, count - i) / accounts) | 0 || 1 }, (_, k) => ({
          type: 'Deposited' as const,
          data: { amount: k + 1 },
        })),
      })),
    );
  }
}

/** Every key and raw value of one view version in a bucket. */
async function snapshot(bucket: string, tenant: string, version = 1): Promise<Record<string, string>> {
  const kv = await new Kvm(nc).open(bucket);
  const out: Record<string, string> = {};
  for await (const key of await kv.keys(`${tenant}.balances.v${version}.k.>`)) {
    out[key] = new TextDecoder().decode((await kv.get(key))!.value);
  }
  return out;
}

describe('views', () => {
  test('a projector builds a view and a reader on another connection watches it update live', async () => {
    const store = newStore();
    await deposits(store, 700);
    const projector = await startProjector(store, balances());
    await projector.caughtUp;
    const reader = openView<Balance>(newStore(await t.connect(), store.tenant), balances());
    const first = await reader.get('acc-1');
    const folded = await store.load({ type: 'account', id: 'acc-1' }, { initial: 0, evolve: (n) => n + 1 });
    expect(first).toMatchObject({ sequence: folded.version, state: { count: folded.state } });
    const updates = reader.watch('acc-1').pipe(take(2), toArray());
    const done = firstValueFrom(updates);
    await new Promise((r) => setTimeout(r, 100));
    const appended = await store.append(
      { type: 'account', id: 'acc-1' },
      { type: 'Withdrawn', data: { amount: 5 } },
    );
    const [loaded, live] = await done;
    expect(loaded!.state).toEqual(first!.state);
    expect(live).toMatchObject({
      key: 'acc-1',
      sequence: appended.version,
      state: { balance: first!.state.balance - 5, count: folded.state + 1 },
    });
    expect(await projector.lag()).toBe(0);
    await projector.stop();
  });

  test('watch signals loaded for a missing key, then sees it created', async () => {
    const store = newStore();
    const projector = await startProjector(store, balances());
    await projector.caughtUp;
    const values = firstValueFrom(
      openView<Balance>(store, balances()).watch('late').pipe(take(2), toArray()),
    );
    await new Promise((r) => setTimeout(r, 100));
    await store.append({ type: 'account', id: 'late' }, { type: 'Deposited', data: { amount: 9 } });
    const [missing, created] = await values;
    expect(missing).toBeNull();
    expect(created?.state).toEqual({ balance: 9, count: 1 });
    await projector.stop();
  });

  test('crash mid-stream and two instances at once give a view byte-identical to a fresh rebuild', async () => {
    const store = newStore();
    await deposits(store, 3000);
    // A projector whose connection dies mid-catch-up.
    const doomedConn = await t.connect();
    // Killed from its own progress report, so it dies mid-catch-up however fast it runs.
    let killed: Promise<void> | undefined;
    const doomed = await startProjector(newStore(doomedConn, store.tenant), balances(), {
      batchSize: 50,
      bucket: 'crash',
      onProgress: (p) => {
        if (p.phase === 'catching-up' && p.done >= 100) killed ??= doomedConn.close();
      },
    });
    await expect(doomed.done).rejects.toBeDefined();
    await killed;
    const checkpoint = await (
      await new Kvm(nc).open('crash')
    ).get(`${store.tenant}.balances.v1.meta.checkpoint`);
    const reached = checkpoint ? checkpoint.json<{ sequence: number }>().sequence : 0;
    expect(reached).toBeLessThan(await store.lastSequence()); // it really died mid-stream
    // Two instances resume from wherever it got to, at the same time.
    const [a, b] = await Promise.all([
      startProjector(newStore(await t.connect(), store.tenant), balances(), {
        batchSize: 70,
        bucket: 'crash',
      }),
      startProjector(newStore(await t.connect(), store.tenant), balances(), {
        batchSize: 30,
        bucket: 'crash',
      }),
    ]);
    await Promise.all([a.caughtUp, b.caughtUp]);
    const fresh = await startProjector(store, balances(), { bucket: 'fresh' });
    await fresh.caughtUp;
    const [crashed, rebuilt] = await Promise.all([
      snapshot('crash', store.tenant),
      snapshot('fresh', store.tenant),
    ]);
    expect(Object.keys(rebuilt)).toHaveLength(7);
    expect(crashed).toEqual(rebuilt);
    await Promise.all([a.stop(), b.stop(), fresh.stop()]);
  });

  test('a poison event is dead-lettered, later events project, and the fixed event replays', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const ok = await store.append({ type: 'account', id: 'p' }, { type: 'Deposited', data: { amount: 1 } });
    const bad = await store.append({ type: 'account', id: 'p' }, { type: 'Deposited', data: { amount: 13 } });
    await store.append({ type: 'account', id: 'p' }, { type: 'Deposited', data: { amount: 2 } });
    let broken = true;
    const view = balances(1, (e) => broken && e.sequence === bad.version);
    const projector = await startProjector(store, view, { deadLetters, maxAttempts: 3, bucket: 'poison' });
    await projector.caughtUp;
    const letters = await deadLetters.list('balances@v1');
    expect(letters.filter((l) => l.subject.includes(store.tenant))).toMatchObject([
      { sequence: bad.version, attempts: 3 },
    ]);
    const reader = openView<Balance>(store, view, { bucket: 'poison' });
    expect((await reader.get('p'))?.state).toEqual({ balance: 3, count: 2 });
    broken = false;
    await projector.replayDeadLetter(bad.version);
    expect((await reader.get('p'))?.state).toEqual({ balance: 16, count: 3 });
    expect(
      (await deadLetters.list('balances@v1')).some(
        (l) => l.sequence === bad.version && l.subject.includes(store.tenant),
      ),
    ).toBe(false);
    expect(ok.version).toBeLessThan(bad.version);
    await projector.stop();
  });

  test('version 2 rebuilds beside version 1, reports progress, then readers switch to it', async () => {
    const store = newStore();
    await deposits(store, 2000);
    const v1 = await startProjector(store, balances(1), { bucket: 'rebuild' });
    await v1.caughtUp;
    const reader = openView<Balance>(store, balances(1), { bucket: 'rebuild' });
    const seen = firstValueFrom(
      reader.watch('acc-0').pipe(
        filter((e) => e !== null && e.state.balance > 0),
        take(2),
        toArray(),
      ),
    );
    const progress: number[] = [];
    const v2 = await startProjector(store, balances(2), {
      bucket: 'rebuild',
      batchSize: 200,
      onProgress: (p) => progress.push(p.done / Math.max(1, p.total)),
    });
    expect(await reader.activeVersion()).toBe(1);
    await v2.caughtUp;
    expect(await reader.activeVersion()).toBe(2);
    const [fromV1, fromV2] = await seen;
    expect(fromV2!.state.balance).toBe(fromV1!.state.balance * 2);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress[progress.length - 1]).toBe(1);
    expect(v2.progress()).toMatchObject({ phase: 'live', etaMs: 0 });
    await Promise.all([v1.stop(), v2.stop()]);
  });
});
