import type { ConformanceCase } from './harness.js';
import { appendingCases } from './appending.js';
import { readingCases } from './reading.js';
import { watchingCases } from './watching.js';
import { refusalsCases } from './refusals.js';

export { conformanceSchemas } from './harness.js';
export type { ConformanceCase, ConformanceEvents, ConformanceHarness, RawEvent } from './harness.js';

/**
 * The behaviour every jetsource store must share. Run each case against your store with
 * any test runner:
 *
 * @example
 * for (const c of conformanceCases) test(c.name, () => c.run(harness));
 */
export const conformanceCases: ReadonlyArray<ConformanceCase> = [
  ...appendingCases,
  ...readingCases,
  ...watchingCases,
  ...refusalsCases,
];
