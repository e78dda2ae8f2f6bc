// The Grafana dashboard JSON Schema, from Grafana's own published types (npm @grafana/schema).
//
//   node scripts/tools/grafana-schema.mjs generate NODE_DIR OUT.json
//       NODE_DIR holds node_modules with @grafana/schema and ts-json-schema-generator; writes the
//       JSON Schema of the classic dashboard model (`Dashboard` in raw/dashboard/x/types.gen).
//   node scripts/tools/grafana-schema.mjs validate SCHEMA.json NODE_MODULES FILE.json...
//       validates each dashboard with ajv (+ ajv-formats); prints one line per problem and exits 1
//       when any file is invalid.
//
// Used by scripts/tools/telemetry.sh (generate) and tests/it/telemetry.rs (validate).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [command, ...args] = process.argv.slice(2);

if (command === 'generate') {
  const [nodeDir, out] = args;
  const require = createRequire(path.join(path.resolve(nodeDir), 'node_modules', 'noop.js'));
  const { createGenerator } = require('ts-json-schema-generator');
  const types = path.join(path.resolve(nodeDir), 'node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts');
  const schema = createGenerator({
    path: types,
    type: 'Dashboard',
    skipTypeCheck: true,
    expose: 'all',
    topRef: true,
    additionalProperties: true,
  }).createSchema('Dashboard');
  const version = require('@grafana/schema/package.json').version;
  schema.$comment = `generated from @grafana/schema ${version} (raw/dashboard/x/types.gen.d.ts, type Dashboard)`;
  fs.writeFileSync(out, JSON.stringify(schema, null, 1));
} else if (command === 'validate') {
  const [schemaFile, nodeModules, ...files] = args;
  const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
  const Ajv = require('ajv');
  const addFormats = require('ajv-formats');
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
  let failed = false;
  for (const file of files) {
    const ok = validate(JSON.parse(fs.readFileSync(file, 'utf8')));
    if (!ok) {
      failed = true;
      for (const e of validate.errors) console.log(`${file}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    } else {
      console.log(`${file}: valid`);
    }
  }
  process.exit(failed ? 1 : 0);
} else {
  console.error('usage: grafana-schema.mjs generate NODE_DIR OUT | validate SCHEMA NODE_MODULES FILE...');
  process.exit(2);
}
