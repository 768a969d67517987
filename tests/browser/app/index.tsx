/**
 * The test app: Backstage's new frontend system with the stock catalog, scaffolder, TechDocs
 * (with search, whose API its reader uses) and Kubernetes plugins, scorecards from the stock Tech Insights client (scorecards.tsx) and
 * Trellis's frontend plugin, as an adopter's `packages/app` would have it. Its config is read at start
 * from `/app-config.json`, which the test writes beside the bundle, so one build serves any
 * backend address.
 */
import '@backstage/ui/css/styles.css';
import ReactDOM from 'react-dom/client';
import { ConfigReader } from '@backstage/config';
import { createApp } from '@backstage/frontend-defaults';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import kubernetesPlugin from '@backstage/plugin-kubernetes/alpha';
import scaffolderPlugin from '@backstage/plugin-scaffolder/alpha';
import searchPlugin from '@backstage/plugin-search/alpha';
import techdocsPlugin from '@backstage/plugin-techdocs/alpha';
import trellisPlugin from '@trellis/backstage-plugin-trellis';
import scorecardsPlugin from './scorecards';

async function loadConfig() {
  const response = await fetch('/app-config.json');
  const data = await response.json();
  return { config: ConfigReader.fromConfigs([{ context: 'app-config.json', data }]) };
}

const app = createApp({
  features: [
    catalogPlugin,
    scaffolderPlugin,
    searchPlugin,
    techdocsPlugin,
    kubernetesPlugin,
    scorecardsPlugin,
    trellisPlugin,
  ],
  advanced: { configLoader: loadConfig },
});

ReactDOM.createRoot(document.getElementById('root')!).render(app.createRoot());
