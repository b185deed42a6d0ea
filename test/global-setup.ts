// Provisions nats-server once per run, so a fresh clone needs no manual step.
// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from '../scripts/nats-server.mjs';

export default function setup(): void {
  process.env.NATS_SERVER_BIN = provisionNatsServer();
}
