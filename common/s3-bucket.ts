// What S3 accepts as a bucket name, checked the same way by the injector (config, annotation), the
// exporter (--bucket) and the bucket cache before any request is made.

export const S3_BUCKET_PATTERN = '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$';
export const S3_BUCKET_ALLOWED =
  'an S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit';

const BUCKET = new RegExp(S3_BUCKET_PATTERN);

export function isS3BucketName(name: string): boolean {
  return BUCKET.test(name);
}
