import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { ConfigurationErrorCode } from './errors';

/** Violations one SCHEMA_INVALID message lists at most (the rest are counted). */
const MAX_LISTED_VIOLATIONS = 20;

/**
 * JSON Schema validation of configuration values, by ajv. The draft follows the schema's
 * `$schema`: draft-07 (and 06) as written, 2019-09, and 2020-12, which is also the draft of a
 * schema that names none (what pydantic and zod 4 emit). Unknown keywords and formats are
 * ignored rather than refused, as a worker's schema may carry annotations of its own.
 *
 * Each schema gets a fresh ajv instance: schemas are registered rarely, and two workers'
 * schemas may share an `$id` that one instance would refuse to hold twice.
 */
export function compileSchema(id: string, schema: Json): ValidateFunction {
  if (typeof schema !== 'object' && typeof schema !== 'boolean') {
    throw new EngineError(
      ConfigurationErrorCode.schemaInvalid,
      `The schema of '${id}' must be a JSON Schema object (or a boolean), got ${schema === null ? 'null' : typeof schema}.`,
    );
  }
  const options = { allErrors: true, strict: false, logger: false as const };
  const draft = schema !== null && typeof schema === 'object' && !Array.isArray(schema) ? schema['$schema'] : undefined;
  const ajv =
    typeof draft === 'string' && /draft-0[67]/.test(draft)
      ? new Ajv(options)
      : typeof draft === 'string' && draft.includes('2019-09')
        ? new Ajv2019(options)
        : new Ajv2020(options);
  try {
    return ajv.compile(schema as object | boolean);
  } catch (err) {
    throw new EngineError(
      ConfigurationErrorCode.schemaInvalid,
      `The schema of '${id}' is not a valid JSON Schema: ${(err as Error).message}`,
    );
  }
}

/** Throws SCHEMA_INVALID, listing each violation, unless `value` satisfies `validate`. */
export function checkValue(id: string, validate: ValidateFunction, value: Json): void {
  if (validate(value)) return;
  throw new EngineError(
    ConfigurationErrorCode.schemaInvalid,
    `The value of '${id}' does not match its schema: ${describeViolations(validate.errors ?? [])}`,
  );
}

function describeViolations(errors: ErrorObject[]): string {
  const listed = errors
    .slice(0, MAX_LISTED_VIOLATIONS)
    .map((e) => `${e.instancePath === '' ? '(root)' : e.instancePath} ${e.message ?? 'is invalid'}${detail(e)}`);
  if (errors.length > MAX_LISTED_VIOLATIONS) listed.push(`and ${errors.length - MAX_LISTED_VIOLATIONS} more`);
  return listed.join('; ');
}

function detail(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') return ` (${String(params['additionalProperty'])})`;
  if (error.keyword === 'enum') return ` (${JSON.stringify(params['allowedValues'])})`;
  return '';
}
