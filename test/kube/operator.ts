/** What the operator tests share: a namespace of their own and an operator watching only it. */
import pino from 'pino';
import type { KubeClient } from '../../src/operator/kube/client.ts';
import { Namespaces } from '../../src/operator/kube/resources.ts';
import { Operator, type OperatorOptions } from '../../src/operator/operator.ts';
import type { KubeTestEnv } from './env.ts';

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

/** An operator on loopback ports chosen by the OS, quick to requeue, logging only when asked. */
export function testOperator(
  env: KubeTestEnv,
  namespace: string,
  options: Partial<OperatorOptions> = {},
): Operator {
  return new Operator({
    kubeConfig: env.kubeConfig,
    log: pino({ level: process.env.RAYLINE_TEST_LOG_LEVEL ?? 'silent' }),
    namespaces: [namespace],
    host: '127.0.0.1',
    metricsPort: 0,
    healthPort: 0,
    busyRequeueMs: 300,
    ...options,
  });
}
