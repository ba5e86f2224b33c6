import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files on disk, as a server or client would be configured with them. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** The same files' contents, as grpc-js's credentials take them. */
export interface CertificatePem {
  readonly cert: Buffer;
  readonly key: Buffer;
}

// A configuration of our own, so the system's openssl.cnf adds no extensions; `openssl ca` (the
// one way OpenSSL 3.0 signs with dates in the past) needs its database settings.
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
`;

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const LEAF = ['-addext', 'basicConstraints=critical,CA:FALSE'];

/**
 * A throwaway PKI made with the openssl CLI in a temp dir: a CA, and another CA no server trusts,
 * and the certificates they sign. P-256 keys, so making one takes milliseconds.
 */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'pushgate-pki-'));
  readonly ca: CertificateFiles;
  readonly otherCa: CertificateFiles;
  private count = 0;

  constructor() {
    writeFileSync(join(this.dir, 'openssl.cnf'), OPENSSL_CONFIG);
    writeFileSync(join(this.dir, 'index.txt'), '');
    mkdirSync(join(this.dir, 'issued'));
    this.ca = this.authority('pushgate test CA');
    this.otherCa = this.authority('someone else’s CA');
  }

  /** A server certificate for 127.0.0.1 and localhost, signed by the CA. */
  serverCert(cn: string): CertificateFiles {
    return this.leaf(cn, this.ca, ['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'extendedKeyUsage=serverAuth']);
  }

  /** A client certificate with subject CN=`cn`, signed by the CA (or by `issuer`). */
  clientCert(cn: string, issuer: CertificateFiles = this.ca): CertificateFiles {
    return this.leaf(cn, issuer, ['-addext', 'extendedKeyUsage=clientAuth']);
  }

  /** A client certificate the CA signed, valid only on 1–2 January 2020. */
  expiredClientCert(cn: string): CertificateFiles {
    const files = this.next(cn);
    const csr = join(this.dir, `${this.count}.csr`);
    this.openssl('req', ['-new', ...NEW_KEY, '-keyout', files.key, '-out', csr, '-subj', `/CN=${cn}`]);
    this.openssl('ca', [
      '-batch',
      ...['-cert', this.ca.cert, '-keyfile', this.ca.key, '-in', csr, '-out', files.cert],
      ...['-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext', '-rand_serial'],
    ]);
    return files;
  }

  /** Removes every file made. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private authority(cn: string): CertificateFiles {
    const files = this.next(cn);
    this.openssl('req', [
      '-x509',
      ...NEW_KEY,
      ...['-keyout', files.key, '-out', files.cert, '-subj', `/CN=${cn}`, '-days', '2'],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ]);
    return files;
  }

  private leaf(cn: string, issuer: CertificateFiles, extensions: string[]): CertificateFiles {
    const files = this.next(cn);
    this.openssl('req', [
      '-x509',
      ...['-CA', issuer.cert, '-CAkey', issuer.key],
      ...NEW_KEY,
      ...['-keyout', files.key, '-out', files.cert, '-subj', `/CN=${cn}`, '-days', '2'],
      ...LEAF,
      ...extensions,
    ]);
    return files;
  }

  private next(cn: string): CertificateFiles {
    this.count += 1;
    const base = join(this.dir, `${this.count}-${cn.replace(/[^a-z0-9]+/gi, '-')}`);
    return { cert: `${base}.pem`, key: `${base}.key` };
  }

  private openssl(command: string, args: string[]): void {
    execFileSync('openssl', [command, '-config', join(this.dir, 'openssl.cnf'), ...args], { cwd: this.dir, stdio: 'pipe' });
  }
}

/** The contents of a certificate and key, for grpc-js client credentials. */
export function pem(files: CertificateFiles): CertificatePem {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}
