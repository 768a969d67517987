/**
 * Pure helpers for the Regional variants and servers card: which catalog entities are a
 * model's regional variants and servers, and the facts the card shows of each. Everything
 * here reads what Trellis put on the entities (its `trellis.dev/` annotations) and the
 * relations Backstage derives from their `dependsOn`.
 */
import {
  type Entity,
  RELATION_DEPENDENCY_OF,
  RELATION_DEPENDS_ON,
  RELATION_PROVIDES_API,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';

/** The annotations Trellis writes that the card reads (backend/trellis/annotations.py). */
export const ANNOTATION = {
  adapters: 'trellis.dev/adapters',
  modelKind: 'trellis.dev/model-kind',
  parentModel: 'trellis.dev/parent-model',
  parentVersion: 'trellis.dev/parent-version',
  method: 'trellis.dev/method',
  datasetFingerprint: 'trellis.dev/dataset-fingerprint',
  region: 'trellis.dev/region',
  cluster: 'trellis.dev/cluster',
  runtime: 'trellis.dev/runtime',
  championVersion: 'trellis.dev/champion-version',
  latestVersion: 'trellis.dev/latest-version',
  modelVersion: 'trellis.dev/model-version',
  readyReplicas: 'trellis.dev/ready-replicas',
  desiredReplicas: 'trellis.dev/desired-replicas',
} as const;

/** `spec.type` of the Components Trellis makes of model servers. */
export const MODEL_SERVER = 'model-server';

/** A ref in its full `kind:namespace/name` form, lower-cased as the catalog compares them. */
export function normalRef(
  ref: string,
  context?: { defaultKind?: string; defaultNamespace?: string },
): string | undefined {
  try {
    return stringifyEntityRef(parseEntityRef(ref.trim(), context)).toLocaleLowerCase('en-US');
  } catch {
    return undefined;
  }
}

function annotation(entity: Entity, key: string): string | undefined {
  const value = entity.metadata.annotations?.[key]?.trim();
  return value ? value : undefined;
}

function relationTargets(entity: Entity, type: string, kind?: string): string[] {
  return (entity.relations ?? [])
    .filter(relation => relation.type === type)
    .map(relation => relation.targetRef.toLocaleLowerCase('en-US'))
    .filter(ref => !kind || ref.startsWith(`${kind}:`));
}

function unique(refs: Array<string | undefined>): string[] {
  return [...new Set(refs.filter((ref): ref is string => Boolean(ref)))].sort();
}

/**
 * The model's regional variants as refs: those its `trellis.dev/adapters` annotation lists
 * and the Resources that depend on it (an adapter's `dependsOn` its base model).
 */
export function variantCandidates(model: Entity): { listed: string[]; related: string[] } {
  const adapters = (annotation(model, ANNOTATION.adapters) ?? '').split(',');
  const listed = unique(adapters.map(ref => normalRef(ref)));
  const related = unique(relationTargets(model, RELATION_DEPENDENCY_OF, 'resource'));
  return { listed, related };
}

/** Whether a Resource is a regional fine-tune (Trellis marks adapters with model-kind). */
export function isAdapter(entity: Entity): boolean {
  return annotation(entity, ANNOTATION.modelKind) === 'adapter';
}

/** The Components that depend on any of `models`: candidates for their model servers. */
export function serverCandidates(models: Entity[]): string[] {
  return unique(models.flatMap(model => relationTargets(model, RELATION_DEPENDENCY_OF, 'component')));
}

export function isModelServer(entity: Entity): boolean {
  return entity.kind.toLocaleLowerCase('en-US') === 'component' && entity.spec?.type === MODEL_SERVER;
}

export function refOf(entity: Entity): string {
  return stringifyEntityRef(entity).toLocaleLowerCase('en-US');
}

export interface VariantRow {
  ref: string;
  title: string;
  region: string | undefined;
  method: string | undefined;
  parentVersion: string | undefined;
  datasetFingerprint: string | undefined;
  championVersion: string | undefined;
  latestVersion: string | undefined;
}

export function variantRow(entity: Entity): VariantRow {
  return {
    ref: refOf(entity),
    title: entity.metadata.title ?? entity.metadata.name,
    region: annotation(entity, ANNOTATION.region),
    method: annotation(entity, ANNOTATION.method),
    parentVersion: annotation(entity, ANNOTATION.parentVersion),
    datasetFingerprint: annotation(entity, ANNOTATION.datasetFingerprint),
    championVersion: annotation(entity, ANNOTATION.championVersion),
    latestVersion: annotation(entity, ANNOTATION.latestVersion),
  };
}

export interface ServerRow {
  ref: string;
  title: string;
  region: string | undefined;
  cluster: string | undefined;
  runtime: string | undefined;
  /** The model version it serves, when the server says. */
  version: string | undefined;
  replicas: string | undefined;
  /** Refs of the models (the base or its variants) it depends on, among `models`. */
  serves: string[];
  apis: string[];
}

export function serverRow(entity: Entity, models: ReadonlySet<string>): ServerRow {
  const ready = annotation(entity, ANNOTATION.readyReplicas);
  const desired = annotation(entity, ANNOTATION.desiredReplicas);
  const declaredApis = Array.isArray(entity.spec?.providesApis)
    ? (entity.spec.providesApis as unknown[]).filter((x): x is string => typeof x === 'string')
    : [];
  return {
    ref: refOf(entity),
    title: entity.metadata.title ?? entity.metadata.name,
    region: annotation(entity, ANNOTATION.region),
    cluster: annotation(entity, ANNOTATION.cluster),
    runtime: annotation(entity, ANNOTATION.runtime),
    version: annotation(entity, ANNOTATION.modelVersion),
    replicas: ready !== undefined && desired !== undefined ? `${ready}/${desired} ready` : undefined,
    serves: relationTargets(entity, RELATION_DEPENDS_ON).filter(ref => models.has(ref)),
    apis: unique([
      ...relationTargets(entity, RELATION_PROVIDES_API),
      // As Backstage reads spec.providesApis: an API, in the server's own namespace.
      ...declaredApis.map(ref =>
        normalRef(ref, { defaultKind: 'api', defaultNamespace: entity.metadata.namespace }),
      ),
    ]),
  };
}

/** Rows sorted by region, then title, rows without a region last. */
export function byRegion<T extends { region: string | undefined; title: string }>(rows: T[]): T[] {
  return [...rows].sort(
    (a, b) =>
      Number(a.region === undefined) - Number(b.region === undefined) ||
      (a.region ?? '').localeCompare(b.region ?? '') ||
      a.title.localeCompare(b.title),
  );
}
