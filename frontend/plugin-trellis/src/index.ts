/**
 * Trellis for Backstage's frontend. The default export is the plugin for the new frontend
 * system; `trellisPlugin` and the `EntityTrellis*Card` components serve legacy apps.
 */
export { default } from './plugin';
export {
  blueprintCurrencyCard,
  goldenSignalsCard,
  isAiModel,
  isBlueprintComponent,
  trainingHistoryCard,
  trellisApi,
  variantsAndServersCard,
} from './plugin';
export {
  EntityTrellisBlueprintCurrencyCard,
  EntityTrellisGoldenSignalsCard,
  EntityTrellisTrainingHistoryCard,
  EntityTrellisVariantsAndServersCard,
  trellisPlugin,
} from './legacy';
export { TrellisClient, trellisApiRef, DEFAULT_PROXY_PATH } from './api';
export type { TrellisApi } from './api';
export { GoldenSignalsView } from './components/GoldenSignalsCard';
export { TrainingHistoryView } from './components/TrainingHistoryCard';
export { VariantsAndServersView, loadLineage } from './components/VariantsAndServersCard';
export type { Lineage } from './components/VariantsAndServersCard';
export { BlueprintCurrencyView } from './components/BlueprintCurrencyCard';
export type * from './types';
