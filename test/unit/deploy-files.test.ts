import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { DEVICE_SCRIPT_FILE } from '../../src/http/device-script.js';

/**
 * The container and Kubernetes files, checked without a container runtime (none on the project's
 * machines): the Dockerfile's stages, user, healthcheck and command; the compose file's cluster and
 * its load balancer; the Kubernetes probes, drain timing and selectors; and that every setting they
 * name is one pushgate reads, every file they copy or mount exists and is not excluded from the
 * build context.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Every PUSHGATE_* / REDIS_URL / LOG_LEVEL setting the config tables define. */
const KNOWN_SETTINGS = new Set(
  readdirSync(join(ROOT, 'src/config'))
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) => [...read(`src/config/${file}`).matchAll(/env: '([A-Z_]+)'/g)].map((m) => m[1]!)),
);
const SHUTDOWN_GRACE_MS = 10_000;

function expectKnownSettings(names: readonly string[]): void {
  expect(KNOWN_SETTINGS.size).toBeGreaterThan(20);
  for (const name of names) expect(KNOWN_SETTINGS, `${name} is not a pushgate setting`).toContain(name);
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile').replace(/\\\n\s*/g, ' ');
  const lines = dockerfile.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
  const stages = lines.filter((line) => line.startsWith('FROM '));
  const runtime = lines.slice(lines.lastIndexOf(stages.at(-1)!));
  /** Each stage's lines, from its FROM to the next. */
  const stageLines = stages.map((stage, i) =>
    lines.slice(lines.indexOf(stage), i + 1 < stages.length ? lines.indexOf(stages[i + 1]!) : undefined),
  );
  const buildStage = stageLines.find((stage) => stage.includes('RUN npm run build'));
  /** What a stage's COPY lines (from the context, not another stage) bring in. */
  const copiedIn = (stage: readonly string[]): string[] =>
    stage.filter((line) => line.startsWith('COPY ') && !line.includes('--from=')).flatMap((line) => line.split(/\s+/).slice(1, -1));

  it('builds in stages on Node 24 and runs dist/main.js as a non-root user', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    expect(stages.length).toBeGreaterThanOrEqual(3);
    for (const stage of stages) expect(stage).toMatch(/^FROM \$\{NODE_IMAGE\}/);
    const user = runtime.find((line) => line.startsWith('USER '));
    expect(user).toBeDefined();
    expect(user).not.toMatch(/USER (root|0)\b/);
    expect(runtime.at(-1)).toBe('CMD ["node", "dist/main.js"]');
    expect(runtime.some((line) => /^RUN npm ci/.test(line))).toBe(false);
    expect(dockerfile).toMatch(/RUN npm ci --omit=dev/);
    expect(runtime.some((line) => line.startsWith('COPY --from=deps /app/node_modules'))).toBe(true);
  });

  it('checks /healthz on the HTTP port it exposes, with both ports bound off loopback', () => {
    const healthcheck = runtime.find((line) => line.startsWith('HEALTHCHECK '));
    expect(healthcheck).toMatch(/CMD \["node", "-e", ".*\/healthz/);
    expect(runtime.find((line) => line.startsWith('EXPOSE '))).toBe('EXPOSE 3000 50051');
    const env = runtime.find((line) => line.startsWith('ENV '))!;
    expect(env).toContain('PUSHGATE_HTTP_PORT=3000');
    expect(env).toContain('PUSHGATE_GRPC_PORT=50051');
    expect(env).toContain('PUSHGATE_GRPC_HOST=0.0.0.0');
    expectKnownSettings([...env.matchAll(/(PUSHGATE_[A-Z_]+)=/g)].map((m) => m[1]!));
  });

  it('copies every workspace’s package.json before each npm ci: the lock lists the workspaces', () => {
    const workspaces = readdirSync(join(ROOT, 'packages')).filter((dir) => existsSync(join(ROOT, 'packages', dir, 'package.json')));
    expect(workspaces).toContain('device');
    const installing = stageLines.filter((stage) => stage.some((line) => /^RUN npm ci\b/.test(line)));
    expect(installing).toHaveLength(2);
    for (const stage of installing) {
      const beforeCi = stage.slice(
        0,
        stage.findIndex((line) => /^RUN npm ci\b/.test(line)),
      );
      for (const dir of workspaces) expect(beforeCi).toContain(`COPY packages/${dir}/package.json packages/${dir}/`);
    }
  });

  it('gives the build stage every file `npm run build` reads, the device package’s included', () => {
    expect(buildStage).toBeDefined();
    const copied = copiedIn(buildStage!);
    const inContext = (file: string): boolean =>
      copied.some((source) => file === source || file.startsWith(`${source.replace(/\/$/, '')}/`));
    const build = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build!;
    expect(build).toContain('tsc -p packages/device/tsconfig.json');
    const scripts = [...build.matchAll(/\bnode (scripts\/[\w.-]+)/g)].map((m) => m[1]!);
    const projects = [...build.matchAll(/\btsc -p ([\w./-]+)/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    for (const file of [...scripts, ...projects]) expect(inContext(file), `${file} is copied into the build stage`).toBe(true);
    for (const project of projects) {
      const dir = posix.dirname(project);
      const config = JSON.parse(read(project)) as { extends?: string; include?: string[] };
      if (config.extends !== undefined) expect(inContext(posix.join(dir, config.extends))).toBe(true);
      for (const include of config.include ?? []) expect(inContext(posix.join(dir, include)), `${project} includes ${include}`).toBe(true);
    }
  });

  it('ships the device library’s browser file where dist/http/device-script.js looks for it', () => {
    const workdir = runtime.find((line) => line.startsWith('WORKDIR '))!.split(/\s+/)[1]!;
    expect(workdir).toBe('/app');
    // The server finds the file relative to its own module: src/http in the checkout, dist/http in the image.
    const fromModule = relative(join(ROOT, 'src/http'), fileURLToPath(DEVICE_SCRIPT_FILE)).split('\\').join('/');
    const expected = posix.join(workdir, 'dist/http', fromModule);
    expect(expected).toBe('/app/packages/device/dist/core.js');
    const shipped = runtime
      .filter((line) => line.startsWith('COPY --from=build '))
      .map((line) => line.split(/\s+/).slice(2))
      .find(([, dest]) => posix.resolve(workdir, dest!) === expected);
    expect(shipped, `the runtime stage copies the built ${expected}`).toBeDefined();
    // …from where the build stage's `npm run build` (tsc -p packages/device/tsconfig.json, outDir dist) writes it.
    expect(shipped![0]).toBe('/app/packages/device/dist/core.js');
    expect((JSON.parse(read('packages/device/tsconfig.json')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir).toBe(
      'dist',
    );
    expect(existsSync(join(ROOT, 'packages/device/src/core.ts'))).toBe(true);
  });

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    const sources = lines
      .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
      .flatMap((line) => line.split(/\s+/).slice(1, -1));
    expect(sources).toContain('src');
    expect(sources).toContain('proto');
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
      const top = source.split('/')[0]!;
      expect(ignored, `${source} is excluded by .dockerignore`).not.toContain(top);
    }
    for (const heavy of ['node_modules', 'dist', '.git', 'test']) expect(ignored).toContain(heavy);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as {
    services: Record<string, Service>;
  };
  interface Service {
    build?: string;
    image?: string;
    environment?: Record<string, string>;
    ports?: string[];
    volumes?: string[];
    depends_on?: unknown;
    stop_grace_period?: string;
  }
  const nodes = Object.entries(compose.services).filter(([name]) => name.startsWith('pushgate-'));

  it('runs Redis and three pushgate nodes built from the Dockerfile, each with its own id', () => {
    expect(compose.services.redis?.image).toMatch(/^redis:7/);
    expect(nodes.map(([name]) => name)).toEqual(['pushgate-1', 'pushgate-2', 'pushgate-3']);
    for (const [name, service] of nodes) {
      expect(service.build).toBe('.');
      expect(service.environment?.REDIS_URL).toBe('redis://redis:6379');
      expect(service.environment?.PUSHGATE_NODE_ID).toBe(name);
      expect(service.environment?.PUSHGATE_JWT_SECRET).toMatch(/^\$\{PUSHGATE_JWT_SECRET:\?/);
      expect(service.environment?.PUSHGATE_API_KEYS).toMatch(/^\$\{PUSHGATE_API_KEYS:\?/);
      expect(Number.parseInt(service.stop_grace_period ?? '0', 10) * 1000).toBeGreaterThan(SHUTDOWN_GRACE_MS);
      expect(service.ports, 'nodes are reached through the load balancer only').toBeUndefined();
      expectKnownSettings(Object.keys(service.environment ?? {}));
    }
  });

  it('puts a sticky load balancer in front of both ports of every node', () => {
    const lb = compose.services.lb!;
    expect(lb.ports).toEqual(['3000:3000', '50051:50051']);
    const mount = lb.volumes?.[0]?.split(':') ?? [];
    expect(mount[1]).toBe('/etc/nginx/nginx.conf');
    const nginx = read(mount[0]!);
    const upstream = (name: string): string => new RegExp(`upstream ${name} \\{([^}]*)\\}`).exec(nginx)?.[1] ?? '';
    expect(upstream('pushgate_socketio')).toContain('ip_hash;');
    for (const [name] of nodes) {
      expect(upstream('pushgate_socketio')).toContain(`server ${name}:3000`);
      expect(upstream('pushgate_grpc')).toContain(`server ${name}:50051`);
    }
    expect(nginx).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(nginx).toMatch(/listen 50051 http2;[\s\S]*grpc_pass grpc:\/\/pushgate_grpc;/);
  });
});

describe('deploy/kubernetes', () => {
  const docs = readdirSync(join(ROOT, 'deploy/kubernetes'))
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) => parseAllDocuments(read(`deploy/kubernetes/${file}`)).map((doc) => doc.toJS() as Manifest));
  // biome-ignore lint/suspicious/noExplicitAny: a manifest is free-form YAML; the checks below name the paths they read.
  type Manifest = { kind: string; metadata: { name: string }; spec: any };
  const byKind = (kind: string): Manifest => {
    const found = docs.find((doc) => doc.kind === kind);
    if (found === undefined) throw new Error(`no ${kind} in deploy/kubernetes`);
    return found;
  };
  const deployment = byKind('Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
  const env = Object.fromEntries((container.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));

  it('probes readiness on /readyz and liveness on /healthz, on the HTTP port', () => {
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.ports).toEqual([
      { name: 'http', containerPort: 3000 },
      { name: 'grpc', containerPort: 50051 },
    ]);
    expectKnownSettings(Object.keys(env));
  });

  it('runs as non-root and leaves time for the preStop wait and the whole drain', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    const preStop = container.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const graceMs = Number(env.PUSHGATE_SHUTDOWN_GRACE_MS);
    expect(graceMs).toBe(SHUTDOWN_GRACE_MS);
    // preStop, then the drain, then up to 2 s for the gRPC server to stop (App.drain).
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(preStop[1]) + graceMs / 1000 + 2);
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(3);
  });

  it('selects the pods from its Service and PodDisruptionBudget, on ports the pods name', () => {
    const service = byKind('Service');
    const pdb = byKind('PodDisruptionBudget');
    expect(deployment.spec.selector.matchLabels).toEqual(podLabels);
    expect(podLabels).toMatchObject(service.spec.selector);
    expect(podLabels).toMatchObject(pdb.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(service.spec.sessionAffinity).toBe('ClientIP');
    const portNames = (container.ports as { name: string }[]).map((p) => p.name);
    for (const port of service.spec.ports as { targetPort: string }[]) expect(portNames).toContain(port.targetPort);
  });
});
