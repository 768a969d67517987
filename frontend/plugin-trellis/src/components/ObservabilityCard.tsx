import React from 'react';
import type { TrellisApi } from '../api';
import type { ObservabilityPage } from '../types';
import { type EntityRef, TrellisEntityCard } from './TrellisEntityCard';

const loadPage = (trellis: TrellisApi, entity: EntityRef) => trellis.getObservability(entity);

/**
 * An entity card over the entity's observability page. Both observability cards are one of
 * these; the API shares their request.
 */
export function ObservabilityCard(props: {
  title: string;
  view: (page: ObservabilityPage) => React.ReactNode;
}) {
  return (
    <TrellisEntityCard
      title={props.title}
      load={loadPage}
      failure="Trellis could not be read"
      errorTestId="trellis-error"
      view={props.view}
    />
  );
}
