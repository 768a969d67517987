/*
 * Validates Backstage catalog entities the way the catalog does, without a
 * running backend.
 *
 * Reads a JSON array of entities on stdin and prints a JSON array on stdout
 * with one result per input entity, in order:
 *
 *   {"ref": "kind:namespace/name", "ok": true|false, "errors": ["..."]}
 *
 * Steps, mirroring @backstage/plugin-catalog-backend's processing:
 *   1. the default entity policies (SchemaValid, DefaultNamespace,
 *      NoForeignRootFields, FieldFormat), in the catalog's order;
 *   2. the full entity schema;
 *   3. the kind validators: the built-in kinds of @backstage/catalog-model and
 *      Template (scaffolder.backstage.io/v1beta3). A validator that throws is
 *      an error; an entity that no validator recognizes is an error.
 *
 * All failing steps are reported, so one run shows every problem. The exit
 * code is 0 whenever the input could be read, even if entities are invalid;
 * it is non-zero only when the input is unusable or the script crashes.
 */
'use strict';

const {
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  entitySchemaValidator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  stringifyEntityRef,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
} = require('@backstage/catalog-model');
const {
  templateEntityV1beta3Validator,
} = require('@backstage/plugin-scaffolder-common');

const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(),
]);

const validateSchema = entitySchemaValidator();

const kindValidators = [
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
  systemEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  templateEntityV1beta3Validator,
];

function message(error) {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

function refOf(entity) {
  try {
    return stringifyEntityRef(entity);
  } catch {
    const kind = typeof entity?.kind === 'string' ? entity.kind.toLowerCase() : '?';
    const meta = entity?.metadata ?? {};
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
    const name = typeof meta.name === 'string' ? meta.name : '?';
    return `${kind}:${namespace}/${name}`;
  }
}

async function validate(entity) {
  const errors = [];
  if (entity === null || typeof entity !== 'object' || Array.isArray(entity)) {
    return { ref: refOf(entity), ok: false, errors: ['Entity is not an object'] };
  }
  // Policies may fill in defaults (the namespace); they work on a copy.
  let enforced = structuredClone(entity);
  try {
    enforced = (await policy.enforce(enforced)) ?? enforced;
  } catch (error) {
    errors.push(`Policy check failed: ${message(error)}`);
    enforced = structuredClone(entity);
  }
  try {
    validateSchema(enforced);
  } catch (error) {
    errors.push(`Entity schema: ${message(error)}`);
  }
  let recognized = false;
  for (const validator of kindValidators) {
    try {
      if (await validator.check(enforced)) {
        recognized = true;
      }
    } catch (error) {
      recognized = true;
      errors.push(`Kind validation of ${entity.kind} failed: ${message(error)}`);
    }
  }
  if (!recognized) {
    errors.push(
      `No validator recognized kind ${JSON.stringify(entity.kind)} with apiVersion ` +
        `${JSON.stringify(entity.apiVersion)}`,
    );
  }
  return { ref: refOf(entity), ok: errors.length === 0, errors };
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
  if (!Array.isArray(input)) {
    throw new TypeError('Expected a JSON array of entities on stdin');
  }
  const results = [];
  for (const entity of input) {
    results.push(await validate(entity));
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch(error => {
  process.stderr.write(`validate.js: ${error?.stack ?? error}\n`);
  process.exit(2);
});
