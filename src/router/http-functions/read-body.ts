import type { IncomingMessage } from 'node:http';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { ResponseBudget } from './response-budget';

export function responseTooLarge(maxBytes: number, where: string): EngineError {
  return new EngineError(
    ErrorCode.httpResponseFailed,
    `HTTP response from ${where} failed: response larger than ${maxBytes} bytes`,
  );
}

function budgetExhausted(budget: ResponseBudget, where: string): EngineError {
  return new EngineError(
    ErrorCode.httpResponseFailed,
    `HTTP response from ${where} failed: the engine is already holding ${budget.usedBytes} bytes of HTTP function responses (limit ${budget.maxBytes} bytes); try again when fewer calls are in flight`,
  );
}

/**
 * Buffers a response body of at most `maxBytes` bytes, each chunk reserved in the engine-wide
 * `budget` until the body is complete (or has failed). A larger body (announced or streamed) or
 * an exhausted budget destroys the response and fails with http_response_failed; other stream
 * errors are rethrown.
 */
export async function readBody(
  res: IncomingMessage,
  maxBytes: number,
  budget: ResponseBudget,
  where: string,
): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw responseTooLarge(maxBytes, where);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (total + chunk.length > maxBytes) {
        res.destroy();
        throw responseTooLarge(maxBytes, where);
      }
      if (!budget.take(chunk.length)) {
        res.destroy();
        throw budgetExhausted(budget, where);
      }
      total += chunk.length;
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  } finally {
    budget.release(total);
  }
}
