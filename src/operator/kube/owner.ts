/**
 * Ownership and finalizers. Everything the operator creates carries a controller owner reference,
 * so that Kubernetes' garbage collector removes it with its RayCluster and so that informer events
 * lead back to the owner's key. Finalizer edits are guarded by resourceVersion: a merge patch
 * replaces the whole list, which without the guard could drop a finalizer someone else just added.
 */
import { RaylineError } from '../../errors.ts';
import { isConflict } from './api-error.ts';
import type { KubeClient } from './client.ts';
import type { KubeObject, OwnerReference, ResourceType } from './resources.ts';

/** A controller reference to owner: the one owner that reconciles the object. */
export function controllerOwnerReference(owner: KubeObject): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) {
    throw new RaylineError(
      'RL_INTERNAL',
      `owner ${kind ?? '?'} '${name ?? '?'}' lacks apiVersion, kind, name or uid`,
    );
  }
  return { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/** The owner reference marked controller, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** True when obj lists owner (matched by uid: a re-created owner of the same name is another owner). */
export function isOwnedBy(obj: KubeObject, owner: KubeObject): boolean {
  const uid = owner.metadata?.uid;
  return uid !== undefined && (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === uid);
}

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(obj: KubeObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

type FinalizerClient = Pick<KubeClient, 'patch'>;

/**
 * Adds finalizer to obj as it was read; returns the updated object (or obj when already there).
 * Throws a conflict (409) when obj is stale: wrap in retryOnConflict with a fresh read.
 */
export async function addFinalizer<T extends KubeObject>(
  client: FinalizerClient,
  resource: ResourceType,
  obj: T,
  finalizer: string,
): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  return setFinalizers(client, resource, obj, [...(obj.metadata?.finalizers ?? []), finalizer]);
}

/** Removes finalizer; same contract as addFinalizer. */
export async function removeFinalizer<T extends KubeObject>(
  client: FinalizerClient,
  resource: ResourceType,
  obj: T,
  finalizer: string,
): Promise<T> {
  if (!hasFinalizer(obj, finalizer)) return obj;
  const rest = (obj.metadata?.finalizers ?? []).filter((f) => f !== finalizer);
  return setFinalizers(client, resource, obj, rest);
}

function setFinalizers<T extends KubeObject>(
  client: FinalizerClient,
  resource: ResourceType,
  obj: T,
  finalizers: string[],
): Promise<T> {
  const m = obj.metadata;
  if (!m?.name || !m.resourceVersion) {
    throw new RaylineError(
      'RL_INTERNAL',
      `${obj.kind ?? 'object'} '${m?.name ?? '?'}' has no name or resourceVersion`,
    );
  }
  // A resourceVersion in a patch body is a precondition: the server answers 409 if it moved on.
  const body = { metadata: { resourceVersion: m.resourceVersion, finalizers } };
  return client.patch<T>(resource, m.namespace, m.name, 'merge', body);
}

export interface RetryOptions {
  attempts?: number;
  /** First wait between attempts; doubles each time, with jitter. */
  baseDelayMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs fn again while it fails with a 409 Conflict, up to `attempts` times in all. fn must read the
 * object afresh each time, or it will conflict again.
 */
export async function retryOnConflict<T>(
  fn: () => Promise<T>,
  options: RetryOptions | number = {},
): Promise<T> {
  const opts = typeof options === 'number' ? { attempts: options } : options;
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseDelayMs ?? 10;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!isConflict(err) || i >= attempts || opts.signal?.aborted) throw err;
    }
    const delay = base * 2 ** (i - 1) * (0.5 + Math.random());
    await new Promise<void>((resolve) => setTimeout(resolve, delay));
  }
}
