import { describe, expect, test } from 'vitest';
import { letterIsOpen } from '../../src/views/view-storage.js';
import type { StoredViewValue } from '../../src/views/define-view.js';

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
