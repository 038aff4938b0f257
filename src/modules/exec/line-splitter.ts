/**
 * A line longer than this many characters is passed on in pieces of this size, so a process
 * that prints without newlines cannot make the engine buffer without bound.
 */
export const MAX_LINE_CHARS = 16 * 1024;

/** Cuts a text stream (already decoded, `setEncoding('utf8')`) into lines, without their `\n`/`\r\n`. */
export class LineSplitter {
  private partial = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    let text = this.partial + chunk;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n')) {
      this.emit(text.slice(0, newline));
      text = text.slice(newline + 1);
    }
    while (text.length >= MAX_LINE_CHARS) {
      this.onLine(text.slice(0, MAX_LINE_CHARS));
      text = text.slice(MAX_LINE_CHARS);
    }
    this.partial = text;
  }

  /** The stream ended: a last line without a newline still counts. */
  end(): void {
    if (this.partial !== '') this.emit(this.partial);
    this.partial = '';
  }

  private emit(line: string): void {
    this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
