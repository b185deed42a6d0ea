import { describe, expect, test } from 'vitest';
import {
  afterOverwrite,
  foldedInOrder,
  foldedLate,
  hasDecided,
  letterIsOpen,
  withDeadLetter,
} from '../../src/views/value-ledger.js';
import type { StoredViewValue } from '../../src/views/define-view.js';
import { prng, type Rand } from '../support/random.js';

const value = (fields: Partial<StoredViewValue<number>>): StoredViewValue<number> => ({
  sequence: 10,
  time: new Date(0).toISOString(),
  state: 0,
  ...fields,
});

describe('letterIsOpen: whether a replay still has to fold a dead-lettered event', () => {
  test.each([
    ['dead-lettered on the value', value({ deadLettered: [7] }), { sequence: 7 }, true],
    [
      'passed by the value without a record: folded in order',
      value({}),
      { sequence: 7, keyless: false },
      false,
    ],
    ['already replayed', value({ replayed: [7] }), { sequence: 7 }, false],
    [
      'replayed wins over a stale record',
      value({ replayed: [7], deadLettered: [7] }),
      { sequence: 7 },
      false,
    ],
    [
      'past the value: not written yet by whoever dead-lettered it',
      value({ sequence: 5 }),
      { sequence: 7 },
      true,
    ],
    ['keyless: no value records it', value({}), { sequence: 7, keyless: true }, true],
    [
      'keyless, but folded since by fixed code',
      value({ replayed: [7] }),
      { sequence: 7, keyless: true },
      false,
    ],
    ['recorded by its value, not keyless', value({}), { sequence: 7, keyless: false }, false],
    ['a letter from before letters said, not yet marked', value({}), { sequence: 7 }, true],
  ] as const)('%s', (_, stored, letter, open) => {
    expect(letterIsOpen(stored, letter)).toBe(open);
  });
});

const at = (sequence: number) => ({ sequence, time: new Date(sequence * 1000) });

describe('what a value records as events fold into it', () => {
  test('hasDecided: in order up to its sequence, replayed, or dead-lettered', () => {
    const v = value({ sequence: 10, replayed: [12], deadLettered: [14] });
    expect([9, 10, 11, 12, 13, 14, 15].filter((s) => hasDecided(v, s))).toEqual([9, 10, 12, 14]);
  });

  test('foldedInOrder moves the sequence and takes the time of the newest event', () => {
    const v = foldedInOrder(value({ sequence: 10, time: 'old' }), 1, at(11), false);
    expect(v).toEqual({ sequence: 11, time: at(11).time.toISOString(), state: 1 });
    // An event older than one replayed into the value keeps the replayed one's time.
    const behindReplay = foldedInOrder(
      value({ sequence: 10, time: 't15', replayed: [15] }),
      2,
      at(11),
      false,
    );
    expect(behindReplay).toMatchObject({ sequence: 11, time: 't15', replayed: [15] });
  });

  test('foldedInOrder records an event whose keyless letter is open as replayed', () => {
    expect(foldedInOrder(value({}), 1, at(11), true).replayed).toEqual([11]);
  });

  test('withDeadLetter records the event and leaves the sequence', () => {
    expect(withDeadLetter(value({ deadLettered: [3] }), 11)).toMatchObject({
      sequence: 10,
      deadLettered: [3, 11],
    });
  });

  test('foldedLate keeps the sequence, closes the letter and drops an emptied list', () => {
    const v = foldedLate(value({ sequence: 20, deadLettered: [11], time: 't20' }), 5, at(11));
    expect(v).toEqual({ sequence: 20, time: 't20', state: 5, replayed: [11], deadLettered: undefined });
    expect(JSON.stringify(v)).not.toContain('deadLettered');
    expect(foldedLate(value({ sequence: 5 }), 5, at(11)).time).toBe(at(11).time.toISOString());
  });

  test.each([
    ['they decided more', value({ sequence: 12 }), value({ sequence: 11 }), 'keep-theirs'],
    [
      'as far, by a dead letter',
      value({ sequence: 11, deadLettered: [12] }),
      value({ sequence: 12 }),
      'keep-theirs',
    ],
    ['mine decided more', value({ sequence: 11 }), value({ sequence: 12 }), 'write-mine'],
    [
      'a replay folded into theirs',
      value({ sequence: 12, replayed: [4] }),
      value({ sequence: 12 }),
      'replayed-since',
    ],
    [
      'the same replays',
      value({ sequence: 9, replayed: [4] }),
      value({ sequence: 12, replayed: [4] }),
      'write-mine',
    ],
  ] as const)('afterOverwrite when %s', (_, theirs, mine, outcome) => {
    expect(afterOverwrite(mine, theirs)).toBe(outcome);
  });
});

/**
 * One key's events through random deploys of broken and fixed code; runs that crash
 * between a fold and its flush; runs of a second instance of the same deploy that started
 * from an older checkpoint (it loads the newest value); `evolve` failing at random as well
 * as on poison events; replays that crash before removing their letter. Then fixed code
 * settles. The state lists the events folded into it: each must be there exactly once.
 */
function settleRandomHistory(rand: Rand, events: number): number[] {
  type Letter = { sequence: number; keyless: boolean };
  const poison = new Set<number>();
  const unkeyable = new Set<number>();
  for (let s = 1; s <= events; s++) {
    if (rand() < 0.2) poison.add(s);
    else if (rand() < 0.1) unkeyable.add(s);
  }
  let stored: StoredViewValue<number[]> = { sequence: 0, time: '', state: [] };
  let checkpoint = 0;
  const letters = new Map<number, Letter>();
  let broken = false;
  /** The checkpoint when the running code was deployed: no instance of it started before. */
  let deployedAt = 0;
  const fails = (s: number, flakiness: number) => (broken && poison.has(s)) || rand() < flakiness;

  // A run, which may crash: what it folded since its last flush is lost. The checkpoint
  // only moves forward, and a flush writes the value and the checkpoint together.
  const run = (from: number, { crashes = true, flakiness = 0.1 } = {}) => {
    const keyless = new Set([...letters.values()].filter((l) => l.keyless).map((l) => l.sequence));
    let folding = stored;
    for (let s = from + 1; s <= events; s++) {
      if (crashes && rand() < 0.1) return;
      if (broken && unkeyable.has(s)) {
        letters.set(s, { sequence: s, keyless: true });
        keyless.add(s);
      } else if (!hasDecided(folding, s)) {
        if (fails(s, flakiness)) {
          letters.set(s, { sequence: s, keyless: false });
          folding = withDeadLetter(folding, s);
        } else folding = foldedInOrder(folding, [...folding.state, s], at(s), keyless.has(s));
      }
      if (rand() < 0.3 || s === events) [stored, checkpoint] = [folding, Math.max(checkpoint, s)];
    }
  };
  // A replay writes at once; a crash may keep its letter.
  const replay = (letter: Letter, flakiness = 0.1) => {
    if (!letterIsOpen(stored, letter)) return void letters.delete(letter.sequence);
    if ((broken && unkeyable.has(letter.sequence)) || fails(letter.sequence, flakiness)) return;
    stored = foldedLate(stored, [...stored.state, letter.sequence], at(letter.sequence));
    if (rand() < 0.7) letters.delete(letter.sequence);
  };

  for (let step = 0; step < 16; step++) {
    if (rand() < 0.3) [broken, deployedAt] = [rand() < 0.5, checkpoint];
    const choice = rand();
    if (choice < 0.4) run(checkpoint);
    else if (choice < 0.6) run(deployedAt + Math.floor(rand() * (checkpoint - deployedAt + 1)));
    else for (const letter of [...letters.values()]) if (rand() < 0.5) replay(letter);
  }
  broken = false;
  run(checkpoint, { crashes: false, flakiness: 0 });
  for (const letter of [...letters.values()]) replay(letter, 0);
  return stored.state;
}

describe('every event of a key is folded exactly once', () => {
  const seeds = Array.from({ length: 300 }, (_, i) => 7919 * (i + 1));
  test.each(seeds)('seed %i', (seed) => {
    const events = 30;
    const folded = settleRandomHistory(prng(seed), events);
    expect([...folded].sort((a, b) => a - b)).toEqual(Array.from({ length: events }, (_, i) => i + 1));
  });
});
