/**
 * Trellis for Backstage's frontend. The default export is the plugin for the new frontend
 * system; `trellisPlugin` and `EntityTrellisGoldenSignalsCard` serve legacy apps.
 */
export { default } from './plugin';
export { goldenSignalsCard, isAiModel, trainingHistoryCard, trellisApi } from './plugin';
export {
  EntityTrellisGoldenSignalsCard,
  EntityTrellisTrainingHistoryCard,
  trellisPlugin,
} from './legacy';
export { TrellisClient, trellisApiRef, DEFAULT_PROXY_PATH } from './api';
export type { TrellisApi } from './api';
export { GoldenSignalsView } from './components/GoldenSignalsCard';
export { TrainingHistoryView } from './components/TrainingHistoryCard';
export type * from './types';
