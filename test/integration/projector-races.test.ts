// Races between a projector's runs and instances, reproduced by holding or failing its
// storage calls at chosen moments. Each lost an event, or leaked a watch, before its fix.
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { finalize, merge, Subject } from 'rxjs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  createEventStore,
  defineView,
  openView,
  UnavailableError,
  type EnvelopeOf,
  type JetStreamEventStore,
} from '../../src/index.js';
import { ensureStore, startProjector } from '../../src/server.js';
import { DeadLetters } from '../../src/processing/dead-letters.js';
import { encodeViewValue } from '../../src/views/codec.js';
import { ViewKeys } from '../../src/views/define-view.js';
import { ViewStorage, type Entry } from '../../src/views/view-storage.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Bank = { Deposited: { amount: number } };
type Balance = { balance: number; count: number };
const balances = (poison?: (e: EnvelopeOf<Bank>) => boolean) =>
  defineView<Balance, Bank>({
    name: 'balances',
    version: 1,
    filter: { entityType: 'account' },
    initial: { balance: 0, count: 0 },
    evolve: (s, e) => {
      if (poison?.(e)) throw new Error(`cannot fold #${e.sequence}`);
      return { balance: s.balance + e.data.amount, count: s.count + 1 };
    },
  });
const deposit = (amount: number) => ({ type: 'Deposited' as const, data: { amount } });
const k = { type: 'account', id: 'k' } as const;
const j = { type: 'account', id: 'j' } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestServer;
let nc: NatsConnection;
const stream = 'RACES';
beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream, prefix: 'r' });
});
afterAll(() => t.close());

const newStore = (): JetStreamEventStore<Bank> =>
  createEventStore<Bank>({ connection: nc, tenant: unique('tenant'), prefix: 'r', stream });

/** A store whose first watch fails on `fault.error(...)`, as a consumer lost in an outage does; counts watches still open. */
function faultyWatches(store: JetStreamEventStore<Bank>) {
  const fault = new Subject<never>();
  const watch = store.watch.bind(store);
  const counts = { made: 0, open: 0 };
  store.watch = ((...args: Parameters<typeof watch>) => {
    const first = counts.made++ === 0;
    counts.open++;
    return (first ? merge(watch(...args), fault) : watch(...args)).pipe(finalize(() => counts.open--));
  }) as typeof store.watch;
  return { fault, counts };
}

/** A promise to await and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  return { opened: new Promise<void>((r) => (open = r)), open };
}

type Values = ReadonlyArray<readonly [string, Entry<Balance>]>;

interface Storage {
  /** A flush: values and checkpoint in one atomic batch. */
  commit(values: Values, ...rest: unknown[]): Promise<number | undefined>;
  load(key: string): Promise<Entry<Balance>>;
}

test('a flush from before a restart does not replace a value the new run folded', async () => {
  const store = newStore();
  const { fault } = faultyWatches(store);
  const bucket = 'races-stale-flush';
  await store.append(k, deposit(1));
  const projector = await startProjector(store, balances(), { bucket, batchSize: 3 });
  await projector.caughtUp;
  const storage = (projector as unknown as { storage: Storage }).storage;
  const [commit, load] = [storage.commit.bind(storage), storage.load.bind(storage)];
  // The live drain's flush of k is held past the restart; the new run's catch-up is held
  // on j, after it has folded k's next event but before it flushes.
  const held = gate();
  const putHeld = gate();
  let holdPut = true;
  storage.commit = async (values, ...rest) => {
    if (holdPut) {
      holdPut = false;
      putHeld.open();
      await held.opened;
    }
    return commit(values, ...rest);
  };
  const loadHeld = gate();
  const loading = gate();
  storage.load = async (key) => {
    if (key.endsWith('.k.j')) {
      loading.open();
      await loadHeld.opened;
    }
    return load(key);
  };
  await store.append(k, deposit(10));
  await putHeld.opened;
  await store.append(k, deposit(100));
  await store.append(j, deposit(5));
  fault.error(new UnavailableError('watch consumer lost'));
  await loading.opened;
  held.open(); // the old drain's flush lands beside the new run
  await sleep(300);
  loadHeld.open();
  await projector.caughtUp;
  const reader = openView<Balance>(store, balances(), { bucket });
  await eventually(
    () => reader.get('j'),
    (v) => v !== null,
  );
  expect(
    (
      await eventually(
        () => reader.get('k'),
        (v) => v?.state.count === 3,
      )
    )?.state,
  ).toEqual({ balance: 111, count: 3 });
  await projector.stop();
});

test("a dead-lettered event survives another instance writing the same key's value first", async () => {
  const store = newStore();
  const deadLetters = await DeadLetters.open(nc);
  const bucket = 'races-letter-kept';
  const acc = { type: 'account', id: 'a' } as const;
  await store.append(acc, deposit(1));
  const first = await startProjector(store, balances(), { bucket, deadLetters });
  await first.caughtUp;
  await first.stop();
  await store.append(acc, deposit(10));
  const bad = (await store.append(acc, deposit(100))).version;
  const kv = await new Kvm(nc).open(bucket);
  const valueKey = new ViewKeys(store.tenant, 'balances').entry(1, 'a');
  // Another instance of the same code folded the event before the poisoned one and wrote
  // first, then stopped before reaching the poisoned one.
  const commit = ViewStorage.prototype.commit;
  let once = true;
  ViewStorage.prototype.commit = async function (this: ViewStorage<Balance>, values, ...rest) {
    const entry = values.find(([key]) => key === valueKey)?.[1];
    if (once && entry) {
      once = false;
      const { deadLettered: _, ...other } = entry;
      await kv.update(valueKey, encodeViewValue(other), entry.revision);
    }
    return commit.call(this, values, ...rest);
  } as typeof commit;
  const poisoned = balances((e) => e.sequence === bad);
  try {
    const a = await startProjector(store, poisoned, { bucket, deadLetters, maxAttempts: 1 });
    await a.caughtUp;
    await a.stop();
  } finally {
    ViewStorage.prototype.commit = commit;
  }
  const later = await store.append(acc, deposit(1000));
  const fixed = await startProjector(store, balances(), { bucket, deadLetters });
  await fixed.caughtUp;
  const reader = openView<Balance>(store, balances(), { bucket });
  await eventually(
    () => reader.get('a'),
    (v) => v?.sequence === later.version,
  );
  await fixed.replayDeadLetter(bad);
  expect((await reader.get('a'))?.state).toEqual({ balance: 1111, count: 4 });
  await fixed.stop();
});

test('a drain failing after a restart leaves no watch behind once stopped', async () => {
  const store = newStore();
  const { fault, counts } = faultyWatches(store);
  const bucket = 'races-orphan-watch';
  await store.append(k, deposit(1));
  const projector = await startProjector(store, balances(), { bucket });
  await projector.caughtUp;
  const storage = (projector as unknown as { storage: Storage }).storage;
  const [commit, load] = [storage.commit.bind(storage), storage.load.bind(storage)];
  const failing = gate();
  const putHeld = gate();
  let stale: Entry<Balance> | undefined;
  storage.commit = async (values, ...rest) => {
    if (!stale && values.length > 0) {
      stale = values[0]![1];
      putHeld.open();
      await failing.opened;
    }
    if (values.some(([, entry]) => entry === stale)) throw new UnavailableError('flush timed out');
    return commit(values, ...rest);
  };
  const loadHeld = gate();
  const loading = gate();
  let holdJ = true;
  storage.load = async (key) => {
    if (holdJ && key.endsWith('.k.j')) {
      holdJ = false;
      loading.open();
      await loadHeld.opened;
    }
    return load(key);
  };
  await store.append(k, deposit(10));
  await putHeld.opened;
  await store.append(j, deposit(5));
  fault.error(new UnavailableError('watch consumer lost')); // restart 1
  await loading.opened; // the new run is mid-catch-up
  failing.open(); // the old drain fails now
  await sleep(100);
  loadHeld.open();
  await projector.caughtUp;
  await store.append(k, deposit(100));
  const reader = openView<Balance>(store, balances(), { bucket });
  expect(
    (
      await eventually(
        () => reader.get('k'),
        (v) => v?.state.count === 3,
      )
    )?.state.count,
  ).toBe(3);
  // Past the second restart's backoff: a run it superseded would have watched again by now.
  await sleep(2000);
  await projector.stop();
  expect(counts.open).toBe(0);
});

test("a value an old drain was still loading at a restart does not replace the new run's", async () => {
  const store = newStore();
  const { fault } = faultyWatches(store);
  const bucket = 'races-stale-load';
  await store.append(k, deposit(1));
  const projector = await startProjector(store, balances(), { bucket, batchSize: 100 });
  await projector.caughtUp;
  const storage = (projector as unknown as { storage: Storage }).storage;
  const load = storage.load.bind(storage);
  // The live drain's load of j is read, then answered late (a KV in trouble); the new
  // run's catch-up folds j meanwhile and is held loading k.
  const late = gate();
  const lateLoading = gate();
  const kHeld = gate();
  const kLoading = gate();
  let [jLoads, kLoads] = [0, 0];
  storage.load = async (key) => {
    if (key.endsWith('.k.j') && jLoads++ === 0) {
      const read = await load(key);
      lateLoading.open();
      await late.opened;
      return read;
    }
    if (key.endsWith('.k.k') && kLoads++ === 0) {
      kLoading.open();
      await kHeld.opened;
    }
    return load(key);
  };
  await store.append(j, deposit(5));
  await lateLoading.opened;
  fault.error(new UnavailableError('watch consumer lost'));
  await store.append(k, deposit(10));
  await kLoading.opened;
  late.open();
  await sleep(50);
  kHeld.open();
  const reader = openView<Balance>(store, balances(), { bucket });
  expect(
    (
      await eventually(
        () => reader.get('k'),
        (v) => v?.state.count === 2,
      )
    )?.state.count,
  ).toBe(2);
  await projector.stop();
  expect((await reader.get('j'))?.state).toEqual({ balance: 5, count: 1 });
});

test("a replay answered in the same tick as a catch-up's load of its key folds once, on the right state", async () => {
  const store = newStore();
  const deadLetters = await DeadLetters.open(nc);
  const bucket = unique('races-tick').toLowerCase();
  const acc = { type: 'account', id: 'a' } as const;
  await store.append(acc, deposit(1));
  const bad = (await store.append(acc, deposit(10))).version;
  const first = await startProjector(
    store,
    balances((e) => e.sequence === bad),
    {
      bucket,
      deadLetters,
      maxAttempts: 1,
    },
  );
  await first.caughtUp;
  await first.stop();
  await store.append(acc, deposit(100)); // folded by the next catch-up
  // The catch-up's load of a and the replay's put of a are answered, then held, and let
  // go together.
  const { load, put } = ViewStorage.prototype;
  const loadReady = gate();
  const putReady = gate();
  const release = gate();
  let [loads, puts] = [0, 0];
  ViewStorage.prototype.load = async function (this: ViewStorage<Balance>, key: string) {
    const value = (await load.call(this, key)) as Entry<Balance>;
    if (key.endsWith('.a') && loads++ === 0) {
      loadReady.open();
      await release.opened;
    }
    return value;
  } as typeof load;
  ViewStorage.prototype.put = async function (
    this: ViewStorage<Balance>,
    key: string,
    entry: Entry<Balance>,
  ) {
    const revision = await put.call(this, key, entry);
    if (key.endsWith('.a') && entry.replayed && puts++ === 0) {
      putReady.open();
      await release.opened;
    }
    return revision;
  } as typeof put;
  try {
    const fixed = await startProjector(store, balances(), { bucket, deadLetters });
    await loadReady.opened;
    const replay = fixed.replayDeadLetter(bad);
    await putReady.opened;
    release.open();
    await replay;
    await fixed.caughtUp;
    await fixed.stop();
  } finally {
    Object.assign(ViewStorage.prototype, { load, put });
  }
  const stored = await openView<Balance>(store, balances(), { bucket }).get('a');
  expect(stored?.state).toEqual({ balance: 111, count: 3 });
});

test('lag reaches 0 only once the last event is written, not merely folded', async () => {
  const store = newStore();
  const bucket = 'races-lag';
  await store.append(k, deposit(1));
  const projector = await startProjector(store, balances(), { bucket });
  await projector.caughtUp;
  const storage = (projector as unknown as { storage: Storage }).storage;
  const commit = storage.commit.bind(storage);
  const held = gate();
  const holding = gate();
  storage.commit = async (values, ...rest) => {
    holding.open();
    await held.opened;
    return commit(values, ...rest);
  };
  await store.append(k, deposit(10));
  await holding.opened; // folded, its flush held
  expect(await projector.lag()).toBe(1);
  held.open();
  expect(
    await eventually(
      () => projector.lag(),
      (lag) => lag === 0,
    ),
  ).toBe(0);
  expect((await openView<Balance>(store, balances(), { bucket }).get('k'))?.state.count).toBe(2);
  await projector.stop();
});
