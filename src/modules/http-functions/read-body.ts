import type { IncomingMessage } from 'node:http';
import { EngineError, ErrorCode } from '../../protocol/errors';

export function responseTooLarge(maxBytes: number, where: string): EngineError {
  return new EngineError(
    ErrorCode.httpResponseFailed,
    `HTTP response from ${where} failed: response larger than ${maxBytes} bytes`,
  );
}

/**
 * Buffers a response body of at most `maxBytes` bytes. A larger body (announced or streamed)
 * destroys the response and fails with http_response_failed; other stream errors are rethrown.
 */
export async function readBody(res: IncomingMessage, maxBytes: number, where: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw responseTooLarge(maxBytes, where);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw responseTooLarge(maxBytes, where);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
