// What the configuration says about an S3 blob store, without the AWS SDK: the composition root
// checks a blob URL before it loads the driver, and only loads the driver when the URL asks for it.

/** How to reach the object store: the `s3.*` configuration keys. */
export interface S3Settings {
  /** e.g. `http://127.0.0.1:7480`; absent for AWS itself. */
  endpoint?: string | undefined;
  region: string;
  /** `http://host/bucket/key` rather than `http://bucket.host/key`; most non-AWS stores need it. */
  forcePathStyle: boolean;
  /** With `secretAccessKey`; both absent, the AWS SDK's default credential chain is used. */
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
}

/**
 * Parses the part of a blob URL after `s3:`: `//BUCKET` or `//BUCKET/PREFIX`.
 * Throws an Error saying what is wrong.
 *
 * Bucket names follow S3's legacy rules (3 to 255 letters, digits, `.`, `_`, `-`), which every
 * bucket of today's stricter ones also meets. The prefix is limited to the characters AWS calls
 * safe in keys ("Object key naming guidelines"), and `/`: others need escaping that not every
 * S3 implementation gets right (Ceph RGW 16 decodes the copy source of UploadPartCopy twice,
 * so a `%` in a key breaks commits).
 */
export function parseS3Location(rest: string): { bucket: string; prefix: string } {
  const m = /^\/\/([^/]*)(?:\/(.*))?$/.exec(rest);
  if (!m) throw new Error('expected s3://BUCKET or s3://BUCKET/PREFIX');
  const bucket = m[1]!;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$/.test(bucket)) throw new Error(`${JSON.stringify(bucket)} is not a bucket name`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9!_.*'()/-]*$/.test(prefix)) {
    throw new Error(`the prefix ${JSON.stringify(prefix)} may hold only letters, digits, "/" and !-_.*'() (S3's safe characters for keys)`);
  }
  if (prefix !== '' && prefix.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`the prefix ${JSON.stringify(prefix)} has an empty, "." or ".." component`);
  }
  return { bucket, prefix };
}
