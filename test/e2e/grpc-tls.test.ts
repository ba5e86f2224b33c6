import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { credentials, Server, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { type ListSessionsRequest, ListSessionsResponse, PushServiceService } from '../../src/gen/pushgate/v1/push_service.js';
import { certificateSubject } from '../../src/grpc/client-certificates.js';
import { apiCredentials } from '../../src/grpc/tls.js';
import { createLogger } from '../../src/logger.js';
import { type CertificateFiles, pem, TestPki } from '../support/certificates.js';
import { grpcError, TestPushClient } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { TEST_SECRET } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

let pki: TestPki;
const nodes: TestNode[] = [];
const clients: TestPushClient[] = [];

beforeAll(() => {
  pki = new TestPki();
});
afterAll(() => pki.remove());
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

/** Log lines a node wrote, parsed. */
function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

async function tlsNode(server: CertificateFiles, env: Record<string, string> = {}, logger?: Parameters<typeof startNode>[1]) {
  const node = await startNode({ PUSHGATE_GRPC_TLS_CERT: server.cert, PUSHGATE_GRPC_TLS_KEY: server.key, ...env }, logger);
  nodes.push(node);
  return node;
}

/** A TLS client of `node` (or an address) trusting the test CA, presenting `identity` if given. */
function tlsClient(node: TestNode | string, identity?: CertificateFiles): TestPushClient {
  const own = identity === undefined ? undefined : pem(identity);
  const address = (typeof node === 'string' ? node : node.grpcAddress).replace('127.0.0.1', 'localhost');
  const client = new TestPushClient(address, credentials.createSsl(readFileSync(pki.ca.cert), own?.key, own?.cert));
  clients.push(client);
  return client;
}

function list(client: TestPushClient) {
  return client.listSessions({ userId: 'u1' }, { deadline: Date.now() + 3000 });
}

/** The CN of the certificate a NEW connection to the node is served. */
function servedSubject(node: TestNode): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: node.app.boundPorts.grpcPort,
        ca: readFileSync(pki.ca.cert),
        ALPNProtocols: ['h2'],
      },
      () => {
        resolve(socket.getPeerCertificate().subject.CN as string);
        socket.destroy();
      },
    );
    socket.once('error', reject);
  });
}

/** Overwrites a served certificate and key in place, as a renewal job would. */
function replace(target: CertificateFiles, source: CertificateFiles): void {
  copyFileSync(source.cert, target.cert);
  copyFileSync(source.key, target.key);
}

/** An expired certificate that the CA did sign: refused for its dates, nothing else. */
function expiredButGenuine(): CertificateFiles {
  const expired = pki.expiredClientCert('billing');
  const cert = new X509Certificate(readFileSync(expired.cert));
  expect(cert.verify(new X509Certificate(readFileSync(pki.ca.cert)).publicKey)).toBe(true);
  expect(new Date(cert.validTo).getTime()).toBeLessThan(Date.now());
  return expired;
}

function tlsEnv(server: CertificateFiles, clientCa?: string): Record<string, string> {
  const env = { PUSHGATE_GRPC_TLS_CERT: server.cert, PUSHGATE_GRPC_TLS_KEY: server.key };
  return clientCa === undefined ? env : { ...env, PUSHGATE_GRPC_TLS_CLIENT_CA: clientCa };
}

describe('TLS', () => {
  it('serves a TLS client and refuses a plaintext one', async () => {
    const node = await tlsNode(pki.serverCert('server'));
    expect((await list(tlsClient(node))).sessions).toEqual([]);
    expect((await grpcError(list(node.client))).code).toBe(status.UNAVAILABLE);
  });

  it('refuses to start when a file cannot be read or used, naming the setting', async () => {
    const server = pki.serverCert('server');
    const other = pki.serverCert('other');
    await expect(tlsNode({ cert: pki.dir, key: server.key })).rejects.toThrow(/PUSHGATE_GRPC_TLS_CERT .*cannot be read/);
    await expect(tlsNode({ cert: server.cert, key: other.key })).rejects.toThrow(/PUSHGATE_GRPC_TLS_KEY .*key values mismatch/);
    await expect(tlsNode({ cert: server.key, key: server.key })).rejects.toThrow(/PUSHGATE_GRPC_TLS_CERT .*no PEM certificate/);
    await expect(tlsNode(server, { PUSHGATE_GRPC_TLS_CLIENT_CA: server.key })).rejects.toThrow(/PUSHGATE_GRPC_TLS_CLIENT_CA .*no PEM/);
  });
});

describe('mutual TLS', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startNode({ ...tlsEnv(pki.serverCert('server'), pki.ca.cert), PUSHGATE_GRPC_CLIENT_CERT_SCOPES: 'billing=read,push' });
  });
  afterAll(() => node.stop());

  it('accepts a client certificate the CA signed', async () => {
    expect((await list(tlsClient(node, pki.clientCert('billing')))).sessions).toEqual([]);
  });

  it("gives a certificate its CN's scopes: other methods, and a CN with no scopes, get PERMISSION_DENIED", async () => {
    const billing = tlsClient(node, pki.clientCert('billing'));
    expect((await billing.pushToUser({ userId: 'u1', event: 'note', noAck: true })).deliveries).toEqual([]);
    const kick = await grpcError(billing.disconnectSessions({ userId: 'u1' }));
    expect(kick.code).toBe(status.PERMISSION_DENIED);
    expect(kick.metadata.get('pushgate-error-code')).toEqual(['permission_denied']);
    expect((await grpcError(list(tlsClient(node, pki.clientCert('stranger'))))).code).toBe(status.PERMISSION_DENIED);
  });

  it.each([
    ['no client certificate', () => undefined],
    ['a certificate from another CA', () => pki.clientCert('billing', pki.otherCa)],
    ['an expired certificate', () => expiredButGenuine()],
  ])('refuses a caller with %s', async (_, identity) => {
    expect((await grpcError(list(tlsClient(node, identity())))).code).toBe(status.UNAVAILABLE);
  });
});

describe('certificate reload', () => {
  it('serves a new certificate to new connections on reload(), and open connections keep working', async () => {
    const { lines, logger } = logCapture();
    const served = pki.serverCert('server-1');
    const node = await tlsNode(served, {}, logger);
    const client = tlsClient(node);
    await list(client);
    expect(await servedSubject(node)).toBe('server-1');

    replace(served, pki.serverCert('server-2'));
    node.app.apiCredentials.reload();

    expect(await servedSubject(node)).toBe('server-2');
    expect((await list(client)).sessions).toEqual([]);
    expect((await list(tlsClient(node))).sessions).toEqual([]);
    const reloaded = lines.find((line) => line.msg === 'gRPC TLS certificate reloaded');
    expect(reloaded).toMatchObject({ level: 30, subject: 'CN=server-2', expiresAt: expect.stringMatching(/^\d{4}-/) });
    expect(JSON.stringify(lines)).not.toMatch(/PRIVATE KEY/);
  });

  it('picks up changed files on its own every PUSHGATE_GRPC_TLS_RELOAD_MS', async () => {
    const served = pki.serverCert('server-1');
    const node = await tlsNode(served, { PUSHGATE_GRPC_TLS_RELOAD_MS: '1000' });
    expect(await servedSubject(node)).toBe('server-1');
    replace(served, pki.serverCert('server-2'));
    await waitFor('the new certificate', async () => (await servedSubject(node)) === 'server-2', { timeoutMs: 4000, intervalMs: 100 });
  });

  it('keeps the old certificate, with a warning naming the file, when the new files are not a usable pair', async () => {
    const { lines, logger } = logCapture();
    const served = pki.serverCert('server-1');
    const node = await tlsNode(served, {}, logger);
    const client = tlsClient(node);
    await list(client);
    const warnings = () => lines.filter((line) => line.level === 40);

    writeFileSync(served.cert, 'not a certificate');
    node.app.apiCredentials.reload();
    expect(warnings().at(-1)).toMatchObject({ setting: 'PUSHGATE_GRPC_TLS_CERT', file: served.cert });

    copyFileSync(pki.serverCert('server-2').cert, served.cert); // a new certificate, the old key
    node.app.apiCredentials.reload();
    expect(warnings().at(-1)).toMatchObject({ setting: 'PUSHGATE_GRPC_TLS_KEY', file: served.key });

    expect(await servedSubject(node)).toBe('server-1');
    expect((await list(client)).sessions).toEqual([]);
    expect((await list(tlsClient(node))).sessions).toEqual([]);
    expect(lines.some((line) => line.msg === 'gRPC TLS certificate reloaded')).toBe(false);
  });

  it('reloads the client CA: callers of a newly trusted CA get in', async () => {
    const served = pki.serverCert('server');
    const trusted = `${pki.dir}/trusted-ca.pem`;
    copyFileSync(pki.ca.cert, trusted);
    const node = await tlsNode(served, {
      PUSHGATE_GRPC_TLS_CLIENT_CA: trusted,
      PUSHGATE_GRPC_CLIENT_CERT_SCOPES: 'partner=read;billing=read',
    });
    const outsider = pki.clientCert('partner', pki.otherCa);
    expect((await grpcError(list(tlsClient(node, outsider)))).code).toBe(status.UNAVAILABLE);

    writeFileSync(trusted, Buffer.concat([readFileSync(pki.ca.cert), readFileSync(pki.otherCa.cert)]));
    node.app.apiCredentials.reload();
    expect((await list(tlsClient(node, outsider))).sessions).toEqual([]);
    expect((await list(tlsClient(node, pki.clientCert('billing')))).sessions).toEqual([]);
  });
});

describe('certificateSubject on a real call', () => {
  /** A bare grpc-js server on the same credentials, reporting what certificateSubject makes of each caller. */
  async function subjectServer(env: Record<string, string>) {
    const config = parseConfig([], { PUSHGATE_JWT_SECRET: TEST_SECRET, ...env });
    const tls = apiCredentials(config.api, createLogger('silent'));
    const server = new Server();
    const seen: (string | undefined)[] = [];
    server.addService(PushServiceService, {
      listSessions: (call: ServerUnaryCall<ListSessionsRequest, ListSessionsResponse>, done: sendUnaryData<ListSessionsResponse>) => {
        seen.push(certificateSubject(call.getAuthContext()));
        done(null, ListSessionsResponse.fromPartial({}));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', tls.credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    const close = () => {
      tls.close();
      server.forceShutdown();
    };
    return { address: `127.0.0.1:${port}`, seen, close };
  }

  it('is the CN of a verified client certificate, and undefined without one', async () => {
    const mutual = await subjectServer(tlsEnv(pki.serverCert('server'), pki.ca.cert));
    const plain = await subjectServer(tlsEnv(pki.serverCert('server')));
    try {
      await list(tlsClient(mutual.address, pki.clientCert('billing')));
      await list(tlsClient(plain.address));
      await list(tlsClient(plain.address, pki.clientCert('ops'))); // presented, but not asked for: nobody
      expect(mutual.seen).toEqual(['billing']);
      expect(plain.seen).toEqual([undefined, undefined]);
    } finally {
      mutual.close();
      plain.close();
    }
  });
});
