/**
 * Walks an application graph: every bound deployment once, with a unique name, the ingress first.
 * Pure: used by the process that builds an application and by each replica to find its class.
 */
import { Application, type Deployment } from './deployment.ts';

export interface GraphNode {
  name: string;
  deployment: Deployment;
  node: Application;
  isIngress: boolean;
}

function children(value: unknown, found: Application[]): void {
  if (value instanceof Application) {
    found.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) children(v, found);
  } else if (
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const v of Object.values(value)) children(v, found);
  }
}

export function walkApplication(root: Application): GraphNode[] {
  const names = new Map<Application, string>();
  const taken = new Set<string>();
  const nodes: GraphNode[] = [];
  const visit = (node: Application) => {
    if (names.has(node)) return;
    let name = node.deployment.name;
    for (let i = 1; taken.has(name); i++) name = `${node.deployment.name}_${i}`;
    names.set(node, name);
    taken.add(name);
    nodes.push({ name, deployment: node.deployment, node, isIngress: node === root });
    const found: Application[] = [];
    children(node.args, found);
    for (const child of found) visit(child);
  };
  visit(root);
  return nodes;
}

/** The constructor arguments of a node, with bound children replaced by whatever `toHandle` makes. */
export function constructorArgs(
  node: Application,
  nodes: readonly GraphNode[],
  toHandle: (deploymentName: string) => unknown,
): unknown[] {
  const nameOf = new Map(nodes.map((n) => [n.node, n.name]));
  const replace = (value: unknown): unknown => {
    if (value instanceof Application) return toHandle(nameOf.get(value)!);
    if (Array.isArray(value)) return value.map(replace);
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replace(v)]));
    }
    return value;
  };
  return node.args.map(replace);
}
