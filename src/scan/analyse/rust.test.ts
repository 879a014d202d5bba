import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { deflateSync } from 'node:zlib';
import { ScanInputError } from './analyser.ts';
import { cargoAuditableAnalyser, cargoLockAnalyser } from './rust.ts';

function workDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-rust-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const context = (dir: string) => ({ tempDir: dir, signal: new AbortController().signal });
const tools = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('objcopy', ['--version'], { stdio: 'ignore' }).status === 0;

/** A C executable carrying `.dep-v0` with the given (already compressed) content, as cargo-auditable's linker step leaves it. */
function elfWithDepSection(dir: string, payload: Buffer, flags: string[] = []): string {
  writeFileSync(path.join(dir, 'main.c'), 'int main(void) { return 0; }\n');
  const plain = path.join(dir, 'plain');
  execFileSync('cc', [...flags, '-o', plain, path.join(dir, 'main.c')]);
  writeFileSync(path.join(dir, 'dep.bin'), payload);
  const out = path.join(dir, 'audited');
  execFileSync('objcopy', ['--add-section', `.dep-v0=${path.join(dir, 'dep.bin')}`, plain, out]);
  return out;
}

test('cargo-auditable data in an ELF section gives the runtime crates', { skip: tools ? false : 'cc or objcopy missing' }, async (t) => {
  const dir = workDir(t);
  const json = {
    packages: [
      { name: 'myapp', version: '0.1.0', source: 'local', dependencies: [1, 2], root: true },
      { name: 'serde', version: '1.0.188', source: 'crates.io', dependencies: [3] },
      { name: 'time', version: '0.3.20', source: 'crates.io' },
      { name: 'serde_derive', version: '1.0.188', source: 'crates.io', kind: 'build' },
      { name: 'forked', version: '2.0.0', source: 'git' },
    ],
  };
  const binary = elfWithDepSection(dir, deflateSync(JSON.stringify(json)));
  const size = statSync(binary).size;
  const entry = { path: 'usr/bin/myapp', size, mode: 0o755 };
  assert.equal(cargoAuditableAnalyser.wants(entry), true);
  assert.equal(cargoAuditableAnalyser.wantsHead?.(entry, readFileSync(binary).subarray(0, 512)), true);
  const facts = await cargoAuditableAnalyser.analyse(entry, { kind: 'file', path: binary }, context(dir));
  assert.deepEqual(facts, {
    packages: [
      { ecosystem: 'cargo', name: 'serde', version: '1.0.188', path: 'usr/bin/myapp' },
      { ecosystem: 'cargo', name: 'time', version: '0.3.20', path: 'usr/bin/myapp' },
      { ecosystem: 'cargo', name: 'forked', version: '2.0.0', path: 'usr/bin/myapp' },
    ],
  });
});

test('a 32-bit big-endian ELF is read as well', async (t) => {
  const dir = workDir(t);
  // Hand-built: ELF header, one data section and the section name table, all big-endian.
  const payload = deflateSync(JSON.stringify({ packages: [{ name: 'log', version: '0.4.20', source: 'crates.io' }] }));
  const names = Buffer.from('\0.dep-v0\0.shstrtab\0', 'latin1');
  const dataOffset = 52;
  const namesOffset = dataOffset + payload.length;
  const shoff = namesOffset + names.length;
  const header = Buffer.alloc(52);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 1]).copy(header);
  header.writeUInt16BE(2, 16); // ET_EXEC
  header.writeUInt16BE(8, 18); // MIPS
  header.writeUInt32BE(1, 20);
  header.writeUInt32BE(shoff, 32);
  header.writeUInt16BE(52, 40);
  header.writeUInt16BE(40, 46);
  header.writeUInt16BE(3, 48);
  header.writeUInt16BE(2, 50);
  const section = (name: number, type: number, offset: number, size: number) => {
    const s = Buffer.alloc(40);
    s.writeUInt32BE(name, 0);
    s.writeUInt32BE(type, 4);
    s.writeUInt32BE(offset, 16);
    s.writeUInt32BE(size, 20);
    return s;
  };
  const data = Buffer.concat([
    header,
    payload,
    names,
    section(0, 0, 0, 0),
    section(1, 1, dataOffset, payload.length),
    section(9, 3, namesOffset, names.length),
  ]);
  const facts = await cargoAuditableAnalyser.analyse({ path: 'bin/x', size: data.length, mode: 0o755 }, { kind: 'buffer', data }, context(dir));
  assert.deepEqual(facts.packages, [{ ecosystem: 'cargo', name: 'log', version: '0.4.20', path: 'bin/x' }]);
});

test('corrupt or oversized cargo-auditable data is refused', { skip: tools ? false : 'cc or objcopy missing' }, async (t) => {
  const dir = workDir(t);
  const notZlib = elfWithDepSection(dir, Buffer.from('not zlib at all'));
  await assert.rejects(
    cargoAuditableAnalyser.analyse({ path: 'bin/a', size: 1, mode: 0o755 }, { kind: 'file', path: notZlib }, context(dir)),
    (err: unknown) => err instanceof ScanInputError && /bin\/a: corrupt cargo-auditable dependency data/.test(err.message),
  );
  // 64 MiB of zeros compresses to a few KiB: inflating it must stop at the limit.
  const bomb = elfWithDepSection(dir, deflateSync(Buffer.alloc(64 * 1024 * 1024)));
  await assert.rejects(
    cargoAuditableAnalyser.analyse({ path: 'bin/b', size: 1, mode: 0o755 }, { kind: 'file', path: bomb }, context(dir)),
    ScanInputError,
  );
});

test('an ELF file without .dep-v0 yields nothing', { skip: tools ? false : 'cc missing' }, async (t) => {
  const dir = workDir(t);
  writeFileSync(path.join(dir, 'main.c'), 'int main(void) { return 0; }\n');
  execFileSync('cc', ['-o', path.join(dir, 'plain'), path.join(dir, 'main.c')]);
  assert.deepEqual(
    await cargoAuditableAnalyser.analyse({ path: 'bin/plain', size: 1, mode: 0o755 }, { kind: 'file', path: path.join(dir, 'plain') }, context(dir)),
    {},
  );
});

const LOCK = `# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 3

[[package]]
name = "aho-corasick"
version = "1.1.2"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "b2969dcb958b36655471fc61f7e416fa76033bdd4bfed0678d8fee1e2d07a1f0"
dependencies = [
 "memchr",
]

[[package]]
name = "myapp"
version = "0.1.0"
dependencies = [
 "aho-corasick",
 "patched 0.2.0 (git+https://example.com/patched?rev=abc#abcdef)",
 "tricky",
]

[[package]]
name = "memchr"
version = "2.6.4"
source = "sparse+https://index.crates.io/"
checksum = "f665ee40bc4a3c5590afb1e9677db74a508659dfd71e126420da8274909a0167"

[[package]]
name = "patched"
version = "0.2.0"
source = "git+https://example.com/patched?rev=abc#abcdef"
dependencies = ["a]b"]

[metadata]
"checksum old 0.1.0 (registry+https://github.com/rust-lang/crates.io-index)" = "deadbeef"
`;

test('Cargo.lock: locked crates with a source; workspace crates are left out', async (t) => {
  const dir = workDir(t);
  const entry = { path: 'src/app/Cargo.lock', size: LOCK.length, mode: 0o644 };
  assert.equal(cargoLockAnalyser.wants(entry), true);
  assert.equal(cargoLockAnalyser.wants({ ...entry, path: 'src/app/Cargo.toml' }), false);
  const facts = await cargoLockAnalyser.analyse(entry, { kind: 'buffer', data: Buffer.from(LOCK) }, context(dir));
  assert.deepEqual(facts, {
    packages: [
      { ecosystem: 'cargo', name: 'aho-corasick', version: '1.1.2', path: 'src/app/Cargo.lock' },
      { ecosystem: 'cargo', name: 'memchr', version: '2.6.4', path: 'src/app/Cargo.lock' },
      { ecosystem: 'cargo', name: 'patched', version: '0.2.0', path: 'src/app/Cargo.lock' },
    ],
  });
});

test('Cargo.lock that is not the TOML Cargo writes gives a note', async (t) => {
  const dir = workDir(t);
  const entry = { path: 'Cargo.lock', size: 10, mode: 0o644 };
  for (const text of ['[[package]]\nname = {inline = "table"}\n', '[[package]]\nname = "x"\ndependencies = [\n "a",\n', 'garbage here\n']) {
    const facts = await cargoLockAnalyser.analyse(entry, { kind: 'buffer', data: Buffer.from(text) }, context(dir));
    assert.equal(facts.packages, undefined);
    assert.match(facts.notes?.[0] ?? '', /^Cargo\.lock: not a Cargo\.lock file this scanner can read \(line \d+\)$/);
  }
});
