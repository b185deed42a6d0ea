import { errors, type NatsConnection } from '@nats-io/nats-core';
import {
  DiscardPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { StoreConfigError } from '../errors.js';
import { adminStep, causeOf } from '../connection/request-errors.js';
import { replicasOption } from '../options.js';
import { isStreamNotFound } from '../store/jetstream/api.js';
import { untilDirectGetsAnswer } from '../store/jetstream/direct.js';
import { assertBucketName } from '../subjects/tokens.js';

/** Options for {@link ensureViews}. */
export interface EnsureViewsOptions {
  /** KV bucket holding the tenant's views. Default `views`. */
  bucket?: string;
  /** Replicas when the bucket is created. Default 1. */
  replicas?: number;
}

/**
 * Opens the views bucket, creating it when missing: a KV bucket of history 1 with direct
 * get on, so readers use the permission-scopable direct get by subject, and atomic
 * batches on, so a projector writes a flush's values and checkpoint together. A bucket
 * whose values expire is refused with StoreConfigError (views would silently lose values
 * they never fold again). One made before projectors wrote atomically, or without direct
 * get, gets them switched on, which needs a user allowed to update its stream (else
 * StoreConfigError). An admin/service step.
 */
export async function ensureViews(nc: NatsConnection, options: EnsureViewsOptions = {}): Promise<KV> {
  const bucket = assertBucketName(options.bucket ?? 'views');
  const replicas = replicasOption(options.replicas);
  return adminStep(`ensureViews (bucket ${bucket})`, async () => {
    const streams = (await jetstreamManager(nc, { checkAPI: false })).streams;
    const name = `KV_${bucket}`;
    // nats.js's KV create cannot ask for atomic batches: the stream is made here, as it would.
    const wanted: Partial<StreamConfig> & { name: string } = {
      name,
      subjects: [`$KV.${bucket}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      max_msg_size: -1,
      discard: DiscardPolicy.New,
      allow_rollup_hdrs: true,
      allow_direct: true,
      allow_atomic: true,
      num_replicas: replicas,
    };
    const config = (
      await streams.info(name).catch(async (err: unknown) => {
        if (!isStreamNotFound(err)) throw err;
        // Two clients creating it at once: the same config is accepted twice.
        return streams.add(wanted);
      })
    ).config;
    // Values that expire would silently fall out of views that never fold their events again.
    if (config.max_age > 0)
      throw new StoreConfigError(name, [`values expire (max_age ${config.max_age / 1e9} s)`], {
        remedy: 'Use a bucket without a TTL for views.',
      });
    const off = (['allow_atomic', 'allow_direct'] as const).filter((flag) => !config[flag]);
    if (off.length > 0) {
      await streams
        .update(name, { ...config, allow_atomic: true, allow_direct: true })
        .catch((err: unknown) => {
          // Refused to this user (the bundled service role may not update it): say what is
          // missing. Anything else (a timeout) is the admin step's to report.
          if (!(causeOf(err) instanceof errors.PermissionViolationError)) throw err;
          throw new StoreConfigError(name, [`${off.join(' and ')} off (the bucket predates them)`], {
            cause: err,
            remedy: `Switch ${off.join(' and ')} on for ${name} once, as a user allowed $JS.API.STREAM.UPDATE.${name}, or run ensureViews as one.`,
          });
        });
    }
    await untilDirectGetsAnswer(nc, config);
    return new Kvm(nc).open(bucket);
  });
}
