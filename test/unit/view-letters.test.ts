import { describe, expect, test } from 'vitest';
import { letterIsOpen, type Checkpoint } from '../../src/views/view-storage.js';
import type { StoredViewValue } from '../../src/views/define-view.js';

const value = (fields: Partial<StoredViewValue<number>>): StoredViewValue<number> => ({
  sequence: 10,
  time: new Date(0).toISOString(),
  state: 0,
  ...fields,
});
const recorded: Checkpoint = { sequence: 10, deadLettered: [] };

describe('letterIsOpen: whether a replay still has to fold a dead-lettered event', () => {
  test.each([
    ['dead-lettered on the value', value({ deadLettered: [7] }), recorded, 7, true],
    ['passed by the value without a record: folded in order', value({}), recorded, 7, false],
    ['already replayed', value({ replayed: [7] }), recorded, 7, false],
    ['replayed wins over a stale record', value({ replayed: [7], deadLettered: [7] }), recorded, 7, false],
    [
      'past the value: not written yet by whoever dead-lettered it',
      value({ sequence: 5 }),
      recorded,
      7,
      true,
    ],
    ['keyless, recorded by the checkpoint', value({}), { sequence: 10, deadLettered: [7] }, 7, true],
    ['a checkpoint from before letters were recorded', value({}), { sequence: 10 }, 7, true],
  ] as const)('%s', (_, stored, checkpoint, sequence, open) => {
    expect(letterIsOpen(stored, checkpoint, sequence)).toBe(open);
  });
});
