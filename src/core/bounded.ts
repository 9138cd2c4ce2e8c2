// Bounds on what one request can make the injector do and say: how many problems are examined and
// listed, how much of an attacker-sized key or value is quoted, and how long a message gets. A pod
// that is wrong in 100,000 ways costs one linear pass and gets an answer the size of one that is
// wrong in ten (issue 9: 16 such pods at once used to hold a normal pod's answer for 10.7 s).

/** Problems listed in one refusal; the rest are counted ("and N more"). */
export const MAX_PROBLEMS = 10;
/** Characters of a key, value or name quoted in a message. */
export const MAX_QUOTED_CHARS = 100;
/** Characters of a whole refusal message (the denial the user sees, and the log line's errors). */
export const MAX_MESSAGE_CHARS = 4096;

/** `text`, cut to `max` characters with a note of how long it was. */
export function clip(text: string, max = MAX_QUOTED_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** A value quoted for a message: JSON string syntax, at most MAX_QUOTED_CHARS of it. */
export function quote(value: string): string {
  return value.length <= MAX_QUOTED_CHARS
    ? JSON.stringify(value)
    : `${JSON.stringify(value.slice(0, MAX_QUOTED_CHARS))}… (${value.length} characters)`;
}

/** Cuts a finished message to MAX_MESSAGE_CHARS, saying so. */
export function capMessage(message: string, max = MAX_MESSAGE_CHARS): string {
  const note = '… (message truncated)';
  return message.length <= max ? message : `${message.slice(0, max - note.length)}${note}`;
}

/**
 * Problems found in one pass: the first `max` are kept (their text built only then), the rest only
 * counted, so that input with a million problems costs a counter, not a million messages.
 */
export class ProblemList {
  readonly #kept: string[] = [];
  readonly #max: number;
  #count = 0;
  constructor(max = MAX_PROBLEMS) {
    this.#max = max;
  }

  add(problem: string | (() => string)): void {
    this.#count++;
    if (this.#kept.length < this.#max) this.#kept.push(typeof problem === 'string' ? problem : problem());
  }

  /** Counts `n` problems known to exist but not examined (their text is never built). */
  addUnexamined(n: number): void {
    this.#count += n;
  }

  get count(): number {
    return this.#count;
  }

  /** The kept problems, and "and N more problems" when some were only counted. */
  list(): string[] {
    const more = this.#count - this.#kept.length;
    return more > 0
      ? [...this.#kept, `and ${more} more ${more === 1 ? 'problem' : 'problems'}`]
      : [...this.#kept];
  }
}

/**
 * The `max` smallest strings of a stream, in order, in one pass: a refusal lists the same unknown
 * keys whatever order they arrive in, without sorting all of them.
 */
export class SmallestStrings {
  readonly #items: string[] = [];
  readonly #max: number;
  #count = 0;
  constructor(max = MAX_PROBLEMS) {
    this.#max = max;
  }

  add(item: string): void {
    this.#count++;
    const items = this.#items;
    if (items.length === this.#max && item >= (items[items.length - 1] as string)) return;
    let at = items.length;
    while (at > 0 && item < (items[at - 1] as string)) at--;
    items.splice(at, 0, item);
    if (items.length > this.#max) items.pop();
  }

  get count(): number {
    return this.#count;
  }

  get items(): readonly string[] {
    return this.#items;
  }
}
