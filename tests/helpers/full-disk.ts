/** A full disk, as IndexedDB reports it (fake-indexeddb in Node): puts into one object store fail. */

/** Makes every put into `storeName` fail the way a full disk does; returns the undo. */
export function fillDisk(storeName: string): () => void {
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
    if (this.name === storeName) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return put.apply(this, args);
  };
  return () => void (IDBObjectStore.prototype.put = put);
}
