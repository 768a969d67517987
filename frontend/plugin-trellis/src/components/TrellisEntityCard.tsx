import React from 'react';
import useAsync from 'react-use/esm/useAsync';
import { useApi } from '@backstage/core-plugin-api';
import { InfoCard, Progress } from '@backstage/core-components';
import { useEntity } from '@backstage/plugin-catalog-react';
import { trellisApiRef, type TrellisApi } from '../api';

/** The entity a card asks Trellis about. */
export type EntityRef = { namespace: string; kind: string; name: string };

/**
 * An entity card over one of Trellis's answers about the entity: progress while it loads,
 * `failure` and the reason when Trellis cannot be read, else `view` of the answer. Every card
 * that asks Trellis is one of these.
 */
export function TrellisEntityCard<T>(props: {
  title: string;
  load: (trellis: TrellisApi, entity: EntityRef) => Promise<T>;
  failure: string;
  errorTestId: string;
  view: (value: T) => React.ReactNode;
}) {
  const { entity } = useEntity();
  const trellis = useApi(trellisApiRef);
  const ref: EntityRef = {
    namespace: entity.metadata.namespace ?? 'default',
    kind: entity.kind,
    name: entity.metadata.name,
  };
  const { load } = props;
  const { value, loading, error } = useAsync(
    () => load(trellis, ref),
    [load, trellis, ref.namespace, ref.kind, ref.name],
  );
  let body: React.ReactNode;
  if (loading) {
    body = <Progress />;
  } else if (error) {
    body = (
      <p role="alert" data-testid={props.errorTestId}>
        {props.failure}: {error.message}
      </p>
    );
  } else if (value) {
    body = props.view(value);
  }
  return <InfoCard title={props.title}>{body}</InfoCard>;
}
