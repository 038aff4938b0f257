import type { RawData } from 'ws';
import { rawDataToBuffer } from '../raw-data';

/** One message travelling through a channel; `binary` keeps the frame kind it arrived with. */
export interface ChannelItem {
  data: Buffer;
  binary: boolean;
}

export function toChannelItem(data: RawData, isBinary: boolean): ChannelItem {
  return { data: rawDataToBuffer(data), binary: isBinary };
}
