import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import type { Json } from '../../protocol/messages';

const EMPTY = Buffer.alloc(0);

/** Most requests (GET, HEAD, ...) carry no body: no stream machinery, and nothing to wait for. */
export function hasNoBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** The whole request body, or `too_large` once more than `limitBytes` bytes were announced or sent. */
export function readRequestBody(req: IncomingMessage, limitBytes: number): Promise<Buffer | 'too_large'> {
  if (hasNoBody(req)) return Promise.resolve(EMPTY);
  const length = req.headers['content-length'];
  if (Number(length) > limitBytes) return Promise.resolve('too_large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limitBytes) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.pause();
      resolve('too_large');
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total)));
    req.once('error', reject);
  });
}

export class MalformedBodyError extends Error {}

/**
 * The request's `body` field: JSON parsed (invalid or empty JSON gives null, as the original),
 * url-encoded forms as an object of fields and multipart forms as `{fields, files}` (both ours;
 * the original gives null), anything else null. The raw bytes also travel on the request-body
 * channel. A repeated form field keeps its last value. Only a multipart form is parsed
 * asynchronously (a promise, rejected with MalformedBodyError); the rest, most requests, are not
 * made to wait for a microtask.
 */
export function parseBody(contentType: string | undefined, raw: Buffer): Json | Promise<Json> {
  if (contentType === undefined) return null;
  const type = contentType.toLowerCase();
  if (type.includes('application/json')) return parseJson(raw);
  if (type.includes('application/x-www-form-urlencoded'))
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  if (type.includes('multipart/form-data')) return parseMultipart(contentType, raw);
  return null;
}

function parseJson(raw: Buffer): Json {
  if (raw.length === 0) return null;
  try {
    return JSON.parse(raw.toString('utf8')) as Json;
  } catch {
    return null;
  }
}

type UploadedFile = {
  field: string;
  filename: string;
  content_type: string;
  size: number;
  data_base64: string;
};

function parseMultipart(contentType: string, raw: Buffer): Promise<Json> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': contentType } });
    } catch (err) {
      reject(new MalformedBodyError(`Malformed multipart/form-data request: ${(err as Error).message}`));
      return;
    }
    // No prototype: a field named `__proto__` is a field like any other, not a prototype write.
    const fields = Object.create(null) as Record<string, string>;
    const files: UploadedFile[] = [];
    const malformed = (err: Error) =>
      reject(new MalformedBodyError(`Malformed multipart/form-data body: ${err.message}`));
    /** File parts started and not yet ended. */
    let openFiles = 0;
    parser.on('field', (name, value) => (fields[name] = value));
    parser.on('file', (field, stream, info) => {
      openFiles++;
      const parts: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => parts.push(chunk));
      // A body cut inside a file part fails the file stream too; unheard, that error would crash the process.
      stream.on('error', malformed);
      stream.on('end', () => {
        openFiles--;
        const data = Buffer.concat(parts);
        files.push({
          field,
          filename: info.filename ?? '',
          content_type: info.mimeType,
          size: data.length,
          data_base64: data.toString('base64'),
        });
      });
    });
    parser.on('error', malformed);
    parser.on('close', () => resolve({ fields, files }));
    parser.write(raw, () => {
      parser.end();
      // busboy 1.6 leaves a file part open, and never finishes, when the closing boundary comes
      // right after the part's headers. The whole body is parsed by now and the streams' events
      // have run (next ticks), so a file part still open can only be that: refuse the form.
      setImmediate(() => {
        if (openFiles > 0) malformed(new Error('a file part has no end'));
      });
    });
  });
}
