import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DISTRIBUTION_BIN, freePort, launch, NGINX_BIN, stopChild, waitForHttp } from './servers.ts';

/**
 * The servers of bench/scaleout.ts: Berth nodes on PostgreSQL and S3, CNCF Distribution on its S3
 * driver, and nginx as the round-robin balancer in front of Berth nodes. Each is one process
 * started by launch() (servers.ts), so the exit hook there kills it should the bench die.
 */

export interface Process {
  baseUrl: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface S3Target {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

export interface BerthNodeOptions {
  repoRoot: string;
  dir: string;
  metadataUrl: string;
  s3: S3Target;
  /** Key prefix in the bucket, shared by the nodes of one cluster. */
  prefix: string;
  /** base64 of 32 bytes; every node of a cluster needs the same one. */
  secretKey: string;
  /** blobs.redirect: `always`, `never`, or addresses and CIDRs. */
  redirect: string;
  /** server.trustProxy: who may set X-Forwarded-For (the balancer). */
  trustProxy?: string;
  poolSize?: number;
}

/** One Berth node (`node src/main.ts`) on PostgreSQL metadata and S3 blobs, auth off, at log level warn. */
export async function startBerthNode(options: BerthNodeOptions): Promise<Process> {
  // On PostgreSQL and S3 only the bootstrap's admin-credentials file goes in the data directory,
  // and Berth before 9dd8999 failed to start when the directory did not exist.
  await mkdir(path.join(options.dir, 'data'), { recursive: true });
  const port = await freePort();
  const { s3 } = options;
  const child = launch(process.execPath, ['src/main.ts', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(options.dir, 'data')], {
    cwd: options.repoRoot,
    env: {
      ...process.env,
      BERTH_LOG_LEVEL: 'warn',
      // Distribution has no auth here either, and creates repositories on push.
      BERTH_AUTH_ENABLED: 'false',
      BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
      BERTH_AUTH_SECRET_KEY: options.secretKey,
      BERTH_METADATA_URL: options.metadataUrl,
      ...(options.poolSize !== undefined ? { BERTH_METADATA_POOL_SIZE: String(options.poolSize) } : {}),
      BERTH_BLOB_URL: `s3://${s3.bucket}/${options.prefix}`,
      BERTH_S3_ENDPOINT: s3.endpoint,
      BERTH_S3_REGION: s3.region,
      BERTH_S3_FORCE_PATH_STYLE: 'true',
      BERTH_S3_ACCESS_KEY_ID: s3.accessKeyId,
      BERTH_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      BERTH_BLOBS_REDIRECT: options.redirect,
      ...(options.trustProxy !== undefined ? { BERTH_SERVER_TRUST_PROXY: options.trustProxy } : {}),
    },
    logFile: path.join(options.dir, 'stderr.log'),
  });
  child.stdout!.pipe(createWriteStream(path.join(options.dir, 'stdout.log')));
  const baseUrl = `http://127.0.0.1:${port}`;
  // Migrations on an empty database run before the node listens; give them time.
  await waitForHttp(`${baseUrl}/healthz`, child, `Berth node in ${options.dir}`);
  return { baseUrl, port, pid: child.pid!, stop: () => stopChild(child) };
}

export interface DistributionS3Options {
  dir: string;
  s3: S3Target;
  /** storage.s3.rootdirectory: where in the bucket; instances sharing it share the registry. */
  rootDirectory: string;
  /** storage.redirect.disable: serve blob bytes itself instead of a 307 to a presigned URL. */
  isRedirectDisabled: boolean;
}

/**
 * CNCF Distribution 2.8 on its S3 driver (s3-aws). 2.8 has no `forcepathstyle` key: it addresses
 * the bucket in the path whenever `regionendpoint` is set. Otherwise configured as the
 * filesystem one in servers.ts: in-memory blob descriptor cache, access log off, delete enabled.
 */
export async function startDistributionS3(options: DistributionS3Options): Promise<Process> {
  await mkdir(options.dir, { recursive: true });
  const port = await freePort();
  const { s3 } = options;
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  s3:',
    `    accesskey: ${s3.accessKeyId}`,
    `    secretkey: ${s3.secretAccessKey}`,
    `    region: ${s3.region}`,
    `    regionendpoint: ${s3.endpoint}`,
    `    bucket: ${s3.bucket}`,
    `    rootdirectory: /${options.rootDirectory}`,
    '    secure: false',
    '    v4auth: true',
    '  delete:',
    '    enabled: true',
    '  redirect:',
    `    disable: ${options.isRedirectDisabled}`,
    '  cache:',
    '    blobdescriptor: inmemory',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    // Upload state is sealed with this: instances sharing uploads need the same one.
    '  secret: berth-bench-only',
    '',
  ].join('\n');
  const configFile = path.join(options.dir, 'config.yml');
  await writeFile(configFile, config);
  // The Go AWS SDK of 2.8 panics on AWS_CA_BUNDLE with the driver's own HTTP transport; the
  // endpoint is plain HTTP, so no CA is needed.
  const { AWS_CA_BUNDLE: _caBundle, ...env } = process.env;
  const child = launch(DISTRIBUTION_BIN, ['serve', configFile], { cwd: options.dir, env, logFile: path.join(options.dir, 'stderr.log') });
  child.stdout!.pipe(createWriteStream(path.join(options.dir, 'stdout.log')));
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/v2/`, child, 'Distribution (S3)');
  return { baseUrl, port, pid: child.pid!, stop: () => stopChild(child) };
}

export interface Balancer {
  /** One front URL per pool, in the order given. */
  baseUrls: string[];
  pid: number;
  stop(): Promise<void>;
}

/**
 * nginx as a round-robin HTTP load balancer: one listener per pool of upstream ports, each
 * request to the next node (per request, not per connection, over kept-alive upstream
 * connections), bodies streamed both ways (no request or response buffering), the client's
 * address passed in X-Forwarded-For and the Host header kept, redirects passed unchanged.
 */
export async function startBalancer(dir: string, pools: number[][]): Promise<Balancer> {
  await mkdir(path.join(dir, 'temp'), { recursive: true });
  const ports = await Promise.all(pools.map(() => freePort()));
  const t = path.join(dir, 'temp');
  const user = process.getuid?.() === 0 ? `user ${os.userInfo().username};` : '';
  const upstreams = pools.map((nodes, i) => `
  upstream pool${i} {
${nodes.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
    keepalive 128;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${ports[i]};
    location / { proxy_pass http://pool${i}; }
  }`).join('\n');
  const config = `
daemon off;
${user}
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  client_max_body_size 0;
  client_body_temp_path ${t}/body;
  proxy_temp_path ${t}/proxy;
  fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi;
  scgi_temp_path ${t}/scgi;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_redirect off;
  proxy_read_timeout 600s;
  proxy_send_timeout 600s;
  # A node that fails a request is not retried with the body half sent.
  proxy_next_upstream off;
${upstreams}
}
`;
  const configFile = path.join(dir, 'nginx.conf');
  await writeFile(configFile, config);
  const child = launch(NGINX_BIN, ['-p', dir, '-c', configFile, '-e', path.join(dir, 'error.log')], { cwd: dir, logFile: path.join(dir, 'stderr.log') });
  child.stdout!.resume();
  const baseUrls = ports.map((p) => `http://127.0.0.1:${p}`);
  for (const url of baseUrls) await waitForHttp(`${url}/healthz`, child, 'nginx balancer');
  return { baseUrls, pid: child.pid!, stop: () => stopChild(child) };
}
