import type { StoredViewValue } from './define-view.js';

// What a view value records about its key's events, and the projector's decisions on it.
// Pure: no I/O. `sequence` is the last event folded in order, `deadLettered` the events
// that failed and are not yet replayed, `replayed` the dead-lettered ones folded since.
// Together they say of any event of the key whether the value holds it, which is what
// keeps every event folded exactly once across crashes, restarts and replays.

type Value = StoredViewValue<unknown>;

/** An event as the ledger needs it. */
interface Folding {
  readonly sequence: number;
  readonly time: Date;
}

/** Whether the value has decided the event: folded it (in order or by a replay) or dead-lettered it. */
export function hasDecided(value: Value, sequence: number): boolean {
  return (
    sequence <= value.sequence ||
    value.replayed?.includes(sequence) === true ||
    value.deadLettered?.includes(sequence) === true
  );
}

/**
 * The value with `event` folded in order, `state` being the result. `closesLetter`: the
 * event has an open keyless letter (its key was fixed since), which the value records as
 * replayed, so a replay of that letter only removes it.
 */
export function foldedInOrder<V extends Value>(
  value: V,
  state: V['state'],
  event: Folding,
  closesLetter: boolean,
): V {
  return {
    ...value,
    state,
    sequence: Math.max(value.sequence, event.sequence),
    time: timeAfter(value, event),
    ...(closesLetter ? { replayed: [...(value.replayed ?? []), event.sequence] } : {}),
  };
}

/** The value with the event recorded as dead-lettered: a replay folds it later. */
export function withDeadLetter<V extends Value>(value: V, sequence: number): V {
  return { ...value, deadLettered: [...(value.deadLettered ?? []), sequence] };
}

/**
 * The value with a dead-lettered event folded late, by a replay. `sequence` stays: events
 * before the letter not in the value yet (held unflushed by a catch-up) still fold on
 * their turn. It lands on top of newer events; a rebuild restores the exact order.
 */
export function foldedLate<V extends Value>(value: V, state: V['state'], event: Folding): V {
  return {
    ...value,
    state,
    time: timeAfter(value, event),
    replayed: [...(value.replayed ?? []), event.sequence],
    deadLettered: without(value.deadLettered, event.sequence),
  };
}

/**
 * Whether a dead-lettered event still has to be folded into its key's value. A value
 * records its key's letters, and `replayed` every letter's event folded since; any other
 * event the value has passed is in it. A value not yet past the event has not had it (the
 * instance that dead-lettered it has not written it), and a keyless letter is recorded by
 * no value.
 */
export function letterIsOpen(
  value: Value,
  letter: { readonly sequence: number; readonly keyless?: boolean },
): boolean {
  const { sequence } = letter;
  if (value.replayed?.includes(sequence)) return false;
  // A letter that does not say (written before letters did) may have no value recording it.
  return (
    value.deadLettered?.includes(sequence) === true || sequence > value.sequence || letter.keyless !== false
  );
}

/**
 * What a flush does with its copy (`mine`) once it finds another writer stored `theirs`
 * over the value it started from. Instances fold the same events in the same order, so
 * the one that decided more wins: `keep-theirs` (fold later events onto it) or
 * `write-mine`. A dead-letter replay folded into it since (`replayed-since`) is not in
 * `mine`: writing on would drop it, so the projector starts again from its checkpoint.
 */
export function afterOverwrite(mine: Value, theirs: Value): 'keep-theirs' | 'write-mine' | 'replayed-since' {
  const [a, b] = [mine.replayed ?? [], theirs.replayed ?? []];
  if (a.length !== b.length || !a.every((s) => b.includes(s))) return 'replayed-since';
  return decided(theirs) >= decided(mine) ? 'keep-theirs' : 'write-mine';
}

/** The last event decided in a value: folded in order, or dead-lettered (which leaves `sequence`). */
const decided = (value: Value) => Math.max(value.sequence, ...(value.deadLettered ?? []));

/** As a rebuild would: the time of the newest event in the value. */
const timeAfter = (value: Value, event: Folding) =>
  event.sequence > Math.max(value.sequence, ...(value.replayed ?? []))
    ? event.time.toISOString()
    : value.time;

/** `list` without `sequence`; undefined rather than empty, so values without letters keep their bytes. */
function without(list: readonly number[] | undefined, sequence: number): readonly number[] | undefined {
  const rest = list?.filter((s) => s !== sequence);
  return rest?.length ? rest : undefined;
}
