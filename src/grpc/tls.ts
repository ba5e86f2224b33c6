import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { experimental, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ApiConfig } from '../config/config.js';

/** The gRPC server's transport security, with what shutdown and SIGHUP need. */
export interface ApiCredentials {
  readonly credentials: ServerCredentials;
  /** Re-reads the certificate files now (SIGHUP); connections stay up. */
  reload(): void;
  /** Stops watching the certificate files. */
  close(): void;
}

/**
 * Insecure unless PUSHGATE_GRPC_TLS_CERT/_KEY are set (TLS), with PUSHGATE_GRPC_TLS_CLIENT_CA:
 * mutual TLS, where a caller without a certificate that CA signed (and still valid) is refused
 * during the handshake. Files that cannot be read or used throw an Error naming the setting.
 *
 * The files are read again every tlsReloadMs and on reload(); changed files that make a usable
 * set replace the served ones for new connections, open connections keep theirs.
 */
export function apiCredentials(api: ApiConfig, log: Logger): ApiCredentials {
  if (api.tlsCert === undefined || api.tlsKey === undefined) {
    return { credentials: ServerCredentials.createInsecure(), reload: () => {}, close: () => {} };
  }
  const files = new CertificateFiles({ cert: api.tlsCert, key: api.tlsKey, clientCa: api.tlsClientCa }, log);
  const mutual = api.tlsClientCa !== undefined;
  // grpc-js declares the first parameter as caCertificateProvider, but it is the identity provider.
  const credentials = experimental.createCertificateProviderServerCredentials(files, mutual ? files : null, mutual);
  const timer = setInterval(() => files.refresh(false), api.tlsReloadMs).unref();
  return { credentials, reload: () => files.refresh(true), close: () => clearInterval(timer) };
}

const CERT = 'PUSHGATE_GRPC_TLS_CERT';
const KEY = 'PUSHGATE_GRPC_TLS_KEY';
const CLIENT_CA = 'PUSHGATE_GRPC_TLS_CLIENT_CA';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

interface Paths {
  readonly cert: string;
  readonly key: string;
  readonly clientCa: string | undefined;
}

/** A file that cannot be read or used; the message names its setting and path, never its contents. */
class CertificateFileError extends Error {
  constructor(
    readonly setting: string,
    readonly file: string,
    reason: string,
  ) {
    super(`${setting} (${file}) ${reason}`);
  }
}

/**
 * The certificate files as a grpc-js CertificateProvider (identity and client CA). Unlike grpc-js's
 * FileWatcherCertificateProvider it can be refreshed on demand, and it never publishes files that
 * cannot be read or used: that one publishes null, which makes the server drop every new
 * connection until the files are fixed.
 */
class CertificateFiles implements experimental.CertificateProvider {
  private identity: experimental.IdentityCertificateUpdate;
  private ca: experimental.CaCertificateUpdate | null = null;
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  /** The last problem warned about, so the timer does not repeat a warning every tick. */
  private lastProblem: string | undefined;

  constructor(
    private readonly paths: Paths,
    private readonly log: Logger,
  ) {
    const cert = read(CERT, paths.cert);
    const key = read(KEY, paths.key);
    const leaf = checkIdentity(paths, cert, key);
    this.identity = { certificate: cert, privateKey: key };
    if (paths.clientCa !== undefined) {
      const ca = read(CLIENT_CA, paths.clientCa);
      checkCaBundle(paths.clientCa, ca);
      this.ca = { caCertificate: ca };
    }
    log.info({ ...describe(leaf), mutualTls: this.ca !== null }, 'gRPC API serves TLS');
  }

  /** Re-reads the files; publishes what changed if the whole set is usable, else warns and keeps the current set. */
  refresh(force: boolean): void {
    let identity: experimental.IdentityCertificateUpdate | undefined;
    let ca: experimental.CaCertificateUpdate | undefined;
    let leaf: X509Certificate | undefined;
    try {
      const cert = read(CERT, this.paths.cert);
      const key = read(KEY, this.paths.key);
      if (!cert.equals(this.identity.certificate) || !key.equals(this.identity.privateKey)) {
        leaf = checkIdentity(this.paths, cert, key);
        identity = { certificate: cert, privateKey: key };
      }
      if (this.paths.clientCa !== undefined) {
        const bundle = read(CLIENT_CA, this.paths.clientCa);
        if (!bundle.equals(this.ca?.caCertificate ?? Buffer.alloc(0))) {
          checkCaBundle(this.paths.clientCa, bundle);
          ca = { caCertificate: bundle };
        }
      }
    } catch (err) {
      const problem = err instanceof CertificateFileError ? err : new CertificateFileError(CERT, this.paths.cert, String(err));
      if (force || problem.message !== this.lastProblem) {
        this.log.warn(
          { setting: problem.setting, file: problem.file, reason: problem.message },
          'gRPC TLS files not reloaded, still serving the previous ones',
        );
      }
      this.lastProblem = problem.message;
      return;
    }
    this.lastProblem = undefined;
    if (ca !== undefined) {
      this.ca = ca;
      for (const listener of this.caListeners) listener(ca);
      this.log.info({ file: this.paths.clientCa }, 'gRPC TLS client CA reloaded');
    }
    if (identity !== undefined && leaf !== undefined) {
      this.identity = identity;
      for (const listener of this.identityListeners) listener(identity);
      this.log.info(describe(leaf), 'gRPC TLS certificate reloaded');
    }
  }

  // grpc-js subscribes before it registers the server that consumes the updates, so a listener
  // called at once would be lost: the first update goes out on the next tick, as grpc-js's own does.
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && listener(this.ca));
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener(this.identity));
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}

function read(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CertificateFileError(setting, file, `cannot be read: ${(err as Error).message}`);
  }
}

/** The leaf certificate, once cert and key are known to make a pair Node's TLS accepts. */
function checkIdentity(paths: Paths, cert: Buffer, key: Buffer): X509Certificate {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateFileError(CERT, paths.cert, `holds no PEM certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CertificateFileError(KEY, paths.key, `is not a usable private key for ${CERT} (${paths.cert}): ${(err as Error).message}`);
  }
  return leaf;
}

/** Node silently ignores what is not a certificate in a CA bundle; an empty or broken one is refused here. */
function checkCaBundle(file: string, bundle: Buffer): void {
  const blocks = bundle.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new CertificateFileError(CLIENT_CA, file, 'holds no PEM certificate');
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new CertificateFileError(CLIENT_CA, file, `holds a certificate that cannot be parsed: ${(err as Error).message}`);
    }
  }
}

/** What a log may say about a certificate: who it names and until when, never key material. */
function describe(leaf: X509Certificate): Record<string, string> {
  return { subject: leaf.subject, serial: leaf.serialNumber, expiresAt: new Date(leaf.validTo).toISOString() };
}
