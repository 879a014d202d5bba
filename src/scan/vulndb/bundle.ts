import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { sniffInput } from './sniff.ts';

/**
 * Berth's vulnerability database bundle (docs/scanning.md): one tar file that carries the
 * exports an operator fetched on a connected machine into an air-gapped one, either as a file or
 * as an OCI artifact pushed into Berth. Members, in this order:
 *
 * - `manifest.json`: `{"mediaType": BUNDLE_MEDIA_TYPE, "createdAt": RFC 3339, "sources":
 *   [{"file", "sha256" (hex), "size", "kind"}]}`;
 * - `manifest.json.sig` (optional): an Ed25519 signature over the exact bytes of manifest.json,
 *   in base64;
 * - the files the manifest names, each checked against its size and sha256.
 *
 * The signature covers the manifest, and the manifest the files' digests: a valid signature
 * vouches for every byte imported. The manifest comes first so that a reader checks the
 * signature, and every member's declared size, before it writes a byte of any member.
 */

export const BUNDLE_MEDIA_TYPE = 'application/vnd.berth.vulndb.bundle.v1+json';
export const BUNDLE_MANIFEST = 'manifest.json';
export const BUNDLE_SIGNATURE = 'manifest.json.sig';

/** The kinds of file a bundle carries: an OSV all.zip, the Debian tracker JSON, a JSON file of OSV records. */
export type BundleSourceKind = 'osv-zip' | 'debian-tracker-json' | 'osv-json';
const KINDS: ReadonlySet<string> = new Set<BundleSourceKind>(['osv-zip', 'debian-tracker-json', 'osv-json']);

export interface BundleManifest {
  mediaType: typeof BUNDLE_MEDIA_TYPE;
  createdAt: string;
  sources: Array<{ file: string; sha256: string; size: number; kind: BundleSourceKind }>;
}

/** manifest.json is a few lines per source; the signature is 64 bytes in base64. */
const MAX_MANIFEST_BYTES = 1024 * 1024;
const MAX_SIGNATURE_BYTES = 4096;
const MEMBER_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** Whether and how a bundle's signature was checked. */
export type SignatureCheck = 'verified' | 'unchecked' | 'unsigned';

export interface ExtractedBundle {
  manifest: BundleManifest;
  /** sha256 of the bundle file, "sha256:<hex>". */
  sha256: string;
  signature: SignatureCheck;
  /** The members, in manifest order, written under the directory given. */
  files: Array<{ name: string; path: string; sha256: string; size: number; kind: BundleSourceKind }>;
}

function fail(message: string): never {
  throw new Error(`vulnerability database bundle: ${message}`);
}

/** Checks a parsed manifest.json; throws saying what is wrong. */
export function parseBundleManifest(bytes: Buffer): BundleManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    fail(`manifest.json is not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('manifest.json is not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m['mediaType'] !== BUNDLE_MEDIA_TYPE) fail(`manifest.json mediaType is ${JSON.stringify(m['mediaType'])}, not ${BUNDLE_MEDIA_TYPE}`);
  if (typeof m['createdAt'] !== 'string' || !Number.isFinite(Date.parse(m['createdAt']))) fail('manifest.json createdAt is not an RFC 3339 time');
  if (!Array.isArray(m['sources']) || m['sources'].length === 0) fail('manifest.json names no sources');
  const names = new Set<string>();
  const sources = m['sources'].map((s: unknown, i: number) => {
    if (typeof s !== 'object' || s === null) fail(`manifest.json sources[${i}] is not an object`);
    const { file, sha256, size, kind } = s as Record<string, unknown>;
    if (typeof file !== 'string' || !MEMBER_NAME.test(file) || file === BUNDLE_MANIFEST || file === BUNDLE_SIGNATURE) fail(`manifest.json sources[${i}].file ${JSON.stringify(file)} is not a plain file name`);
    if (names.has(file)) fail(`manifest.json names ${file} twice`);
    names.add(file);
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) fail(`manifest.json sources[${i}].sha256 is not 64 lower-case hex digits`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail(`manifest.json sources[${i}].size is not a byte count`);
    if (typeof kind !== 'string' || !KINDS.has(kind)) fail(`manifest.json sources[${i}].kind ${JSON.stringify(kind)} is not one of ${[...KINDS].join(', ')}`);
    return { file, sha256, size, kind: kind as BundleSourceKind };
  });
  return { mediaType: BUNDLE_MEDIA_TYPE, createdAt: m['createdAt'], sources };
}

function publicKeyOf(key: KeyObject | string): KeyObject {
  const k = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`vulnerability database bundle: the public key is ${k.asymmetricKeyType ?? k.type}, not Ed25519`);
  return k;
}

function privateKeyOf(key: KeyObject | string): KeyObject {
  const k = typeof key === 'string' ? createPrivateKey(key) : key;
  if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519') throw new Error('vulnerability database bundle: the signing key is not an Ed25519 private key');
  return k;
}

/** Signs manifest bytes: the content of manifest.json.sig. */
export function signManifest(manifest: Buffer, privateKey: KeyObject | string): string {
  return `${sign(null, manifest, privateKeyOf(privateKey)).toString('base64')}\n`;
}

/**
 * Decides on a bundle's signature: a bad signature is always refused; a signature with no key
 * to check it, or no signature, is refused when one is required and otherwise reported.
 */
export function checkSignature(manifest: Buffer, signature: Buffer | undefined, options: { publicKey?: KeyObject | string | undefined; requireSignature?: boolean | undefined }): SignatureCheck {
  if (signature === undefined) {
    if (options.requireSignature) fail('it is not signed, and a signature is required');
    return 'unsigned';
  }
  if (options.publicKey === undefined) {
    if (options.requireSignature) fail('it is signed, but no public key is configured to check the signature');
    return 'unchecked';
  }
  const text = signature.toString('latin1').trim();
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (bytes.length !== 64 || !verify(null, manifest, publicKeyOf(options.publicKey), bytes)) fail('the signature of manifest.json does not verify with the configured public key');
  return 'verified';
}

async function readAll(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) fail(`${what} is larger than ${limit} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** A pass-through that hashes what flows through it. */
function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

/**
 * Reads a bundle, checking its signature (checkSignature) and writing its members into `dir`
 * (which must exist and be empty) while hashing them; rejects on any mismatch with the
 * manifest, any member it does not name, any other kind of tar entry. What it wrote stays in
 * `dir` for the caller to remove.
 */
export async function extractBundle(file: string, dir: string, options: { publicKey?: KeyObject | string | undefined; requireSignature?: boolean | undefined } = {}): Promise<ExtractedBundle> {
  const bundleHash = createHash('sha256');
  const source = createReadStream(file);
  const extract = tarStream.extract();
  const feeding = pipeline(source, hashing(bundleHash), extract as unknown as Writable);
  // Surfaced through the entry loop below, or awaited at its end.
  feeding.catch(() => {});

  let manifestBytes: Buffer | undefined;
  let manifest: BundleManifest | undefined;
  let signatureBytes: Buffer | undefined;
  let signature: SignatureCheck | undefined;
  const written = new Map<string, { sha256: string; size: number }>();
  const decide = (): SignatureCheck => (signature ??= checkSignature(manifestBytes!, signatureBytes, options));
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const name = header.name.replace(/^\.\//, '');
      if (header.type !== 'file') fail(`it holds ${JSON.stringify(header.name)}, a ${header.type ?? 'special'} entry; a bundle holds only files`);
      if (manifest === undefined) {
        if (name !== BUNDLE_MANIFEST) fail(`its first member is ${JSON.stringify(header.name)}, not ${BUNDLE_MANIFEST}`);
        manifestBytes = await readAll(entry as unknown as Readable, MAX_MANIFEST_BYTES, BUNDLE_MANIFEST);
        manifest = parseBundleManifest(manifestBytes);
        continue;
      }
      if (name === BUNDLE_SIGNATURE && signatureBytes === undefined && signature === undefined && written.size === 0) {
        signatureBytes = await readAll(entry as unknown as Readable, MAX_SIGNATURE_BYTES, BUNDLE_SIGNATURE);
        continue;
      }
      // Before the first byte of any member is written.
      decide();
      const declared = manifest.sources.find((s) => s.file === name);
      if (!declared) fail(`it holds ${JSON.stringify(header.name)}, which manifest.json does not name`);
      if (written.has(name)) fail(`it holds ${name} twice`);
      if (header.size !== declared.size) fail(`${name} is ${header.size ?? 0} bytes, manifest.json says ${declared.size}`);
      const hash = createHash('sha256');
      await pipeline(entry as unknown as Readable, hashing(hash), createWriteStream(path.join(dir, name), { flags: 'wx', mode: 0o600 }));
      const sha256 = hash.digest('hex');
      if (sha256 !== declared.sha256) fail(`${name} has sha256 ${sha256}, manifest.json says ${declared.sha256}`);
      written.set(name, { sha256, size: declared.size });
    }
    await feeding;
  } catch (err) {
    source.destroy();
    extract.destroy();
    if (err instanceof Error && err.message.startsWith('vulnerability database bundle:')) throw err;
    throw new Error(`vulnerability database bundle: ${file} is not a readable tar file (${(err as Error).message})`, { cause: err });
  }
  if (manifest === undefined) fail(`${file} holds no ${BUNDLE_MANIFEST}`);
  const check = decide();
  const missing = manifest.sources.filter((s) => !written.has(s.file)).map((s) => s.file);
  if (missing.length > 0) fail(`it lacks ${missing.join(', ')}, named in manifest.json`);
  return {
    manifest,
    sha256: `sha256:${bundleHash.digest('hex')}`,
    signature: check,
    files: manifest.sources.map((s) => ({ name: s.file, path: path.join(dir, s.file), sha256: `sha256:${s.sha256}`, size: s.size, kind: s.kind })),
  };
}

export interface CreatedBundle {
  file: string;
  /** sha256 of the bundle, "sha256:<hex>": the digest of the OCI layer that carries it. */
  sha256: string;
  size: number;
  manifest: BundleManifest;
  isSigned: boolean;
}

/** A member name for an input: its base name, or with its directory's (OSV's exports are all `all.zip`). */
function memberName(input: string, taken: Set<string>, index: number): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.]+/, '_').slice(0, 150);
  const base = clean(path.basename(input));
  const candidates = [base, `${clean(path.basename(path.dirname(path.resolve(input))))}-${base}`, `${index + 1}-${base}`];
  const name = candidates.find((c) => MEMBER_NAME.test(c) && c !== BUNDLE_MANIFEST && c !== BUNDLE_SIGNATURE && !taken.has(c));
  if (name === undefined) fail(`no member name for ${input}`);
  taken.add(name);
  return name;
}

/**
 * Writes a bundle of the given exports (OSV all.zip files, Debian tracker JSON, OSV JSON files)
 * to `out`, signed when a private key is given. Files are streamed into the tar, never held in
 * memory, and hashed again as they are written: a file that changes meanwhile fails the bundle.
 * The bundle appears at `out` only when complete.
 */
export async function createBundle(inputs: string[], out: string, options: { privateKey?: KeyObject | string; now?: () => number } = {}): Promise<CreatedBundle> {
  if (inputs.length === 0) fail('no input files given');
  const taken = new Set<string>();
  const sources: BundleManifest['sources'] = [];
  for (const [i, input] of inputs.entries()) {
    const kind = await sniffInput(input);
    if (kind === 'osv-dir' || kind === 'bundle') fail(`${input}: a bundle carries OSV all.zip files, Debian tracker JSON and OSV JSON files, not ${kind === 'bundle' ? 'other bundles' : 'directories (zip the directory)'}`);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(input) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    sources.push({ file: memberName(input, taken, i), sha256: hash.digest('hex'), size, kind });
  }
  const manifest: BundleManifest = { mediaType: BUNDLE_MEDIA_TYPE, createdAt: new Date((options.now ?? Date.now)()).toISOString(), sources };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = options.privateKey === undefined ? undefined : signManifest(manifestBytes, options.privateKey);

  const partial = `${out}.partial-${process.pid}`;
  const bundleHash = createHash('sha256');
  let bundleSize = 0;
  const pack = tarStream.pack();
  const mtime = new Date(Date.parse(manifest.createdAt));
  const writing = pipeline(
    pack as unknown as Readable,
    hashing(bundleHash),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        bundleSize += chunk.length;
        done(null, chunk);
      },
    }),
    createWriteStream(partial, { mode: 0o644 }),
  );
  writing.catch(() => {});
  const addBuffer = (name: string, bytes: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, size: bytes.length, mode: 0o644, mtime }, bytes, (err) => (err ? reject(err) : resolve())));
  try {
    await addBuffer(BUNDLE_MANIFEST, manifestBytes);
    if (signature !== undefined) await addBuffer(BUNDLE_SIGNATURE, Buffer.from(signature));
    for (const [i, s] of sources.entries()) {
      const hash = createHash('sha256');
      const sink = pack.entry({ name: s.file, size: s.size, mode: 0o644, mtime });
      await pipeline(createReadStream(inputs[i]!), hashing(hash), sink as unknown as Writable);
      if (hash.digest('hex') !== s.sha256) fail(`${inputs[i]} changed while the bundle was written`);
    }
    pack.finalize();
    await writing;
    await rename(partial, out);
  } catch (err) {
    pack.destroy();
    await rm(partial, { force: true });
    throw err;
  }
  const { size } = await stat(out);
  if (size !== bundleSize) fail(`${out} is ${size} bytes, ${bundleSize} were written`);
  return { file: out, sha256: `sha256:${bundleHash.digest('hex')}`, size, manifest, isSigned: signature !== undefined };
}
