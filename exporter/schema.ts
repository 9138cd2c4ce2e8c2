// Checks each rendered document against the rules Flipt v1.61.1 itself applies when it reads the
// bucket (see schema/flipt-v1.4.schema.json for where they come from). A sidecar refuses the whole
// file if one document breaks them, so an export that breaks them is never uploaded: the stand-in
// for `flipt validate`, which cannot run here.
import { Ajv, type ErrorObject } from 'ajv';
import schema from './schema/flipt-v1.4.schema.json' with { type: 'json' };

export type DocumentValidator = (documents: readonly unknown[]) => string[];

function describeError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(document)' : e.instancePath;
  const params = e.params as { allowedValues?: unknown[]; additionalProperty?: string };
  if (e.keyword === 'enum' && params.allowedValues) {
    return `${where} must be one of ${params.allowedValues.map(String).join(', ')}`;
  }
  if (e.keyword === 'additionalProperties' && params.additionalProperty !== undefined) {
    return `${where} has a field Flipt does not allow: ${params.additionalProperty}`;
  }
  return `${where} ${e.message ?? e.keyword}`;
}

/** Compiles the schema once; the returned function lists every problem, prefixed by namespace. */
export function createDocumentValidator(): DocumentValidator {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  return (documents) => {
    const problems: string[] = [];
    documents.forEach((doc, i) => {
      if (validate(doc)) return;
      const ns = (doc as { namespace?: { key?: unknown } }).namespace?.key;
      const label = typeof ns === 'string' ? `namespace ${ns}` : `document ${i + 1}`;
      // Combinator and if/then failures only repeat what their branches say.
      const leaves = (validate.errors ?? []).filter((e) => !['oneOf', 'anyOf', 'if'].includes(e.keyword));
      for (const message of new Set(leaves.map(describeError))) problems.push(`${label}: ${message}`);
    });
    return problems;
  };
}
