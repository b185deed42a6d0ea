import { describe, expect, test } from 'vitest';
import { jetstreamSettingsOf } from '../../src/testing/nats-server.js';

const settings = (config: string) =>
  jetstreamSettingsOf(config)
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
      'accounts { A { jetstream { max_file: 1GB } } }',
    ].join('\n');
    expect(settings(config)).toEqual(['sync_interval: always', 'limits { max_ack_pending: 77 }']);
  });

  test('every spelling of the store directory goes, on one line too', () => {
    expect(settings('jetstream: {max_mem: 64MB, store_dir: "/x", sync_interval: always}')).toEqual([
      'max_mem: 64MB, sync_interval: always',
    ]);
    expect(settings('jetstream { storedir: /x\n max_mem: 1MB }')).toEqual(['max_mem: 1MB']);
    expect(settings('JetStream = { store = "/x y" }')).toEqual([]);
    expect(settings('jetstream { store_cipher: chacha\n max_file_store: 1GB }')).toEqual([
      'store_cipher: chacha',
      'max_file_store: 1GB',
    ]);
  });

  test('only the top-level block counts; quoted braces are text', () => {
    expect(settings('accounts { A { jetstream { max_file: 1GB } } }')).toEqual([]);
    expect(settings('server_name: "a{b"\njetstream { max_mem: 1MB }')).toEqual(['max_mem: 1MB']);
    expect(settings('jetstream: enabled')).toEqual([]);
  });

  test('quoted keys, escaped quotes, and a value that happens to be spelled store', () => {
    expect(settings('jetstream { "store_dir": "/real", max_mem: 1G }')).toEqual(['max_mem: 1G']);
    expect(settings('"jetstream": { max_mem: 1G }')).toEqual(['max_mem: 1G']);
    const escaped = 'server_name: "x\\""\naccounts { A { jetstream { max_mem: 1MB } } }';
    expect(settings(escaped)).toEqual([]);
    expect(settings('server_name: "a\\"b{"\njetstream { max_mem: 2MB }')).toEqual(['max_mem: 2MB']);
    expect(settings('jetstream {\n  domain: store\n  max_mem: 1G\n}')).toEqual([
      'domain: store',
      'max_mem: 1G',
    ]);
  });
});
