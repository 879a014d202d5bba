import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes content straight into nginx's document root at the paths a registry serves it from,
 * since nginx has no push API. The bytes are the ones pushed to the registries.
 */
export async function placeBlobFile(root: string, repo: string, digest: string, source: string): Promise<void> {
  const dir = path.join(root, 'v2', repo, 'blobs');
  await mkdir(dir, { recursive: true });
  await copyFile(source, path.join(dir, digest));
}

export async function placeBlobBytes(root: string, repo: string, digest: string, bytes: Buffer): Promise<void> {
  const dir = path.join(root, 'v2', repo, 'blobs');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, digest), bytes);
}

/** The same bytes under the tag and under the digest, as a registry answers both. */
export async function placeManifest(root: string, repo: string, references: string[], bytes: Buffer): Promise<void> {
  const dir = path.join(root, 'v2', repo, 'manifests');
  await mkdir(dir, { recursive: true });
  for (const reference of references) await writeFile(path.join(dir, reference), bytes);
}
