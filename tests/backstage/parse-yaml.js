/*
 * Reads YAML the way Backstage's catalog reads a location file, without a
 * running backend.
 *
 * Reads requests from stdin, one per line: a JSON array of base64-encoded
 * files. Answers each with one line on stdout, a JSON array with one entry per
 * file, in order: the file's documents, each
 *
 *   {"value": <the document as JSON>, "errors": ["..."]}
 *
 * Each file is decoded as UTF-8 and parsed with the `yaml` package exactly as
 * `parseEntityYaml` in @backstage/plugin-catalog-node does: YAML 1.2, core
 * schema, `parseAllDocuments(text, {merge: false})`, then `toJSON()`. A
 * document with errors is one Backstage would refuse. The process serves
 * requests until stdin closes, so a caller pays Node's start-up once.
 */
'use strict';

const readline = require('node:readline');
const YAML = require('yaml');

function parse(text) {
  return YAML.parseAllDocuments(text, { merge: false })
    .filter(document => document)
    .map(document => ({
      value: document.errors.length ? null : document.toJSON(),
      errors: document.errors.map(error => error.message),
    }));
}

function answer(line) {
  const input = JSON.parse(line);
  if (!Array.isArray(input) || !input.every(item => typeof item === 'string')) {
    throw new TypeError('Expected a JSON array of base64 strings');
  }
  return input.map(item => parse(Buffer.from(item, 'base64').toString('utf8')));
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) {
      process.stdout.write(`${JSON.stringify(answer(line))}\n`);
    }
  }
}

main().catch(error => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
