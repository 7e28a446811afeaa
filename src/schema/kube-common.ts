/**
 * Kubernetes shapes shared by Rayline's custom resources. Core types that Kubernetes already
 * validates (pod templates, services) are kept whole: the schema checks the few fields Rayline reads
 * and preserves everything else, so a KubeRay manifest's template ports unchanged.
 */
import { z } from 'zod';

/** Marks an object whose unknown fields the API server must keep rather than prune. */
export const preserveUnknown = { 'x-kubernetes-preserve-unknown-fields': true } as const;

export const int32 = () => z.number().int().min(-2147483648).max(2147483647).meta({ format: 'int32' });

export const stringMap = () => z.record(z.string(), z.string());

const containerSchema = z
  .looseObject({
    name: z.string().min(1),
    image: z.string().optional(),
    resources: z
      .looseObject({
        limits: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
        requests: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
      })
      .meta(preserveUnknown)
      .optional(),
  })
  .meta(preserveUnknown);

export type ContainerSpec = z.output<typeof containerSchema>;

export const podTemplateSchema = z
  .looseObject({
    metadata: z
      .looseObject({ labels: stringMap().optional(), annotations: stringMap().optional() })
      .meta(preserveUnknown)
      .optional(),
    spec: z
      .looseObject({ containers: z.array(containerSchema).min(1) })
      .meta({ ...preserveUnknown, description: 'A PodSpec; the first container runs Rayline.' }),
  })
  .meta({ ...preserveUnknown, description: 'A PodTemplateSpec, kept whole.' });

export type PodTemplate = z.output<typeof podTemplateSchema>;

/** Service objects (headService, serveService) are applied as given, apart from what Rayline owns. */
export const embeddedServiceSchema = z.looseObject({}).meta(preserveUnknown);

/** metav1.Condition */
export const conditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string().optional(),
  lastTransitionTime: z.string().meta({ format: 'date-time' }),
  observedGeneration: z.number().int().optional(),
});

export type Condition = z.output<typeof conditionSchema>;

/** The parts of metav1.ObjectMeta that Rayline reads and writes. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}
