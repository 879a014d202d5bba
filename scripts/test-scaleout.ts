/**
 * Runs the integration and end-to-end suites a second time on the scale-out stores: a real
 * PostgreSQL and a real S3 API (single-node Ceph with radosgw), both started here on
 * 127.0.0.1 from Debian's packages by scripts/services/, and stopped by PID at the end.
 * test/support/backend.ts gives every test server a fresh database and bucket prefix.
 *
 *   node scripts/test-scaleout.ts [node --test arguments...]
 *
 * Without PostgreSQL or Ceph installed it says so and exits 0, except under CI (CI set),
 * where it fails: .ci/run installs both.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Pool } from 'pg';

const root = path.resolve(import.meta.dirname, '..');
const services = path.join(root, 'scripts/services');
const say = (m: string) => process.stderr.write(`[scaleout] ${m}\n`);

function missing(): string | undefined {
  const pg = (() => {
    try {
      return readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
    } catch {
      return false;
    }
  })();
  if (!pg) return 'PostgreSQL is not installed (apt-get install postgresql)';
  for (const bin of ['ceph-mon', 'ceph-osd', 'radosgw']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw)`;
  }
  if (process.getuid?.() !== 0) return 'Ceph is started as root here, and this is not root';
  return undefined;
}

/** A port nothing listens on, with `span` free ports after it (Ceph's OSD takes a range). */
async function freePorts(span: number): Promise<number> {
  const isFree = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let ok = true;
    for (let p = base; p < base + span && ok; p++) ok = await isFree(p);
    if (ok) return base;
  }
}

function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_0-9]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function run(script: string, args: string[], env: Record<string, string>): Record<string, string> {
  const r = spawnSync('bash', [path.join(services, script), ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}`);
  return parseEnv(r.stdout);
}

const why = missing();
if (why) {
  if (process.env['CI']) {
    say(`cannot run the scale-out suite: ${why}`);
    process.exit(1);
  }
  say(`skipped: ${why}`);
  process.exit(0);
}

const dir = mkdtempSync(path.join(tmpdir(), 'berth-scaleout-'));
// PostgreSQL runs as its own user, which must reach its directory inside this one.
chmodSync(dir, 0o755);
let code = 1;
try {
  const pgPort = await freePorts(1);
  const pg = run('postgres-start.sh', [path.join(dir, 'pg')], { PG_PORT: String(pgPort), PG_DB: 'berth', PG_USER: 'berth', PG_PASSWORD: 'berth-test' });
  say(`PostgreSQL on 127.0.0.1:${pgPort}`);
  // Each test server gets a database of its own (test/support/backend.ts), created by the
  // application user, which is not a superuser. It drops them `with (force)`, which ends the
  // other sessions on them; an autovacuum worker can be one, and ending a session of another
  // role takes pg_signal_backend (without it, the drop fails now and then on a busy machine).
  const superuser = new Pool({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: 'berth-test', database: 'postgres', max: 1 });
  await superuser.query('alter role berth createdb');
  await superuser.query('grant pg_signal_backend to berth');
  await superuser.end();
  const base = await freePorts(40);
  const ceph = run('ceph-s3-start.sh', [path.join(dir, 'ceph')], {
    RGW_PORT: String(base),
    MON_PORT: String(base + 1),
    OSD_PORT_MIN: String(base + 10),
    OSD_PORT_MAX: String(base + 39),
    CEPH_OSD_SIZE_GB: '8',
  });
  say(`Ceph RGW at ${ceph['S3_ENDPOINT']}`);
  const s3 = new S3Client({
    endpoint: ceph['S3_ENDPOINT'],
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ceph['S3_ACCESS_KEY']!, secretAccessKey: ceph['S3_SECRET_KEY']! },
  });
  await s3.send(new CreateBucketCommand({ Bucket: 'berth-test' }));
  s3.destroy();

  const args = process.argv.slice(2);
  const files = args.length > 0 ? args : ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'];
  const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      BERTH_TEST_BACKEND: 'scaleout',
      BERTH_TEST_PG_URL: pg['DATABASE_URL']!,
      BERTH_TEST_S3_ENDPOINT: ceph['S3_ENDPOINT']!,
      BERTH_TEST_S3_ACCESS_KEY_ID: ceph['S3_ACCESS_KEY']!,
      BERTH_TEST_S3_SECRET_ACCESS_KEY: ceph['S3_SECRET_KEY']!,
      BERTH_TEST_S3_BUCKET: 'berth-test',
    },
  });
  code = await new Promise<number>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
} catch (err) {
  say((err as Error).message);
} finally {
  spawnSync('bash', [path.join(services, 'ceph-s3-stop.sh'), path.join(dir, 'ceph')], { stdio: 'ignore' });
  spawnSync('bash', [path.join(services, 'postgres-stop.sh'), path.join(dir, 'pg')], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
