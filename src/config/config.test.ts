import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, envName, flagName, loadConfig, parseListen, settings, type Config, type SettingSpec } from './config.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A temp directory, removed when the test ends, to act as the working directory. */
function workDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeJson(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

/** The resolved value of a setting, read from the config object by its key path. */
function valueAt(config: Config, key: string): unknown {
  return key.split('.').reduce<unknown>((obj, part) => (obj as Record<string, unknown>)[part], config);
}

function configError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  };
}

test('envName and flagName follow the key path', () => {
  assert.equal(envName('listen'), 'BERTH_LISTEN');
  assert.equal(envName('dataDir'), 'BERTH_DATA_DIR');
  assert.equal(envName('uploads.ttlSeconds'), 'BERTH_UPLOADS_TTL_SECONDS');
  assert.equal(envName('repositories.createOnPush'), 'BERTH_REPOSITORIES_CREATE_ON_PUSH');
  assert.equal(flagName('listen'), '--listen');
  assert.equal(flagName('dataDir'), '--data-dir');
  assert.equal(flagName('uploads.ttlSeconds'), '--uploads-ttl-seconds');
  assert.equal(flagName('tls.cert'), '--tls-cert');
});

test('settings have unique keys, env vars and flags, and defaults of their kind', () => {
  const specs = settings as readonly SettingSpec[];
  assert.equal(new Set(specs.map((s) => s.key)).size, specs.length);
  assert.equal(new Set(specs.map((s) => envName(s.key))).size, specs.length);
  assert.equal(new Set(specs.map((s) => flagName(s.key))).size, specs.length);
  for (const s of specs) {
    assert.ok(s.doc.length > 0, `${s.key} has no doc`);
    if (s.default === undefined) continue;
    const expected = s.kind === 'integer' ? 'number' : s.kind === 'boolean' ? 'boolean' : 'string';
    assert.equal(typeof s.default, expected, `${s.key} default`);
    if (s.kind === 'enum') assert.ok(s.values?.includes(s.default as string), `${s.key} default is one of its values`);
    if (s.min !== undefined) assert.ok((s.default as number) >= s.min, `${s.key} default is at least its minimum`);
  }
});

test('with nothing set, every setting has its default', (t) => {
  const cwd = workDir(t);
  const config = loadConfig({ argv: [], env: {}, cwd });
  assert.equal(config.listen, '127.0.0.1:5000');
  assert.equal(config.dataDir, path.join(cwd, 'data'));
  assert.equal(config.metadataUrl, `sqlite:${path.join(cwd, 'data', 'metadata.db')}`);
  assert.equal(config.blobUrl, `file:${path.join(cwd, 'data', 'blobs')}`);
  assert.deepEqual(config.tls, { cert: undefined, key: undefined });
  assert.equal(config.log.level, 'info');
  assert.equal(config.repositories.createOnPush, false);
  assert.equal(config.uploads.ttlSeconds, 86400);
  assert.equal(config.uploads.sweepIntervalSeconds, 900);
  assert.equal(config.manifests.maxBytes, 4 * 1024 * 1024);
  assert.equal(config.cache.ttlSeconds, 10);
  assert.equal(config.cache.manifestBytes, 64 * 1024 * 1024);
  assert.equal(config.server.shutdownGraceSeconds, 10);
  assert.equal(config.configFile, undefined);
  for (const s of settings as readonly SettingSpec[]) {
    if (s.default !== undefined && s.key !== 'dataDir') assert.equal(valueAt(config, s.key), s.default, s.key);
  }
});

test('the config is frozen all the way down', (t) => {
  const config = loadConfig({ argv: [], env: {}, cwd: workDir(t) });
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.uploads));
  assert.ok(Object.isFrozen(config.tls));
  assert.throws(() => {
    (config.uploads as { ttlSeconds: number }).ttlSeconds = 1;
  }, TypeError);
});

test('every setting can be set by its flag and by its environment variable', (t) => {
  const cwd = workDir(t);
  const sample: Record<string, [string, unknown]> = {
    listen: ['127.0.0.1:6000', '127.0.0.1:6000'],
    dataDir: ['/srv/berth', '/srv/berth'],
    metadataUrl: ['sqlite:/tmp/m.db', 'sqlite:/tmp/m.db'],
    blobUrl: ['file:/tmp/b', 'file:/tmp/b'],
    'metadata.poolSize': ['4', 4],
    's3.endpoint': ['http://127.0.0.1:7480', 'http://127.0.0.1:7480'],
    's3.region': ['eu-central-1', 'eu-central-1'],
    's3.forcePathStyle': ['true', true],
    's3.accessKeyId': ['S3KEY', 'S3KEY'],
    's3.secretAccessKey': ['s3secret', 's3secret'],
    'blobs.redirect': ['never', 'never'],
    'blobs.redirectTtlSeconds': ['300', 300],
    'tls.cert': ['/etc/c.pem', '/etc/c.pem'],
    'tls.key': ['/etc/k.pem', '/etc/k.pem'],
    'log.level': ['debug', 'debug'],
    'repositories.createOnPush': ['false', false],
    'uploads.ttlSeconds': ['60', 60],
    'uploads.sweepIntervalSeconds': ['5', 5],
    'manifests.maxBytes': ['2048', 2048],
    'lifecycle.intervalSeconds': ['3600', 3600],
    'gc.graceSeconds': ['120', 120],
    'gc.intervalSeconds': ['7200', 7200],
    'gc.delaySeconds': ['30', 30],
    'gc.deleteUntagged': ['false', false],
    'events.retentionSeconds': ['86400', 86400],
    'events.pollIntervalMs': ['100', 100],
    'events.leaseSeconds': ['10', 10],
    'events.retryBaseMs': ['50', 50],
    'events.retryMaxMs': ['5000', 5000],
    'events.webhooks': [
      '[{"id":"ci","url":"https://ci.example.com/hook","secret":"whsec_0123456789abcdef"}]',
      [{ id: 'ci', url: 'https://ci.example.com/hook', accountId: null, pattern: null, secret: 'whsec_0123456789abcdef', headers: {}, timeoutMs: 10_000, maxAttempts: 10, isEnabled: true }],
    ],
    'cache.figuresSeconds': ['0', 0],
    'console.enabled': ['false', false],
    'console.sessionSeconds': ['3600', 3600],
    'console.signInAttempts': ['10', 10],
    'replication.enabled': ['false', false],
    'replication.concurrency': ['8', 8],
    'replication.pollIntervalMs': ['100', 100],
    'replication.leaseSeconds': ['20', 20],
    'replication.retryBaseMs': ['100', 100],
    'replication.retryMaxMs': ['10000', 10000],
    'replication.chunkBytes': ['1048576', 1048576],
    'replication.peers': [
      '[{"region":"eu-west-1","endpoint":"https://berth.eu-west-1.example.com/","accessKeyId":"AKIAPEER","secretAccessKey":"peer-secret"}]',
      [{ kind: 'berth', region: 'eu-west-1', endpoint: 'https://berth.eu-west-1.example.com', accessKeyId: 'AKIAPEER', secretAccessKey: 'peer-secret', roleArn: undefined, externalId: undefined, ca: undefined, copySettings: [] }],
    ],
    'scan.enabled': ['false', false],
    'scan.concurrency': ['2', 2],
    'scan.pollIntervalMs': ['200', 200],
    'scan.leaseSeconds': ['20', 20],
    'scan.maxAttempts': ['5', 5],
    'scan.manualScanQuotaSeconds': ['0', 0],
    'scan.continuousStatus': ['ACTIVE', 'ACTIVE'],
    'scan.maxDatabaseAgeDays': ['7', 7],
    'scan.limits.maxUncompressedLayerBytes': ['1048576', 1048576],
    'scan.limits.maxLayerEntries': ['1000', 1000],
    'scan.limits.maxCompressionRatio': ['50', 50],
    'metrics.listen': ['127.0.0.1:9464', '127.0.0.1:9464'],
    'cache.ttlSeconds': ['0', 0],
    'cache.manifestBytes': ['1000', 1000],
    'cache.pullThroughEnabled': ['false', false],
    'cache.refreshSeconds': ['600', 600],
    'cache.upstreamTimeoutSeconds': ['30', 30],
    'cache.fetchLeaseSeconds': ['20', 20],
    'cache.upstreamCaFile': ['/etc/ca.pem', '/etc/ca.pem'],
    'server.shutdownGraceSeconds': ['3', 3],
    region: ['eu-west-3', 'eu-west-3'],
    'auth.enabled': ['false', false],
    'auth.secretKey': ['MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=', 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY='],
    'auth.secretKeyFile': ['/etc/berth/secret.key', '/etc/berth/secret.key'],
    'auth.cacheTtlSeconds': ['2', 2],
    'auth.tokenTtlSeconds': ['3600', 3600],
    'auth.challenge': ['bearer', 'bearer'],
    'bootstrap.accountId': ['123456789012', '123456789012'],
    'bootstrap.accessKeyId': ['AKIAEXAMPLE000000001', 'AKIAEXAMPLE000000001'],
    'bootstrap.secretAccessKey': ['example-secret-0123456789', 'example-secret-0123456789'],
    'audit.flushIntervalMs': ['50', 50],
    'server.trustProxy': ['2', 2],
  };
  const argv: string[] = [];
  const env: Record<string, string> = {};
  for (const s of settings) {
    const entry = sample[s.key];
    assert.ok(entry, `the test has a sample value for ${s.key}`);
    argv.push(flagName(s.key), entry[0]);
    env[envName(s.key)] = entry[0];
  }
  for (const config of [loadConfig({ argv, env: {}, cwd }), loadConfig({ argv: [], env, cwd })]) {
    for (const s of settings) assert.deepEqual(valueAt(config, s.key), sample[s.key]![1], s.key);
  }
});

test('metrics.listen is off by default and must be HOST:PORT', (t) => {
  const cwd = workDir(t);
  assert.equal(loadConfig({ argv: [], env: {}, cwd }).metrics.listen, undefined);
  assert.throws(() => loadConfig({ argv: ['--metrics-listen', '9464'], env: {}, cwd }), /metrics.listen: expected HOST:PORT, got "9464"/);
});

test('scale-out settings: S3 credentials go together, the endpoint is a URL, blobs.redirect takes networks', (t) => {
  const cwd = workDir(t);
  const defaults = loadConfig({ argv: [], env: {}, cwd });
  assert.equal(defaults.metadata.poolSize, 10);
  assert.deepEqual(defaults.s3, { endpoint: undefined, region: 'us-east-1', forcePathStyle: false, accessKeyId: undefined, secretAccessKey: undefined });
  assert.equal(defaults.blobs.redirect, 'always');
  assert.equal(defaults.blobs.redirectTtlSeconds, 1200);
  assert.throws(() => loadConfig({ argv: ['--s3-access-key-id', 'K'], env: {}, cwd }), /s3.accessKeyId and s3.secretAccessKey must be given together/);
  assert.throws(() => loadConfig({ argv: ['--s3-endpoint', '127.0.0.1:7480'], env: {}, cwd }), /s3.endpoint: expected http:\/\/HOST/);
  assert.throws(() => loadConfig({ argv: ['--metadata-pool-size', '0'], env: {}, cwd }), /metadata.poolSize .*at least 1/);
  const networks = loadConfig({ argv: ['--blobs-redirect', '10.0.0.0/8, 192.0.2.7,fd00::/8'], env: {}, cwd });
  assert.deepEqual(networks.blobs.redirect, ['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
  for (const bad of ['sometimes', '10.0.0.0/33', '10.0.0/8', 'fd00::/129']) {
    assert.throws(() => loadConfig({ argv: ['--blobs-redirect', bad], env: {}, cwd }), /blobs.redirect: expected always, never or a comma-separated list/, bad);
  }
});

test('precedence: default < config file < environment < flag', (t) => {
  const cwd = workDir(t);
  const file = writeJson(cwd, 'berth.json', { uploads: { ttlSeconds: 100 }, log: { level: 'warn' }, listen: '127.0.0.1:5100' });
  const env = { BERTH_CONFIG: file, BERTH_UPLOADS_TTL_SECONDS: '200', BERTH_LISTEN: '127.0.0.1:5200' };

  const all = loadConfig({ argv: ['--uploads-ttl-seconds', '300'], env, cwd });
  assert.equal(all.uploads.ttlSeconds, 300, 'the flag beats the environment and the file');
  assert.equal(all.listen, '127.0.0.1:5200', 'the environment beats the file');
  assert.equal(all.log.level, 'warn', 'the file beats the default');
  assert.equal(all.uploads.sweepIntervalSeconds, 900, 'the default when nothing sets it');
  assert.equal(all.configFile, file);

  const noFlag = loadConfig({ argv: [], env, cwd });
  assert.equal(noFlag.uploads.ttlSeconds, 200);

  const fileOnly = loadConfig({ argv: [], env: { BERTH_CONFIG: file }, cwd });
  assert.equal(fileOnly.uploads.ttlSeconds, 100);
  assert.equal(fileOnly.listen, '127.0.0.1:5100');

  assert.equal(loadConfig({ argv: [], env: {}, cwd }).uploads.ttlSeconds, 86400);
});

test('--config beats BERTH_CONFIG, and takes its value after = too', (t) => {
  const cwd = workDir(t);
  writeJson(cwd, 'a.json', { log: { level: 'warn' } });
  writeJson(cwd, 'b.json', { log: { level: 'error' } });
  assert.equal(loadConfig({ argv: ['--config', 'b.json'], env: { BERTH_CONFIG: 'a.json' }, cwd }).log.level, 'error');
  assert.equal(loadConfig({ argv: ['--config=b.json'], env: {}, cwd }).log.level, 'error');
  assert.equal(loadConfig({ argv: [], env: { BERTH_CONFIG: 'a.json' }, cwd }).log.level, 'warn');
});

test('flags take values after = or as the next argument; a bare boolean flag means true', (t) => {
  const cwd = workDir(t);
  const off = { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' };
  assert.equal(loadConfig({ argv: ['--listen=127.0.0.1:7000'], env: {}, cwd }).listen, '127.0.0.1:7000');
  assert.equal(loadConfig({ argv: ['--repositories-create-on-push'], env: off, cwd }).repositories.createOnPush, true);
  const c = loadConfig({ argv: ['--repositories-create-on-push', '--listen', '127.0.0.1:7001'], env: off, cwd });
  assert.equal(c.repositories.createOnPush, true);
  assert.equal(c.listen, '127.0.0.1:7001');
  assert.equal(loadConfig({ argv: ['--repositories-create-on-push', 'false'], env: {}, cwd }).repositories.createOnPush, false);
  assert.equal(loadConfig({ argv: ['--repositories-create-on-push=false'], env: {}, cwd }).repositories.createOnPush, false);
  assert.equal(loadConfig({ argv: ['--repositories-create-on-push=0'], env: {}, cwd }).repositories.createOnPush, false);
});

test('booleans accept true/false/1/0 from the environment, and JSON booleans from a file', (t) => {
  const cwd = workDir(t);
  for (const [raw, expected] of [['true', true], ['1', true], ['false', false], ['0', false]] as const) {
    assert.equal(loadConfig({ argv: [], env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: raw }, cwd }).repositories.createOnPush, expected, raw);
  }
  const file = writeJson(cwd, 'b.json', { repositories: { createOnPush: false } });
  assert.equal(loadConfig({ argv: ['--config', file], env: {}, cwd }).repositories.createOnPush, false);
});

test('an empty environment variable counts as unset', (t) => {
  const config = loadConfig({ argv: [], env: { BERTH_LISTEN: '', BERTH_UPLOADS_TTL_SECONDS: '' }, cwd: workDir(t) });
  assert.equal(config.listen, '127.0.0.1:5000');
  assert.equal(config.uploads.ttlSeconds, 86400);
});

test('relative paths resolve against the working directory; store URLs derive from dataDir', (t) => {
  const cwd = workDir(t);
  const config = loadConfig({ argv: ['--data-dir', 'var/berth', '--tls-cert', 'tls/cert.pem', '--tls-key', 'tls/key.pem'], env: {}, cwd });
  assert.equal(config.dataDir, path.join(cwd, 'var', 'berth'));
  assert.equal(config.metadataUrl, `sqlite:${path.join(cwd, 'var', 'berth', 'metadata.db')}`);
  assert.equal(config.blobUrl, `file:${path.join(cwd, 'var', 'berth', 'blobs')}`);
  assert.deepEqual(config.tls, { cert: path.join(cwd, 'tls', 'cert.pem'), key: path.join(cwd, 'tls', 'key.pem') });
  const explicit = loadConfig({ argv: ['--metadata-url', 'sqlite::memory:', '--blob-url', 'file:/srv/blobs'], env: {}, cwd });
  assert.equal(explicit.metadataUrl, 'sqlite::memory:');
  assert.equal(explicit.blobUrl, 'file:/srv/blobs');
});

test('bad values are reported with the key path and where they came from', (t) => {
  const cwd = workDir(t);
  const load = (options: { argv?: string[]; env?: Record<string, string> }) => () => loadConfig({ argv: options.argv ?? [], env: options.env ?? {}, cwd });

  assert.throws(load({ env: { BERTH_UPLOADS_TTL_SECONDS: '1h' } }), configError(/^uploads\.ttlSeconds \(from BERTH_UPLOADS_TTL_SECONDS\): expected a whole number, got "1h"$/));
  assert.throws(load({ argv: ['--uploads-ttl-seconds', '0'] }), configError(/^uploads\.ttlSeconds \(from --uploads-ttl-seconds\): must be at least 1, got 0$/));
  assert.throws(load({ argv: ['--manifests-max-bytes', '1.5'] }), configError(/^manifests\.maxBytes .*whole number/));
  assert.throws(load({ argv: ['--cache-ttl-seconds', '-1'] }), configError(/^cache\.ttlSeconds .*at least 0/));
  assert.throws(load({ env: { BERTH_LOG_LEVEL: 'loud' } }), configError(/^log\.level \(from BERTH_LOG_LEVEL\): expected one of fatal, error, warn, info, debug, trace, silent, got "loud"$/));
  assert.throws(load({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'yes' } }), configError(/^repositories\.createOnPush \(from BERTH_REPOSITORIES_CREATE_ON_PUSH\): expected true or false/));
  assert.throws(load({ argv: ['--listen', 'localhost'] }), configError(/^listen: expected HOST:PORT, got "localhost"$/));
  assert.throws(load({ argv: ['--listen', '127.0.0.1:70000'] }), configError(/^listen: expected HOST:PORT/));
  assert.throws(load({ argv: ['--tls-cert', 'c.pem'] }), configError(/tls\.cert and tls\.key must be given together/));
  assert.throws(load({ env: { BERTH_TLS_KEY: 'k.pem' } }), configError(/tls\.cert and tls\.key must be given together/));
  assert.throws(load({ argv: ['--events-retry-base-ms', '2000', '--events-retry-max-ms', '1000'] }), configError(/^events\.retryMaxMs: must be at least events\.retryBaseMs \(2000\), got 1000$/));

  const file = writeJson(cwd, 'bad.json', { manifests: { maxBytes: 'big' } });
  assert.throws(load({ argv: ['--config', file] }), configError(new RegExp(`^manifests\\.maxBytes \\(from ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): expected a whole number, got "big"$`)));
  const nullFile = writeJson(cwd, 'null.json', { listen: null });
  assert.throws(load({ argv: ['--config', nullFile] }), configError(/^listen \(from .*null\.json\): expected a non-empty string/));
  const typeFile = writeJson(cwd, 'type.json', { repositories: { createOnPush: 'maybe' } });
  assert.throws(load({ argv: ['--config', typeFile] }), configError(/^repositories\.createOnPush \(from .*type\.json\)/));
});

test('unknown flags, positional arguments and flags without values are rejected', (t) => {
  const cwd = workDir(t);
  assert.throws(() => loadConfig({ argv: ['--nope', '1'], env: {}, cwd }), configError(/unknown flag --nope; see docs\/configuration\.md/));
  assert.throws(() => loadConfig({ argv: ['--uploads.ttlSeconds', '1'], env: {}, cwd }), configError(/unknown flag --uploads\.ttlSeconds/));
  assert.throws(() => loadConfig({ argv: ['serve'], env: {}, cwd }), configError(/unexpected argument "serve"/));
  assert.throws(() => loadConfig({ argv: ['--listen'], env: {}, cwd }), configError(/--listen needs a value/));
  assert.throws(() => loadConfig({ argv: ['--config'], env: {}, cwd }), configError(/--config needs a value/));
});

test('unknown keys and malformed config files are rejected', (t) => {
  const cwd = workDir(t);
  const load = (value: unknown) => () => loadConfig({ argv: ['--config', writeJson(cwd, 'c.json', value)], env: {}, cwd });
  assert.throws(load({ uploads: { ttl: 5 } }), configError(/c\.json: unknown setting uploads\.ttl$/));
  assert.throws(load({ lissten: '127.0.0.1:5000' }), configError(/unknown setting lissten$/));
  assert.throws(load({ log: { level: 'info', format: 'text' } }), configError(/unknown setting log\.format$/));
  assert.throws(load({ 'uploads.ttlSeconds': 5 }), configError(/unknown setting "uploads\.ttlSeconds"; write key paths as nested objects$/));
  assert.throws(load({ tls: 'on' }), configError(/c\.json: tls must be an object$/));
  assert.throws(load([]), configError(/c\.json: the top level must be an object$/));
  assert.throws(load('{"listen": '), configError(/config file .*c\.json is not valid JSON/));
  assert.throws(() => loadConfig({ argv: ['--config', 'missing.json'], env: {}, cwd }), configError(/cannot read config file missing\.json/));
});

test('parseListen splits host and port, IPv6 in brackets', () => {
  assert.deepEqual(parseListen('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('localhost:65535'), { host: 'localhost', port: 65535 });
  assert.throws(() => parseListen(':5000'), ConfigError);
  assert.throws(() => parseListen('::1:5000'), ConfigError);
  assert.throws(() => parseListen('host:65536'), ConfigError);
});

test('docs/configuration.md lists every setting with its env var, flag and default', () => {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'configuration.md'), 'utf8');
  const rows = doc.split('\n').filter((line) => line.startsWith('| `'));
  for (const s of settings as readonly SettingSpec[]) {
    const row = rows.find((r) => r.startsWith(`| \`${s.key}\` |`));
    assert.ok(row, `docs/configuration.md has no table row for ${s.key}`);
    const cells = row.split('|').map((c) => c.trim());
    assert.equal(cells[2], `\`${envName(s.key)}\``, `env var of ${s.key}`);
    assert.equal(cells[3], `\`${flagName(s.key)}\``, `flag of ${s.key}`);
    if (s.default !== undefined) assert.ok(cells[4]!.startsWith(`\`${s.default}\``), `default of ${s.key}: ${cells[4]}`);
  }
});

test('every file in docs/examples/ loads', () => {
  const dir = path.join(repoRoot, 'docs', 'examples');
  const files = readdirSync(dir).filter((f) => !f.startsWith('.'));
  assert.ok(files.length > 0, 'docs/examples/ is empty');
  for (const name of files) {
    assert.ok(name.endsWith('.json'), `${name}: config files are JSON`);
    const config = loadConfig({ argv: ['--config', path.join(dir, name)], env: {}, cwd: repoRoot });
    assert.equal(config.configFile, path.join(dir, name));
  }
});

test('every JSON block in docs/configuration.md is a config file that loads', (t) => {
  const cwd = workDir(t);
  const doc = readFileSync(path.join(repoRoot, 'docs', 'configuration.md'), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length > 0, 'docs/configuration.md has no JSON example');
  blocks.forEach((block, i) => {
    const file = writeJson(cwd, `block-${i}.json`, block);
    assert.doesNotThrow(() => loadConfig({ argv: ['--config', file], env: {}, cwd }), `JSON block ${i + 1}`);
  });
});

test('events.webhooks: entries from the config file are checked, defaulted and their secret files read', (t) => {
  const cwd = workDir(t);
  writeFileSync(path.join(cwd, 'hook.secret'), 'whsec_from-a-file-0123\n');
  const pattern = { 'detail-type': ['ECR Image Action'], detail: { 'repository-name': [{ prefix: 'prod/' }] } };
  const file = writeJson(cwd, 'berth.json', {
    events: {
      webhooks: [
        { id: 'ci-1', url: 'https://ci.example.com/berth', account: '123456789012', pattern, secretFile: 'hook.secret', headers: { Authorization: 'Bearer x' }, timeoutSeconds: 5, maxAttempts: 3, enabled: false },
        { id: 'audit', url: 'http://127.0.0.1:8080/x', secret: 'whsec_0123456789abcdef' },
      ],
    },
  });
  const config = loadConfig({ argv: ['--config', file], env: {}, cwd });
  assert.deepEqual(config.events.webhooks, [
    { id: 'ci-1', url: 'https://ci.example.com/berth', accountId: '123456789012', pattern: JSON.stringify(pattern), secret: 'whsec_from-a-file-0123', headers: { Authorization: 'Bearer x' }, timeoutMs: 5000, maxAttempts: 3, isEnabled: false },
    { id: 'audit', url: 'http://127.0.0.1:8080/x', accountId: null, pattern: null, secret: 'whsec_0123456789abcdef', headers: {}, timeoutMs: 10_000, maxAttempts: 10, isEnabled: true },
  ]);
  assert.deepEqual(loadConfig({ argv: [], env: {}, cwd }).events.webhooks, [], 'none by default');
});

test('events.webhooks: a bad entry is reported by its index, id and problem', (t) => {
  const cwd = workDir(t);
  const ok = { id: 'ok', url: 'https://ci.example.com/hook', secret: 'whsec_0123456789abcdef' };
  const cases: [unknown, RegExp][] = [
    [{ id: 'x' }, /events\.webhooks \(from .*berth\.json\): expected a JSON array/],
    [[ok, 'nope'], /\[1\]: expected an object/],
    [[{ ...ok, id: 'Bad_Id' }], /\[0\]: id: expected 1 to 64 lower-case letters/],
    [[{ ...ok, id: undefined }], /\[0\]: id: expected/],
    [[ok, ok], /\[1\] \(id ok\): id: another entry has the same id/],
    [[{ ...ok, url: 'ftp://x/' }], /\[0\] \(id ok\): url: expected an http:\/\/ or https:\/\/ URL/],
    [[{ ...ok, url: 'not a url' }], /\(id ok\): url: /],
    [[{ ...ok, account: '12' }], /\(id ok\): account: expected an account id of 12 digits/],
    [[{ ...ok, pattern: '{"detail-type":["x"]}' }], /\(id ok\): pattern: expected an EventBridge event pattern/],
    [[{ ...ok, pattern: { detail: { 'repository-name': [{ prefix: 7 }] } } }], /\(id ok\): pattern: /],
    [[{ id: 'ok', url: ok.url }], /\(id ok\): give exactly one of secret and secretFile/],
    [[{ ...ok, secretFile: 'x' }], /\(id ok\): give exactly one of secret and secretFile/],
    [[{ ...ok, secret: 'short' }], /\(id ok\): the secret must be at least 16 characters/],
    [[{ id: 'ok', url: ok.url, secretFile: 'missing.secret' }], /\(id ok\): secretFile: cannot read .*missing\.secret/],
    [[{ ...ok, headers: { 'Berth-Signature': 'x' } }], /\(id ok\): headers: Berth-Signature: Berth sets this header itself/],
    [[{ ...ok, headers: { 'X-A': 'a\nb' } }], /\(id ok\): headers: X-A: expected a string without line breaks/],
    [[{ ...ok, timeoutSeconds: 0 }], /\(id ok\): timeoutSeconds: expected a whole number from 1 to 300/],
    [[{ ...ok, maxAttempts: 1.5 }], /\(id ok\): maxAttempts: expected a whole number from 1 to 100/],
    [[{ ...ok, enabled: 'yes' }], /\(id ok\): enabled: expected true or false/],
    [[{ ...ok, url2: 'x' }], /\(id ok\): unknown field "url2"/],
  ];
  for (const [webhooks, pattern] of cases) {
    const file = writeJson(cwd, 'berth.json', { events: { webhooks } });
    assert.throws(() => loadConfig({ argv: ['--config', file], env: {}, cwd }), configError(pattern), JSON.stringify(webhooks));
  }
  assert.throws(() => loadConfig({ argv: [], env: { BERTH_EVENTS_WEBHOOKS: '[{' }, cwd }), configError(/events\.webhooks \(from BERTH_EVENTS_WEBHOOKS\): expected JSON/));
  assert.throws(() => loadConfig({ argv: ['--events-webhooks', '[1]'], env: {}, cwd }), configError(/events\.webhooks \(from --events-webhooks\): \[0\]: expected an object/));
});
