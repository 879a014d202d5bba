/**
 * The rpm database: which packages an rpm-based image (Fedora, RHEL, Alma, Rocky, CentOS,
 * SUSE) has installed. rpm has stored it three ways, and each record is an rpm header blob
 * (rpm-header.ts) whatever the container:
 * - SQLite `rpmdb.sqlite` (rpm 4.16 and later: Fedora 33+, RHEL 9 and its rebuilds): read with
 *   node:sqlite, opened immutable and defensive;
 * - BerkeleyDB `Packages`, a hash database (RHEL 8 and older, CentOS 7): read by
 *   berkeley-hash.ts, which walks the database's pages itself (no libdb);
 * - NDB `Packages.db` (SUSE since 15 SP3): not read; the scan's description says so.
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import type { FileFacts, Package } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';
import { ScanInputError } from './analyser.ts';
import { readBerkeleyHashValues } from './berkeley-hash.ts';
import { parseRpmHeader, rpmPackage } from './rpm-header.ts';

const DB_DIRS = ['var/lib/rpm/', 'usr/lib/sysimage/rpm/'];
/** Far beyond any real distribution (a full Fedora workstation has about 3,000 packages). */
const MAX_PACKAGES = 200_000;
/** A header blob larger than this is not a package header (rpm's own limit is 16 MiB of data). */
const MAX_BLOB_BYTES = 32 * 1024 * 1024;

type DbKind = 'sqlite' | 'sqlite-wal' | 'bdb' | 'ndb';

function dbKind(path: string): DbKind | undefined {
  const dir = DB_DIRS.find((d) => path.startsWith(d) && !path.slice(d.length).includes('/'));
  if (!dir) return undefined;
  switch (basename(path)) {
    case 'rpmdb.sqlite':
      return 'sqlite';
    case 'rpmdb.sqlite-wal':
      return 'sqlite-wal';
    case 'Packages':
      return 'bdb';
    case 'Packages.db':
      return 'ndb';
    default:
      return undefined;
  }
}

export const rpmAnalyser: FileAnalyser = {
  name: 'rpm',
  input: 'file',
  // The image's OS package list: without it the scan would look clean when it is not.
  maxBytes: 1024 * 1024 * 1024,
  tooLarge: 'fail',
  wants: (entry: EntryInfo) => dbKind(entry.path) !== undefined,
  async analyse(entry, input, context) {
    try {
      return await analyseDb(entry, input, context.tempDir);
    } catch (err) {
      // Name the file: the message becomes the scan's description.
      if (err instanceof ScanInputError && !err.message.startsWith(entry.path)) {
        throw new ScanInputError(`${entry.path}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  },
};

async function analyseDb(entry: EntryInfo, input: AnalyserInput, tempDir: string): Promise<FileFacts> {
  switch (dbKind(entry.path)) {
    case 'sqlite': {
      if (input.kind === 'file') return packagesFacts(readSqlite(input.path, entry.path));
      // SQLite reads files only; tempDir is shared with the layer's other files, hence the unique name.
      const file = join(tempDir, `rpmdb-${randomUUID()}.sqlite`);
      await writeFile(file, input.data);
      try {
        return packagesFacts(readSqlite(file, entry.path));
      } finally {
        await rm(file, { force: true });
      }
    }
    case 'bdb': {
      const packages: Package[] = [];
      for await (const blob of readBerkeleyHashValues(input, { maxValueBytes: MAX_BLOB_BYTES, maxValues: MAX_PACKAGES })) {
        addHeader(packages, blob, entry.path);
      }
      return packagesFacts(packages);
    }
    case 'sqlite-wal':
      // rpm checkpoints when it closes the database; a non-empty log means changes the
      // main file may not hold, and an analyser only ever sees one file.
      return entry.size > 0 ? { notes: [`${entry.path}: uncheckpointed rpm database changes not read`] } : {};
    case 'ndb':
      return { notes: [`${entry.path}: NDB rpm database (SUSE) not read`] };
    default:
      return {};
  }
}

function packagesFacts(packages: Package[]): FileFacts {
  return packages.length ? { packages } : {};
}

function addHeader(packages: Package[], blob: Buffer, path: string): void {
  if (packages.length >= MAX_PACKAGES) throw new ScanInputError(`more than ${MAX_PACKAGES} packages in the rpm database`);
  const pkg = rpmPackage(parseRpmHeader(blob), path);
  if (pkg) packages.push(pkg);
}

/**
 * The `Packages` table of rpm's SQLite backend (rpm's lib/backend/sqlite.c): one row per
 * installed package, the header in `blob`. The file comes from an image, so it is opened
 * immutable (no locks, no -shm or -wal files created beside it), defensive, with untrusted
 * schema objects disabled and a cap on value sizes.
 */
export function readSqlite(file: string, path: string): Package[] {
  const url = pathToFileURL(file);
  url.searchParams.set('immutable', '1');
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(url, { readOnly: true, defensive: true, limits: { length: MAX_BLOB_BYTES } });
  } catch (err) {
    throw new ScanInputError(`not a readable SQLite rpm database (${(err as Error).message})`, { cause: err });
  }
  try {
    db.exec('PRAGMA trusted_schema = OFF; PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0;');
    // A view or virtual table named Packages could run arbitrary queries; rpm writes a table.
    const table = db.prepare("SELECT type FROM sqlite_master WHERE name = 'Packages'").get() as { type?: unknown } | undefined;
    if (table?.type !== 'table') throw new ScanInputError("SQLite database without rpm's Packages table");
    const packages: Package[] = [];
    for (const row of db.prepare('SELECT blob FROM Packages ORDER BY hnum').iterate() as Iterable<{ blob: unknown }>) {
      if (!(row.blob instanceof Uint8Array)) throw new ScanInputError('corrupt rpm database: a package record is not a blob');
      addHeader(packages, Buffer.from(row.blob.buffer, row.blob.byteOffset, row.blob.byteLength), path);
    }
    return packages;
  } catch (err) {
    if (err instanceof ScanInputError) throw err;
    throw new ScanInputError(`corrupt SQLite rpm database (${(err as Error).message})`, { cause: err });
  } finally {
    db.close();
  }
}
