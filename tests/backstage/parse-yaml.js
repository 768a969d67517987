/*
 * Reads YAML the way Backstage's catalog reads a location file, without a
 * running backend.
 *
 * Reads a JSON array of base64-encoded files on stdin and prints a JSON array
 * on stdout with one entry per file, in order: the file's documents, each
 *
 *   {"value": <the document as JSON>, "errors": ["..."]}
 *
 * Each file is decoded as UTF-8 and parsed with the `yaml` package exactly as
 * `parseEntityYaml` in @backstage/plugin-catalog-node does: YAML 1.2, core
 * schema, `parseAllDocuments(text, {merge: false})`, then `toJSON()`. A
 * document with errors is one Backstage would refuse. Many files go through
 * one process, so a caller pays Node's start-up once per batch.
 */
'use strict';

const YAML = require('yaml');

function parse(text) {
  return YAML.parseAllDocuments(text, { merge: false })
    .filter(document => document)
    .map(document => ({
      value: document.errors.length ? null : document.toJSON(),
      errors: document.errors.map(error => error.message),
    }));
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function main() {
  const input = JSON.parse(await readStdin());
  if (!Array.isArray(input) || !input.every(item => typeof item === 'string')) {
    throw new TypeError('Expected a JSON array of base64 strings on stdin');
  }
  const results = input.map(item => parse(Buffer.from(item, 'base64').toString('utf8')));
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch(error => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
