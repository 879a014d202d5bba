import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CacheRule } from '../store/meta/cache-store.ts';
import { ROOT, RuleError, normalizePrefix, normalizeUpstreamUrl, parseUpstreamUrl, ruleFor, upstreamKind, upstreamRepository } from './rules.ts';

function rule(ecrRepositoryPrefix: string, overrides: Partial<CacheRule> = {}): CacheRule {
  return {
    accountId: '111122223333',
    ecrRepositoryPrefix,
    upstreamRegistryUrl: 'quay.io',
    upstreamRegistry: 'quay',
    upstreamRepositoryPrefix: ROOT,
    credentialArn: null,
    customRoleArn: null,
    createdAtMs: 0,
    updatedAtMs: 0,
    ...overrides,
  };
}

/** Asserts that parseUpstreamUrl refuses `raw` as an invalid parameter, with a message matching `message`. */
function refused(raw: string, message: RegExp): void {
  assert.throws(
    () => parseUpstreamUrl(raw),
    (err: unknown) => err instanceof RuleError && err.code === 'InvalidParameterException' && message.test(err.message),
    raw,
  );
}

test('parseUpstreamUrl: a bare host is HTTPS; http:// and https:// are kept with their port', () => {
  assert.deepEqual(parseUpstreamUrl('quay.io'), { origin: 'https://quay.io', host: 'quay.io' });
  assert.deepEqual(parseUpstreamUrl('  ghcr.io  '), { origin: 'https://ghcr.io', host: 'ghcr.io' }, 'trimmed');
  assert.deepEqual(parseUpstreamUrl('registry.example.com:5443'), { origin: 'https://registry.example.com:5443', host: 'registry.example.com:5443' });
  assert.deepEqual(parseUpstreamUrl('https://Quay.IO/'), { origin: 'https://quay.io', host: 'quay.io' }, 'host lower-cased, a lone slash is no path');
  assert.deepEqual(parseUpstreamUrl('http://127.0.0.1:5000'), { origin: 'http://127.0.0.1:5000', host: '127.0.0.1:5000' });
  assert.deepEqual(parseUpstreamUrl('HTTP://127.0.0.1:5000/'), { origin: 'http://127.0.0.1:5000', host: '127.0.0.1:5000' });
  assert.deepEqual(parseUpstreamUrl('https://[::1]:5000'), { origin: 'https://[::1]:5000', host: '[::1]:5000' });
});

test('parseUpstreamUrl: docker.io and index.docker.io mean registry-1.docker.io, where Docker Hub answers', () => {
  for (const raw of ['docker.io', 'index.docker.io', 'https://docker.io', 'https://index.docker.io/', 'registry-1.docker.io', 'docker.io:443']) {
    assert.deepEqual(parseUpstreamUrl(raw), { origin: 'https://registry-1.docker.io', host: 'registry-1.docker.io' }, raw);
  }
  // Another port is another registry, not Docker Hub.
  assert.deepEqual(parseUpstreamUrl('docker.io:5000'), { origin: 'https://docker.io:5000', host: 'docker.io:5000' });
});

test('parseUpstreamUrl refuses paths, credentials, queries, fragments, other schemes and non-hosts', () => {
  for (const raw of ['quay.io/library', 'https://quay.io/v2/', 'http://127.0.0.1:5000/prefix', 'registry-1.docker.io/library/alpine']) refused(raw, /no path, credentials or query/);
  for (const raw of ['user:secret@quay.io', 'https://user@quay.io', 'http://u:p@127.0.0.1:5000']) refused(raw, /no path, credentials or query/);
  for (const raw of ['quay.io?x=1', 'quay.io#top']) refused(raw, /no path, credentials or query/);
  for (const raw of ['ftp://quay.io', 'oci://quay.io', 'docker://registry-1.docker.io', 'file:///etc/passwd']) refused(raw, /not [a-z]+:\/\/|no path/);
  for (const raw of ['', '   ', 'https://', 'quay io', 'http://[::1']) refused(raw, /not a registry host name|no path, credentials or query/);
  // Credentials belong in a secret: the refusal says where.
  assert.throws(() => parseUpstreamUrl('user:secret@quay.io'), /credentialArn/);
});

test('normalizeUpstreamUrl: as given minus trailing slashes, lower-cased; an explicit scheme becomes the origin', () => {
  assert.equal(normalizeUpstreamUrl('Quay.IO'), 'quay.io');
  assert.equal(normalizeUpstreamUrl(' quay.io/ '), 'quay.io');
  assert.equal(normalizeUpstreamUrl('Registry.Example.com:5443/'), 'registry.example.com:5443');
  assert.equal(normalizeUpstreamUrl('registry-1.docker.io'), 'registry-1.docker.io');
  assert.equal(normalizeUpstreamUrl('http://127.0.0.1:5000/'), 'http://127.0.0.1:5000');
  assert.equal(normalizeUpstreamUrl('HTTPS://Quay.io'), 'https://quay.io');
  assert.equal(normalizeUpstreamUrl('https://docker.io'), 'https://registry-1.docker.io');
  // What it stores parses back to the same endpoint.
  for (const raw of ['Quay.IO/', 'http://127.0.0.1:5000/', 'https://index.docker.io', 'docker.io', 'ghcr.io:443']) {
    assert.deepEqual(parseUpstreamUrl(normalizeUpstreamUrl(raw)), parseUpstreamUrl(raw), raw);
  }
  assert.throws(() => normalizeUpstreamUrl('quay.io/some/path'), RuleError);
  assert.throws(() => normalizeUpstreamUrl('ftp://quay.io'), RuleError);
});

test('upstreamKind names each registry ECR knows, and nothing for any other', () => {
  const known: Array<[string, string]> = [
    ['registry-1.docker.io', 'docker-hub'],
    ['docker.io', 'docker-hub'],
    ['index.docker.io', 'docker-hub'],
    ['public.ecr.aws', 'ecr-public'],
    ['quay.io', 'quay'],
    ['registry.k8s.io', 'k8s'],
    ['ghcr.io', 'github-container-registry'],
    ['myregistry.azurecr.io', 'azure-container-registry'],
    ['registry.gitlab.com', 'gitlab-container-registry'],
    ['cgr.dev', 'chainguard'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 'ecr'],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', 'ecr'],
    // Case and HTTPS's default port do not change the registry.
    ['Quay.IO', 'quay'],
    ['ghcr.io:443', 'github-container-registry'],
  ];
  for (const [host, kind] of known) assert.equal(upstreamKind(host), kind, host);
  for (const host of ['127.0.0.1:5000', 'registry.example.com', 'quay.io:5000', 'notquay.io', 'quay.io.example.com', 'azurecr.io', 'ghcr.io.evil.test', '12345.dkr.ecr.us-east-1.amazonaws.com', '123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.test']) {
    assert.equal(upstreamKind(host), undefined, host);
  }
});

test('normalizePrefix drops trailing slashes and keeps ROOT', () => {
  assert.equal(normalizePrefix('docker-hub/'), 'docker-hub');
  assert.equal(normalizePrefix('team/cache//'), 'team/cache');
  assert.equal(normalizePrefix('quay'), 'quay');
  assert.equal(normalizePrefix(ROOT), ROOT);
});

test('ruleFor: the longest prefix that is a whole leading part of the name wins, in any order', () => {
  const hub = rule('docker-hub');
  const library = rule('docker-hub/library');
  const quay = rule('quay');
  for (const rules of [[hub, library, quay], [library, quay, hub], [quay, hub, library]]) {
    assert.deepEqual(ruleFor(rules, 'docker-hub/library/alpine'), { rule: library, rest: 'alpine' });
    assert.deepEqual(ruleFor(rules, 'docker-hub/bitnami/redis'), { rule: hub, rest: 'bitnami/redis' });
    assert.deepEqual(ruleFor(rules, 'docker-hub/library'), { rule: hub, rest: 'library' }, 'a name equal to a longer prefix falls to the shorter one');
    assert.deepEqual(ruleFor(rules, 'quay/coreos/etcd'), { rule: quay, rest: 'coreos/etcd' });
  }
});

test('ruleFor: a prefix never covers the name equal to it, nor a name merely starting with its letters', () => {
  const rules = [rule('docker-hub'), rule('quay')];
  for (const name of ['docker-hub', 'docker-hubx/alpine', 'docker-hub-mirror/alpine', 'quay', 'quayside/app', 'quay.io/app', 'other/docker-hub/alpine', 'docker']) {
    assert.equal(ruleFor(rules, name), undefined, name);
  }
  assert.equal(ruleFor([], 'docker-hub/alpine'), undefined, 'no rules, no match');
});

test('ruleFor: ROOT covers every name no prefix covers, with the whole name as the rest', () => {
  const root = rule(ROOT, { upstreamRegistryUrl: 'http://127.0.0.1:5000', upstreamRegistry: null });
  const hub = rule('docker-hub');
  for (const rules of [[root, hub], [hub, root]]) {
    assert.deepEqual(ruleFor(rules, 'docker-hub/alpine'), { rule: hub, rest: 'alpine' }, 'a prefix beats ROOT, before or after it');
    assert.deepEqual(ruleFor(rules, 'docker-hub'), { rule: root, rest: 'docker-hub' });
    assert.deepEqual(ruleFor(rules, 'docker-hubx/alpine'), { rule: root, rest: 'docker-hubx/alpine' });
    assert.deepEqual(ruleFor(rules, 'app'), { rule: root, rest: 'app' });
  }
  assert.deepEqual(ruleFor([root], 'team/app/api'), { rule: root, rest: 'team/app/api' });
});

test('upstreamRepository: the rest under the upstream prefix; Docker Hub puts one-component names under library/', () => {
  const quay = rule('quay');
  assert.equal(upstreamRepository(quay, 'coreos/etcd'), 'coreos/etcd');
  assert.equal(upstreamRepository(quay, 'etcd'), 'etcd', 'only Docker Hub has library/');
  assert.equal(upstreamRepository(rule('quay', { upstreamRepositoryPrefix: 'coreos' }), 'etcd'), 'coreos/etcd');
  assert.equal(upstreamRepository(rule('mirror', { upstreamRepositoryPrefix: 'team/mirrors', upstreamRegistry: null }), 'app/api'), 'team/mirrors/app/api');

  const hub = rule('docker-hub', { upstreamRegistryUrl: 'registry-1.docker.io', upstreamRegistry: 'docker-hub' });
  assert.equal(upstreamRepository(hub, 'alpine'), 'library/alpine');
  assert.equal(upstreamRepository(hub, 'library/alpine'), 'library/alpine');
  assert.equal(upstreamRepository(hub, 'bitnami/redis'), 'bitnami/redis');
  assert.equal(upstreamRepository({ ...hub, upstreamRepositoryPrefix: 'bitnami' }, 'redis'), 'bitnami/redis', 'a prefixed name has a namespace already');
  assert.equal(upstreamRepository({ ...hub, upstreamRepositoryPrefix: 'library' }, 'alpine'), 'library/alpine', 'not library/library/');

  // ruleFor and upstreamRepository together, as a pull maps a name.
  const found = ruleFor([hub], 'docker-hub/nginx');
  assert.ok(found);
  assert.equal(upstreamRepository(found.rule, found.rest), 'library/nginx');
});
