// Reads an HTTP answer's body with a byte limit: a master (or something posing as one) that sends a
// body larger than any real answer must fail the read, not fill the exporter's memory. The limit is
// checked against Content-Length before anything is read, and against the bytes received as they
// arrive (a chunked body has no length); the stream is destroyed as soon as it is exceeded.
import type { Readable } from 'node:stream';

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

function describeBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${n} bytes`;
}

/** The whole body, or a BodyTooLargeError once it passes `maxBytes`. */
export function readBounded(
  stream: Readable,
  maxBytes: number,
  contentLength: string | undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = contentLength === undefined ? NaN : Number(contentLength);
    if (Number.isFinite(declared) && declared > maxBytes) {
      stream.destroy();
      reject(
        new BodyTooLargeError(
          `the answer declares ${describeBytes(declared)}, more than the ${describeBytes(maxBytes)} the exporter reads (--max-response-size)`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      received += chunk.length;
      if (received > maxBytes) {
        done = true;
        stream.destroy();
        reject(
          new BodyTooLargeError(
            `the answer is larger than the ${describeBytes(maxBytes)} the exporter reads (--max-response-size)`,
          ),
        );
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, received));
    });
    stream.on('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
    stream.on('close', () => {
      if (done) return;
      done = true;
      reject(new Error('the connection closed before the answer was complete'));
    });
  });
}
