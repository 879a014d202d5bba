import assert from 'node:assert/strict';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ECRClient } from '@aws-sdk/client-ecr';
import { IAMClient } from '@aws-sdk/client-iam';
import { STSClient } from '@aws-sdk/client-sts';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { run } from './tools.ts';

/**
 * The real AWS CLI and the AWS SDK against a test server. Every call runs with only the
 * credentials it is given: no config or credentials file, no profile, no instance metadata,
 * and a HOME of its own, so nothing on the machine leaks into a test and nothing a test does
 * leaks out.
 */

/** Debian's awscli: the `aws` on PATH may be a pyenv shim that fails when run from a test. */
export const AWS_CLI = '/usr/bin/aws';
export const REGION = 'us-east-1';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** What a test server offers the AWS helpers (a TestServer fits). */
export interface AwsEndpoint {
  baseUrl: string;
}

export interface AwsResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is JSON (`--output json`; empty for commands that print nothing). */
  json: any;
  /** The AWS error code the CLI reported ("An error occurred (CODE) when calling ..."), if any. */
  errorCode: string | undefined;
}

/**
 * Throws when the AWS CLI is missing: the identity tests need it and CI installs it
 * (`apt-get install awscli`), so its absence is a failure, never a skip.
 */
export function requireAwsCli(): void {
  try {
    accessSync(AWS_CLI, constants.X_OK);
  } catch {
    throw new Error(`${AWS_CLI} is not installed: these tests drive the real AWS CLI (apt-get install awscli).`);
  }
}

let home: Promise<string> | undefined;

/** One HOME for every CLI call of this test process (the CLI caches nothing there that matters, but must not touch the real one). */
function cliHome(): Promise<string> {
  home ??= mkdtemp(path.join(tmpdir(), 'berth-aws-home-')).then((dir) => {
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return home;
}

/** The environment the CLI runs with: these credentials and nothing else. */
export async function awsEnv(creds: AwsCredentials): Promise<NodeJS.ProcessEnv> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: await cliHome(),
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    ...(creds.sessionToken ? { AWS_SESSION_TOKEN: creds.sessionToken } : {}),
    AWS_DEFAULT_REGION: REGION,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    // One attempt: a refused call should fail at once, not be retried with backoff.
    AWS_MAX_ATTEMPTS: '1',
    AWS_RETRY_MODE: 'standard',
  };
}

/**
 * Runs `aws --endpoint-url SERVER --output json ARGS...` with the given credentials. Resolves
 * whatever the exit code; use awsOk() when the call must succeed.
 */
export async function aws(server: AwsEndpoint, creds: AwsCredentials, args: readonly string[]): Promise<AwsResult> {
  requireAwsCli();
  const result = await run(AWS_CLI, ['--endpoint-url', server.baseUrl, '--output', 'json', ...args], {
    env: await awsEnv(creds),
    allowFailure: true,
    timeoutMs: 60_000,
  });
  let json: unknown;
  const text = result.stdout.trim();
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  const errorCode = /An error occurred \(([^)]+)\)/.exec(result.stderr)?.[1];
  return { code: result.code, stdout: result.stdout, stderr: result.stderr, json, errorCode };
}

/** aws(), failing with the CLI's output unless it exits 0. */
export async function awsOk(server: AwsEndpoint, creds: AwsCredentials, args: readonly string[]): Promise<AwsResult> {
  const result = await aws(server, creds, args);
  if (result.code !== 0) {
    throw new Error(`aws ${args.join(' ')} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result;
}

/** aws(), failing unless it exits non-zero; resolves the result so the test can check the error code. */
export async function awsFails(server: AwsEndpoint, creds: AwsCredentials, args: readonly string[]): Promise<AwsResult> {
  const result = await aws(server, creds, args);
  if (result.code === 0) throw new Error(`aws ${args.join(' ')} succeeded but should have failed\n--- stdout\n${result.stdout}`);
  return result;
}

// --- SDK clients --------------------------------------------------------------------------

function clientConfig(server: AwsEndpoint, creds: AwsCredentials) {
  return {
    region: REGION,
    endpoint: server.baseUrl,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}) },
    // Errors are what many tests look at: no retries with backoff.
    maxAttempts: 1,
  };
}

export function ecrClient(server: AwsEndpoint, creds: AwsCredentials): ECRClient {
  return new ECRClient(clientConfig(server, creds));
}

export function iamClient(server: AwsEndpoint, creds: AwsCredentials): IAMClient {
  return new IAMClient(clientConfig(server, creds));
}

export function stsClient(server: AwsEndpoint, creds: AwsCredentials): STSClient {
  return new STSClient(clientConfig(server, creds));
}

// --- raw signed requests ------------------------------------------------------------------

export interface SignedRequestOptions {
  /** The SigV4 service the request is signed for. */
  service: 'ecr' | 'iam' | 'sts' | 'cloudtrail';
  body: string;
  headers: Record<string, string>;
  /** Sign as of this time (e.g. 20 minutes ago, to see the signature-expired error). */
  signingDate?: Date;
}

/** A POST to `/` signed with SigV4 by @smithy/signature-v4, sent with fetch. */
export async function signedFetch(server: AwsEndpoint, creds: AwsCredentials, options: SignedRequestOptions): Promise<Response> {
  const url = new URL(server.baseUrl);
  const request = new HttpRequest({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: { host: url.host, ...options.headers },
    body: options.body,
  });
  const signer = new SignatureV4({
    service: options.service,
    region: REGION,
    sha256: Hash.bind(null, 'sha256'),
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}) },
  });
  const signed = await signer.sign(request, options.signingDate ? { signingDate: options.signingDate } : {});
  const headers = { ...signed.headers };
  delete headers['host'];
  return fetch(new URL('/', server.baseUrl), { method: 'POST', headers, body: options.body });
}

/** The headers and body of an ECR (AWS JSON 1.1) call to `operation`. */
export function ecrRequest(operation: string, input: Record<string, unknown> = {}): { headers: Record<string, string>; body: string } {
  return {
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonEC2ContainerRegistry_V20150921.${operation}` },
    body: JSON.stringify(input),
  };
}

/** The headers and body of an IAM or STS (AWS Query) call to `action`. */
export function queryRequest(service: 'iam' | 'sts', action: string, params: Record<string, string> = {}): { headers: Record<string, string>; body: string } {
  const version = service === 'iam' ? '2010-05-08' : '2011-06-15';
  return {
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: new URLSearchParams({ Action: action, Version: version, ...params }).toString(),
  };
}

/** The error code of an AWS Query error response (`<Error><Code>...</Code>`). */
export function queryErrorCode(xml: string): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];
}

/** What an SDK call rejected with: the error name the SDK surfaces, the HTTP status and the message. */
export interface ErrorSeen {
  name: string;
  status: number | undefined;
  message: string;
}

/** The error an SDK call rejects with; fails the test when the call succeeds. */
export async function sdkError(call: Promise<unknown>): Promise<ErrorSeen> {
  try {
    await call;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  assert.fail('the call succeeded but should have failed');
}
