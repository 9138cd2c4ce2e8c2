// A small block-style YAML writer for JSON-like values. The export of 10,000 flags is several MB;
// a general YAML library spends seconds on it, this writer milliseconds. It stays safe by being
// conservative: a string is written plain only when it cannot be read back as anything else,
// otherwise double-quoted with JSON escapes (a subset of YAML's), so every reader, Go's yaml.v3 in
// Flipt included, gets back exactly the value that was written.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

// Plain only when it starts with a letter or underscore and holds nothing YAML could read as
// syntax (no ':', '#', quotes, brackets, leading/trailing space): numbers, dates, `.inf` and the
// like all start with a digit, sign or dot and so are quoted.
const PLAIN = /^[A-Za-z_](?:[A-Za-z0-9_ ./-]*[A-Za-z0-9_./-])?$/;
// YAML 1.1 booleans and nulls that a YAML 1.1 reader would not read as strings.
const RESERVED = /^(?:y|n|yes|no|on|off|true|false|null)$/i;
// Characters JSON.stringify leaves raw but YAML readers treat as line breaks or refuse
// (DEL, C1 controls, NEL, LS, PS, BOM), and lone surrogates.
const UNSAFE_IN_QUOTES =
  /[\u007f-\u009f\u2028\u2029\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A string as a YAML scalar that reads back as exactly that string. */
export function yamlString(s: string): string {
  if (PLAIN.test(s) && !RESERVED.test(s)) return s;
  return JSON.stringify(s).replace(UNSAFE_IN_QUOTES, escapeChar);
}

function isCollection(v: JsonValue): v is JsonValue[] | { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null;
}

function scalar(v: JsonValue): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return yamlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write the number ${v} as YAML`);
    return String(v);
  }
  return Array.isArray(v) ? '[]' : '{}';
}

function isInline(v: JsonValue): boolean {
  if (!isCollection(v)) return true;
  return Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0;
}

/** Appends the lines of a non-empty collection, each starting with `indent`. */
function writeBlock(out: string[], value: JsonValue[] | { [key: string]: JsonValue }, indent: string): void {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isInline(item)) {
        out.push(`${indent}- ${scalar(item)}`);
        continue;
      }
      // Write the item one level deeper, then pull its first line up behind the dash.
      const start = out.length;
      writeBlock(out, item as JsonValue[] | { [key: string]: JsonValue }, inner);
      out[start] = `${indent}- ${(out[start] as string).slice(inner.length)}`;
    }
    return;
  }
  for (const key of Object.keys(value)) {
    const v = value[key] as JsonValue;
    if (isInline(v)) {
      out.push(`${indent}${yamlString(key)}: ${scalar(v)}`);
    } else {
      out.push(`${indent}${yamlString(key)}:`);
      writeBlock(out, v as JsonValue[] | { [key: string]: JsonValue }, inner);
    }
  }
}

/** One YAML document (without the `---` separator), ending in a newline. */
export function toYamlDocument(value: { [key: string]: JsonValue }): string {
  const out: string[] = [];
  if (Object.keys(value).length === 0) return '{}\n';
  writeBlock(out, value, '');
  out.push('');
  return out.join('\n');
}

/** A YAML stream: the documents separated by `---`. */
export function toYamlStream(documents: readonly { [key: string]: JsonValue }[]): string {
  return documents.map((d) => `---\n${toYamlDocument(d)}`).join('');
}
