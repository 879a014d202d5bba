import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDownload, downloadUrl, DOWNLOAD_URL_TTL_SECONDS, parseDownloadPath } from './download-url.ts';
import { Secrets } from './secrets.ts';

const secrets = new Secrets(Buffer.alloc(32, 7));
const repo = { account: '111122223333', name: 'team/blobs/app' };
const digest = `sha256:${'a'.repeat(64)}`;
const T = 1_800_000_000_000;

function issued(): { path: string; query: URLSearchParams } {
  const url = new URL(downloadUrl(secrets, 'http://registry.example:5000', repo, digest, T));
  return { path: url.pathname, query: url.searchParams };
}

test('a download URL names the repository and digest, and checks out until it expires', () => {
  const { path, query } = issued();
  assert.equal(path, `/download/111122223333/team/blobs/app/blobs/${digest}`);
  assert.deepEqual(parseDownloadPath(path), { repo, digest });
  assert.equal(query.get('X-Berth-Expires'), String(T / 1000 + DOWNLOAD_URL_TTL_SECONDS));
  assert.equal(checkDownload(secrets, repo, digest, query, T), undefined);
  assert.equal(checkDownload(secrets, repo, digest, query, T + DOWNLOAD_URL_TTL_SECONDS * 1000 - 1), undefined);
  assert.equal(checkDownload(secrets, repo, digest, query, T + DOWNLOAD_URL_TTL_SECONDS * 1000), 'expired');
});

test('changing the repository, account, digest, expiry or signature, or another key, makes it invalid', () => {
  const { query } = issued();
  assert.equal(checkDownload(secrets, { ...repo, name: 'team/other' }, digest, query, T), 'invalid');
  assert.equal(checkDownload(secrets, { ...repo, account: '444455556666' }, digest, query, T), 'invalid');
  assert.equal(checkDownload(secrets, repo, `sha256:${'b'.repeat(64)}`, query, T), 'invalid');
  const later = new URLSearchParams(query);
  later.set('X-Berth-Expires', String(Number(query.get('X-Berth-Expires')) + 3600));
  assert.equal(checkDownload(secrets, repo, digest, later, T), 'invalid');
  const forged = new URLSearchParams(query);
  forged.set('X-Berth-Signature', 'A' + query.get('X-Berth-Signature')!.slice(1));
  assert.equal(checkDownload(secrets, repo, digest, forged, T), 'invalid');
  assert.equal(checkDownload(new Secrets(Buffer.alloc(32, 8)), repo, digest, query, T), 'invalid');
  assert.equal(checkDownload(secrets, repo, digest, new URLSearchParams(), T), 'invalid');
  assert.equal(checkDownload(secrets, repo, digest, new URLSearchParams({ 'X-Berth-Expires': 'soon', 'X-Berth-Signature': 'x' }), T), 'invalid');
});

test('parseDownloadPath refuses what is not a download path', () => {
  assert.equal(parseDownloadPath('/download/1111/team/app/blobs/sha256:x'), undefined);
  assert.equal(parseDownloadPath('/download/111122223333/blobs/sha256:x'), undefined);
  assert.equal(parseDownloadPath('/v2/team/app/blobs/sha256:x'), undefined);
});
