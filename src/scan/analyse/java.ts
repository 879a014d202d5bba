/**
 * Java archives (.jar, .war, .ear, .par): the Maven artifacts they contain. Maven's archiver
 * writes `META-INF/maven/<groupId>/<artifactId>/pom.properties` into every jar it builds, and
 * shaded and fat jars keep those of the libraries folded into them, so every such file is one
 * package. Archives inside archives (WEB-INF/lib, BOOT-INF/lib, an ear's modules) are
 * extracted to the analyser's temporary directory and read the same way; their packages'
 * `path` is the chain of archives, "app.war!WEB-INF/lib/x.jar", as java's own jar: URLs
 * write it, so a finding names the jar to replace.
 *
 * An archive without pom.properties gets a package from its manifest only when the manifest
 * names the group (Implementation-Vendor-Id, which Maven writes as the groupId) and the file
 * name is "<artifactId>-<version>.jar" with the version the manifest gives: anything looser
 * (Bundle-SymbolicName, titles) would guess the Maven coordinates, and a guess that matches
 * the wrong artifact is worse than a missing package. Such archives yield nothing.
 *
 * Zip files come from images, so their sizes are bounded: the entry count, the size of what is
 * read or extracted (as declared and as inflated; yauzl checks one against the other), the
 * total extracted per top-level archive, and the depth of nesting.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Entry, ZipFile } from 'yauzl';
import yauzl from 'yauzl';
import type { FileFacts, Package } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';
import { ScanInputError } from './analyser.ts';

const ARCHIVE = /\.(jar|war|ear|par)$/i;
const POM_PROPERTIES = /^META-INF\/maven\/[^/]+\/[^/]+\/pom\.properties$/;
/** Fat jars reach tens of thousands of entries; far more is a zip made to exhaust us. */
export const MAX_ENTRIES = 500_000;
/** Archives nested deeper than this (an archive in an archive in an archive in the image's archive) are not opened. */
export const MAX_DEPTH = 3;
const MAX_TEXT_BYTES = 1024 * 1024;
/** One nested archive, and all of them together for one archive of the image. */
export const MAX_NESTED_BYTES = 512 * 1024 * 1024;
export const MAX_EXTRACTED_BYTES = 2 * 1024 * 1024 * 1024;

interface Walk {
  tempDir: string;
  signal: AbortSignal;
  extractedBytes: number;
  packages: Package[];
  notes: string[];
}

export const javaAnalyser: FileAnalyser = {
  name: 'java-archive',
  input: 'file',
  maxBytes: 1024 * 1024 * 1024,
  tooLarge: 'skip',
  wants: (entry: EntryInfo) => ARCHIVE.test(entry.path),
  async analyse(entry, input, context) {
    const walk: Walk = { ...context, extractedBytes: 0, packages: [], notes: [] };
    await readArchive(input, entry.path, 0, walk);
    const facts: FileFacts = {};
    if (walk.packages.length) facts.packages = walk.packages;
    if (walk.notes.length) facts.notes = walk.notes;
    return facts;
  },
};

async function openZip(input: AnalyserInput): Promise<ZipFile> {
  const options = { lazyEntries: true, validateEntrySizes: true, autoClose: false, strictFileNames: false, decodeStrings: true };
  return input.kind === 'file' ? yauzl.openPromise(input.path, options) : yauzl.fromBufferPromise(input.data, options);
}

function nextEntry(zip: ZipFile): Promise<Entry | undefined> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, value?: Entry) => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
      if (err) reject(err);
      else resolve(value);
    };
    const onEntry = (e: Entry) => done(null, e);
    const onEnd = () => done(null);
    const onError = (err: Error) => done(err);
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

async function readText(zip: ZipFile, entry: Entry, where: string): Promise<string> {
  if (entry.uncompressedSize > MAX_TEXT_BYTES) {
    throw new ScanInputError(`${where}: ${entry.fileName} claims ${entry.uncompressedSize} bytes, more than a metadata file holds`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one archive (the image's file or one extracted from it) and those inside it. */
async function readArchive(input: AnalyserInput, where: string, depth: number, walk: Walk): Promise<void> {
  let zip: ZipFile;
  try {
    zip = await openZip(input);
  } catch (err) {
    // A .jar that is not a zip (a placeholder, a truncated download) says nothing about packages.
    walk.notes.push(`${where}: not a readable Java archive (${(err as Error).message})`);
    return;
  }
  const nested: Array<{ file: string; where: string }> = [];
  try {
    const isReadable = await readEntries(zip, where, depth, walk, nested);
    if (isReadable) for (const n of nested) await readArchive({ kind: 'file', path: n.file }, n.where, depth + 1, walk);
  } finally {
    // tempDir is shared by every file of the layer: extracted archives go as soon as they are read.
    await Promise.all(nested.map((n) => rm(n.file, { force: true })));
  }
}

/** Collects the archive's packages and extracts the archives inside it; false (and a note) when the zip turned out unreadable. */
async function readEntries(zip: ZipFile, where: string, depth: number, walk: Walk, nested: Array<{ file: string; where: string }>): Promise<boolean> {
  const found: Package[] = [];
  let manifest: string | undefined;
  try {
    if (zip.entryCount > MAX_ENTRIES) throw new ScanInputError(`${where}: more than ${MAX_ENTRIES} entries in a Java archive`);
    for (let entry = await nextEntry(zip); entry; entry = await nextEntry(zip)) {
      if (walk.signal.aborted) throw walk.signal.reason;
      const name = entry.fileName;
      if (name.endsWith('/') || entry.isEncrypted()) continue;
      if (POM_PROPERTIES.test(name)) {
        const pkg = pomPackage(parseProperties(await readText(zip, entry, where)), where);
        if (pkg && !found.some((p) => p.name === pkg.name && p.version === pkg.version)) found.push(pkg);
      } else if (name === 'META-INF/MANIFEST.MF') {
        manifest = await readText(zip, entry, where);
      } else if (ARCHIVE.test(name)) {
        const inner = `${where}!${name}`;
        if (depth + 1 > MAX_DEPTH) {
          walk.notes.push(`${inner}: archives nested more than ${MAX_DEPTH} deep are not read`);
          continue;
        }
        if (entry.uncompressedSize > MAX_NESTED_BYTES || walk.extractedBytes + entry.uncompressedSize > MAX_EXTRACTED_BYTES) {
          throw new ScanInputError(`${inner}: nested archive too large (${entry.uncompressedSize} bytes) to extract`);
        }
        walk.extractedBytes += entry.uncompressedSize;
        // Named by us, never by the entry: its name may hold "../".
        const file = join(walk.tempDir, `nested-${randomUUID()}.zip`);
        nested.push({ file, where: inner });
        await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(file));
      }
    }
  } catch (err) {
    if (err instanceof ScanInputError || walk.signal.aborted) throw err;
    walk.notes.push(`${where}: not a readable Java archive (${(err as Error).message})`);
    return false;
  } finally {
    zip.close();
  }
  if (found.length === 0 && manifest !== undefined) {
    const pkg = manifestPackage(parseManifest(manifest), where);
    if (pkg) found.push(pkg);
  }
  walk.packages.push(...found);
  return true;
}

function pomPackage(props: Map<string, string>, path: string): Package | undefined {
  const groupId = props.get('groupId');
  const artifactId = props.get('artifactId');
  const version = props.get('version');
  // An unfiltered template ("${project.version}") names no release.
  if (!groupId || !artifactId || !version || /\$\{/.test(groupId + artifactId + version)) return undefined;
  return { ecosystem: 'maven', name: `${groupId}:${artifactId}`, version, path };
}

function manifestPackage(attrs: Map<string, string>, path: string): Package | undefined {
  const groupId = attrs.get('Implementation-Vendor-Id');
  const version = attrs.get('Implementation-Version') ?? attrs.get('Bundle-Version');
  if (!groupId || !version || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(groupId)) return undefined;
  const file = basename(path.slice(path.lastIndexOf('!') + 1)).replace(ARCHIVE, '');
  const suffix = `-${version}`;
  if (!file.endsWith(suffix) || file.length === suffix.length) return undefined;
  return { ecosystem: 'maven', name: `${groupId}:${file.slice(0, -suffix.length)}`, version, path };
}

/** java.util.Properties' text format: `key=value`, `key: value` or `key value`, comments, escapes, continued lines. */
export function parseProperties(text: string): Map<string, string> {
  const props = new Map<string, string>();
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/^[ \t\f]+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    // A line ending in an odd number of backslashes continues on the next.
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + lines[++i]!.replace(/^[ \t\f]+/, '');
    }
    const m = /^((?:[^\\=: \t\f]|\\.)*)[ \t\f]*[=: \t\f]?[ \t\f]*(.*)$/.exec(line);
    if (!m) continue;
    props.set(unescapeProperty(m[1]!), unescapeProperty(m[2]!));
  }
  return props;
}

function unescapeProperty(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) => {
    if (c.length === 5) return String.fromCharCode(parseInt(c.slice(1), 16));
    return c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'f' ? '\f' : c;
  });
}

/** The main section of a JAR manifest (the JAR File Specification): `Name: value`, continued by lines starting with one space. */
export function parseManifest(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') break;
    if (line.startsWith(' ') && last) {
      attrs.set(last, attrs.get(last)! + line.slice(1));
      continue;
    }
    const colon = line.indexOf(': ');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    attrs.set(last, line.slice(colon + 2));
  }
  for (const [k, v] of attrs) attrs.set(k, v.trim());
  return attrs;
}
