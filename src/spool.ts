// Output that must not reach stdout until the whole input has been accepted: `flipt-injector inject`
// writes each document here as it is done, and copies the file to stdout only when nothing was
// refused (a pipe into `kubectl apply -f -` never sees half a stream). Memory stays at one chunk.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHUNK_BYTES = 64 * 1024;

export class Spool {
  readonly #dir = mkdtempSync(join(tmpdir(), 'flipt-injector-'));
  readonly #file = join(this.#dir, 'output.yaml');
  readonly #fd = openSync(this.#file, 'w+', 0o600);
  #size = 0;

  write(text: string): void {
    const buffer = Buffer.from(text, 'utf8');
    writeSync(this.#fd, buffer);
    this.#size += buffer.length;
  }

  /**
   * Hands the spooled output to `out` in chunks of whole UTF-8 characters, waiting whenever `out`
   * asks to (so a slow reader of stdout does not make the output pile up in memory).
   */
  async copyTo(out: (text: string) => void | Promise<void>): Promise<void> {
    const buffer = Buffer.alloc(CHUNK_BYTES);
    const decoder = new TextDecoder('utf-8');
    for (let position = 0; position < this.#size;) {
      const n = readSync(this.#fd, buffer, 0, CHUNK_BYTES, position);
      position += n;
      await out(decoder.decode(buffer.subarray(0, n), { stream: position < this.#size }));
    }
  }

  close(): void {
    closeSync(this.#fd);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** The same, in memory: for when no temporary directory is writable (a read-only root filesystem). */
export class MemorySpool {
  readonly #chunks: string[] = [];

  write(text: string): void {
    this.#chunks.push(text);
  }

  async copyTo(out: (text: string) => void | Promise<void>): Promise<void> {
    for (const chunk of this.#chunks) await out(chunk);
  }

  close(): void {
    this.#chunks.length = 0;
  }
}

/** A file spool, or a memory one when the temporary directory cannot be written. */
export function openSpool(): Spool | MemorySpool {
  try {
    return new Spool();
  } catch {
    return new MemorySpool();
  }
}
