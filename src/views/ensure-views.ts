import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import { adminStep } from '../connection/request-errors.js';
import { assertBucketName } from '../subjects/tokens.js';

/** Options for {@link ensureViews}. */
export interface EnsureViewsOptions {
  /** KV bucket holding the tenant's views. Default `views`. */
  bucket?: string;
  /** Default 1. */
  replicas?: number;
}

/**
 * Opens the views bucket, creating it when missing (history 1, direct get on, so
 * readers use the permission-scopable direct get by subject). An admin/service step.
 */
export async function ensureViews(nc: NatsConnection, options: EnsureViewsOptions = {}): Promise<KV> {
  const bucket = assertBucketName(options.bucket ?? 'views');
  return adminStep(`ensureViews (bucket ${bucket})`, () =>
    new Kvm(nc).create(bucket, { history: 1, allow_direct: true, replicas: options.replicas ?? 1 }),
  );
}
