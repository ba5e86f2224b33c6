import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The rooms of src/ and what each may import (docs/architecture.md draws the same picture). Read
 * from the source text, so a new import that breaks the layering fails here, not in review.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Room → the rooms it may import from (itself always). `errors` and `logger` are the single files. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  errors: [],
  logger: [],
  domain: ['errors'],
  config: ['errors'],
  redis: ['config', 'errors'],
  registry: ['domain', 'redis', 'errors'],
  limits: ['domain', 'redis', 'errors'],
  inbox: ['domain', 'redis', 'errors'],
  idempotency: ['domain', 'redis', 'errors'],
  receipts: ['domain', 'redis', 'errors'],
  cluster: ['registry', 'redis', 'domain', 'config', 'idempotency', 'inbox', 'receipts', 'errors'],
  edge: ['domain', 'config', 'errors'],
  grpc: ['domain', 'gen', 'config', 'errors'],
  http: ['domain', 'errors'],
  // The Prometheus metrics: observers of the domain's results; the transports declare their own observer interfaces.
  metrics: ['domain', 'errors'],
  gen: [],
  app: ['cluster', 'config', 'domain', 'edge', 'grpc', 'http', 'limits', 'metrics', 'registry', 'app-delivery', 'errors'],
  // app-delivery.ts wires the delivery guarantees (inbox, receipts, idempotency) on memory or the cluster's Redis stores.
  'app-delivery': ['cluster', 'config', 'domain', 'idempotency', 'inbox', 'receipts', 'metrics', 'errors'],
  // serve.ts runs a node as a process (config, logger, App, signals); grpc only to route grpc-js's own log into pino.
  serve: ['app', 'config', 'grpc', 'logger', 'errors'],
  main: ['serve'],
  // The operator commands: a gRPC client of a node (gen, config), never its internals; `pushgate serve` is serve.ts.
  cli: ['config', 'gen', 'domain', 'errors', 'serve'],
};

/** Packages only one room may use: the wire stays in its adapter. */
const PACKAGE_ROOMS: Record<string, readonly string[]> = {
  ioredis: ['redis'],
  'socket.io': ['edge'],
  '@grpc/grpc-js': ['grpc', 'gen', 'cli'],
  jose: ['edge', 'cli'],
  commander: ['config', 'cli'],
  'cli-table3': ['cli'],
  'rate-limiter-flexible': ['limits'],
  'prom-client': ['metrics'],
};

interface SourceFile {
  readonly path: string;
  readonly room: string;
  readonly imports: readonly string[];
  readonly packages: readonly string[];
}

function roomOf(path: string): string {
  const [first] = relative(SRC, path).split('/');
  return first!.replace(/\.ts$/, '');
}

function sourceFiles(dir: string): SourceFile[] {
  const files: SourceFile[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) {
      const text = readFileSync(path, 'utf8');
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm),
        ...text.matchAll(/import\('([^']+)'\)/g),
      ].map((match) => match[1]!);
      files.push({
        path,
        room: roomOf(path),
        imports: specifiers.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(path), s.replace(/\.js$/, '.ts'))),
        packages: specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('node:')),
      });
    }
  }
  return files;
}

const files = sourceFiles(SRC);
const handWritten = files.filter((file) => file.room !== 'gen');

describe('the rooms of src/', () => {
  it('finds every room it has rules for, and has rules for every room', () => {
    expect(new Set(files.map((f) => f.room))).toEqual(new Set(Object.keys(MAY_IMPORT)));
  });

  it.each(Object.keys(MAY_IMPORT))('%s imports only the rooms below it', (room) => {
    const allowed = new Set([room, ...MAY_IMPORT[room]!]);
    const crossings = files
      .filter((file) => file.room === room)
      .flatMap((file) =>
        file.imports
          .filter((target) => !allowed.has(roomOf(target)))
          .map((target) => `${relative(SRC, file.path)} → ${relative(SRC, target)}`),
      );
    expect(crossings).toEqual([]);
  });

  it('keeps the domain free of packages: it is plain logic over its own ports', () => {
    expect(files.filter((f) => f.room === 'domain').flatMap((f) => f.packages)).toEqual([]);
  });

  it.each(Object.entries(PACKAGE_ROOMS))('uses %s only in its adapter room', (pkg, rooms) => {
    const users = files.filter((f) => f.packages.includes(pkg) && !rooms.includes(f.room)).map((f) => relative(SRC, f.path));
    expect(users).toEqual([]);
  });

  it('has no import cycle between files', () => {
    const byPath = new Map(files.map((f) => [f.path, f]));
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (path: string, trail: string[]): void => {
      if (state.get(path) === 'done') return;
      if (state.get(path) === 'visiting') {
        cycles.push([...trail.slice(trail.indexOf(path)), path].map((p) => relative(SRC, p)).join(' → '));
        return;
      }
      state.set(path, 'visiting');
      for (const target of byPath.get(path)?.imports ?? []) visit(target, [...trail, path]);
      state.set(path, 'done');
    };
    for (const file of files) visit(file.path, []);
    expect(cycles).toEqual([]);
  });

  it('keeps every hand-written file under 300 lines', () => {
    const long = handWritten
      .map((f) => ({ file: relative(SRC, f.path), lines: readFileSync(f.path, 'utf8').split('\n').length }))
      .filter((f) => f.lines > 300);
    expect(long).toEqual([]);
  });
});
