/**
 * The cluster's secrets: the admin token (REST API, nodes joining) and the replica credential
 * derived from it, which replicas and their callers present to each other over TCP. User code runs
 * in replicas and builds, so they get the credential, never the token: it opens no REST call.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Constant-time comparison (hashes first, so lengths leak nothing either). */
export function tokensEqual(presented: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The replica credential of the cluster whose admin token this is (the same on every node). */
export function replicaCredential(adminToken: string): string {
  return createHmac('sha256', adminToken).update('rayline replica credential v1').digest('base64url');
}
