// Writes the trimmed AWS service models that src/aws/ loads at run time: only the operations Berth
// serves, the shapes they reach, no documentation. Run it again when the reference models change:
//   node scripts/trim-models.ts [--reference DIR] [--secretsmanager FILE] [--cloudtrail FILE]
// DIR defaults to ../shared/reference beside the repository (botocore's service-2.json files).
// FILE is botocore's secretsmanager/2017-10-17/service-2.json(.gz) (Apache-2.0), by default the
// one of the pyenv Python's botocore 1.43.11, the version the reference files come from; the
// --cloudtrail FILE is botocore's cloudtrail/2013-11-01/service-2.json(.gz), from the same place.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const IAM_OPERATIONS = [
  'CreateUser', 'GetUser', 'ListUsers', 'DeleteUser',
  'CreateAccessKey', 'ListAccessKeys', 'UpdateAccessKey', 'DeleteAccessKey', 'GetAccessKeyLastUsed',
  'CreateGroup', 'GetGroup', 'ListGroups', 'DeleteGroup', 'AddUserToGroup', 'RemoveUserFromGroup',
  'ListGroupsForUser',
  'CreateRole', 'GetRole', 'ListRoles', 'DeleteRole', 'UpdateAssumeRolePolicy',
  'CreatePolicy', 'GetPolicy', 'GetPolicyVersion', 'ListPolicies', 'DeletePolicy',
  'AttachUserPolicy', 'DetachUserPolicy', 'ListAttachedUserPolicies',
  'AttachGroupPolicy', 'DetachGroupPolicy', 'ListAttachedGroupPolicies',
  'AttachRolePolicy', 'DetachRolePolicy', 'ListAttachedRolePolicies',
  'PutUserPolicy', 'GetUserPolicy', 'DeleteUserPolicy', 'ListUserPolicies',
  'PutGroupPolicy', 'GetGroupPolicy', 'DeleteGroupPolicy', 'ListGroupPolicies',
  'PutRolePolicy', 'GetRolePolicy', 'DeleteRolePolicy', 'ListRolePolicies',
  'TagUser', 'UntagUser', 'ListUserTags', 'TagRole', 'UntagRole', 'ListRoleTags',
  'CreateLoginProfile', 'GetLoginProfile', 'UpdateLoginProfile', 'DeleteLoginProfile', 'ChangePassword',
  'GetAccountPasswordPolicy', 'UpdateAccountPasswordPolicy', 'DeleteAccountPasswordPolicy',
];
const STS_OPERATIONS = ['GetCallerIdentity', 'AssumeRole', 'GetSessionToken'];
/** What ECR's pull-through cache credentials need (docs/secrets-manager.md). */
const SECRETSMANAGER_OPERATIONS = [
  'CreateSecret', 'GetSecretValue', 'PutSecretValue', 'UpdateSecret', 'DescribeSecret', 'ListSecrets', 'DeleteSecret', 'RestoreSecret',
];
/** The audit log as CloudTrail's event history (docs/security.md, "Audit log"). */
const CLOUDTRAIL_OPERATIONS = ['LookupEvents'];

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep copy without any `documentation` key; every other key is kept as it is. */
function withoutDocs(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutDocs);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    if (key !== 'documentation') out[key] = withoutDocs(child);
  }
  return out;
}

/** Shape names a shape refers to directly: structure members, list member, map key and value. */
function referencedShapes(shape: JsonObject): string[] {
  const refs: Json[] = [];
  if (isObject(shape.members)) refs.push(...Object.values(shape.members));
  refs.push(shape.member ?? null, shape.key ?? null, shape.value ?? null);
  return refs.flatMap((ref) => (isObject(ref) && typeof ref.shape === 'string' ? [ref.shape] : []));
}

export function trimModel(source: JsonObject, operationNames: readonly string[] | 'all'): JsonObject {
  const operations = source.operations;
  const shapes = source.shapes;
  if (!isObject(operations) || !isObject(shapes)) throw new Error('not a botocore service model');
  const wanted = operationNames === 'all' ? Object.keys(operations) : operationNames;
  const missing = wanted.filter((name) => !Object.hasOwn(operations, name));
  if (missing.length > 0) throw new Error(`operations not in the model: ${missing.join(', ')}`);

  const reached = new Set<string>();
  const pending: string[] = [];
  const reach = (name: string): void => {
    if (reached.has(name)) return;
    if (!Object.hasOwn(shapes, name)) throw new Error(`shape ${name} is referenced but not defined`);
    reached.add(name);
    pending.push(name);
  };
  for (const name of wanted) {
    const op = operations[name];
    if (!isObject(op)) throw new Error(`operation ${name} is malformed`);
    for (const ref of [op.input, op.output, ...(Array.isArray(op.errors) ? op.errors : [])]) {
      if (isObject(ref) && typeof ref.shape === 'string') reach(ref.shape);
    }
  }
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const shape = shapes[name];
    if (isObject(shape)) referencedShapes(shape).forEach(reach);
  }

  // Keep the source's order for both maps, so a re-run after a model update gives a readable diff.
  const wantedSet = new Set(wanted);
  const trimmedOperations: JsonObject = {};
  for (const [name, op] of Object.entries(operations)) {
    if (wantedSet.has(name)) trimmedOperations[name] = withoutDocs(op);
  }
  const trimmedShapes: JsonObject = {};
  for (const [name, shape] of Object.entries(shapes)) {
    if (reached.has(name)) trimmedShapes[name] = withoutDocs(shape);
  }
  const out: JsonObject = {};
  if (source.version !== undefined) out.version = source.version;
  out.metadata = withoutDocs(source.metadata ?? {});
  out.operations = trimmedOperations;
  out.shapes = trimmedShapes;
  return out;
}

/** One operation or shape per line: small like compact JSON, but a model update diffs by shape. */
export function formatModel(model: JsonObject): string {
  const lines = ['{'];
  const entries = Object.entries(model);
  entries.forEach(([key, value], index) => {
    const comma = index < entries.length - 1 ? ',' : '';
    if ((key === 'operations' || key === 'shapes') && isObject(value)) {
      const inner = Object.entries(value).map(([name, def]) => `  ${JSON.stringify(name)}: ${JSON.stringify(def)}`);
      lines.push(`${JSON.stringify(key)}: {`, inner.join(',\n'), `}${comma}`);
    } else {
      lines.push(`${JSON.stringify(key)}: ${JSON.stringify(value)}${comma}`);
    }
  });
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** A JSON file, gzip-compressed or not (botocore ships some models as service-2.json.gz). */
function readJson(file: string): JsonObject {
  const raw = readFileSync(file);
  const text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
  const parsed = JSON.parse(text) as Json;
  if (!isObject(parsed)) throw new Error(`${file}: expected a JSON object`);
  return parsed;
}

/**
 * The files this script writes under src/aws/models/, by name, as text. secretsmanager.json and
 * cloudtrail.json are among them only when `secretsManagerModel` and `cloudTrailModel` exist (the
 * reference directory holds neither).
 */
export function buildModelFiles(referenceDir: string, secretsManagerModel = DEFAULT_SECRETSMANAGER_MODEL, cloudTrailModel = DEFAULT_CLOUDTRAIL_MODEL): Map<string, string> {
  const jobs: Array<[string, readonly string[] | 'all']> = [
    ['iam', IAM_OPERATIONS],
    ['sts', STS_OPERATIONS],
    ['ecr', 'all'],
  ];
  const files = new Map<string, string>();
  for (const [name, operations] of jobs) {
    const trimmed = trimModel(readJson(path.join(referenceDir, `${name}-service-2.json`)), operations);
    files.set(`${name}.json`, formatModel(trimmed));
  }
  const paginators = readJson(path.join(referenceDir, 'ecr-paginators-1.json'));
  files.set('ecr-paginators.json', `${JSON.stringify(paginators, null, 2)}\n`);
  if (existsSync(secretsManagerModel)) {
    files.set('secretsmanager.json', formatModel(trimModel(readJson(secretsManagerModel), SECRETSMANAGER_OPERATIONS)));
  }
  if (existsSync(cloudTrailModel)) {
    files.set('cloudtrail.json', formatModel(trimModel(readJson(cloudTrailModel), CLOUDTRAIL_OPERATIONS)));
  }
  return files;
}

export const DEFAULT_REFERENCE_DIR = path.resolve(import.meta.dirname, '../../shared/reference');
export const DEFAULT_SECRETSMANAGER_MODEL = '/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/botocore/data/secretsmanager/2017-10-17/service-2.json.gz';
export const DEFAULT_CLOUDTRAIL_MODEL = '/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/botocore/data/cloudtrail/2013-11-01/service-2.json.gz';

function main(argv: readonly string[]): void {
  const flag = argv.indexOf('--reference');
  const referenceDir = flag >= 0 && argv[flag + 1] !== undefined ? path.resolve(argv[flag + 1] as string) : DEFAULT_REFERENCE_DIR;
  const smFlag = argv.indexOf('--secretsmanager');
  const secretsManagerModel = smFlag >= 0 && argv[smFlag + 1] !== undefined ? path.resolve(argv[smFlag + 1] as string) : DEFAULT_SECRETSMANAGER_MODEL;
  if (smFlag >= 0 && !existsSync(secretsManagerModel)) throw new Error(`--secretsmanager ${secretsManagerModel}: no such file`);
  const ctFlag = argv.indexOf('--cloudtrail');
  const cloudTrailModel = ctFlag >= 0 && argv[ctFlag + 1] !== undefined ? path.resolve(argv[ctFlag + 1] as string) : DEFAULT_CLOUDTRAIL_MODEL;
  if (ctFlag >= 0 && !existsSync(cloudTrailModel)) throw new Error(`--cloudtrail ${cloudTrailModel}: no such file`);
  const outDir = path.resolve(import.meta.dirname, '../src/aws/models');
  mkdirSync(outDir, { recursive: true });
  const files = buildModelFiles(referenceDir, secretsManagerModel, cloudTrailModel);
  for (const [file, text] of files) {
    writeFileSync(path.join(outDir, file), text);
    console.log(`src/aws/models/${file}: ${text.length} bytes`);
  }
  if (!files.has('secretsmanager.json')) console.log(`src/aws/models/secretsmanager.json: kept as it is (no ${secretsManagerModel}; pass --secretsmanager FILE)`);
  if (!files.has('cloudtrail.json')) console.log(`src/aws/models/cloudtrail.json: kept as it is (no ${cloudTrailModel}; pass --cloudtrail FILE)`);
}

if (import.meta.filename === process.argv[1]) main(process.argv.slice(2));
