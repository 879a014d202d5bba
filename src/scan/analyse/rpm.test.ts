import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test, type TestContext } from 'node:test';
import type { Package } from '../types.ts';
import { ScanInputError } from './analyser.ts';
import { parseRpmHeader, rpmPackage, sourceRpmName } from './rpm-header.ts';
import { rpmAnalyser } from './rpm.ts';

function workDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-rpm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const context = (dir: string) => ({ tempDir: dir, signal: new AbortController().signal });
const works = (command: string, args: string[]) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;
const hasRpm = works('rpmbuild', ['--version']) && works('rpm', ['--version']);
const hasDbLoad = works('db5.3_load', ['-V']);

interface Spec {
  name: string;
  version: string;
  release: string;
  epoch?: number;
}

const SPECS: Spec[] = [
  { name: 'berth-alpha', version: '1.2.3', release: '4.el9', epoch: 2 },
  { name: 'berth-beta', version: '0.9', release: '1' },
  { name: 'berth-gamma', version: '5.0~rc1', release: '0.3.fc40', epoch: 0 },
];

/** Builds the packages with rpmbuild and records them in a fresh SQLite rpm database; returns the database directory. */
function buildRpmDb(dir: string): string {
  const top = path.join(dir, 'top');
  mkdirSync(path.join(top, 'SPECS'), { recursive: true });
  for (const spec of SPECS) {
    const file = path.join(top, 'SPECS', `${spec.name}.spec`);
    writeFileSync(
      file,
      [
        `Name: ${spec.name}`,
        `Version: ${spec.version}`,
        `Release: ${spec.release}`,
        ...(spec.epoch !== undefined ? [`Epoch: ${spec.epoch}`] : []),
        'Summary: a package for the scanner tests',
        'License: MIT',
        'BuildArch: noarch',
        '%description',
        'A package for the scanner tests.',
        '%files',
        '',
      ].join('\n'),
    );
    execFileSync('rpmbuild', ['-bb', '--define', `_topdir ${top}`, file], { stdio: 'ignore' });
  }
  const root = path.join(dir, 'root');
  const rpmArgs = ['--root', root, '--dbpath', '/var/lib/rpm', '--define', '_db_backend sqlite'];
  execFileSync('rpm', [...rpmArgs, '--initdb'], { stdio: 'ignore' });
  const rpms = readdirSync(path.join(top, 'RPMS', 'noarch')).map((f) => path.join(top, 'RPMS', 'noarch', f));
  execFileSync('rpm', [...rpmArgs, '-i', '--nodeps', '--justdb', ...rpms], { stdio: 'ignore' });
  return path.join(root, 'var', 'lib', 'rpm');
}

function expected(dbPath: string): Package[] {
  return [
    { ecosystem: 'rpm', name: 'berth-alpha', version: '2:1.2.3-4.el9', arch: 'noarch', sourceName: 'berth-alpha', path: dbPath },
    { ecosystem: 'rpm', name: 'berth-beta', version: '0.9-1', arch: 'noarch', sourceName: 'berth-beta', path: dbPath },
    { ecosystem: 'rpm', name: 'berth-gamma', version: '5.0~rc1-0.3.fc40', arch: 'noarch', sourceName: 'berth-gamma', path: dbPath },
  ];
}

const byName = (packages: Package[] | undefined) => [...(packages ?? [])].sort((a, b) => a.name.localeCompare(b.name));

test('the SQLite rpm database written by rpm gives its packages', { skip: hasRpm ? false : 'rpm or rpmbuild missing' }, async (t) => {
  const dir = workDir(t);
  const dbDir = buildRpmDb(dir);
  // A copy in a directory of its own, as the layer walker hands it over.
  const copyDir = path.join(dir, 'copy');
  mkdirSync(copyDir);
  const file = path.join(copyDir, 'rpmdb.sqlite');
  writeFileSync(file, readFileSync(path.join(dbDir, 'rpmdb.sqlite')));
  for (const dbPath of ['var/lib/rpm/rpmdb.sqlite', 'usr/lib/sysimage/rpm/rpmdb.sqlite']) {
    const entry = { path: dbPath, size: statSync(file).size, mode: 0o644 };
    assert.equal(rpmAnalyser.wants(entry), true);
    const facts = await rpmAnalyser.analyse(entry, { kind: 'file', path: file }, context(dir));
    assert.deepEqual(byName(facts.packages), expected(dbPath));
  }
  const fromBuffer = await rpmAnalyser.analyse(
    { path: 'var/lib/rpm/rpmdb.sqlite', size: 1, mode: 0o644 },
    { kind: 'buffer', data: readFileSync(file) },
    context(copyDir),
  );
  assert.deepEqual(byName(fromBuffer.packages), expected('var/lib/rpm/rpmdb.sqlite'));
  assert.equal(rpmAnalyser.wants({ path: 'opt/var/lib/rpm/rpmdb.sqlite', size: 1, mode: 0o644 }), false);
  assert.equal(rpmAnalyser.wants({ path: 'var/lib/rpm/Name', size: 1, mode: 0o644 }), false);
  // Opened immutable: nothing is created beside the file.
  assert.deepEqual(readdirSync(copyDir), ['rpmdb.sqlite']);
});

/** The database's header blobs, keyed by instance number, as rpm stored them. */
function headerBlobs(file: string): Array<{ hnum: number; blob: Buffer }> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare('SELECT hnum, blob FROM Packages ORDER BY hnum').all() as Array<{ hnum: number; blob: Uint8Array }>;
    return rows.map((r) => ({ hnum: r.hnum, blob: Buffer.from(r.blob) }));
  } finally {
    db.close();
  }
}

/** A BerkeleyDB hash `Packages` made by libdb's own db_load from the same headers, as rpm before 4.16 kept them. */
function berkeleyPackages(dir: string, blobs: Array<{ hnum: number; blob: Buffer }>, options: { pageSize: number; bigEndian?: boolean }): string {
  const out = path.join(dir, `bdb-${options.pageSize}-${options.bigEndian ? 'be' : 'le'}`, 'Packages');
  mkdirSync(path.dirname(out), { recursive: true });
  const key = (n: number) => {
    const b = Buffer.alloc(4);
    if (options.bigEndian) b.writeUInt32BE(n);
    else b.writeUInt32LE(n);
    return b.toString('hex');
  };
  const lines = ['VERSION=3', 'format=bytevalue', 'type=hash', `db_pagesize=${options.pageSize}`];
  if (options.bigEndian) lines.push('db_lorder=4321');
  lines.push('HEADER=END');
  // Record 0 is rpm's instance counter.
  lines.push(` ${key(0)}`, ` ${key(blobs.length + 1)}`);
  for (const { hnum, blob } of blobs) lines.push(` ${key(hnum)}`, ` ${blob.toString('hex')}`);
  lines.push('DATA=END', '');
  const dump = path.join(dir, 'dump.txt');
  writeFileSync(dump, lines.join('\n'));
  execFileSync('db5.3_load', ['-f', dump, out], { stdio: 'ignore' });
  return out;
}

test('a BerkeleyDB Packages file gives the same packages', { skip: hasRpm && hasDbLoad ? false : 'rpm, rpmbuild or db5.3_load missing' }, async (t) => {
  const dir = workDir(t);
  const blobs = headerBlobs(path.join(buildRpmDb(dir), 'rpmdb.sqlite'));
  assert.equal(blobs.length, 3);
  // 512-byte pages put every header on overflow pages; 64 KiB pages keep them inline.
  for (const options of [{ pageSize: 512 }, { pageSize: 65536 }, { pageSize: 4096, bigEndian: true }]) {
    const file = berkeleyPackages(dir, blobs, options);
    const entry = { path: 'var/lib/rpm/Packages', size: statSync(file).size, mode: 0o644 };
    assert.equal(rpmAnalyser.wants(entry), true);
    const facts = await rpmAnalyser.analyse(entry, { kind: 'file', path: file }, context(dir));
    assert.deepEqual(byName(facts.packages), expected('var/lib/rpm/Packages'), `page size ${options.pageSize}`);
  }
  // rpm's read-only BerkeleyDB backend reads the little-endian file the same way.
  const le = berkeleyPackages(dir, blobs, { pageSize: 512 });
  const listed = execFileSync('rpm', ['--dbpath', path.dirname(le), '--define', '_db_backend bdb_ro', '-qa', '--qf', '%{NAME}\\n'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  assert.deepEqual(listed.trim().split('\n').sort(), ['berth-alpha', 'berth-beta', 'berth-gamma']);
});

test('a BerkeleyDB overflow chain that loops is refused', { skip: hasRpm && hasDbLoad ? false : 'rpm, rpmbuild or db5.3_load missing' }, async (t) => {
  const dir = workDir(t);
  const blobs = headerBlobs(path.join(buildRpmDb(dir), 'rpmdb.sqlite'));
  const file = berkeleyPackages(dir, blobs, { pageSize: 512 });
  const data = Buffer.from(readFileSync(file));
  // Point the first overflow page that continues to another back at itself.
  let patched = false;
  for (let p = 1; p * 512 < data.length && !patched; p++) {
    const page = p * 512;
    if (data[page + 25] === 7 && data.readUInt32LE(page + 16) !== 0) {
      data.writeUInt32LE(p, page + 16);
      patched = true;
    }
  }
  assert.ok(patched, 'the database has a chained overflow page');
  await assert.rejects(
    rpmAnalyser.analyse({ path: 'var/lib/rpm/Packages', size: data.length, mode: 0o644 }, { kind: 'buffer', data }, context(dir)),
    (err: unknown) => err instanceof ScanInputError && /^var\/lib\/rpm\/Packages: corrupt BerkeleyDB rpm database: broken overflow chain$/.test(err.message),
  );
});

test('files that are not rpm databases are refused with the path in the message', async (t) => {
  const dir = workDir(t);
  const garbage = Buffer.alloc(8192, 0x5a);
  await assert.rejects(
    rpmAnalyser.analyse({ path: 'var/lib/rpm/Packages', size: garbage.length, mode: 0o644 }, { kind: 'buffer', data: garbage }, context(dir)),
    (err: unknown) => err instanceof ScanInputError && err.message === 'var/lib/rpm/Packages: not a BerkeleyDB hash database',
  );
  await assert.rejects(
    rpmAnalyser.analyse({ path: 'var/lib/rpm/rpmdb.sqlite', size: garbage.length, mode: 0o644 }, { kind: 'buffer', data: garbage }, context(dir)),
    (err: unknown) => err instanceof ScanInputError && /^var\/lib\/rpm\/rpmdb\.sqlite: (corrupt|not a readable) SQLite rpm database/.test(err.message),
  );
  // A SQLite file whose Packages is a view is not rpm's (and its query is not run).
  const file = path.join(dir, 'view.sqlite');
  const db = new DatabaseSync(file);
  db.exec("CREATE VIEW Packages AS SELECT 1 AS hnum, x'00' AS blob");
  db.close();
  await assert.rejects(
    rpmAnalyser.analyse({ path: 'var/lib/rpm/rpmdb.sqlite', size: 1, mode: 0o644 }, { kind: 'file', path: file }, context(dir)),
    (err: unknown) => err instanceof ScanInputError && /Packages table/.test(err.message),
  );
});

test('NDB databases and a pending SQLite log are noted, not read', async (t) => {
  const dir = workDir(t);
  const ndb = { path: 'usr/lib/sysimage/rpm/Packages.db', size: 10, mode: 0o644 };
  assert.equal(rpmAnalyser.wants(ndb), true);
  assert.deepEqual(await rpmAnalyser.analyse(ndb, { kind: 'buffer', data: Buffer.alloc(10) }, context(dir)), {
    notes: ['usr/lib/sysimage/rpm/Packages.db: NDB rpm database (SUSE) not read'],
  });
  const wal = { path: 'var/lib/rpm/rpmdb.sqlite-wal', size: 10, mode: 0o644 };
  assert.deepEqual(await rpmAnalyser.analyse(wal, { kind: 'buffer', data: Buffer.alloc(10) }, context(dir)), {
    notes: ['var/lib/rpm/rpmdb.sqlite-wal: uncheckpointed rpm database changes not read'],
  });
  assert.deepEqual(await rpmAnalyser.analyse({ ...wal, size: 0 }, { kind: 'buffer', data: Buffer.alloc(0) }, context(dir)), {});
});

/** A header blob with the given string and INT32 tags, laid out as rpm lays them out. */
function headerBlob(strings: Record<number, string>, ints: Record<number, number> = {}): Buffer {
  const entries: Buffer[] = [];
  const data: Buffer[] = [];
  let offset = 0;
  for (const [tag, value] of Object.entries(ints)) {
    const e = Buffer.alloc(16);
    e.writeUInt32BE(Number(tag), 0);
    e.writeUInt32BE(4, 4);
    e.writeUInt32BE(offset, 8);
    e.writeUInt32BE(1, 12);
    entries.push(e);
    const v = Buffer.alloc(4);
    v.writeUInt32BE(value);
    data.push(v);
    offset += 4;
  }
  for (const [tag, value] of Object.entries(strings)) {
    const e = Buffer.alloc(16);
    e.writeUInt32BE(Number(tag), 0);
    e.writeUInt32BE(6, 4);
    e.writeUInt32BE(offset, 8);
    e.writeUInt32BE(1, 12);
    entries.push(e);
    const v = Buffer.from(`${value}\0`);
    data.push(v);
    offset += v.length;
  }
  const head = Buffer.alloc(8);
  head.writeUInt32BE(entries.length, 0);
  head.writeUInt32BE(offset, 4);
  return Buffer.concat([head, ...entries, ...data]);
}

test('rpm headers: gpg-pubkey is skipped, corrupt headers are refused', () => {
  const pubkey = headerBlob({ 1000: 'gpg-pubkey', 1001: 'fd431d51', 1002: '4ae0493b' });
  assert.equal(rpmPackage(parseRpmHeader(pubkey), 'p'), undefined);
  const openssl = headerBlob({ 1000: 'openssl-libs', 1001: '3.0.7', 1002: '24.el9', 1022: 'x86_64', 1044: 'openssl-3.0.7-24.el9.src.rpm' }, { 1003: 1 });
  assert.deepEqual(rpmPackage(parseRpmHeader(openssl), 'p'), {
    ecosystem: 'rpm',
    name: 'openssl-libs',
    version: '1:3.0.7-24.el9',
    arch: 'x86_64',
    sourceName: 'openssl',
    path: 'p',
  });

  const tooMany = Buffer.from(openssl);
  tooMany.writeUInt32BE(1000, 0);
  assert.throws(() => parseRpmHeader(tooMany), /larger than its record/);
  const huge = Buffer.from(openssl);
  huge.writeUInt32BE(0x7fffffff, 4);
  assert.throws(() => parseRpmHeader(huge), ScanInputError);
  const outside = Buffer.from(openssl);
  outside.writeUInt32BE(0xfffff, 8 + 16 + 8); // the NAME entry's offset
  assert.throws(() => parseRpmHeader(outside), /points outside its data/);
  const unterminated = Buffer.from(openssl);
  unterminated[unterminated.length - 1] = 0x41;
  assert.throws(() => rpmPackage(parseRpmHeader(unterminated), 'p'), /not terminated/);
  assert.throws(() => parseRpmHeader(Buffer.alloc(3)), /truncated/);
  assert.throws(() => rpmPackage(parseRpmHeader(headerBlob({ 1000: 'x' })), 'p'), /no name, version or release/);
});

test('source rpm names lose their version and release', () => {
  assert.equal(sourceRpmName('openssl-3.0.7-24.el9.src.rpm'), 'openssl');
  assert.equal(sourceRpmName('python3.11-pip-22.3.1-4.el9.src.rpm'), 'python3.11-pip');
  assert.equal(sourceRpmName('kernel-5.14.0-362.8.1.el9_3.nosrc.rpm'), 'kernel');
  assert.equal(sourceRpmName('nodashes.src.rpm'), undefined);
  assert.equal(sourceRpmName(undefined), undefined);
});
