/**
 * `aemp gencert`: a self-signed certificate made with node:crypto alone, equivalent to Perl's
 *
 *   openssl req -new -nodes -x509 -days 3650 -newkey rsa:2048 -subj /CN=AnyEvent::MP
 *
 * i.e. an RSA-2048 key, an X.509 v3 certificate for `CN=AnyEvent::MP` valid for 3650 days,
 * signed with SHA-256, marked as a CA (every node uses it as its own certificate and as the
 * only trusted CA) and carrying subject/authority key identifiers. The result is what the
 * `cert` key holds: the certificate PEM followed by the unencrypted PKCS#8 private-key PEM.
 *
 * node:crypto signs and generates keys but cannot build certificates, so the DER encoding of
 * the few structures needed is written out here (X.509: RFC 5280 §4.1).
 */
import { createHash, generateKeyPair, type KeyObject, randomBytes, sign } from 'node:crypto';
import { promisify } from 'node:util';

const generateRsa = promisify(generateKeyPair);

/** Certificate subject and issuer common name. */
export const CERT_COMMON_NAME = 'AnyEvent::MP';
/** Validity in days. */
export const CERT_DAYS = 3650;

/** Generates a key and a self-signed certificate; returns certificate PEM + key PEM. */
export async function generateCertificate(now: Date = new Date()): Promise<string> {
  const { privateKey, publicKey } = await generateRsa('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
  });
  const certDer = selfSignedCertificate(privateKey, publicKey, now);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return pem('CERTIFICATE', certDer) + keyPem;
}

/** The DER of a self-signed certificate for `publicKey`, signed by `privateKey` (RSA). */
export function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, now: Date): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The key identifier is the SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1)),
  // which for RSA is the PKCS#1 public key.
  const keyBits = publicKey.export({ type: 'pkcs1', format: 'der' });
  const keyId = createHash('sha1').update(keyBits).digest();
  const name = seq(set(seq(oid('2.5.4.3'), utf8(CERT_COMMON_NAME))));
  const sha256WithRsa = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0)));
  const serial = randomBytes(20);
  serial[0]! &= 0x7f; // positive
  serial[0]! |= 0x01; // and no leading zero byte to strip
  const notAfter = new Date(now.getTime() + CERT_DAYS * 86_400_000);
  const extensions = seq(
    extension('2.5.29.14', false, tlv(0x04, keyId)),
    extension('2.5.29.35', false, seq(tlv(0x80, keyId))),
    extension('2.5.29.19', true, seq(bool(true))),
  );
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // version v3
    integer(serial),
    sha256WithRsa,
    name,
    seq(time(now), time(notAfter)),
    name,
    spki,
    tlv(0xa3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey);
  return seq(tbs, sha256WithRsa, bitString(signature));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), tlv(0x04, value)) : seq(oid(id), tlv(0x04, value));
}

/** PEM armour: base64 in lines of 64 characters. */
function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/* DER encoding (X.690) of the handful of types a certificate needs. */

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function set(...items: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(items));
}

/** An INTEGER from big-endian unsigned bytes (a zero byte is prepended if the top bit is set). */
function integer(bytes: Buffer): Buffer {
  return tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function bool(v: boolean): Buffer {
  return tlv(0x01, Buffer.from([v ? 0xff : 0]));
}

function utf8(s: string): Buffer {
  return tlv(0x0c, Buffer.from(s, 'utf8'));
}

function bitString(bytes: Buffer): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const groups: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      groups.unshift(v & 0x7f);
      if (v < 128) break;
    }
    for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 0x80;
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime until 2049, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = d.getUTCFullYear();
  return year < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
    : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}
