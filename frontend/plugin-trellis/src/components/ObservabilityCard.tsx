import React from 'react';
import useAsync from 'react-use/esm/useAsync';
import { useApi } from '@backstage/core-plugin-api';
import { InfoCard, Progress } from '@backstage/core-components';
import { useEntity } from '@backstage/plugin-catalog-react';
import { trellisApiRef } from '../api';
import type { ObservabilityPage } from '../types';

/**
 * An entity card over the entity's observability page: progress while it loads, the reason
 * when Trellis cannot be read, else `view` of the page. Both Trellis cards are one of these;
 * the API shares their request.
 */
export function ObservabilityCard(props: {
  title: string;
  view: (page: ObservabilityPage) => React.ReactNode;
}) {
  const { entity } = useEntity();
  const trellis = useApi(trellisApiRef);
  const ref = {
    namespace: entity.metadata.namespace ?? 'default',
    kind: entity.kind,
    name: entity.metadata.name,
  };
  const { value, loading, error } = useAsync(
    () => trellis.getObservability(ref),
    [trellis, ref.namespace, ref.kind, ref.name],
  );
  let body: React.ReactNode;
  if (loading) {
    body = <Progress />;
  } else if (error) {
    body = (
      <p role="alert" data-testid="trellis-error">
        Trellis could not be read: {error.message}
      </p>
    );
  } else if (value) {
    body = props.view(value);
  }
  return <InfoCard title={props.title}>{body}</InfoCard>;
}
