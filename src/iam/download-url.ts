import type { RepoRef } from '../registry/names.ts';
import { timingSafeStringEqual } from './secrets.ts';

/**
 * The URLs GetDownloadUrlForLayer hands out. ECR answers with a presigned S3 URL; Berth answers
 * with one on the registry itself that serves the layer to whoever holds it, with no other
 * credentials, until it expires:
 *
 *   /download/ACCOUNT/NAME/blobs/DIGEST?X-Berth-Expires=EPOCH_SECONDS&X-Berth-Signature=HMAC
 *
 * The HMAC (a key derived from the instance's secret key, so any node of a cluster can check
 * it) covers the account, the repository, the digest and the expiry: changing any of them, or
 * using the URL after it expired, gets 403 DENIED. The caller's permission was checked when
 * the URL was issued, as AWS does for presigned URLs; the repository must still hold the layer.
 */

export const DOWNLOAD_URL_TTL_SECONDS = 600;
export const DOWNLOAD_PATH_PREFIX = '/download/';

export interface DownloadSigner {
  signDownload(fields: readonly string[]): string;
}

function fields(repo: RepoRef, digest: string, expiresAtSeconds: number): string[] {
  return ['berth-download-v1', repo.account, repo.name, digest, String(expiresAtSeconds)];
}

export function downloadUrl(signer: DownloadSigner, endpoint: string, repo: RepoRef, digest: string, nowMs: number): string {
  const expires = Math.floor(nowMs / 1000) + DOWNLOAD_URL_TTL_SECONDS;
  const query = new URLSearchParams({ 'X-Berth-Expires': String(expires), 'X-Berth-Signature': signer.signDownload(fields(repo, digest, expires)) });
  return `${endpoint}${DOWNLOAD_PATH_PREFIX}${repo.account}/${repo.name}/blobs/${digest}?${query}`;
}

/** The repository and digest of a download path (`/download/ACCOUNT/NAME/blobs/DIGEST`), or undefined. */
export function parseDownloadPath(pathname: string): { repo: RepoRef; digest: string } | undefined {
  const m = /^\/download\/(\d{12})\/(.+)\/blobs\/([^/]+)$/.exec(pathname);
  return m ? { repo: { account: m[1]!, name: m[2]! }, digest: m[3]! } : undefined;
}

/** Why a download URL is refused, or undefined when it is good. */
export function checkDownload(signer: DownloadSigner, repo: RepoRef, digest: string, query: URLSearchParams, nowMs: number): 'expired' | 'invalid' | undefined {
  const expiresText = query.get('X-Berth-Expires') ?? '';
  const signature = query.get('X-Berth-Signature') ?? '';
  if (!/^\d{1,12}$/.test(expiresText) || signature === '') return 'invalid';
  const expires = Number(expiresText);
  if (!timingSafeStringEqual(signature, signer.signDownload(fields(repo, digest, expires)))) return 'invalid';
  if (expires * 1000 <= nowMs) return 'expired';
  return undefined;
}
