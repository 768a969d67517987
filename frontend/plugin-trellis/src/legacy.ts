/** The same cards for apps still on the legacy frontend system (`EntityPage.tsx`). */
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

/** `<EntityTrellisVariantsAndServersCard />`: a model's regional variants and their servers. */
export const EntityTrellisVariantsAndServersCard = trellisPlugin.provide(
  createComponentExtension({
    name: 'EntityTrellisVariantsAndServersCard',
    component: {
      lazy: () =>
        import('./components/VariantsAndServersCard').then(m => m.VariantsAndServersCard),
    },
  }),
);

/** `<EntityTrellisBlueprintCurrencyCard />`, for Components generated from a blueprint. */
export const EntityTrellisBlueprintCurrencyCard = trellisPlugin.provide(
  createComponentExtension({
    name: 'EntityTrellisBlueprintCurrencyCard',
    component: {
      lazy: () => import('./components/BlueprintCurrencyCard').then(m => m.BlueprintCurrencyCard),
    },
  }),
);
