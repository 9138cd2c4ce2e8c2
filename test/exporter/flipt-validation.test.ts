// Flipt's own validation cases (fixtures/flipt-validation, copied from Flipt v1.61.1's
// core/validation/testdata) against our document check: the same verdicts as Flipt's
// validate_test.go, so the schema is held to cases this project did not write.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { createDocumentValidator } from '../../exporter/schema.ts';

const validate = createDocumentValidator();
const dir = join(import.meta.dirname, 'fixtures', 'flipt-validation');
const documentsOf = (text: string): unknown[] => parseAllDocuments(text).map((d) => d.toJS() as unknown);
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

t.test("Flipt's valid documents pass", async (t) => {
  const valid = fixtures.filter((f) => f.startsWith('valid'));
  t.equal(valid.length, 7, 'all seven of Flipt v1.61.1');
  for (const file of valid) t.same(validate(documentsOf(readFileSync(join(dir, file), 'utf8'))), [], file);
});

t.test("Flipt's invalid documents fail where Flipt says", async (t) => {
  // Flipt: "flags.0.rules.1.distributions.0.rollout: invalid value 110 (out of bound <=100)".
  for (const [file, doc] of [
    ['invalid.yaml', 1],
    ['invalid_yaml_stream.yaml', 2],
  ] as const) {
    t.same(
      validate(documentsOf(readFileSync(join(dir, file), 'utf8'))),
      [`document ${doc}: /flags/0/rules/1/distributions/0/rollout must be <= 100`],
      file,
    );
  }
});

t.test('fields exist only from the document version that introduced them (flipt.cue)', async (t) => {
  const flag = { key: 'f', name: 'F' };
  const cases: [string, Record<string, unknown>, RegExp | undefined][] = [
    [
      '1.0 with a flag type',
      { version: '1.0', flags: [{ ...flag, type: 'VARIANT_FLAG_TYPE' }] },
      /must NOT be valid/,
    ],
    [
      '1.0 with rollouts',
      { version: '1.0', flags: [{ ...flag, rollouts: [{ threshold: { percentage: 5, value: true } }] }] },
      /must NOT be valid/,
    ],
    ['1.1 with a flag type', { version: '1.1', flags: [{ ...flag, type: 'BOOLEAN_FLAG_TYPE' }] }, undefined],
    ['1.2 with metadata', { version: '1.2', flags: [{ ...flag, metadata: { a: 1 } }] }, /must NOT be valid/],
    ['1.3 with metadata', { version: '1.3', flags: [{ ...flag, metadata: { a: 1 } }] }, undefined],
    [
      '1.2 with a default variant',
      { version: '1.2', flags: [{ ...flag, variants: [{ key: 'v', default: true }] }] },
      /must NOT be valid/,
    ],
    [
      'no version (1.4) with a default variant',
      { flags: [{ ...flag, variants: [{ key: 'v', default: true }] }] },
      undefined,
    ],
    ['rollouts without a type (Flipt infers boolean)', { flags: [{ ...flag, rollouts: [] }] }, undefined],
    [
      'rollouts on a variant flag',
      { flags: [{ ...flag, type: 'VARIANT_FLAG_TYPE', rollouts: [] }] },
      /must be equal to constant/,
    ],
    ['an unknown version', { version: '1.5', flags: [] }, /must be one of 1.0, 1.1, 1.2, 1.3, 1.4/],
  ];
  for (const [name, doc, problem] of cases) {
    const problems = validate([{ segments: [], ...doc }]);
    if (problem) t.match(problems.join('\n'), problem, name);
    else t.same(problems, [], name);
  }
});
