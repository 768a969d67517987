/** The plugin for Backstage's new frontend system: an API and its entity cards. */
import React from 'react';
import {
  ApiBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/frontend-plugin-api';
import { EntityCardBlueprint } from '@backstage/plugin-catalog-react/alpha';
import type { Entity } from '@backstage/catalog-model';
import { TrellisClient, trellisApiRef } from './api';
import { BLUEPRINT_ANNOTATION } from './currency';

/** Models only: the card is about a model's servers. */
export const isAiModel = { kind: 'resource', 'spec.type': 'ai-model' };

/** Components generated from a Trellis blueprint: they carry its name as an annotation. */
export function isBlueprintComponent(entity: Entity): boolean {
  return (
    entity.kind.toLocaleLowerCase('en-US') === 'component' &&
    Boolean(entity.metadata.annotations?.[BLUEPRINT_ANNOTATION])
  );
}

export const trellisApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: trellisApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) => new TrellisClient({ discoveryApi, fetchApi }),
    }),
});

export const goldenSignalsCard = EntityCardBlueprint.make({
  name: 'golden-signals',
  params: {
    filter: isAiModel,
    loader: () =>
      import('./components/GoldenSignalsCard').then(m => <m.GoldenSignalsCard />),
  },
});

export const trainingHistoryCard = EntityCardBlueprint.make({
  name: 'training-history',
  params: {
    filter: isAiModel,
    loader: () =>
      import('./components/TrainingHistoryCard').then(m => <m.TrainingHistoryCard />),
  },
});

export const variantsAndServersCard = EntityCardBlueprint.make({
  name: 'variants-and-servers',
  params: {
    filter: isAiModel,
    loader: () =>
      import('./components/VariantsAndServersCard').then(m => <m.VariantsAndServersCard />),
  },
});

export const blueprintCurrencyCard = EntityCardBlueprint.make({
  name: 'blueprint-currency',
  params: {
    filter: isBlueprintComponent,
    loader: () =>
      import('./components/BlueprintCurrencyCard').then(m => <m.BlueprintCurrencyCard />),
  },
});

export default createFrontendPlugin({
  pluginId: 'trellis',
  extensions: [
    trellisApi,
    goldenSignalsCard,
    trainingHistoryCard,
    variantsAndServersCard,
    blueprintCurrencyCard,
  ],
});
