/**
 * Scorecards on a model's entity page, read with the stock Tech Insights client
 * (`TechInsightsClient` of `@backstage-community/plugin-tech-insights-common/client`, the
 * client the Tech Insights frontend uses): it finds its backend by the discovery id
 * `tech-insights`, which the app's config points at Backstage's proxy to Trellis, as
 * docs/backstage.md says. The Tech Insights frontend package itself cannot be installed from
 * the npm registry this harness uses, so this tab renders the client's `CheckResult`s the way
 * its boolean check renderer does: one row per check, its name, description and pass or fail.
 */
import { useMemo } from 'react';
import useAsync from 'react-use/esm/useAsync';
import {
  ApiBlueprint,
  createApiRef,
  createFrontendPlugin,
  discoveryApiRef,
  identityApiRef,
  useApi,
} from '@backstage/frontend-plugin-api';
import { Progress, WarningPanel, InfoCard } from '@backstage/core-components';
import { getCompoundEntityRef } from '@backstage/catalog-model';
import { EntityContentBlueprint } from '@backstage/plugin-catalog-react/alpha';
import { useEntity } from '@backstage/plugin-catalog-react';
import { TechInsightsClient } from '@backstage-community/plugin-tech-insights-common/client';

/** The id the Tech Insights frontend registers its API under. */
const techInsightsApiRef = createApiRef<TechInsightsClient>({ id: 'plugin.techinsights.service' });

const techInsightsApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: techInsightsApiRef,
      deps: { discoveryApi: discoveryApiRef, identityApi: identityApiRef },
      factory: ({ discoveryApi, identityApi }) =>
        new TechInsightsClient({ discoveryApi, identityApi }),
    }),
});

function Scorecards() {
  const api = useApi(techInsightsApiRef);
  const { entity } = useEntity();
  const ref = useMemo(() => getCompoundEntityRef(entity), [entity]);
  const { value, loading, error } = useAsync(() => api.runChecks(ref), [api, ref]);
  if (loading) return <Progress />;
  if (error) {
    return (
      <WarningPanel title="Scorecards could not be read" message={error.message}>
        <span data-testid="scorecards-error">{error.message}</span>
      </WarningPanel>
    );
  }
  const results = (value ?? []).filter(r => typeof r.result === 'boolean');
  return (
    <InfoCard title="Scorecards" subheader="Checks run by Tech Insights for this entity">
      <ul data-testid="scorecards" style={{ listStyle: 'none', padding: 0, margin: 0 }}>
        {results.map(({ check, result }) => (
          <li
            key={check.id}
            data-testid="scorecard-check"
            data-check-id={check.id}
            data-result={result ? 'pass' : 'fail'}
            style={{ display: 'flex', gap: 12, padding: '6px 0', alignItems: 'baseline' }}
          >
            <strong style={{ color: result ? '#1b5e20' : '#b71c1c', minWidth: 48 }}>
              {result ? '✔ pass' : '✖ fail'}
            </strong>
            <span>
              <span data-testid="scorecard-name">{check.name}</span>
              <br />
              <small>{check.description}</small>
            </span>
          </li>
        ))}
      </ul>
    </InfoCard>
  );
}

const scorecardsContent = EntityContentBlueprint.make({
  name: 'scorecards',
  params: {
    path: '/scorecards',
    title: 'Scorecards',
    filter: { kind: 'resource', 'spec.type': 'ai-model' },
    loader: async () => <Scorecards />,
  },
});

export default createFrontendPlugin({
  pluginId: 'scorecards',
  extensions: [techInsightsApi, scorecardsContent],
});
