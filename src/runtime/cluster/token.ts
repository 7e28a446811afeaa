/** The cluster token check, shared by the cluster channel and the replica transport. */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Constant-time comparison (hashes first, so lengths leak nothing either). */
export function tokensEqual(presented: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}
