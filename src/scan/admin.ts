import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Digest } from '../digest/digest.ts';
import type { Registry } from '../registry/registry.ts';
import { bundleArtifactManifest, bundleFromArtifact, EMPTY_CONFIG_BYTES, EMPTY_CONFIG_DESCRIPTOR } from './vulndb/artifact.ts';
import { fileSha256 } from './vulndb/osv-input.ts';
import { importVulnDb, type ImportOptions, type ImportSummary } from './vulndb/import.ts';

/**
 * The operator's side of the vulnerability database (`berth vulndb`, docs/scanning.md): imports
 * from files or from a bundle pushed into Berth as an OCI artifact (`oci://REPOSITORY:TAG`), and
 * pushing a bundle as such an artifact, so that an air-gapped site carries it like an image.
 */

/** `oci://NAME:TAG` or `oci://NAME@sha256:...` as a repository and a reference; undefined for a path. */
export function parseOciInput(input: string): { name: string; reference: string } | undefined {
  if (!input.startsWith('oci://')) return undefined;
  const rest = input.slice('oci://'.length);
  const at = rest.indexOf('@');
  if (at > 0) return { name: rest.slice(0, at), reference: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && !rest.slice(colon).includes('/')) return { name: rest.slice(0, colon), reference: rest.slice(colon + 1) };
  return { name: rest, reference: 'latest' };
}

/** Imports the inputs; `oci://` ones are read from the registry (the account's repository). */
export async function importInputs(registry: Registry, account: string, inputs: string[], options: ImportOptions): Promise<ImportSummary> {
  const temp = await mkdtemp(path.join(options.tempDir ?? tmpdir(), 'berth-vulndb-'));
  try {
    const files: string[] = [];
    for (const input of inputs) {
      const oci = parseOciInput(input);
      if (!oci) {
        files.push(input);
        continue;
      }
      const repo = { account, name: oci.name };
      const manifest = await registry.getManifest(repo, oci.reference);
      const readBlob = async (digest: string): Promise<Readable> => registry.openBlob(await registry.statBlob(repo, digest as Digest));
      files.push(await bundleFromArtifact(manifest.payload, readBlob, temp));
    }
    return await importVulnDb(registry.scans.vulnDb, files, { ...options, tempDir: temp });
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** Pushes a bundle file into the repository as the vulnerability-database artifact, under `tag`. */
export async function pushBundle(registry: Registry, account: string, repositoryName: string, tag: string, file: string): Promise<{ digest: string; bundleDigest: string; size: number }> {
  const repo = { account, name: repositoryName };
  await registry.createRepository(repo);
  const size = (await stat(file)).size;
  const bundleDigest = await fileSha256(file);
  await registry.pushBlob(repo, bundleDigest as Digest, createReadStream(file), { length: size });
  await registry.pushBlob(repo, EMPTY_CONFIG_DESCRIPTOR.digest as Digest, Readable.from([EMPTY_CONFIG_BYTES]), { length: EMPTY_CONFIG_BYTES.length });
  const manifest = Buffer.from(JSON.stringify(bundleArtifactManifest(bundleDigest, size, { 'org.opencontainers.image.created': new Date().toISOString() })));
  const result = await registry.putManifest(repo, tag, 'application/vnd.oci.image.manifest.v1+json', manifest);
  return { digest: result.digest, bundleDigest, size };
}
