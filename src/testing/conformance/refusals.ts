import { Header } from '../../codec/metadata.js';
import type { ConformanceCase } from './harness.js';
import { equal, rejects, called, all, account, deposit, seqs, balance, encode } from './support.js';

/** Bad input refused up front, and malformed stored events raised or reported. */
export const refusalsCases: ReadonlyArray<ConformanceCase> = [
  {
    name: 'metadata headers cannot carry, and empty or misplaced arguments, are refused up front',
    async run(h) {
      const store = await h.store();
      const refused: Array<[string, Promise<unknown>]> = [
        ['padded id', store.append(account('a'), { ...deposit(1), id: ' id ' })],
        // The server ignores an empty message id, which would make a retry store it again.
        ['empty id', store.append(account('a'), { ...deposit(1), id: '' })],
        ['padded meta value', store.append(account('a'), { ...deposit(1), meta: { note: 'x ' } })],
        ['two-line correlation id', store.append(account('a'), deposit(1), { correlationId: 'a\nb' })],
        ['fractional schemaVersion', store.append(account('a'), { ...deposit(1), schemaVersion: 1.5 })],
        ['negative schemaVersion', store.append(account('a'), { ...deposit(1), schemaVersion: -1 })],
        [
          'expect in appendAll options',
          store.appendAll([{ entity: account('a'), events: [deposit(1)] }], { expect: 'new' } as never),
        ],
      ];
      for (const [what, append] of refused) await rejects(append, 'INVALID_ARGUMENT', what);
      await rejects(store.appendAll([]), 'INVALID_ARGUMENT', 'no writes');
      await rejects(store.append(account('a'), []), 'INVALID_ARGUMENT', 'no events');
      equal((await all(store.read())).length, 0, 'nothing written');
      await store.append(account('a'), {
        ...deposit(1),
        schemaVersion: 2,
        meta: { note: 'inner  spaces ok' },
      });
      const [stored] = await all(store.read());
      equal(
        [stored?.schemaVersion, stored?.meta],
        [2, { note: 'inner  spaces ok' }],
        'valid metadata round-trips',
      );
    },
  },
  {
    name: 'arguments of the wrong shape, as plain JavaScript may pass them, are InvalidArgumentErrors, not TypeErrors',
    async run(h) {
      const store = await h.store();
      // Untyped, as a plain JavaScript caller sees the store.
      const js = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const untyped = store as unknown as Record<string, (...args: unknown[]) => unknown>;
      const watched = (options: unknown) =>
        new Promise<void>((resolve, reject) =>
          (untyped.watch!(account('a'), options) as ReturnType<typeof store.watch>).subscribe({
            error: reject,
            complete: resolve,
          }),
        );
      const write = { entity: account('a'), events: [deposit(1)] };
      const refused: Array<[string, () => Promise<unknown>]> = [
        ['no events', () => js.append!(account('a'), null)],
        ['an event that is no object', () => js.append!(account('a'), [deposit(1), 'Deposited'])],
        ['options that are no object', () => js.append!(account('a'), deposit(1), 'new')],
        ['writes that are no array', () => js.appendAll!(write)],
        ['a write without events', () => js.appendAll!([{ entity: account('a') }])],
        ['a write that is no object', () => js.appendAll!([write, null])],
        ['appendAll options that are no object', () => js.appendAll!([write], 'x')],
        ['load without an evolver', () => js.load!(account('a'))],
        ['load whose evolve is no function', () => js.load!(account('a'), { initial: 0, evolve: 3 })],
        ['load options that are no object', () => js.load!(account('a'), balance, 'report')],
        // Refused when called or when iterated, as a bad target is.
        ['read options that are no object', async () => all(untyped.read!(account('a'), 'new') as never)],
        ["watch options that are no object ('new' would replay everything)", () => watched('new')],
      ];
      for (const [what, call] of refused) await rejects(called(call), 'INVALID_ARGUMENT', what);
      equal((await all(store.read())).length, 0, 'nothing written');
      // A spread of optional fields may leave expect undefined: that is no expectation.
      await store.appendAll([write], { expect: undefined } as never);
      equal((await all(store.read())).length, 1, 'appendAll with expect: undefined');
    },
  },
  {
    name: 'schemas validate writes: bad data and unknown types are refused before anything is written',
    async run(h) {
      const store = await h.store({ validated: true });
      await rejects(
        store.append(account('a'), { type: 'Deposited', data: { amount: 'lots' } } as never),
        'VALIDATION',
        'bad data',
      );
      await rejects(
        store.append(account('a'), { type: 'Exploded', data: {} } as never),
        'VALIDATION',
        'unknown type',
      );
      await rejects(
        store.append(account('a'), [deposit(1), { type: 'Deposited', data: {} } as never]),
        'VALIDATION',
        '2nd event',
      );
      equal((await all(store.read())).length, 0, 'nothing written');
      await store.append(account('a'), deposit(1));
      equal((await all(store.read())).length, 1, 'valid data is written');
    },
  },
  {
    name: 'malformed stored events raise a typed error, or are reported beside the good ones',
    async run(h) {
      const store = await h.store({ validated: true });
      const good1 = await store.append(account('a'), deposit(1));
      const raw = (eventType: string, json: string, id: string) =>
        h.injectRaw(store, {
          entity: account('a'),
          eventType,
          data: encode(json),
          headers: [[Header.Id, id]],
        });
      await raw('Deposited', '{not json', 'bad-json');
      await raw('Deposited', '{"amount":"x"}', 'bad-data');
      await raw('Exploded', '{}', 'bad-type');
      const good2 = await store.append(account('a'), deposit(2));
      const err = (await rejects(all(store.read(account('a'))), 'MALFORMED_EVENT', 'default read')) as {
        sequence: number;
        raw: Uint8Array;
        reason: string;
      };
      equal(
        [err.sequence, err.reason, new TextDecoder().decode(err.raw)],
        [good1.version + 1, 'json', '{not json'],
        'error',
      );
      const reader = store.read(account('a'), { onMalformed: 'report' });
      equal(seqs(await all(reader)), [good1.version, good2.version], 'good events still read');
      equal(
        reader.malformed.map((m) => m.error.reason),
        ['json', 'validation', 'unknown-type'],
        'reported',
      );
      equal(
        reader.malformed.map((m) => m.sequence),
        [1, 2, 3].map((i) => good1.version + i),
        'reported sequences',
      );
      await rejects(store.load(account('a'), balance), 'MALFORMED_EVENT', 'load does not skip');
      // Reported, the entity still loads, and its version counts the malformed events.
      await raw('Deposited', '{not json', 'bad-last');
      const loaded = await store.load(account('a'), balance, { onMalformed: 'report' });
      equal([loaded.state, loaded.version], [3, good2.version + 1], 'load reporting');
      equal(
        loaded.malformed.map((m) => m.sequence),
        [1, 2, 3, 5].map((i) => good1.version + i),
        'load reported',
      );
      const next = await store.append(account('a'), deposit(4), { expect: loaded.version });
      equal(next.version, loaded.version + 1, 'an append expecting that version holds');
    },
  },
  {
    name: 'an atomic append over the batch limit is refused up front',
    async run(h) {
      const store = await h.store();
      const events = Array.from({ length: h.maxBatch + 1 }, (_, i) => deposit(i));
      await rejects(store.append(account('big'), events), 'BATCH_TOO_LARGE', 'over the limit');
      equal((await all(store.read())).length, 0, 'nothing written');
    },
  },
];
