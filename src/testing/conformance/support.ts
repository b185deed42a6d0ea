// What the conformance cases share: assertions that throw ConformanceFailure, fixtures,
// and a recorder for live watches.
import { lastValueFrom, toArray, type Observable } from 'rxjs';
import { isJetsourceError, type JetsourceErrorCode } from '../../errors.js';
import type { EnvelopeOf } from '../../store/types.js';
import type { WatchMessage } from '../../watch/types.js';
import type { ConformanceEvents } from './harness.js';

export class ConformanceFailure extends Error {
  override name = 'ConformanceFailure';
}

export function equal(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new ConformanceFailure(`${what}: expected ${e}, got ${a}`);
}

export async function rejects(
  promise: Promise<unknown>,
  code: JetsourceErrorCode,
  what: string,
): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    if (isJetsourceError(err, code)) return err;
    throw new ConformanceFailure(`${what}: expected a ${code} error, got ${String(err)}`);
  }
  throw new ConformanceFailure(`${what}: expected a ${code} error, but it succeeded`);
}

/** What a promise-returning call returns: a failure if it throws instead of rejecting. */
export function called<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (err) {
    throw new ConformanceFailure(`threw ${String(err)} instead of returning a rejected promise`);
  }
}

export async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

export const account = (id: string) => ({ type: 'account', id });
export const deposit = (n: number) => ({ type: 'Deposited' as const, data: { amount: n } });
export const seqs = (events: Array<EnvelopeOf<ConformanceEvents>>) => events.map((e) => e.sequence);
export const balance = {
  initial: 0,
  evolve: (s: number, e: EnvelopeOf<ConformanceEvents>) =>
    e.type === 'Deposited' ? s + e.data.amount : e.type === 'Withdrawn' ? s - e.data.amount : s,
};
export const encode = (s: string) => new TextEncoder().encode(s);

export type Watched = WatchMessage<ConformanceEvents>;

/** A watch's messages in short: an event's sequence, `caught-up <sequence>` or `malformed <sequence>`. */
export const summary = (messages: Watched[]) =>
  messages.map((m) =>
    m.kind === 'event'
      ? m.event.sequence
      : `${m.kind} ${m.kind === 'malformed' ? m.malformed.sequence : m.sequence}`,
  );
export const isCaughtUp = (messages: Watched[]) => messages.some((m) => m.kind === 'caught-up');
export const holds = (sequence: number) => (messages: Watched[]) =>
  messages.some((m) => m.kind === 'event' && m.event.sequence === sequence);
/** The summary of everything a watch emits, once it completes. */
export const summaryWhenComplete = (watch: Observable<Watched>) =>
  lastValueFrom(watch.pipe(toArray())).then(summary);

/** A live watch's messages, recorded from the moment it is subscribed. */
interface Recording {
  readonly messages: Watched[];
  /** Settles once `done` holds for the messages; fails if the watch ends first, or after 5 s. */
  until(done: (messages: Watched[]) => boolean, what: string): Promise<void>;
  stop(): void;
}

export function record(watch: Observable<Watched>): Recording {
  const messages: Watched[] = [];
  let ended: string | undefined;
  const waiting = new Set<() => void>();
  const changed = (why?: string) => {
    ended ??= why;
    waiting.forEach((check) => check());
  };
  const subscription = watch.subscribe({
    next: (m) => {
      messages.push(m);
      changed();
    },
    error: (err: unknown) => changed(`failed with ${String(err)}`),
    complete: () => changed('completed'),
  });
  return {
    messages,
    until(done, what) {
      return new Promise<void>((resolve, reject) => {
        const settle = (why?: string) => {
          clearTimeout(timer);
          waiting.delete(check);
          if (why === undefined) return resolve();
          reject(
            new ConformanceFailure(`${what}: the watch ${why}, after ${JSON.stringify(summary(messages))}`),
          );
        };
        const check = () => (done(messages) ? settle() : ended ? settle(ended) : undefined);
        const timer = setTimeout(() => settle('still waits after 5 s'), 5000);
        waiting.add(check);
        check();
      });
    },
    stop: () => subscription.unsubscribe(),
  };
}
