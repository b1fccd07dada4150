/**
 * A checkpoint file on disk read through its file descriptor, one tensor's bytes at a time (fs.readSync), so
 * building a model never holds the whole file. The descriptor stays open until `close`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { closedError, readRange, type WeightsSource } from '../engine/weights-source';

export class FileSource implements WeightsSource {
  private fd: number | null;
  readonly byteLength: number;

  constructor(
    readonly file: string,
    readonly name = path.basename(file),
  ) {
    this.fd = fs.openSync(file, 'r');
    try {
      this.byteLength = fs.fstatSync(this.fd).size;
    } catch (error) {
      this.close();
      throw error;
    }
  }

  read(offset: number, length: number): Uint8Array {
    const fd = this.fd;
    if (fd === null) throw closedError(this.name);
    return readRange(this, offset, length, (into, at) => fs.readSync(fd, into, 0, into.byteLength, at));
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    fs.closeSync(fd);
  }
}
