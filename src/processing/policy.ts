import { AckPolicy, DeliverPolicy, type ConsumerConfig, type ConsumerUpdateConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { encodeToken } from '../subjects/tokens.js';
import { ProcessorConfigError } from './errors.js';

/** A processor's delivery contract. Every field has a default; see {@link defaultPolicy}. */
export interface ProcessorPolicy {
  /**
   * How long one handler attempt may take before the server redelivers the event, in ms.
   * The handler's `signal` aborts when it runs out. Default 30 000.
   */
  ackWaitMs?: number;
  /** Handler attempts per event before it is dead-lettered. Default 5. */
  maxDeliver?: number;
  /**
   * Delay before attempt n + 1 after attempt n threw, in ms; the last entry repeats.
   * Needs fewer entries than `maxDeliver` (there are only `maxDeliver - 1` retries).
   * Default [1000, 5000, 30000], cut to `maxDeliver - 1` entries.
   */
  backoffMs?: ReadonlyArray<number>;
  /** Handlers running at once in this instance. Default 1 (stream order, retries aside). */
  concurrency?: number;
  /**
   * The consumer's `max_ack_pending`: events delivered but not yet settled, across every
   * instance. It covers running handlers, prefetched events and events parked by a delayed
   * retry, which keep their slot until redelivered. Default `2 × concurrency`, so one parked
   * retry per handler slot does not idle the handlers. With N instances, use N × that.
   */
  maxAckPending?: number;
}

/** A policy with every default filled in and checked. */
export type ResolvedPolicy = Readonly<Required<ProcessorPolicy>>;

/** The defaults of {@link ProcessorPolicy}, except `maxAckPending` (2 × concurrency). */
export const defaultPolicy = {
  ackWaitMs: 30_000,
  maxDeliver: 5,
  backoffMs: [1000, 5000, 30_000],
  concurrency: 1,
} as const;

/** Consumer names may hold at most this many characters (nats-server). */
const MAX_CONSUMER_NAME = 255;
/** `~` and 32 hex digits: the secret part of a processor's consumer name. */
export const CONSUMER_SUFFIX_LENGTH = 33;
// The keep-alive of queued events ticks at a third of ackWait; below this it would spin.
const MIN_ACK_WAIT_MS = 100;

const isCount = (n: unknown, min: number): n is number => Number.isSafeInteger(n) && (n as number) >= min;

/** Fills in defaults and checks the policy, listing every problem at once. Pure. */
export function resolvePolicy(processor: string, policy: ProcessorPolicy): ResolvedPolicy {
  const concurrency = policy.concurrency ?? defaultPolicy.concurrency;
  const maxDeliver = policy.maxDeliver ?? defaultPolicy.maxDeliver;
  const resolved: ResolvedPolicy = {
    ackWaitMs: policy.ackWaitMs ?? defaultPolicy.ackWaitMs,
    maxDeliver,
    // The default delays cut to fit: setting only maxDeliver must not trip the check below.
    backoffMs: [...(policy.backoffMs ?? defaultPolicy.backoffMs.slice(0, Math.max(0, maxDeliver - 1)))],
    concurrency,
    maxAckPending: policy.maxAckPending ?? 2 * concurrency,
  };
  const problems = policyProblems(resolved);
  if (problems.length > 0) throw new ProcessorConfigError(processor, problems);
  return resolved;
}

function policyProblems(p: ResolvedPolicy): string[] {
  const problems: string[] = [];
  if (!isCount(p.ackWaitMs, MIN_ACK_WAIT_MS))
    problems.push(`ackWaitMs must be an integer >= ${MIN_ACK_WAIT_MS}`);
  if (!isCount(p.maxDeliver, 1)) problems.push('maxDeliver must be an integer >= 1');
  if (!p.backoffMs.every((d) => isCount(d, 0))) problems.push('backoffMs entries must be integers >= 0');
  if (isCount(p.maxDeliver, 1) && p.backoffMs.length >= p.maxDeliver) {
    problems.push(
      `backoffMs has ${p.backoffMs.length} entries but maxDeliver ${p.maxDeliver} allows only ` +
        `${p.maxDeliver - 1} retries: drop entries or raise maxDeliver`,
    );
  }
  if (!isCount(p.concurrency, 1)) problems.push('concurrency must be an integer >= 1');
  else if (!isCount(p.maxAckPending, p.concurrency)) {
    problems.push(`maxAckPending must be an integer >= concurrency (${p.concurrency})`);
  }
  return problems;
}

/** The delay before the next attempt after attempt `attempt` (1-based) failed. Pure. */
export function retryDelay(policy: ResolvedPolicy, attempt: number): number {
  const { backoffMs } = policy;
  return backoffMs[Math.min(attempt, backoffMs.length) - 1] ?? 0;
}

/**
 * The processor's durable name, the key of its dead letters and the start of its
 * consumer's name, which adds a secret suffix (see `Processor.consumer`):
 * `<encoded tenant>~<encoded name>`. Both parts go through `encodeToken`, whose output
 * (`A-Z a-z 0-9 _ - =`) is already legal in consumer names (nats-server refuses only
 * whitespace, `.`, `*`, `>`, `/` and `\`). `~` never occurs in an encoded token, so the
 * split is unambiguous, and the tenant keeps two tenants' processors of the same name on
 * a shared stream apart. The same inputs always give the same name: restarts resume.
 *
 * @example durableName('acme', 'send welcome') // 'acme~send=20welcome'
 */
export function durableName(tenant: string, name: string): string {
  const durable = `${encodeToken('tenant', tenant)}~${encodeToken('processor name', name)}`;
  if (durable.length + CONSUMER_SUFFIX_LENGTH > MAX_CONSUMER_NAME) {
    throw new ProcessorConfigError(name, [
      `its consumer name would be ${durable.length + CONSUMER_SUFFIX_LENGTH} characters, over the server's ${MAX_CONSUMER_NAME}; ` +
        'use a shorter name',
    ]);
  }
  return durable;
}

/** The durable pull consumer config a processor asks for. */
export type DurableConfig = Partial<ConsumerConfig> &
  Required<
    Pick<
      ConsumerConfig,
      | 'durable_name'
      | 'filter_subject'
      | 'ack_policy'
      | 'deliver_policy'
      | 'ack_wait'
      | 'max_deliver'
      | 'max_ack_pending'
    >
  >;

/**
 * The consumer config for a policy. `max_deliver` is `maxDeliver + 1`: the spare delivery
 * only dead-letters, so an event whose last attempt never settled (the handler hung past
 * ackWait or the process crashed on it) is still recorded rather than silently dropped.
 * No server-side `backoff`: nats-server would replace `ack_wait` with its first entry, so
 * the retry delay would also cap handler time. Retries wait through delayed naks instead.
 */
export function consumerConfig(durable: string, filter: string, policy: ResolvedPolicy): DurableConfig {
  return {
    durable_name: durable,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(policy.ackWaitMs),
    max_deliver: policy.maxDeliver + 1,
    max_ack_pending: policy.maxAckPending,
  };
}

/** How an existing durable differs from the wanted one. */
export interface ConsumerDrift {
  /** Differences that would skip or replay events; the processor refuses to start. */
  readonly unsafe: string[];
  /** The tunables to update in place, or undefined when nothing changed. */
  readonly update?: ConsumerUpdateConfig;
}

/** Compares an existing consumer config with the wanted one. Pure. */
export function consumerDrift(existing: ConsumerConfig, wanted: DurableConfig): ConsumerDrift {
  const unsafe = unsafeDifferences(existing, wanted);
  const changed =
    existing.ack_wait !== wanted.ack_wait ||
    existing.max_deliver !== wanted.max_deliver ||
    existing.max_ack_pending !== wanted.max_ack_pending ||
    (existing.backoff?.length ?? 0) > 0;
  if (unsafe.length > 0 || !changed) return { unsafe };
  const update: ConsumerUpdateConfig = {
    ack_wait: wanted.ack_wait,
    max_deliver: wanted.max_deliver,
    max_ack_pending: wanted.max_ack_pending,
  };
  // An old server-side backoff would override ack_wait; clear it.
  if (existing.backoff?.length) update.backoff = [];
  return { unsafe, update };
}

function unsafeDifferences(existing: ConsumerConfig, wanted: DurableConfig): string[] {
  const name = wanted.durable_name;
  const fix = 'delete that consumer, or give the processor another name';
  const problems: string[] = [];
  if (existing.deliver_subject) problems.push(`consumer "${name}" is a push consumer (${fix})`);
  if (existing.ack_policy !== wanted.ack_policy) {
    problems.push(`consumer "${name}" acks with "${existing.ack_policy}", not "explicit" (${fix})`);
  }
  if (existing.deliver_policy !== wanted.deliver_policy) {
    problems.push(`consumer "${name}" starts at "${existing.deliver_policy}", not "all" (${fix})`);
  }
  if (existing.headers_only) {
    problems.push(`consumer "${name}" delivers headers only, so every event would fail to decode (${fix})`);
  }
  // A backlog would drain at the pace the events were first written; no update can change it.
  if (existing.replay_policy && existing.replay_policy !== 'instant') {
    problems.push(`consumer "${name}" replays at the events' original pace, not at once (${fix})`);
  }
  if ((existing.inactive_threshold ?? 0) > 0) {
    problems.push(
      `consumer "${name}" is removed after ${existing.inactive_threshold! / 1e6} ms unused, and a ` +
        `recreated one starts again from the first event (${fix})`,
    );
  }
  const filters = existing.filter_subjects?.length ? existing.filter_subjects : [existing.filter_subject];
  if (filters.length !== 1 || filters[0] !== wanted.filter_subject) {
    problems.push(
      `consumer "${name}" follows ${filters.map((f) => `"${f ?? ''}"`).join(', ')}, not ` +
        `"${wanted.filter_subject}", and its position cannot carry over to another filter (${fix}; ` +
        'a deleted consumer starts again from the first event)',
    );
  }
  return problems;
}
