/** The same card for apps still on the legacy frontend system (`EntityPage.tsx`). */
import {
  createApiFactory,
  createComponentExtension,
  createPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { TrellisClient, trellisApiRef } from './api';

export const trellisPlugin = createPlugin({
  id: 'trellis',
  apis: [
    createApiFactory({
      api: trellisApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) => new TrellisClient({ discoveryApi, fetchApi }),
    }),
  ],
});

/** `<EntityTrellisGoldenSignalsCard />` inside an entity page's grid, for `ai-model` resources. */
export const EntityTrellisGoldenSignalsCard = trellisPlugin.provide(
  createComponentExtension({
    name: 'EntityTrellisGoldenSignalsCard',
    component: {
      lazy: () => import('./components/GoldenSignalsCard').then(m => m.GoldenSignalsCard),
    },
  }),
);

/** `<EntityTrellisTrainingHistoryCard />`: the champion's and candidate's training curves. */
export const EntityTrellisTrainingHistoryCard = trellisPlugin.provide(
  createComponentExtension({
    name: 'EntityTrellisTrainingHistoryCard',
    component: {
      lazy: () => import('./components/TrainingHistoryCard').then(m => m.TrainingHistoryCard),
    },
  }),
);
