import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/config.ts';
import { generatePassword, Identity, IdentityConflictError, passwordHistoryAfterChange, userArn } from '../iam/identity.ts';
import { newAccessKeyId, newSecretAccessKey, newUserId } from '../iam/ids.ts';
import { managedPolicyByArn } from '../iam/managed-policies.ts';
import { Secrets } from '../iam/secrets.ts';
import { createLogger } from '../log/logger.ts';
import { openBlobStore, openMetaStore, redactUrl } from '../store/open.ts';
import { compilePattern, EventPatternError, type EventPattern } from '../events/pattern.ts';
import { eventTime } from '../events/envelope.ts';
import { deliveryOf } from '../events/webhooks.ts';
import { newSubscription, SubscriptionInputError, type NewSubscription, type SubscriptionField } from '../events/subscriptions.ts';
import { isConfigWebhook } from '../events/webhook-config.ts';
import { webhookConsumer, type WebhookSubscription } from '../store/meta/event-store.ts';
import { Registry } from '../registry/registry.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { cloudTrailRecord } from '../audit/cloudtrail.ts';
import { allowAll } from '../registry/access.ts';
import { runAllLifecycles, runLifecycle } from '../lifecycle/runner.ts';
import { collectGarbage, storageReport } from '../gc/collector.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import { importInputs, pushBundle } from '../scan/admin.ts';
import { createBundle } from '../scan/vulndb/bundle.ts';
import { backfill } from '../replication/backfill.ts';
import { replicationStatus } from '../replication/status.ts';
import { vulnDbStatus } from '../scan/vulndb/import.ts';

/**
 * `berth`: the offline administration command. It opens the metadata store directly (the same
 * configuration as the server: --data-dir, --metadata-url, --config, BERTH_* variables), so it
 * works with the server stopped or running, and without any credentials: it is for the
 * operator of the machine, e.g. to recover a lost administrator key. A change it makes
 * reaches running servers within auth.cacheTtlSeconds.
 */

const usage = `Usage: berth <command> [options] [server options such as --data-dir DIR or --config FILE]

Commands:
  serve                                   run the registry (same as npm start)
  status                                  the stores, accounts, and per account its repositories, images and users
  account create [--account-id ID] [--alias NAME]
                                          create an account with an administrator "admin" and print its key
  account list                            list accounts (the first is served on the bare host name)
  user create --account ID --user NAME [--admin]
                                          create an IAM user (--admin attaches AdministratorAccess)
  user list --account ID                  list users
  user password [--account ID] --user NAME [--password-stdin] [--reset-required]
                                          set a user's console password (creating its login profile), in the
                                          first account unless --account: the one read from stdin, or a
                                          generated one, printed once; --reset-required makes the user choose
                                          a new one at the next sign-in
  key create --account ID --user NAME     create an access key for a user and print its secret (at most two per user)
  key list --account ID --user NAME       list a user's access keys
  key deactivate|activate|delete KEY_ID   change or delete an access key
  policy attach --account ID --user NAME --policy-arn ARN
                                          attach a managed policy to a user
  repository-policy delete --account ID --repository NAME
                                          remove a repository policy (e.g. one that locks everyone out)
  registry-policy delete --account ID     remove an account's registry policy
  audit [--since ISO_TIME] [--until ISO_TIME] [--account ID] [--limit N]
                                          print audit records as JSON lines (CloudTrail's record format), oldest first
  lifecycle run [--account ID] [--repository NAME]
                                          apply lifecycle policies now (every repository that has one, or one
                                          repository, of the default account unless --account) and print what
                                          they expired
  gc [--dry-run]                          collect garbage now (docs/gc.md) and print what was removed and the bytes
                                          reclaimed; --dry-run removes nothing and prints what a run would remove
  storage [--account ID]                  bytes stored per account (shared layers once, and how much is shared)
                                          and per repository
  events tail [--account ID] [--repository NAME] [--after SEQ] [--pattern JSON] [--follow]
                                          print the event log as JSON lines ({"seq":N,"event":{...}}), oldest
                                          first: every event, or those of an account or repository, after a
                                          sequence number, matching an EventBridge pattern; --follow keeps
                                          printing new events until interrupted
  events add --url URL [--account ID] [--pattern JSON] [--secret S] [--header 'Name: value' ...]
             [--timeout-seconds N] [--max-attempts N]
                                          subscribe a webhook (docs/webhooks.md) to the events after now: every
                                          account's or one account's, all or those matching an EventBridge
                                          pattern; each delivery is signed with the secret (generated and
                                          printed once unless given); timeout 10 s and 10 attempts by default
  events list                             list webhook subscriptions: cursor, lag, dead letters, delivering node
  events remove --id ID                   delete a subscription and its dead letters
  events disable|enable --id ID           pause a subscription (its events wait, unpruned) or resume it
  events test --id ID                     send a signed "Berth Test Event" now and print the receiver's answer
  events deliveries --id ID               list the subscription's dead letters: events it gave up on
  events redeliver --id ID [--seq N]      send the dead letters (or one) again now; those delivered are removed
  replication status                      per destination: images waiting, failed and replicated, the lag
                                          (how long the oldest waiting image has waited) and the last error
  replication backfill [--account ID] [--repository NAME] [--dry-run] [--retry-failed]
                                          replicate images pushed before the rules existed (docs/replication.md):
                                          queues each image once per destination that has none of it yet, and
                                          with --retry-failed those whose replication FAILED once the cause is
                                          fixed; progress on stderr, a summary on stdout
  vulndb import PATH... [--account ID] [--public-key FILE] [--require-signature]
                                          import vulnerability data (docs/scanning.md): OSV all.zip exports, OSV
                                          JSON files or directories, the Debian security tracker JSON, Berth
                                          bundles, or oci://REPOSITORY:TAG (a bundle pushed into the registry);
                                          each source replaces the one of its name, atomically
  vulndb status                           the database's sources, record counts and age
  vulndb remove SOURCE                    take a source (e.g. osv:npm) out of the database
  vulndb bundle --out FILE [--private-key FILE] PATH...
                                          pack exports into one bundle, signed with an Ed25519 key when given
  vulndb push --repository NAME [--tag TAG] [--account ID] FILE
                                          push a bundle into the registry as an OCI artifact (tag "latest")
`;

class UsageError extends Error {}
/** A command that failed for a reason the operator can act on: printed as one line, exit status 1. */
class CommandError extends Error {}

const own = {
  account: { type: 'string' },
  'account-id': { type: 'string' },
  alias: { type: 'string' },
  user: { type: 'string' },
  repository: { type: 'string' },
  admin: { type: 'boolean' },
  'password-stdin': { type: 'boolean' },
  'reset-required': { type: 'boolean' },
  'policy-arn': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'retry-failed': { type: 'boolean' },
  after: { type: 'string' },
  pattern: { type: 'string' },
  follow: { type: 'boolean' },
  id: { type: 'string' },
  url: { type: 'string' },
  secret: { type: 'string' },
  header: { type: 'string', multiple: true },
  'timeout-seconds': { type: 'string' },
  'max-attempts': { type: 'string' },
  seq: { type: 'string' },
  'public-key': { type: 'string' },
  'private-key': { type: 'string' },
  'require-signature': { type: 'boolean' },
  out: { type: 'string' },
  tag: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Splits argv into this command's options and the server's configuration flags. */
function split(argv: string[]): { positionals: string[]; values: Record<string, string | boolean | string[] | undefined>; serverArgs: string[] } {
  const mine: string[] = [];
  const serverArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0]! : undefined;
    if (name === undefined || name in own || arg === '-h') {
      mine.push(arg);
      if (name && name in own && (own as Record<string, { type: string }>)[name]!.type === 'string' && !arg.includes('=')) mine.push(argv[++i] ?? '');
    } else {
      serverArgs.push(arg);
      if (!arg.includes('=') && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) serverArgs.push(argv[++i]!);
    }
  }
  const { positionals, values } = parseArgs({ args: mine, options: own, allowPositionals: true, strict: true });
  return { positionals, values: values as Record<string, string | boolean | string[] | undefined>, serverArgs };
}

function need(values: Record<string, string | boolean | string[] | undefined>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function print(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
}

/** The `berth events add` option for each field of a subscription (events/subscriptions.ts). */
const FLAGS: Record<SubscriptionField, string> = {
  url: '--url',
  pattern: '--pattern',
  secret: '--secret',
  headers: '--header',
  timeoutSeconds: '--timeout-seconds',
  maxAttempts: '--max-attempts',
};

/** `--header 'Name: value'` options as a header object; newSubscription() checks the names and values. */
function parseHeaders(list: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of list) {
    const at = h.indexOf(':');
    const name = at > 0 ? h.slice(0, at).trim() : '';
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new UsageError(`--header ${JSON.stringify(h)}: expected 'Name: value'`);
    headers[name] = h.slice(at + 1).trim();
  }
  return headers;
}

async function subscriptionOf(meta: MetaStore, values: Record<string, string | boolean | string[] | undefined>): Promise<WebhookSubscription> {
  const id = need(values, 'id');
  const subscription = await meta.events.getWebhook(id);
  if (!subscription) throw new UsageError(`webhook subscription ${id} does not exist (berth events list)`);
  return subscription;
}

/**
 * Opens the stores. Commands that seal a new secret (`account create`, `key create`) need the
 * server's secret key and check it; the others work without it, so that after losing the key
 * an operator can still list and delete the keys sealed with it.
 */
async function withStores<T>(config: Config, sealing: boolean, fn: (meta: MetaStore, identity: Identity, secrets: Secrets) => Promise<T>): Promise<T> {
  const meta = await openMetaStore(config.metadataUrl, { poolSize: config.metadata.poolSize });
  try {
    // A new key file is made only for a store with no accounts yet: otherwise a missing file
    // means the server gets its key elsewhere, and keys sealed with a new one would not work.
    if (sealing && !config.auth.secretKey && !existsSync(config.auth.secretKeyFile) && (await meta.identity.listAccounts()).length > 0) {
      throw new UsageError(`no secret key: ${config.auth.secretKeyFile} does not exist; give the server's key with --auth-secret-key-file or BERTH_AUTH_SECRET_KEY`);
    }
    const secrets = sealing ? Secrets.load({ secretKey: config.auth.secretKey, keyFile: config.auth.secretKeyFile }) : new Secrets(Buffer.alloc(32));
    const identity = new Identity({ meta, secrets, log: createLogger({ level: 'warn' }), region: config.region, cacheTtlMs: 0, tokenTtlMs: config.auth.tokenTtlSeconds * 1000 });
    if (sealing) await identity.checkSecretKey();
    return await fn(meta, identity, secrets);
  } finally {
    await meta.close();
  }
}

/** The password given on stdin (`--password-stdin`): everything up to the end, without the final line break. */
async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new UsageError('--password-stdin: no password on stdin');
  if ([...text].length > 128 || !/^[\t\n\r\u0020-\u00ff]+$/.test(text)) {
    throw new UsageError('--password-stdin: a password is 1 to 128 characters from tab, line feed, carriage return and U+0020 to U+00FF (as IAM allows)');
  }
  return text;
}

/** A Registry on the same stores as the server's, for commands that change images. */
async function withRegistry<T>(config: Config, meta: MetaStore, fn: (registry: Registry) => Promise<T>): Promise<T> {
  const blobs = await openBlobStore(config.blobUrl, { s3: config.s3 });
  const registry = new Registry({
    region: config.region,
    meta,
    blobs,
    authorizer: allowAll,
    log: createLogger({ level: 'warn' }),
    createOnPush: false,
    uploadTtlMs: config.uploads.ttlSeconds * 1000,
    manifestMaxBytes: config.manifests.maxBytes,
    cacheTtlMs: 0,
    manifestCacheBytes: 0,
  });
  try {
    return await fn(registry);
  } finally {
    await registry.close();
    await blobs.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  const { positionals, values, serverArgs } = split(argv);
  const [command, sub, arg] = positionals;
  if (values['help'] || !command) {
    process.stdout.write(usage);
    return command ? 0 : 2;
  }
  if (command === 'serve') {
    process.argv = [process.argv[0]!, process.argv[1]!, ...serverArgs];
    await import('../main.ts');
    return -1;
  }
  if (command === 'vulndb' && sub === 'bundle') {
    // Files in, a file out: no store is opened.
    const inputs = positionals.slice(2);
    if (inputs.length === 0) throw new UsageError('vulndb bundle needs at least one PATH');
    const privateKey = values['private-key'] ? readFileSync(values['private-key'] as string, 'utf8') : undefined;
    const created = await createBundle(inputs, need(values, 'out'), privateKey ? { privateKey } : {}).catch((err: unknown) => {
      throw new CommandError((err as Error).message);
    });
    print({ file: created.file, sha256: created.sha256, size: created.size, signed: created.isSigned, sources: created.manifest.sources });
    return 0;
  }
  const config = loadConfig({ argv: serverArgs });
  // The webhook commands that seal or use a subscription's secret need the server's key too.
  const sealing = (command === 'account' && sub === 'create') || (command === 'key' && sub === 'create') || (command === 'events' && (sub === 'add' || sub === 'test' || sub === 'redeliver'));
  return withStores(config, sealing, async (meta, identity, secrets) => {
    const store = meta.identity;
    switch (`${command} ${sub ?? ''}`.trim()) {
      case 'status': {
        const accounts = [];
        for (const a of await store.listAccounts()) {
          let repositories = 0;
          let images = 0;
          let after: string | undefined;
          for (;;) {
            const names = await meta.listRepositories(a.id, { after, limit: 1000 });
            for (const name of names) {
              const r = await meta.getRepository(a.id, name);
              if (r) images += await meta.countManifests(r.id);
            }
            repositories += names.length;
            if (names.length < 1000) break;
            after = names[names.length - 1];
          }
          const users = (await store.listUsers(a.id, '/', { limit: 100_000 })).length;
          accounts.push({ accountId: a.id, alias: a.alias, created: new Date(a.createdAtMs).toISOString(), repositories, images, users });
        }
        print({
          metadataUrl: redactUrl(config.metadataUrl),
          blobUrl: config.blobUrl,
          region: config.region,
          defaultAccount: accounts[0]?.accountId ?? null,
          accounts,
        });
        return 0;
      }
      case 'lifecycle run': {
        const name = values['repository'] as string | undefined;
        // A repository is in the given account, or else the default one (served on the bare host).
        let account = values['account'] as string | undefined;
        if (name !== undefined && account === undefined) {
          account = (await meta.identity.listAccounts())[0]?.id;
          if (account === undefined) throw new UsageError('there is no account yet');
        }
        return withRegistry(config, meta, async (registry) => {
          const log = createLogger({ level: 'warn' });
          const audit = new AuditLog(meta, log, config.audit.flushIntervalMs);
          const deps = { registry, region: config.region, log, audit };
          let outcomes;
          try {
            if (name !== undefined) {
              if (!(await meta.getRepository(account!, name))) throw new UsageError(`repository ${name} does not exist in account ${account}`);
              const outcome = await runLifecycle(deps, { account: account!, name });
              if (!outcome) throw new UsageError(`repository ${name} in account ${account} has no lifecycle policy`);
              outcomes = [outcome];
            } else {
              outcomes = (await runAllLifecycles(deps)).filter((o) => account === undefined || o.repository.account === account);
            }
          } finally {
            await audit.close();
          }
          if (outcomes.some((o) => o.expired.length > 0)) {
            // As the server does after a deletion: collect what the expiries freed once it leaves the grace period.
            await meta.hurryJob('gc', Date.now() + (config.gc.graceSeconds + config.gc.delaySeconds) * 1000);
          }
          print(
            outcomes.map((o) => ({
              accountId: o.repository.account,
              repositoryName: o.repository.name,
              evaluatedAt: new Date(o.evaluatedAtMs).toISOString(),
              expired: o.expired.map((e) => ({ imageDigest: e.digest, imageTags: e.tags, imagePushedAt: new Date(e.pushedAtMs).toISOString(), appliedRulePriority: e.rulePriority, dependents: e.deletedDependents })),
            })),
          );
          return 0;
        });
      }
      case 'gc': {
        const dryRun = values['dry-run'] === true;
        const report = await withRegistry(config, meta, async (registry) => {
          const blobs = registry.blobs;
          return collectGarbage({ meta, blobs, registry, log: createLogger({ level: 'warn' }) }, { graceMs: config.gc.graceSeconds * 1000, dryRun, keepUntaggedManifests: !config.gc.deleteUntagged });
        });
        print({
          dryRun,
          startedAt: new Date(report.startedAtMs).toISOString(),
          finishedAt: new Date(report.finishedAtMs).toISOString(),
          // Only what was pushed, last used or written before this was a candidate (gc.graceSeconds).
          cutoff: new Date(report.cutoffMs).toISOString(),
          manifests: report.manifests.map((m) => ({ accountId: m.accountId, repositoryName: m.repository, imageDigest: m.digest, sizeBytes: m.sizeBytes })),
          blobs: report.blobs,
          unrecordedBlobs: report.orphans,
          uploads: report.uploads,
          bytesReclaimed: report.bytesReclaimed,
          manifestBytesReclaimed: report.manifestBytesReclaimed,
          errors: report.errors,
        });
        return report.errors > 0 ? 1 : 0;
      }
      case 'storage': {
        const report = await storageReport(meta, { accountId: values['account'] as string | undefined });
        print({
          total: report.total,
          accounts: report.accounts,
          repositories: report.repositories.map((r) => ({
            accountId: r.accountId,
            repositoryName: r.name,
            images: r.manifests,
            manifestBytes: r.manifestBytes,
            blobs: r.blobs,
            blobBytes: r.blobBytes,
          })),
        });
        return 0;
      }
      case 'account create': {
        const created = await identity.createAccount({ accountId: values['account-id'] as string | undefined, alias: values['alias'] as string | undefined });
        print(created);
        process.stderr.write('The secret access key is shown only now; store it safely.\n');
        return 0;
      }
      case 'account list': {
        print((await store.listAccounts()).map((a) => ({ accountId: a.id, alias: a.alias, created: new Date(a.createdAtMs).toISOString() })));
        return 0;
      }
      case 'user create': {
        const account = need(values, 'account');
        const name = need(values, 'user');
        if (!(await store.getAccount(account))) throw new UsageError(`account ${account} does not exist`);
        const row = { accountId: account, name, id: newUserId(), path: '/', tags: [], createdAtMs: Date.now() };
        if (!(await store.createUser(row))) throw new UsageError(`user ${name} already exists in account ${account}`);
        if (values['admin']) await store.attachPolicy(account, 'user', name, 'arn:aws:iam::aws:policy/AdministratorAccess');
        print({ userName: name, userId: row.id, arn: userArn(row), administrator: values['admin'] === true });
        return 0;
      }
      case 'user list': {
        const account = need(values, 'account');
        print((await store.listUsers(account, '/', { limit: 10_000 })).map((u) => ({ userName: u.name, userId: u.id, arn: userArn(u) })));
        return 0;
      }
      case 'user password': {
        // The first account (the one `npm start` created) unless another is named.
        const account = (values['account'] as string | undefined) ?? (await store.listAccounts())[0]?.id;
        if (!account) throw new UsageError('there is no account yet: start Berth once (npm start) to create the first one');
        const name = need(values, 'user');
        const user = await store.getUser(account, name);
        if (!user) throw new UsageError(`user ${name} does not exist in account ${account}`);
        const given = values['password-stdin'] === true ? await readPasswordFromStdin() : undefined;
        const password = given ?? generatePassword(await store.getPasswordPolicy(account));
        const violation = await identity.passwordViolation(user, password);
        if (violation) throw new CommandError(violation);
        const isResetRequired = values['reset-required'] === true;
        const now = Date.now();
        const passwordHash = await identity.hashPassword(password);
        const profile = await store.getLoginProfile(account, user.name);
        const created =
          !profile &&
          (await store.createLoginProfile({ accountId: account, userName: user.name, passwordHash, isResetRequired, createdAtMs: now, passwordChangedAtMs: now, lastUsedAtMs: null, previousHashes: [] }));
        if (!created) {
          const current = profile ?? (await store.getLoginProfile(account, user.name));
          if (!current || !(await store.updateLoginProfile(account, user.name, { passwordHash, isResetRequired, passwordChangedAtMs: now, previousHashes: passwordHistoryAfterChange(current) }))) {
            throw new CommandError(`the login profile of ${user.name} changed while it was being set; run the command again`);
          }
        }
        print({ accountId: account, userName: user.name, loginProfile: created ? 'created' : 'updated', passwordResetRequired: isResetRequired, ...(given === undefined ? { password } : {}) });
        if (given === undefined) process.stderr.write('The password is shown only now; give it to the user, who signs in to the console with it.\n');
        return 0;
      }
      case 'key create': {
        const account = need(values, 'account');
        const name = need(values, 'user');
        const user = await store.getUser(account, name);
        if (!user) throw new UsageError(`user ${name} does not exist in account ${account}`);
        if ((await store.listAccessKeys(account, user.name)).length >= 2) {
          throw new UsageError(`user ${user.name} already has two access keys; delete one first (berth key list / berth key delete)`);
        }
        const accessKeyId = newAccessKeyId();
        const secretAccessKey = newSecretAccessKey();
        await store.createAccessKey({ id: accessKeyId, accountId: account, userName: user.name, secretSealed: secrets.seal(secretAccessKey), status: 'Active', createdAtMs: Date.now(), lastUsedAtMs: null, lastUsedService: null });
        print({ accountId: account, userName: user.name, accessKeyId, secretAccessKey });
        process.stderr.write('The secret access key is shown only now; store it safely.\n');
        return 0;
      }
      case 'key list': {
        const account = need(values, 'account');
        const name = need(values, 'user');
        print((await store.listAccessKeys(account, name)).map((k) => ({ accessKeyId: k.id, status: k.status, created: new Date(k.createdAtMs).toISOString(), lastUsed: k.lastUsedAtMs ? new Date(k.lastUsedAtMs).toISOString() : null })));
        return 0;
      }
      case 'key deactivate':
      case 'key activate':
      case 'key delete': {
        if (!arg) throw new UsageError(`berth key ${sub} needs an access key id`);
        const ok = sub === 'delete' ? await store.deleteAccessKey(arg) : await store.setAccessKeyStatus(arg, sub === 'activate' ? 'Active' : 'Inactive');
        if (!ok) throw new UsageError(`access key ${arg} does not exist`);
        print({ accessKeyId: arg, result: sub === 'delete' ? 'deleted' : sub === 'activate' ? 'Active' : 'Inactive' });
        return 0;
      }
      case 'policy attach': {
        const account = need(values, 'account');
        const name = need(values, 'user');
        const arn = need(values, 'policy-arn');
        if (!(await store.getUser(account, name))) throw new UsageError(`user ${name} does not exist in account ${account}`);
        const local = /^arn:aws:iam::(\d{12}):policy\/(?:.*\/)?([^/]+)$/.exec(arn);
        if (!managedPolicyByArn.has(arn) && !(local && local[1] === account && (await store.getPolicy(account, local[2]!)))) {
          throw new UsageError(`policy ${arn} does not exist`);
        }
        await store.attachPolicy(account, 'user', name, arn);
        print({ userName: name, attached: arn });
        return 0;
      }
      case 'repository-policy delete': {
        const account = need(values, 'account');
        const name = need(values, 'repository');
        const repository = await meta.getRepository(account, name);
        if (!repository) throw new UsageError(`repository ${name} does not exist in account ${account}`);
        const had = (await meta.getRepositoryPolicy(repository.id)) !== undefined;
        // Through the registry, so that the change is in the event log like any other.
        if (had) await withRegistry(config, meta, (registry) => registry.setRepositoryPolicy(repository, null));
        print({ accountId: account, repositoryName: name, result: had ? 'deleted' : 'had no policy' });
        return 0;
      }
      case 'registry-policy delete': {
        const account = need(values, 'account');
        const had = await withRegistry(config, meta, (registry) => registry.setRegistryPolicy(account, null));
        print({ accountId: account, result: had ? 'deleted' : 'had no policy' });
        return 0;
      }
      case 'events tail': {
        let after = values['after'] === undefined ? 0 : Number(values['after']);
        if (!Number.isSafeInteger(after) || after < 0) throw new UsageError('--after must be a sequence number (0 or more)');
        let pattern: EventPattern | undefined;
        try {
          pattern = typeof values['pattern'] === 'string' ? compilePattern(values['pattern']) : undefined;
        } catch (err) {
          if (err instanceof EventPatternError || err instanceof SyntaxError) throw new UsageError(`--pattern: ${(err as Error).message}`);
          throw err;
        }
        const accountId = values['account'] as string | undefined;
        const repository = values['repository'] as string | undefined;
        if (repository !== undefined && accountId === undefined) throw new UsageError('--repository needs --account');
        let stopped = false;
        if (values['follow']) process.once('SIGINT', () => (stopped = true)).once('SIGTERM', () => (stopped = true));
        for (;;) {
          const batch = await meta.events.read({ after, limit: 500, accountId, repository });
          for (const e of batch) if (!pattern || pattern.matches(e.body)) process.stdout.write(JSON.stringify({ seq: e.seq, event: e.body }) + '\n');
          if (batch.length > 0) after = batch[batch.length - 1]!.seq;
          if (batch.length === 500) continue;
          if (!values['follow'] || stopped) break;
          await new Promise((resolve) => setTimeout(resolve, 500));
          if (stopped) break;
        }
        return 0;
      }
      case 'events add': {
        const accountId = (values['account'] as string | undefined) ?? null;
        if (accountId !== null && !(await store.getAccount(accountId))) throw new UsageError(`account ${accountId} does not exist`);
        const whole = (name: string) => (values[name] === undefined ? undefined : Number(values[name]));
        let made: NewSubscription;
        try {
          made = newSubscription(
            {
              accountId,
              url: need(values, 'url'),
              pattern: values['pattern'] as string | undefined,
              secret: values['secret'] as string | undefined,
              headers: parseHeaders((values['header'] as string[] | undefined) ?? []),
              timeoutSeconds: whole('timeout-seconds'),
              maxAttempts: whole('max-attempts'),
            },
            { seal: (secret) => secrets.seal(secret) },
          );
        } catch (err) {
          if (err instanceof SubscriptionInputError) throw new UsageError(err.describe(FLAGS[err.field]));
          throw err;
        }
        const { subscription, secret, isSecretGenerated } = made;
        await meta.events.createWebhook(subscription);
        print({ ...describeWebhook(subscription), ...(isSecretGenerated ? { secret } : {}) });
        if (isSecretGenerated) process.stderr.write('The secret is shown only now; give it to the receiver to verify deliveries with.\n');
        return 0;
      }
      case 'events list': {
        const last = await meta.events.lastSeq();
        const out = [];
        for (const w of await meta.events.listWebhooks()) {
          const { cursor, leaseOwner, leaseUntilMs } = await meta.events.consumer(webhookConsumer(w.id));
          // The node delivering it now (host:pid:random), if its lease runs.
          const deliveredBy = leaseUntilMs !== null && leaseUntilMs >= Date.now() ? leaseOwner : null;
          out.push({ ...describeWebhook(w), cursor, lag: Math.max(0, last - cursor), deadLetters: (await meta.events.listDeadLetters(w.id)).length, deliveredBy });
        }
        print(out);
        return 0;
      }
      case 'events remove': {
        const id = need(values, 'id');
        if (isConfigWebhook(id)) throw new UsageError(`webhook subscription ${id} is managed by the configuration: remove its entry from events.webhooks and restart Berth`);
        if (!(await meta.events.deleteWebhook(id))) throw new UsageError(`webhook subscription ${id} does not exist (berth events list)`);
        print({ id, result: 'deleted' });
        return 0;
      }
      case 'events disable':
      case 'events enable': {
        const id = need(values, 'id');
        if (!(await meta.events.setWebhookDisabled(id, sub === 'disable'))) throw new UsageError(`webhook subscription ${id} does not exist (berth events list)`);
        print({ id, result: sub === 'disable' ? 'disabled' : 'enabled' });
        return 0;
      }
      case 'events test': {
        const subscription = await subscriptionOf(meta, values);
        const eventId = randomUUID();
        const body = {
          version: '0',
          id: eventId,
          'detail-type': 'Berth Test Event',
          source: 'aws.ecr',
          account: subscription.accountId ?? (await store.listAccounts())[0]?.id ?? '',
          time: eventTime(Date.now()),
          region: config.region,
          resources: [],
          detail: { 'subscription-id': subscription.id },
        };
        const result = await deliveryOf(subscription, secrets.unseal(subscription.secretSealed), { id: eventId, body });
        print({ id: subscription.id, url: subscription.url, eventId, delivered: result.ok, status: result.status ?? null, ...(result.ok ? {} : { error: result.error }) });
        return result.ok ? 0 : 1;
      }
      case 'events deliveries': {
        const subscription = await subscriptionOf(meta, values);
        print(
          (await meta.events.listDeadLetters(subscription.id)).map((d) => {
            const body = d.body as { 'detail-type'?: string; detail?: { 'repository-name'?: string } };
            return { seq: d.seq, eventId: d.eventId, detailType: body['detail-type'] ?? null, repository: body.detail?.['repository-name'] ?? null, attempts: d.attempts, lastError: d.lastError, failed: new Date(d.failedAtMs).toISOString() };
          }),
        );
        return 0;
      }
      case 'events redeliver': {
        const subscription = await subscriptionOf(meta, values);
        const seq = values['seq'] === undefined ? undefined : Number(values['seq']);
        if (seq !== undefined && !(Number.isSafeInteger(seq) && seq > 0)) throw new UsageError('--seq must be a sequence number (berth events deliveries)');
        const letters = (await meta.events.listDeadLetters(subscription.id)).filter((d) => seq === undefined || d.seq === seq);
        if (seq !== undefined && letters.length === 0) throw new UsageError(`subscription ${subscription.id} has no dead letter at ${seq}`);
        const secret = secrets.unseal(subscription.secretSealed);
        const out = [];
        // In sequence order, one at a time, so a repository's events arrive in their order.
        for (const d of letters) {
          const result = await deliveryOf(subscription, secret, { id: d.eventId, body: d.body });
          if (result.ok) await meta.events.deleteDeadLetter(subscription.id, d.seq);
          else await meta.events.putDeadLetter({ ...d, attempts: d.attempts + 1, lastError: result.error, failedAtMs: Date.now() });
          out.push({ seq: d.seq, eventId: d.eventId, delivered: result.ok, status: result.status ?? null, ...(result.ok ? {} : { error: result.error }) });
        }
        print(out);
        return out.every((r) => r.delivered) ? 0 : 1;
      }
      case 'audit': {
        const time = (name: string) => {
          const v = values[name];
          if (typeof v !== 'string') return undefined;
          const t = Date.parse(v);
          if (Number.isNaN(t)) throw new UsageError(`--${name} must be a date and time such as 2026-11-25T10:00:00Z`);
          return t;
        };
        let remaining = values['limit'] ? Number(values['limit']) : Infinity;
        if (!(remaining > 0)) throw new UsageError('--limit must be a positive number');
        let afterId: number | undefined;
        const sinceMs = time('since');
        const untilMs = time('until');
        const accountId = values['account'] as string | undefined;
        for (;;) {
          const batch = await meta.audit.list({ afterId, sinceMs, untilMs, ...(accountId ? { accountId } : {}), limit: Math.min(1000, remaining) });
          // The records LookupEvents returns as CloudTrailEvent (docs/security.md, "Audit log").
          for (const e of batch) process.stdout.write(JSON.stringify(cloudTrailRecord(e, config.region)) + '\n');
          remaining -= batch.length;
          if (batch.length < 1000 || remaining <= 0) return 0;
          afterId = batch[batch.length - 1]!.id;
        }
      }
      case 'replication status': {
        const status = await replicationStatus(meta);
        print(status);
        return 0;
      }
      case 'replication backfill': {
        const summary = await withRegistry(config, meta, (registry) =>
          backfill(registry, {
            accountId: values['account'] as string | undefined,
            repository: values['repository'] as string | undefined,
            dryRun: values['dry-run'] === true,
            retryFailed: values['retry-failed'] === true,
            onProgress: (p) => process.stderr.write(`${p.accountId} ${p.repositoryName}: ${p.images} images, ${p.queued} ${values['dry-run'] === true ? 'to queue' : 'queued'}\n`),
          }),
        );
        print(summary);
        return 0;
      }
      case 'vulndb import': {
        const inputs = positionals.slice(2);
        if (inputs.length === 0) throw new UsageError('vulndb import needs at least one PATH');
        const account = (values['account'] as string | undefined) ?? (await store.listAccounts())[0]?.id ?? '';
        const publicKey = values['public-key'] ? readFileSync(values['public-key'] as string, 'utf8') : undefined;
        const log = createLogger({ level: 'info' });
        const summary = await withRegistry(config, meta, (registry) =>
          importInputs(registry, account, inputs, { ...(publicKey ? { publicKey } : {}), requireSignature: values['require-signature'] === true, log }),
        ).catch((err: unknown) => {
          throw new CommandError((err as Error).message);
        });
        print({ version: summary.version, sources: summary.sources.map((s) => ({ ...s, updatedAt: new Date(s.updatedAtMs).toISOString() })), notes: summary.notes });
        return 0;
      }
      case 'vulndb status': {
        const status = await vulnDbStatus(meta.vulndb);
        print({
          version: status.version,
          oldestUpdatedAt: status.oldestUpdatedAtMs === undefined ? null : new Date(status.oldestUpdatedAtMs).toISOString(),
          sources: status.sources.map((s) => ({ name: s.name, description: s.description, records: s.recordCount, updatedAt: new Date(s.updatedAtMs).toISOString(), importedAt: new Date(s.importedAtMs).toISOString(), ageDays: Math.floor(s.ageMs / 86_400_000), sha256: s.sha256 })),
        });
        return 0;
      }
      case 'vulndb remove': {
        const name = positionals[2];
        if (!name) throw new UsageError('vulndb remove needs the SOURCE name (see berth vulndb status)');
        if (!(await meta.vulndb.removeSource(name))) throw new CommandError(`no source named ${name} (see berth vulndb status)`);
        print({ removed: name, version: (await meta.vulndb.status()).version });
        return 0;
      }
      case 'vulndb push': {
        const file = positionals[2];
        if (!file) throw new UsageError('vulndb push needs the bundle FILE');
        const account = (values['account'] as string | undefined) ?? (await store.listAccounts())[0]?.id ?? '';
        const tag = (values['tag'] as string | undefined) ?? 'latest';
        const pushed = await withRegistry(config, meta, (registry) => pushBundle(registry, account, need(values, 'repository'), tag, file));
        print({ repository: values['repository'], tag, ...pushed, import: `berth vulndb import oci://${String(values['repository'])}:${tag}` });
        return 0;
      }
      default:
        throw new UsageError(`unknown command: ${positionals.join(' ')}`);
    }
  });
}

/** A subscription as `berth events` shows it: never its secret, and only the names of its headers (they often carry credentials). */
function describeWebhook(w: WebhookSubscription) {
  return {
    id: w.id,
    url: w.url,
    accountId: w.accountId,
    pattern: w.pattern === null ? null : (JSON.parse(w.pattern) as unknown),
    headers: Object.keys(w.headers),
    timeoutSeconds: w.timeoutMs / 1000,
    maxAttempts: w.maxAttempts,
    disabled: w.isDisabled,
    created: new Date(w.createdAtMs).toISOString(),
  };
}

// `berth audit | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  const code = await run(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
} catch (err) {
  if (err instanceof CommandError) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
  } else if (err instanceof UsageError || err instanceof ConfigError || err instanceof IdentityConflictError || (err as Error).name === 'StoreConfigError') {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
