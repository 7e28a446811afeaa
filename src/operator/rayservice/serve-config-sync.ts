/**
 * Keeps each cluster's head running the RayService's serve config: submits it when this head has not
 * taken this config yet, and again when the head reports no applications (it restarted).
 */
import type { Logger } from 'pino';
import type { ApplicationDetails, ServeRestClient } from '../../runtime/rest/client.ts';
import type { RayCluster } from '../../schema/raycluster.ts';
import type { RayService } from '../../schema/rayservice.ts';
import type { EventRecorder } from '../kube/events.ts';

/** What a head answered: its applications, or why it could not be asked. */
export type HeadState =
  | { ok: true; apps: Record<string, ApplicationDetails> }
  | { ok: false; message: string };

export interface ServeConfigSyncDeps {
  headClient: (cluster: RayCluster) => Promise<ServeRestClient>;
  events: EventRecorder;
  log: Logger;
}

export class ServeConfigSync {
  readonly #deps: ServeConfigSyncDeps;
  /** Cluster uid → digest of the config this operator submitted there. */
  readonly #submitted = new Map<string, string>();
  /** Cluster uid → when its head last came back empty and got the config again. */
  readonly #headRestarts = new Map<string, string>();

  constructor(deps: ServeConfigSyncDeps) {
    this.#deps = deps;
  }

  restartedAt(clusterUid: string): string | undefined {
    return this.#headRestarts.get(clusterUid);
  }

  forget(clusterUid: string): void {
    this.#submitted.delete(clusterUid);
    this.#headRestarts.delete(clusterUid);
  }

  /** Submits the config where needed; undefined while the head is not ready. */
  async sync(
    rs: RayService,
    cluster: RayCluster,
    config: unknown,
    digest: string,
  ): Promise<HeadState | undefined> {
    const headReady = cluster.status?.conditions?.some(
      (c) => c.type === 'HeadPodReady' && c.status === 'True',
    );
    if (!headReady) return undefined;
    const name = cluster.metadata.name ?? '';
    const uid = cluster.metadata.uid ?? name;
    try {
      const rest = await this.#deps.headClient(cluster);
      let details = await rest.getApplications();
      const count = Object.keys(details.applications).length;
      const known = this.#submitted.get(uid);
      if (known !== digest || count === 0) {
        if (known === digest && count === 0) {
          this.#headRestarts.set(uid, new Date().toISOString());
          this.#deps.events.event(
            rs,
            'Warning',
            'HeadRestarted',
            `the head of ${name} reports no applications; re-submitting serveConfigV2`,
          );
        }
        await rest.putApplications(config as Parameters<ServeRestClient['putApplications']>[0]);
        this.#submitted.set(uid, digest);
        this.#deps.events.event(rs, 'Normal', 'SubmittedServeConfig', `submitted serveConfigV2 to ${name}`);
        details = await rest.getApplications();
      }
      return { ok: true, apps: details.applications };
    } catch (err) {
      const message = `RayCluster ${name}: ${(err as Error).message}`;
      this.#deps.log.warn({ rayservice: rs.metadata.name, err }, 'serve config sync failed');
      return { ok: false, message };
    }
  }
}
