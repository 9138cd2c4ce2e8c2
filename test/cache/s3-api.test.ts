// The S3 wire format the cache writes and the requests it reads, without a server. The same answers
// are read back by the AWS SDK over real HTTP in cache-minio.test.ts and by Flipt itself in
// test/e2e/cache.test.ts.
import t from 'tap';
import {
  encodeToken,
  errorXml,
  etagMatches,
  listObjectsXml,
  noSuchKey,
  parseListParams,
  parseS3Target,
  xmlEscape,
  type ListParams,
  type ListedObject,
} from '../../cache/s3-api.ts';

const at = new Date('2026-01-02T03:04:05.678Z');
const obj = (key: string): ListedObject => ({
  key,
  size: key.length,
  etag: `"${key.length}"`,
  lastModified: at,
});
const sorted = ['a/1', 'a/2', 'b/x/1', 'b/x/2', 'b/y', 'c'].map(obj);
const params = (over: Partial<ListParams> = {}): ListParams => ({
  prefix: '',
  delimiter: '',
  maxKeys: 1000,
  startAfter: '',
  continuationToken: undefined,
  encodeKeys: false,
  ...over,
});
const keys = (xml: string) => [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);

t.test('targets: path-style bucket and key, percent-decoded once', async (t) => {
  t.same(parseS3Target('/flags/dir/features.yml'), {
    kind: 'object',
    bucket: 'flags',
    key: 'dir/features.yml',
  });
  t.same(parseS3Target('/flags/a%20b%2Bc.yml?x-id=GetObject'), {
    kind: 'object',
    bucket: 'flags',
    key: 'a b+c.yml',
  });
  const list = parseS3Target('/flags?list-type=2&prefix=p%2F&max-keys=1000');
  t.equal(list.kind, 'list');
  t.equal(list.kind === 'list' && list.query.get('prefix'), 'p/');
  t.equal(parseS3Target('/flags/?list-type=2').kind, 'list');
  for (const [url, code] of [
    ['/', 'NotImplemented'],
    ['/flags', 'NotImplemented'],
    ['/flags?location', 'NotImplemented'],
    ['/flags/%E0%A4%A', 'InvalidArgument'],
  ] as const) {
    const r = parseS3Target(url);
    t.equal(r.kind === 'bad' && r.error.code, code, url);
  }
});

t.test('list parameters: defaults, bounds and refusals', async (t) => {
  t.same(parseListParams(new URLSearchParams('list-type=2')), params());
  const p = parseListParams(new URLSearchParams('max-keys=5000&encoding-type=url&delimiter=/&start-after=a'));
  t.match(p, { maxKeys: 1000, encodeKeys: true, delimiter: '/', startAfter: 'a' });
  t.match(parseListParams(new URLSearchParams('max-keys=-1')), { code: 'InvalidArgument' });
  t.match(parseListParams(new URLSearchParams('encoding-type=base64')), { code: 'InvalidArgument' });
  t.match(parseListParams(new URLSearchParams('continuation-token=bm9wZQ')), { code: 'InvalidArgument' });
  t.match(parseListParams(new URLSearchParams(`continuation-token=${encodeToken('k')}`)), {
    continuationToken: 'k',
  });
});

t.test('ListObjectsV2: prefix, paging and delimiter', async (t) => {
  const all = listObjectsXml('flags', sorted, params());
  t.same(keys(all), ['a/1', 'a/2', 'b/x/1', 'b/x/2', 'b/y', 'c']);
  t.match(all, '<KeyCount>6</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>');
  t.match(
    all,
    '<LastModified>2026-01-02T03:04:05.678Z</LastModified><ETag>&quot;3&quot;</ETag><Size>3</Size>',
  );
  t.same(keys(listObjectsXml('flags', sorted, params({ prefix: 'b/' }))), ['b/x/1', 'b/x/2', 'b/y']);
  t.same(keys(listObjectsXml('flags', sorted, params({ prefix: 'zz' }))), []);

  // Paging two at a time visits every key exactly once.
  const seen: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 10; page++) {
    const xml = listObjectsXml('flags', sorted, params({ maxKeys: 2, continuationToken: token }));
    seen.push(...(keys(xml) as string[]));
    const next = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1];
    if (!next) {
      t.match(xml, '<IsTruncated>false</IsTruncated>');
      break;
    }
    const parsed = parseListParams(new URLSearchParams({ 'continuation-token': next }));
    token = 'continuationToken' in parsed ? parsed.continuationToken : undefined;
  }
  t.same(
    seen,
    sorted.map((o) => o.key),
  );

  const rolled = listObjectsXml('flags', sorted, params({ delimiter: '/' }));
  t.same(keys(rolled), ['c']);
  t.same(
    [...rolled.matchAll(/<Prefix>([^<]*)<\/Prefix>/g)].map((m) => m[1]),
    ['', 'a/', 'b/'],
  );
  t.match(rolled, '<KeyCount>3</KeyCount>');
  t.same(keys(listObjectsXml('flags', sorted, params({ startAfter: 'b/x/2' }))), ['b/y', 'c']);
});

t.test('XML is escaped and url encoding applies to keys', async (t) => {
  t.equal(xmlEscape(`<a&"b'>`), '&lt;a&amp;&quot;b&apos;&gt;');
  const odd = [obj('p/a b&<c>.yml')];
  t.same(keys(listObjectsXml('flags', odd, params())), ['p/a b&amp;&lt;c&gt;.yml']);
  const encoded = listObjectsXml('flags', odd, params({ encodeKeys: true, prefix: 'p/' }));
  t.same(keys(encoded), ['p/a%20b%26%3Cc%3E.yml']);
  t.match(encoded, '<EncodingType>url</EncodingType>');
  const err = errorXml(noSuchKey('flags', 'p/.flipt.yml'), '/flags/p/.flipt.yml', '1');
  t.match(
    err,
    '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>p/.flipt.yml</Key>',
  );
});

t.test('If-None-Match: exact, weak, list and star', async (t) => {
  t.ok(etagMatches('"abc"', '"abc"'));
  t.ok(etagMatches('W/"abc"', '"abc"'));
  t.ok(etagMatches('"x", "abc"', '"abc"'));
  t.ok(etagMatches('*', '"abc"'));
  t.notOk(etagMatches('"abd"', '"abc"'));
  t.notOk(etagMatches(undefined, '"abc"'));
});
