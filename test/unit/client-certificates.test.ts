import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { type AuthContext, certificateSubject, clientCertificateScopes } from '../../src/grpc/client-certificates.js';

describe('clientCertificateScopes', () => {
  it('maps each certificate subject to its scopes', () => {
    const scopes = clientCertificateScopes('billing=push,read; ops = admin ;');
    expect([...scopes.keys()]).toEqual(['billing', 'ops']);
    expect(scopes.get('billing')).toEqual(new Set(['push', 'read']));
    expect(scopes.get('ops')).toEqual(new Set(['admin']));
  });

  it('keeps spaces inside a subject', () => {
    expect(clientCertificateScopes('Billing Service=push').get('Billing Service')).toEqual(new Set(['push']));
  });

  it('is empty when unset or blank', () => {
    expect(clientCertificateScopes(undefined).size).toBe(0);
    expect(clientCertificateScopes(' ; ').size).toBe(0);
  });

  it.each([
    ['billing', /not subject=scope/],
    ['=push', /not subject=scope/],
    ['billing=', /"" \(for "billing"\) is not a scope/],
    ['billing=push,,read', /is not a scope/],
    ['billing=write', /"write" \(for "billing"\) is not a scope; scopes are push, read, admin/],
    ['billing=push;billing=read', /"billing" is given twice/],
  ])('refuses %j, naming PUSHGATE_GRPC_CLIENT_CERT_SCOPES', (map, reason) => {
    expect(() => clientCertificateScopes(map)).toThrow(/^PUSHGATE_GRPC_CLIENT_CERT_SCOPES: /);
    expect(() => clientCertificateScopes(map)).toThrow(reason);
  });
});

describe('certificateSubject', () => {
  const withSubject = (subject: object): AuthContext => ({
    transportSecurityType: 'ssl',
    sslPeerCertificate: { subject, raw: Buffer.from('') } as unknown as PeerCertificate,
  });

  it('is the CN of the verified peer certificate', () => {
    expect(certificateSubject(withSubject({ CN: 'billing', O: 'Example' }))).toBe('billing');
  });

  it('is undefined without a verified certificate (plaintext, TLS without client certificates)', () => {
    expect(certificateSubject({})).toBeUndefined();
    expect(certificateSubject({ transportSecurityType: 'ssl' })).toBeUndefined();
  });

  it('is undefined for a subject that names nobody or several', () => {
    expect(certificateSubject(withSubject({ O: 'Example' }))).toBeUndefined();
    expect(certificateSubject(withSubject({ CN: '' }))).toBeUndefined();
    expect(certificateSubject(withSubject({ CN: ['billing', 'ops'] }))).toBeUndefined();
  });
});
