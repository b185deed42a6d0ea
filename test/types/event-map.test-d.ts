// One event map types append, read, watch, load, views and operators; mistakes are compile errors.
import type { Observable } from 'rxjs';
import { describe, expectTypeOf, test } from 'vitest';
import {
  ConcurrencyError,
  createEventStore,
  defineView,
  foldState,
  foldWatch,
  isJetsourceError,
  liveState,
  onlyEvents,
  openView,
  type AppendResult,
  type EnvelopeOf,
  type EventEnvelope,
  type EventReader,
  type EventSchemas,
  type JetsourceErrorCode,
  type LiveState,
  type Loaded,
  type ViewEntry,
  type ViewReader,
  type WatchMessage,
} from 'jetsource';
import { startProcessor, startProjector, type Projector } from 'jetsource/server';
import type { NatsConnection } from '@nats-io/nats-core';
import type { StandardSchemaV1 } from '@standard-schema/spec';

type Bank = {
  Opened: { owner: string };
  Deposited: { amount: number };
};

declare const nc: NatsConnection;
const store = createEventStore<Bank>({ connection: nc, tenant: 'acme' });
const account = { type: 'account', id: 'a1' };

describe('append', () => {
  test('takes events of the map, one or many', () => {
    expectTypeOf(store.append(account, { type: 'Opened', data: { owner: 'Ann' } })).toEqualTypeOf<
      Promise<AppendResult>
    >();
    void store.append(
      account,
      [
        { type: 'Opened', data: { owner: 'Ann' } },
        { type: 'Deposited', data: { amount: 5 } },
      ],
      { expect: 'new' },
    );
    void store.appendAll([
      { entity: account, events: [{ type: 'Deposited', data: { amount: 1 } }], expect: 3 },
    ]);
  });

  test('refuses an event type outside the map', () => {
    // @ts-expect-error -- 'Withdrawn' is not a Bank event
    void store.append(account, { type: 'Withdrawn', data: { amount: 5 } });
    // @ts-expect-error -- appendAll checks every entity's events
    void store.appendAll([{ entity: account, events: [{ type: 'Closed', data: {} }] }]);
  });

  test('refuses data that does not match its type', () => {
    // @ts-expect-error -- amount is a number
    void store.append(account, { type: 'Deposited', data: { amount: '5' } });
    // @ts-expect-error -- Opened carries an owner, not an amount
    void store.append(account, { type: 'Opened', data: { amount: 5 } });
    // @ts-expect-error -- data is required
    void store.append(account, { type: 'Deposited' });
  });

  test('refuses an expectation that is not a version', () => {
    // @ts-expect-error -- 'latest' is not 'any' | 'new' | number
    void store.append(account, { type: 'Opened', data: { owner: 'Ann' } }, { expect: 'latest' });
  });
});

describe('event maps', () => {
  test('an interface is an event map as well as a type alias', async () => {
    interface Shop {
      Ordered: { sku: string };
      Shipped: { parcels: number };
    }
    const shop = createEventStore<Shop>({ connection: nc, tenant: 'acme' });
    void shop.append({ type: 'order', id: 'o1' }, { type: 'Shipped', data: { parcels: 2 } });
    // @ts-expect-error -- parcels is a number
    void shop.append({ type: 'order', id: 'o1' }, { type: 'Shipped', data: { parcels: '2' } });
    for await (const e of shop.read({ eventType: 'Ordered' }))
      expectTypeOf(e.data).toEqualTypeOf<{ sku: string }>();
  });
});

describe('read and load', () => {
  test('read yields the envelope union, narrowed by type', async () => {
    for await (const e of store.read(account)) {
      expectTypeOf(e).toEqualTypeOf<EnvelopeOf<Bank>>();
      if (e.type === 'Deposited') expectTypeOf(e.data).toEqualTypeOf<{ amount: number }>();
      else expectTypeOf(e.data).toEqualTypeOf<{ owner: string }>();
      // @ts-expect-error -- no such event type in the map
      if (e.type === 'Withdrawn') void e;
    }
  });

  test('a filter naming an event type reads and watches that type only', async () => {
    for await (const e of store.read({ entityType: 'account', eventType: 'Deposited' })) {
      expectTypeOf(e).toEqualTypeOf<EventEnvelope<'Deposited', { amount: number }>>();
      expectTypeOf(e.data.amount).toBeNumber();
    }
    const opened = store.watch({ eventType: 'Opened' }).pipe(onlyEvents());
    expectTypeOf(opened).toEqualTypeOf<Observable<EventEnvelope<'Opened', { owner: string }>>>();
    // A reader of some events fits where a reader of all of them is expected.
    const some: EventReader<Bank> = store.read({ eventType: 'Opened' });
    const watched: Observable<WatchMessage<Bank>> = store.watch({ eventType: 'Opened' });
    void [some, watched];
    // @ts-expect-error -- no such event type in the map
    void store.read({ eventType: 'Deposted' });
    // @ts-expect-error -- no such event type in the map
    void store.watch({ entityType: 'account', eventType: 'Withdrawn' });
    // Without a map, any event type, typed by its name.
    const untyped = createEventStore({ connection: nc, tenant: 'acme' });
    for await (const e of untyped.read({ eventType: 'Renamed' }))
      expectTypeOf(e.type).toEqualTypeOf<'Renamed'>();
  });

  test('a target is an entity or a filter, never a mix of the two', () => {
    void store.read({ entityType: 'account', eventType: 'Opened' });
    const domainObject = { ...account, owner: 'Ann' };
    void store.read(domainObject);
    // @ts-expect-error -- id belongs to an entity, entityType to a filter
    void store.read({ entityType: 'account', id: 'a1' });
    // @ts-expect-error -- an entity takes no eventType
    void store.watch({ type: 'account', id: 'a1', eventType: 'Opened' });
    // @ts-expect-error -- a misspelt key, beside an event type
    void store.read({ eventType: 'Opened', entityTyp: 'account' });
  });

  test('load infers the state from the evolver', () => {
    const loaded = store.load(account, {
      initial: 0,
      evolve: (total, e) => (e.type === 'Deposited' ? total + e.data.amount : total),
    });
    expectTypeOf(loaded).toEqualTypeOf<Promise<Loaded<number>>>();
    // @ts-expect-error -- Opened has no amount
    void store.load(account, { initial: 0, evolve: (total, e) => total + e.data.amount });
  });
});

describe('watch and operators', () => {
  test('watch emits messages of the map', () => {
    const watch = store.watch({ entityType: 'account' });
    expectTypeOf(watch).toEqualTypeOf<Observable<WatchMessage<Bank>>>();
    watch.subscribe((m) => {
      if (m.kind === 'event') expectTypeOf(m.event).toEqualTypeOf<EnvelopeOf<Bank>>();
      if (m.kind === 'caught-up') expectTypeOf(m.sequence).toBeNumber();
    });
    expectTypeOf(watch.pipe(onlyEvents())).toEqualTypeOf<Observable<EnvelopeOf<Bank>>>();
  });

  test('foldState and foldWatch infer the event from the watch and the state from initial', () => {
    const balance = store.watch(account).pipe(
      foldState({
        initial: 0,
        evolve: (total, e) => (e.type === 'Deposited' ? total + e.data.amount : total),
      }),
    );
    expectTypeOf(balance).toEqualTypeOf<Observable<number>>();
    const owner = store
      .watch(account)
      .pipe(
        foldWatch({ initial: '', evolve: (name: string, e) => (e.type === 'Opened' ? e.data.owner : name) }),
      );
    expectTypeOf(owner).toEqualTypeOf<Observable<LiveState<string>>>();
    expectTypeOf(liveState(store, account, { initial: 0, evolve: (n: number) => n + 1 })).toEqualTypeOf<
      Observable<LiveState<number>>
    >();
    store.watch(account).pipe(
      // @ts-expect-error -- the watch's events have no 'Withdrawn'
      foldState({
        initial: 0,
        evolve: (total, e: EventEnvelope<'Withdrawn', { amount: number }>) => total + e.data.amount,
      }),
    );
  });
});

describe('views', () => {
  const balances = defineView<number, Bank>({
    name: 'balances',
    version: 1,
    filter: { entityType: 'account' },
    initial: 0,
    evolve: (total, e) => {
      expectTypeOf(e).toEqualTypeOf<EnvelopeOf<Bank>>();
      return e.type === 'Deposited' ? total + e.data.amount : total;
    },
  });

  test("startProjector takes the store's own views, and views written for any events", () => {
    const counts = defineView({
      name: 'counts',
      version: 1,
      filter: {},
      initial: 0,
      evolve: (n: number) => n + 1,
    });
    expectTypeOf(startProjector(store, counts)).toEqualTypeOf<Promise<Projector>>();
    expectTypeOf(startProjector(store, balances)).toEqualTypeOf<Promise<Projector>>();
    const other = defineView<number, { Shipped: { parcels: number } }>({
      name: 'parcels',
      version: 1,
      filter: {},
      initial: 0,
      evolve: (n, e) => n + e.data.parcels,
    });
    // @ts-expect-error -- a view of another event map does not fit this store
    void startProjector(store, other);
  });

  test('openView infers the state from a definition, and checks one it is told', () => {
    expectTypeOf(openView(store, balances)).toEqualTypeOf<ViewReader<number>>();
    expectTypeOf(openView<number>(store, { name: 'balances', version: 1 })).toEqualTypeOf<
      ViewReader<number>
    >();
    // @ts-expect-error -- balances folds numbers, not strings
    openView<string>(store, balances);
    const view = openView<number>(store, balances);
    expectTypeOf(view.get('a1')).toEqualTypeOf<Promise<ViewEntry<number> | null>>();
    expectTypeOf(view.watch('a1')).toEqualTypeOf<Observable<ViewEntry<number> | null>>();
    expectTypeOf(view.watchAll()).toEqualTypeOf<Observable<ReadonlyMap<string, ViewEntry<number>>>>();
  });

  test('a view evolve must return its state type', () => {
    defineView<number, Bank>({
      name: 'bad',
      version: 1,
      filter: {},
      initial: 0,
      // @ts-expect-error -- returns a string, the state is a number
      evolve: (_total, e) => e.type,
    });
  });

  test("a view's filter names one of the map's event types", () => {
    defineView<number, Bank>({
      name: 'opened',
      version: 1,
      // @ts-expect-error -- no such event type in the map
      filter: { eventType: 'Openned' },
      initial: 0,
      evolve: (n) => n + 1,
    });
  });
});

describe('processors', () => {
  test("a filter naming an event type types the handler's events as that type", () => {
    void startProcessor({
      store,
      name: 'welcome',
      filter: { entityType: 'account', eventType: 'Opened' },
      handler: (e) => {
        expectTypeOf(e).toEqualTypeOf<EventEnvelope<'Opened', { owner: string }>>();
        expectTypeOf(e.data.owner).toBeString();
      },
    });
    // A handler written for every event fits a narrower filter.
    const anyEvent = (e: EnvelopeOf<Bank>) => void e;
    void startProcessor({ store, name: 'log', filter: { eventType: 'Deposited' }, handler: anyEvent });
    // A handler of one type does not fit a filter that lets others through.
    const openedOnly = (e: EventEnvelope<'Opened', { owner: string }>) => void e;
    // @ts-expect-error -- Deposited events would reach a handler of Opened ones
    void startProcessor({ store, name: 'wrong', filter: { entityType: 'account' }, handler: openedOnly });
  });

  test('without an event type, the handler gets the envelope union', () => {
    void startProcessor({
      store,
      name: 'all',
      filter: { entityType: 'account' },
      handler: (e) => void expectTypeOf(e).toEqualTypeOf<EnvelopeOf<Bank>>(),
    });
    void startProcessor({
      store,
      name: 'tenant',
      handler: (e) => void expectTypeOf(e).toEqualTypeOf<EnvelopeOf<Bank>>(),
    });
    // @ts-expect-error -- no such event type in the map
    void startProcessor({ store, name: 'typo', filter: { eventType: 'Opend' }, handler: () => undefined });
  });
});

declare const amount: StandardSchemaV1<unknown, { amount: number }>;
declare const owner: StandardSchemaV1<unknown, { owner: string }>;

describe('schemas and errors', () => {
  test('schemas are keyed by the map and typed by its data', () => {
    expectTypeOf({ Opened: owner, Deposited: amount }).toMatchTypeOf<EventSchemas<Bank>>();
    // @ts-expect-error -- Opened has no schema: the store would refuse Opened events
    createEventStore<Bank>({ connection: nc, tenant: 'acme', schemas: { Deposited: amount } });
    // @ts-expect-error -- 'Withdrawn' is not a Bank event
    const extra: EventSchemas<Bank> = { Opened: owner, Deposited: amount, Withdrawn: amount };
    // @ts-expect-error -- this schema's output is not Opened's data
    const wrong: EventSchemas<Bank> = { Opened: amount, Deposited: amount };
    void [extra, wrong];
  });

  test('isJetsourceError narrows to the error with its code', () => {
    const err: unknown = new Error('x');
    if (isJetsourceError(err, 'CONCURRENCY')) {
      expectTypeOf(err).toEqualTypeOf<ConcurrencyError>();
      expectTypeOf(err.expected).toEqualTypeOf<number | 'new'>();
    }
    if (isJetsourceError(err, 'PROCESSOR_CONFIG')) expectTypeOf(err.problems).toEqualTypeOf<string[]>();
    if (isJetsourceError(err, 'DEAD_LETTER_NOT_FOUND')) expectTypeOf(err.sequence).toEqualTypeOf<number>();
    if (isJetsourceError(err)) expectTypeOf(err.code).toEqualTypeOf<JetsourceErrorCode>();
    // @ts-expect-error -- not an error code
    isJetsourceError(err, 'CONFLICT');
  });
});
