import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BlobStore } from '../store/blob/blob-store.ts';
import { BlobRedirects } from './blob-redirect.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const presigning = { presign: async (d: string, ttl: number) => `https://store.example/${d}?ttl=${ttl}` } as unknown as BlobStore;
const plain = {} as BlobStore;

test('always redirects every client, with the configured lifetime, when the store can presign', async () => {
  const r = new BlobRedirects(presigning, 'always', 600);
  assert.equal(await r.urlFor(digest, '203.0.113.9'), `https://store.example/${digest}?ttl=600`);
});

test('never, or a store that cannot presign, proxies', async () => {
  assert.equal(await new BlobRedirects(presigning, 'never', 600).urlFor(digest, '127.0.0.1'), undefined);
  assert.equal(await new BlobRedirects(plain, 'always', 600).urlFor(digest, '127.0.0.1'), undefined);
});

test('a list of networks redirects only clients inside them; IPv4-mapped IPv6 peers count as IPv4', () => {
  const r = new BlobRedirects(presigning, ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'], 600);
  assert.equal(r.appliesTo('10.1.2.3'), true);
  assert.equal(r.appliesTo('::ffff:10.1.2.3'), true);
  assert.equal(r.appliesTo('192.0.2.7'), true);
  assert.equal(r.appliesTo('192.0.2.8'), false);
  assert.equal(r.appliesTo('fd12::1'), true);
  assert.equal(r.appliesTo('2001:db8::1'), false);
  assert.equal(r.appliesTo('not-an-ip'), false);
});
