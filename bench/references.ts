// Other event stores' figures on this machine type, as the foundation issue gives them.
// The bench cannot run those stores (no PostgreSQL or SQLite event store here), so these
// are fixed reference points beside this run's measurements, never measurements themselves.
import { metric, type Metric } from './lib.js';

interface Reference {
  /** The measured metric compared. */
  readonly measured: string;
  readonly store: string;
  readonly value: number;
  readonly lowerIsBetter?: boolean;
}

const references: ReadonlyArray<Reference> = [
  {
    measured: 'append 1 event, expect version (64 in flight)',
    store: 'a PostgreSQL-backed event store, 64 in flight',
    value: 3_000,
  },
  {
    measured: 'catch-up replay, 100k events (store.read) vs raw push ordered consumer',
    store: 'an embedded SQLite event store',
    value: 90_000,
  },
  {
    measured: 'entity read (10 events) p50, 10k-event stream',
    store: 'a PostgreSQL-backed event store',
    value: 0.3,
    lowerIsBetter: true,
  },
];

/** Each reference beside the measured metric it compares with (skipped if that was not measured). */
export function referenceMetrics(measured: ReadonlyArray<Metric>): Metric[] {
  return references.flatMap((ref) => {
    const m = measured.find((x) => x.metric === ref.measured);
    if (!m) return [];
    const name = `${ref.measured.split(' vs ')[0]} vs ${ref.store} (reference figure, not run here)`;
    return [metric(name, m.value, m.unit, ref.value, ref.lowerIsBetter)];
  });
}
