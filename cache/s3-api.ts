// The read-only slice of the S3 REST API that Flipt v1.61.1's object store speaks (gocloud.dev/blob
// s3blob over aws-sdk-go-v2, path-style): how a request is read and how answers are written. Pure:
// no I/O, so every branch is tested without a server.
//
// What Flipt sends per poll (internal/storage/fs/object/store.go, gocloud.dev/blob/s3blob):
//   GET /{bucket}/{prefix}.flipt.yml                      → the object, or 404 NoSuchKey
//   GET /{bucket}?list-type=2&max-keys=1000&prefix={p}    → ListObjectsV2, paged by continuation-token
//   GET /{bucket}/{prefix}features.yml                    → the object (no Range: offset 0, length -1)
// s3blob reads `LastModified`, `Size` and `ETag` of every listed object (a missing LastModified
// would crash it), and maps NoSuchKey / NoSuchBucket / NotFound error codes to "not found".

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** XML text escaping for element content (S3 answers escape `"` too). */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

export interface S3Error {
  status: number;
  code: string;
  message: string;
  /** Extra elements, e.g. Key, BucketName. */
  extra?: Record<string, string>;
}

export function errorXml(error: S3Error, resource: string, requestId: string): string {
  const extra = Object.entries(error.extra ?? {})
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  return (
    `${XML_HEAD}<Error><Code>${error.code}</Code><Message>${xmlEscape(error.message)}</Message>${extra}` +
    `<Resource>${xmlEscape(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

export const noSuchKey = (bucket: string, key: string): S3Error => ({
  status: 404,
  code: 'NoSuchKey',
  message: 'The specified key does not exist.',
  extra: { Key: key, BucketName: bucket },
});

export const noSuchBucket = (bucket: string): S3Error => ({
  status: 404,
  code: 'NoSuchBucket',
  message: 'The specified bucket does not exist.',
  extra: { BucketName: bucket },
});

export const accessDenied = (message: string): S3Error => ({ status: 403, code: 'AccessDenied', message });

export const notImplemented = (message: string): S3Error => ({
  status: 501,
  code: 'NotImplemented',
  message,
});

export const methodNotAllowed = (method: string): S3Error => ({
  status: 405,
  code: 'MethodNotAllowed',
  message: `${method} is not allowed: this is a read-only cache of the bucket`,
});

export const invalidArgument = (message: string, name: string, value: string): S3Error => ({
  status: 400,
  code: 'InvalidArgument',
  message,
  extra: { ArgumentName: name, ArgumentValue: value },
});

export const serviceUnavailable = (message: string): S3Error => ({
  status: 503,
  code: 'ServiceUnavailable',
  message,
});

export type S3Request =
  | { kind: 'list'; bucket: string; query: URLSearchParams }
  | { kind: 'object'; bucket: string; key: string }
  | { kind: 'bad'; error: S3Error };

/**
 * Splits a path-style request target into bucket and key. Keys arrive percent-encoded (SigV4
 * encodes every byte but unreserved ones and `/`), so the path is decoded once, here.
 */
export function parseS3Target(url: string): S3Request {
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  const slash = rawPath.indexOf('/', 1);
  let bucket: string;
  let key: string;
  try {
    bucket = decodeURIComponent(slash === -1 ? rawPath.slice(1) : rawPath.slice(1, slash));
    key = slash === -1 ? '' : decodeURIComponent(rawPath.slice(slash + 1));
  } catch {
    return {
      kind: 'bad',
      error: invalidArgument('The request path is not valid percent-encoding.', 'path', url),
    };
  }
  if (bucket === '') {
    return { kind: 'bad', error: notImplemented('ListBuckets is not served: only the configured bucket is') };
  }
  if (key === '') {
    if (query.get('list-type') === '2') return { kind: 'list', bucket, query };
    if (query.has('location'))
      return { kind: 'bad', error: notImplemented('GetBucketLocation is not served') };
    return {
      kind: 'bad',
      error: notImplemented(
        'only ListObjectsV2 (list-type=2) is served on the bucket; ListObjects v1 is not',
      ),
    };
  }
  return { kind: 'object', bucket, key };
}

export interface ListedObject {
  key: string;
  size: number;
  /** Quoted, as S3 sends it. */
  etag: string;
  lastModified: Date;
}

export interface ListParams {
  prefix: string;
  delimiter: string;
  maxKeys: number;
  startAfter: string;
  continuationToken: string | undefined;
  encodeKeys: boolean;
}

export const MAX_LIST_KEYS = 1000;

/** Reads ListObjectsV2 parameters; an error for values S3 itself refuses. */
export function parseListParams(query: URLSearchParams): ListParams | S3Error {
  const maxText = query.get('max-keys');
  let maxKeys = MAX_LIST_KEYS;
  if (maxText !== null) {
    if (!/^\d{1,10}$/.test(maxText)) {
      return invalidArgument('max-keys must be a non-negative integer.', 'max-keys', maxText);
    }
    maxKeys = Math.min(Number(maxText), MAX_LIST_KEYS);
  }
  const encoding = query.get('encoding-type');
  if (encoding !== null && encoding !== 'url') {
    return invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encoding);
  }
  const token = query.get('continuation-token');
  let continuationToken: string | undefined;
  if (token !== null) {
    continuationToken = decodeToken(token);
    if (continuationToken === undefined) {
      return invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
    }
  }
  return {
    prefix: query.get('prefix') ?? '',
    delimiter: query.get('delimiter') ?? '',
    maxKeys,
    startAfter: query.get('start-after') ?? '',
    continuationToken,
    encodeKeys: encoding === 'url',
  };
}

// Continuation tokens are opaque to clients: the last key returned, base64url with a marker so a
// foreign token is refused rather than misread.
const TOKEN_MARK = 'c1:';
export function encodeToken(lastKey: string): string {
  return Buffer.from(TOKEN_MARK + lastKey, 'utf8').toString('base64url');
}
function decodeToken(token: string): string | undefined {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  return text.startsWith(TOKEN_MARK) ? text.slice(TOKEN_MARK.length) : undefined;
}

// S3's encoding-type=url: keys percent-encoded like a query value, `/` kept.
function urlEncodeKey(key: string): string {
  return encodeURIComponent(key).replaceAll('%2F', '/');
}

/** Formats a date as S3 does in XML: ISO 8601 with milliseconds. */
const isoDate = (d: Date) => d.toISOString();

/**
 * The ListObjectsV2 answer for sorted `objects`: prefix filter, delimiter roll-up into
 * CommonPrefixes, start-after / continuation, at most maxKeys entries (objects and prefixes).
 * One pass over the sorted keys, bounded by maxKeys.
 */
export function listObjectsXml(bucket: string, sorted: readonly ListedObject[], p: ListParams): string {
  const after = p.continuationToken ?? p.startAfter;
  const enc = (s: string) => xmlEscape(p.encodeKeys ? urlEncodeKey(s) : s);
  let lo = 0;
  let hi = sorted.length;
  // Binary search for the first key > after and >= prefix.
  const floor = after > p.prefix ? after : p.prefix;
  const strict = after > p.prefix || (after === p.prefix && after !== '');
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = (sorted[mid] as ListedObject).key;
    if (k < floor || (strict && k === floor)) lo = mid + 1;
    else hi = mid;
  }
  const contents: string[] = [];
  const prefixes: string[] = [];
  let count = 0;
  let lastKey = '';
  let truncated = false;
  let lastPrefix = '';
  for (let i = lo; i < sorted.length; i++) {
    const o = sorted[i] as ListedObject;
    if (!o.key.startsWith(p.prefix)) break;
    let rolled: string | undefined;
    if (p.delimiter !== '') {
      const at = o.key.indexOf(p.delimiter, p.prefix.length);
      if (at !== -1) rolled = o.key.slice(0, at + p.delimiter.length);
    }
    if (rolled !== undefined && rolled === lastPrefix) {
      lastKey = o.key;
      continue;
    }
    if (count >= p.maxKeys) {
      truncated = true;
      break;
    }
    count++;
    lastKey = o.key;
    if (rolled !== undefined) {
      lastPrefix = rolled;
      prefixes.push(`<CommonPrefixes><Prefix>${enc(rolled)}</Prefix></CommonPrefixes>`);
    } else {
      contents.push(
        `<Contents><Key>${enc(o.key)}</Key><LastModified>${isoDate(o.lastModified)}</LastModified>` +
          `<ETag>${xmlEscape(o.etag)}</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
  }
  const parts = [
    `${XML_HEAD}<ListBucketResult xmlns="${S3_NS}"><Name>${xmlEscape(bucket)}</Name>`,
    `<Prefix>${enc(p.prefix)}</Prefix>`,
    p.startAfter !== '' ? `<StartAfter>${enc(p.startAfter)}</StartAfter>` : '',
    `<KeyCount>${count}</KeyCount><MaxKeys>${p.maxKeys}</MaxKeys>`,
    p.delimiter !== '' ? `<Delimiter>${enc(p.delimiter)}</Delimiter>` : '',
    p.encodeKeys ? '<EncodingType>url</EncodingType>' : '',
    `<IsTruncated>${truncated}</IsTruncated>`,
    p.continuationToken !== undefined
      ? `<ContinuationToken>${xmlEscape(encodeToken(p.continuationToken))}</ContinuationToken>`
      : '',
    truncated ? `<NextContinuationToken>${encodeToken(lastKey)}</NextContinuationToken>` : '',
    ...contents,
    ...prefixes,
    '</ListBucketResult>',
  ];
  return parts.join('');
}

/** HTTP date (RFC 7231) for Last-Modified. */
export function httpDate(d: Date): string {
  return d.toUTCString();
}

/** Whether an If-None-Match header matches the ETag (weak comparison, `*`, lists). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((part) => {
    const t = part.trim();
    return t === '*' || t.replace(/^W\//, '') === bare;
  });
}
