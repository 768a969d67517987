import React from 'react';
import { Link, MarkdownContent } from '@backstage/core-components';
import type { TrellisApi } from '../api';
import { behindText, requestTitle, safeHref } from '../currency';
import type { BlueprintCurrency } from '../types';
import { cell, muted } from './styles';
import { type EntityRef, TrellisEntityCard } from './TrellisEntityCard';


function UpdateRequest(props: { currency: BlueprintCurrency }) {
  const { updateRequest, updateRequestReason } = props.currency;
  const href = safeHref(updateRequest?.url);
  if (updateRequest && href) {
    return (
      <p data-testid="trellis-currency-request">
        <Link to={href} data-testid="trellis-currency-request-link">
          The update {requestTitle(updateRequest.host)}
        </Link>{' '}
        <span style={muted}>
          from <code>{updateRequest.branch}</code>, opened by the repository's scheduled
          blueprint-update workflow
        </span>
      </p>
    );
  }
  return (
    <p style={muted} data-testid="trellis-currency-request">
      No update request link: {updateRequestReason ?? 'the link is not an https URL'}.
    </p>
  );
}

/** The facts, the update request and the changelog of the releases not taken yet. */
export function BlueprintCurrencyView(props: { currency: BlueprintCurrency }) {
  const { currency } = props;
  return (
    <div
      data-testid="trellis-currency"
      data-behind={currency.versionsBehind ?? ''}
      data-status={currency.status}
    >
      {currency.status === 'unavailable' && (
        <p role="alert" data-testid="trellis-currency-unavailable">
          <strong>The blueprint source</strong> is unavailable: {currency.reason ?? 'no reason given'}
        </p>
      )}
      <table style={{ borderCollapse: 'collapse' }}>
        <tbody>
          <tr>
            <th style={cell}>Blueprint</th>
            <td style={cell} data-testid="trellis-currency-blueprint">
              {currency.blueprint}
            </td>
          </tr>
          <tr>
            <th style={cell}>In use</th>
            <td style={cell} data-testid="trellis-currency-current">
              {currency.currentVersion}
            </td>
          </tr>
          <tr>
            <th style={cell}>Newest</th>
            <td style={cell} data-testid="trellis-currency-latest">
              {currency.latestVersion ?? '–'}
            </td>
          </tr>
          <tr>
            <th style={cell}>Behind</th>
            <td style={cell} data-testid="trellis-currency-behind">
              {behindText(currency)}
              {currency.note && <div style={muted}>{currency.note}</div>}
            </td>
          </tr>
        </tbody>
      </table>
      {!currency.upToDate && <UpdateRequest currency={currency} />}
      {currency.releases.length > 0 && (
        <>
          <h3 style={{ margin: '12px 0 4px' }}>What the newer releases change</h3>
          {currency.releases.map(release => (
            <section
              key={release.version}
              data-testid="trellis-currency-release"
              data-version={release.version}
            >
              <h4 style={{ margin: '8px 0 2px' }}>
                {release.version}
                {release.date && <span style={muted}> · {release.date}</span>}
              </h4>
              {release.notes ? (
                <MarkdownContent content={release.notes} />
              ) : (
                <p style={muted}>The changelog has no notes for this release.</p>
              )}
            </section>
          ))}
        </>
      )}
    </div>
  );
}

const loadCurrency = (trellis: TrellisApi, entity: EntityRef) =>
  trellis.getBlueprintCurrency(entity);

/** Entity card: how far the generated repository is behind its blueprint, from Trellis. */
export function BlueprintCurrencyCard() {
  return (
    <TrellisEntityCard
      title="Blueprint currency"
      load={loadCurrency}
      failure="Trellis could not say how current this repository is"
      errorTestId="trellis-currency-error"
      view={currency => <BlueprintCurrencyView currency={currency} />}
    />
  );
}
