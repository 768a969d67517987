import React from 'react';
import useAsync from 'react-use/esm/useAsync';
import { useApi } from '@backstage/core-plugin-api';
import { type Entity, RELATION_DEPENDS_ON } from '@backstage/catalog-model';
import {
  EntityRefLink,
  catalogApiRef,
  getEntityRelations,
  useEntity,
} from '@backstage/plugin-catalog-react';
import {
  ANNOTATION,
  type ServerRow,
  type VariantRow,
  byRegion,
  isAdapter,
  isModelServer,
  refOf,
  serverCandidates,
  serverRow,
  variantCandidates,
  variantRow,
} from '../lineage';
import { cell, muted } from './styles';
import { LoadedCard } from './TrellisEntityCard';


/** What the card found in the catalog for one model. */
export interface Lineage {
  variants: VariantRow[];
  /** Refs the model's `trellis.dev/adapters` lists that the catalog does not hold (yet). */
  missing: string[];
  servers: ServerRow[];
}

type EntitiesByRefs = (refs: string[]) => Promise<Array<Entity | undefined>>;

/** Reads the model's variants, then the servers of the model and of each variant. */
export async function loadLineage(model: Entity, byRefs: EntitiesByRefs): Promise<Lineage> {
  const { listed, related } = variantCandidates(model);
  const candidates = [...new Set([...listed, ...related])].sort();
  const found = candidates.length > 0 ? await byRefs(candidates) : [];
  const variants: Entity[] = [];
  const missing: string[] = [];
  candidates.forEach((ref, i) => {
    const entity = found[i];
    if (!entity) {
      if (listed.includes(ref)) missing.push(ref);
    } else if (isAdapter(entity) || listed.includes(ref)) {
      variants.push(entity);
    }
  });
  const models = [model, ...variants];
  const serverRefs = serverCandidates(models);
  const servers = (serverRefs.length > 0 ? await byRefs(serverRefs) : []).filter(
    (entity): entity is Entity => Boolean(entity) && isModelServer(entity as Entity),
  );
  const modelRefs = new Set(models.map(refOf));
  return {
    variants: byRegion(variants.map(variantRow)),
    missing,
    servers: byRegion(servers.map(server => serverRow(server, modelRefs))),
  };
}

function Fact(props: { value: string | undefined; testId: string }) {
  return (
    <td style={cell} data-testid={props.testId}>
      {props.value ?? <span style={muted}>–</span>}
    </td>
  );
}

function VariantsTable(props: { model: Entity; lineage: Lineage }) {
  const { model, lineage } = props;
  if (lineage.variants.length === 0) {
    const parent = getEntityRelations(model, RELATION_DEPENDS_ON, { kind: 'resource' })[0];
    return (
      <p data-testid="trellis-no-variants">
        {isAdapter(model) ? (
          <>
            No fine-tuned variants: this model is itself a regional variant
            {parent ? (
              <>
                {' '}
                of <EntityRefLink entityRef={parent} />
              </>
            ) : (
              ` of ${model.metadata.annotations?.[ANNOTATION.parentModel] ?? 'a base model'}`
            )}
            .
          </>
        ) : (
          <>
            No fine-tuned variants: this model has no adapters in the registry (no registered
            model names it as its <code>parent_model</code>).
          </>
        )}
      </p>
    );
  }
  return (
    <table style={{ borderCollapse: 'collapse', width: '100%' }}>
      <thead>
        <tr>
          <th style={cell}>Variant</th>
          <th style={cell}>Region</th>
          <th style={cell}>Method</th>
          <th style={cell}>From version</th>
          <th style={cell}>Champion</th>
          <th style={cell}>Dataset</th>
        </tr>
      </thead>
      <tbody>
        {lineage.variants.map(variant => (
          <tr key={variant.ref} data-testid="trellis-variant" data-ref={variant.ref}>
            <td style={cell}>
              <EntityRefLink entityRef={variant.ref} />
            </td>
            <Fact value={variant.region} testId="trellis-variant-region" />
            <Fact value={variant.method} testId="trellis-variant-method" />
            <Fact value={variant.parentVersion} testId="trellis-variant-parent-version" />
            <Fact
              value={variant.championVersion ?? (variant.latestVersion && `latest ${variant.latestVersion}`)}
              testId="trellis-variant-version"
            />
            <td style={cell} data-testid="trellis-variant-dataset" title={variant.datasetFingerprint}>
              {variant.datasetFingerprint ? (
                <code>{variant.datasetFingerprint.slice(0, 12)}</code>
              ) : (
                <span style={muted}>–</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ServersTable(props: { model: Entity; lineage: Lineage }) {
  const { model, lineage } = props;
  if (lineage.servers.length === 0) {
    return (
      <p data-testid="trellis-no-servers-listed">
        No model servers: no Kubernetes cluster Trellis reads runs this model
        {lineage.variants.length > 0 ? ' or one of its variants' : ''}, so the catalog holds no{' '}
        <code>model-server</code> Component that depends on it.
      </p>
    );
  }
  const own = refOf(model);
  return (
    <table style={{ borderCollapse: 'collapse', width: '100%' }}>
      <thead>
        <tr>
          <th style={cell}>Server</th>
          <th style={cell}>Region</th>
          <th style={cell}>Cluster</th>
          <th style={cell}>Runtime</th>
          <th style={cell}>Serves</th>
          <th style={cell}>API</th>
        </tr>
      </thead>
      <tbody>
        {lineage.servers.map(server => (
          <tr key={server.ref} data-testid="trellis-server" data-ref={server.ref}>
            <td style={cell}>
              <EntityRefLink entityRef={server.ref} />
              {server.replicas && <div style={muted}>{server.replicas}</div>}
            </td>
            <Fact value={server.region} testId="trellis-server-region" />
            <Fact value={server.cluster} testId="trellis-server-cluster" />
            <Fact value={server.runtime} testId="trellis-server-runtime" />
            <td style={cell} data-testid="trellis-server-serves">
              {server.serves.map(ref => (
                <div key={ref}>
                  {ref === own ? 'this model' : <EntityRefLink entityRef={ref} hideIcon />}
                  {ref === own && server.version ? `, version ${server.version}` : ''}
                </div>
              ))}
            </td>
            <td style={cell} data-testid="trellis-server-apis">
              {server.apis.length > 0 ? (
                server.apis.map(ref => (
                  <div key={ref}>
                    <EntityRefLink entityRef={ref} hideIcon />
                  </div>
                ))
              ) : (
                <span style={muted}>none declared</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The two tables, and a note for adapters the model lists that the catalog lacks. */
export function VariantsAndServersView(props: { model: Entity; lineage: Lineage }) {
  const { model, lineage } = props;
  return (
    <div data-testid="trellis-variants-servers">
      <h3 style={{ margin: '0 0 4px' }}>Regional variants</h3>
      <VariantsTable model={model} lineage={lineage} />
      {lineage.missing.length > 0 && (
        <p role="alert" style={muted} data-testid="trellis-missing-variants">
          Listed by this model but not in the catalog (yet): {lineage.missing.join(', ')}.
        </p>
      )}
      <h3 style={{ margin: '12px 0 4px' }}>Model servers</h3>
      <ServersTable model={model} lineage={lineage} />
    </div>
  );
}

/** Entity card: a model's regional fine-tuned variants and the servers of each, from the catalog. */
export function VariantsAndServersCard() {
  const { entity } = useEntity();
  const catalog = useApi(catalogApiRef);
  const state = useAsync(
    () =>
      loadLineage(entity, async entityRefs => (await catalog.getEntitiesByRefs({ entityRefs })).items),
    [catalog, entity],
  );
  return (
    <LoadedCard
      title="Regional variants and servers"
      state={state}
      failure="The catalog could not be read"
      errorTestId="trellis-variants-error"
      view={lineage => <VariantsAndServersView model={entity} lineage={lineage} />}
    />
  );
}
