import React from 'react';
import useAsync from 'react-use/esm/useAsync';
import { useApi } from '@backstage/core-plugin-api';
import { InfoCard, Progress } from '@backstage/core-components';
import { useEntity } from '@backstage/plugin-catalog-react';
import { trellisApiRef, type TrellisApi } from '../api';

/** The entity a card asks Trellis about. */
export type EntityRef = { namespace: string; kind: string; name: string };

/** What a card waits for: loading, failed with an error, or its value. */
export type Loaded<T> = { loading: boolean; error?: Error; value?: T };

/**
 * An entity card over something loaded: progress while it loads, `failure` and the reason
 * when it could not be, else `view` of the value. Every Trellis card is one of these.
 */
export function LoadedCard<T>(props: {
  title: string;
  state: Loaded<T>;
  failure: string;
  errorTestId: string;
  view: (value: T) => React.ReactNode;
}) {
  const { value, loading, error } = props.state;
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

/** A `LoadedCard` over one of Trellis's answers about the entity. */
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
  const { title, load, failure, errorTestId, view } = props;
  const state = useAsync(
    () => load(trellis, ref),
    [load, trellis, ref.namespace, ref.kind, ref.name],
  );
  return (
    <LoadedCard
      title={title}
      state={state}
      failure={failure}
      errorTestId={errorTestId}
      view={view}
    />
  );
}
