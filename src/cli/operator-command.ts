/** `rayline operator`: runs the Kubernetes operator in the foreground until SIGTERM or SIGINT. */
import { KubeConfig } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { RaylineError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { Operator } from '../operator/operator.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new RaylineError('RL_BAD_REQUEST', `invalid port '${value}'`);
  return n;
}

export function registerOperatorCommand(program: Command): void {
  program
    .command('operator')
    .description('Run the Kubernetes operator for RayCluster and RayService resources')
    .option(
      '--namespaces <list>',
      'comma-separated namespaces to watch; all when empty (env RAYLINE_WATCH_NAMESPACES)',
    )
    .option(
      '--leader-elect',
      'elect a leader on a Lease so that only one replica reconciles (env RAYLINE_LEADER_ELECT)',
    )
    .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: env POD_NAMESPACE)')
    .option('--leader-election-id <name>', 'name of the Lease', 'rayline-operator')
    .option(
      '--network-policy',
      "give each cluster a NetworkPolicy admitting its REST API only from the operator's namespace (POD_NAMESPACE)",
    )
    .option('--metrics-port <port>', 'Prometheus metrics port', port, 8080)
    .option('--health-port <port>', '/healthz and /readyz port', port, 8081)
    .option('--log-level <level>', 'debug, info, warn or error (env RAYLINE_LOG_LEVEL)')
    .option(
      '--kubeconfig <path>',
      'kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config)',
    )
    .action(async (options) => {
      const log = createLogger({ level: options.logLevel, encoding: 'JSON' }).child({
        component: 'operator',
      });
      const kubeConfig = new KubeConfig();
      if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
      else kubeConfig.loadFromDefault();
      const namespaces = String(options.namespaces ?? process.env.RAYLINE_WATCH_NAMESPACES ?? '')
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean);
      const leaderElect = options.leaderElect === true || process.env.RAYLINE_LEADER_ELECT === 'true';
      const leaseNamespace = options.leaderElectionNamespace ?? process.env.POD_NAMESPACE;
      const networkPolicy = options.networkPolicy === true || process.env.RAYLINE_NETWORK_POLICY === 'true';
      if (networkPolicy && !process.env.POD_NAMESPACE) {
        throw new RaylineError(
          'RL_BAD_REQUEST',
          '--network-policy needs the POD_NAMESPACE environment variable',
        );
      }
      if (leaderElect && !leaseNamespace) {
        throw new RaylineError(
          'RL_BAD_REQUEST',
          '--leader-elect needs --leader-election-namespace or the POD_NAMESPACE environment variable',
        );
      }
      const operator = new Operator({
        kubeConfig,
        log,
        namespaces,
        leaderElection: leaderElect
          ? { namespace: leaseNamespace, name: options.leaderElectionId }
          : undefined,
        metricsPort: options.metricsPort,
        healthPort: options.healthPort,
        dashboardPolicyNamespace: networkPolicy ? process.env.POD_NAMESPACE : undefined,
      });
      const urls = await operator.start();
      log.info(
        { namespaces: namespaces.length ? namespaces : 'all', leaderElect, ...urls },
        'operator started',
      );
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      log.info('stopping');
      await operator.stop();
    });
}
