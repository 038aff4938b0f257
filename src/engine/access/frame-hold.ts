import type { RawData } from 'ws';

/** Frames a new connection may send while its auth function runs, at most. */
export const MAX_HELD_FRAMES = 10_000;

/**
 * The frames a connection sends before it is authenticated (the SDK sends its registrations
 * right after the socket opens), kept in arrival order and handed to the session once the auth
 * function has allowed it. Bounded by `MAX_HELD_FRAMES` frames and `maxBytes` bytes: a
 * connection that sends more before it is let in is closed.
 */
export class FrameHold {
  private readonly frames: Array<[RawData, boolean]> = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** False when the frame does not fit (the connection must be closed). */
  push(data: RawData, isBinary: boolean): boolean {
    this.bytes += byteLength(data);
    if (this.frames.length >= MAX_HELD_FRAMES || this.bytes > this.maxBytes) return false;
    this.frames.push([data, isBinary]);
    return true;
  }

  take(): Array<[RawData, boolean]> {
    return this.frames.splice(0);
  }
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data.byteLength;
}
