/**
 * The error catalogue: one entry per protocol fact. Each plane renders an entry its own way
 * (the OCI plane as `{"errors":[{code,message,detail}]}`), so the status lives with the
 * rendering, not with the fact. docs/errors.md lists every entry; a test keeps them in step.
 */

export interface OciRendering {
  /** Error code as the OCI Distribution spec spells it (section "Error Codes"). */
  code: string;
  status: number;
}

export interface EcrRendering {
  /** The exception name ECR uses (`__type`), from its service model. */
  type: string;
  status: number;
}

export interface ErrorSpec {
  message: string;
  /** One sentence for docs/errors.md: when a client sees this. */
  description: string;
  oci?: OciRendering;
  /** How the ECR API spells the fact, where it can meet it. */
  ecr?: EcrRendering;
}

export const catalogue = {
  BlobUnknown: {
    message: 'The blob is not known to this repository.',
    description: 'A blob was fetched, checked or deleted that the repository does not hold.',
    oci: { code: 'BLOB_UNKNOWN', status: 404 },
    ecr: { type: 'LayersNotFoundException', status: 400 },
  },
  BlobUploadInvalid: {
    message: 'The blob upload is invalid.',
    description: 'An upload request was malformed, or its body ended before the declared length.',
    oci: { code: 'BLOB_UPLOAD_INVALID', status: 400 },
    ecr: { type: 'InvalidLayerPartException', status: 400 },
  },
  BlobUploadUnknown: {
    message: 'The upload session is not known; it may have expired, completed or been cancelled.',
    description: 'An upload id was used that does not exist in this repository, or whose session expired.',
    oci: { code: 'BLOB_UPLOAD_UNKNOWN', status: 404 },
    ecr: { type: 'UploadNotFoundException', status: 400 },
  },
  DigestInvalid: {
    message: 'The digest is invalid or does not match the content.',
    description: 'A digest was malformed, used an unsupported algorithm, or did not match the bytes received; nothing was stored.',
    oci: { code: 'DIGEST_INVALID', status: 400 },
    ecr: { type: 'InvalidLayerException', status: 400 },
  },
  ManifestBlobUnknown: {
    message: 'The manifest references a blob or manifest that this repository does not hold.',
    description: 'A manifest was pushed before the blobs or child manifests it references; push those first.',
    oci: { code: 'MANIFEST_BLOB_UNKNOWN', status: 400 },
    ecr: { type: 'LayersNotFoundException', status: 400 },
  },
  ManifestInvalid: {
    message: 'The manifest is invalid.',
    description: 'A manifest was not valid JSON, had an unsupported media type, or broke its schema.',
    oci: { code: 'MANIFEST_INVALID', status: 400 },
    ecr: { type: 'InvalidParameterException', status: 400 },
  },
  ManifestTooLarge: {
    message: 'The manifest is larger than the registry accepts.',
    description: 'A manifest body exceeded the configured limit (4 MiB by default).',
    oci: { code: 'SIZE_INVALID', status: 413 },
    ecr: { type: 'InvalidParameterException', status: 400 },
  },
  ManifestUnknown: {
    message: 'The manifest is not known to this repository.',
    description: 'A tag or digest was requested that the repository does not hold.',
    oci: { code: 'MANIFEST_UNKNOWN', status: 404 },
    ecr: { type: 'ImageNotFoundException', status: 400 },
  },
  ManifestReferenced: {
    message: 'The manifest is still referenced by an index in this repository; delete the index first.',
    description: 'A manifest was deleted while a manifest list or OCI index in the same repository still lists it.',
    oci: { code: 'DENIED', status: 409 },
    ecr: { type: 'InvalidParameterException', status: 400 },
  },
  ManifestChildUnknown: {
    message: 'The index lists a manifest that this repository does not hold.',
    description: 'An index (manifest list) was pushed before the manifests it lists; push those first.',
    oci: { code: 'MANIFEST_BLOB_UNKNOWN', status: 400 },
    ecr: { type: 'ReferencedImagesNotFoundException', status: 400 },
  },
  NameInvalid: {
    message: 'The repository name is invalid.',
    description: 'A repository name broke the naming rules: 2 to 256 characters of lowercase letters and digits, with single . _ or - between them and / between path components (the ECR rule, a subset of the OCI grammar).',
    oci: { code: 'NAME_INVALID', status: 400 },
    ecr: { type: 'InvalidParameterException', status: 400 },
  },
  NameUnknown: {
    message: 'The repository does not exist.',
    description: 'A repository was named that does not exist.',
    oci: { code: 'NAME_UNKNOWN', status: 404 },
    ecr: { type: 'RepositoryNotFoundException', status: 400 },
  },
  PaginationNumberInvalid: {
    message: 'The page size n must be a whole number, 0 or more.',
    description: 'A list request had an n parameter that was not a non-negative integer.',
    oci: { code: 'PAGINATION_NUMBER_INVALID', status: 400 },
  },
  RangeInvalid: {
    message: 'The chunk does not continue the upload where it left off.',
    description: 'A chunk arrived out of order: its Content-Range did not start at the current size of the upload.',
    oci: { code: 'RANGE_INVALID', status: 416 },
    ecr: { type: 'InvalidLayerPartException', status: 400 },
  },
  RangeNotSatisfiable: {
    message: 'The requested byte range is outside the blob.',
    description: 'A blob was fetched with a Range header that lies beyond its end.',
    oci: { code: 'RANGE_INVALID', status: 416 },
  },
  SizeInvalid: {
    message: 'The content length does not match what was declared.',
    description: 'A request body was shorter or longer than its Content-Length or Content-Range said.',
    oci: { code: 'SIZE_INVALID', status: 400 },
    ecr: { type: 'InvalidLayerPartException', status: 400 },
  },
  TagInvalid: {
    message: 'The tag is invalid.',
    description: 'A tag broke the naming rules: up to 128 characters of letters, digits, _ . and -, not starting with . or -.',
    oci: { code: 'TAG_INVALID', status: 400 },
    ecr: { type: 'InvalidParameterException', status: 400 },
  },
  TagImmutable: {
    message: 'The image tag already exists and cannot be overwritten because it is immutable.',
    description: 'A manifest was pushed to a tag that points at another image, in a repository whose tag mutability setting makes that tag immutable.',
    oci: { code: 'TAG_INVALID', status: 400 },
    ecr: { type: 'ImageTagAlreadyExistsException', status: 400 },
  },
  Unauthorized: {
    message: 'Authentication is required.',
    description: 'A request came without valid credentials.',
    oci: { code: 'UNAUTHORIZED', status: 401 },
    ecr: { type: 'UnrecognizedClientException', status: 400 },
  },
  Denied: {
    message: 'Access to the resource is denied.',
    description: 'The caller is authenticated but not allowed to perform the action on the repository.',
    oci: { code: 'DENIED', status: 403 },
    ecr: { type: 'AccessDeniedException', status: 400 },
  },
  Unsupported: {
    message: 'The operation is unsupported.',
    description: 'An HTTP method or endpoint the registry does not implement was used.',
    oci: { code: 'UNSUPPORTED', status: 405 },
  },
  ReplicationHeaderInvalid: {
    message: 'The replication header is malformed.',
    description: 'A request carried the x-berth-replication header that a replicating Berth sends, but not in its form `account=<12 digits>; region=<region>`.',
    oci: { code: 'UNSUPPORTED', status: 400 },
  },
  NotFound: {
    message: 'There is nothing at this path.',
    description: 'A request named a path that is not part of the API.',
    oci: { code: 'NOT_FOUND', status: 404 },
  },
  UpstreamUnavailable: {
    message: 'The upstream registry of the pull-through cache did not answer, and nothing is cached for this request.',
    description: 'A pull through a pull-through cache rule needed the upstream registry (a first pull, or a tag never cached) and the upstream was unreachable, failed or timed out.',
    oci: { code: 'UNAVAILABLE', status: 503 },
  },
  UpstreamRateLimited: {
    message: 'The upstream registry of the pull-through cache is rate-limiting, and nothing is cached for this request.',
    description: 'A pull through a pull-through cache rule needed the upstream registry, which answered 429 Too Many Requests (Docker Hub\'s pull limit); the answer carries its Retry-After.',
    oci: { code: 'TOOMANYREQUESTS', status: 429 },
  },
  UpstreamRejected: {
    message: 'The upstream registry of the pull-through cache refused the request or answered with content that cannot be cached.',
    description: 'The upstream refused the rule\'s credentials (fix the secret the rule names: ValidatePullThroughCacheRule says what is wrong), or served bytes that do not match their digest, which are never cached or served.',
    oci: { code: 'DENIED', status: 502 },
  },
  ServiceUnavailable: {
    message: 'The registry is shutting down or not ready; try again shortly.',
    description: 'The server is draining or a backing store is unreachable.',
    oci: { code: 'UNAVAILABLE', status: 503 },
    ecr: { type: 'ServerException', status: 500 },
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof catalogue;

export class RegistryError extends Error {
  readonly errorName: ErrorName;
  readonly detail: Record<string, unknown> | undefined;

  constructor(name: ErrorName, detail?: Record<string, unknown>, options?: ErrorOptions & { message?: string }) {
    super(options?.message ?? catalogue[name].message, options);
    this.name = 'RegistryError';
    this.errorName = name;
    this.detail = detail;
  }
}

export function isRegistryError(err: unknown, name?: ErrorName): err is RegistryError {
  return err instanceof RegistryError && (name === undefined || err.errorName === name);
}
