#!/usr/bin/env node
// Provisions a nats-server new enough for jetsource (atomic batches with subject
// expectations need >= 2.14.4). Order: $NATS_SERVER_BIN (then it must be one), PATH,
// our cache, then a signature-checked download of Debian unstable's package through
// apt-get under a private configuration (nothing on the system changes; the mirror is
// read from the machine's own apt sources, never written here).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MINIMUM_VERSION = '2.14.4';
const NEEDED = `jetsource needs nats-server >= ${MINIMUM_VERSION}`;
const VERSION_TIMEOUT_MS = 5000;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(root, '.cache', 'nats-server');
const cachedBin = join(cacheDir, 'root', 'usr', 'sbin', 'nats-server');

/**
 * Runs `bin --version`: `{ version }` for a nats-server new enough for jetsource,
 * else `{ problem }`, which completes the sentence "<bin> …".
 */
export function checkNatsServer(bin) {
  let out;
  try {
    out = execFileSync(bin, ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: VERSION_TIMEOUT_MS,
      killSignal: 'SIGKILL', // a hung binary may ignore SIGTERM
    });
  } catch (err) {
    if (err.code === 'ENOENT') return { problem: 'does not exist' };
    if (err.code === 'EACCES') return { problem: 'is not executable' };
    if (err.code === 'ETIMEDOUT')
      return { problem: `did not answer --version within ${VERSION_TIMEOUT_MS / 1000} s` };
    return { problem: `failed running --version (${err.status ? `exit ${err.status}` : err.message})` };
  }
  // Only nats-server prints "nats-server: v2.15.1"; any other program's version is not one.
  const version = /^nats-server: v(\d+\.\d+\.\d+)/m.exec(out)?.[1];
  if (!version)
    return { problem: `is not nats-server (--version printed ${JSON.stringify(out.trim().split('\n')[0])})` };
  if (!isNewEnough(version)) return { problem: `is nats-server ${version}` };
  return { version };
}

/** >= 2.14.4, or >= 2.12.14 on the 2.12 line: the rule of src/connection/server-version.ts. */
export function isNewEnough(version) {
  if (!version) return false;
  const [major, minor, patch] = version.split('.').map(Number);
  if (major !== 2) return major > 2;
  return minor > 14 || (minor === 14 && patch >= 4) || (minor === 12 && patch >= 14);
}

function onPath() {
  try {
    return execFileSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The first `URIs:` / `deb` mirror of Debian's main archive configured on this machine. */
export function debianMirror() {
  const dirs = ['/etc/apt/sources.list.d'];
  const files = dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).map((f) => join(d, f)) : []));
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  for (const file of files.filter((f) => /\.(sources|list)$/.test(f))) {
    const text = readFileSync(file, 'utf8');
    const uris = [
      ...text.matchAll(/^\s*URIs:\s*(\S+)/gm),
      ...text.matchAll(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm),
    ]
      .map((m) => m[1])
      .filter((u) => /\/debian\/?$/.test(u));
    if (uris.length) return uris[0];
  }
  return undefined;
}

// Our apt configuration, read after /etc/apt/apt.conf.d: the machine's proxy, auth and
// trust settings for its mirror still apply, but none of its hooks run, as they act on
// the system (PackageKit, appstream, dpkg). Signatures are required whatever it allows.
const HOOKS = [
  'APT::Update::Pre-Invoke',
  'APT::Update::Post-Invoke',
  'APT::Update::Post-Invoke-Success',
  'APT::Update::Auth-Failure',
  'DPkg::Pre-Invoke',
  'DPkg::Post-Invoke',
  'DPkg::Pre-Install-Pkgs',
];
const APT_CONF = `${HOOKS.map((hook) => `#clear ${hook};`).join('\n')}
Acquire::AllowInsecureRepositories "false";
APT::Get::AllowUnauthenticated "false";
`;

/** Runs `apt-get <options> <command>` and returns its output; on failure, that output is the error. */
function aptGet(options, command, cwd) {
  const run = spawnSync('apt-get', [...options, ...command], { cwd, encoding: 'utf8' });
  if (run.error) throw new Error(`cannot run apt-get: ${run.error.message}`);
  const output = `${run.stdout}${run.stderr}`.trim();
  if (run.status !== 0)
    throw new Error(`apt-get ${command.join(' ')} failed (exit ${run.status}):\n${output}`);
  return output;
}

function download() {
  const mirror = debianMirror();
  if (!mirror)
    throw new Error(
      'no Debian mirror is configured in /etc/apt; set NATS_SERVER_BIN to a nats-server >= ' +
        MINIMUM_VERSION,
    );
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  rmSync(cacheDir, { recursive: true, force: true });
  for (const d of ['lists/partial', 'archives/partial', 'etc', 'debs'])
    mkdirSync(join(cacheDir, d), { recursive: true });
  const sources = join(cacheDir, 'etc', 'sources.list');
  const config = join(cacheDir, 'etc', 'apt.conf');
  // Only the Packages index, not the appstream or Contents indexes other packages enable.
  writeFileSync(sources, `deb [signed-by=${keyring} target=Packages] ${mirror} unstable main\n`);
  writeFileSync(config, APT_CONF);
  const options = [
    '-q',
    '-c',
    config,
    '-o',
    `Dir::Etc::SourceList=${sources}`,
    '-o',
    'Dir::Etc::SourceParts=/dev/null',
    '-o',
    `Dir::State::Lists=${join(cacheDir, 'lists')}`,
    '-o',
    `Dir::Cache=${cacheDir}`,
    '-o',
    'Debug::NoLocking=1',
    '-o',
    'APT::Sandbox::User=root',
  ];
  // `update` verifies the InRelease signature against Debian's archive keyring; the
  // package's checksum is then verified against that signed index by `download`.
  aptGet(options, ['update']);
  const debs = join(cacheDir, 'debs');
  const output = aptGet(options, ['download', 'nats-server'], debs);
  const deb = readdirSync(debs).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download fetched no nats-server package; apt said:\n${output}`);
  execFileSync('dpkg-deb', ['-x', join(debs, deb), join(cacheDir, 'root')]);
  for (const d of ['lists', 'archives', 'debs', 'etc'])
    rmSync(join(cacheDir, d), { recursive: true, force: true });
}

/** Finds or fetches a new-enough nats-server and returns its absolute path. */
export function provisionNatsServer({ log = (m) => console.error(m) } = {}) {
  const chosen = process.env.NATS_SERVER_BIN;
  if (chosen) {
    // An explicit choice is never silently replaced by another server.
    const { problem } = checkNatsServer(chosen);
    if (problem)
      throw new Error(
        `NATS_SERVER_BIN=${chosen} ${problem}; ${NEEDED}.\n` +
          'Point NATS_SERVER_BIN at one, or unset it to use nats-server from PATH or a download.',
      );
    return chosen;
  }
  const candidates = [
    ['PATH', onPath()],
    ['cache', existsSync(cachedBin) ? cachedBin : undefined],
  ];
  for (const [where, bin] of candidates) {
    if (!bin) continue;
    const { problem } = checkNatsServer(bin);
    if (!problem) return bin;
    log(`skipping nats-server from ${where}: ${bin} ${problem} (${NEEDED})`);
  }
  log('fetching nats-server from Debian unstable (signature-checked, private apt configuration)...');
  try {
    download();
  } catch (err) {
    throw new Error(
      `could not provision nats-server >= ${MINIMUM_VERSION}: ${err.message}\n` +
        'Install one yourself and set NATS_SERVER_BIN=/path/to/nats-server.',
    );
  }
  const { version, problem } = checkNatsServer(cachedBin);
  if (problem) throw new Error(`the downloaded ${cachedBin} ${problem}; ${NEEDED}`);
  log(`nats-server ${version} ready at ${cachedBin}`);
  return cachedBin;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(provisionNatsServer());
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
