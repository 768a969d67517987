/*
 * Drives Debian's Chromium (headless, through playwright-core) over the test app and prints
 * what the pages show as JSON on stdout; the Python test asserts on it. Screenshots go where
 * it is told.
 *
 * Usage: node drive.js '{"appUrl": ..., "chromium": ..., "model": "default/fraud-detector",
 *   "server": "default/<model server component>", "models": 3,
 *   "steps": ["card", "catalog", "scorecards", "kubernetes", "techdocs", "template", "dryrun"],
 *   "screenshots": {"entity": "...png", "catalog": "...png", ...},
 *   "template": {"files": {"template.yaml": "..."}, "answers": {"Project name": ..., ...}},
 *   "timeoutMs": ...}'
 *
 * The scaffolder's template editor loads a template from a folder the user picks with
 * `window.showDirectoryPicker`, which headless Chromium cannot show. An init script replaces
 * it with one that returns a folder of the Origin Private File System
 * (`navigator.storage.getDirectory()`) holding the template's files: the editor then reads,
 * renders and dry-runs that template exactly as it would a local folder.
 */
'use strict';

const { chromium } = require('playwright-core');

const TRAINING = '[data-testid="trellis-training"], [data-testid="trellis-no-training"]';
const CARD = '[data-testid="trellis-golden-signals"], [data-testid="trellis-error"]';

/** The Golden signals card: each row's region and each cell's value or reason. */
async function readCard(page) {
  return page.evaluate(() => {
    const root = document.querySelector('[data-testid="trellis-golden-signals"]');
    if (!root) {
      const error = document.querySelector('[data-testid="trellis-error"]');
      return { error: error ? error.textContent : 'no card' };
    }
    const text = el => (el ? el.textContent.trim() : null);
    return {
      window: { ...root.dataset },
      unavailable: [...root.querySelectorAll('[data-testid="trellis-unavailable"]')].map(text),
      rows: [...root.querySelectorAll('[data-testid="trellis-row"]')].map(row => ({
        region: row.dataset.region,
        cells: Object.fromEntries(
          [...row.querySelectorAll('td[data-signal]')].map(td => [
            td.dataset.signal,
            {
              value: text(td.querySelector('[data-testid="trellis-value"]')),
              reason: text(td.querySelector('[data-testid="trellis-reason"]')),
              sparkline: td.querySelectorAll('[data-testid="trellis-sparkline"] polyline').length,
            },
          ]),
        ),
      })),
    };
  });
}

/** Replaces the directory picker with a folder of the page's private file system. */
function installDirectoryPicker(files) {
  window.showDirectoryPicker = async () => {
    const root = await navigator.storage.getDirectory();
    const folder = await root.getDirectoryHandle('template', { create: true });
    for (const [name, text] of Object.entries(files)) {
      const handle = await folder.getFileHandle(name, { create: true });
      const writable = await handle.createWritable();
      await writable.write(text);
      await writable.close();
    }
    return folder;
  };
}

/** The entity page's tabs, by their labels: the links to the entity's own sub-pages. */
async function readTabs(page, entityPath) {
  return page.evaluate(
    prefix =>
      [...document.querySelectorAll(`a[href^="${prefix}"]`)]
        .map(link => link.textContent.trim())
        .filter(Boolean),
    entityPath,
  );
}

/** Fills the template's form: text fields by label, the owner picker by typing and choosing. */
async function fillTemplateForm(page, answers) {
  for (const [label, value] of Object.entries(answers.text)) {
    await page.getByRole('textbox', { name: new RegExp(`^${label}`) }).first().fill(value);
  }
  const owner = page.getByRole('textbox', { name: /^Owner/ }).first();
  await owner.click();
  await owner.fill(answers.owner);
  await page.getByRole('option', { name: answers.owner, exact: true }).first().click();
}

/** The form's field labels as shown (the first page of the stepper). */
async function readFormLabels(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('form label')].map(label => label.textContent.replace(/\s*\*\s*$/, '').trim()),
  );
}

/** The Training history card: each aliased version's metrics and their last values. */
async function readTraining(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="trellis-run"]')].map(run => ({
      alias: run.dataset.alias,
      version: run.querySelector('[data-testid="trellis-version"]').textContent.trim(),
      reason: run.querySelector('[data-testid="trellis-reason"]')?.textContent.trim() ?? null,
      metrics: Object.fromEntries(
        [...run.querySelectorAll('[data-testid="trellis-metric"]')].map(row => [
          row.dataset.metric,
          {
            value: row.querySelector('[data-testid="trellis-value"]').textContent.trim(),
            sparkline: row.querySelectorAll('[data-testid="trellis-sparkline"] polyline').length,
          },
        ]),
      ),
    })),
  );
}

/** The Regional variants and servers card: each variant's and server's facts as shown. */
async function readVariantsAndServers(page) {
  return page.evaluate(() => {
    const root = document.querySelector('[data-testid="trellis-variants-servers"]');
    if (!root) {
      const error = document.querySelector('[data-testid="trellis-variants-error"]');
      return { error: error ? error.textContent.trim() : 'no card' };
    }
    const text = (row, id) => row.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null;
    const links = row => [...row.querySelectorAll('a')].map(a => a.getAttribute('href'));
    return {
      variants: [...root.querySelectorAll('[data-testid="trellis-variant"]')].map(row => ({
        ref: row.dataset.ref,
        text: row.querySelector('td').textContent.trim(),
        region: text(row, 'trellis-variant-region'),
        method: text(row, 'trellis-variant-method'),
        parentVersion: text(row, 'trellis-variant-parent-version'),
        version: text(row, 'trellis-variant-version'),
        dataset: text(row, 'trellis-variant-dataset'),
        links: links(row),
      })),
      noVariants: text(root, 'trellis-no-variants'),
      servers: [...root.querySelectorAll('[data-testid="trellis-server"]')].map(row => ({
        ref: row.dataset.ref,
        region: text(row, 'trellis-server-region'),
        cluster: text(row, 'trellis-server-cluster'),
        runtime: text(row, 'trellis-server-runtime'),
        serves: text(row, 'trellis-server-serves'),
        apis: text(row, 'trellis-server-apis'),
        links: links(row),
      })),
      noServers: text(root, 'trellis-no-servers-listed'),
    };
  });
}

/** The Blueprint currency card: its facts, the update request link and the releases. */
async function readCurrency(page) {
  return page.evaluate(() => {
    const root = document.querySelector('[data-testid="trellis-currency"]');
    if (!root) {
      const error = document.querySelector('[data-testid="trellis-currency-error"]');
      return { error: error ? error.textContent.trim() : 'no card' };
    }
    const text = id => root.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null;
    const link = root.querySelector('[data-testid="trellis-currency-request-link"]');
    return {
      status: root.dataset.status,
      unavailable: text('trellis-currency-unavailable'),
      blueprint: text('trellis-currency-blueprint'),
      current: text('trellis-currency-current'),
      latest: text('trellis-currency-latest'),
      behind: text('trellis-currency-behind'),
      request: text('trellis-currency-request'),
      requestUrl: link ? link.getAttribute('href') : null,
      releases: [...root.querySelectorAll('[data-testid="trellis-currency-release"]')].map(section => ({
        version: section.dataset.version,
        text: section.textContent.trim(),
      })),
    };
  });
}

/** A screenshot of the card around `inner` (its InfoCard), else of the whole page. */
async function cardScreenshot(page, inner, path) {
  const card = page.locator(inner).locator('xpath=ancestor::*[contains(@class, "MuiCard-root")][1]');
  if ((await card.count()) === 1) {
    await card.screenshot({ path });
  } else {
    await page.screenshot({ path, fullPage: true });
  }
}

async function main() {
  const options = JSON.parse(process.argv[2]);
  const browser = await chromium.launch({
    executablePath: options.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const result = { console: [], pageErrors: [] };
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  if (options.template) await context.addInitScript(installDirectoryPicker, options.template.files);
  const page = await context.newPage();
  try {
    page.setDefaultTimeout(options.timeoutMs);
    page.on('console', msg => {
      if (msg.type() === 'error') result.console.push(msg.text());
    });
    page.on('pageerror', error => result.pageErrors.push(String(error)));

    // The app's sign-in page: enter as the guest user (the app has no other provider). The
    // test backend's auth plugin has the guest provider, so the guest gets a Backstage token;
    // without it the page offers the frontend's own guest identity after a dialog: accept.
    // The choice is kept in local storage, so later page loads sign in by themselves.
    page.on('dialog', dialog => dialog.accept());
    await page.goto(options.appUrl);
    await page.getByRole('button', { name: /enter/i }).click();
    await page.waitForSelector('nav[aria-label="sidebar nav"]', { state: 'attached' });

    // A model's entity page: the card must finish loading (a row, a reason or an error).
    if (options.steps.includes('card')) {
    await page.goto(`${options.appUrl}/catalog/${options.model.replace('/', '/resource/')}`);
    await page.waitForSelector(CARD);
    await page
      .locator('[data-testid="trellis-golden-signals"] [data-testid="trellis-row"]')
      .first()
      .waitFor()
      .catch(() => undefined);
    result.headings = await page.locator('h1, h2').allTextContents();
    result.title = await page.title();
    result.card = await readCard(page);
    await page.waitForSelector(TRAINING);
    result.training = await readTraining(page);
    await page.screenshot({ path: options.screenshots.entity, fullPage: true });
    }

    // The catalog table, filtered to models.
    if (options.steps.includes('catalog')) {
    await page.goto(`${options.appUrl}/catalog?filters%5Bkind%5D=resource&filters%5Btype%5D=ai-model`);
    await page.waitForSelector('table tbody tr td a');
    await page.waitForFunction(
      expected => document.querySelectorAll('table tbody tr td a').length >= expected,
      options.models,
    );
    result.catalog = await page.evaluate(() =>
      [...document.querySelectorAll('table tbody tr')].map(row =>
        [...row.querySelectorAll('td')].map(td => td.textContent.trim()),
      ),
    );
    await page.screenshot({ path: options.screenshots.catalog, fullPage: false });
    }
    // A model's regional variants and its servers (and its variants'), from the catalog.
    if (options.steps.includes('variants')) {
      await page.goto(`${options.appUrl}/catalog/${options.model.replace('/', '/resource/')}`);
      await page.waitForSelector(
        '[data-testid="trellis-variants-servers"], [data-testid="trellis-variants-error"]',
      );
      result.variants = await readVariantsAndServers(page);
      await cardScreenshot(page, '[data-testid="trellis-variants-servers"]', options.screenshots.variants);
      // A variant's own page: the card says what it is and what it lacks.
      await page.goto(`${options.appUrl}/catalog/${options.adapter.replace('/', '/resource/')}`);
      await page.waitForSelector(
        '[data-testid="trellis-variants-servers"], [data-testid="trellis-variants-error"]',
      );
      result.adapterVariants = await readVariantsAndServers(page);
    }

    // A generated repository's Component: its blueprint currency, from Trellis.
    if (options.steps.includes('currency')) {
      await page.goto(`${options.appUrl}/catalog/${options.repository.replace('/', '/component/')}`);
      await page.waitForSelector('[data-testid="trellis-currency"], [data-testid="trellis-currency-error"]');
      result.currency = await readCurrency(page);
      await page.screenshot({ path: options.screenshots.currency, fullPage: true });
      // A Component naming a blueprint that Trellis does not know: the card says why.
      await page.goto(`${options.appUrl}/catalog/${options.unknownRepository.replace('/', '/component/')}`);
      await page.waitForSelector('[data-testid="trellis-currency"], [data-testid="trellis-currency-error"]');
      result.unknownCurrency = await readCurrency(page);
    }

    // The model's Scorecards tab: each check the stock Tech Insights client ran, pass or fail.
    if (options.steps.includes('scorecards')) {
      const entityPath = `/catalog/${options.model.replace('/', '/resource/')}`;
      await page.goto(`${options.appUrl}${entityPath}/scorecards`);
      await page.waitForSelector('[data-testid="scorecards"], [data-testid="scorecards-error"]');
      result.tabs = await readTabs(page, entityPath);
      result.scorecards = await page.evaluate(() => {
        const error = document.querySelector('[data-testid="scorecards-error"]');
        if (error) return { error: error.textContent };
        return {
          checks: [...document.querySelectorAll('[data-testid="scorecard-check"]')].map(row => ({
            id: row.dataset.checkId,
            result: row.dataset.result,
            name: row.querySelector('[data-testid="scorecard-name"]').textContent.trim(),
          })),
        };
      });
      await page.screenshot({ path: options.screenshots.scorecards, fullPage: true });
    }

    // A model server's Kubernetes tab (the stock plugin): its clusters and Deployments.
    if (options.steps.includes('kubernetes')) {
      const serverPath = `/catalog/${options.server.replace('/', '/component/')}`;
      await page.goto(`${options.appUrl}${serverPath}/kubernetes`);
      await page.getByText(options.kubernetes.waitFor).first().waitFor();
      result.serverTabs = await readTabs(page, serverPath);
      // Open each cluster's panel: its Deployments are listed inside.
      for (const cluster of options.kubernetes.clusters) {
        await page.getByText(cluster, { exact: true }).first().click();
      }
      for (const name of options.kubernetes.deployments) {
        await page.getByText(name).first().waitFor();
      }
      await page.locator('.MuiCollapse-entered').first().waitFor(); // the panel has opened
      result.kubernetes = await page.evaluate(() => document.querySelector('main')?.innerText ?? document.body.innerText);
      await page.screenshot({ path: options.screenshots.kubernetes, fullPage: true });
    }

    // The model's TechDocs tab (the stock reader): the published site's page and navigation.
    // Locators pierce the reader's shadow root, where the page is rendered.
    if (options.steps.includes('techdocs')) {
      await page.goto(`${options.appUrl}/catalog/${options.model.replace('/', '/resource/')}/docs`);
      const title = page.locator('article h1').first();
      await title.waitFor();
      await page.locator('[role="progressbar"]').first().waitFor({ state: 'detached' });
      const plain = texts => texts.map(text => text.replace(/¶$/, '').trim());
      const nav = '.md-nav--primary > .md-nav__list > .md-nav__item > .md-nav__link';
      result.techdocs = {
        title: plain([await title.textContent()])[0],
        headings: plain(await page.locator('article h2').allTextContents()),
        nav: [...new Set(plain(await page.locator(nav).allTextContents()))],
      };
      await page.screenshot({ path: options.screenshots.techdocs, fullPage: false });
    }

    // The Software Template's form, from the catalog, filled in.
    if (options.steps.includes('template')) {
      await page.goto(`${options.appUrl}/create/templates/default/ml-model`);
      await page.getByRole('textbox', { name: /^Project name/ }).first().waitFor();
      result.templateHeadings = await page.locator('h1, h2, h3, h4, h5, h6').allTextContents();
      result.formLabels = await readFormLabels(page);
      await fillTemplateForm(page, options.template.answers);
      result.formSteps = await page.evaluate(() =>
        [...document.querySelectorAll('.MuiStepLabel-label')].map(label => label.textContent.trim()),
      );
      await page.screenshot({ path: options.screenshots.template, fullPage: false });
    }

    // A dry run from the template editor: load the folder, fill the form, create, read results.
    if (options.steps.includes('dryrun')) {
      await page.goto(`${options.appUrl}/create/edit`);
      await page.getByText('Load Template Directory').click();
      await page.getByRole('textbox', { name: /^Project name/ }).first().waitFor();
      await fillTemplateForm(page, options.template.answers);
      for (;;) {
        const next = page.getByRole('button', { name: /^(Next|Review)$/ });
        if ((await next.count()) === 0) break;
        await next.first().click();
      }
      // What the editor sends to the scaffolder, so the test can send the same through its API.
      page.on('request', request => {
        if (request.url().endsWith('/api/scaffolder/v2/dry-run')) {
          result.dryRunValues = request.postDataJSON().values;
        }
      });
      await page.getByRole('button', { name: /^Create$/ }).click();
      await page.getByText('Result 1').first().waitFor();
      // The result's file tree (the last tree on the page; the editor's own comes first).
      result.dryRunFiles = await page.evaluate(() => {
        const trees = [...document.querySelectorAll('[role="tree"]')];
        return [...trees[trees.length - 1].children].map(item =>
          item.querySelector('.MuiTreeItem-label').textContent.trim(),
        );
      });
      await page.screenshot({ path: options.screenshots.dryrun, fullPage: false });
      await page.getByRole('tab', { name: 'Log' }).click();
      await page.getByText(/Finished step/).first().waitFor();
      result.dryRunLog = await page.evaluate(() => {
        const text = document.body.innerText;
        return text.slice(text.lastIndexOf('Dry-run results'));
      });
    }
  } catch (error) {
    // What the page showed instead, for the failure message.
    const text = await page.evaluate(() => document.body.innerText).catch(() => '');
    console.error(`at ${page.url()} the page shows:\n${text.slice(0, 3000)}`);
    console.error(`console errors:\n${[...result.console, ...result.pageErrors].join('\n').slice(0, 3000)}`);
    throw error;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
