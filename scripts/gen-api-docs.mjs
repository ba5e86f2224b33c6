// Writes docs/api.md, the API reference, from the comments in proto/pushgate/v1/*.proto.
// Run by `npm run gen` after buf; `node scripts/gen-api-docs.mjs --check` exits 1 (naming the
// file) when docs/api.md differs from what the protos say, which a unit test and CI rely on.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PROTO_DIR = join(ROOT, 'proto');
const PACKAGE_DIR = 'pushgate/v1';
const OUT = join(ROOT, 'docs/api.md');

/** The reference as markdown: services, then messages and enums, each in the order the files declare them. */
export function renderApiDocs() {
  const files = readdirSync(join(PROTO_DIR, PACKAGE_DIR))
    .filter((name) => name.endsWith('.proto'))
    .sort();
  const root = new protobuf.Root();
  // Imports of our own files resolve under proto/; google/protobuf/* are protobufjs's bundled copies.
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
  root.loadSync(
    files.map((file) => join(PACKAGE_DIR, file)),
    { keepCase: true, alternateCommentMode: true },
  );
  root.resolveAll();
  // Grouped by the file that declares each type (protobufjs records it), in declaration order.
  const declared = allNested(root).filter((obj) => obj.fullName.startsWith('.pushgate.'));
  const perFile = new Map(files.map((file) => [file, declared.filter((obj) => obj.filename?.endsWith(`${PACKAGE_DIR}/${file}`))]));

  const ours = new Set([...perFile.values()].flat().map((obj) => obj.name));
  const typeRef = (type) => (ours.has(type) ? `[${type}](#${type.toLowerCase()})` : `\`${type}\``);
  const out = [
    '# pushgate API reference',
    '',
    '<!-- Generated from proto/pushgate/v1/*.proto by `npm run gen` (scripts/gen-api-docs.mjs). Do not edit: change the .proto comments. -->',
    '',
    'Package `pushgate.v1`. Callers authenticate with `authorization: Bearer <key>` metadata or a client',
    'certificate; errors carry pushgate’s own code in the `pushgate-error-code` trailer.',
    '',
  ];
  const services = [...perFile.values()].flat().filter((obj) => obj instanceof protobuf.Service);
  const types = [...perFile.entries()].flatMap(([file, objs]) =>
    objs.filter((obj) => !(obj instanceof protobuf.Service)).map((obj) => [file, obj]),
  );

  out.push('## Services', '');
  for (const service of services) {
    out.push(`### ${service.name}`, '', prose(service.comment), '');
    out.push('| method | request | response |', '|---|---|---|');
    for (const method of service.methodsArray) {
      const response = method.responseStream ? `stream ${typeRef(method.responseType)}` : typeRef(method.responseType);
      out.push(
        `| [${method.name}](#${service.name.toLowerCase()}${method.name.toLowerCase()}) | ${typeRef(method.requestType)} | ${response} |`,
      );
    }
    out.push('');
    for (const method of service.methodsArray) {
      out.push(`#### ${service.name}.${method.name}`, '');
      const stream = method.responseStream ? 'stream ' : '';
      out.push('```proto', `rpc ${method.name}(${method.requestType}) returns (${stream}${method.responseType});`, '```', '');
      out.push(prose(method.comment), '');
    }
  }

  out.push('## Messages', '');
  for (const [file, type] of types.filter(([, obj]) => obj instanceof protobuf.Type)) {
    out.push(`### ${type.name}`, '', `\`${PACKAGE_DIR}/${file}\`. ${prose(type.comment)}`, '');
    out.push('| field | type | number | description |', '|---|---|---|---|');
    for (const field of type.fieldsArray) {
      const label = field.repeated ? 'repeated ' : field.options?.proto3_optional ? 'optional ' : '';
      out.push(`| \`${field.name}\` | ${label}${typeRef(field.type)} | ${field.id} | ${cell(field.comment)} |`);
    }
    out.push('');
  }

  out.push('## Enums', '');
  for (const [file, type] of types.filter(([, obj]) => obj instanceof protobuf.Enum)) {
    out.push(`### ${type.name}`, '', `\`${PACKAGE_DIR}/${file}\`. ${prose(type.comment)}`, '');
    out.push('| value | number | description |', '|---|---|---|');
    for (const [name, number] of Object.entries(type.values)) out.push(`| \`${name}\` | ${number} | ${cell(type.comments[name])} |`);
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Every service, message and enum under `namespace`, depth first. */
function allNested(namespace) {
  return (namespace.nestedArray ?? [])
    .flatMap((obj) => [obj, ...allNested(obj)])
    .filter((obj) => obj instanceof protobuf.Type || obj instanceof protobuf.Service || obj instanceof protobuf.Enum);
}

/** A comment as one paragraph (the .proto wraps lines at 100 columns). */
function prose(comment) {
  return (comment ?? '').replace(/\s*\n\s*/g, ' ').trim();
}

/** A comment inside a table cell. */
function cell(comment) {
  return prose(comment).replaceAll('|', '\\|');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rendered = renderApiDocs();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OUT, 'utf8');
    } catch {
      // missing: stale
    }
    if (current !== rendered) {
      process.stderr.write('docs/api.md is out of date with proto/: run `npm run gen` and commit the result\n');
      process.exit(1);
    }
  } else {
    writeFileSync(OUT, rendered);
  }
}
