import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Package } from '../types.ts';
import { ScanInputError } from './analyser.ts';
import { goAnalyser, goPackages, goStdlibVersion } from './go.ts';

function workDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-go-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function has(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0 || spawnSync(command, ['version'], { stdio: 'ignore' }).status === 0;
}

const context = (dir: string) => ({ tempDir: dir, signal: new AbortController().signal });
const entry = (p: string, size: number) => ({ path: p, size, mode: 0o755 });

function sortByName(packages: Package[] | undefined): Package[] {
  return [...(packages ?? [])].sort((a, b) => a.name.localeCompare(b.name));
}

/** A Go module requiring golang.org/x/sys from Debian's source tree: no network needed. */
function buildGoBinary(dir: string): string {
  const app = path.join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(
    path.join(app, 'go.mod'),
    [
      'module example.com/berthapp',
      '',
      'go 1.19',
      '',
      'require golang.org/x/sys v0.5.0',
      '',
      'replace golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(app, 'main.go'),
    'package main\n\nimport (\n\t"fmt"\n\t"golang.org/x/sys/cpu"\n)\n\nfunc main() { fmt.Println(cpu.X86.HasAVX) }\n',
  );
  const out = path.join(dir, 'berthapp');
  execFileSync('go', ['build', '-o', out, '.'], {
    cwd: app,
    env: {
      ...process.env,
      GOPATH: path.join(dir, 'gopath'),
      GOCACHE: path.join(dir, 'gocache'),
      // -modcacherw: a module cache left read-only would defeat the temp directory's removal.
      GOFLAGS: '-mod=mod -modcacherw',
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      GOWORK: 'off',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return out;
}

const goUsable = has('go') && spawnSync('test', ['-f', '/usr/share/gocode/src/golang.org/x/sys/go.mod']).status === 0;

test('a Go binary built with Debian Go reports the toolchain and its modules', { skip: goUsable ? false : 'go or golang.org/x/sys sources missing' }, async (t) => {
  const dir = workDir(t);
  const binary = buildGoBinary(dir);
  const goVersion = execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
  const size = readFileSync(binary).length;
  assert.equal(goAnalyser.wants(entry('usr/local/bin/berthapp', size)), true);
  assert.equal(goAnalyser.wants({ path: 'usr/share/doc/x', size, mode: 0o644 }), false);
  assert.equal(goAnalyser.wantsHead?.(entry('usr/local/bin/berthapp', size), readFileSync(binary).subarray(0, 512)), true);

  const facts = await goAnalyser.analyse(entry('usr/local/bin/berthapp', size), { kind: 'file', path: binary }, context(dir));
  assert.deepEqual(sortByName(facts.packages), [
    { ecosystem: 'go', name: 'golang.org/x/sys', version: 'v0.5.0', path: 'usr/local/bin/berthapp' },
    { ecosystem: 'go', name: 'stdlib', version: goVersion.replace(/^go/, ''), path: 'usr/local/bin/berthapp' },
  ]);

  // Without section headers the header is found at the start of the data segment, as Go does.
  const stripped = Buffer.from(readFileSync(binary));
  stripped.writeBigUInt64LE(0n, 40); // e_shoff
  stripped.writeUInt16LE(0, 60); // e_shnum
  stripped.writeUInt16LE(0, 62); // e_shstrndx
  const again = await goAnalyser.analyse(entry('app', size), { kind: 'buffer', data: stripped }, context(dir));
  assert.deepEqual(
    sortByName(again.packages).map((p) => `${p.name}@${p.version}`),
    ['golang.org/x/sys@v0.5.0', `stdlib@${goVersion.replace(/^go/, '')}`],
  );
});

const SENTINEL_START = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
const SENTINEL_END = Buffer.from('f932433186182072008242104116d8f2', 'hex');

test('the pointer format of Go before 1.18 is read through the loaded segments', { skip: has('cc') ? false : 'cc missing' }, async (t) => {
  const dir = workDir(t);
  const modInfo = Buffer.concat([
    SENTINEL_START,
    Buffer.from(
      'path\texample.com/old/cmd/tool\nmod\texample.com/old\tv1.4.0\th1:abc=\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\n' +
        'dep\tgithub.com/gorilla/websocket\tv1.4.0\th1:ghi=\n=>\tgithub.com/fork/websocket\tv1.4.2\th1:jkl=\n',
    ),
    SENTINEL_END,
  ]);
  const bytes = [...modInfo].map((b) => `0x${b.toString(16)}`).join(',');
  // A C program laid out like an old Go binary: the header holds pointers to Go string headers.
  const source = `
#include <stdint.h>
struct gostring { const char *p; uintptr_t n; };
static const char ver[] = "go1.16.15";
static const unsigned char mod[] = { ${bytes} };
static const struct gostring vs = { ver, sizeof(ver) - 1 };
static const struct gostring ms = { (const char *)mod, sizeof(mod) };
struct header { char magic[14]; unsigned char ptrsize; unsigned char flags; const struct gostring *v; const struct gostring *m; };
__attribute__((section(".go.buildinfo"), used, aligned(16))) struct header buildinfo = {
  { '\\xff', ' ', 'G', 'o', ' ', 'b', 'u', 'i', 'l', 'd', 'i', 'n', 'f', ':' }, sizeof(void *), 0, &vs, &ms };
int main(void) { return 0; }
`;
  writeFileSync(path.join(dir, 'old.c'), source);
  const binary = path.join(dir, 'old');
  execFileSync('cc', ['-no-pie', '-o', binary, path.join(dir, 'old.c')]);
  const facts = await goAnalyser.analyse(entry('bin/tool', 1), { kind: 'file', path: binary }, context(dir));
  assert.deepEqual(sortByName(facts.packages).map((p) => `${p.name}@${p.version}`), [
    'example.com/old@v1.4.0',
    'github.com/fork/websocket@v1.4.2',
    'github.com/pkg/errors@v0.9.1',
    'stdlib@1.16.15',
  ]);
  // Pointers the file leaves to load-time relocation (zeros) are noted, not followed.
  const data = Buffer.from(readFileSync(binary));
  const magic = data.indexOf(Buffer.from('\xff Go buildinf:', 'latin1'));
  data.fill(0, magic + 16, magic + 32);
  assert.deepEqual(await goAnalyser.analyse(entry('bin/tool', 1), { kind: 'buffer', data }, context(dir)), {
    notes: ['bin/tool: Go build info of a position-independent binary from before Go 1.18 not read'],
  });
});

test('an ELF file that is not a Go binary yields nothing', { skip: has('cc') ? false : 'cc missing' }, async (t) => {
  const dir = workDir(t);
  writeFileSync(path.join(dir, 'hello.c'), 'int main(void) { return 0; }\n');
  const binary = path.join(dir, 'hello');
  execFileSync('cc', ['-o', binary, path.join(dir, 'hello.c')]);
  assert.deepEqual(await goAnalyser.analyse(entry('bin/hello', 1), { kind: 'file', path: binary }, context(dir)), {});
});

test('a corrupt ELF header is refused with a plain message', async (t) => {
  const dir = workDir(t);
  const data = Buffer.alloc(128);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(data);
  data.writeBigUInt64LE(1n << 40n, 40); // e_shoff far past the end
  data.writeUInt16LE(64, 58);
  data.writeUInt16LE(3, 60);
  await assert.rejects(goAnalyser.analyse(entry('bin/x', 128), { kind: 'buffer', data }, context(dir)), (err: unknown) => {
    assert.ok(err instanceof ScanInputError);
    assert.match(err.message, /corrupt ELF file/);
    return true;
  });
  data.writeBigUInt64LE(64n, 40);
  data.writeUInt16LE(0xfff0, 60); // more section headers than the file holds
  await assert.rejects(goAnalyser.analyse(entry('bin/x', 128), { kind: 'buffer', data }, context(dir)), ScanInputError);
});

test('toolchain versions are spelt as OSV spells stdlib versions', () => {
  assert.equal(goStdlibVersion('go1.21.3'), '1.21.3');
  assert.equal(goStdlibVersion('go1.20'), '1.20.0');
  assert.equal(goStdlibVersion('go1.21rc2'), '1.21.0-rc.2');
  assert.equal(goStdlibVersion('go1.22.0 X:nocoverageredesign'), '1.22.0');
  assert.equal(goStdlibVersion('devel go1.23-abcdef Tue Jan 2'), undefined);
});

test('module lines: main module at (devel) is skipped, replacements by a module win', () => {
  const modInfo = [
    'path\texample.com/app',
    'mod\texample.com/app\t(devel)\t',
    'dep\tgolang.org/x/text\tv0.3.7\th1:x=',
    '=>\tgolang.org/x/text\tv0.3.8\th1:y=',
    'dep\tgolang.org/x/net\tv0.7.0\th1:z=',
    '=>\t../net\t(devel)\t',
    'build\tGOOS=linux',
  ].join('\n');
  assert.deepEqual(goPackages({ goVersion: 'go1.21.3', modInfo }, 'app'), [
    { ecosystem: 'go', name: 'stdlib', version: '1.21.3', path: 'app' },
    { ecosystem: 'go', name: 'golang.org/x/text', version: 'v0.3.8', path: 'app' },
    { ecosystem: 'go', name: 'golang.org/x/net', version: 'v0.7.0', path: 'app' },
  ]);
});
