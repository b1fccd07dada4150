/** A name usable as a file name on every system. */
export const fileSafe = (name: string, fallback = 'adapter') =>
  name.replace(/[\\/:*?"<>|\p{Cc}]+/gu, '_').trim() || fallback;
