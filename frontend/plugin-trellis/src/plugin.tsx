/** The plugin for Backstage's new frontend system: an API and an entity card. */
import React from 'react';
import {
  ApiBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/frontend-plugin-api';
import { EntityCardBlueprint } from '@backstage/plugin-catalog-react/alpha';
import { TrellisClient, trellisApiRef } from './api';

/** Models only: the card is about a model's servers. */
export const isAiModel = { kind: 'resource', 'spec.type': 'ai-model' };

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

export default createFrontendPlugin({
  pluginId: 'trellis',
  extensions: [trellisApi, goldenSignalsCard, trainingHistoryCard],
});
