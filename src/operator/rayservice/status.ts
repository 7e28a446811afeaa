/** RayService status helpers: Ray's application statuses mirrored into KubeRay's shape. */
import type { ApplicationDetails } from '../../runtime/rest/client.ts';
import type { RayServiceStatus } from '../../schema/rayservice.ts';

type AppStatuses = NonNullable<NonNullable<RayServiceStatus['activeServiceStatus']>['applicationStatuses']>;

export function appStatuses(apps: Record<string, ApplicationDetails>): AppStatuses {
  return Object.fromEntries(
    Object.entries(apps).map(([name, app]) => [
      name,
      {
        status: app.status,
        message: app.message || undefined,
        serveDeploymentStatuses: Object.fromEntries(
          Object.entries(app.deployments).map(([d, details]) => [
            d,
            { status: details.status, message: details.message || undefined },
          ]),
        ),
      },
    ]),
  );
}

/** Ready = at least one application, and every application RUNNING. */
export function isReadyApps(apps: Record<string, ApplicationDetails>): boolean {
  const all = Object.values(apps);
  return all.length > 0 && all.every((a) => a.status === 'RUNNING');
}

/** One line saying which applications are not running yet. */
export function conditionsOf(apps: Record<string, ApplicationDetails>): string {
  const waiting = Object.entries(apps).filter(([, a]) => a.status !== 'RUNNING');
  if (Object.keys(apps).length === 0) return 'the head reports no applications yet';
  return waiting.map(([name, a]) => `${name} is ${a.status}${a.message ? `: ${a.message}` : ''}`).join('; ');
}
