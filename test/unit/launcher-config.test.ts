import { describe, expect, test } from 'vitest';
import { withoutJetStreamStore } from '../../src/testing/nats-server.js';

const lines = (config: string) =>
  withoutJetStreamStore(config)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

describe('the launcher keeps a config file’s JetStream settings but not its store', () => {
  test('a block over several lines, with nested blocks and comments', () => {
    const config = [
      'listen: 4222',
      'jetstream {',
      '  store_dir: "/var/lib/nats" # the real store {',
      '  sync_interval: always // fsync {every} write',
      '  limits { max_ack_pending: 77 }',
      '}',
      'accounts { A { jetstream { store: "/a" } } }',
    ].join('\n');
    expect(lines(config)).toEqual([
      'listen: 4222',
      'jetstream {',
      'sync_interval: always',
      'limits { max_ack_pending: 77 }',
      '}',
      'accounts { A { jetstream { store: "/a" } } }',
    ]);
  });

  test('every spelling of the store directory goes, on one line too', () => {
    expect(lines('jetstream: {max_mem: 64MB, store_dir: "/x", sync_interval: always}')).toEqual([
      'jetstream: {max_mem: 64MB, sync_interval: always}',
    ]);
    expect(lines('jetstream { storedir: /x\n max_mem: 1MB }')).toEqual(['jetstream {', 'max_mem: 1MB }']);
    expect(lines('JetStream = { store = "/x y" }')).toEqual(['JetStream = { }']);
    expect(lines('jetstream { store_cipher: chacha\n max_file_store: 1GB }')).toEqual([
      'jetstream { store_cipher: chacha',
      'max_file_store: 1GB }',
    ]);
  });

  test('every top-level block, and only those; quoted braces are text', () => {
    expect(lines('jetstream { store: /a }\njetstream { store: /b, max_mem: 1MB }')).toEqual([
      'jetstream { }',
      'jetstream { max_mem: 1MB }',
    ]);
    expect(lines('server_name: "a{b"\njetstream { store: /a }')).toEqual([
      'server_name: "a{b"',
      'jetstream { }',
    ]);
    expect(lines('store_dir: /a\njetstream: enabled')).toEqual(['store_dir: /a', 'jetstream: enabled']);
  });

  test('quoted keys, escaped quotes, and a value that happens to be spelled store', () => {
    expect(lines('jetstream { "store_dir": "/real", max_mem: 1G }')).toEqual(['jetstream { max_mem: 1G }']);
    expect(lines('"jetstream": { store: /a }')).toEqual(['"jetstream": { }']);
    const escaped = 'server_name: "x\\""\naccounts { A { jetstream { store: /a } } }';
    expect(lines(escaped)).toEqual(['server_name: "x\\""', 'accounts { A { jetstream { store: /a } } }']);
    expect(lines('server_name: "a\\"b{"\njetstream { store: /a }')).toEqual([
      'server_name: "a\\"b{"',
      'jetstream { }',
    ]);
    expect(lines('jetstream {\n  domain: store\n  store: /a\n}')).toEqual([
      'jetstream {',
      'domain: store',
      '}',
    ]);
  });
});
