import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { requireAwsCli } from '../support/aws.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';
import { requireTools, run, toolSandbox } from '../support/tools.ts';

/**
 * The README's quick start, run as written: the block between the quickstart markers goes to
 * bash with only the address, the data directory and podman's storage pointed at this test's
 * sandbox. The server starts as `npm start` would: no bootstrap keys (the administrator's key
 * file is generated) and repositories explicit.
 */

let server: TestServer;
before(async () => {
  server = await startServer({
    env: { BERTH_BOOTSTRAP_ACCOUNT_ID: '', BERTH_BOOTSTRAP_ACCESS_KEY_ID: '', BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: '', BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' },
  });
});
after(async () => {
  await server?.close();
});

test('the README quick start works as written: create a repository, log in, push, describe, pull', { timeout: 180_000 }, async (t) => {
  if (!requireTools(t, 'podman')) return;
  requireAwsCli();
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- quickstart:begin[^>]*-->\s*```sh\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme)?.[1];
  assert.ok(block, 'README.md has a quickstart block');
  const hostPort = `127.0.0.1:${server.port}`;
  const script = block.replaceAll('127.0.0.1:5000', hostPort).replaceAll('$PWD/data', server.dataDir);

  const sandbox = await toolSandbox();
  t.after(() => sandbox.close());
  const work = await sandbox.mkdir('readme');
  const p = (...parts: string[]) => path.join(sandbox.dir, ...parts);
  // podman and aws as the README calls them, with storage, runtime and policy in the sandbox.
  const prelude = [
    'set -euo pipefail',
    'aws() { /usr/bin/aws "$@"; }',
    `podman() {`,
    `  local global=(--root '${p('podman/root')}' --runroot '${p('podman/runroot')}' --tmpdir '${p('podman/tmp')}' --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --log-level error)`,
    `  if [ "$1" = push ] || [ "$1" = pull ]; then local c=$1; shift; set -- "$c" --signature-policy '${p('policy.json')}' "$@"; fi`,
    `  command podman "\${global[@]}" "$@"`,
    `}`,
  ].join('\n');
  const result = await run('bash', ['-c', `${prelude}\ncd '${work}'\n${script}`], {
    allowFailure: true,
    env: { ...sandbox.env, AWS_CONFIG_FILE: '/dev/null', AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' },
  });
  assert.equal(result.code, 0, `the quick start failed:\n${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /"repositoryName": "demo\/hello"/);
  assert.match(result.stdout, /"imageTags": \[\s*"1"\s*\]/);
  assert.match(result.stderr + result.stdout, /Login Succeeded/);
});
