/** A name usable as a file name on every system. */
export const fileSafe = (name: string, fallback = 'adapter') => name.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, '_').trim() || fallback;
