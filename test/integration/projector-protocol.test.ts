// The projector's restart and dead-letter protocol under random schedules: instances start,
// stop, crash (their connection dies mid-flight) and run two at once; deploys switch between
// code that cannot fold or key some events and code that can; events are appended, and
// letters replayed and dismissed. Whatever the schedule, once fixed code has caught up and
// every letter is replayed, each key's value must hold each of its events exactly once (a
// dismissed one at most once). The state records the sequences folded, so a double or a
// lost fold shows.
// More seeds: PROJECTOR_SEEDS=200 npx vitest run test/integration/projector-protocol.test.ts
// One seed again: PROJECTOR_SEED=102948 npx vitest run …
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore, defineView, UnavailableError, type JetStreamEventStore } from '../../src/index.js';
import { DeadLetterNotFoundError, ensureStore, startProjector, type Projector } from '../../src/server.js';
import { DeadLetters } from '../../src/processing/dead-letters.js';
import { ViewKeys } from '../../src/views/define-view.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';
import { int, pick, prng, type Rand } from '../support/random.js';

type Items = { Added: { poison: boolean; keyless: boolean } };
type Folds = { sequences: number[] };

const STREAM = 'PROTOCOL_EVENTS';
const KEYS = ['a', 'b', 'c'];
const STEPS = 80;
const SEEDS = Number(process.env.PROJECTOR_SEEDS ?? 40);

/** Broken code cannot fold poison events, nor name the key of keyless ones. */
const folds = (fixed: boolean) =>
  defineView<Folds, Items>({
    name: 'folds',
    version: 1,
    filter: { entityType: 'item' },
    initial: { sequences: [] },
    key: (e) => {
      if (!fixed && e.data.keyless) throw new Error(`no key for #${e.sequence}`);
      return e.entity.id;
    },
    evolve: (s, e) => {
      if (!fixed && e.data.poison) throw new Error(`cannot fold #${e.sequence}`);
      return { sequences: [...s.sequences, e.sequence] };
    },
  });

let t: TestServer;
let nc: NatsConnection;
beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream: STREAM, prefix: 'proto' });
});
afterAll(() => t.close());

interface Instance {
  readonly connection: NatsConnection;
  readonly projector: Projector;
  readonly fixed: boolean;
}

/** One schedule: what it did, for the failure message, and the facts to check at the end. */
class Schedule {
  readonly log: string[] = [];
  readonly running: Instance[] = [];
  readonly keyOf = new Map<number, string>();
  readonly dismissed = new Set<number>();
  /** The code deployed: instances run it from their start, and a deploy stops them all first. */
  fixed = false;
  private readonly store: JetStreamEventStore<Items>;

  constructor(
    private readonly rand: Rand,
    readonly tenant: string,
    readonly bucket: string,
  ) {
    this.store = createEventStore<Items>({ connection: nc, tenant, prefix: 'proto', stream: STREAM });
  }

  private event() {
    return { type: 'Added' as const, data: { poison: this.rand() < 0.25, keyless: this.rand() < 0.15 } };
  }

  async append(): Promise<void> {
    const keys = KEYS.filter(() => this.rand() < 0.5);
    const writes = (keys.length ? keys : [pick(this.rand, KEYS)]).map((id) => ({
      entity: { type: 'item', id },
      events: Array.from({ length: int(this.rand, 1, 3) }, () => this.event()),
    }));
    const results = await this.store.appendAll(writes);
    writes.forEach((w, i) => results[i]!.sequences.forEach((s) => this.keyOf.set(s, w.entity.id)));
    this.log.push(`append ${writes.map((w) => `${w.entity.id}×${w.events.length}`).join(' ')}`);
  }

  async start(): Promise<void> {
    const connection = await t.connect();
    const store = createEventStore<Items>({
      connection,
      tenant: this.tenant,
      prefix: 'proto',
      stream: STREAM,
    });
    const batchSize = int(this.rand, 1, 4);
    const projector = await startProjector(store, folds(this.fixed), {
      bucket: this.bucket,
      batchSize,
      maxAttempts: 1,
      deadLetters: await DeadLetters.open(connection),
    });
    // Errors surface through the checks at the end; an unobserved rejection must not.
    projector.caughtUp.catch(() => undefined);
    this.running.push({ connection, projector, fixed: this.fixed });
    this.log.push(`start ${this.fixed ? 'fixed' : 'broken'} batch ${batchSize}`);
  }

  private take(): Instance | undefined {
    if (this.running.length === 0) return undefined;
    return this.running.splice(int(this.rand, 0, this.running.length - 1), 1)[0];
  }

  async stop(): Promise<void> {
    const instance = this.take();
    if (!instance) return;
    await instance.projector.stop();
    await instance.connection.close();
    this.log.push('stop');
  }

  /**
   * The process dies: its connection goes, with whatever it had not yet written. At once,
   * or after a random moment of folding, flushing or replaying.
   */
  async crash(instance = this.take()): Promise<void> {
    if (!instance) return;
    await new Promise((r) => setTimeout(r, this.rand() < 0.5 ? 0 : int(this.rand, 0, 6)));
    await instance.connection.close();
    await instance.projector.done.catch(() => undefined);
    this.log.push('crash');
  }

  /** Deploys fixed or broken code: every instance running the old code goes first. */
  async deploy(fixed: boolean): Promise<void> {
    while (this.running.length) await (this.rand() < 0.5 ? this.stop() : this.crash());
    this.fixed = fixed;
    this.log.push(`deploy ${fixed ? 'fixed' : 'broken'}`);
  }

  /**
   * Fixed code folds the letter's event. Broken code fails and the letter stays, unless
   * the event is in its value already (a stale letter, which any code only removes).
   */
  async replay(): Promise<void> {
    const instance = pick(this.rand, [...this.running, undefined]);
    const letters = await instance?.projector.deadLetters();
    if (!instance || !letters?.length) return;
    const { sequence } = pick(this.rand, letters);
    this.log.push(`replay #${sequence}`);
    if (instance.fixed && this.rand() < 0.5) {
      // Cut short: the fold may be written and the letter not yet removed.
      const replayed = instance.projector.replayDeadLetter(sequence).catch(() => undefined);
      this.running.splice(this.running.indexOf(instance), 1);
      await this.crash(instance);
      return replayed;
    }
    if (instance.fixed) return ignoreGone(instance.projector.replayDeadLetter(sequence));
    const failed = await instance.projector.replayDeadLetter(sequence).then(
      () => false,
      (err: Error) => (expect(err.message).toContain(`#${sequence}`), true),
    );
    const left = (await instance.projector.deadLetters()).map((l) => l.sequence);
    expect(left.includes(sequence)).toBe(failed);
  }

  async dismiss(): Promise<void> {
    const instance = pick(this.rand, [...this.running, undefined]);
    const letters = await instance?.projector.deadLetters();
    if (!instance || !letters?.length) return;
    const { sequence } = pick(this.rand, letters);
    // Marked before the call: a dismissal whose answer is lost may still have happened.
    this.dismissed.add(sequence);
    this.log.push(`dismiss #${sequence}`);
    await ignoreGone(instance.projector.dismissDeadLetter(sequence));
  }

  /** Fixed code catches up and replays every letter left; then everything stops cleanly. */
  async settle(): Promise<Projector> {
    if (!this.fixed) await this.deploy(true);
    if (this.running.length === 0) await this.start();
    await Promise.all(this.running.map((i) => i.projector.caughtUp));
    const last = this.running[0]!.projector;
    for (let letters = await last.deadLetters(); letters.length; letters = await last.deadLetters())
      for (const { sequence } of letters)
        // Unavailable: the other instances kept writing the key; the next round tries again.
        await ignoreGone(last.replayDeadLetter(sequence)).catch((err: unknown) => {
          if (!(err instanceof UnavailableError)) throw err;
        });
    for (const { projector } of this.running)
      expect(
        await eventually(
          () => projector.lag(),
          (lag) => lag === 0,
        ),
      ).toBe(0);
    // Lag counts events folded, not written: stopping writes what each instance holds.
    await Promise.all(this.running.map((i) => i.projector.stop()));
    return last;
  }

  async values(): Promise<Map<string, number[]>> {
    const kv = await new Kvm(nc).open(this.bucket);
    const keys = new ViewKeys(this.tenant, 'folds');
    const values = new Map<string, number[]>();
    for (const key of KEYS) {
      const entry = await kv.get(keys.entry(1, key));
      if (entry?.operation === 'PUT') values.set(key, entry.json<{ state: Folds }>().state.sequences);
    }
    return values;
  }
}

/** Another instance (or an earlier call) may have removed the letter first. */
async function ignoreGone(call: Promise<void>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof DeadLetterNotFoundError)) throw err;
  }
}

const seeds = process.env.PROJECTOR_SEED
  ? [Number(process.env.PROJECTOR_SEED)]
  : Array.from({ length: SEEDS }, (_, i) => 1 + i * 7919);

test.each(seeds)('seed %i: every event is folded exactly once', { timeout: 120_000 }, async (seed) => {
  const rand = prng(seed);
  const schedule = new Schedule(rand, unique('tenant'), unique('bucket'));
  try {
    for (let step = 0; step < STEPS; step++) {
      const roll = rand();
      if (roll < 0.15) await schedule.append();
      // While running instances fold the new events live.
      else if (roll < 0.3) await Promise.all([schedule.append(), schedule.replay()]);
      else if (roll < 0.42) await (schedule.running.length < 2 ? schedule.start() : schedule.append());
      else if (roll < 0.48) await schedule.stop();
      else if (roll < 0.58) await schedule.crash();
      else if (roll < 0.82) await schedule.replay();
      else if (roll < 0.88) await schedule.dismiss();
      else await schedule.deploy(rand() < 0.5);
      // Give running instances a random share of time before the next step, or none.
      if (rand() < 0.7) await new Promise((r) => setTimeout(r, int(rand, 0, 15)));
    }
    const projector = await schedule.settle();
    expect(await projector.deadLetters()).toEqual([]);
    const values = await schedule.values();
    for (const key of KEYS) {
      const folded = values.get(key) ?? [];
      const expected = [...schedule.keyOf].filter(([, k]) => k === key).map(([sequence]) => sequence);
      // Each at most once, only the key's own, and every one not dismissed.
      expect(new Set(folded).size, `${key} folded an event twice: ${folded}`).toBe(folded.length);
      expect(folded.filter((s) => schedule.keyOf.get(s) !== key)).toEqual([]);
      expect(expected.filter((s) => !folded.includes(s) && !schedule.dismissed.has(s))).toEqual([]);
    }
  } catch (err) {
    throw new Error(`seed ${seed} after: ${schedule.log.join('; ')}`, { cause: err });
  } finally {
    await Promise.all(schedule.running.map((i) => i.projector.stop().catch(() => undefined)));
    await Promise.all(schedule.running.map((i) => i.connection.close().catch(() => undefined)));
  }
});
