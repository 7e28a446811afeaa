/**
 * Generates the CustomResourceDefinitions in `crds/` from the zod schemas, so the API server and the
 * operator validate with the same rules. zod's OpenAPI output is rewritten into a structural schema
 * (no `additionalProperties` beside `properties`, int-or-string for quantities, no JS-only bounds).
 */
import { z } from 'zod';
import {
  RAYLINE_GROUP,
  RAYLINE_VERSION,
  rayClusterSpecSchema,
  rayClusterStatusSchema,
} from './raycluster.ts';
import { rayServiceSpecSchema, rayServiceStatusSchema } from './rayservice.ts';

export type JsonSchema = { [key: string]: unknown };

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'number' | 'boolean';
  jsonPath: string;
  priority?: number;
  description?: string;
}

interface CrdSource {
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const JS_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** Rewrites one node of zod's OpenAPI 3.0 output into Kubernetes' structural dialect. */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const input = node as JsonSchema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(input)) {
    if (key === '$schema' || key === 'id') continue;
    out[key] = toStructural(value);
  }
  const anyOf = out.anyOf as JsonSchema[] | undefined;
  if (anyOf && isIntOrString(anyOf)) {
    delete out.anyOf;
    out['x-kubernetes-int-or-string'] = true;
  }
  if (out.properties !== undefined || out.additionalProperties === false) {
    // Strict and loose objects alike: unknown fields are pruned unless the node preserves them.
    if (typeof out.additionalProperties !== 'object' || isEmpty(out.additionalProperties)) {
      delete out.additionalProperties;
    }
  }
  if (out.type === 'object' && isEmpty(out.additionalProperties)) {
    delete out.additionalProperties;
  }
  if (out.maximum === JS_SAFE_MAX) delete out.maximum;
  if (out.minimum === -JS_SAFE_MAX) delete out.minimum;
  if (out.format === 'int32' && out.maximum === 2147483647) delete out.maximum;
  if (out.format === 'int32' && out.minimum === -2147483648) delete out.minimum;
  if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  if (isEmpty(out.properties)) delete out.properties;
  return out;
}

function isIntOrString(anyOf: JsonSchema[]): boolean {
  const types = new Set(anyOf.map((s) => s.type));
  return anyOf.length === 2 && types.has('string') && (types.has('number') || types.has('integer'));
}

function isEmpty(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function openApiSchema(schema: z.ZodType): JsonSchema {
  const raw = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' });
  return toStructural(raw) as JsonSchema;
}

const workerGroupRules = [
  { rule: 'self.minReplicas <= self.maxReplicas', message: 'minReplicas must not exceed maxReplicas' },
];

/** Rules zod checks in code (superRefine) that the API server should also enforce. */
function addServerSideRules(spec: JsonSchema, clusterSpecPath: string[]): void {
  let node: JsonSchema = spec;
  for (const key of clusterSpecPath)
    node = (node.properties as Record<string, JsonSchema>)[key] as JsonSchema;
  const groups = (node.properties as Record<string, JsonSchema>).workerGroupSpecs as JsonSchema;
  groups['x-kubernetes-list-type'] = 'map';
  groups['x-kubernetes-list-map-keys'] = ['groupName'];
  (groups.items as JsonSchema)['x-kubernetes-validations'] = workerGroupRules;
}

const sources: CrdSource[] = [
  {
    kind: 'RayCluster',
    plural: 'rayclusters',
    singular: 'raycluster',
    spec: rayClusterSpecSchema,
    status: rayClusterStatusSchema,
    columns: [
      { name: 'desired workers', type: 'integer', jsonPath: '.status.desiredWorkerReplicas' },
      { name: 'available workers', type: 'integer', jsonPath: '.status.availableWorkerReplicas' },
      { name: 'cpus', type: 'string', jsonPath: '.status.desiredCPU' },
      { name: 'memory', type: 'string', jsonPath: '.status.desiredMemory' },
      { name: 'gpus', type: 'string', jsonPath: '.status.desiredGPU' },
      { name: 'status', type: 'string', jsonPath: '.status.state' },
      { name: 'age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      { name: 'head pod IP', type: 'string', jsonPath: '.status.head.podIP', priority: 1 },
      { name: 'head service IP', type: 'string', jsonPath: '.status.head.serviceIP', priority: 1 },
    ],
  },
  {
    kind: 'RayService',
    plural: 'rayservices',
    singular: 'rayservice',
    spec: rayServiceSpecSchema,
    status: rayServiceStatusSchema,
    columns: [
      { name: 'service status', type: 'string', jsonPath: '.status.serviceStatus' },
      { name: 'num serve endpoints', type: 'integer', jsonPath: '.status.numServeEndpoints' },
      { name: 'age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];

export function customResourceDefinition(source: CrdSource): JsonSchema {
  const spec = openApiSchema(source.spec);
  addServerSideRules(spec, source.kind === 'RayService' ? ['rayClusterConfig'] : []);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${source.plural}.${RAYLINE_GROUP}` },
    spec: {
      group: RAYLINE_GROUP,
      names: {
        kind: source.kind,
        listKind: `${source.kind}List`,
        plural: source.plural,
        singular: source.singular,
        categories: ['all'],
        ...(source.shortNames ? { shortNames: source.shortNames } : {}),
      },
      scope: 'Namespaced',
      versions: [
        {
          name: RAYLINE_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: source.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `${source.kind} (${RAYLINE_GROUP}/${RAYLINE_VERSION}), shaped like KubeRay's ray.io/v1.`,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status: openApiSchema(source.status),
              },
              required: ['spec'],
            },
          },
        },
      ],
    },
  };
}

/** Every CRD Rayline installs, keyed by the file name it is written to under `crds/`. */
export function customResourceDefinitions(): Record<string, JsonSchema> {
  return Object.fromEntries(
    sources.map((s) => [`${RAYLINE_GROUP}_${s.plural}.yaml`, customResourceDefinition(s)]),
  );
}
