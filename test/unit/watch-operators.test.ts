import { TestScheduler } from 'rxjs/testing';
import { lastValueFrom, Observable, toArray, take } from 'rxjs';
import { describe, expect, test, vi } from 'vitest';
import {
  foldState,
  foldWatch,
  liveState,
  onlyEvents,
  shareLive,
  toStore,
  type EnvelopeOf,
  type WatchMessage,
} from '../../src/index.js';
import { createMemoryEventStore } from '../../src/testing/index.js';

type Events = { Added: { n: number } };
type Message = WatchMessage<Events>;

const progress = { delivered: 0, pending: 0, caughtUp: false };
const event = (n: number, sequence = n): Message => ({
  kind: 'event',
  event: { type: 'Added', data: { n }, sequence } as EnvelopeOf<Events>,
  progress,
});
const caughtUp = (sequence: number): Message => ({ kind: 'caught-up', sequence, progress });
const sum = { initial: 0, evolve: (s: number, e: EnvelopeOf<Events>) => s + e.data.n };

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('watch operators (marbles)', () => {
  test('onlyEvents drops markers', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold<Message>('a-c-b|', { a: event(1), c: caughtUp(1), b: event(2) });
      const envelope = (m: Message) => (m.kind === 'event' ? m.event : undefined);
      expectObservable(source.pipe(onlyEvents())).toBe('a---b|', {
        a: envelope(event(1)),
        b: envelope(event(2)),
      });
    });
  });

  test('foldWatch is silent during catch-up, emits at caught-up, then per live event', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold<Message>('abc-d-e|', {
        a: event(1),
        b: event(2),
        c: caughtUp(2),
        d: event(3),
        e: event(4),
      });
      expectObservable(source.pipe(foldWatch(sum))).toBe('--x-y-z|', {
        x: { state: 3, version: 2, caughtUp: true },
        y: { state: 6, version: 3, caughtUp: true },
        z: { state: 10, version: 4, caughtUp: true },
      });
    });
  });

  test("foldWatch's version counts malformed events, as load's does, so it works as expect", () => {
    const malformed = (sequence: number): Message => ({
      kind: 'malformed',
      malformed: { sequence, subject: 's', raw: new Uint8Array(), error: new Error('bad') as never },
      progress,
    });
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold<Message>('abc-d-e|', {
        a: event(1),
        b: malformed(2),
        c: caughtUp(2),
        d: malformed(3),
        e: event(4),
      });
      expectObservable(source.pipe(foldWatch(sum))).toBe('--x-y-z|', {
        x: { state: 1, version: 2, caughtUp: true },
        y: { state: 1, version: 3, caughtUp: true },
        z: { state: 5, version: 4, caughtUp: true },
      });
    });
  });

  test('foldState emits only changes', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold<Message>('ac-z-d|', {
        a: event(1),
        c: caughtUp(1),
        z: event(0, 2),
        d: event(5, 3),
      });
      expectObservable(source.pipe(foldState(sum))).toBe('-x---y|', { x: 1, y: 6 });
    });
  });

  test('shareLive keeps one source through a grace period and replays the latest value', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a-b-c-d-e-f-g-h-i-j|');
      const shared = source.pipe(shareLive(4));
      expectObservable(shared, '^--!').toBe('a-b-');
      // c arrived at frame 4 with nobody listening; the grace period kept it for the late subscriber.
      expectObservable(shared, '-----^---!').toBe('-----cd-e-');
      expectSubscriptions(source.subscriptions).toBe('^------------!');
    });
  });
});

describe('toStore', () => {
  test('snapshot follows the Observable; the first listener starts it and the last stops it', async () => {
    const store = createMemoryEventStore<Events>({ tenant: 't' });
    const entity = { type: 'counter', id: 'c' };
    const external = toStore(store.watch(entity).pipe(foldState(sum)), -1);
    expect(external.getSnapshot()).toBe(-1);
    let changes = 0;
    const off = external.subscribe(() => changes++);
    // The watch starts once subscribe has returned, as on JetStream: then it is caught up.
    expect(external.getSnapshot()).toBe(-1);
    await vi.waitFor(() => expect(external.getSnapshot()).toBe(0));
    await store.append(entity, { type: 'Added', data: { n: 5 } });
    expect(external.getSnapshot()).toBe(5);
    off();
    await store.append(entity, { type: 'Added', data: { n: 1 } });
    expect(external.getSnapshot()).toBe(5);
    expect(changes).toBe(2);
  });

  test('an error is rethrown by getSnapshot', async () => {
    const store = createMemoryEventStore<Events>({ tenant: 't' });
    store.appendRaw({
      subject: store.format.scheme.event({ type: 'x', id: 'y' }, 'Added'),
      data: new TextEncoder().encode('{bad'),
    });
    const external = toStore(store.watch(), undefined);
    external.subscribe(() => undefined);
    await vi.waitFor(() => expect(() => external.getSnapshot()).toThrow(/malformed/));
  });

  test('a restart after the last listener left starts clean, as an error boundary retry needs', () => {
    let attempt = 0;
    const flaky = new Observable<number>((subscriber) => {
      if (++attempt === 1) subscriber.error(new Error('first run fails'));
      else subscriber.next(42);
    });
    const external = toStore(flaky, 0);
    const off = external.subscribe(() => undefined);
    expect(() => external.getSnapshot()).toThrow('first run fails');
    off();
    external.subscribe(() => undefined);
    expect(external.getSnapshot()).toBe(42);
  });
});

describe('memory store watch', () => {
  test('history, caught-up, then live, like the JetStream store', async () => {
    const store = createMemoryEventStore<Events>({ tenant: 't' });
    const entity = { type: 'counter', id: 'c' };
    await store.append(entity, [
      { type: 'Added', data: { n: 1 } },
      { type: 'Added', data: { n: 2 } },
    ]);
    const result = lastValueFrom(store.watch(entity).pipe(take(4), toArray()));
    await store.append(entity, { type: 'Added', data: { n: 3 } });
    const kinds = (await result).map((m) => (m.kind === 'event' ? m.event.sequence : m.kind));
    expect(kinds).toEqual([1, 2, 'caught-up', 3]);
  });
});

describe('folds given by plain JavaScript', () => {
  test('a fold without an evolve function is refused when the operator is made, not at the first event', () => {
    const store = createMemoryEventStore<Events>({ tenant: 't' });
    const makers = [
      () => foldWatch(null as never),
      () => foldState({ initial: 0 } as never),
      () => liveState(store, { type: 'counter', id: 'c' }, { initial: 0, evolve: 3 } as never),
    ];
    for (const make of makers) expect(make).toThrow(/^invalid evolver.*: pass \{ initial, evolve/);
  });

  test('an evolver written as a class keeps its this, in load and in foldWatch', async () => {
    class Summer {
      readonly initial = 0;
      private readonly weight = 10;
      evolve(total: number, e: EnvelopeOf<Events>) {
        return total + e.data.n * this.weight;
      }
    }
    const store = createMemoryEventStore<Events>({ tenant: 't' });
    await store.append({ type: 'counter', id: 'c' }, [
      { type: 'Added', data: { n: 1 } },
      { type: 'Added', data: { n: 2 } },
    ]);
    expect((await store.load({ type: 'counter', id: 'c' }, new Summer())).state).toBe(30);
    const folded = await lastValueFrom(
      store.watch({ type: 'counter', id: 'c' }, { noWait: true }).pipe(foldState(new Summer())),
    );
    expect(folded).toBe(30);
  });
});
