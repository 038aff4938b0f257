import type { RawData } from 'ws';

/** A `ws` message as one Buffer (ws may hand over a Buffer, an ArrayBuffer or fragments). */
export function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
