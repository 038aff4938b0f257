import type { RawData } from 'ws';

/** One message travelling through a channel; `binary` keeps the frame kind it arrived with. */
export interface ChannelItem {
  data: Buffer;
  binary: boolean;
}

export function toChannelItem(data: RawData, isBinary: boolean): ChannelItem {
  let buf: Buffer;
  if (Buffer.isBuffer(data)) buf = data;
  else if (Array.isArray(data)) buf = Buffer.concat(data);
  else buf = Buffer.from(data);
  return { data: buf, binary: isBinary };
}
