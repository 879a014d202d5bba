import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileFacts } from '../types.ts';
import type { FileAnalyser } from './analyser.ts';
import { apkAnalyser } from './apk.ts';

async function run(analyser: FileAnalyser, path: string, text: string): Promise<FileFacts> {
  const data = Buffer.from(text);
  return analyser.analyse({ path, size: data.length, mode: 0o644 }, { kind: 'buffer', data }, { tempDir: '/nonexistent', signal: new AbortController().signal });
}

// Records as apk-tools writes them (from an Alpine 3.20 image), files lists shortened.
const installed = `C:Q1rgK6S0bRIebhSSFv6FxMG1lSpLo=
P:musl
V:1.2.5-r0
A:x86_64
S:411460
I:647168
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712932180
c:fa6e6b4ef4ec6bf9b4a72ee1a6eb1bd9ff43a9d6
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1Ygb1PaWx1vkbMz1kbGU2FjWbAAk=
R:libc.musl-x86_64.so.1

C:Q1VCOyU5KmUOK/CzD2b+H3KB2MQ5w=
P:libcrypto3
V:3.3.1-r0
A:x86_64
o:openssl
F:usr/lib
R:libcrypto.so.3
P:not-a-second-name

C:Q1broken
V:1.0-r0
`;

test('apk reads name, version, architecture and origin from the installed database', async () => {
  const path = 'lib/apk/db/installed';
  assert.equal(apkAnalyser.wants({ path, size: 1, mode: 0o644 }), true);
  assert.equal(apkAnalyser.wants({ path: 'lib/apk/db/triggers', size: 1, mode: 0o644 }), false);
  assert.deepEqual(await run(apkAnalyser, path, installed), {
    packages: [
      { ecosystem: 'apk', name: 'musl', version: '1.2.5-r0', arch: 'x86_64', sourceName: 'musl', path },
      { ecosystem: 'apk', name: 'libcrypto3', version: '3.3.1-r0', arch: 'x86_64', sourceName: 'openssl', path },
    ],
  });
  assert.deepEqual(await run(apkAnalyser, path, installed.replaceAll('\n', '\r\n')), await run(apkAnalyser, path, installed));
  assert.deepEqual(await run(apkAnalyser, path, ''), {});
});
