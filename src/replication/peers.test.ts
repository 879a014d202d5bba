import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parsePeers, PeerConfigError } from './peers.ts';
import { backoffMs } from './worker.ts';

const cwd = mkdtempSync(path.join(tmpdir(), 'berth-peers-'));
const parse = (raw: unknown) => parsePeers(raw, { cwd, ownRegion: 'us-east-1' });

test('a Berth peer: defaults, the endpoint reduced to its origin, secrets and CAs read from files', () => {
  writeFileSync(path.join(cwd, 'secret'), 'from-file\n');
  writeFileSync(path.join(cwd, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
  const [peer] = parse([{ region: 'eu-west-1', endpoint: 'https://berth.eu.example.com/some/path', accessKeyId: 'AKIA1', secretAccessKeyFile: 'secret', caFile: 'ca.pem', copySettings: ['TAG_MUTABILITY', 'TAG_MUTABILITY'] }]);
  assert.deepEqual(peer, {
    kind: 'berth',
    region: 'eu-west-1',
    endpoint: 'https://berth.eu.example.com',
    accessKeyId: 'AKIA1',
    secretAccessKey: 'from-file',
    roleArn: undefined,
    externalId: undefined,
    ca: '-----BEGIN CERTIFICATE-----\n',
    copySettings: ['TAG_MUTABILITY'],
  });
});

test('an OCI peer: optional Basic credentials, a repository prefix', () => {
  const [anonymous, basic] = parse([
    { kind: 'oci', region: 'mirror', endpoint: 'http://127.0.0.1:5001' },
    { kind: 'oci', region: 'harbor-eu', endpoint: 'https://harbor.example.com', username: 'robot$ci', password: 'p', repositoryPrefix: 'library/berth/' },
  ]);
  assert.deepEqual(anonymous, { kind: 'oci', region: 'mirror', endpoint: 'http://127.0.0.1:5001', username: undefined, password: undefined, ca: undefined, repositoryPrefix: '' });
  assert.equal(basic?.kind === 'oci' && basic.repositoryPrefix, 'library/berth/');
});

test('bad entries are refused, naming the entry and the problem', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /expected a JSON array/],
    [[{ region: 'us-east-1', endpoint: 'http://x', accessKeyId: 'a', secretAccessKey: 'b' }], /\[0\] \(region us-east-1\): region: us-east-1 is this deployment's own region/],
    [[{ region: 'EU', endpoint: 'http://x' }], /\[0\]: region: expected 2 to 25 lower-case/],
    [[{ region: 'eu-west-1', endpoint: 'ftp://x', accessKeyId: 'a', secretAccessKey: 'b' }], /endpoint: expected an http or https URL/],
    [[{ region: 'eu-west-1', endpoint: 'http://x', accessKeyId: 'a' }], /secretAccessKey or secretAccessKeyFile: required/],
    [[{ region: 'eu-west-1', endpoint: 'http://x', accessKeyId: 'a', secretAccessKey: 'b', roleArn: 'role/x' }], /roleArn: role\/x is not an IAM role ARN/],
    [[{ region: 'eu-west-1', endpoint: 'http://x', accessKeyId: 'a', secretAccessKey: 'b', copySettings: ['EVERYTHING'] }], /copySettings: expected an array of REPOSITORY_POLICY/],
    [[{ region: 'eu-west-1', endpoint: 'http://x', accessKeyId: 'a', secretAccessKey: 'b', password: 'p' }], /unknown field "password" for a berth peer/],
    [[{ kind: 'oci', region: 'mirror', endpoint: 'http://x', username: 'u' }], /username and password \(or passwordFile\) go together/],
    [[{ kind: 'oci', region: 'mirror', endpoint: 'http://x', repositoryPrefix: 'mirror' }], /repositoryPrefix: expected path components ending with \//],
    [[{ kind: 'oci', region: 'mirror', endpoint: 'http://x' }, { kind: 'oci', region: 'mirror', endpoint: 'http://y' }], /\[1\] \(region mirror\): region: another peer has the same region/],
    [[{ region: 'eu-west-1', endpoint: 'http://x', accessKeyId: 'a', secretAccessKeyFile: 'missing' }], /secretAccessKeyFile: cannot read missing/],
  ];
  for (const [raw, message] of cases) assert.throws(() => parse(raw), (err: unknown) => err instanceof PeerConfigError && message.test(err.message), String(message));
});

test('backoff: full jitter under a ceiling that doubles up to the maximum, never below half the base', () => {
  for (let attempts = 0; attempts < 40; attempts++) {
    for (let i = 0; i < 50; i++) {
      const delay = backoffMs(attempts, 1000, 60_000);
      assert.ok(delay >= 500 && delay <= Math.min(60_000, 1000 * 2 ** attempts), `attempt ${attempts}: ${delay}`);
    }
  }
});
