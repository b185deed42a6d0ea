import type { ConsumerConfig } from '@nats-io/jetstream';
import { describe, expect, test, vi } from 'vitest';
import { MalformedEventError } from '../../src/errors.js';
import { propagationOf, settle, summarize } from '../../src/processing/attempt.js';
import { ProcessorConfigError } from '../../src/processing/errors.js';
import { MetricsRecorder, percentile } from '../../src/processing/metrics.js';
import { isHandlerOutcome, reject, retry } from '../../src/processing/outcome.js';
import {
  consumerConfig,
  consumerDrift,
  durableName,
  resolvePolicy,
  retryDelay,
} from '../../src/processing/policy.js';
import { WorkQueue } from '../../src/processing/work-queue.js';

const policy = resolvePolicy('p', {});

describe('policy', () => {
  test('defaults: 30 s ack wait, 5 attempts, 1/5/30 s backoff, concurrency 1, 2 pending per slot', () => {
    expect(policy).toEqual({
      ackWaitMs: 30_000,
      maxDeliver: 5,
      backoffMs: [1000, 5000, 30_000],
      concurrency: 1,
      maxAckPending: 2,
    });
    expect(resolvePolicy('p', { concurrency: 4 }).maxAckPending).toBe(8);
  });

  test('setting only maxDeliver cuts the default delays to fit', () => {
    expect(resolvePolicy('p', { maxDeliver: 3 }).backoffMs).toEqual([1000, 5000]);
    expect(resolvePolicy('p', { maxDeliver: 1 }).backoffMs).toEqual([]);
    expect(resolvePolicy('p', { maxDeliver: 9 }).backoffMs).toEqual([1000, 5000, 30_000]);
  });

  test('lists every problem at once', () => {
    const bad = () =>
      resolvePolicy('p', {
        ackWaitMs: 10,
        maxDeliver: 2,
        backoffMs: [1, -1],
        concurrency: 2,
        maxAckPending: 1,
      });
    expect(bad).toThrow(ProcessorConfigError);
    try {
      bad();
    } catch (err) {
      expect((err as ProcessorConfigError).problems).toHaveLength(4);
      expect((err as ProcessorConfigError).code).toBe('PROCESSOR_CONFIG');
    }
  });

  test('the retry delay follows the backoff list and repeats its last entry', () => {
    expect([1, 2, 3, 4].map((a) => retryDelay(policy, a))).toEqual([1000, 5000, 30_000, 30_000]);
    expect(retryDelay(resolvePolicy('p', { backoffMs: [] }), 1)).toBe(0);
  });

  test('durable names are stable, encoded, tenant-scoped and unambiguous', () => {
    expect(durableName('acme', 'send welcome')).toBe('acme~send=20welcome');
    expect(durableName('a~b', 'c')).not.toBe(durableName('a', 'b~c'));
    expect(durableName('acme', 'x.y*>')).toMatch(/^[A-Za-z0-9_=~-]+$/);
    expect(() => durableName('acme', '\u{1F600}'.repeat(30))).toThrow(ProcessorConfigError);
  });

  test('the consumer keeps a spare delivery and no server-side backoff', () => {
    const config = consumerConfig('d', 'es.t.*.*.*', policy);
    expect(config).toMatchObject({ max_deliver: 6, ack_wait: 30_000_000_000, max_ack_pending: 2 });
    expect(config.backoff).toBeUndefined();
  });
});

describe('consumer drift', () => {
  const wanted = consumerConfig('d', 'es.t.*.*.*', policy);
  const existing = { ...wanted } as ConsumerConfig;

  test('an identical consumer needs nothing', () => {
    expect(consumerDrift(existing, wanted)).toEqual({ unsafe: [] });
  });

  test('tunables are updated in place, and an old server-side backoff is cleared', () => {
    const drift = consumerDrift({ ...existing, max_ack_pending: 9, backoff: [1e9] }, wanted);
    expect(drift.unsafe).toEqual([]);
    expect(drift.update).toEqual({
      ack_wait: wanted.ack_wait,
      max_deliver: 6,
      max_ack_pending: 2,
      backoff: [],
    });
  });

  test('a different filter, start or ack policy is unsafe', () => {
    expect(consumerDrift({ ...existing, filter_subject: 'es.t.x.*.*' }, wanted).unsafe[0]).toMatch(
      /position cannot carry over/,
    );
    const other = { ...existing, deliver_policy: 'new', deliver_subject: 'x' } as ConsumerConfig;
    expect(consumerDrift(other, wanted).unsafe).toHaveLength(2);
  });

  test('a consumer that would deliver headers only, or vanish when idle, is unsafe', () => {
    expect(consumerDrift({ ...existing, headers_only: true }, wanted).unsafe[0]).toMatch(/headers only/);
    expect(consumerDrift({ ...existing, inactive_threshold: 5e9 }, wanted).unsafe[0]).toMatch(
      /removed after 5000 ms unused.*from the first event/,
    );
  });

  test('a consumer that replays at the original pace is refused; ack sampling is left alone', () => {
    const paced = { ...existing, replay_policy: 'original' } as ConsumerConfig;
    expect(consumerDrift(paced, wanted).unsafe[0]).toMatch(/original pace/);
    expect(consumerDrift({ ...existing, sample_freq: '100%' }, wanted)).toEqual({ unsafe: [] });
  });
});

describe('settling an attempt', () => {
  const boom = { kind: 'failed', error: new TypeError('boom'), final: false } as const;

  test('success acks; a failure naks with backoff until the last attempt dead-letters', () => {
    expect(settle({ kind: 'processed' }, 1, policy)).toEqual({ action: 'ack' });
    expect(settle(boom, 2, policy)).toEqual({
      action: 'nak',
      delayMs: 5000,
      error: { name: 'TypeError', message: 'boom' },
    });
    expect(settle(boom, 5, policy)).toEqual({
      action: 'dead-letter',
      error: { name: 'TypeError', message: 'boom' },
    });
  });

  test('retry naks with its own delay, except on the last attempt', () => {
    expect(settle({ kind: 'retry', delayMs: 7 }, 1, policy)).toEqual({ action: 'nak', delayMs: 7 });
    expect(settle({ kind: 'retry', delayMs: 7 }, 5, policy)).toMatchObject({
      action: 'dead-letter',
      error: { name: 'RetriesExhausted' },
    });
  });

  test('reject and undecodable events dead-letter at once', () => {
    expect(settle({ kind: 'rejected', reason: 'no' }, 1, policy)).toEqual({
      action: 'dead-letter',
      error: { name: 'Rejected', message: 'no' },
    });
    const malformed = new MalformedEventError(3, 's', new Uint8Array(), 'json', 'bad');
    expect(settle({ kind: 'failed', error: malformed, final: true }, 1, policy)).toMatchObject({
      action: 'dead-letter',
      error: { name: 'MalformedEventError' },
    });
  });

  test('summaries survive odd thrown values', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(summarize('text')).toEqual({ name: 'Error', message: 'text' });
    expect(summarize(circular)).toEqual({ name: 'Error', message: '[object Object]' });
  });
});

describe('handler outcomes and propagation', () => {
  test('retry and reject are branded plain values', () => {
    expect(retry(10.4)).toEqual({ kind: 'retry', delayMs: 10 });
    expect(isHandlerOutcome(reject('x'))).toBe(true);
    expect(isHandlerOutcome({ kind: 'retry', delayMs: 1 })).toBe(false);
    expect(() => retry(-1)).toThrow(/retry delay/);
  });

  test('follow-up events keep the correlation and name their cause', () => {
    expect(propagationOf({ id: 'e1' })).toEqual({ correlationId: 'e1', causationId: 'e1' });
    expect(propagationOf({ id: 'e2', correlationId: 'c', traceparent: 'tp' })).toEqual({
      correlationId: 'c',
      causationId: 'e2',
      traceparent: 'tp',
    });
  });
});

describe('metrics', () => {
  test('counts attempts and keeps timings', () => {
    const m = new MetricsRecorder();
    m.attempt('processed', 10);
    m.attempt('failed', 30);
    m.attempt('retried', 20);
    m.deadLettered();
    expect(m.snapshot(1)).toEqual({
      processed: 1,
      failed: 1,
      retried: 1,
      deadLettered: 1,
      inFlight: 1,
      handlerMs: { last: 20, avg: 20, p99: 30, max: 30 },
    });
  });

  test('p99 is the nearest rank', () => {
    expect(percentile([], 0.99)).toBe(0);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.99,
      ),
    ).toBe(99);
  });
});

describe('work queue', () => {
  test('bounds concurrency and keeps waiting jobs alive until they start', async () => {
    vi.useFakeTimers();
    try {
      const releases: Array<() => void> = [];
      const queue = new WorkQueue<{ working: () => void }>(
        1,
        100,
        () => new Promise((r) => releases.push(r)),
      );
      const waiting = { working: vi.fn() };
      queue.push({ working: vi.fn() });
      queue.push(waiting);
      expect(queue.active).toBe(1);
      await vi.advanceTimersByTimeAsync(250);
      expect(waiting.working).toHaveBeenCalledTimes(2);
      releases[0]!();
      await vi.advanceTimersByTimeAsync(0);
      expect(waiting.working).toHaveBeenCalledTimes(3); // a fresh ack wait as it starts
      expect(releases).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(500);
      expect(waiting.working).toHaveBeenCalledTimes(3); // no keep-alive once running
      releases[1]!();
      await expect(queue.idle()).resolves.toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});
