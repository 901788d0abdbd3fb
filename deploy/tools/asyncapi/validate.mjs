// Validates an AsyncAPI document with the AsyncAPI parser: the specification's JSON Schema, its
// semantic rules (the same Spectral ruleset `asyncapi validate` applies), every $ref resolved
// and every Avro payload parsed as Avro. Fails on errors and warnings; prints the rest.
//
//   node validate.mjs schemas/asyncapi.yaml [more.yaml ...]

import path from 'node:path';
import { Parser, fromFile, DiagnosticSeverity } from '@asyncapi/parser';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';

const SEVERITY = ['error', 'warning', 'info', 'hint'];

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs DOCUMENT...');
  process.exit(2);
}

const parser = new Parser({ schemaParsers: [AvroSchemaParser()] });
let failed = 0;
for (const file of files) {
  const source = path.resolve(file);
  const name = path.relative(process.cwd(), source);
  const { document, diagnostics } = await fromFile(parser, source).parse();
  let problems = 0;
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join('.') : '(document)';
    const line = d.range ? `${path.relative(process.cwd(), d.source || source)}:${d.range.start.line + 1}` : name;
    console.log(`  ${SEVERITY[d.severity] ?? d.severity}  ${line}  ${d.code}  ${where}: ${d.message}`);
    if (d.severity <= DiagnosticSeverity.Warning) problems += 1;
  }
  if (document === undefined || problems > 0) {
    console.log(`  FAIL  ${name}: ${problems} error(s) or warning(s)`);
    failed += 1;
  } else {
    const channels = document.channels().all().map((c) => c.address()).join(', ');
    const messages = document.allMessages().all().length;
    console.log(`  ok    ${name}: AsyncAPI ${document.version()}, channels ${channels}; ${messages} messages`);
  }
}
process.exit(failed === 0 ? 0 : 1);
