import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateRepositoryCommand,
  CreateRepositoryCreationTemplateCommand,
  DeleteRepositoryCommand,
  DeleteRepositoryCreationTemplateCommand,
  DeleteRepositoryPolicyCommand,
  DescribeRegistryCommand,
  DescribeRepositoriesCommand,
  DescribeRepositoryCreationTemplatesCommand,
  GetAccountSettingCommand,
  GetAuthorizationTokenCommand,
  GetLifecyclePolicyCommand,
  GetRepositoryPolicyCommand,
  ListImagesCommand,
  ListTagsForResourceCommand,
  paginateDescribeRepositories,
  paginateDescribeRepositoryCreationTemplates,
  PutAccountSettingCommand,
  PutRegistryPolicyCommand,
  PutImageScanningConfigurationCommand,
  PutImageTagMutabilityCommand,
  SetRepositoryPolicyCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateRepositoryCreationTemplateCommand,
  type ECRClient,
  type Repository,
} from '@aws-sdk/client-ecr';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { awsFails, awsOk, ecrClient, iamClient, requireAwsCli, type AwsCredentials } from '../support/aws.ts';
import { expectError, sharedServer, type SharedServer } from '../support/http.ts';
import { buildRealImage, writeOciLayout } from '../support/layout.ts';
import { blob, buildImage, pushBlob, pushImage } from '../support/oci.ts';
import { repoRoot } from '../support/server.ts';
import { requireTools, toolSandbox } from '../support/tools.ts';

/**
 * ECR's repository operations, creation templates and registry settings, through the AWS SDK and
 * the AWS CLI, on a server with Berth's default: repositories are explicit, as in ECR, so a push
 * creates one only when a CREATE_ON_PUSH creation template covers its name.
 */

const A = ADMIN.accountId;
const REGION = 'us-east-1';
const arnOf = (name: string) => `arn:aws:ecr:${REGION}:${A}:repository/${name}`;
const KMS_KEY = `arn:aws:kms:${REGION}:${A}:key/0b5e3b4c-1111-4222-8333-444455556666`;

let srv: SharedServer;
let ecr: ECRClient;
let host: string;

/** `aws ecr ARGS...` as the administrator; resolves the parsed JSON output. */
async function cli(...args: string[]): Promise<any> {
  return (await awsOk(srv.server, ADMIN, ['ecr', ...args])).json;
}

/** `aws ecr ARGS...` must fail with the AWS error `code` (and a message matching `message`). */
async function cliFails(code: string, args: string[], message?: RegExp, creds: AwsCredentials = ADMIN): Promise<void> {
  const result = await awsFails(srv.server, creds, ['ecr', ...args]);
  assert.equal(result.errorCode, code, `aws ecr ${args.join(' ')}: ${result.stderr}`);
  if (message) assert.match(result.stderr, message);
}

/** The SDK call must reject with the exception `name` (and a message matching `message`). */
async function sdkFails(call: Promise<unknown>, name: string, message?: RegExp): Promise<void> {
  const err = await call.then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, `expected ${name}, but the call succeeded`);
  assert.equal(err.name, name, err.message);
  if (message) assert.match(err.message, message);
}

async function describeOne(name: string): Promise<Repository> {
  const out = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
  assert.equal(out.repositories?.length, 1);
  return out.repositories[0]!;
}

async function allRepositoryNames(): Promise<string[]> {
  const out = await ecr.send(new DescribeRepositoriesCommand({ maxResults: 1000 }));
  assert.equal(out.nextToken, undefined);
  return out.repositories!.map((r) => r.repositoryName!);
}

const tags = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => ({ Key: `${prefix}${i}`, Value: `v${i}` }));

describe('ECR repositories, creation templates and registry settings', () => {
  srv = sharedServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });

  before(async () => {
    requireAwsCli();
    ecr = ecrClient(srv.server, ADMIN);
    host = `127.0.0.1:${srv.server.port}`;
    // Debian's AWS CLI (2.9) predates creation templates, account settings and exclusion filters.
    // `aws configure add-model` gives it ECR's current model, the one src/aws/models holds
    // (botocore's, without documentation), as any user of an older CLI can do.
    await awsOk(srv.server, ADMIN, ['configure', 'add-model', '--service-model', `file://${path.join(repoRoot, 'src/aws/models/ecr.json')}`, '--service-name', 'ecr']);
  });

  after(() => {
    ecr?.destroy();
  });

  describe('repositories', () => {
    test('CreateRepository stores every setting; DescribeRepositories and ListTagsForResource return them (SDK)', async () => {
      const name = 'settings/sdk';
      const before = Date.now();
      const { repository } = await ecr.send(
        new CreateRepositoryCommand({
          repositoryName: name,
          imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
          imageTagMutabilityExclusionFilters: [
            { filterType: 'WILDCARD', filter: 'latest' },
            { filterType: 'WILDCARD', filter: 'dev-*' },
          ],
          imageScanningConfiguration: { scanOnPush: true },
          encryptionConfiguration: { encryptionType: 'KMS', kmsKey: KMS_KEY },
          tags: [{ Key: 'team', Value: 'platform' }, { Key: 'cost-center', Value: '' }],
        }),
      );
      assert.ok(repository?.createdAt instanceof Date && repository.createdAt.getTime() >= before - 1000, `createdAt ${repository?.createdAt}`);
      assert.deepEqual({ ...repository, createdAt: undefined }, {
        repositoryArn: arnOf(name),
        registryId: A,
        repositoryName: name,
        repositoryUri: `${host}/${name}`,
        createdAt: undefined,
        imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
        imageTagMutabilityExclusionFilters: [
          { filterType: 'WILDCARD', filter: 'latest' },
          { filterType: 'WILDCARD', filter: 'dev-*' },
        ],
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: { encryptionType: 'KMS', kmsKey: KMS_KEY },
      });
      assert.deepEqual(await describeOne(name), repository);
      const listed = await ecr.send(new ListTagsForResourceCommand({ resourceArn: arnOf(name) }));
      assert.deepEqual(listed.tags, [{ Key: 'team', Value: 'platform' }, { Key: 'cost-center', Value: '' }]);

      const plain = (await ecr.send(new CreateRepositoryCommand({ repositoryName: 'settings/defaults' }))).repository!;
      assert.equal(plain.imageTagMutability, 'MUTABLE');
      assert.equal(plain.imageTagMutabilityExclusionFilters, undefined);
      assert.deepEqual(plain.imageScanningConfiguration, { scanOnPush: false });
      assert.deepEqual(plain.encryptionConfiguration, { encryptionType: 'AES256' });
      assert.deepEqual((await ecr.send(new ListTagsForResourceCommand({ resourceArn: arnOf('settings/defaults') }))).tags, []);
    });

    test('KMS or KMS_DSSE without a key reports the account\'s AWS managed key aws/ecr, as ECR does: one key, whatever the repository or client', async () => {
      const kms = (await ecr.send(new CreateRepositoryCommand({ repositoryName: 'settings/kms', encryptionConfiguration: { encryptionType: 'KMS' } }))).repository!;
      const managed = kms.encryptionConfiguration?.kmsKey;
      assert.match(managed ?? '', new RegExp(`^arn:aws:kms:${REGION}:${A}:key/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`));
      assert.notEqual(managed, KMS_KEY);
      assert.deepEqual(kms.encryptionConfiguration, { encryptionType: 'KMS', kmsKey: managed });
      assert.deepEqual((await describeOne('settings/kms')).encryptionConfiguration, { encryptionType: 'KMS', kmsKey: managed });
      const dsse = await cli('create-repository', '--repository-name', 'settings/kms-dsse', '--encryption-configuration', 'encryptionType=KMS_DSSE');
      assert.deepEqual(dsse.repository.encryptionConfiguration, { encryptionType: 'KMS_DSSE', kmsKey: managed });
      assert.deepEqual((await cli('describe-repositories', '--repository-names', 'settings/kms-dsse')).repositories[0].encryptionConfiguration, { encryptionType: 'KMS_DSSE', kmsKey: managed });
      // A key that is given is reported as given, and AES256 names none.
      assert.equal((await describeOne('settings/sdk')).encryptionConfiguration?.kmsKey, KMS_KEY);
      assert.deepEqual((await describeOne('settings/defaults')).encryptionConfiguration, { encryptionType: 'AES256' });

      // Creation templates report it the same way, and the repositories they create use it.
      const template = (await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'kms-tpl', appliedFor: ['CREATE_ON_PUSH'], encryptionConfiguration: { encryptionType: 'KMS' } }))).repositoryCreationTemplate!;
      try {
        assert.deepEqual(template.encryptionConfiguration, { encryptionType: 'KMS', kmsKey: managed });
        const described = await ecr.send(new DescribeRepositoryCreationTemplatesCommand({ prefixes: ['kms-tpl'] }));
        assert.deepEqual(described.repositoryCreationTemplates![0]!.encryptionConfiguration, { encryptionType: 'KMS', kmsKey: managed });
        const updated = (await ecr.send(new UpdateRepositoryCreationTemplateCommand({ prefix: 'kms-tpl', description: 'kms' }))).repositoryCreationTemplate!;
        assert.deepEqual(updated.encryptionConfiguration, { encryptionType: 'KMS', kmsKey: managed });
        await pushImage(srv.baseUrl, 'kms-tpl/app', buildImage(), 'v1');
        assert.deepEqual((await describeOne('kms-tpl/app')).encryptionConfiguration, { encryptionType: 'KMS', kmsKey: managed });
      } finally {
        await ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'kms-tpl' }));
      }
    });

    test('CreateRepository refuses what ECR refuses, and creates nothing then (SDK)', async () => {
      const create = (input: Record<string, unknown>) => ecr.send(new CreateRepositoryCommand({ repositoryName: 'refused/sdk', ...input }));
      await sdkFails(ecr.send(new CreateRepositoryCommand({ repositoryName: 'settings/sdk' })), 'RepositoryAlreadyExistsException', /'settings\/sdk' already exists in the registry with id '111122223333'/);
      await sdkFails(create({ encryptionConfiguration: { encryptionType: 'AES256', kmsKey: KMS_KEY } }), 'InvalidParameterException', /kmsKey/);
      await sdkFails(create({ imageTagMutability: 'MUTABLE', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'x' }] }), 'InvalidParameterException', /WITH_EXCLUSION/);
      await sdkFails(create({ imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'x' }] }), 'InvalidParameterException', /WITH_EXCLUSION/);
      await sdkFails(create({ imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION' }), 'InvalidParameterException', /required/);
      await sdkFails(create({ imageTagMutability: 'MUTABLE_WITH_EXCLUSION', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'bad tag' }] }), 'InvalidParameterException');
      await sdkFails(create({ tags: tags(51) }), 'TooManyTagsException', /at most 50/);
      await sdkFails(create({ tags: [{ Key: 'k'.repeat(129), Value: 'v' }] }), 'InvalidTagParameterException', /1 to 128/);
      await sdkFails(create({ tags: [{ Key: 'k', Value: 'v'.repeat(257) }] }), 'InvalidTagParameterException', /256/);
      await sdkFails(create({ tags: [{ Key: 'aws:owner', Value: 'v' }] }), 'InvalidTagParameterException', /reserved/);
      await sdkFails(create({ tags: [{ Key: 'k', Value: 'a' }, { Key: 'k', Value: 'b' }] }), 'InvalidTagParameterException', /more than once/);
      await sdkFails(ecr.send(new CreateRepositoryCommand({ repositoryName: 'Refused/Upper' })), 'InvalidParameterException', /repositoryName/);
      await sdkFails(describeOne('refused/sdk'), 'RepositoryNotFoundException');
      // 50 tags is the limit, not past it.
      await ecr.send(new CreateRepositoryCommand({ repositoryName: 'settings/fifty-tags', tags: tags(50) }));
    });

    test('CreateRepository and DescribeRepositories through the AWS CLI, with every refusal', async () => {
      const name = 'settings/cli';
      const created = await cli(
        'create-repository', '--repository-name', name,
        '--image-tag-mutability', 'MUTABLE_WITH_EXCLUSION',
        '--image-tag-mutability-exclusion-filters', 'filterType=WILDCARD,filter=release-*',
        '--image-scanning-configuration', 'scanOnPush=true',
        '--encryption-configuration', `encryptionType=KMS_DSSE,kmsKey=${KMS_KEY}`,
        '--tags', 'Key=team,Value=cli',
      );
      assert.equal(created.repository.repositoryArn, arnOf(name));
      assert.equal(created.repository.repositoryUri, `${host}/${name}`);
      assert.equal(created.repository.imageTagMutability, 'MUTABLE_WITH_EXCLUSION');
      assert.deepEqual(created.repository.imageTagMutabilityExclusionFilters, [{ filterType: 'WILDCARD', filter: 'release-*' }]);
      assert.deepEqual(created.repository.imageScanningConfiguration, { scanOnPush: true });
      assert.deepEqual(created.repository.encryptionConfiguration, { encryptionType: 'KMS_DSSE', kmsKey: KMS_KEY });
      const described = await cli('describe-repositories', '--repository-names', name);
      assert.deepEqual(described.repositories, [created.repository]);
      assert.deepEqual((await cli('list-tags-for-resource', '--resource-arn', arnOf(name))).tags, [{ Key: 'team', Value: 'cli' }]);

      const refused = ['create-repository', '--repository-name', 'refused/cli'];
      await Promise.all([
        cliFails('RepositoryAlreadyExistsException', ['create-repository', '--repository-name', name], /already exists/),
        cliFails('InvalidParameterException', [...refused, '--encryption-configuration', `encryptionType=AES256,kmsKey=${KMS_KEY}`], /kmsKey/),
        cliFails('InvalidParameterException', [...refused, '--image-tag-mutability', 'IMMUTABLE', '--image-tag-mutability-exclusion-filters', 'filterType=WILDCARD,filter=x'], /WITH_EXCLUSION/),
        cliFails('InvalidParameterException', [...refused, '--image-tag-mutability', 'IMMUTABLE_WITH_EXCLUSION'], /required/),
        cliFails('TooManyTagsException', [...refused, '--tags', ...tags(51).map((t) => `Key=${t.Key},Value=${t.Value}`)]),
        cliFails('InvalidTagParameterException', [...refused, '--tags', `Key=${'k'.repeat(129)},Value=v`]),
        cliFails('InvalidParameterException', ['create-repository', '--repository-name', 'Refused/Upper']),
      ]);
      await cliFails('RepositoryNotFoundException', ['describe-repositories', '--repository-names', 'refused/cli']);
    });

    test('DescribeRepositories: by names (the first missing one is named), or every repository, paginated', async () => {
      const names = Array.from({ length: 25 }, (_, i) => `page/r${String(i).padStart(2, '0')}`);
      await Promise.all(names.map((repositoryName) => ecr.send(new CreateRepositoryCommand({ repositoryName }))));
      const all = await allRepositoryNames();
      assert.deepEqual(all, [...all].sort(), 'in lexical order');
      for (const n of names) assert.ok(all.includes(n), `${n} is listed`);

      // The SDK's paginator, 7 at a time.
      const paged: string[] = [];
      let pages = 0;
      for await (const page of paginateDescribeRepositories({ client: ecr, pageSize: 7 }, {})) {
        pages++;
        assert.ok(page.repositories!.length <= 7);
        paged.push(...page.repositories!.map((r) => r.repositoryName!));
      }
      assert.deepEqual(paged, all);
      assert.equal(pages, Math.ceil(all.length / 7));

      const byNames = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['page/r03', 'page/r01', 'page/r03'] }));
      assert.deepEqual(byNames.repositories!.map((r) => r.repositoryName), ['page/r03', 'page/r01']);
      await sdkFails(ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['page/r00', 'page/missing-a', 'page/missing-b'] })), 'RepositoryNotFoundException', /'page\/missing-a' does not exist in the registry with id '111122223333'/);
      await sdkFails(ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['page/r00'], maxResults: 5 })), 'InvalidParameterException', /maxResults/);
      await sdkFails(ecr.send(new DescribeRepositoriesCommand({ nextToken: 'not-a-token' })), 'InvalidParameterException', /nextToken/);
      await sdkFails(ecr.send(new DescribeRepositoriesCommand({ maxResults: 1001 })), 'InvalidParameterException', /maxResults/);

      // The CLI paginates on its own: all of them, in pages of 7, or 10 at a time with a NextToken.
      const [whole, sevens, first10] = await Promise.all([cli('describe-repositories'), cli('describe-repositories', '--page-size', '7'), cli('describe-repositories', '--max-items', '10')]);
      assert.deepEqual(whole.repositories.map((r: Repository) => r.repositoryName), all);
      assert.deepEqual(sevens.repositories.map((r: Repository) => r.repositoryName), all);
      assert.equal(first10.repositories.length, 10);
      assert.ok(first10.NextToken, 'a NextToken to continue from');
      const rest = await cli('describe-repositories', '--starting-token', first10.NextToken);
      assert.equal(rest.NextToken, undefined);
      assert.deepEqual([...first10.repositories, ...rest.repositories].map((r: Repository) => r.repositoryName), all);
      // With a page size, the CLI's token carries the server's nextToken (as the SDK's does).
      const collected: Repository[] = [];
      let token: string | undefined;
      do {
        const out = await cli('describe-repositories', '--page-size', '7', '--max-items', '10', ...(token ? ['--starting-token', token] : []));
        collected.push(...out.repositories);
        token = out.NextToken;
      } while (token);
      assert.deepEqual(collected.map((r) => r.repositoryName), all);
      await Promise.all([
        cliFails('RepositoryNotFoundException', ['describe-repositories', '--repository-names', 'page/r00', 'page/missing-a'], /page\/missing-a/),
        cliFails('InvalidParameterException', ['describe-repositories', '--repository-names', 'page/r00', '--page-size', '5'], /maxResults/),
      ]);
    });

    test('a user allowed DescribeRepositories on repository/app/* only lists those, and is refused the others by name', async () => {
      await Promise.all(['app/one', 'app/two', 'other/three'].map((repositoryName) => ecr.send(new CreateRepositoryCommand({ repositoryName }))));
      const iam = iamClient(srv.server, ADMIN);
      await iam.send(new CreateUserCommand({ UserName: 'app-reader' }));
      const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: `arn:aws:ecr:${REGION}:${A}:repository/app/*` }] };
      await iam.send(new PutUserPolicyCommand({ UserName: 'app-reader', PolicyName: 'app-only', PolicyDocument: JSON.stringify(policy) }));
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'app-reader' }))).AccessKey!;
      const reader: AwsCredentials = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };

      const expected = (await allRepositoryNames()).filter((n) => n.startsWith('app/'));
      assert.ok(expected.includes('app/one') && expected.includes('app/two'));
      const listed = (await awsOk(srv.server, reader, ['ecr', 'describe-repositories'])).json;
      assert.deepEqual(listed.repositories.map((r: Repository) => r.repositoryName), expected);
      const small = (await awsOk(srv.server, reader, ['ecr', 'describe-repositories', '--page-size', '1'])).json;
      assert.deepEqual(small.repositories.map((r: Repository) => r.repositoryName), expected, 'filtered pages still add up');
      const sdk = await ecrClient(srv.server, reader).send(new DescribeRepositoriesCommand({}));
      assert.deepEqual(sdk.repositories!.map((r) => r.repositoryName), expected);

      await cliFails('AccessDeniedException', ['describe-repositories', '--repository-names', 'other/three'], /not authorized to perform: ecr:DescribeRepositories on resource: arn:aws:ecr:us-east-1:111122223333:repository\/other\/three/, reader);
      await sdkFails(ecrClient(srv.server, reader).send(new DescribeRepositoriesCommand({ repositoryNames: ['app/one', 'other/three'] })), 'AccessDeniedException');
      await sdkFails(ecrClient(srv.server, reader).send(new CreateRepositoryCommand({ repositoryName: 'app/new' })), 'AccessDeniedException', /ecr:CreateRepository/);
    });

    test('DeleteRepository refuses a repository with images unless forced; the name can then be used afresh (SDK and CLI)', async () => {
      for (const via of ['sdk', 'cli'] as const) {
        const name = `del/${via}`;
        await ecr.send(new CreateRepositoryCommand({ repositoryName: name, tags: [{ Key: 'k', Value: 'v' }] }));
        await pushImage(srv.baseUrl, name, buildImage(), 'v1');
        await ecr.send(new SetRepositoryPolicyCommand({ repositoryName: name, policyText: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: 'ecr:BatchGetImage' }] }) }));
        const notEmpty = /'del\/(sdk|cli)' in registry with id '111122223333' cannot be deleted because it still contains images/;
        let deleted: Repository;
        if (via === 'sdk') {
          await sdkFails(ecr.send(new DeleteRepositoryCommand({ repositoryName: name })), 'RepositoryNotEmptyException', notEmpty);
          await sdkFails(ecr.send(new DeleteRepositoryCommand({ repositoryName: name, force: false })), 'RepositoryNotEmptyException');
          deleted = (await ecr.send(new DeleteRepositoryCommand({ repositoryName: name, force: true }))).repository!;
          await sdkFails(ecr.send(new DeleteRepositoryCommand({ repositoryName: name, force: true })), 'RepositoryNotFoundException');
        } else {
          await cliFails('RepositoryNotEmptyException', ['delete-repository', '--repository-name', name], notEmpty);
          deleted = (await cli('delete-repository', '--repository-name', name, '--force')).repository;
          await cliFails('RepositoryNotFoundException', ['delete-repository', '--repository-name', name]);
        }
        assert.equal(deleted.repositoryName, name);
        assert.equal(deleted.repositoryArn, arnOf(name));
        await sdkFails(describeOne(name), 'RepositoryNotFoundException');
        await expectError(await srv.fetch(`/v2/${name}/manifests/v1`), 404, 'NAME_UNKNOWN');

        // Created again, it is a new, empty repository without the old one's policy or tags.
        await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
        await expectError(await srv.fetch(`/v2/${name}/manifests/v1`), 404, 'MANIFEST_UNKNOWN');
        await sdkFails(ecr.send(new GetRepositoryPolicyCommand({ repositoryName: name })), 'RepositoryPolicyNotFoundException');
        assert.deepEqual((await ecr.send(new ListTagsForResourceCommand({ resourceArn: arnOf(name) }))).tags, []);
        // An empty repository needs no force.
        await ecr.send(new DeleteRepositoryCommand({ repositoryName: name }));
      }
    });

    test('PutImageTagMutability and PutImageScanningConfiguration round trip (SDK)', async () => {
      const name = 'mutability/sdk';
      await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
      const put = await ecr.send(new PutImageTagMutabilityCommand({ repositoryName: name, imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest' }] }));
      assert.deepEqual({ ...put, $metadata: undefined }, { $metadata: undefined, registryId: A, repositoryName: name, imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest' }] });
      let described = await describeOne(name);
      assert.equal(described.imageTagMutability, 'IMMUTABLE_WITH_EXCLUSION');
      assert.deepEqual(described.imageTagMutabilityExclusionFilters, [{ filterType: 'WILDCARD', filter: 'latest' }]);
      await ecr.send(new PutImageTagMutabilityCommand({ repositoryName: name, imageTagMutability: 'IMMUTABLE' }));
      described = await describeOne(name);
      assert.equal(described.imageTagMutability, 'IMMUTABLE');
      assert.equal(described.imageTagMutabilityExclusionFilters, undefined, 'the filters went with the old setting');

      await sdkFails(ecr.send(new PutImageTagMutabilityCommand({ repositoryName: name, imageTagMutability: 'MUTABLE', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'x' }] })), 'InvalidParameterException');
      await sdkFails(ecr.send(new PutImageTagMutabilityCommand({ repositoryName: name, imageTagMutability: 'MUTABLE_WITH_EXCLUSION' })), 'InvalidParameterException');
      await sdkFails(ecr.send(new PutImageTagMutabilityCommand({ repositoryName: 'mutability/missing', imageTagMutability: 'MUTABLE' })), 'RepositoryNotFoundException');
      assert.equal((await describeOne(name)).imageTagMutability, 'IMMUTABLE', 'refused calls changed nothing');

      const scan = await ecr.send(new PutImageScanningConfigurationCommand({ repositoryName: name, imageScanningConfiguration: { scanOnPush: true } }));
      assert.deepEqual(scan.imageScanningConfiguration, { scanOnPush: true });
      assert.equal(scan.repositoryName, name);
      assert.deepEqual((await describeOne(name)).imageScanningConfiguration, { scanOnPush: true });
      await ecr.send(new PutImageScanningConfigurationCommand({ repositoryName: name, imageScanningConfiguration: {} }));
      assert.deepEqual((await describeOne(name)).imageScanningConfiguration, { scanOnPush: false });
      await sdkFails(ecr.send(new PutImageScanningConfigurationCommand({ repositoryName: 'mutability/missing', imageScanningConfiguration: { scanOnPush: true } })), 'RepositoryNotFoundException');
    });

    test('PutImageTagMutability and PutImageScanningConfiguration round trip (CLI)', async () => {
      const name = 'mutability/cli';
      await cli('create-repository', '--repository-name', name);
      const put = await cli('put-image-tag-mutability', '--repository-name', name, '--image-tag-mutability', 'MUTABLE_WITH_EXCLUSION', '--image-tag-mutability-exclusion-filters', 'filterType=WILDCARD,filter=v*', 'filterType=WILDCARD,filter=stable');
      assert.deepEqual(put, { registryId: A, repositoryName: name, imageTagMutability: 'MUTABLE_WITH_EXCLUSION', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'v*' }, { filterType: 'WILDCARD', filter: 'stable' }] });
      const scan = await cli('put-image-scanning-configuration', '--repository-name', name, '--image-scanning-configuration', 'scanOnPush=true');
      assert.deepEqual(scan, { registryId: A, repositoryName: name, imageScanningConfiguration: { scanOnPush: true } });
      const [described] = (await cli('describe-repositories', '--repository-names', name)).repositories;
      assert.equal(described.imageTagMutability, 'MUTABLE_WITH_EXCLUSION');
      assert.deepEqual(described.imageTagMutabilityExclusionFilters, put.imageTagMutabilityExclusionFilters);
      assert.deepEqual(described.imageScanningConfiguration, { scanOnPush: true });
      await Promise.all([
        cliFails('InvalidParameterException', ['put-image-tag-mutability', '--repository-name', name, '--image-tag-mutability', 'IMMUTABLE', '--image-tag-mutability-exclusion-filters', 'filterType=WILDCARD,filter=x']),
        cliFails('InvalidParameterException', ['put-image-tag-mutability', '--repository-name', name, '--image-tag-mutability', 'IMMUTABLE_WITH_EXCLUSION']),
        cliFails('InvalidParameterException', ['put-image-tag-mutability', '--repository-name', name, '--image-tag-mutability', 'SOMETIMES']),
        cliFails('RepositoryNotFoundException', ['put-image-tag-mutability', '--repository-name', 'mutability/missing', '--image-tag-mutability', 'IMMUTABLE']),
        cliFails('RepositoryNotFoundException', ['put-image-scanning-configuration', '--repository-name', 'mutability/missing', '--image-scanning-configuration', 'scanOnPush=true']),
      ]);
    });

    test('TagResource, UntagResource and ListTagsForResource on repository ARNs (SDK)', async () => {
      const name = 'tags/sdk';
      await ecr.send(new CreateRepositoryCommand({ repositoryName: name, tags: [{ Key: 'team', Value: 'a' }] }));
      const resourceArn = arnOf(name);
      await ecr.send(new TagResourceCommand({ resourceArn, tags: [{ Key: 'team', Value: 'b' }, { Key: 'env', Value: 'prod' }] }));
      assert.deepEqual((await ecr.send(new ListTagsForResourceCommand({ resourceArn }))).tags, [{ Key: 'team', Value: 'b' }, { Key: 'env', Value: 'prod' }]);
      await ecr.send(new UntagResourceCommand({ resourceArn, tagKeys: ['team', 'absent'] }));
      assert.deepEqual((await ecr.send(new ListTagsForResourceCommand({ resourceArn }))).tags, [{ Key: 'env', Value: 'prod' }]);

      await ecr.send(new TagResourceCommand({ resourceArn, tags: tags(49) }));
      await sdkFails(ecr.send(new TagResourceCommand({ resourceArn, tags: [{ Key: 'one', Value: '1' }, { Key: 'two', Value: '2' }] })), 'TooManyTagsException', /at most 50 tags; this request would give it 52/);
      await ecr.send(new TagResourceCommand({ resourceArn, tags: [{ Key: 'k0', Value: 'replaced' }] }));
      assert.equal((await ecr.send(new ListTagsForResourceCommand({ resourceArn }))).tags!.length, 50, 'replacing a tag does not count against the limit');
      await sdkFails(ecr.send(new TagResourceCommand({ resourceArn, tags: [{ Key: 'aws:x', Value: '1' }] })), 'InvalidTagParameterException');
      await sdkFails(ecr.send(new TagResourceCommand({ resourceArn, tags: [{ Key: 'k', Value: 'bad\u0000value' }] })), 'InvalidTagParameterException');
      await sdkFails(ecr.send(new UntagResourceCommand({ resourceArn, tagKeys: [''] })), 'InvalidTagParameterException');
      for (const bad of ['not-an-arn', `arn:aws:ecr:${REGION}:${A}:repo/${name}`, `arn:aws:ecr:${REGION}:${A}:repository/Bad`]) {
        // ECR's words first, then what Berth expected.
        await sdkFails(ecr.send(new ListTagsForResourceCommand({ resourceArn: bad })), 'InvalidParameterException', /^Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN': .* is not a repository ARN; expected arn:aws:ecr:us-east-1:ACCOUNT:repository\/NAME$/);
      }
      await sdkFails(ecr.send(new ListTagsForResourceCommand({ resourceArn: `arn:aws:ecr:eu-west-1:${A}:repository/${name}` })), 'InvalidParameterException', /resourceArn.*region eu-west-1/);
      await sdkFails(ecr.send(new TagResourceCommand({ resourceArn: arnOf('tags/missing'), tags: [{ Key: 'a', Value: 'b' }] })), 'RepositoryNotFoundException');
      await sdkFails(ecr.send(new UntagResourceCommand({ resourceArn: arnOf('tags/missing'), tagKeys: ['a'] })), 'RepositoryNotFoundException');
      await sdkFails(ecr.send(new ListTagsForResourceCommand({ resourceArn: arnOf('tags/missing') })), 'RepositoryNotFoundException');
    });

    test('TagResource, UntagResource and ListTagsForResource on repository ARNs (CLI)', async () => {
      const name = 'tags/cli';
      await cli('create-repository', '--repository-name', name);
      const resourceArn = arnOf(name);
      assert.equal((await awsOk(srv.server, ADMIN, ['ecr', 'tag-resource', '--resource-arn', resourceArn, '--tags', 'Key=team,Value=x', 'Key=env,Value=dev'])).stdout.trim(), '');
      assert.deepEqual((await cli('list-tags-for-resource', '--resource-arn', resourceArn)).tags, [{ Key: 'team', Value: 'x' }, { Key: 'env', Value: 'dev' }]);
      await cli('untag-resource', '--resource-arn', resourceArn, '--tag-keys', 'env');
      assert.deepEqual((await cli('list-tags-for-resource', '--resource-arn', resourceArn)).tags, [{ Key: 'team', Value: 'x' }]);
      await Promise.all([
        cliFails('TooManyTagsException', ['tag-resource', '--resource-arn', resourceArn, '--tags', ...tags(50).map((t) => `Key=${t.Key},Value=${t.Value}`)]),
        cliFails('InvalidTagParameterException', ['tag-resource', '--resource-arn', resourceArn, '--tags', `Key=team,Value=${'v'.repeat(257)}`]),
        cliFails('InvalidParameterException', ['list-tags-for-resource', '--resource-arn', 'arn:aws:s3:::bucket']),
        cliFails('RepositoryNotFoundException', ['list-tags-for-resource', '--resource-arn', arnOf('tags/missing')]),
        cliFails('RepositoryNotFoundException', ['tag-resource', '--resource-arn', arnOf('tags/missing'), '--tags', 'Key=a,Value=b']),
        cliFails('RepositoryNotFoundException', ['untag-resource', '--resource-arn', arnOf('tags/missing'), '--tag-keys', 'a']),
      ]);
    });
  });

  describe('registry and account settings', () => {
    test('DescribeRegistry names the caller\'s registry, with no replication rules yet', async () => {
      const out = await ecr.send(new DescribeRegistryCommand({}));
      assert.equal(out.registryId, A);
      assert.deepEqual(out.replicationConfiguration, { rules: [] });
      assert.deepEqual(await cli('describe-registry'), { registryId: A, replicationConfiguration: { rules: [] } });
    });

    test('account settings: BLOB_MOUNTING (ENABLED by default), the one-value settings, and refusals', async () => {
      assert.deepEqual({ ...(await ecr.send(new GetAccountSettingCommand({ name: 'BLOB_MOUNTING' }))), $metadata: undefined }, { $metadata: undefined, name: 'BLOB_MOUNTING', value: 'ENABLED' });
      assert.deepEqual(await cli('get-account-setting', '--name', 'REGISTRY_POLICY_SCOPE'), { name: 'REGISTRY_POLICY_SCOPE', value: 'V2' });
      assert.deepEqual(await cli('get-account-setting', '--name', 'BASIC_SCAN_TYPE_VERSION'), { name: 'BASIC_SCAN_TYPE_VERSION', value: 'AWS_NATIVE' });
      assert.deepEqual(await cli('put-account-setting', '--name', 'REGISTRY_POLICY_SCOPE', '--value', 'V2'), { name: 'REGISTRY_POLICY_SCOPE', value: 'V2' });
      await sdkFails(ecr.send(new GetAccountSettingCommand({ name: 'SOMETHING_ELSE' })), 'InvalidParameterException', /BLOB_MOUNTING, BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE/);
      await sdkFails(ecr.send(new PutAccountSettingCommand({ name: 'BLOB_MOUNTING', value: 'MAYBE' })), 'InvalidParameterException', /ENABLED and DISABLED/);
      await Promise.all([
        cliFails('InvalidParameterException', ['put-account-setting', '--name', 'SOMETHING_ELSE', '--value', 'x'], /supported settings are/),
        cliFails('InvalidParameterException', ['put-account-setting', '--name', 'REGISTRY_POLICY_SCOPE', '--value', 'V3'], /valid values are V1 and V2/),
        cliFails('InvalidParameterException', ['put-account-setting', '--name', 'BASIC_SCAN_TYPE_VERSION', '--value', 'CLAIR'], /CLAIR/),
      ]);
    });

    test('under REGISTRY_POLICY_SCOPE V1 a registry policy names only replication and pull-through cache actions, as ECR refuses others', async (t) => {
      const registryArn = `arn:aws:ecr:${REGION}:${A}:repository/*`;
      const policy = (Action: string | string[], extra: object = {}) =>
        JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'Cross', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::444455556666:root' }, Action, Resource: registryArn, ...extra }] });
      t.after(async () => {
        await awsOk(srv.server, ADMIN, ['ecr', 'delete-registry-policy']).catch(() => undefined);
        await cli('put-account-setting', '--name', 'REGISTRY_POLICY_SCOPE', '--value', 'V2');
      });
      // A policy that grants pulls stops the switch to V1 until it goes.
      await cli('put-registry-policy', '--policy-text', policy(['ecr:BatchGetImage']));
      await cliFails('InvalidParameterException', ['put-account-setting', '--name', 'REGISTRY_POLICY_SCOPE', '--value', 'V1'], /change or delete it first/);
      await cli('delete-registry-policy');
      assert.deepEqual(await cli('put-account-setting', '--name', 'REGISTRY_POLICY_SCOPE', '--value', 'V1'), { name: 'REGISTRY_POLICY_SCOPE', value: 'V1' });
      assert.deepEqual(await cli('get-account-setting', '--name', 'REGISTRY_POLICY_SCOPE'), { name: 'REGISTRY_POLICY_SCOPE', value: 'V1' });
      for (const refused of [['ecr:BatchGetImage'], ['ecr:ReplicateImage', 'ecr:PutImage'], 'ecr:*', 'ecr:Batch*', 's3:GetObject']) {
        await sdkFails(ecr.send(new PutRegistryPolicyCommand({ policyText: policy(refused) })), 'InvalidParameterException', /^Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'/);
      }
      await sdkFails(ecr.send(new PutRegistryPolicyCommand({ policyText: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: '444455556666' }, NotAction: 'ecr:PutImage', Resource: registryArn }] }) })), 'InvalidParameterException', /Invalid registry policy provided/);
      for (const accepted of [['ecr:CreateRepository', 'ecr:ReplicateImage'], ['ecr:CreateRepository', 'ecr:BatchImportUpstreamImage'], 'ecr:Replicate*', 'ECR:createrepository']) {
        const text = policy(accepted);
        assert.equal((await ecr.send(new PutRegistryPolicyCommand({ policyText: text }))).policyText, text);
      }
    });

    test('repository and registry policies take Sids as ECR does (repeated, with spaces); IAM refuses both in identity policies', async (t) => {
      const name = 'policies/sids';
      await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
      // Both statements are "Same": the second is in force too, and denies the administrator ListImages.
      const repositoryPolicy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Same', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::444455556666:root' }, Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'] },
          { Sid: 'Same', Effect: 'Deny', Principal: '*', Action: 'ecr:ListImages' },
          { Sid: 'Pull for team B, from CI', Effect: 'Allow', Principal: { AWS: '444455556666' }, Action: 'ecr:BatchCheckLayerAvailability' },
        ],
      });
      const set = await ecr.send(new SetRepositoryPolicyCommand({ repositoryName: name, policyText: repositoryPolicy }));
      assert.equal(set.policyText, repositoryPolicy);
      assert.equal((await ecr.send(new GetRepositoryPolicyCommand({ repositoryName: name }))).policyText, repositoryPolicy);
      await sdkFails(ecr.send(new ListImagesCommand({ repositoryName: name })), 'AccessDeniedException', /explicit deny in a resource-based policy/);
      await ecr.send(new DeleteRepositoryPolicyCommand({ repositoryName: name }));
      assert.deepEqual((await ecr.send(new ListImagesCommand({ repositoryName: name }))).imageIds, []);

      // ECR's own registry policy example "allow multiple accounts", which repeats its Sid, through the CLI.
      const registryPolicy = {
        Version: '2012-10-17',
        Statement: ['444455556666', '555566667777'].map((account) => ({
          Sid: 'ReplicationAccessCrossAccount',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${account}:root` },
          Action: ['ecr:CreateRepository', 'ecr:ReplicateImage'],
          Resource: [`arn:aws:ecr:${REGION}:${A}:repository/*`],
        })),
      };
      t.after(() => awsOk(srv.server, ADMIN, ['ecr', 'delete-registry-policy']).catch(() => undefined));
      const put = await cli('put-registry-policy', '--policy-text', JSON.stringify(registryPolicy));
      assert.deepEqual(JSON.parse(put.policyText), registryPolicy);
      assert.deepEqual(JSON.parse((await cli('get-registry-policy')).policyText), registryPolicy);
      // REGISTRY_POLICY_SCOPE is V2, ECR's default: a registry policy may name any ECR action, not only replication's.
      const pulls = { Version: '2012-10-17', Statement: [{ Sid: 'Team B pulls', Effect: 'Allow', Principal: { AWS: '444455556666' }, Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: `arn:aws:ecr:${REGION}:${A}:repository/*` }] };
      assert.deepEqual(JSON.parse((await cli('put-registry-policy', '--policy-text', JSON.stringify(pulls))).policyText), pulls);
      await cli('delete-registry-policy');

      // IAM keeps its own rule for identity policies: Sids of letters and digits, each once.
      const iam = iamClient(srv.server, ADMIN);
      await iam.send(new CreateUserCommand({ UserName: 'sid-rules' }));
      const statement = { Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' };
      const putUserPolicy = (Statement: object[]) => iam.send(new PutUserPolicyCommand({ UserName: 'sid-rules', PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement }) }));
      await sdkFails(putUserPolicy([{ ...statement, Sid: 'Same' }, { ...statement, Sid: 'Same' }]), 'MalformedPolicyDocumentException', /^Statement IDs \(SID\) in a single policy must be unique/);
      await sdkFails(putUserPolicy([{ ...statement, Sid: 'Pull for team B' }]), 'MalformedPolicyDocumentException', /^Statement IDs \(SID\) must be alpha-numeric/);
      await putUserPolicy([{ ...statement, Sid: 'Describe1' }, { ...statement, Sid: 'Describe2' }]);
    });

    test('BLOB_MOUNTING DISABLED turns a cross-repository mount into an ordinary upload (202 instead of 201)', async (t) => {
      await Promise.all(['mount/source', 'mount/a', 'mount/b'].map((repositoryName) => ecr.send(new CreateRepositoryCommand({ repositoryName }))));
      const layer = blob(`mount me ${Date.now()}`);
      await pushBlob(srv.baseUrl, 'mount/source', layer);
      const mount = (target: string) => srv.fetch(`/v2/${target}/blobs/uploads/?mount=${layer.digest}&from=mount/source`, { method: 'POST' });

      const mounted = await mount('mount/a');
      assert.equal(mounted.status, 201, await mounted.text());
      assert.equal(mounted.headers.get('docker-content-digest'), layer.digest);

      t.after(() => ecr.send(new PutAccountSettingCommand({ name: 'BLOB_MOUNTING', value: 'ENABLED' })));
      assert.deepEqual(await cli('put-account-setting', '--name', 'BLOB_MOUNTING', '--value', 'DISABLED'), { name: 'BLOB_MOUNTING', value: 'DISABLED' });
      assert.equal((await ecr.send(new GetAccountSettingCommand({ name: 'BLOB_MOUNTING' }))).value, 'DISABLED');
      const upload = await mount('mount/b');
      assert.equal(upload.status, 202, await upload.text());
      const location = upload.headers.get('location')!;
      assert.match(location, /^\/v2\/mount\/b\/blobs\/uploads\/[0-9a-f-]+$/);
      assert.equal((await srv.fetch(`/v2/mount/b/blobs/${layer.digest}`, { method: 'HEAD' })).status, 404, 'nothing was mounted');
      assert.equal((await srv.fetch(location, { method: 'DELETE' })).status, 204);

      await ecr.send(new PutAccountSettingCommand({ name: 'BLOB_MOUNTING', value: 'ENABLED' }));
      assert.equal((await mount('mount/b')).status, 201, 'enabled again, the mount happens');
    });
  });

  describe('repository creation templates', () => {
    const POLICY = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'PullFromB', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::444455556666:root' }, Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'] }],
    });
    const TEMPLATE_LIFECYCLE = JSON.stringify({ rules: [{ rulePriority: 1, selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 }, action: { type: 'expire' } }] });

    test('create, describe (by prefix, paginated), update and delete templates, with every refusal (SDK)', async () => {
      const created = await ecr.send(
        new CreateRepositoryCreationTemplateCommand({
          prefix: 'tpl/sdk/',
          description: 'for the SDK test',
          appliedFor: ['CREATE_ON_PUSH', 'REPLICATION'],
          imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
          imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest' }],
          encryptionConfiguration: { encryptionType: 'KMS', kmsKey: KMS_KEY },
          resourceTags: [{ Key: 'team', Value: 'sdk' }],
          repositoryPolicy: POLICY,
          lifecyclePolicy: '{"rules":[]}',
          customRoleArn: `arn:aws:iam::${A}:role/ecr-templates`,
        }),
      );
      assert.equal(created.registryId, A);
      const t = created.repositoryCreationTemplate!;
      assert.equal(t.prefix, 'tpl/sdk', 'the assumed trailing / is dropped');
      assert.ok(t.createdAt instanceof Date && t.updatedAt instanceof Date);
      assert.deepEqual({ ...t, createdAt: undefined, updatedAt: undefined }, {
        prefix: 'tpl/sdk',
        description: 'for the SDK test',
        appliedFor: ['CREATE_ON_PUSH', 'REPLICATION'],
        imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
        imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest' }],
        encryptionConfiguration: { encryptionType: 'KMS', kmsKey: KMS_KEY },
        resourceTags: [{ Key: 'team', Value: 'sdk' }],
        repositoryPolicy: POLICY,
        lifecyclePolicy: '{"rules":[]}',
        customRoleArn: `arn:aws:iam::${A}:role/ecr-templates`,
        createdAt: undefined,
        updatedAt: undefined,
      });
      await sdkFails(ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'tpl/sdk', appliedFor: ['CREATE_ON_PUSH'] })), 'TemplateAlreadyExistsException', /'tpl\/sdk' already exists/);

      const updated = (await ecr.send(new UpdateRepositoryCreationTemplateCommand({ prefix: 'tpl/sdk', imageTagMutability: 'MUTABLE', resourceTags: [{ Key: 'team', Value: 'other' }] }))).repositoryCreationTemplate!;
      assert.equal(updated.imageTagMutability, 'MUTABLE');
      assert.equal(updated.imageTagMutabilityExclusionFilters, undefined, 'the filters went with the old mutability');
      assert.deepEqual(updated.resourceTags, [{ Key: 'team', Value: 'other' }]);
      assert.equal(updated.description, 'for the SDK test', 'what the update does not name is kept');
      assert.equal(updated.repositoryPolicy, POLICY);
      assert.deepEqual(updated.createdAt, t.createdAt);
      assert.ok(updated.updatedAt!.getTime() >= t.updatedAt!.getTime());

      for (const prefix of ['tpl/p1', 'tpl/p2', 'tpl/p3', 'tpl/p4']) await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix, appliedFor: ['PULL_THROUGH_CACHE'] }));
      const byPrefix = await ecr.send(new DescribeRepositoryCreationTemplatesCommand({ prefixes: ['tpl/p2', 'tpl/sdk/', 'tpl/none'] }));
      assert.deepEqual(byPrefix.repositoryCreationTemplates!.map((x) => x.prefix), ['tpl/p2', 'tpl/sdk']);
      assert.deepEqual(byPrefix.repositoryCreationTemplates![1], updated);
      const paged: string[] = [];
      let pages = 0;
      for await (const page of paginateDescribeRepositoryCreationTemplates({ client: ecr, pageSize: 2 }, { prefixes: ['tpl/p1', 'tpl/p2', 'tpl/p3', 'tpl/p4', 'tpl/sdk'] })) {
        pages++;
        assert.equal(page.registryId, A);
        paged.push(...page.repositoryCreationTemplates!.map((x) => x.prefix!));
      }
      assert.deepEqual(paged, ['tpl/p1', 'tpl/p2', 'tpl/p3', 'tpl/p4', 'tpl/sdk']);
      assert.equal(pages, 3);

      const create = (input: Record<string, unknown>) => ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'tpl/refused', appliedFor: ['CREATE_ON_PUSH'], ...input }));
      await sdkFails(create({ appliedFor: [] }), 'InvalidParameterException', /appliedFor/);
      await sdkFails(create({ imageTagMutability: 'IMMUTABLE', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'x' }] }), 'InvalidParameterException', /WITH_EXCLUSION/);
      await sdkFails(create({ encryptionConfiguration: { encryptionType: 'AES256', kmsKey: KMS_KEY } }), 'InvalidParameterException', /kmsKey/);
      await sdkFails(create({ repositoryPolicy: '{"Statement":"nope"}' }), 'InvalidParameterException', /repositoryPolicy/);
      await sdkFails(create({ lifecyclePolicy: 'not json' }), 'InvalidParameterException', /lifecyclePolicy/);
      await sdkFails(create({ resourceTags: [{ Key: 'aws:x', Value: 'y' }] }), 'InvalidParameterException', /reserved/);
      await sdkFails(create({ prefix: 'Tpl/Upper' }), 'InvalidParameterException', /prefix/);
      assert.deepEqual((await ecr.send(new DescribeRepositoryCreationTemplatesCommand({ prefixes: ['tpl/refused'] }))).repositoryCreationTemplates, [], 'refused templates are not stored');
      await sdkFails(ecr.send(new UpdateRepositoryCreationTemplateCommand({ prefix: 'tpl/missing', description: 'x' })), 'TemplateNotFoundException', /'tpl\/missing' does not exist/);
      await sdkFails(ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'tpl/missing' })), 'TemplateNotFoundException');

      const removed = await ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'tpl/sdk' }));
      assert.deepEqual(removed.repositoryCreationTemplate, updated);
      for (const prefix of ['tpl/p1', 'tpl/p2', 'tpl/p3', 'tpl/p4']) await ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix }));
      assert.deepEqual((await ecr.send(new DescribeRepositoryCreationTemplatesCommand({}))).repositoryCreationTemplates, []);
    });

    test('create, describe, update and delete templates, with every refusal (CLI)', async () => {
      const created = await cli(
        'create-repository-creation-template', '--prefix', 'tpl/cli', '--applied-for', 'CREATE_ON_PUSH',
        '--image-tag-mutability', 'IMMUTABLE', '--resource-tags', 'Key=team,Value=cli', '--description', 'from the CLI',
      );
      assert.equal(created.registryId, A);
      assert.equal(created.repositoryCreationTemplate.prefix, 'tpl/cli');
      assert.equal(created.repositoryCreationTemplate.imageTagMutability, 'IMMUTABLE');
      assert.deepEqual(created.repositoryCreationTemplate.encryptionConfiguration, { encryptionType: 'AES256' });
      const described = await cli('describe-repository-creation-templates', '--prefixes', 'tpl/cli');
      assert.deepEqual(described.repositoryCreationTemplates, [created.repositoryCreationTemplate]);
      const updated = await cli('update-repository-creation-template', '--prefix', 'tpl/cli', '--image-tag-mutability', 'MUTABLE_WITH_EXCLUSION', '--image-tag-mutability-exclusion-filters', 'filterType=WILDCARD,filter=latest');
      assert.equal(updated.repositoryCreationTemplate.imageTagMutability, 'MUTABLE_WITH_EXCLUSION');
      assert.deepEqual(updated.repositoryCreationTemplate.resourceTags, [{ Key: 'team', Value: 'cli' }]);
      await Promise.all([
        cliFails('TemplateAlreadyExistsException', ['create-repository-creation-template', '--prefix', 'tpl/cli', '--applied-for', 'REPLICATION']),
        cliFails('TemplateNotFoundException', ['update-repository-creation-template', '--prefix', 'tpl/missing', '--description', 'x']),
        cliFails('TemplateNotFoundException', ['delete-repository-creation-template', '--prefix', 'tpl/missing']),
        cliFails('InvalidParameterException', ['create-repository-creation-template', '--prefix', 'tpl/refused', '--applied-for', 'CREATE_ON_PUSH', '--encryption-configuration', `encryptionType=AES256,kmsKey=${KMS_KEY}`]),
        cliFails('InvalidParameterException', ['create-repository-creation-template', '--prefix', 'tpl/refused', '--applied-for', 'CREATE_ON_PUSH', '--image-tag-mutability', 'IMMUTABLE_WITH_EXCLUSION']),
        cliFails('InvalidParameterException', ['create-repository-creation-template', '--prefix', 'tpl/refused', '--applied-for', 'CREATE_ON_PUSH', '--repository-policy', '{"Version":"2012-10-17"}']),
      ]);
      const deleted = await cli('delete-repository-creation-template', '--prefix', 'tpl/cli');
      assert.deepEqual(deleted.repositoryCreationTemplate, updated.repositoryCreationTemplate);
      assert.deepEqual((await cli('describe-repository-creation-templates')).repositoryCreationTemplates, []);
    });

    test('a CREATE_ON_PUSH template makes skopeo create team-x/app with its settings; an uncovered name is refused with NAME_UNKNOWN', async (t) => {
      if (!requireTools(t, 'skopeo')) return;
      await ecr.send(
        new CreateRepositoryCreationTemplateCommand({
          prefix: 'team-x',
          appliedFor: ['CREATE_ON_PUSH'],
          imageTagMutability: 'IMMUTABLE',
          resourceTags: [{ Key: 'team', Value: 'x' }],
          repositoryPolicy: POLICY,
          lifecyclePolicy: TEMPLATE_LIFECYCLE,
        }),
      );
      t.after(() => ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'team-x' })));
      const tools = await toolSandbox();
      t.after(() => tools.close());
      const layout = await tools.mkdir('layout');
      await writeOciLayout(layout, [{ tag: 'v1', content: buildRealImage() }]);
      const token = (await ecr.send(new GetAuthorizationTokenCommand({}))).authorizationData![0]!.authorizationToken!;
      const creds = Buffer.from(token, 'base64').toString('utf8');
      assert.match(creds, /^AWS:/);
      const copy = (name: string) => tools.skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:v1`, `docker://${host}/${name}:1`], { allowFailure: true, timeoutMs: 60_000 });

      const pushed = await copy('team-x/app');
      assert.equal(pushed.code, 0, pushed.stderr);
      const repository = await describeOne('team-x/app');
      assert.equal(repository.imageTagMutability, 'IMMUTABLE');
      assert.deepEqual(repository.encryptionConfiguration, { encryptionType: 'AES256' });
      assert.deepEqual((await ecr.send(new ListTagsForResourceCommand({ resourceArn: arnOf('team-x/app') }))).tags, [{ Key: 'team', Value: 'x' }]);
      assert.deepEqual(JSON.parse((await ecr.send(new GetRepositoryPolicyCommand({ repositoryName: 'team-x/app' }))).policyText!), JSON.parse(POLICY));
      // The template's lifecycle policy is the repository's, as GetLifecyclePolicy (and lifecycle runs) read it.
      assert.deepEqual(JSON.parse((await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'team-x/app' }))).lifecyclePolicyText!), JSON.parse(TEMPLATE_LIFECYCLE));

      const refused = await copy('team-y/app');
      assert.notEqual(refused.code, 0, 'the push to an uncovered name fails');
      assert.match(refused.stderr, /name unknown/i, refused.stderr);
      assert.match(refused.stderr, /aws ecr create-repository --repository-name team-y\/app/, refused.stderr);
      await sdkFails(describeOne('team-y/app'), 'RepositoryNotFoundException');
      await cliFails('RepositoryNotFoundException', ['describe-repositories', '--repository-names', 'team-y/app']);
    });

    test('a CREATE_ON_PUSH template also creates repositories for the ECR API push path (InitiateLayerUpload, PutImage)', async (t) => {
      const { InitiateLayerUploadCommand, PutImageCommand } = await import('@aws-sdk/client-ecr');
      await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'apipush', appliedFor: ['CREATE_ON_PUSH'], imageTagMutability: 'IMMUTABLE' }));
      t.after(() => ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'apipush' })));
      const started = await ecr.send(new InitiateLayerUploadCommand({ repositoryName: 'apipush/layers' }));
      assert.ok(started.uploadId);
      const created = await describeOne('apipush/layers');
      assert.equal(created.imageTagMutability, 'IMMUTABLE', 'created with the template\'s settings');

      // PutImage to a name no template covers is still RepositoryNotFoundException.
      const empty = blob('{}');
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'text/plain', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.bytes.length }, layers: [] });
      await sdkFails(ecr.send(new PutImageCommand({ repositoryName: 'elsewhere/artifact', imageManifest: manifest, imageTag: 'v1' })), 'RepositoryNotFoundException');
    });

    test('the longest covering prefix wins, ROOT covers the rest, and a push that creates also needs ecr:CreateRepository', async (t) => {
      await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'ROOT', appliedFor: ['CREATE_ON_PUSH'], resourceTags: [{ Key: 'from', Value: 'root' }] }));
      t.after(() => ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'ROOT' })));
      for (const [prefix, from] of [['lp', 'lp'], ['lp/special', 'lp/special']] as const) {
        await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix, appliedFor: ['CREATE_ON_PUSH'], imageTagMutability: 'IMMUTABLE', resourceTags: [{ Key: 'from', Value: from }] }));
        t.after(() => ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix })));
      }
      await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'repl', appliedFor: ['REPLICATION'] }));
      t.after(() => ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'repl' })));

      for (const [name, from] of [['lp/special/app', 'lp/special'], ['lp/app', 'lp'], ['lpx/app', 'root'], ['lp', 'root'], ['repl/app', 'root']] as const) {
        await pushImage(srv.baseUrl, name, buildImage(), 'v1');
        const tagsOf = (await ecr.send(new ListTagsForResourceCommand({ resourceArn: arnOf(name) }))).tags;
        assert.deepEqual(tagsOf, [{ Key: 'from', Value: from }], `${name} comes from ${from}`);
      }

      // Without ROOT, a REPLICATION-only template creates nothing on push.
      await ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'ROOT' }));
      await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'ROOT', appliedFor: ['PULL_THROUGH_CACHE'] }));
      const refused = await expectError(await srv.fetch('/v2/repl/other/blobs/uploads/', { method: 'POST' }), 404, 'NAME_UNKNOWN');
      assert.match(refused.errors[0]!.message, /Repository repl\/other does not exist in the registry with id '111122223333'; create it first \(aws ecr create-repository --repository-name repl\/other\)/);

      // A user who may push to lp/* but not create repositories: a push that would create is
      // refused as ecr:CreateRepository; one to an uncovered name is simply NAME_UNKNOWN.
      const iam = iamClient(srv.server, ADMIN);
      await iam.send(new CreateUserCommand({ UserName: 'pusher' }));
      const push = ['ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:BatchCheckLayerAvailability'];
      const policy = (actions: string[]) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: `arn:aws:ecr:${REGION}:${A}:repository/*` }] });
      await iam.send(new PutUserPolicyCommand({ UserName: 'pusher', PolicyName: 'push', PolicyDocument: policy(push) }));
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'pusher' }))).AccessKey!;
      const authorization = basicAuthorization(key.AccessKeyId!, key.SecretAccessKey!);
      const start = (name: string) => srv.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { authorization } });

      const denied = await expectError(await start('lp/pushed-by-user'), 403, 'DENIED');
      assert.match(denied.errors[0]!.message, /not authorized to perform: ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:111122223333:repository\/lp\/pushed-by-user/);
      await expectError(await start('nowhere/app'), 404, 'NAME_UNKNOWN');
      assert.equal((await start('lp/app')).status, 202, 'an existing repository needs no ecr:CreateRepository');
      await iam.send(new PutUserPolicyCommand({ UserName: 'pusher', PolicyName: 'push', PolicyDocument: policy([...push, 'ecr:CreateRepository']) }));
      assert.equal((await start('lp/pushed-by-user')).status, 202);
      assert.equal((await describeOne('lp/pushed-by-user')).imageTagMutability, 'IMMUTABLE');
    });
  });
});
